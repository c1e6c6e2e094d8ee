"""The failure rule, scores against the noise-free truth and the subset-alone quality curve (shared work of a
cell, :mod:`mrsbench.harness.cell_work`)."""
from __future__ import annotations

import numpy as np

from mrsbench.core.scans import OFF, ON, Cohort
from mrsbench.core.parallel import ordered_pool_map
from mrsbench.processing import Processed
from mrsbench.harness.protocol import Preset

# subset-alone quality curve: real transients per condition (the Big GABA scan has 160; the grid)
N_GRID = (5, 10, 20, 40, 80, 160)
# failure rule (documented in the README): the ON-to-OFF correction of a processed scan beyond these is an
# alignment failure. After each condition is put at its median transient's frequency, ON and OFF of one scan
# differ by the drift between interleaved transients (< 0.1 Hz at Big GABA drift rates) plus estimation
# error (a few tenths of a Hz on 10-transient subsets here): 3 Hz (0.023 ppm) and 45 degrees are far outside both.
ALIGN_MAX_HZ = 3.0
ALIGN_MAX_RAD = np.deg2rad(45.0)


def processing_failed(p: Processed) -> bool:
    """A processed scan that must not be averaged in: non-finite averages, or an ON-to-OFF correction
    beyond ALIGN_MAX_HZ / ALIGN_MAX_RAD (the alignment left the plausible range)."""
    if not (np.all(np.isfinite(p.on)) and np.all(np.isfinite(p.off))):
        return True
    return bool(abs(p.info.get("on_to_off_hz", 0.0)) > ALIGN_MAX_HZ or abs(p.info.get("on_to_off_rad", 0.0)) > ALIGN_MAX_RAD)


def fit_failed(fits: dict) -> np.ndarray:
    """Per fit of a :func:`fit_block`: OFF fit not converged, metabolite line shape at a bound, or GABA+/tCr
    not finite or <= 0."""
    g = np.asarray(fits["gaba_cr"], float)
    return ~np.asarray(fits["converged"], bool) | np.asarray(fits["shape_at_bound"], bool) | ~np.isfinite(g) | (g <= 0)


def truth_quality(p: Processed, truth_real: np.ndarray) -> dict:
    """Challenge shape score and MSE of a processed DIFF against the noise-free truth DIFF (real, (N,))."""
    from mrsbench.metrics import quality as q
    d = p.spectra()["diff"].real
    return {"shape_score": q.shape_score(d, truth_real, p.axis), "mse": q.challenge_mse(d, truth_real, p.axis)}


def curve_grid(test: Cohort, pr: Preset) -> tuple:
    counts = [min(int(np.sum(s.edit == ON)), int(np.sum(s.edit == OFF))) for s in test.scans]
    top = min(min(counts), pr.full_count)
    return tuple(sorted({g for g in N_GRID if g < top} | {top}))


def _curve_work(sub, ref):
    """A subset processed and its quality against the full scan ``ref`` (module level: a worker process runs it)."""
    from mrsbench.processing import process
    from mrsbench.metrics.qc import quality_report
    ps = process(sub)
    return ps, quality_report(ps, ref, osprey=False)


def _curve_real(test: Cohort, pr: Preset, seed: int, full: list, progress: bool):
    """Subsets for the grid n the preset does not already draw (its own random stream, seed + 3)."""
    grid = curve_grid(test, pr)
    top = grid[-1]
    extra = [g for g in grid if g not in pr.n_values and g < top]
    rng = np.random.default_rng(seed + 3)
    jobs = [(i, n, r) for i in range(len(test.scans)) for n in extra for r in range(pr.n_subsets)]
    qual, procs = [], []

    def produce(k):
        i, n, _ = jobs[k]
        s = test.scans[i]
        on_idx, off_idx = np.flatnonzero(s.edit == ON), np.flatnonzero(s.edit == OFF)
        sel = np.sort(np.r_[rng.choice(on_idx, n, replace=False), rng.choice(off_idx, n, replace=False)])
        return _curve_work, (s.select(sel), full[i]), None

    def consume(k, res, _):
        procs.append(res[0])
        qual.append(res[1])
    ordered_pool_map(produce, consume, len(jobs), desc="shared: subset-alone curve" if progress else None,
                     processes=True)
    return dict(grid=grid, curve_jobs=jobs, curve_quality=qual,
                curve_failed=np.array([processing_failed(p) for p in procs], bool)), procs


def subset_curve(sw) -> dict:
    """The subset-alone scores at every grid n: {n: {"shape_score", "mse", "gaba_err" [, "shape_score_truth",
    "mse_truth"], "failed", "subject"}: arrays over (subject, repeat)}. n from the preset come from its own subsets, the
    largest n is the full scan itself (shape score 1, error 0 against itself), the rest from the curve jobs.
    gaba_err: 100 |GABA+/tCr - full| / full (%); a failed fit counts as failed there."""
    out = {}
    top = sw.grid[-1]
    jobs_n = np.array([n for _, n, _ in sw.jobs])
    cjobs_n = np.array([n for _, n, _ in sw.curve_jobs]) if sw.curve_jobs else np.zeros(0, int)
    full_g = sw.full_fits["gaba_cr"]
    full_bad = fit_failed(sw.full_fits)
    truth = sw.truth_diff is not None
    for g in sw.grid:
        if g == top:
            idx = np.arange(len(sw.full))
            q, tq = sw.full_quality, sw.full_truth_q
            gaba, subj = full_g, idx
            failed = np.zeros(len(idx), bool)   # the full scan is the reference itself
            rows = [(q[i], tq[i] if truth else None) for i in idx]
        else:
            src_jobs = g in set(jobs_n.tolist())
            idx = np.flatnonzero(jobs_n == g) if src_jobs else np.flatnonzero(cjobs_n == g)
            jobs = sw.jobs if src_jobs else sw.curve_jobs
            q = sw.subset_quality if src_jobs else sw.curve_quality
            tq = (sw.subset_truth_q if src_jobs else sw.curve_truth_q) if truth else None
            fits = sw.subset_fits if src_jobs else sw.curve_fits
            pf = sw.subset_failed if src_jobs else sw.curve_failed
            subj = np.array([jobs[k][0] for k in idx], int)
            gaba = np.asarray(fits["gaba_cr"])[idx]
            failed = pf[idx]
            gfail = failed | fit_failed({k: np.asarray(v)[idx] for k, v in fits.items()})
            rows = [(q[k], tq[k] if truth else None) for k in idx]
        d = {"shape_score": np.array([r[0]["shape_score"] for r in rows]), "mse": np.array([r[0]["mse"] for r in rows])}
        with np.errstate(divide="ignore", invalid="ignore"):
            err = 100 * np.abs(gaba - full_g[subj]) / full_g[subj]
        if g != top:
            err = np.where(gfail | full_bad[subj], np.nan, err)
        else:
            err = np.where(full_bad, np.nan, 0.0)
        d["gaba_err"] = err
        if truth:
            d["shape_score_truth"] = np.array([r[1]["shape_score"] for r in rows])
            d["mse_truth"] = np.array([r[1]["mse"] for r in rows])
        d["failed"] = np.asarray(failed, bool)
        d["subject"] = np.asarray(subj, int)
        out[g] = d
    return out
