"""User-supplied MEGA-PRESS basis sets for simulating cohorts: FSL-MRS JSON folders or LCModel .BASIS files.

Layouts (``DIR``):
* FSL-MRS JSON: one folder per condition whose name says it (``edit_on``/``edit_off``, ``on``/``off``, ``ON``...),
  one ``NAME.json`` per component with ``basis_re``/``basis_im`` (the *conjugate* of the FID, FSL-MRS's
  convention: fsl_mrs/utils/mrs_io/fsl_io.py), ``basis_dwell`` (s), ``basis_centre`` (MHz); receiver at
  4.65 ppm (FSL-MRS ``PPM_SHIFT``).
* LCModel: two ``.BASIS`` files whose names say the condition (``*on*.BASIS``, ``*off*.BASIS``); points are
  spectra, read as FSL-MRS's readLCModelBasis does (roll by -ISHIFT, inverse FFT, conjugate), ``BADELT``,
  ``HZPPPM``; receiver at 4.65 ppm (LCModel's PPMCEN default).
Every FID is resampled in ppm onto the cohort's axis (:mod:`mrsbench.core.grid`).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.errors import InputError

RECEIVER_PPM = 4.65


def _cond(name: str) -> str | None:
    """'on'/'off' when a file or folder name says the condition (edit_on, ON, mega_off...)."""
    m = re.search(r"(?:^|[_\-.])(on|off)(?:[_\-.]|$)", name, re.I)
    return m.group(1).lower() if m else None


def _read_fsl_folder(d: Path) -> tuple[dict, SpectralAxis]:
    fids, axis = {}, None
    for p in sorted(d.glob("*.json")):
        try:
            b = json.loads(p.read_text())["basis"]
            fid = np.conj(np.asarray(b["basis_re"], float) + 1j * np.asarray(b["basis_im"], float))
            ax = SpectralAxis(sw_hz=1.0 / float(b["basis_dwell"]), f0_mhz=float(b["basis_centre"]), n_points=len(fid),
                              centre_ppm=RECEIVER_PPM)
        except (KeyError, ValueError, TypeError, json.JSONDecodeError) as e:
            raise InputError(p, f"not an FSL-MRS basis file ({type(e).__name__}: {str(e)[:100]})") from None
        fids[b.get("basis_name") or p.stem] = fid
        axis = axis or ax
    if not fids:
        raise InputError(d, "no FSL-MRS basis files (*.json) in this folder")
    return fids, axis


def _read_lcmodel(p: Path) -> tuple[dict, SpectralAxis]:
    header, data, in_header, done = [], [], False, False
    for line in p.read_text(errors="replace").splitlines():
        if line.find("$") > 0:
            in_header = True
        if in_header:
            header.append(line)
        elif done and line.strip():
            try:
                data += [float(v) for v in line.replace("D", "E").split()]
            except ValueError:
                raise InputError(p, f"unreadable data line {line[:40]!r}") from None
        if line.find("$END") > 0:
            in_header, done = False, True
    names = [m.group(1).strip() for h in header for m in [re.search(r"METABO\s*=\s*'([^']+)'", h)] if m]
    shifts = [int(m.group(1)) for h in header for m in [re.search(r"ISHIFT\s*=\s*([-0-9]+)", h)] if m]
    vals = {m.group(1).upper(): float(m.group(2)) for h in header
            for m in [re.search(r"\b(BADELT|HZPPPM|NDATAB)\s*=\s*([-0-9.eEdD+]+)", h)] if m}
    if not names or "BADELT" not in vals or "HZPPPM" not in vals:
        raise InputError(p, "not an LCModel .BASIS file (no METABO, BADELT or HZPPPM)")
    if vals["BADELT"] <= 0:
        raise InputError(p, "encrypted LCModel basis (negative BADELT): use a basis made for your sequence")
    z = np.asarray(data[0::2]) + 1j * np.asarray(data[1::2])
    if len(z) % len(names):
        raise InputError(p, f"{len(z)} points do not split into {len(names)} components")
    z = z.reshape(len(names), -1)
    shifts = shifts if len(shifts) == len(names) else [0] * len(names)
    fids = {n: np.conj(np.fft.ifft(np.roll(s, -sh))) for n, sh, s in zip(names, shifts, z)}
    ax = SpectralAxis(sw_hz=1.0 / vals["BADELT"], f0_mhz=vals["HZPPPM"], n_points=z.shape[1], centre_ppm=RECEIVER_PPM)
    return fids, ax


def read_external_basis(path: str | Path) -> tuple[dict, dict, SpectralAxis]:
    """(on {name: FID}, off {name: FID}, axis of the files) from a user basis folder."""
    d = Path(path)
    if not d.is_dir():
        raise InputError(d, "basis: not a folder (expected FSL-MRS ON/OFF folders or two LCModel .BASIS files)")
    sub = {(_cond(p.name) or ""): p for p in d.iterdir() if p.is_dir() and _cond(p.name)}
    files = {(_cond(p.stem) or ""): p for p in d.iterdir() if p.suffix.upper() == ".BASIS" and _cond(p.stem)}
    if {"on", "off"} <= set(sub):
        (on, a1), (off, a2) = _read_fsl_folder(sub["on"]), _read_fsl_folder(sub["off"])
    elif {"on", "off"} <= set(files):
        (on, a1), (off, a2) = _read_lcmodel(files["on"]), _read_lcmodel(files["off"])
    else:
        raise InputError(d, "basis: expected FSL-MRS folders for ON and OFF (edit_on/, edit_off/) or two LCModel "
                         "files (*on*.BASIS, *off*.BASIS)")
    if not a1.compatible(a2):
        raise InputError(d, f"basis: ON and OFF are on different grids ({a1} vs {a2})")
    return on, off, a1


def basis_hash(path: str | Path) -> str:
    """Content hash of a basis folder's files (for the dataset identity)."""
    h = hashlib.sha256()
    for p in sorted(Path(path).rglob("*")):
        if p.is_file() and (p.suffix == ".json" or p.suffix.upper() == ".BASIS"):
            h.update(str(p.relative_to(path)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def external_bases(path: str | Path, names: list, axis: SpectralAxis) -> tuple[list, np.ndarray, np.ndarray, list]:
    """The cohort simulator's basis from a user basis: (names found, ON (L, N), OFF (L, N) on ``axis``,
    names missing). Components absent from one condition are zero there (e.g. MM3co outside ON)."""
    from mrsbench.core.grid import resample_fids
    on, off, src = read_external_basis(path)
    found = [n for n in names if n in on or n in off]
    missing = [n for n in names if n not in found]
    if "GABA" not in found or not any(n in found for n in ("Cr", "PCr")) or "NAA" not in found:
        raise InputError(path, f"basis: needs at least NAA, Cr and GABA (found {', '.join(sorted(set(on) | set(off)))})")
    zero = np.zeros(src.n_points, complex)
    raw_on = np.stack([on.get(n, zero) for n in found])
    raw_off = np.stack([off.get(n, zero) for n in found])
    return found, resample_fids(raw_on, src, axis), resample_fids(raw_off, src, axis), missing
