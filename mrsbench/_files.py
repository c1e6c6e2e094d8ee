"""Atomic file writing: write to a temporary file in the target folder, then rename over the target,
so an interrupted write never leaves a half-written file or touches an earlier one."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def atomic_path(path: str | Path, suffix: str = ""):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix or "".join(path.suffixes))
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_savez(path: str | Path, **arrays) -> None:
    """``numpy.savez`` to ``path`` atomically."""
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, **arrays)
