"""`mrsbench cache`: what the cache folder holds ($MRSBENCH_CACHE, else ~/.cache/mrsbench), how large each part
is, and clearing it. Everything in it is recomputed on demand (basis sets, simulated datasets, shared work),
so clearing costs time, never results."""
from __future__ import annotations

import shutil
from pathlib import Path

# the cache's parts: folder name -> what it holds
PARTS = {
    "basis": "simulated MEGA-PRESS basis sets (density-matrix simulation, ~1-2 min each to remake)",
    "datasets": "simulated cohorts (.npz, with their noise-free truth; seconds to minutes each to remake)",
    "shared": "model-independent work per dataset, preset and seed (application subsets, full-scan fits)",
}


def _size(p: Path) -> tuple[int, int]:
    """(bytes, files) under ``p``."""
    if p.is_file():
        return p.stat().st_size, 1
    n = b = 0
    for f in p.rglob("*"):
        if f.is_file() and not f.is_symlink():
            b += f.stat().st_size
            n += 1
    return b, n


def shared_dir() -> Path:
    """Where the shared work is cached: $MRSBENCH_SHARED_DIR, else $MRSBENCH_CACHE/shared."""
    import os
    from mrsbench.physics.basis import cache_dir
    d = os.environ.get("MRSBENCH_SHARED_DIR")
    return Path(d) if d else cache_dir() / "shared"


def cache_report() -> dict:
    """{"root", "parts": [{"part", "path", "bytes", "files", "what"}], "bytes"} of the cache."""
    from mrsbench.physics.basis import cache_dir
    root = cache_dir()
    parts = []
    for name, what in PARTS.items():
        p = shared_dir() if name == "shared" else root / name
        b, n = _size(p) if p.exists() else (0, 0)
        parts.append({"part": name, "path": str(p), "bytes": b, "files": n, "what": what})
    other = [x for x in root.iterdir() if x.name not in PARTS] if root.is_dir() else []
    for x in other:
        b, n = _size(x)
        parts.append({"part": x.name, "path": str(x), "bytes": b, "files": n, "what": "not made by this mrsbench"})
    return {"root": str(root), "parts": parts, "bytes": sum(p["bytes"] for p in parts)}


def clear_cache(parts: list[str]) -> list[dict]:
    """Remove the named parts ("all": every part mrsbench makes). Returns what was removed."""
    from mrsbench.core.errors import InputError
    from mrsbench.physics.basis import cache_dir
    names = list(PARTS) if "all" in parts else parts
    bad = [p for p in names if p not in PARTS]
    if bad:
        raise InputError("--clear", f"unknown cache part(s) {', '.join(bad)}; choose from {', '.join(PARTS)} or all")
    out = []
    for name in names:
        p = shared_dir() if name == "shared" else cache_dir() / name
        if p.exists():
            b, n = _size(p)
            shutil.rmtree(p) if p.is_dir() else p.unlink()
            out.append({"part": name, "path": str(p), "bytes": b, "files": n})
    return out
