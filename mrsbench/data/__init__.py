"""Datasets: the registered simulated cohorts (``simulate``, ``datasets``), users' files (NIfTI-MRS in
``nifti_mrs``, challenge HDF5 and folders in ``readers``) and what a dataset holds before a run
(``inspection``). The data types themselves are in :mod:`mrsbench.core`; re-exported here for plugins that
import them from ``mrsbench.data``."""
from mrsbench.core.scans import OFF, ON, Cohort, Folds, Scan, Split

__all__ = ["Scan", "Cohort", "Split", "Folds", "ON", "OFF"]
