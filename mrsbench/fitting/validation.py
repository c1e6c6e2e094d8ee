"""Recovery of simulated ground truth by the quantifiers (issue: quantification, 'Must show')."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..cohort import CohortConfig
from ..data import Cohort
from ..processing import process
from .gannet import fit_cr, fit_gaba, fit_gabaglx
from .quantify import Quantifier, lcm_ratios

# validation cohort: 4 sites x 12 subjects, its own seed (never the benchmark's datasets), with
# concentrations spanning the published ranges uniformly
VALIDATION = CohortConfig(name="simgaba-val", n_sites=4, subjects_per_site=12, seed=7_000_001,
                          conc_sampling="uniform")


def true_ratios(gt) -> dict:
    tcr = gt.Cr + gt.PCr
    return {"GABA": gt.GABA / tcr, "GABA+": (gt.GABA + gt.MM3co) / tcr, "Glx": (gt.Glu + gt.Gln) / tcr,
            "tNAA": (gt.NAA + gt.NAAG) / tcr, "tCho": (gt.GPC + gt.PCh) / tcr, "mI": gt.mI / tcr}


def recovery(cohort: Cohort, quantifier: Quantifier | None = None) -> dict:
    """Pearson r and median absolute percentage error (after a single global scale, since LCM
    amplitudes are T2-weighted and Gannet areas are in signal units) of estimated vs true ratios."""
    ps = [process(s) for s in cohort.scans]
    off = np.stack([p.spectra()["off"] for p in ps])
    diff = np.stack([p.spectra()["diff"] for p in ps])
    q = quantifier or Quantifier(cohort.axis)
    ro, rd = q.fit(off, diff)
    lcm = lcm_ratios(ro, rd)
    cr = fit_cr(off.real, cohort.axis)["area"]
    g = fit_gaba(diff.real, cohort.axis)["area"] / cr
    gg = fit_gabaglx(diff.real, cohort.axis)
    truth = true_ratios(cohort.ground_truth)
    est = {("lcm", "GABA"): lcm["GABA"], ("lcm", "Glx"): lcm["Glx"], ("lcm", "tNAA"): lcm["tNAA"],
           ("lcm", "tCho"): lcm["tCho"], ("lcm", "mI"): lcm["mI"], ("lcm", "GABA+"): lcm["GABA+"],
           ("gannet", "GABA+"): g, ("gannet_gabaglx", "GABA+"): gg["gaba_area"] / cr,
           ("gannet_gabaglx", "Glx"): gg["glx_area"] / cr}
    out = {}
    for (method, name), e in est.items():
        t = np.asarray(truth[name], float)
        e = np.asarray(e, float)
        r = float(np.corrcoef(e, t)[0, 1])
        k = np.median(t) / np.median(e) if np.median(e) > 0 else np.nan
        mape = float(np.median(np.abs(k * e - t) / t) * 100)
        out[f"{method}.{name}"] = {"r": r, "mape": mape}
    # LCM vs Gannet GABA+/Cr agreement (after scaling Gannet to the LCM median)
    a, b = lcm["GABA+"], g
    s = np.median(a) / np.median(b)
    out["agreement.GABA+"] = {"r": float(np.corrcoef(a, b)[0, 1]), "bias_percent": float(np.mean((s * b - a) / a) * 100)}
    return out


def validation_cohort(n_pairs: int | None = None) -> Cohort:
    from ..cohort import simulate_cohort
    cfg = VALIDATION if n_pairs is None else replace(VALIDATION, n_pairs=n_pairs)
    return simulate_cohort(cfg)[0]
