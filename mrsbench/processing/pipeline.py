"""The processing pipeline: :func:`process` composes alignment, averaging, subtraction and referencing."""
from __future__ import annotations

import numpy as np

from ..data import OFF, ON, Scan
from ..errors import InputError
from .config import (Processed, ProcessingConfig)
from .alignment import align_condition, align_on_to_off, apply_shift, phasor
from .averaging import averaging_weights, transient_distances
from .referencing import cr_reference_shift, tcr_phase


def check_transients(scan: Scan) -> tuple[np.ndarray, dict]:
    """Documented fallbacks: all-zero transients are dropped (recorded); a condition left with fewer
    than 2 transients is an error. Unequal ON/OFF counts are allowed (each condition is averaged
    on its own) and recorded."""
    src = scan.meta.get("source") or f"subject {scan.subject}"
    zero = ~np.any(scan.fids != 0, axis=1)
    keep = ~zero
    for lab, name in ((ON, "edit-ON"), (OFF, "edit-OFF")):
        n = int(np.sum(keep & (scan.edit == lab)))
        if n < 2:
            raise InputError(src, f"only {n} usable {name} transient(s) (all-zero transients are dropped); "
                             "at least 2 per condition are needed")
    info = {"dropped_zero": np.flatnonzero(zero).tolist(), "n_on": int(np.sum(keep & (scan.edit == ON))),
            "n_off": int(np.sum(keep & (scan.edit == OFF)))}
    return keep, info


def process(scan: Scan, cfg: ProcessingConfig | None = None) -> Processed:
    """Align, weight, average, subtract and reference an edited scan."""
    cfg = cfg or ProcessingConfig()
    ax = scan.axis
    keep, info = check_transients(scan)
    T = scan.n_transients
    freq = np.zeros(T)
    phase = np.zeros(T)
    weights = np.zeros(T)
    rejected = np.zeros(T, bool)
    avg = {}
    for lab in (ON, OFF):
        idx = np.flatnonzero(keep & (scan.edit == lab))
        x = scan.fids[idx]
        f, p = align_condition(x, ax, cfg)
        al = x * phasor(ax, f, p)
        d = transient_distances(ax.to_spectrum(al)[:, ax.window(*cfg.align_ppm)])
        w, rej = averaging_weights(d, cfg.weighted, cfg.reject_outliers, cfg.outlier_z)
        freq[idx], phase[idx], weights[idx], rejected[idx] = f, p, w, rej
        avg[lab] = (w[:, None] * al).sum(0)
    on, off = avg[ON], avg[OFF]
    # referencing and phasing come from OFF alone and are applied to both conditions (they commute with
    # the ON-to-OFF alignment); the tails and L1 alignments use real parts, so they run on phased spectra
    if cfg.cr_reference:
        df = cr_reference_shift(off, ax)
        on, off = apply_shift(on, ax, df, 0.0), apply_shift(off, ax, df, 0.0)
        info["cr_shift_hz"] = df
    if cfg.phase_tcr:
        ph = tcr_phase(off, ax)
        on, off = on * np.exp(1j * ph), off * np.exp(1j * ph)
        info["tcr_phase_rad"] = ph
    if cfg.align_conditions != "none":
        f, p = align_on_to_off(on, off, ax, cfg.align_conditions)
        on = apply_shift(on, ax, f, p)
        info["on_to_off_hz"], info["on_to_off_rad"] = f, p
    return Processed(ax, on, off, freq, phase, weights, rejected, scan.edit.copy(), info)


def process_subset(scan: Scan, index, cfg: ProcessingConfig | None = None) -> Processed:
    """Process the transients ``index`` of ``scan``."""
    return process(scan.select(index), cfg)
