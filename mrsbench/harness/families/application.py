"""Application: is a short scan plus synthetic transients worth more than the short scan alone?

Each short subset (n real transients per condition) of a test subject is filled up to the preset's full
count with transients the generator draws conditioned on it, processed and fitted, and scored next to the
subset alone and the full scan. The headline is **effective transients**: the number of real transients
whose subset alone scores what the augmented scan scores, read off the subset-alone quality curve (shared
work: every test subject, a fixed grid of n, several random subsets each; :mod:`mrsbench.metrics.effective`).

Metrics per preset n (keys ``application.n{n}.``):
- ``{full,subset,augmented}.{snr,linewidth_hz,shape_score,mse}``: challenge measures (DIFF) against the full
  scan; on simulated data also ``{...}.{shape_score,mse}_truth`` against the noise-free truth DIFF;
- ``effective_n``, ``gain`` (= effective_n / n), ``effective_n_clipped`` (-1/0/+1: below/inside/above the
  grid) from the shape score; ``effective_n_gaba``, ``gain_gaba`` from the GABA+/tCr error against the full
  scan; on simulated data ``effective_n_truth`` from the shape score against the truth;
- ``snr_inflation``: augmented challenge SNR / full-scan SNR of the same subject (1 = what 160 real give);
and ``application.break_even_n`` (from the shape-score gain; when augmenting helps at every n, the largest n
tested with ``application.break_even_censored`` = 1: break-even lies beyond it),
``application.noise_ratio`` (mean synthetic / mean real transient noise sd, 9.8-10.8 ppm), ``application.noise_free``
(1 when the noise ratio is below 0.1: SNR measures then divide by round-off), ``application.snr_inflation``,
``application.failure_rate.{subset,augmented}``, ``application.curve.n{g}.{shape_score,gaba_err}`` and
``application.copied_noise``: the share of a perturbation of the short scan's noise that reappears in the fill's
average, at the preset's middle n (0: independent of the short scan, as real transients are; 1: a copy of it;
:mod:`mrsbench.metrics.copied`).

Failure rule: a scan whose processing failed (:func:`~mrsbench.harness.subset_curve.processing_failed`) is counted in the
failure rate and left out of every mean; for GABA+ also a failed fit (:func:`~mrsbench.harness.subset_curve.fit_failed`).
When every augmented scan at an n failed, its effective n is the grid's smallest n (flag -1): a scan that
cannot be processed is worth no more than the shortest scan measured.
"""
from __future__ import annotations

import numpy as np

from mrsbench.core.scans import OFF, ON, Scan
from mrsbench.metrics.copied import noise_transfer
from mrsbench.metrics.effective import break_even, invert_curve
from mrsbench.harness.subset_curve import fit_failed, processing_failed, subset_curve, truth_quality
from mrsbench.core.parallel import ordered_pool_map
from mrsbench.harness.cell_work import NOISE_FREE_RATIO, NOISE_PPM, fit_block
from mrsbench.harness.families.base import Context, FamilyResult

KEYS = ("snr", "linewidth_hz", "shape_score", "mse")
# conditioning scans announced to the generator's optional prepare() at a time (bounded memory: at most this
# many subsets alive at once)
PREPARE_BATCH = 64


def subject_sums(subj, values, ok, n_subjects: int) -> tuple[np.ndarray, np.ndarray]:
    """Per subject: the sum and count of the finite ``values`` where ``ok`` (jobs of subject ``subj``).
    Their ratio over any set of subjects is the mean the harness reports over those subjects' jobs."""
    v = np.asarray(values, float)
    use = np.asarray(ok, bool) & np.isfinite(v)
    subj = np.asarray(subj, int)
    return (np.bincount(subj[use], v[use], minlength=n_subjects),
            np.bincount(subj[use], minlength=n_subjects).astype(float))


def _mean(x, ok=None) -> float:
    x = np.asarray(x, float)
    if ok is not None:
        x = x[np.asarray(ok, bool)]
    x = x[np.isfinite(x)]
    return float(np.mean(x)) if len(x) else float("nan")


def _augmented_work(aug: Scan, ref, truth_diff, n_real: int, synthetic: bool):
    """An augmented scan processed, its quality against the full scan ``ref`` and the truth, and the noise sd
    of its synthetic transients (rows from ``n_real`` on; NaN without any)."""
    from mrsbench.processing import process
    from mrsbench.metrics.qc import quality_report
    ax = aug.axis
    pa = process(aug)
    noise = np.median(ax.to_spectrum(aug.fids[n_real:])[:, ax.window(*NOISE_PPM)].real.std(1)) if synthetic else np.nan
    tq = truth_quality(pa, truth_diff) if truth_diff is not None else None
    return pa, quality_report(pa, ref, osprey=False), tq, noise


