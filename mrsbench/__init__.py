"""mrsbench: a benchmark suite for generative models of GABA-edited MEGA-PRESS MRS data.

Importing the package is cheap; torch, umap and mlflow are imported lazily where used.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .axis import SpectralAxis  # noqa: E402
from .data import OFF, ON, Cohort, Folds, Scan, Split  # noqa: E402
from .errors import InputError, MRSBenchError  # noqa: E402

__all__ = ["SpectralAxis", "Scan", "Cohort", "Split", "Folds", "ON", "OFF", "InputError", "MRSBenchError", "__version__"]
