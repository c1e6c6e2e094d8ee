"""Checks of command arguments made before any work starts: each failure is a one-line InputError naming the
argument or file (a run must not compute for half a minute and then fail on its output folder)."""
from __future__ import annotations

import operator
import os
from pathlib import Path

from mrsbench.core.errors import InputError

MAX_SEED = 2 ** 32 - 1   # numpy's SeedSequence entropy per word; torch.manual_seed takes up to 2**64 - 1


def check_output_folder(path: str | Path, arg: str = "--out") -> Path:
    """``path`` can be (or become) a folder this process may write into: neither it nor a folder above it is a
    file, and the nearest existing folder is writable. Nothing is created."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(arg, f"{p} is a file, not a folder")
    q = p.absolute()
    while not q.exists():
        q = q.parent
    if not q.is_dir():
        raise InputError(arg, f"{p}: {q} is a file, so no folder can be made under it")
    if not os.access(q, os.W_OK | os.X_OK):
        raise InputError(arg, f"{p}: {q} is not writable")
    return p


def check_output_file(path: str | Path, arg: str = "--out") -> Path:
    """``path`` can be written as a file: not a folder, and its folder can be made and written."""
    p = Path(path)
    if p.is_dir():
        raise InputError(arg, f"{p} is a folder, not a file")
    check_output_folder(p.parent if str(p.parent) else Path("."), arg)
    return p


def check_seeds(seeds, arg: str = "--seed") -> list[int]:
    """Seeds as ints in [0, 2**32 - 1] (numpy's and torch's seeding accept no negative seed)."""
    out = []
    for s in seeds:
        try:
            if isinstance(s, bool):
                raise TypeError
            v = int(s.strip()) if isinstance(s, str) else operator.index(s)
        except (TypeError, ValueError):
            raise InputError(arg, f"seed {s!r} is not an integer") from None
        if not 0 <= v <= MAX_SEED:
            raise InputError(arg, f"seed {v} is out of range (0 to {MAX_SEED})")
        out.append(v)
    return out


def check_dataset_name(dataset: str, arg: str = "--dataset") -> None:
    """A named simulated dataset, or a path that exists."""
    from mrsbench.data.datasets import DATASETS
    if str(dataset) in DATASETS:
        return
    if not Path(dataset).exists():
        raise InputError(arg, f"{dataset!r} is neither a dataset name ({', '.join(DATASETS)}) nor an existing "
                              "file or folder")


def check_model(model: str, plugins=None, arg: str = "--model"):
    """The generator class registered as ``model`` once ``plugins`` are imported (each must import and register
    at least one generator)."""
    from mrsbench.generators import registry
    registry.check_plugins(plugins)
    try:
        return registry.get(model)
    except registry.RegistryError as e:
        raise InputError(arg, str(e)) from None
