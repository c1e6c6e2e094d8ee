"""Embedding: two-sample statistics, memorisation and UMAP overlap of synthetic vs held-out real transients
in a PCA feature space fitted on real training spectra (real side: :class:`~mrsbench.shared.SharedWork`)."""
from __future__ import annotations

import numpy as np

from ..shared import features, tqdm_if
from . import Context, FamilyResult


def run(ctx: Context) -> FamilyResult:
    import warnings

    from ..metrics import twosample as ts

    sw, test, pr, seed = ctx.shared, ctx.test, ctx.pr, ctx.seed
    axis = test.axis
    feat = lambda f: sw.feat_pca.transform(features(f, axis, pr.feature_ppm))
    fake = []
    for k, s in enumerate(tqdm_if(test.scans, "embedding: sampling", enabled=ctx.progress)):
        fake.append(ctx.sample(sw.per_subject, s.select(sw.cond_idx[k]), seed + 100 + k).fids)
    R = sw.real
    n = sw.n_pairs
    F = feat(np.concatenate(fake))[:n]
    out = {f"embedding.{k}": v for k, v in ts.prdc(R, F, k=5).items()}
    out["embedding.mmd2"] = ts.mmd2_unbiased(R, F)
    out["embedding.classifier_auc"] = ts.classifier_auc(R, F, seed)
    out["embedding.frechet"] = ts.frechet_distance(R, F)
    # memorisation: unconditioned samples vs equal-size training and held-out sets
    U = feat(ctx.sample(n // 2 + 1, None, seed + 7).fids)
    out["embedding.memorisation_ratio"] = ts.memorisation_ratio(U, sw.train_sub, sw.held_sub)
    # UMAP learned on real test spectra, synthetic projected in
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
    return FamilyResult(out, {"umap.png": umap_figure})