def copied_noise_probe(ctx: Context, fill_means: dict) -> tuple[dict, dict]:
    """``application.copied_noise`` at the preset's middle n (:mod:`mrsbench.metrics.copied`): per test subject
    its first subset at that n, perturbed by an independent noise realisation of its own level and sampled again
    with the job's seed. ``fill_means``: job -> (2, N) average ON and OFF of the fill the generator gave for the
    unperturbed subset. Returns the metric and the per-subject sums (numerators as ``.sum``, denominators as
    ``.count``: their ratio over any subjects is the metric over those subjects)."""
    sw, test, pr = ctx.shared, ctx.test, ctx.pr
    ax, S, N = test.axis, len(test.scans), test.axis.n_points
    num, den = np.zeros(S), np.zeros(S)
    probes = list(fill_means)
    for lo in range(0, len(probes), PREPARE_BATCH):
        batch = []
        for k in probes[lo:lo + PREPARE_BATCH]:
            i, n, _ = sw.jobs[k]
            sub = test.scans[i].select(sw.selections[k])
            rng = np.random.default_rng(ctx.seed + 37_000 + k)
            sigma = sw.subset_noise[k] / np.sqrt(N)   # spectral sd (unnormalised FFT) -> per-part FID sd
            d = sigma * (rng.standard_normal(sub.fids.shape) + 1j * rng.standard_normal(sub.fids.shape))
            batch.append((k, sub.edit, d, Scan(sub.fids + d, sub.edit, ax, sub.subject, sub.site, dict(sub.meta))))
        ctx.prepare([c for _, _, _, c in batch])
        for k, edit, d, cond in batch:
            i = sw.jobs[k][0]
            syn = ctx.sample(max(pr.full_count - sw.jobs[k][1], 0), cond, ctx.seed + 1000 + k)
            moved = np.stack([syn.fids[syn.edit == lab].mean(0) for lab in (ON, OFF)]) - fill_means[k]
            pert = np.stack([d[edit == lab].mean(0) for lab in (ON, OFF)])
            a, b = noise_transfer(moved, pert, ax)
            num[i] += a
            den[i] += b
    out = {"application.copied_noise": float(num.sum() / den.sum()) if den.sum() > 0 else float("nan")}
    return out, {"application.copied_noise.sum": num, "application.copied_noise.count": den}


