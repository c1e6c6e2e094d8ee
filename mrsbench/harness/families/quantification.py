"""Quantification: agreement of subset and augmented estimates (LCM and Gannet-style) with the full scan's —
bias, MAPE, r — and, on simulated data, with the true ratios; the LCM fit health per kind of scan.

Failure rule: a (subject, n, repeat) whose scan failed processing or whose fit failed
(:func:`~mrsbench.harness.subset_curve.fit_failed`: OFF fit not converged, line shape at a bound, GABA+ not finite or
<= 0) is counted in ``quantification.failure_rate.{subset,augmented}`` and left out of that kind's means.
"""
from __future__ import annotations

import numpy as np

from mrsbench.harness.subset_curve import fit_failed
from mrsbench.harness.cell_work import QUANT_NAMES
from mrsbench.harness.families.base import Context, FamilyResult

QUANT = {"gaba_cr": "GABA+/tCr (LCM: DIFF GABA + MM3co)", "gaba_cr_gannet": "GABA+/Cr (Gannet GABAGlx model, 3 Hz LB)",
         "glx_cr": "Glx/tCr", "naa_cr": "tNAA/tCr", "cho_cr": "tCho/tCr", "mi_cr": "mI/tCr"}
assert tuple(QUANT) == QUANT_NAMES


def run(ctx: Context) -> FamilyResult:
    from mrsbench.fitting.validation import true_ratios

    sw, test = ctx.shared, ctx.test
    app = ctx.products["application"]
    subj_idx = np.array([i for i, _, _ in sw.jobs])
    fits = {"full": {k: v[subj_idx] for k, v in sw.full_fits.items()}, "subset": sw.subset_fits,
            "augmented": app["aug_fits"]}
    failed = {"full": fit_failed(fits["full"]), "subset": sw.subset_failed | fit_failed(sw.subset_fits),
              "augmented": app["aug_failed"]}
    out = {}
    for kind, f in fits.items():
        out[f"quantification.lcm.not_converged_rate.{kind}"] = float(np.mean(~f["converged"]))
        out[f"quantification.lcm.shape_at_bound_rate.{kind}"] = float(np.mean(f["shape_at_bound"]))
    for kind in ("subset", "augmented"):
        out[f"quantification.failure_rate.{kind}"] = float(np.mean(failed[kind]))
    out["quantification.lcm.iterations_median"] = float(np.median(np.concatenate([f["iterations"] for f in fits.values()])))
    gt = test.ground_truth
    truth = None
    if gt is not None and {"GABA", "MM3co", "Cr", "PCr"} <= set(gt.columns):
        # signal truth: amplitudes as simulated, conc * exp(-TE/T2) with each subject's T2
        t = true_ratios(gt.set_index("subject"), "signal")
        tr = {"gaba_cr": t["GABA+"], "gaba_cr_gannet": t["GABA+"], "glx_cr": t["Glx"], "naa_cr": t["tNAA"],
              "cho_cr": t["tCho"], "mi_cr": t["mI"]}
        subj = [test.scans[i].subject for i in subj_idx]
        truth = {k: np.array([v[s] for s in subj]) for k, v in tr.items()}
    for name in QUANT:
        full = fits["full"][name]
        for kind in ("subset", "augmented"):
            ok = ~failed[kind] & ~failed["full"]
            x = fits[kind][name]
            with np.errstate(divide="ignore", invalid="ignore"):
                pct = (100 * (x - full) / full)[ok]
            pct = pct[np.isfinite(pct)]
            out[f"quantification.{name}.bias.{kind}"] = float(np.mean(pct)) if len(pct) else None
            out[f"quantification.{name}.mape.{kind}"] = float(np.mean(np.abs(pct))) if len(pct) else None
            xs, fs = x[ok], full[ok]
            out[f"quantification.{name}.r.{kind}"] = float(np.corrcoef(xs, fs)[0, 1]) \
                if len(xs) > 2 and np.std(xs) > 0 and np.std(fs) > 0 else None
        if truth is not None:
            t = truth[name]
            okf = ~failed["full"] & np.isfinite(full) & (full > 0)
            k = np.median(t[okf] / full[okf]) if okf.any() else np.nan  # calibrate units on the full scans
            for kind in ("full", "subset", "augmented"):
                ok = ~failed[kind] & np.isfinite(fits[kind][name])
                x = fits[kind][name][ok]
                out[f"quantification.{name}.truth_mape.{kind}"] = float(np.mean(np.abs(k * x - t[ok]) / t[ok]) * 100) \
                    if len(x) else None
    # per-subject additive statistics of the board's columns (GABA+ bias and failure rate of augmented scans)
    from mrsbench.harness.families.application import subject_sums
    S = len(test.scans)
    ok = ~failed["augmented"] & ~failed["full"]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100 * (fits["augmented"]["gaba_cr"] - fits["full"]["gaba_cr"]) / fits["full"]["gaba_cr"]
    st = {}
    st["quantification.gaba_bias_aug.sum"], st["quantification.gaba_bias_aug.count"] = subject_sums(subj_idx, pct, ok, S)
    st["quantification.failed_aug.sum"], st["quantification.failed_aug.count"] = \
        subject_sums(subj_idx, failed["augmented"].astype(float), np.ones(len(subj_idx), bool), S)
    ok = ~failed["full"] & ~failed["subset"] & ~failed["augmented"]
    ba = (fits["full"]["gaba_cr"][ok], fits["augmented"]["gaba_cr"][ok], fits["subset"]["gaba_cr"][ok])

    def bland_altman(results):
        return _bland_altman(ba, results)
    return FamilyResult(out, {"bland_altman.png": bland_altman}, subjects=st)


def _bland_altman(ba, results):
    import matplotlib.pyplot as plt
    full, aug, sub = ba
    fig, axs = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for a, x, lab in ((axs[0], sub, "subset"), (axs[1], aug, f"augmented ({results['model']})")):
        m, d = (x + full) / 2, x - full
        if len(d):
            a.scatter(m, d, s=12)
            mu, sd = d.mean(), d.std(ddof=1) if len(d) > 1 else 0.0
            a.axhline(mu, color="k", label=f"bias {mu:+.3f}")
            for sgn in (-1, 1):
                a.axhline(mu + sgn * 1.96 * sd, color="k", ls="--",
                          label="95% limits of agreement" if sgn > 0 else None)
            a.legend(fontsize=8)
        a.set_title(f"Bland-Altman GABA+/tCr: {lab} vs full")
        a.set_xlabel("mean of the two GABA+/tCr (ratio)")
    axs[0].set_ylabel("difference, scan − full (ratio)")
    fig.tight_layout()
    return fig
