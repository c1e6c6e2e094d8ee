"""mrsbench: a benchmark suite for generative models of GABA-edited MEGA-PRESS MRS data.

Importing the package is cheap; torch, umap and mlflow are imported lazily where used.
"""
from __future__ import annotations

__version__ = "0.1.0"

import os as _os

# OpenMP threads (torch's intra-op pool on the CPU) wait passively instead of spinning, unless the user chose
# otherwise. mrsbench runs torch next to its own processing threads, and often next to other jobs: with the
# default spin-wait, 96 batched LCM fits on 2 busy cores ran at 1.6 fits/s with 2 torch threads against 41 with
# passive waiting (33 with 1 thread); on idle cores passive costs ~10% (81 -> 74 fits/s). Read by the OpenMP
# runtime when torch loads it, so it has effect only if torch was not imported before mrsbench.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .axis import SpectralAxis  # noqa: E402
from .data import OFF, ON, Cohort, Folds, Scan, Split  # noqa: E402
from .errors import InputError, MRSBenchError  # noqa: E402

__all__ = ["SpectralAxis", "Scan", "Cohort", "Split", "Folds", "ON", "OFF", "InputError", "MRSBenchError", "__version__"]
