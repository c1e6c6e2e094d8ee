"""Recovery of simulated ground truth by the quantifiers (issue: quantification, 'Must show')."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from mrsbench.data.simulate import CohortConfig
from mrsbench.core.scans import Cohort
from mrsbench.processing import process_many
from mrsbench.fitting.gannet import gannet_fits
from mrsbench.fitting.quantify import Quantifier, lcm_ratios

# validation cohort: 4 sites x 12 subjects, its own seed (never the benchmark's datasets), with
# concentrations spanning the published ranges uniformly
VALIDATION = CohortConfig(name="simgaba-val", n_sites=4, subjects_per_site=12, seed=7_000_001,
                          conc_sampling="uniform")


def true_ratios(gt, kind: str = "signal") -> dict:
    """True ratios to tCr per subject from a simulated cohort's ground truth.

    ``kind="signal"``: ratios of the amplitudes the simulator put into the signal, conc * exp(-TE/T2)
    with each subject's own T2 (columns ``t2w_<metabolite>``): what a quantifier that applies no
    subject-specific T2 correction can recover. ``kind="concentration"``: ratios of concentrations;
    the simulated 10% between-subject T2 jitter caps any single-TE estimate's correlation with these
    (GABA/tCr about 0.96 on noise-free validation spectra). MM3co carries no T2 weighting (its
    amplitude is defined on the edited signal)."""
    if kind not in ("signal", "concentration"):
        raise ValueError("kind must be 'signal' or 'concentration'")

    def a(m):
        v = gt[m]
        if kind == "signal" and f"t2w_{m}" in gt:
            v = v * gt[f"t2w_{m}"]
        return v

    tcr = a("Cr") + a("PCr")
    return {"GABA": a("GABA") / tcr, "GABA+": (a("GABA") + gt.MM3co) / tcr, "Glx": (a("Glu") + a("Gln")) / tcr,
            "tNAA": (a("NAA") + a("NAAG")) / tcr, "tCho": (a("GPC") + a("PCh")) / tcr, "mI": a("mI") / tcr}


def processed_spectra(cohort: Cohort) -> tuple[np.ndarray, np.ndarray, list]:
    """OFF and DIFF spectra (B, N) of every scan, processed as the harness does, and each scan's ON-transient
    frequency offsets and weights (:meth:`~mrsbench.processing.Processed.on_offsets_hz`)."""
    ps = process_many(cohort.scans)   # on the scan pool (worker processes), in order
    return (np.stack([p.spectra()["off"] for p in ps]), np.stack([p.spectra()["diff"] for p in ps]),
            [p.on_offsets_hz() for p in ps])


def recovery(cohort: Cohort, quantifier: Quantifier | None = None, spectra=None) -> dict:
    """Pearson r, median absolute percentage error (after a single global scale: Gannet areas are in
    signal units, not basis units) and mean bias in percent (no scaling: meaningful for the LCM, whose
    ratios are in the truth's units) of estimated vs true ratios, keyed ``method.metabolite`` against the
    signal truth and ``conc:method.metabolite`` against the concentration truth (see :func:`true_ratios`);
    ``lcm_off.*`` are ratios from the OFF fit alone; plus ``agreement.GABA+`` (LCM vs Gannet-style
    GABA+/tCr: r and mean bias in percent). ``spectra``: (off, diff) already processed, or (off, diff,
    on_offsets) as :func:`processed_spectra` gives them (without offsets DIFF gets the nominal basis)."""
    spectra = spectra if spectra is not None else processed_spectra(cohort)
    off, diff = spectra[:2]
    q = quantifier or Quantifier(cohort.axis)
    ro, rd = q.fit(off, diff, on_offsets=spectra[2] if len(spectra) > 2 else None)
    lcm = lcm_ratios(ro, rd)
    amp = lambda n: ro.amplitudes[:, ro.names.index(n)]
    off_gaba = amp("GABA") / (amp("Cr") + amp("PCr"))
    gf = gannet_fits(off, diff, cohort.axis)
    g = gf["gaba_cr"]
    est = {("lcm", "GABA"): lcm["GABA"], ("lcm", "Glx"): lcm["Glx"], ("lcm", "tNAA"): lcm["tNAA"],
           ("lcm", "tCho"): lcm["tCho"], ("lcm", "mI"): lcm["mI"], ("lcm", "GABA+"): lcm["GABA+"],
           ("gannet", "GABA+"): g, ("gannet_gabaglx", "GABA+"): gf["gabaglx_cr"],
           ("gannet_gabaglx", "Glx"): gf["glx_cr"], ("lcm_off", "GABA"): off_gaba, ("lcm_off", "Glx"): lcm["Glx_off"]}
    out = {}
    for kind, prefix in (("signal", ""), ("concentration", "conc:")):
        truth = true_ratios(cohort.ground_truth, kind)
        for (method, name), e in est.items():
            t = np.asarray(truth[name], float)
            e = np.asarray(e, float)
            r = float(np.corrcoef(e, t)[0, 1])
            k = np.median(t) / np.median(e) if np.median(e) > 0 else np.nan
            mape = float(np.median(np.abs(k * e - t) / t) * 100)
            bias = float(np.mean((e - t) / t) * 100)
            out[f"{prefix}{method}.{name}"] = {"r": r, "mape": mape, "bias": bias}
    # LCM vs Gannet-style GABA+/Cr agreement: r, and the mean percentage difference after scaling the
    # Gannet areas to the LCM median (their units differ: signal area vs basis amplitude)
    for key, b in (("agreement.GABA+", gf["gabaglx_cr"]), ("agreement_gaussian.GABA+", g)):
        a = lcm["GABA+"]
        s = np.median(a) / np.median(b)
        out[key] = {"r": float(np.corrcoef(a, b)[0, 1]), "bias_percent": float(np.mean((s * b - a) / a) * 100)}
    return out


def validation_cohort(n_pairs: int | None = None) -> Cohort:
    from mrsbench.data.simulate import simulate_cohort
    cfg = VALIDATION if n_pairs is None else replace(VALIDATION, n_pairs=n_pairs)
    return simulate_cohort(cfg)[0]
