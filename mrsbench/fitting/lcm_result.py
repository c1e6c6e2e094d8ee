"""The result of a batched LCM fit (:class:`~mrsbench.fitting.lcm.LCMFitter`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LCMResult:
    """Per-spectrum results; arrays are (B, ...). ``names`` index the amplitude columns."""

    names: list
    amplitudes: np.ndarray        # (B, L) >= 0
    crlb: np.ndarray              # (B, L) absolute sd
    params: dict                  # gamma, sigma, sigma2, eps (B, G); phi0, phi1 (B,)
    baseline: np.ndarray          # (B, 2*(order+1))
    fit: np.ndarray               # (B, M) complex model over the fit window
    data: np.ndarray              # (B, M)
    ppm: np.ndarray               # (M,)
    flags: list = field(default_factory=list)  # per spectrum, per amplitude: str
    iterations: np.ndarray | None = None          # (B,) LM iterations taken
    converged: np.ndarray | None = None           # (B,) bool
    basis: np.ndarray | None = None               # (B, L, N) the per-spectrum basis, where one was given
    removed: np.ndarray | None = None             # (B, N) FIDs taken out of the data before the fit (residual water)

    @classmethod
    def concat(cls, parts: list) -> "LCMResult":
        """One result from the results of consecutive batches (same fitter)."""
        cat = lambda xs: None if xs[0] is None else np.concatenate(xs)
        p0 = parts[0]
        return cls(p0.names, cat([p.amplitudes for p in parts]), cat([p.crlb for p in parts]),
                   {k: np.concatenate([p.params[k] for p in parts]) for k in p0.params},
                   cat([p.baseline for p in parts]), cat([p.fit for p in parts]), cat([p.data for p in parts]), p0.ppm,
                   [row for p in parts for row in p.flags], cat([p.iterations for p in parts]),
                   cat([p.converged for p in parts]), cat([p.basis for p in parts]), cat([p.removed for p in parts]))

    def crlb_percent(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.amplitudes > 0, 100 * self.crlb / self.amplitudes, np.inf)
