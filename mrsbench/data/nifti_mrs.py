"""NIfTI-MRS read/write for edited single-voxel scans (through the ``nifti-mrs`` package).

Layout written (and expected on read): data ``(1, 1, 1, points, transients, 2)`` with the
5th dimension ``DIM_DYN`` (transients) and the 6th ``DIM_EDIT`` (conditions), its
``dim_6_header`` ``{"EditCondition": ["ON", "OFF"]}`` and an ``EditPulse`` entry per condition
(NIfTI-MRS standard v0.x, Clarke et al. MRM 2022). DIM_DYN may be absent (one transient per
condition is then refused: at least two per condition are needed), and DIM_EDIT/DIM_DYN may be
in any of the three higher dimensions. Samples go through ``nifti_mrs``'s own accessors, so the
FID convention is the one that package (and FSL-MRS) uses: ``NIFTI_MRS[...]`` returns the
conjugate of the stored data, and arrays passed to ``gen_nifti_mrs_hdr_ext`` are conjugated on write.
Together with :mod:`mrsbench.core.axis` this places NAA at 2.01 ppm for spec2nii-converted data.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from mrsbench.core.files import atomic_path
from mrsbench.core.axis import SpectralAxis
from mrsbench.core.scans import OFF, ON, Scan, check_complex, validate_fids
from mrsbench.core.errors import InputError

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


def _above_baseline(spec_abs: np.ndarray, axis: SpectralAxis, k: int, ppm: float) -> float:
    """|spectrum| at point k above the median of its flanks (0.15-0.4 ppm either side of ``ppm``): a residual
    water tail or a baseline common to both conditions cancels."""
    flank = axis.window(ppm - 0.4, ppm - 0.15) | axis.window(ppm + 0.15, ppm + 0.4)
    return float(spec_abs[k] - (np.median(spec_abs[flank]) if flank.any() else 0.0))


def _infer_on_index(a: np.ndarray, b: np.ndarray, axis: SpectralAxis) -> int | None:
    """Which of two conditions is edit-ON, from NAA at 2.01 ppm (partly inverted by the 1.9 ppm editing
    pulse, so smaller in ON; Mescher et al. 1998), relative to Cr at 3.03 ppm (not edited): 0 or 1, or None
    when ambiguous (relative difference of the NAA/Cr ratios under 5%).

    Works on any axis the reader accepts (field, spectral width, points): windows in ppm, each peak above its
    local baseline (a residual-water tail cancels), searched within +-0.15 ppm of its nominal shift (a frequency
    offset of the whole scan up to ~19 Hz at 3 T), and both conditions read at the same point (the tallest of
    their sum)."""
    sa = np.abs(axis.to_spectrum(a.mean(0)))
    sb = np.abs(axis.to_spectrum(b.mean(0)))
    h = {}
    for ppm in (2.01, 3.03):
        idx = np.flatnonzero(axis.window(ppm - 0.15, ppm + 0.15))
        if not len(idx):
            return None
        k = int(idx[np.argmax((sa + sb)[idx])])
        h[ppm] = [_above_baseline(sp, axis, k, ppm) for sp in (sa, sb)]
    (naa_a, naa_b), (cr_a, cr_b) = h[2.01], h[3.03]
    if min(cr_a, cr_b) > 0.1 * max(naa_a, naa_b, 0.0):   # Cr seen in both: the ratio (scan-scale free)
        ra, rb = naa_a / cr_a, naa_b / cr_b
    else:                                               # no usable Cr peak: NAA heights alone
        ra, rb = naa_a, naa_b
    if not (np.isfinite(ra) and np.isfinite(rb)) or max(abs(ra), abs(rb)) == 0:
        return None
    if abs(ra - rb) / max(abs(ra), abs(rb)) < 0.05:
        return None
    return 0 if ra < rb else 1


def _combine_coils(data: np.ndarray, c_dim: int, src: str) -> np.ndarray:
    """Signal-weighted coil combination (Hall et al. NeuroImage 2014; Osprey op_addrcvrs, FSL-MRS
    ``combine``'s default without a covariance): each coil's FIDs are phased by and weighted with the
    first point of its mean FID over all transients, divided by its noise variance (last 10% of points).
    ``data`` (points, ...), coil axis ``c_dim``; returns data without that axis."""
    x = np.moveaxis(data, c_dim, -1)                      # (points, ..., coils)
    mean = x.reshape(x.shape[0], -1, x.shape[-1]).mean(1)  # (points, coils)
    tail = x[-max(8, x.shape[0] // 10):].reshape(-1, x.shape[-1])
    var = np.var(tail.real, 0) + np.var(tail.imag, 0)
    s0 = mean[0]
    if not np.all(np.isfinite(s0)) or np.all(np.abs(s0) == 0) or np.any(var <= 0):
        raise InputError(src, f"coil dimension (DIM_COIL, {x.shape[-1]} coils) cannot be combined: no signal at the "
                         "first point or a coil without noise; combine the coils before converting")
    w = np.conj(s0) / var
    return (x * w).sum(-1) / np.sum(np.abs(w))


def read_nifti_mrs(path: str | Path, expected_axis: SpectralAxis | None = None, subject: str | None = None,
                   site: str = "", edit_order: str | None = None, condition: str | None = None) -> Scan:
    """Read an edited NIfTI-MRS file into a :class:`~mrsbench.core.scans.Scan`.

    Layouts: ON/OFF on DIM_EDIT (conditions from its EditCondition header, else told from NAA); no DIM_EDIT
    but ON/OFF interleaved on DIM_DYN, as spec2nii writes many vendors' MEGA data (``edit_order``
    ``"ON,OFF"`` or ``"OFF,ON"`` for the first two transients; without it the order is told from NAA at
    2.01 ppm, which the 1.9 ppm pulse partly inverts, and an ambiguous case is an error); uncombined coils
    on DIM_COIL (signal-weighted combination, :func:`_combine_coils`). ``condition`` ``"ON"``/``"OFF"``
    reads a file holding one condition only and returns (transients (T, N), axis, meta) instead of a
    :class:`Scan` (pair it with the other condition's file: :func:`mrsbench.data.readers.pair_conditions`).

    Raises :class:`InputError` (message starts with the file name) for: a file that is not
    NIfTI-MRS, a non-1H nucleus, no editing information, more than one voxel, a spectral width or field
    strength different from ``expected_axis``, NaN/Inf samples, fewer than two transients per
    condition, or non-complex data.
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
    for k, tag in enumerate(tags):
        if tag not in ("DIM_EDIT", "DIM_DYN", "DIM_COIL") and shape[4 + k] > 1:
            raise InputError(src, f"dimension {tag} has size {shape[4 + k]}; combine it first "
                             "(only DIM_DYN transients, DIM_EDIT conditions and DIM_COIL coils are supported)")
    if "DIM_EDIT" in tags and shape[4 + tags.index("DIM_EDIT")] != 2:
        raise InputError(src, f"DIM_EDIT has {shape[4 + tags.index('DIM_EDIT')]} conditions; MEGA-PRESS needs "
                         "exactly 2 (ON and OFF)")
    try:
        data = np.asarray(img[:])  # nifti_mrs applies its conjugation convention here
    except Exception as e:  # truncated or corrupt image data (gzip EOF, short file)
        raise InputError(src, f"cannot read the image data (truncated or corrupt file?): {type(e).__name__}: "
                         f"{str(e)[:200]}") from None
    data = data.reshape(shape)[0, 0, 0]  # (points, *higher)
    check_complex(data, src)
    meta = {"source": src, "edit_order": None}
    if "DIM_COIL" in tags and shape[4 + tags.index("DIM_COIL")] > 1:
        c = 1 + tags.index("DIM_COIL")
        data = _combine_coils(data, c, src)
        meta["coils_combined"] = int(shape[4 + tags.index("DIM_COIL")])
        tags = [t for t in tags if t != "DIM_COIL"]
    elif "DIM_COIL" in tags:
        data = data.reshape(data.shape[:1 + tags.index("DIM_COIL")] + data.shape[2 + tags.index("DIM_COIL"):])
        tags = [t for t in tags if t != "DIM_COIL"]
    # move to (points, dyn, edit): a missing dimension becomes size 1
    d_ax = 1 + tags.index("DIM_DYN") if "DIM_DYN" in tags else None
    e_ax = 1 + tags.index("DIM_EDIT") if "DIM_EDIT" in tags else None
    x = data.reshape(data.shape + (1,) * (3 - data.ndim)) if data.ndim < 3 else data
    axes = [0] + [a for a in (d_ax, e_ax) if a is not None]
    rest = [i for i in range(x.ndim) if i not in axes]
    x = np.transpose(x, axes + rest).reshape(x.shape[0], -1 if d_ax is not None else 1, 2 if e_ax is not None else 1)

    sw = float(img.spectralwidth)
    f0 = float(img.spectrometer_frequency[0])
    centre = float(img.SpecFreqChemShift) if "SpecFreqChemShift" in img.hdr_ext else NIFTI_DEFAULT_CENTRE_PPM
    if not np.isfinite(sw) or sw <= 0:
        raise InputError(src, f"invalid dwell time (spectral width {sw} Hz)")
    axis = SpectralAxis(sw_hz=sw, f0_mhz=f0, n_points=x.shape[0], centre_ppm=centre)
    if expected_axis is not None:
        if not np.isclose(sw, expected_axis.sw_hz, rtol=1e-6):
            raise InputError(src, f"spectral width {sw:g} Hz differs from the cohort's {expected_axis.sw_hz:g} Hz")
        if not np.isclose(f0, expected_axis.f0_mhz, rtol=1e-3):
            raise InputError(src, f"field strength {f0 / 42.577:.2f} T ({f0:g} MHz) differs from the cohort's "
                             f"{expected_axis.f0_mhz / 42.577:.2f} T ({expected_axis.f0_mhz:g} MHz)")
        if x.shape[0] != expected_axis.n_points:
            raise InputError(src, f"{x.shape[0]} points, but the cohort has {expected_axis.n_points}")
    hdr = img.hdr_ext
    if "EchoTime" in hdr:
        meta["echo_time_s"] = float(hdr["EchoTime"])
    if "RepetitionTime" in hdr:   # NIfTI-MRS standard-defined, in s: the time between transients
        meta["repetition_time_s"] = float(hdr["RepetitionTime"])
    mrsb = hdr["mrsbench"] if "mrsbench" in hdr else None
    if isinstance(mrsb, dict):
        subject = subject or mrsb.get("subject")
        site = site or mrsb.get("site", "")
    if subject is None:
        subject = path.name.split(".nii")[0]

    if condition is not None:  # one condition per file: every transient on DIM_DYN
        if e_ax is not None:
            raise InputError(src, f"condition {condition} was given but the file holds both on DIM_EDIT")
        t = x[:, :, 0].T
        validate_fids(t, src, min_transients=2)
        meta.update(edit_order=f"{condition.upper()} (one condition per file)", subject=str(subject), site=str(site))
        return t, axis, meta

    if e_ax is None:  # interleaved on DIM_DYN (spec2nii without an edit dimension)
        if d_ax is None or x.shape[1] < 4 or x.shape[1] % 2:
            raise InputError(src, f"no editing information: no DIM_EDIT, and {x.shape[1]} transient(s) on DIM_DYN "
                             "cannot be ON/OFF interleaved pairs (give ON and OFF files, or a DIM_EDIT dimension)")
        a, b = x[:, 0::2, 0].T, x[:, 1::2, 0].T
        cond = None
    else:
        a, b = x[:, :, 0].T, x[:, :, 1].T  # (dyn, points)
        edit_hdr = hdr[f"dim_{5 + tags.index('DIM_EDIT')}_header"] if f"dim_{5 + tags.index('DIM_EDIT')}_header" in hdr \
            else None
        cond = edit_hdr.get("EditCondition") if isinstance(edit_hdr, dict) else None
        if isinstance(cond, dict):  # {"start":..., "increment":...} form is numeric: not usable
            cond = None
    validate_fids(np.concatenate([a, b]), src, min_transients=1)
    if a.shape[0] < 2:
        raise InputError(src, f"only {a.shape[0]} transient per condition; at least 2 are needed")
    if cond is not None:
        labels = _condition_labels(cond, hdr["EditPulse"] if "EditPulse" in hdr else None, src)
        on_idx = labels.index(ON)
        meta["edit_order"] = "EditCondition header"
    elif edit_order is not None:
        order = [o.strip().upper() for o in str(edit_order).split(",")]
        if sorted(order) != ["OFF", "ON"]:
            raise InputError(src, f"edit order {edit_order!r}: expected 'ON,OFF' or 'OFF,ON'")
        on_idx = order.index("ON")
        meta["edit_order"] = f"{','.join(order)} (given)" + (" interleaved on DIM_DYN" if e_ax is None else "")
    else:
        on_idx = _infer_on_index(a, b, axis)
        if on_idx is None:
            raise InputError(src, "the ON/OFF order cannot be told from the NAA signal and the file does not say it; "
                             "give it with --edit-order ON,OFF or OFF,ON")
        meta["edit_order"] = ("ON,OFF" if on_idx == 0 else "OFF,ON") + " inferred from NAA 2.01 ppm" + \
            (" (interleaved on DIM_DYN)" if e_ax is None else " (no EditCondition header)")
    on, off = (a, b) if on_idx == 0 else (b, a)
    return Scan.from_on_off(on, off, axis, interleave=True, subject=str(subject), site=str(site), meta=meta)


def write_nifti_mrs(scan: Scan, path: str | Path, echo_time_s: float | None = 0.068,
                    repetition_time_s: float | None = None) -> Path:
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
    tr = repetition_time_s if repetition_time_s is not None else scan.meta.get("repetition_time_s")
    if tr is not None:
        hdr.set_standard_def("RepetitionTime", float(tr))
    hdr.set_user_def("mrsbench", {"subject": scan.subject, "site": scan.site}, "mrsbench subject and site ids")
    img = gen_nifti_mrs_hdr_ext(np.ascontiguousarray(data.astype(np.complex128)), scan.axis.dwell_s, hdr)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name if path.name.endswith((".nii", ".nii.gz")) else path.name + ".nii.gz"
    path = path.with_name(name)
    with atomic_path(path, ".nii.gz" if name.endswith(".nii.gz") else ".nii") as tmp:
        img.save(tmp)
    return path
