"""mrsbench: a benchmark suite for generative models of GABA-edited MEGA-PRESS MRS data.

Importing the package is cheap; torch, umap and mlflow are imported lazily where used.
"""
from __future__ import annotations

from mrsbench.core.version import __version__  # noqa: E402

import os as _os

# OpenMP threads (torch's intra-op pool on the CPU) spin only briefly before they sleep, unless the user chose a
# wait policy. mrsbench runs torch next to other jobs: with libgomp's default spin (300000), 96 batched LCM fits
# ran at 1.6 fits/s with 2 torch threads on 2 busy cores; with a spin count of 1000, 39 fits/s (passive waiting:
# 39; 1 thread: 33); on idle cores 92-95 fits/s either way (passive: 53). GOMP_SPINCOUNT is libgomp's (Linux
# torch wheels), KMP_BLOCKTIME (ms) LLVM libomp's. Read when torch loads its OpenMP runtime, so they take effect only
# if torch was not imported before mrsbench.
if "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ.setdefault("GOMP_SPINCOUNT", "1000")
    _os.environ.setdefault("KMP_BLOCKTIME", "1")

from mrsbench.core.axis import SpectralAxis  # noqa: E402
from mrsbench.core.scans import OFF, ON, Cohort, Folds, Scan, Split  # noqa: E402
from mrsbench.core.errors import InputError, MRSBenchError  # noqa: E402

__all__ = ["SpectralAxis", "Scan", "Cohort", "Split", "Folds", "ON", "OFF", "InputError", "MRSBenchError", "__version__"]
