"""Atomic file writing: write to a temporary file in the target folder, then rename over the target,
so an interrupted write never leaves a half-written file or touches an earlier one. Files and
folders get the permissions the user's umask gives a newly created one (``mkstemp``/``mkdtemp``
alone would make them 0600/0700)."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def owner_tag() -> str:
    """``HOST~PID`` of this process, written into the name of every temporary file and folder it stages, so that a
    later run can tell the leftovers of a killed process (SIGKILL runs no clean-up) from work in progress."""
    import socket
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"
    return f"{host}~{os.getpid()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's live process
        return True
    return True


def reap_stale(folder: str | Path) -> list[Path]:
    """Remove the temporary files and folders (``.tmp-HOST~PID-*``) that a process of this host left in ``folder``
    when it was killed (its PID no longer runs). Returns what was removed; others' and live work is left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host = owner_tag().split("~")[0]
    out = []
    for p in folder.glob(".tmp-*"):
        tag = p.name[len(".tmp-"):].split("-", 1)[0]
        h, _, pid = tag.partition("~")
        if h != host or not pid.isdigit() or pid_alive(int(pid)):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        out.append(p)
    return out


def umask() -> int:
    """The process umask (read without changing it for longer than two calls)."""
    m = os.umask(0o022)
    os.umask(m)
    return m


def honour_umask(path: str | Path, is_dir: bool = False) -> None:
    """chmod a freshly created file (0666) or folder (0777) to what the umask allows."""
    os.chmod(path, (0o777 if is_dir else 0o666) & ~umask())


@contextmanager
def atomic_path(path: str | Path, suffix: str = ""):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{owner_tag()}-", suffix=suffix or "".join(path.suffixes))
    os.close(fd)
    honour_umask(tmp)
    try:
        yield tmp
        honour_umask(tmp)   # again: a writer that replaced the file (nibabel's gzip save) leaves it 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary folder beside ``path``; on success it is renamed to ``path`` (which must not
    exist). On any exception, KeyboardInterrupt included, the temporary folder is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise FileExistsError(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".tmp-{owner_tag()}-{path.name}-"))
    honour_umask(tmp, is_dir=True)
    try:
        yield tmp
        os.rename(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_savez(path: str | Path, **arrays) -> None:
    """``numpy.savez`` to ``path`` atomically."""
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, **arrays)


# folders under a results root that hold no results of their own: MLflow's stores (their artifacts are copies of
# results files), hidden folders (staging of atomic writes, caches) and a board's figures
_NOT_RESULTS_DIRS = {"mlartifacts", "mlruns", "figures", "__pycache__"}


def result_files(root: Path) -> list[Path]:
    """The *.json files under ``root`` that may be results: symlinked folders followed (once each), MLflow stores,
    hidden folders and figures skipped, leaderboard.json and staging files left out."""
    out, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:   # a link back up the tree
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if d not in _NOT_RESULTS_DIRS and not d.startswith(".")]
        out += [Path(dirpath) / f for f in filenames if f.endswith(".json") and f != "leaderboard.json"
                and not f.startswith(".")]
    return sorted(out)
