"""UMAP with its numba functions cached on disk.

umap-learn compiles ~60 s of numba code (nearest neighbours, fuzzy simplicial set, layout, transform) in
every process that uses it, and leaves most of it uncached (``cache=False``): each ``mrsbench run``, each
sweep worker and each Ray task on a fresh worker paid it again (measured: 64 of 149 s of a 2-model x 2-seed
tiny sweep on one core). Here every numba dispatcher of umap and pynndescent gets numba's own on-disk cache
(``Dispatcher.enable_caching``: the same machine code, keyed by numba on the source file, the CPU and the
argument types; stored next to the package or in the user cache, or in ``NUMBA_CACHE_DIR``), so a machine
compiles once. The compiled code is the same, so results are unchanged.
"""
from __future__ import annotations

import sys
import warnings

_DONE = False


def import_umap():
    """``import umap`` with its (and pynndescent's) numba functions cached on disk."""
    global _DONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap
    if not _DONE:
        _enable_disk_cache(("umap", "pynndescent"))
        _DONE = True
    return umap


def _enable_disk_cache(packages: tuple[str, ...]) -> int:
    """Give every not-yet-cached numba dispatcher in the loaded modules of ``packages`` an on-disk cache.
    Returns how many were enabled; one that cannot be cached (no writable cache location) stays as it was."""
    try:
        from numba.core.caching import NullCache
        from numba.core.dispatcher import Dispatcher
    except ImportError:   # numba's internals moved: compile per process, as umap does by itself
        return 0
    n = 0
    for name, mod in list(sys.modules.items()):
        if mod is None or not any(name == p or name.startswith(p + ".") for p in packages):
            continue
        for obj in list(vars(mod).values()):
            if isinstance(obj, Dispatcher) and isinstance(getattr(obj, "_cache", None), NullCache):
                try:
                    obj.enable_caching()
                    n += 1
                except Exception:   # e.g. no writable cache location for this file
                    pass
    return n
