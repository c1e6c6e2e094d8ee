"""Named datasets: simulated cohorts generated deterministically on first use and cached, or a
user's folder of NIfTI-MRS files."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from mrsbench.core.files import atomic_path, atomic_savez
from mrsbench.data.simulate import COHORT_VERSION, CohortConfig, simulate_cohort
from mrsbench.core.scans import Cohort, Scan
from mrsbench.core.errors import InputError

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
        raise InputError(name, f"unknown dataset; choose one of {', '.join(DATASETS)} or a path to real data "
                         "(a NIfTI-MRS folder or BIDS tree, a NIfTI-MRS file, a challenge .h5 file)")
    cfg = DATASETS[name]
    return replace(cfg, seed=seed) if seed is not None else cfg


def config_key(cfg: CohortConfig) -> str:
    from mrsbench.physics.basis import PHYSICS_VERSION, _table_hash
    d = cfg.to_dict()
    if d.get("basis_dir") is None:  # the keys of the built-in cohorts stay what they were
        d.pop("basis_dir", None)
        d.pop("basis_hash", None)
    else:
        d["basis_dir"] = None  # a user basis is identified by its content, not where it lies
    payload = json.dumps({"cfg": d, "cohort": COHORT_VERSION, "physics": PHYSICS_VERSION,
                          "table": _table_hash()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def content_hash(cohort: Cohort) -> str:
    """SHA-256 over every subject's id, site, edit labels and FID bytes (order-independent of caching).

    Exact bytes: right for data read from files (identical on every machine), wrong as the identity
    of a simulated cohort, whose last bits differ between CPUs and BLAS builds (see
    :func:`dataset_identity`)."""
    h = hashlib.sha256()
    for s in cohort.scans:
        h.update(s.subject.encode())
        h.update(s.site.encode())
        h.update(s.edit.tobytes())
        h.update(np.ascontiguousarray(s.fids).tobytes())
    return h.hexdigest()[:20]


# Fingerprint windows (ppm): NAA 2.01, Glx 3.75, GABA 3.01, Cr 3.03, Cho 3.2, mI 3.55, water 4.68
FINGERPRINT_PPM = ((1.9, 2.1), (2.2, 2.45), (2.9, 3.1), (3.1, 3.3), (3.5, 3.6), (3.65, 3.85), (4.4, 5.0))
# Relative tolerance of the fingerprint comparison. Simulating simgaba-small on two machines (or with
# 1 vs 2 BLAS threads) changes the FIDs by ~1e-15 relative; a different seed or a physics change
# moves the fingerprint by > 1e-3. 1e-6 leaves nine orders of magnitude of margin on either side.
FINGERPRINT_RTOL = 1e-6


def fingerprint(cohort: Cohort) -> dict[str, str]:
    """Numeric fingerprint of a cohort that survives last-bit floating-point differences.

    Per subject: the number of ON and OFF transients, then for the mean ON and mean OFF spectrum
    the integral of |spectrum| in each :data:`FINGERPRINT_PPM` window and the total energy
    sum |fid|^2 over all transients (arbitrary units), as a string of numbers with 12 significant digits.
    Compare two with :func:`fingerprint_mismatch`.
    """
    out = {}
    for s in cohort.scans:
        ax = s.axis
        row = [float(len(s.on)), float(len(s.off))]
        for fids in (s.on, s.off):
            spec = np.abs(ax.to_spectrum(fids.mean(0)))
            row += [float(spec[ax.window(a, b)].sum()) for a, b in FINGERPRINT_PPM]
        row.append(float(np.sum(np.abs(s.fids) ** 2)))
        out[s.subject] = " ".join(f"{v:.12g}" for v in row)  # one compact line per subject in JSON
    return out


def fingerprint_mismatch(a: dict, b: dict, rtol: float = FINGERPRINT_RTOL) -> str | None:
    """None when two fingerprints agree within ``rtol`` (relative, entry by entry),
    else a one-line description of the first difference."""
    if set(a) != set(b):
        extra, missing = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        return f"subjects differ (only in the file: {extra[:3]}, only here: {missing[:3]})"
    for subj in sorted(a):
        try:
            x, y = (np.asarray(v.split() if isinstance(v, str) else v, float) for v in (a[subj], b[subj]))
        except (ValueError, AttributeError, TypeError):
            return f"subject {subj}: fingerprint is not a list of numbers"
        if x.shape != y.shape:
            return f"subject {subj}: fingerprint length {len(x)} vs {len(y)}"
        scale = np.maximum(np.maximum(np.abs(x), np.abs(y)), 1e-9 * max(np.max(np.abs(x)), 1e-300))
        dev = np.abs(x - y) / scale
        if np.any(dev > rtol):
            return f"subject {subj}: data differ by {dev.max():.1e} relative (tolerance {rtol:g})"
    return None


def dataset_identity(cohort: Cohort, cfg: CohortConfig | None = None) -> str:
    """The identity under which results are ranked together.

    Simulated cohorts: ``sim-`` + the cache key of the generating configuration and code versions
    (cohort, physics, spin table): identical on every machine, and different whenever the data could
    differ by more than round-off. Folders of files: ``files-`` + the exact content hash of what was read.
    """
    return f"sim-{config_key(cfg)}" if cfg is not None else f"files-{content_hash(cohort)}"


def _save(path: Path, cohort: Cohort, extras: dict) -> None:
    gt = cohort.ground_truth
    arrs = {"fids": np.stack([s.fids for s in cohort.scans]), "edit": np.stack([s.edit for s in cohort.scans]),
            "subjects": np.array(cohort.subjects), "sites": np.array(cohort.sites),
            "gt": gt.to_json(orient="records"), "meta": json.dumps(cohort.meta), **extras}
    atomic_savez(path, **arrs)


def _stored_npz_array(path: Path, member: str) -> np.ndarray | None:
    """The array ``member`` of the .npz file ``path`` memory-mapped (copy-on-write) where the archive stores it
    uncompressed (``numpy.savez``), else None. Reading a 1.5 GB member through ``zipfile`` (chunked copies and
    a CRC) took 5.6 s of the 8.2 s that loading simgaba took; mapped, its pages are read when first touched."""
    import struct
    import zipfile
    with zipfile.ZipFile(path) as zf:
        try:
            info = zf.getinfo(member + ".npy")
        except KeyError:
            return None
        if info.compress_type != zipfile.ZIP_STORED:
            return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        head = f.read(30)   # the member's local file header (PKWARE APPNOTE 4.3.7): name and extra lengths last
        if head[:4] != b"PK\x03\x04":
            return None
        n_name, n_extra = struct.unpack("<HH", head[26:30])
        f.seek(info.header_offset + 30 + n_name + n_extra)
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            return None
        shape, fortran, dtype = read_header[version](f)
        if dtype.hasobject:
            return None
        offset = f.tell()
    return np.memmap(path, dtype=dtype, mode="c", shape=shape, order="F" if fortran else "C", offset=offset)


def _load(path: Path, cfg: CohortConfig) -> tuple[Cohort, dict]:
    import io

    import pandas as pd
    z = np.load(path, allow_pickle=False)
    ax = cfg.axis
    fids = _stored_npz_array(path, "fids")
    fids = z["fids"] if fids is None else fids
    scans = [Scan(np.asarray(f), e, ax, subject=str(s), site=str(si), meta={"simulated": True})
             for f, e, s, si in zip(fids, z["edit"], z["subjects"], z["sites"])]
    gt = pd.read_json(io.StringIO(str(z["gt"])), orient="records", dtype={"outlier_transients": str})
    gt["outlier_transients"] = gt["outlier_transients"].fillna("").astype(str)
    cohort = Cohort(scans, name=cfg.name, ground_truth=gt, meta=json.loads(str(z["meta"])))
    return cohort, {k: z[k] for k in ("clean", "drift_hz", "phase_rad") if k in z.files}


def load_dataset(name: str | Path, seed: int | None = None, with_extras: bool = False, progress: bool = True,
                 use_cache: bool = True, edit_order: str | None = None, basis: str | Path | None = None):
    """A dataset by name (simulated and cached on first use), or real data from a path: a folder of
    NIfTI-MRS files (flat or BIDS), one NIfTI-MRS file or an Edited-MRS challenge HDF5 file
    (:func:`mrsbench.data.readers.read_path`; ``edit_order`` ``"ON,OFF"``/``"OFF,ON"`` for files that interleave
    the conditions on DIM_DYN without saying which comes first). ``basis``: a simulated dataset built
    from a user-supplied MEGA-PRESS basis folder (:mod:`mrsbench.physics.external_basis`) instead of the
    built-in one (editing-pulse detuning under drift is then off).

    The returned cohort's ``meta`` has ``dataset`` (name), ``identity`` (see :func:`dataset_identity`),
    ``fingerprint``, ``content_hash`` (exact bytes, this machine only) and, when simulated, ``config``. With ``with_extras`` also returns the noise-free spectra and the frequency and phase traces.
    """
    p = Path(name)
    if str(name) not in DATASETS and (p.exists() or p.suffix or "/" in str(name)):
        from mrsbench.data.readers import read_path
        cohort = read_path(p, edit_order=edit_order)
        cohort.meta.update(dataset=str(name), content_hash=content_hash(cohort), identity=dataset_identity(cohort),
                           fingerprint=fingerprint(cohort))
        return (cohort, {}) if with_extras else cohort
    cfg = dataset_config(str(name), seed)
    if basis is not None:
        from mrsbench.physics.external_basis import basis_hash
        h = basis_hash(basis)
        cfg = replace(cfg, name=f"{cfg.name}-basis-{h[:8]}", basis_dir=str(Path(basis).resolve()), basis_hash=h)
    from mrsbench.physics.basis import cache_dir
    path = cache_dir() / "datasets" / f"{cfg.name}-{config_key(cfg)}.npz"
    cohort = extras = None
    if use_cache and path.exists():
        try:
            cohort, extras = _load(path, cfg)
        except Exception:
            cohort = None  # corrupt cache: regenerate
        if cohort is not None and with_extras and "phase_rad" not in extras:
            cohort = None  # written before the phase traces were kept: regenerate (same data)
    if cohort is None:
        cohort, extras = simulate_cohort(cfg, progress=progress)
        if use_cache:
            _save(path, cohort, extras)
    cohort.meta.update(dataset=cfg.name, content_hash=content_hash(cohort), identity=dataset_identity(cohort, cfg),
                       fingerprint=fingerprint(cohort), config=cfg.to_dict())
    if basis is not None:
        from mrsbench.physics.basis import load_basis
        from mrsbench.physics.external_basis import read_external_basis
        on, off, _ = read_external_basis(basis)
        have = set(on) | set(off)
        cohort.meta["basis"] = {"dir": str(basis), "hash": cfg.basis_hash, "edit_detuning_under_drift": "off",
                                "missing": [n for n in load_basis().names if n not in have and n != "H2O"]}
    return (cohort, extras) if with_extras else cohort


def write_dataset(cohort: Cohort, extras: dict, out: str | Path, progress: bool = False) -> list[Path]:
    """Write one NIfTI-MRS file per subject, ground_truth.csv and noise_free_spectra.npz (noise-free ON/OFF
    spectra and FIDs, each transient's frequency ``drift_hz`` and zero-order phase ``phase_rad``)."""
    from mrsbench.data.nifti_mrs import write_nifti_mrs
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scans = cohort.scans
    if progress:
        from tqdm import tqdm
        scans = tqdm(scans, desc=f"writing {cohort.name} as NIfTI-MRS", unit="file")
    # TR 2 s: the Big GABA protocol the cohort simulates (../shared/reference/invivo.md)
    paths = [write_nifti_mrs(s, out / f"{s.subject}.nii.gz", repetition_time_s=2.0) for s in scans]
    gt = cohort.ground_truth
    with atomic_path(out / "ground_truth.csv") as tmp:
        gt.to_csv(tmp, index=False)
    ax = cohort.axis
    if extras:
        spec = ax.to_spectrum(extras["clean"])
        atomic_savez(out / "noise_free_spectra.npz", subjects=np.array(cohort.subjects), ppm=ax.ppm,
                 on=spec[:, 0], off=spec[:, 1], on_fid=extras["clean"][:, 0], off_fid=extras["clean"][:, 1],
                 drift_hz=extras["drift_hz"], **({"phase_rad": extras["phase_rad"]} if "phase_rad" in extras else {}))
    return paths