def run(ctx: Context) -> FamilyResult:
    sw, test, pr, seed = ctx.shared, ctx.test, ctx.pr, ctx.seed
    ax = test.axis
    truth = sw.truth_diff
    J = len(sw.jobs)
    aug_q, aug_tq, augmented = [None] * J, [None] * J, [None] * J
    noise_syn = np.full(J, np.nan)

    batch: dict = {}   # job -> (conditioning subset, transients to fill) of the batch announced last
    probe_n = pr.n_values[(len(pr.n_values) - 1) // 2]   # the board's middle n
    fill_means: dict = {}   # job -> (2, N) average ON, OFF of its fill (the copied-noise probe's jobs)

    def produce(k):   # in order, in this thread: the generator is called sequentially with fixed seeds
        if k % PREPARE_BATCH == 0:   # select and announce the next batch of conditioning scans (bounded memory)
            for j in range(k, min(k + PREPARE_BATCH, J)):
                batch[j] = (test.scans[sw.jobs[j][0]].select(sw.selections[j]), max(pr.full_count - sw.jobs[j][1], 0))
            ctx.prepare([c for c, fill in batch.values() if fill])
        i, n, r = sw.jobs[k]
        s = test.scans[i]
        sub, fill = batch.pop(k)
        syn = ctx.sample(fill, sub, seed + 1000 + k) if fill else None
        if syn is not None and n == probe_n and sw.jobs[k][2] == 0:   # the copied-noise probe's jobs
            fill_means[k] = np.stack([syn.fids[syn.edit == lab].mean(0) for lab in (ON, OFF)])
        aug = sub if syn is None else Scan(np.concatenate([sub.fids, syn.fids]), np.concatenate([sub.edit, syn.edit]),
                                           ax, s.subject, s.site)
        return _augmented_work, (aug, sw.full[i], None if truth is None else truth[i], sub.n_transients,
                                 syn is not None), None

    def consume(k, res, _):
        augmented[k], aug_q[k], aug_tq[k], noise_syn[k] = res

    # threads, not worker processes: each augmented scan (full length, ~10 MB) would be pickled to a worker and the
    # stage is CPU-bound already (the generator samples here while the pool processes; measured, pca paper cell:
    # 57 s with threads, 72 s with 2 worker processes)
    ordered_pool_map(produce, consume, J, desc="application: augmented" if ctx.progress else None)
    aug_fits = fit_block(augmented, ax)

    subj = np.array([i for i, _, _ in sw.jobs])
    ns = np.array([n for _, n, _ in sw.jobs])
    sub_fail = sw.subset_failed
    aug_fail = np.array([processing_failed(p) for p in augmented])
    full_gaba = sw.full_fits["gaba_cr"][subj]
    aug_gaba_fail = aug_fail | fit_failed(aug_fits)
    out: dict = {}
    out["application.failure_rate.subset"] = float(np.mean(sub_fail))
    out["application.failure_rate.augmented"] = float(np.mean(aug_fail))
    curve = subset_curve(sw)
    grid = sorted(curve)
    mean_curve = {key: [_mean(curve[g][key], ~curve[g]["failed"]) for g in grid]
                  for key in curve[grid[0]] if key not in ("failed", "subject")}
    for g, v in zip(grid, mean_curve["shape_score"]):
        out[f"application.curve.n{g}.shape_score"] = v
    for g, v in zip(grid, mean_curve["gaba_err"]):
        out[f"application.curve.n{g}.gaba_err"] = v
    S = len(test.scans)
    st: dict = {}   # per-subject additive statistics (see FamilyResult.subjects)
    for key, name in (("shape_score", "curve_shape"), ("gaba_err", "curve_gaba_err")):
        sums = [subject_sums(curve[g]["subject"], curve[g][key], ~curve[g]["failed"], S) for g in grid]
        st[f"application.{name}.sum"] = np.stack([a for a, _ in sums], 1)
        st[f"application.{name}.count"] = np.stack([c for _, c in sums], 1)
    for name in ("aug_shape", "aug_gaba_err", "snr_ratio"):
        st[f"application.{name}.sum"] = np.zeros((S, len(pr.n_values)))
        st[f"application.{name}.count"] = np.zeros((S, len(pr.n_values)))
    gains = []
    for n in pr.n_values:
        m = ns == n
        for kind, qs, fail in (("full", [sw.full_quality[i] for i in subj[m]], np.zeros(m.sum(), bool)),
                               ("subset", [sw.subset_quality[k] for k in np.flatnonzero(m)], sub_fail[m]),
                               ("augmented", [aug_q[k] for k in np.flatnonzero(m)], aug_fail[m])):
            for key in KEYS:
                out[f"application.n{n}.{kind}.{key}"] = _mean([q[key] for q in qs], ~fail)
        if truth is not None:
            for kind, tqs, fail in (("full", [sw.full_truth_q[i] for i in subj[m]], np.zeros(m.sum(), bool)),
                                    ("subset", [sw.subset_truth_q[k] for k in np.flatnonzero(m)], sub_fail[m]),
                                    ("augmented", [aug_tq[k] for k in np.flatnonzero(m)], aug_fail[m])):
                for key in ("shape_score", "mse"):
                    out[f"application.n{n}.{kind}.{key}_truth"] = _mean([q[key] for q in tqs], ~fail)
        # effective transients from the shape score against the full scan
        y = out[f"application.n{n}.augmented.shape_score"]
        eff, clip = invert_curve(grid, mean_curve["shape_score"], y)
        if not np.isfinite(y) and aug_fail[m].all():
            eff, clip = float(grid[0]), -1   # no augmented scan could be processed: worth no more than the least n
        out[f"application.n{n}.effective_n"] = eff
        out[f"application.n{n}.gain"] = eff / n
        out[f"application.n{n}.effective_n_clipped"] = float(clip)
        gains.append(eff / n)
        j = list(pr.n_values).index(n)
        aug_shape = np.array([aug_q[k]["shape_score"] for k in np.flatnonzero(m)])
        st["application.aug_shape.sum"][:, j], st["application.aug_shape.count"][:, j] = \
            subject_sums(subj[m], aug_shape, ~aug_fail[m], S)
        if truth is not None:
            eff_t, _ = invert_curve(grid, mean_curve["shape_score_truth"], out[f"application.n{n}.augmented.shape_score_truth"])
            out[f"application.n{n}.effective_n_truth"] = eff_t
        # ... and from the GABA+/tCr error against the full scan (a curve that falls with n)
        ok = m & ~aug_gaba_fail
        with np.errstate(divide="ignore", invalid="ignore"):
            err = 100 * np.abs(aug_fits["gaba_cr"][ok] - full_gaba[ok]) / full_gaba[ok]
        eg, _ = invert_curve(grid, mean_curve["gaba_err"], _mean(err), increasing=False)
        if not ok.any():
            eg = float(grid[0])
        out[f"application.n{n}.augmented.gaba_err"] = _mean(err)
        st["application.aug_gaba_err.sum"][:, j], st["application.aug_gaba_err.count"][:, j] = \
            subject_sums(subj[ok], err, np.ones(len(err), bool), S)
        out[f"application.n{n}.effective_n_gaba"] = eg
        out[f"application.n{n}.gain_gaba"] = eg / n
        # honest SNR: what the augmented scan claims relative to the 160 real transients of the same subject
        full_snr = np.array([sw.full_quality[i]["snr"] for i in subj[m]])
        aug_snr = np.array([aug_q[k]["snr"] for k in np.flatnonzero(m)])
        out[f"application.n{n}.snr_inflation"] = _mean(aug_snr / full_snr, ~aug_fail[m])
        st["application.snr_ratio.sum"][:, j], st["application.snr_ratio.count"][:, j] = \
            subject_sums(subj[m], aug_snr / full_snr, ~aug_fail[m], S)
    if fill_means:
        cn, cn_st = copied_noise_probe(ctx, fill_means)
        out.update(cn)
        st.update(cn_st)
    be = break_even(pr.n_values, gains)
    # helps at every n tested: break-even is beyond the largest n (reported as that n, a lower bound, flagged)
    out["application.break_even_n"] = float(max(pr.n_values)) if be is None and np.all(np.isfinite(gains)) else be
    out["application.break_even_censored"] = float(be is None)
    out["application.snr_inflation"] = _mean([out[f"application.n{n}.snr_inflation"] for n in pr.n_values])
    filled = np.isfinite(noise_syn)
    if filled.any():
        # mean noise sd of the synthetic transients over that of the real transients of the same short scans
        # (each a median over the scan's transients); means, so that it is a ratio of per-subject sums
        out["application.noise_ratio"] = float(np.mean(noise_syn[filled]) / np.mean(sw.subset_noise[filled]))
        out["application.noise_free"] = float(out["application.noise_ratio"] < NOISE_FREE_RATIO)
        st["application.noise_syn.sum"], st["application.noise_syn.count"] = subject_sums(subj, noise_syn, filled, S)
        st["application.noise_real.sum"], st["application.noise_real.count"] = \
            subject_sums(subj, sw.subset_noise, filled, S)

    i0, n0, _ = sw.jobs[0]
    first = (test.scans[i0].subject, n0, sw.full[i0], sw.first_subset, augmented[0],
             None if truth is None else truth[i0])

    def spectra_figure(results):
        return _spectra_figure(first, results)

    def utility_figure(results):
        return _utility_figure(grid, mean_curve, out, pr, results)
    return FamilyResult(out, {"spectra.png": spectra_figure, "utility.png": utility_figure},
                        {"augmented": augmented, "aug_fits": aug_fits, "aug_failed": aug_gaba_fail}, st)


def _spectra_figure(first, results):
    import matplotlib.pyplot as plt
    subj, n, pf, ps, pa, tr = first
    axis = pf.axis
    fig, axs = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    for a, lo, hi, title in ((axs[0], 1.8, 4.2, f"DIFF spectra, {subj}"), (axs[1], 2.6, 4.0, "GABA (3.0) / Glx (3.75) zoom")):
        for lab, pp in (("full scan", pf), (f"subset n={n}", ps), (f"augmented ({results['model']})", pa)):
            a.plot(axis.ppm, pp.spectra()["diff"].real, lw=1, label=lab)
        if tr is not None:
            a.plot(axis.ppm, tr, lw=1, color="k", ls="--", label="noise-free truth")
        w = axis.window(lo, hi)
        ys = pf.spectra()["diff"].real[w]
        a.set_xlim(hi, lo)
        a.set_ylim(ys.min() - 0.5 * np.ptp(ys), ys.max() + 0.5 * np.ptp(ys))
        a.set_xlabel("chemical shift (ppm)")
        a.set_ylabel("signal (a.u.)")
        a.set_title(title)
    axs[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _utility_figure(grid, mean_curve, out, pr, results):
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, 2, figsize=(10, 4))
    for a, key, label, direction in ((axs[0], "shape_score", "challenge shape score vs full scan", "higher"),
                                     (axs[1], "gaba_err", "GABA+/tCr error vs full scan (%)", "lower")):
        a.plot(grid, mean_curve[key], "o-", color="0.3", label="subset alone (real)")
        nn = list(pr.n_values)
        k = "shape_score" if key == "shape_score" else "gaba_err"
        a.plot(nn, [out[f"application.n{n}.augmented.{k}"] for n in nn], "s-", label=f"augmented ({results['model']})")
        a.set_xscale("log")
        a.set_xticks(grid)
        a.set_xticklabels([str(g) for g in grid])
        a.set_xlabel("real transients per condition, n")
        a.set_ylabel(label)
        a.set_title(f"utility curve ({direction} is better)")
        a.legend(fontsize=8)
    fig.tight_layout()
    return fig
