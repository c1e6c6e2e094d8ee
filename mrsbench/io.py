"""NIfTI-MRS read/write for edited single-voxel scans (through the ``nifti-mrs`` package).

Layout written (and expected on read): data ``(1, 1, 1, points, transients, 2)`` with the
5th dimension ``DIM_DYN`` (transients) and the 6th ``DIM_EDIT`` (conditions), its
``dim_6_header`` ``{"EditCondition": ["ON", "OFF"]}`` and an ``EditPulse`` entry per condition
(NIfTI-MRS standard v0.x, Clarke et al. MRM 2022). DIM_DYN may be absent (one transient per
condition is then refused: at least two per condition are needed), and DIM_EDIT/DIM_DYN may be
in any of the three higher dimensions. Samples go through ``nifti_mrs``'s own accessors, so the
FID convention is the one that package (and FSL-MRS) uses: ``NIFTI_MRS[...]`` returns the
conjugate of the stored data, and arrays passed to ``gen_nifti_mrs_hdr_ext`` are conjugated on write.
Together with :mod:`mrsbench.axis` this places NAA at 2.01 ppm for spec2nii-converted data.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ._files import atomic_path
from .axis import SpectralAxis
from .data import ON, OFF, Scan, validate_fids
from .errors import InputError

# default 1H SpecFreqChemShift in the NIfTI-MRS standard (definitions.json) is 4.65 ppm
NIFTI_DEFAULT_CENTRE_PPM = 4.65
# Editing pulse offsets of the Big GABA protocol (Mikkelsen et al. 2017): ON 1.9 ppm, OFF 7.46 ppm
EDIT_PULSE_PPM = {"ON": 1.9, "OFF": 7.46}


def _condition_labels(names, edit_pulse: dict | None, source: str) -> list[int]:
    """Map EditCondition entries to 1 (ON) / 0 (OFF)."""
    labels = []
    for name in names:
        key = str(name).strip().upper()
        if key in ("ON", "EDIT_ON", "EDIT-ON", "A_ON") or key.endswith("_ON"):
            labels.append(ON)
            continue
        if key in ("OFF", "EDIT_OFF", "EDIT-OFF") or key.endswith("_OFF"):
            labels.append(OFF)
            continue
        # keys into EditPulse: decide by the pulse frequency (GABA editing: ON near 1.9 ppm)
        pulse = (edit_pulse or {}).get(name) or {}
        off = pulse.get("PulseOffset") if isinstance(pulse, dict) else None
        if isinstance(off, (list, tuple)) and off:
            off = off[0]
        if isinstance(off, (int, float)):
            labels.append(ON if abs(off - 1.9) < 0.5 else OFF)
            continue
        raise InputError(source, f"cannot tell whether EditCondition {name!r} is edit-ON or edit-OFF "
                         "(expected 'ON'/'OFF' or an EditPulse entry with PulseOffset)")
    if sorted(labels) != [OFF, ON]:
        raise InputError(source, f"EditCondition {list(names)} does not name exactly one ON and one OFF condition")
    return labels


def _infer_on_index(a: np.ndarray, b: np.ndarray, axis: SpectralAxis) -> int | None:
    """Which of two conditions is edit-ON, from NAA at 2.01 ppm (partly inverted by the
    1.9 ppm editing pulse, so smaller in ON). Returns 0 or 1, or None when ambiguous."""
    win = axis.window(1.9, 2.1)
    pa = np.max(np.abs(axis.to_spectrum(a.mean(0))[win]))
    pb = np.max(np.abs(axis.to_spectrum(b.mean(0))[win]))
    if max(pa, pb) == 0 or abs(pa - pb) / max(pa, pb) < 0.05:
        return None
    return 0 if pa < pb else 1


def read_nifti_mrs(path: str | Path, expected_axis: SpectralAxis | None = None, subject: str | None = None,
                   site: str = "") -> Scan:
    """Read an edited NIfTI-MRS file into a :class:`~mrsbench.data.Scan`.

    Raises :class:`InputError` (message starts with the file name) for: a file that is not
    NIfTI-MRS, a non-1H nucleus, no DIM_EDIT dimension, more than one voxel or uncombined coils,
    a spectral width or field strength different from ``expected_axis``, NaN/Inf samples,
    fewer than two transients per condition, or non-complex data.
    """
    path = Path(path)
    src = str(path)
    if not path.exists():
        raise InputError(src, "file not found")
    try:
        from nifti_mrs.nifti_mrs import NIFTI_MRS, NotNIFTI_MRS
    except ImportError as e:  # pragma: no cover - dependency is required
        raise InputError(src, f"the nifti-mrs package is needed to read NIfTI-MRS ({e})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = NIFTI_MRS(str(path))
    except NotNIFTI_MRS as e:
        raise InputError(src, f"not NIfTI-MRS: {e}") from None
    except Exception as e:  # nibabel/fslpy errors on non-NIfTI files
        raise InputError(src, f"not NIfTI-MRS (cannot be read as NIfTI: {type(e).__name__}: {str(e)[:200]})") from None

    if img.image.dtype.kind != "c":
        raise InputError(src, f"wrong dtype {img.image.dtype}: NIfTI-MRS data must be complex")
    nucleus = img.nucleus[0]
    if nucleus != "1H":
        raise InputError(src, f"nucleus {nucleus}, but mrsbench handles 1H spectra only")
    shape = img.shape
    if any(int(s) != 1 for s in shape[:3]):
        raise InputError(src, f"spatial shape {tuple(shape[:3])}: only single-voxel data (1, 1, 1) is supported")
    tags = list(img.dim_tags)
    n_higher = len(shape) - 4
    tags = tags[:max(n_higher, 0)]
    if "DIM_EDIT" not in tags:
        raise InputError(src, f"no edit dimension (DIM_EDIT) among the dimension tags {tags or '[]'}; "
                         "an edited MEGA-PRESS scan needs ON and OFF on DIM_EDIT")
    for k, tag in enumerate(tags):
        if tag not in ("DIM_EDIT", "DIM_DYN") and shape[4 + k] > 1:
            raise InputError(src, f"dimension {tag} has size {shape[4 + k]}; combine it first "
                             "(only DIM_DYN transients and DIM_EDIT conditions are supported)")
    e_dim = 4 + tags.index("DIM_EDIT")
    if shape[e_dim] != 2:
        raise InputError(src, f"DIM_EDIT has {shape[e_dim]} conditions; MEGA-PRESS needs exactly 2 (ON and OFF)")

    try:
        data = np.asarray(img[:])  # nifti_mrs applies its conjugation convention here
    except Exception as e:  # truncated or corrupt image data (gzip EOF, short file)
        raise InputError(src, f"cannot read the image data (truncated or corrupt file?): {type(e).__name__}: "
                         f"{str(e)[:200]}") from None
    data = data.reshape(shape)[0, 0, 0]  # (points, *higher)
    # move to (points, dyn, edit)
    d_dim = 4 + tags.index("DIM_DYN") if "DIM_DYN" in tags else None
    order = [0] + ([d_dim - 3] if d_dim is not None else []) + [e_dim - 3]
    rest = [i for i in range(data.ndim) if i not in order]
    data = np.transpose(data, order + rest).reshape(data.shape[0], -1, 2)  # other dims have size 1

    sw = float(img.spectralwidth)
    f0 = float(img.spectrometer_frequency[0])
    centre = float(img.SpecFreqChemShift) if "SpecFreqChemShift" in img.hdr_ext else NIFTI_DEFAULT_CENTRE_PPM
    if not np.isfinite(sw) or sw <= 0:
        raise InputError(src, f"invalid dwell time (spectral width {sw} Hz)")
    axis = SpectralAxis(sw_hz=sw, f0_mhz=f0, n_points=data.shape[0], centre_ppm=centre)
    if expected_axis is not None:
        if not np.isclose(sw, expected_axis.sw_hz, rtol=1e-6):
            raise InputError(src, f"spectral width {sw:g} Hz differs from the cohort's {expected_axis.sw_hz:g} Hz")
        if not np.isclose(f0, expected_axis.f0_mhz, rtol=1e-3):
            raise InputError(src, f"field strength {f0 / 42.577:.2f} T ({f0:g} MHz) differs from the cohort's "
                             f"{expected_axis.f0_mhz / 42.577:.2f} T ({expected_axis.f0_mhz:g} MHz)")
        if data.shape[0] != expected_axis.n_points:
            raise InputError(src, f"{data.shape[0]} points, but the cohort has {expected_axis.n_points}")

    a = data[:, :, 0].T  # (dyn, points)
    b = data[:, :, 1].T
    validate_fids(np.concatenate([a, b]), src, min_transients=1)
    if a.shape[0] < 2:
        raise InputError(src, f"only {a.shape[0]} transient per condition; at least 2 are needed")

    hdr = img.hdr_ext
    edit_hdr = None
    k_edit = tags.index("DIM_EDIT")
    dim_hdr_key = f"dim_{5 + k_edit}_header"
    if dim_hdr_key in hdr:
        edit_hdr = hdr[dim_hdr_key]
    meta = {"source": src, "edit_order": None}
    if isinstance(edit_hdr, dict) and "EditCondition" in edit_hdr:
        cond = edit_hdr["EditCondition"]
        if isinstance(cond, dict):  # {"start":..., "increment":...} form is numeric: not usable
            cond = None
    else:
        cond = None
    if cond is not None:
        labels = _condition_labels(cond, hdr["EditPulse"] if "EditPulse" in hdr else None, src)
        on_idx = labels.index(ON)
        meta["edit_order"] = "EditCondition header"
    else:
        on_idx = _infer_on_index(a, b, axis)
        if on_idx is None:
            raise InputError(src, "no EditCondition header and the ON/OFF order cannot be told from the NAA "
                             "signal; add dim_N_header EditCondition ['ON', 'OFF'] to the file")
        meta["edit_order"] = "inferred from NAA 2.01 ppm (no EditCondition header)"
    on, off = (a, b) if on_idx == 0 else (b, a)
    if "EchoTime" in hdr:
        meta["echo_time_s"] = float(hdr["EchoTime"])
    mrsb = hdr["mrsbench"] if "mrsbench" in hdr else None
    if isinstance(mrsb, dict):
        subject = subject or mrsb.get("subject")
        site = site or mrsb.get("site", "")
    if subject is None:
        subject = path.name.split(".nii")[0]
    return Scan.from_on_off(on, off, axis, interleave=True, subject=str(subject), site=str(site), meta=meta)


def write_nifti_mrs(scan: Scan, path: str | Path, echo_time_s: float | None = 0.068) -> Path:
    """Write ``scan`` as NIfTI-MRS (complex128) atomically, receiver at 4.65 ppm; returns the path.

    Requires equal ON and OFF counts (they share DIM_DYN). The file holds the subject and site
    in a user-defined ``mrsbench`` header field.
    """
    from nifti_mrs.create_nmrs import gen_nifti_mrs_hdr_ext
    from nifti_mrs.hdr_ext import Hdr_Ext

    path = Path(path)
    on, off = scan.on, scan.off
    # written with the receiver at the ecosystem's 4.65 ppm (FSL-MRS, spec2nii and the NIfTI-MRS tools
    # assume it; formats.md): a scan referenced elsewhere (simgaba: 4.68 ppm, the Big GABA Philips
    # centre) is re-referenced, nu' = nu + (centre - 4.65) f0, so every peak stays at its true ppm
    shift_hz = (scan.axis.centre_ppm - NIFTI_DEFAULT_CENTRE_PPM) * scan.axis.f0_mhz
    if shift_hz:
        rot = np.exp(2j * np.pi * shift_hz * scan.axis.time)
        on, off = on * rot, off * rot
    if on.shape[0] != off.shape[0]:
        raise InputError(path, f"{on.shape[0]} ON vs {off.shape[0]} OFF transients: NIfTI-MRS DIM_DYN needs equal counts")
    data = np.stack([on.T, off.T], axis=-1)[None, None, None]  # (1,1,1,points,dyn,2)
    hdr = Hdr_Ext(scan.axis.f0_mhz, "1H", dimensions=6)
    hdr.set_dim_info(0, "DIM_DYN", info="transients")
    hdr.set_dim_info(1, "DIM_EDIT", info="MEGA edit condition", hdr={"EditCondition": ["ON", "OFF"]})
    hdr.set_standard_def("EditPulse", {"ON": {"PulseOffset": EDIT_PULSE_PPM["ON"]},
                                        "OFF": {"PulseOffset": EDIT_PULSE_PPM["OFF"]}})
    hdr.set_standard_def("SpecFreqChemShift", NIFTI_DEFAULT_CENTRE_PPM)
    if echo_time_s is not None:
        hdr.set_standard_def("EchoTime", float(echo_time_s))
    hdr.set_user_def("mrsbench", {"subject": scan.subject, "site": scan.site}, "mrsbench subject and site ids")
    img = gen_nifti_mrs_hdr_ext(np.ascontiguousarray(data.astype(np.complex128)), scan.axis.dwell_s, hdr)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name if path.name.endswith((".nii", ".nii.gz")) else path.name + ".nii.gz"
    path = path.with_name(name)
    with atomic_path(path, ".nii.gz" if name.endswith(".nii.gz") else ".nii") as tmp:
        img.save(tmp)
    return path


def read_folder(folder: str | Path, expected_axis: SpectralAxis | None = None):
    """Read every ``*.nii``/``*.nii.gz`` in ``folder`` into a :class:`~mrsbench.data.Cohort`.

    The first file fixes the spectral axis unless ``expected_axis`` is given. A
    ``participants.tsv`` or ``sites.csv`` is not required: site ids come from the files'
    ``mrsbench`` header or are left empty.
    """
    from .data import Cohort

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    files = sorted(p for p in folder.iterdir() if p.name.endswith((".nii", ".nii.gz")))
    if not files:
        raise InputError(folder, "no NIfTI-MRS files (*.nii, *.nii.gz) in this folder")
    scans = []
    axis = expected_axis
    for f in files:
        s = read_nifti_mrs(f, expected_axis=axis)
        axis = axis or s.axis
        scans.append(s)
    return Cohort(scans, name=folder.name)
