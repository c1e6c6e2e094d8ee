"""Gannet-style fits (Edden et al., J Magn Reson Imaging 2014; Gannet, markmikkelsen/Gannet), batched.

Definitions from ../shared/reference/metrics.md sec. 3 (frequencies in ppm, real spectra):
* GABA (DIFF, 2.79-3.55 ppm): A exp(b (f-c)^2) + d (f-c) + e, b = -1/(2 s^2); start c = 3.026, b = -90;
  bounds c in [2.87, 3.12], b in [-200, -40]; points in 3.16-3.285 ppm weighted 0.001; area A sqrt(pi/-b).
* GABAGlx (DIFF, 2.79-4.10 ppm): Gaussians at 3.71 +/- 0.02 and 3.79 +/- 0.02 (Glx, shared width) and
  3.02 +/- 0.05 (GABA) + linear + sine + cosine baseline (period 2*1.46 ppm, approx.).
* Cr (OFF, 2.6-3.6 ppm): two Lorentzians, Cho fixed 0.18 ppm above Cr (shared width) + linear baseline.
* FitError = 100 * sd(residual) / peak amplitude (GABA residual window 2.79-3.55 ppm, Glx 3.45-4.10).
All fits run together for a batch by Levenberg-Marquardt with numerical Jacobians (numpy).
"""
from __future__ import annotations

import numpy as np

from ..axis import SpectralAxis


def batched_lm(model, p0, lo, hi, x, y, w=None, iterations=60):
    """Weighted least squares for each row of y (B, M): model(p (B,P), x (M,)) -> (B, M).
    Bounds lo/hi (P,). Returns (p, covariance (B,P,P), residual (B,M))."""
    p = np.clip(np.array(p0, float), lo, hi)
    B, P = p.shape
    w = np.ones_like(y) if w is None else np.broadcast_to(w, y.shape)
    sw = np.sqrt(w)
    lam = np.full(B, 1e-3)

    def res(pp):
        return (y - model(pp, x)) * sw

    r = res(p)
    cost = (r ** 2).sum(1)
    scale = np.maximum(np.abs(hi - lo), 1e-6) * 1e-6
    for _ in range(iterations):
        J = np.empty((B, y.shape[1], P))
        for k in range(P):
            dp = np.zeros(P)
            dp[k] = scale[k]
            J[:, :, k] = -(res(p + dp) - r) / scale[k]
        JtJ = np.einsum("bmi,bmj->bij", J, J)
        g = np.einsum("bmi,bm->bi", J, r)
        D = np.maximum(np.diagonal(JtJ, axis1=1, axis2=2), 1e-30)
        step = np.linalg.solve(JtJ + lam[:, None, None] * (D[:, :, None] * np.eye(P)), g[..., None])[..., 0]
        pn = np.clip(p + step, lo, hi)
        rn = res(pn)
        cn = (rn ** 2).sum(1)
        ok = cn < cost
        p = np.where(ok[:, None], pn, p)
        r = np.where(ok[:, None], rn, r)
        cost = np.where(ok, cn, cost)
        lam = np.clip(np.where(ok, lam / 3, lam * 5), 1e-9, 1e9)
    J = np.empty((B, y.shape[1], P))
    for k in range(P):
        dp = np.zeros(P)
        dp[k] = scale[k]
        J[:, :, k] = -(res(p + dp) - r) / scale[k]
    s2 = cost / max(y.shape[1] - P, 1)
    JtJ = np.einsum("bmi,bmj->bij", J, J)
    cov = np.linalg.pinv(JtJ) * s2[:, None, None]
    return p, cov, r / sw


def _gauss(A, b, c, f):
    return A[:, None] * np.exp(b[:, None] * (f[None] - c[:, None]) ** 2)


def fit_gaba(diff_real: np.ndarray, axis: SpectralAxis) -> dict:
    """Single-Gaussian GABA+ fit on real DIFF spectra (B, N)."""
    m = axis.window(2.79, 3.55)
    f, y = axis.ppm[m], np.atleast_2d(diff_real)[:, m]
    w = np.where((f >= 3.16) & (f <= 3.285), 0.001, 1.0)

    def model(p, x):
        return _gauss(p[:, 0], p[:, 1], p[:, 2], x) + p[:, 3:4] * (x[None] - p[:, 2:3]) + p[:, 4:5]

    A0 = np.maximum(y[:, (f > 2.95) & (f < 3.1)].max(1), 1e-12)
    p0 = np.stack([A0, np.full(len(y), -90.0), np.full(len(y), 3.026), np.zeros(len(y)), np.zeros(len(y))], 1)
    big = 10 * np.abs(y).max()
    lo = np.array([0.0, -200.0, 2.87, -big, -big])
    hi = np.array([big, -40.0, 3.12, big, big])
    p, cov, r = batched_lm(model, p0, lo, hi, f, y, w)
    A, b = p[:, 0], p[:, 1]
    area = A * np.sqrt(np.pi / -b)
    # delta-method sd of the area
    dA = np.sqrt(np.pi / -b)
    db = A * 0.5 * np.sqrt(np.pi) * (-b) ** -1.5
    var = dA ** 2 * cov[:, 0, 0] + db ** 2 * cov[:, 1, 1] + 2 * dA * db * cov[:, 0, 1]
    fit_error = 100 * r.std(1) / np.maximum(A, 1e-30)
    return {"area": area, "area_sd": np.sqrt(np.maximum(var, 0)), "height": A, "centre_ppm": p[:, 2],
            "fwhm_ppm": 2 * np.sqrt(2 * np.log(2)) * np.sqrt(-1 / (2 * b)), "fit_error": fit_error,
            "at_bound": np.isclose(p[:, 1], lo[1]) | np.isclose(p[:, 1], hi[1]) | np.isclose(p[:, 2], lo[2]) | np.isclose(p[:, 2], hi[2])}


