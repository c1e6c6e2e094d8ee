"""Reconstruction: held-out NMSE of decode(encode(x)) (null for a generator without an encoder)."""
from __future__ import annotations

import numpy as np

from mrsbench.harness.families.base import Context, FamilyResult


def run(ctx: Context) -> FamilyResult:
    from mrsbench.generators.contract import generator_call
    gen, test = ctx.gen, ctx.test   # gen: the first fold's (all folds share a class)
    axis = test.axis
    if not gen.has_latent:
        return FamilyResult({"reconstruction.nmse_full": None, "reconstruction.nmse_1.8-4.2ppm": None})
    S = len(test.scans)
    num_f, den_f, num_w, den_w = (np.zeros(S) for _ in range(4))
    w = axis.window(1.8, 4.2)
    with generator_call(ctx.model, "encode/decode"):
        for i, s in enumerate(test.scans):
            g = ctx.generator_for(s.subject)   # k-fold: the generator whose training did not include s
            rec = g.decode(g.encode(s.fids))
            a, b = axis.to_spectrum(s.fids), axis.to_spectrum(rec)
            num_f[i] = np.sum(np.abs(b - a) ** 2)
            den_f[i] = np.sum(np.abs(a) ** 2)
            num_w[i] = np.sum(np.abs(b[:, w] - a[:, w]) ** 2)
            den_w[i] = np.sum(np.abs(a[:, w]) ** 2)
    # NMSE over all test transients: a ratio of per-subject sums (mrsbench.harness.statistics)
    return FamilyResult({"reconstruction.nmse_full": num_f.sum() / den_f.sum(),
                         "reconstruction.nmse_1.8-4.2ppm": num_w.sum() / den_w.sum()},
                        subjects={"reconstruction.err_window.sum": num_w, "reconstruction.power_window.sum": den_w})
