"""Choose the flow's ODE step count by measurement (validation subjects only).

Trains the flow on the first fold's training subjects of the quick preset (simgaba-small, seed 0), then for
each Heun step count samples 80 ON + 80 OFF transients per validation subject conditioned on 40 of its
transients and compares them with that subject's real transients: MMD^2 in the harness's feature space (PCA of
training spectra, 1.8-4.2 ppm, 16 dims), and the in-band spread ratio (synthetic / real sd about the mean).
Writes flow_steps.md next to this file. Run: python -m mrsbench_baselines.tuning.flow_steps
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def main(out: Path = Path(__file__).with_name("flow_steps.md"), seed: int = 0):
    from sklearn.decomposition import PCA

    from mrsbench_baselines.flow import FlowGenerator
    from mrsbench.metrics.twosample import mmd2_unbiased
    from mrsbench.harness.protocol import get_preset
    from mrsbench.harness.cell_work import cell_data, features

    pr = get_preset("quick")
    cd = cell_data("simgaba-small", pr, seed, progress=False)
    tr, va, _ = cd.folds[0]
    ax = tr.axis
    t0 = time.perf_counter()
    g = FlowGenerator().fit(tr, seed=seed, val=va)
    fit_s = time.perf_counter() - t0
    pca = PCA(pr.feature_dim, random_state=seed).fit(features(np.concatenate([s.fids for s in tr.scans]), ax, pr.feature_ppm))
    feat = lambda f: pca.transform(features(f, ax, pr.feature_ppm))   # noqa: E731
    w = ax.window(1.8, 4.2)
    rows = []
    for steps in (1, 2, 4, 8, 16, 32):
        g.steps = steps
        mmd, spread, secs, n = [], [], 0.0, 0
        for i, s in enumerate(va.scans):
            rng = np.random.default_rng([seed, i])
            cond = s.select(np.sort(rng.choice(s.n_transients, 80, replace=False)))
            t = time.perf_counter()
            syn = g.sample(80, condition=cond, seed=100 + i)
            secs += time.perf_counter() - t
            n += 160
            mmd.append(mmd2_unbiased(feat(s.fids), feat(syn.fids)))
            for lab in (0, 1):
                R = ax.to_spectrum(s.fids[s.edit == lab])[:, w]
                F = ax.to_spectrum(syn.fids[syn.edit == lab])[:, w]
                spread.append(np.std(F - F.mean(0)) / np.std(R - R.mean(0)))
        rows.append((steps, 2 * steps, float(np.mean(mmd)), float(np.std(mmd)), float(np.mean(spread)), n / secs))
    lines = ["# flow: ODE step count (Heun), measured on validation subjects", "",
             f"simgaba-small, quick preset fold 0 (train {len(tr)}, validation {len(va)} subjects), seed {seed}; "
             f"flow trained in {fit_s:.0f} s on this machine. 80 ON + 80 OFF per validation subject, conditioned on "
             "40 + 40 of its transients. MMD² (unbiased, RBF, median bandwidth) against all of the subject's real "
             "transients in the harness's feature space; spread: synthetic / real sd about the mean, 1.8-4.2 ppm.",
             "", "| Heun steps | velocity evaluations | MMD² mean | MMD² sd over subjects | spread ratio | transients/s |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c:.3g} | {d:.2g} | {e:.3f} | {f:.0f} |" for a, b, c, d, e, f in rows]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
