"""The processing pipeline: :func:`process` composes alignment, averaging, subtraction and referencing."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from mrsbench.core.scans import OFF, ON, Scan
from mrsbench.core.errors import InputError
from mrsbench.processing.config import Processed, ProcessingConfig
from mrsbench.processing.alignment import align_condition, align_on_to_off, apply_shift, phasor
from mrsbench.processing.averaging import averaging_weights, transient_distances
from mrsbench.processing.referencing import cr_reference_shift, tcr_phase


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


# process_many's memory of processed scans, by content: the physics baseline's prepare() processes the same
# conditioning subsets the shared stage has just processed (a paper cell: 580 of them, ~20 s of CPU).
_MEMO: OrderedDict = OrderedDict()
MEMO_SIZE = 2048   # processed scans kept, least recently used dropped (a Processed is ~70 KB at 2048 points)


def scan_key(scan: Scan, cfg: ProcessingConfig | None = None) -> str:
    """Content key of a scan's processing: its transients, edit labels and axis, and the configuration (what
    :func:`process` depends on; subject, site and metadata only name the scan in error messages)."""
    import hashlib
    h = hashlib.sha256()   # (2x faster than blake2b where the CPU has SHA instructions: 3 vs 6 ms per 5 MB)
    h.update(np.ascontiguousarray(scan.fids).tobytes())
    h.update(np.ascontiguousarray(scan.edit).tobytes())
    h.update(repr(sorted(scan.axis.to_dict().items())).encode())
    h.update(repr(cfg or ProcessingConfig()).encode())
    return h.hexdigest()[:40]


def remember(scan: Scan, processed: Processed, cfg: ProcessingConfig | None = None, key: str | None = None) -> None:
    """Keep ``processed`` = process(scan, cfg) for :func:`process_many` (the caller must not change it later);
    ``key``: its :func:`scan_key`, where already known."""
    key = key or scan_key(scan, cfg)
    _MEMO[key] = processed
    _MEMO.move_to_end(key)
    _trim()


def _trim() -> None:
    """Drop the least recently used scans beyond MEMO_SIZE."""
    while len(_MEMO) > MEMO_SIZE:
        _MEMO.popitem(last=False)


def process_many(scans: list, cfg: ProcessingConfig | None = None, keys: list | None = None) -> list:
    """:func:`process` of each scan, in order, on the scan pool (worker processes where available:
    :func:`mrsbench.core.parallel.ordered_pool_map`); the same results as one after the other. A scan processed before
    in this process (same content and configuration: :func:`remember`, or an earlier call) is not processed
    again. Returns copies (the caller may change them). ``keys``: the scans' :func:`scan_key`, where the caller
    has them. For generators that process many conditioning scans (e.g. in ``prepare``)."""
    import copy
    from mrsbench.core.parallel import ordered_pool_map
    keys = [scan_key(s, cfg) for s in scans] if keys is None else list(keys)
    todo = {}   # key -> index of its first scan (a scan given twice is processed once)
    for k, key in enumerate(keys):
        if key not in _MEMO and key not in todo:
            todo[key] = k
    order = list(todo.items())

    def consume(j, res, _):
        _MEMO[order[j][0]] = res
    ordered_pool_map(lambda j: (process, (scans[order[j][1]], cfg), None), consume, len(order), processes=True)
    out = []
    for key in keys:
        _MEMO.move_to_end(key)
        out.append(copy.deepcopy(_MEMO[key]))
    _trim()
    return out
