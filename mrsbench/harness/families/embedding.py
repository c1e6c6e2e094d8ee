"""Embedding: two-sample statistics, memorisation and UMAP overlap of synthetic vs held-out real transients
in a PCA feature space fitted on real training spectra (real side: :class:`~mrsbench.harness.cell_work.SharedWork`)."""
from __future__ import annotations

from functools import partial

import numpy as np

from mrsbench.core.parallel import ordered_pool_map, single_threaded_libraries, tqdm_if
from mrsbench.harness.cell_work import features
from mrsbench.harness.families.base import Context, FamilyResult


def run(ctx: Context) -> FamilyResult:
    import warnings

    from mrsbench.metrics import twosample as ts

    sw, test, pr, seed = ctx.shared, ctx.test, ctx.pr, ctx.seed
    axis = test.axis
    feat = lambda f: sw.feat_pca.transform(features(f, axis, pr.feature_ppm))
    conds = [s.select(sw.cond_idx[k]) for k, s in enumerate(test.scans)]
    ctx.prepare(conds)
    fake = []
    for k, c in enumerate(tqdm_if(conds, "embedding: sampling", enabled=ctx.progress)):
        fake.append(ctx.sample(sw.per_subject, c, seed + 100 + k).fids)
    R = sw.real
    n = sw.n_pairs
    f_subj = np.repeat(np.arange(len(fake)), [len(f) for f in fake])[:n]
    stats = partial(_two_sample_stats, seed=seed)   # (picklable: the jackknife runs on the scan pool)
    # the statistics are many small products (the jackknife repeats them per subject): one BLAS thread each
    # (measured, quick preset, 2 cores: the embedding stage 2.8 s with OpenBLAS's 2 threads, 1.4 s with 1);
    # the generator's sampling keeps the process's settings
    with single_threaded_libraries():
        F = feat(np.concatenate(fake))[:n]
        full = stats(R, F)
        out = {f"embedding.{k}": v for k, v in full.items()}
        out["embedding.frechet"] = ts.frechet_distance(R, F)
    # memorisation: unconditioned samples vs equal-size training and held-out sets
    U_fids = ctx.sample(n // 2 + 1, None, seed + 7).fids
    with single_threaded_libraries():
        U = feat(U_fids)
        out["embedding.memorisation_ratio"] = ts.memorisation_ratio(U, sw.train_sub, sw.held_sub)
        subjects = _pseudo_values(full, stats, R, F, sw.real_subject, f_subj, len(test.scans), ctx.progress)
        subjects.update(_pseudo_values({"memorisation_ratio": out["embedding.memorisation_ratio"]},
                                       partial(_memorisation_stats, U=U),
                                       sw.held_sub, sw.train_sub, sw.held_subject, None, len(test.scans), False))
    # UMAP learned on real test spectra, synthetic projected in (its numba code cached on disk)
    from mrsbench.metrics.umap_cache import import_umap
    import_umap()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eF = sw.umap.transform(F)
    eR = sw.umap_real
    out["embedding.umap_kde_overlap"] = ts.kde_overlap(eR, eF)

    def umap_figure(results):
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 4.5))
        ax.scatter(eR[:, 0], eR[:, 1], s=6, alpha=0.6, label="real (held-out)")
        ax.scatter(eF[:, 0], eF[:, 1], s=6, alpha=0.6, label=f"synthetic ({results['model']})")
        ax.set_xlabel("UMAP 1 (a.u.)")
        ax.set_ylabel("UMAP 2 (a.u.)")
        ax.set_title(f"UMAP (KDE overlap {results['metrics'].get('embedding.umap_kde_overlap') or 0:.2f})")
        ax.legend()
        return fig
    return FamilyResult(out, {"umap.png": umap_figure}, subjects=subjects)


def _pseudo_values(full: dict, stats, A: np.ndarray, B: np.ndarray, a_subj: np.ndarray, b_subj, n_subjects: int,
                   progress: bool) -> dict:
    """Delete-one-subject jackknife pseudo-values (Quenouille-Tukey) of two-sample statistics:
    ``pv_i = S theta - (S - 1) theta_(-i)``, theta_(-i) computed without subject i's rows of ``A`` and ``B``
    (``b_subj`` None: the same row positions of ``B`` as of ``A``, for equal-size sets). Their mean is the
    bias-corrected estimate and their spread the jackknife standard error; they are the per-subject values
    that the board's intervals and paired tests use for statistics that do not split into per-subject sums
    (mrsbench.harness.statistics). NaN for subjects without rows."""
    present = [i for i in range(n_subjects) if np.any(a_subj == i)]
    S = len(present)
    out = {f"embedding.pv.{k}": np.full(n_subjects, np.nan) for k in full}
    if S < 2:
        return out

    def produce(j):
        i = present[j]
        keep_a = a_subj != i
        keep_b = keep_a if b_subj is None else (b_subj != i)
        return stats, (A[keep_a], B[keep_b]), i

    def consume(j, loo, i):
        for k, v in full.items():
            out[f"embedding.pv.{k}"][i] = S * v - (S - 1) * loo[k]
    # the left-out subjects side by side (worker processes, one library thread each, as this stage runs here: the
    # same numbers as one after the other)
    ordered_pool_map(produce, consume, S, desc="embedding: jackknife" if progress else None, processes=True)
    return out


def _two_sample_stats(r: np.ndarray, f: np.ndarray, seed: int) -> dict:
    """PRDC (k = 5), unbiased MMD^2 and the classifier AUC of real ``r`` vs synthetic ``f`` features."""
    from mrsbench.metrics import twosample as ts
    return dict(ts.prdc(r, f, k=5), mmd2=ts.mmd2_unbiased(r, f), classifier_auc=ts.classifier_auc(r, f, seed))


def _memorisation_stats(held: np.ndarray, train: np.ndarray, U: np.ndarray) -> dict:
    from mrsbench.metrics import twosample as ts
    return {"memorisation_ratio": ts.memorisation_ratio(U, train, held)}
