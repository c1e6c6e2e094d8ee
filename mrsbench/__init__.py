"""mrsbench: a benchmark suite for generative models of GABA-edited MEGA-PRESS MRS data.

Importing the package is cheap and changes nothing in the process (no environment variables set); torch, umap and
mlflow are imported lazily where used. The Python API (:mod:`mrsbench.api`) is loaded on first use:

    import mrsbench
    res = mrsbench.evaluate("pca", preset="tiny")     # or a generator instance
    res.to_frame()                                   # one row per metric
    board = mrsbench.load_board("leaderboards/simgaba-small/quick")
"""
from __future__ import annotations

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.errors import InputError, MRSBenchError
from mrsbench.core.scans import OFF, ON, Cohort, Folds, Scan, Split
from mrsbench.core.version import __version__

_API = ("evaluate", "load_results", "load_board", "list_generators", "load_dataset", "Results", "Board")

__all__ = ["SpectralAxis", "Scan", "Cohort", "Split", "Folds", "ON", "OFF", "InputError", "MRSBenchError",
           "__version__", *_API]


def __getattr__(name: str):
    if name in _API:   # the API module imports pandas: loaded on first use, import mrsbench stays fast
        from mrsbench import api
        return getattr(api, name)
    raise AttributeError(f"module 'mrsbench' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
