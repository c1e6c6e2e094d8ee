"""Reconstruction: held-out NMSE of decode(encode(x)) (null for a generator without an encoder)."""
from __future__ import annotations

import numpy as np

from . import Context, FamilyResult


def run(ctx: Context) -> FamilyResult:
    from ..harness import generator_call
    gen, test = ctx.gen, ctx.test
    axis = test.axis
    if not gen.has_latent:
        return FamilyResult({"reconstruction.nmse_full": None, "reconstruction.nmse_1.8-4.2ppm": None})
    num_f = den_f = num_w = den_w = 0.0
    w = axis.window(1.8, 4.2)
    with generator_call(ctx.model, "encode/decode"):
        for s in test.scans:
            rec = gen.decode(gen.encode(s.fids))
            a, b = axis.to_spectrum(s.fids), axis.to_spectrum(rec)
            num_f += np.sum(np.abs(b - a) ** 2)
            den_f += np.sum(np.abs(a) ** 2)
            num_w += np.sum(np.abs(b[:, w] - a[:, w]) ** 2)
            den_w += np.sum(np.abs(a[:, w]) ** 2)
    return FamilyResult({"reconstruction.nmse_full": num_f / den_f, "reconstruction.nmse_1.8-4.2ppm": num_w / den_w})