def fit_gabaglx(diff_real: np.ndarray, axis: SpectralAxis) -> dict:
    """Three-Gaussian GABA + Glx fit (Gannet's default model) on real DIFF spectra (B, N)."""
    m = axis.window(2.79, 4.10)
    f, y = axis.ppm[m], np.atleast_2d(diff_real)[:, m]
    B = len(y)
    per = 1.46

    def model(p, x):
        g = _gauss(p[:, 0], p[:, 1], p[:, 2], x)
        glx = _gauss(p[:, 3], p[:, 5], p[:, 6], x) + _gauss(p[:, 4], p[:, 5], p[:, 7], x)
        base = p[:, 8:9] * (x[None] - 3.4) + p[:, 9:10] + p[:, 10:11] * np.sin(np.pi * x[None] / per) \
            + p[:, 11:12] * np.cos(np.pi * x[None] / per)
        return g + glx + base

    yg = np.maximum(y[:, (f > 2.95) & (f < 3.1)].max(1), 1e-12)
    yx = np.maximum(y[:, (f > 3.65) & (f < 3.85)].max(1), 1e-12)
    z = np.zeros(B)
    p0 = np.stack([yg, np.full(B, -90.0), np.full(B, 3.02), yx, yx, np.full(B, -300.0), np.full(B, 3.71),
                   np.full(B, 3.79), z, z, z, z], 1)
    big = 10 * np.abs(y).max()
    lo = np.array([0, -200, 2.97, 0, 0, -1500, 3.69, 3.77, -big, -big, -big, -big], float)
    hi = np.array([big, -40, 3.07, big, big, -40, 3.73, 3.81, big, big, big, big], float)
    p, cov, r = batched_lm(model, p0, lo, hi, f, y)
    gaba_area = p[:, 0] * np.sqrt(np.pi / -p[:, 1])
    glx_area = (p[:, 3] + p[:, 4]) * np.sqrt(np.pi / -p[:, 5])
    fg = (f >= 2.79) & (f <= 3.55)
    fx = (f >= 3.45) & (f <= 4.10)
    return {"gaba_area": gaba_area, "glx_area": glx_area,
            "gaba_fit_error": 100 * r[:, fg].std(1) / np.maximum(p[:, 0], 1e-30),
            "glx_fit_error": 100 * r[:, fx].std(1) / np.maximum(np.maximum(p[:, 3], p[:, 4]), 1e-30),
            "glx_area_sd": np.sqrt(np.maximum(cov[:, 3, 3] + cov[:, 4, 4], 0)) * np.sqrt(np.pi / -p[:, 5]),
            "gaba_area_sd": np.sqrt(np.maximum(cov[:, 0, 0], 0)) * np.sqrt(np.pi / -p[:, 1])}


def fit_cr(off_real: np.ndarray, axis: SpectralAxis) -> dict:
    """Cr + Cho two-Lorentzian fit (Cho 0.18 ppm above Cr) on real OFF spectra (B, N)."""
    m = axis.window(2.6, 3.6)
    f, y = axis.ppm[m], np.atleast_2d(off_real)[:, m]
    B = len(y)

    def lor(A, c, wd, x):
        return A[:, None] / (1 + ((x[None] - c[:, None]) / (wd[:, None] / 2)) ** 2)

    def model(p, x):
        return lor(p[:, 0], p[:, 2], p[:, 3], x) + lor(p[:, 1], p[:, 2] + 0.18, p[:, 3], x) \
            + p[:, 4:5] * (x[None] - 3.0) + p[:, 5:6]

    a0 = np.maximum(y[:, (f > 2.95) & (f < 3.1)].max(1), 1e-12)
    p0 = np.stack([a0, 0.5 * a0, np.full(B, 3.027), np.full(B, 0.06), np.zeros(B), np.zeros(B)], 1)
    big = 10 * np.abs(y).max()
    lo = np.array([0, 0, 2.95, 0.01, -big, -big])
    hi = np.array([big, big, 3.1, 0.3, big, big])
    p, cov, r = batched_lm(model, p0, lo, hi, f, y)
    area = p[:, 0] * np.pi * p[:, 3] / 2
    var = (np.pi * p[:, 3] / 2) ** 2 * cov[:, 0, 0] + (np.pi * p[:, 0] / 2) ** 2 * cov[:, 3, 3] \
        + 2 * (np.pi * p[:, 3] / 2) * (np.pi * p[:, 0] / 2) * cov[:, 0, 3]
    return {"area": area, "area_sd": np.sqrt(np.maximum(var, 0)), "fit_error": 100 * r.std(1) / np.maximum(p[:, 0], 1e-30)}
