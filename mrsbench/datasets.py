"""Named datasets: simulated cohorts generated deterministically on first use and cached, or a
user's folder of NIfTI-MRS files."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ._files import atomic_path, atomic_savez
from .cohort import COHORT_VERSION, CohortConfig, simulate_cohort
from .data import Cohort, Scan
from .errors import InputError

DATASETS: dict[str, CohortConfig] = {
    "simgaba-small": CohortConfig(name="simgaba-small", n_sites=3, subjects_per_site=4),
    "simgaba": CohortConfig(name="simgaba", n_sites=12, subjects_per_site=12),
}
DESCRIPTIONS = {
    "simgaba-small": "simulated Big-GABA-like cohort, 3 sites x 4 subjects, 320 transients (CI, laptops)",
    "simgaba": "simulated Big-GABA-like cohort, 12 sites x 12 subjects, 320 transients (paper scale)",
}


def dataset_config(name: str, seed: int | None = None) -> CohortConfig:
    if name not in DATASETS:
        raise InputError(name, f"unknown dataset; choose one of {', '.join(DATASETS)} or a folder of NIfTI-MRS files")
    cfg = DATASETS[name]
    return replace(cfg, seed=seed) if seed is not None else cfg


def config_key(cfg: CohortConfig) -> str:
    from .physics.basis import PHYSICS_VERSION, _table_hash
    payload = json.dumps({"cfg": cfg.to_dict(), "cohort": COHORT_VERSION, "physics": PHYSICS_VERSION,
                          "table": _table_hash()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def content_hash(cohort: Cohort) -> str:
    """SHA-256 over every subject's id, site, edit labels and FID bytes (order-independent of caching)."""
    h = hashlib.sha256()
    for s in cohort.scans:
        h.update(s.subject.encode())
        h.update(s.site.encode())
        h.update(s.edit.tobytes())
        h.update(np.ascontiguousarray(s.fids).tobytes())
    return h.hexdigest()[:20]


def _save(path: Path, cohort: Cohort, extras: dict) -> None:
    gt = cohort.ground_truth
    arrs = {"fids": np.stack([s.fids for s in cohort.scans]), "edit": np.stack([s.edit for s in cohort.scans]),
            "subjects": np.array(cohort.subjects), "sites": np.array(cohort.sites),
            "gt": gt.to_json(orient="records"), "meta": json.dumps(cohort.meta), **extras}
    atomic_savez(path, **arrs)


def _load(path: Path, cfg: CohortConfig) -> tuple[Cohort, dict]:
    import io

    import pandas as pd
    z = np.load(path, allow_pickle=False)
    ax = cfg.axis
    scans = [Scan(f, e, ax, subject=str(s), site=str(si), meta={"simulated": True})
             for f, e, s, si in zip(z["fids"], z["edit"], z["subjects"], z["sites"])]
    gt = pd.read_json(io.StringIO(str(z["gt"])), orient="records", dtype={"outlier_transients": str})
    gt["outlier_transients"] = gt["outlier_transients"].fillna("").astype(str)
    cohort = Cohort(scans, name=cfg.name, ground_truth=gt, meta=json.loads(str(z["meta"])))
    return cohort, {"clean": z["clean"], "drift_hz": z["drift_hz"]}


def load_dataset(name: str | Path, seed: int | None = None, with_extras: bool = False, progress: bool = True,
                 use_cache: bool = True):
    """A dataset by name (simulated and cached on first use) or a folder of NIfTI-MRS files.

    The returned cohort's ``meta`` has ``dataset`` (name), ``content_hash`` and, when simulated,
    ``config``. With ``with_extras`` also returns the noise-free spectra and drift traces.
    """
    p = Path(name)
    if str(name) not in DATASETS and p.is_dir():
        from .io import read_folder
        cohort = read_folder(p)
        cohort.meta.update(dataset=str(name), content_hash=content_hash(cohort))
        return (cohort, {}) if with_extras else cohort
    cfg = dataset_config(str(name), seed)
    from .physics.basis import cache_dir
    path = cache_dir() / "datasets" / f"{cfg.name}-{config_key(cfg)}.npz"
    cohort = extras = None
    if use_cache and path.exists():
        try:
            cohort, extras = _load(path, cfg)
        except Exception:
            cohort = None  # corrupt cache: regenerate
    if cohort is None:
        cohort, extras = simulate_cohort(cfg, progress=progress)
        if use_cache:
            _save(path, cohort, extras)
    cohort.meta.update(dataset=cfg.name, content_hash=content_hash(cohort), config=cfg.to_dict())
    return (cohort, extras) if with_extras else cohort


def write_dataset(cohort: Cohort, extras: dict, out: str | Path) -> list[Path]:
    """Write one NIfTI-MRS file per subject, ground_truth.csv and noise_free_spectra.npz."""
    from .io import write_nifti_mrs
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_nifti_mrs(s, out / f"{s.subject}.nii.gz") for s in cohort.scans]
    gt = cohort.ground_truth
    with atomic_path(out / "ground_truth.csv") as tmp:
        gt.to_csv(tmp, index=False)
    ax = cohort.axis
    if extras:
        spec = ax.to_spectrum(extras["clean"])
        atomic_savez(out / "noise_free_spectra.npz", subjects=np.array(cohort.subjects), ppm=ax.ppm,
                 on=spec[:, 0], off=spec[:, 1], on_fid=extras["clean"][:, 0], off_fid=extras["clean"][:, 1],
                 drift_hz=extras["drift_hz"])
    return paths
