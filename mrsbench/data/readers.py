"""Real data in: Edited-MRS Reconstruction Challenge HDF5 files, folders and BIDS trees of NIfTI-MRS files as
spec2nii writes them (ON/OFF on DIM_EDIT or interleaved on DIM_DYN, ON and OFF in separate files, uncombined
coils, water references alongside), harmonised onto one axis (:mod:`mrsbench.core.grid`)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.scans import Cohort, Scan, check_complex, validate_fids
from mrsbench.core.errors import InputError
from mrsbench.core.grid import check_field, harmonise_scans

NIFTI_SUFFIXES = (".nii", ".nii.gz")
H5_SUFFIXES = (".h5", ".hdf5", ".hdf")
# file-name marks of water (unsuppressed) reference scans: BIDS ``_mrsref``, spec2nii/Osprey ``ref``, ``w``...
_WATER = re.compile(r"(mrsref|(^|[_\-.])(ref|wref|water|h2o|unsuppressed|ecc)([_\-.]|$))", re.I)
# marks of a one-condition file: ``_on``/``_off``, ``acq-on``, ``edit-off``, ``ON.nii`` ...
_COND = re.compile(r"(^|[_\-.])(acq-|edit-|edit_)?(on|off)(?=[_\-.]|$)", re.I)


def is_water_reference(path: Path) -> bool:
    return bool(_WATER.search(_stem(path)))


def _stem(path: Path) -> str:
    n = path.name
    for suf in NIFTI_SUFFIXES[::-1] + H5_SUFFIXES:
        if n.lower().endswith(suf):
            return n[: -len(suf)]
    return n


def _condition_of(path: Path) -> tuple[str | None, str]:
    """('ON'|'OFF'|None, the name with the condition mark removed)."""
    stem = _stem(path)
    marks = list(_COND.finditer(stem))
    if not marks:
        return None, stem
    m = marks[-1]
    return m.group(3).upper(), (stem[:m.start()] + stem[m.end():]).strip("_-.")


def read_challenge_h5(path: str | Path) -> Cohort:
    """An Edited-MRS Reconstruction Challenge file as a cohort, one subject per scan.

    ``transient_fids`` (scans, points, subspectra, transients) with subspectrum 0 = edit-OFF, 1 = edit-ON;
    ``ppm`` and ``t`` (scans or 1, points). The challenge's spectra are ``fftshift(ifft(fid))`` with ppm
    running down from index 0 (shared/data/edited_mrs_challenge_sample/README.md): its FIDs are therefore in
    mrsbench's (NIfTI-MRS) sign convention as they are, with the receiver at the ppm of their point N/2;
    the field is sw / (N |d ppm|). ``target_spectra``, when present, is kept in ``meta``."""
    path = Path(path)
    src = str(path)
    if not path.exists():
        raise InputError(src, "file not found")
    import h5py
    try:
        f = h5py.File(path, "r")
    except Exception as e:
        raise InputError(src, f"not an HDF5 file ({type(e).__name__}: {str(e)[:120]})") from None
    with f:
        missing = [k for k in ("transient_fids", "ppm", "t") if k not in f]
        if missing:
            raise InputError(src, f"not an Edited-MRS challenge file: no {', '.join(missing)} "
                             f"(found {', '.join(sorted(f.keys())) or 'nothing'})")
        x = np.asarray(f["transient_fids"])
        ppm = np.atleast_2d(np.asarray(f["ppm"], float))
        t = np.atleast_2d(np.asarray(f["t"], float))
        target = np.asarray(f["target_spectra"]) if "target_spectra" in f else None
    if x.ndim != 4 or x.shape[2] != 2:
        raise InputError(src, f"transient_fids has shape {x.shape}; expected (scans, points, 2 subspectra, transients)")
    if x.dtype.kind != "c":
        raise InputError(src, f"transient_fids has dtype {x.dtype}; complex FIDs are needed")
    check_complex(x, src)
    n = x.shape[1]
    if ppm.shape[-1] != n or t.shape[-1] != n:
        raise InputError(src, f"ppm/t have {ppm.shape[-1]}/{t.shape[-1]} points but the FIDs {n}")
    scans = []
    for i in range(x.shape[0]):
        p, tt = ppm[min(i, len(ppm) - 1)], t[min(i, len(t) - 1)]
        dwell = float(tt[1] - tt[0])
        dppm = float(p[0] - p[1])
        if not (dwell > 0 and dppm > 0):
            raise InputError(src, f"scan {i}: t must increase and ppm decrease (the challenge convention)")
        sw = 1.0 / dwell
        axis = SpectralAxis(sw_hz=sw, f0_mhz=sw / (n * dppm), n_points=n, centre_ppm=float(p[n // 2]))
        check_field(axis, src)
        off, on = x[i, :, 0, :].T, x[i, :, 1, :].T
        validate_fids(np.concatenate([on, off]), f"{src} scan {i}", min_transients=2)
        meta = {"source": f"{src}#scan{i}", "edit_order": "challenge subspectra (0 OFF, 1 ON)", "layout": "challenge-hdf5"}
        scans.append(Scan.from_on_off(on, off, axis, interleave=True, subject=f"{_stem(path)}-{i:03d}", site="",
                                      meta=meta))
    scans, record = harmonise_scans(scans)
    cohort = Cohort(scans, name=_stem(path))
    cohort.meta.update(harmonisation=record, layout="challenge-hdf5")
    if target is not None:
        cohort.meta["target_spectra_shape"] = list(target.shape)
    return cohort


def _bids_ids(path: Path, root: Path) -> tuple[str | None, str | None]:
    """(subject, session) from a BIDS path ``sub-X/[ses-Y/]mrs/...``."""
    sub = ses = None
    for part in path.relative_to(root).parts[:-1]:  # the folders, not the file name
        if part.startswith("sub-"):
            sub = part
        elif part.startswith("ses-"):
            ses = part
    return sub, ses


def _sites_from_participants(root: Path) -> dict:
    """participant_id -> site from a BIDS participants.tsv (columns 'site', 'Site', 'scanner' or 'vendor')."""
    p = root / "participants.tsv"
    if not p.exists():
        return {}
    import pandas as pd
    try:
        df = pd.read_csv(p, sep="\t", dtype=str)
    except Exception as e:
        raise InputError(p, f"cannot be read as a tab-separated table ({type(e).__name__})") from None
    col = next((c for c in ("site", "Site", "scanner", "vendor") if c in df.columns), None)
    if col is None or "participant_id" not in df.columns:
        return {}
    return dict(zip(df["participant_id"], df[col].fillna("")))


def read_data_folder(folder: str | Path, edit_order: str | None = None) -> Cohort:
    """Every metabolite NIfTI-MRS file under ``folder`` (recursively, so BIDS trees too) as one cohort.

    Water references (``_mrsref``, ``ref``, ``water``, ``h2o``... in the name) are recognised and left out
    (listed in ``meta["water_references"]``). Files marked ``_on``/``_off`` (``acq-on``, ``edit-off``...)
    are paired by the rest of their name into one subject. In a BIDS tree (``sub-*/[ses-*/]mrs/``) the
    subject (and session) come from the path and the site from participants.tsv. Scans that do not share
    one grid are harmonised onto the benchmark axis."""
    from mrsbench.data.nifti_mrs import read_nifti_mrs

    root = Path(folder)
    if not root.is_dir():
        raise InputError(root, "not a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(NIFTI_SUFFIXES))
    if not files:
        raise InputError(root, "no NIfTI-MRS files (*.nii, *.nii.gz) in this folder or below it")
    water = [p for p in files if is_water_reference(p)]
    files = [p for p in files if p not in water]
    if not files:
        raise InputError(root, f"only water-reference files here ({len(water)}): no metabolite (edited) data")
    bids = any(part.startswith("sub-") for p in files for part in p.relative_to(root).parts[:-1])
    sites = _sites_from_participants(root) if bids else {}
    singles: dict = {}
    scans = []
    for p in files:
        sub, ses = _bids_ids(p, root) if bids else (None, None)
        subject = (sub + (f"_{ses}" if ses else "")) if sub else None
        site = sites.get(sub, "") if sub else ""
        cond, rest = _condition_of(p)
        if cond is not None:
            key = (str(p.parent), rest)
            singles.setdefault(key, {})[cond] = (p, subject, site)
            continue
        scans.append(read_nifti_mrs(p, subject=subject, site=site, edit_order=edit_order))
    for (parent, rest), d in sorted(singles.items()):
        if set(d) != {"ON", "OFF"}:
            have = next(iter(d.values()))[0]
            raise InputError(have, f"a one-condition file ({', '.join(d)}) without its "
                             f"{'OFF' if 'ON' in d else 'ON'} partner (expected a file named like it with "
                             f"{'_off' if 'ON' in d else '_on'})")
        scans.append(pair_conditions(read_nifti_mrs(d["ON"][0], subject=d["ON"][1] or rest, site=d["ON"][2], condition="ON"),
                                     read_nifti_mrs(d["OFF"][0], subject=d["OFF"][1] or rest, site=d["OFF"][2],
                                                    condition="OFF")))
    for s in scans:
        check_field(s.axis, s.meta.get("source", root))
    scans, record = harmonise_scans(scans)
    cohort = Cohort(scans, name=root.name)
    cohort.meta.update(harmonisation=record, water_references=[str(p.relative_to(root)) for p in water],
                       layout="bids" if bids else "folder")
    return cohort


def pair_conditions(on: tuple, off: tuple) -> Scan:
    """One subject from the (transients, axis, meta) of an ON-only and an OFF-only file on one grid."""
    (x_on, ax_on, m_on), (x_off, ax_off, m_off) = on, off
    src = m_on.get("source")
    if not ax_on.compatible(ax_off) or abs(ax_on.centre_ppm - ax_off.centre_ppm) > 1e-6:
        raise InputError(src, f"ON and OFF files differ in their grid ({ax_on} vs {ax_off})")
    meta = {"source": src, "source_off": m_off.get("source"), "edit_order": "separate ON and OFF files"}
    for k in ("echo_time_s", "coils_combined"):
        if k in m_on:
            meta[k] = m_on[k]
    return Scan.from_on_off(x_on, x_off, ax_on, interleave=True, subject=m_on["subject"], site=m_on["site"], meta=meta)


def read_path(path: str | Path, edit_order: str | None = None) -> Cohort:
    """A dataset from a path: a challenge HDF5 file, one NIfTI-MRS file, or a folder (flat or BIDS)."""
    from mrsbench.data.nifti_mrs import read_nifti_mrs

    p = Path(path)
    if p.is_dir():
        return read_data_folder(p, edit_order=edit_order)
    if not p.exists():
        raise InputError(p, "no such dataset, file or folder (datasets: see `mrsbench list`)")
    name = p.name.lower()
    if name.endswith(H5_SUFFIXES):
        return read_challenge_h5(p)
    if name.endswith(NIFTI_SUFFIXES):
        s = read_nifti_mrs(p, edit_order=edit_order)
        check_field(s.axis, p)
        c = Cohort([s], name=_stem(p))
        c.meta.update(harmonisation={"resampled": [], "axis": s.axis.to_dict(), "method": "none (one file)"},
                      layout="file")
        return c
    raise InputError(p, "unknown layout: expected a folder of NIfTI-MRS files (.nii, .nii.gz), a BIDS tree or an "
                     "Edited-MRS challenge HDF5 file (.h5)")


def read_folder(folder: str | Path, expected_axis: SpectralAxis | None = None, edit_order: str | None = None):
    """Every NIfTI-MRS file in ``folder`` (and below it: BIDS trees) as a :class:`~mrsbench.core.scans.Cohort`
    (:func:`read_data_folder`), on ``expected_axis`` when given (scans on another grid
    are resampled onto it, :mod:`mrsbench.core.grid`)."""
    cohort = read_data_folder(folder, edit_order=edit_order)
    if expected_axis is not None:
        cohort.scans, cohort.meta["harmonisation"] = harmonise_scans(cohort.scans, expected_axis)
    return cohort
