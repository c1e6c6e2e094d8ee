"""Weighted averaging: transient-to-transient distances, Osprey-style weights and outlier rejection."""
from __future__ import annotations

import numpy as np



def transient_distances(x: np.ndarray) -> np.ndarray:
    """d_i = median over j != i of the MSE between rows i and j of ``x`` (T, M) (Osprey: aligned spectra
    restricted to the alignment window)."""
    sq = np.einsum("ij,ij->i", x.real, x.real) + np.einsum("ij,ij->i", x.imag, x.imag)
    d2 = (sq[:, None] + sq[None] - 2 * np.real(x @ x.conj().T)) / x.shape[1]
    np.fill_diagonal(d2, np.nan)
    return np.nanmedian(np.maximum(d2, 0), axis=1)


def averaging_weights(d: np.ndarray, weighted: bool = True, reject: bool = True, z: float = 3.0):
    """Weights (sum 1) ~ 1/d^2 (Osprey) or uniform, and the rejected mask (robust z of d > z)."""
    med = np.median(d)
    mad = 1.4826 * np.median(np.abs(d - med)) + 1e-300
    rejected = ((d - med) / mad > z) if reject else np.zeros(len(d), bool)
    if rejected.all():
        rejected[:] = False
    # ~1/d^2, scaled by the median distance so that identical (noise-free) transients, d = 0, get equal
    # weights instead of 1/0
    w = (med / np.maximum(d, 1e-6 * med)) ** 2 if weighted and med > 0 else np.ones(len(d))
    w = np.where(rejected, 0.0, w)
    return w / w.sum(), rejected
