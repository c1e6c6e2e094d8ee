"""The generator-dependent part of each metric family; the real-data side comes from
:class:`~mrsbench.shared.SharedWork`. Every score is computed on held-out test subjects."""
from __future__ import annotations

import numpy as np

from .data import Cohort, Scan
from .protocol import Preset
from .shared import NOISE_PPM, QUANT_NAMES, SharedWork, features, fit_block, tqdm_if

QUANT = {"gaba_cr": "GABA+/tCr (LCM: DIFF GABA + MM3co)", "gaba_cr_gannet": "GABA+/Cr (Gannet GABAGlx model, 3 Hz LB)",
         "glx_cr": "Glx/tCr", "naa_cr": "tNAA/tCr", "cho_cr": "tCho/tCr", "mi_cr": "mI/tCr"}
assert tuple(QUANT) == QUANT_NAMES


def reconstruction(gen, test: Cohort, axis) -> dict:
    """Held-out NMSE of decode(encode(x)) over the whole spectrum and within 1.8-4.2 ppm (null without a latent)."""
    if not gen.has_latent:
        return {"reconstruction.nmse_full": None, "reconstruction.nmse_1.8-4.2ppm": None}
    num_f = den_f = num_w = den_w = 0.0
    w = axis.window(1.8, 4.2)
    for s in test.scans:
        rec = gen.decode(gen.encode(s.fids))
        a, b = axis.to_spectrum(s.fids), axis.to_spectrum(rec)
        num_f += np.sum(np.abs(b - a) ** 2)
        den_f += np.sum(np.abs(a) ** 2)
        num_w += np.sum(np.abs(b[:, w] - a[:, w]) ** 2)
        den_w += np.sum(np.abs(a[:, w]) ** 2)
    return {"reconstruction.nmse_full": num_f / den_f, "reconstruction.nmse_1.8-4.2ppm": num_w / den_w}


def embedding(sw: SharedWork, test: Cohort, pr: Preset, seed: int, sample, progress: bool):
    """Two-sample statistics, memorisation and UMAP overlap of synthetic vs held-out real features.
    Returns (metrics, (UMAP of real, UMAP of synthetic))."""
    import warnings

    from .metrics import twosample as ts

    axis = test.axis
    feat = lambda f: sw.feat_pca.transform(features(f, axis, pr.feature_ppm))
    fake = []
    for k, s in enumerate(tqdm_if(test.scans, "embedding: sampling", enabled=progress)):
        fake.append(sample(sw.per_subject, s.select(sw.cond_idx[k]), seed + 100 + k).fids)
    R = sw.real
    n = sw.n_pairs
    F = feat(np.concatenate(fake))[:n]
    out = {f"embedding.{k}": v for k, v in ts.prdc(R, F, k=5).items()}
    out["embedding.mmd2"] = ts.mmd2_unbiased(R, F)
    out["embedding.classifier_auc"] = ts.classifier_auc(R, F, seed)
    out["embedding.frechet"] = ts.frechet_distance(R, F)
    # memorisation: unconditioned samples vs equal-size training and held-out sets
    U = feat(sample(n // 2 + 1, None, seed + 7).fids)
    out["embedding.memorisation_ratio"] = ts.memorisation_ratio(U, sw.train_sub, sw.held_sub)
    # UMAP learned on real test spectra, synthetic projected in
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eF = sw.umap.transform(F)
    out["embedding.umap_kde_overlap"] = ts.kde_overlap(sw.umap_real, eF)
    return out, (sw.umap_real, eF)


def application(sw: SharedWork, test: Cohort, pr: Preset, seed: int, sample, progress: bool):
    """Each short subset filled up to ``pr.full_count`` per condition with synthetic transients conditioned
    on it, processed, and scored against the full scan next to the subset alone.
    Returns (metrics, augmented Processed per job, figure data)."""
    from .processing import process
    from .qc import quality_report

    ax = test.axis
    wn = ax.window(*NOISE_PPM)
    acc: dict = {}
    noise_syn, noise_real = [], []
    augmented = []
    for k, (i, n, r) in enumerate(tqdm_if(sw.jobs, "application: augmented", enabled=progress)):
        s = test.scans[i]
        sub = s.select(sw.selections[k])
        fill = max(pr.full_count - n, 0)
        syn = sample(fill, sub, seed + 1000 + k) if fill else None
        aug = sub if syn is None else Scan(np.concatenate([sub.fids, syn.fids]), np.concatenate([sub.edit, syn.edit]),
                                           ax, s.subject, s.site)
        pa = process(aug)
        augmented.append(pa)
        for kind, rep in (("full", sw.full_quality[i]), ("subset", sw.subset_quality[k]),
                          ("augmented", quality_report(pa, sw.full[i], osprey=False))):
            for key in ("snr", "linewidth_hz", "shape_score", "mse"):
                acc.setdefault(f"application.n{n}.{kind}.{key}", []).append(rep[key])
        if syn is not None:
            noise_syn.append(np.median(ax.to_spectrum(syn.fids)[:, wn].real.std(1)))
            noise_real.append(sw.subset_noise[k])
    out = {k: float(np.mean(v)) for k, v in acc.items()}
    if noise_real:
        out["application.noise_ratio"] = float(np.median(noise_syn) / np.median(noise_real))
    i0, n0, _ = sw.jobs[0]
    fig = (test.scans[i0].subject, n0, sw.full[i0], sw.first_subset, augmented[0])
    return out, augmented, fig


def quantification(sw: SharedWork, augmented: list, test: Cohort):
    """Agreement of subset and augmented estimates with the full scan's (bias, MAPE, r), with the simulated
    truth where the dataset has one, and the LCM fit health per kind of scan.
    Returns (metrics, (full, augmented, subset) GABA+/tCr for the Bland-Altman figure)."""
    from .fitting.validation import true_ratios

    aug = fit_block(augmented, test.axis)
    subj_idx = np.array([i for i, _, _ in sw.jobs])
    fits = {"full": {k: v[subj_idx] for k, v in sw.full_fits.items()}, "subset": sw.subset_fits, "augmented": aug}
    out = {}
    for kind, f in fits.items():
        out[f"quantification.lcm.not_converged_rate.{kind}"] = float(np.mean(~f["converged"]))
        out[f"quantification.lcm.shape_at_bound_rate.{kind}"] = float(np.mean(f["shape_at_bound"]))
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
            x = fits[kind][name]
            with np.errstate(divide="ignore", invalid="ignore"):
                pct = 100 * (x - full) / full
            out[f"quantification.{name}.bias.{kind}"] = float(np.nanmean(pct))
            out[f"quantification.{name}.mape.{kind}"] = float(np.nanmean(np.abs(pct)))
            out[f"quantification.{name}.r.{kind}"] = float(np.corrcoef(x, full)[0, 1]) if len(x) > 2 and np.std(x) > 0 else None
        if truth is not None:
            t = truth[name]
            k = np.median(t / full) if np.all(full > 0) else np.nan  # calibrate units on the full scans
            for kind in ("full", "subset", "augmented"):
                x = fits[kind][name]
                out[f"quantification.{name}.truth_mape.{kind}"] = float(np.mean(np.abs(k * x - t) / t) * 100)
    ba = (fits["full"]["gaba_cr"], fits["augmented"]["gaba_cr"], fits["subset"]["gaba_cr"])
    return out, ba
