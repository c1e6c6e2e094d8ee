"""Gannet-style fits (Edden et al., J Magn Reson Imaging 2014; Gannet, markmikkelsen/Gannet), batched.

Definitions from ../shared/reference/metrics.md sec. 3 (frequencies in ppm, real spectra):
* GABA (DIFF, 2.79-3.55 ppm): A exp(b (f-c)^2) + d (f-c) + e, b = -1/(2 s^2); start c = 3.026, b = -90;
  bounds c in [2.87, 3.12], b in [-200, -40]; points in 3.16-3.285 ppm weighted 0.001; area A sqrt(pi/-b).
* GABAGlx (DIFF, 2.79-4.10 ppm): Gaussians at 3.71 +/- 0.02 and 3.79 +/- 0.02 (Glx, shared width) and
  3.02 +/- 0.05 (GABA) + linear + sine + cosine baseline (period 2*1.46 ppm, approx.).
* Cr (OFF, 2.6-3.6 ppm): two Lorentzians, Cho fixed 0.18 ppm above Cr (shared width) + linear baseline.
* FitError = 100 * sd(residual) / peak amplitude (GABA residual window 2.79-3.55 ppm, Glx 3.45-4.10).
All fits run together for a batch by Levenberg-Marquardt with numerical Jacobians (numpy).
:func:`gannet_fits` runs them the way Gannet does, on spectra with 3 Hz exponential line broadening
(Gannet's default ``MRS_struct.p.LB = 3``, GannetPreInitialise).
"""
from __future__ import annotations

import numpy as np

from mrsbench.core.axis import SpectralAxis

GANNET_LB_HZ = 3.0  # Gannet default exponential line broadening (MRS_struct.p.LB = 3 Hz)


def batched_lm(model, p0, lo, hi, x, y, w=None, iterations=60):
    """Weighted least squares for each row of y (B, M): model(p (B,P), x (M,)) -> (B, M).
    Bounds lo/hi (P,) or per spectrum (B, P). Returns (p, covariance (B,P,P), residual (B,M))."""
    p = np.array(p0, float)
    B, P = p.shape
    lo, hi = np.broadcast_to(np.asarray(lo, float), (B, P)), np.broadcast_to(np.asarray(hi, float), (B, P))
    p = np.clip(p, lo, hi)
    w = np.ones_like(y) if w is None else np.broadcast_to(w, y.shape)
    sw = np.sqrt(w)
    lam = np.full(B, 1e-3)

    def res(pp):
        return (y - model(pp, x)) * sw

    scale = np.maximum(np.abs(hi - lo), 1e-6) * 1e-6  # (B, P) finite-difference steps

    def jacobian(p, r):
        J = np.empty((B, y.shape[1], P))
        for k in range(P):
            dp = np.zeros((B, P))
            dp[:, k] = scale[:, k]
            J[:, :, k] = -(res(p + dp) - r) / scale[:, k:k + 1]
        return J

    r = res(p)
    cost = (r ** 2).sum(1)
    for _ in range(iterations):
        J = jacobian(p, r)
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
    J = jacobian(p, r)
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
    big = 10 * np.abs(y).max(1)  # per spectrum: a fit never depends on the rest of the batch
    one = np.ones(len(y))
    lo = np.stack([0 * one, -200 * one, 2.87 * one, -big, -big], 1)
    hi = np.stack([big, -40 * one, 3.12 * one, big, big], 1)
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
            "at_bound": np.any(np.isclose(p[:, 1:3], lo[:, 1:3]) | np.isclose(p[:, 1:3], hi[:, 1:3]), axis=1)}


def fit_gabaglx(diff_real: np.ndarray, axis: SpectralAxis) -> dict:
    """Three-Gaussian GABA + Glx fit (Gannet's GABAGlxModel, GannetFit) on real DIFF spectra (B, N).

    Gaussians at 3.71 +/- 0.02 and 3.79 +/- 0.02 ppm (Glx, width b in [-1000, -40], start -700) and
    3.02 +/- 0.05 ppm (GABA, b in [-200, -40], start -90), each with its own width, plus a linear term
    about the first Glx centre and sin/cos(pi f / (1.31 * 4)) baseline terms; 2.79-4.10 ppm, points in
    3.16-3.285 ppm (Cho subtraction artefact) weighted 0.001, as in Gannet."""
    m = axis.window(2.79, 4.10)
    f, y = axis.ppm[m], np.atleast_2d(diff_real)[:, m]
    B = len(y)
    w = np.where((f >= 3.16) & (f <= 3.285), 0.001, 1.0)
    arg = np.pi * f / (1.31 * 4)

    def model(p, x):
        g = _gauss(p[:, 0], p[:, 1], p[:, 2], x) + _gauss(p[:, 3], p[:, 4], p[:, 5], x) \
            + _gauss(p[:, 6], p[:, 7], p[:, 8], x)
        return g + p[:, 9:10] * (x[None] - p[:, 2:3]) + p[:, 10:11] * np.sin(arg)[None] + p[:, 11:12] * np.cos(arg)[None]

    yg = np.maximum(y[:, (f >= 2.79) & (f <= 3.55)].max(1), 1e-12)
    yx = np.maximum(y[:, (f >= 3.45) & (f <= 4.10)].max(1), 1e-12)
    lin0 = -(y[:, -1] - y[:, 0]) / (f[-1] - f[0])
    z = np.zeros(B)
    p0 = np.stack([yx, np.full(B, -700.0), np.full(B, 3.71), yx, np.full(B, -700.0), np.full(B, 3.79),
                   yg, np.full(B, -90.0), np.full(B, 3.02), lin0, z, z], 1)
    # amplitude bounds scale with each spectrum's own GABA and Glx maxima (Gannet)
    gx, gb, one = yx[:, None], yg[:, None], np.ones((B, 1))
    lo = np.hstack([-4000 * gx, -1000 * one, 3.69 * one, -4000 * gx, -1000 * one, 3.77 * one, -4000 * gb, -200 * one,
                    2.97 * one, -40 * gb, -2000 * gb, -2000 * gb])
    hi = np.hstack([4000 * gx, -40 * one, 3.73 * one, 4000 * gx, -40 * one, 3.81 * one, 4000 * gb, -40 * one,
                    3.07 * one, 40 * gb, 1000 * gb, 1000 * gb])
    p, cov, r = batched_lm(model, p0, lo, hi, f, y, w)
    gaba_area = p[:, 6] * np.sqrt(np.pi / -p[:, 7])
    s1, s2 = np.sqrt(np.pi / -p[:, 1]), np.sqrt(np.pi / -p[:, 4])
    glx_area = p[:, 0] * s1 + p[:, 3] * s2
    fg = (f >= 2.79) & (f <= 3.55)
    fx = (f >= 3.45) & (f <= 4.10)
    glx_var = s1 ** 2 * cov[:, 0, 0] + s2 ** 2 * cov[:, 3, 3] + 2 * s1 * s2 * cov[:, 0, 3]
    shape = [1, 2, 4, 5, 7, 8]
    at_bound = np.any(np.isclose(p[:, shape], lo[:, shape]) | np.isclose(p[:, shape], hi[:, shape]), axis=1)
    return {"gaba_area": gaba_area, "glx_area": glx_area,
            "gaba_fit_error": 100 * r[:, fg].std(1) / np.maximum(np.abs(p[:, 6]), 1e-30),
            "glx_fit_error": 100 * r[:, fx].std(1) / np.maximum(np.maximum(p[:, 0], p[:, 3]), 1e-30),
            "glx_area_sd": np.sqrt(np.maximum(glx_var, 0)),
            "gaba_area_sd": np.sqrt(np.maximum(cov[:, 6, 6], 0)) * np.sqrt(np.pi / -p[:, 7]),
            "at_bound": at_bound}


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
    big = 10 * np.abs(y).max(1)
    one = np.ones(B)
    lo = np.stack([0 * one, 0 * one, 2.95 * one, 0.01 * one, -big, -big], 1)
    hi = np.stack([big, big, 3.1 * one, 0.3 * one, big, big], 1)
    p, cov, r = batched_lm(model, p0, lo, hi, f, y)
    area = p[:, 0] * np.pi * p[:, 3] / 2
    var = (np.pi * p[:, 3] / 2) ** 2 * cov[:, 0, 0] + (np.pi * p[:, 0] / 2) ** 2 * cov[:, 3, 3] \
        + 2 * (np.pi * p[:, 3] / 2) * (np.pi * p[:, 0] / 2) * cov[:, 0, 3]
    # a Cr height at 0 or a centre/width at its bound is not a converged peak fit
    at_bound = (p[:, 0] <= lo[:, 0]) | np.any(np.isclose(p[:, 2:4], lo[:, 2:4]) | np.isclose(p[:, 2:4], hi[:, 2:4]), axis=1)
    return {"area": area, "area_sd": np.sqrt(np.maximum(var, 0)), "fit_error": 100 * r.std(1) / np.maximum(p[:, 0], 1e-30),
            "at_bound": at_bound}


def line_broaden(spectra: np.ndarray, axis: SpectralAxis, lb_hz: float) -> np.ndarray:
    """Exponential line broadening: spectra (..., N) -> spectra of fid * exp(-pi lb t) (Lorentzian +lb Hz FWHM)."""
    if lb_hz == 0:
        return np.asarray(spectra)
    return axis.to_spectrum(axis.to_fid(spectra) * np.exp(-np.pi * lb_hz * axis.time))


def gannet_fits(off_spectra: np.ndarray, diff_spectra: np.ndarray, axis: SpectralAxis,
                lb_hz: float = GANNET_LB_HZ) -> dict:
    """Gannet-style GABA (single Gaussian), GABAGlx and Cr fits of complex, phased OFF and DIFF spectra
    (B, N) after ``lb_hz`` line broadening. Returns {"gaba": ..., "gabaglx": ..., "cr": ...} with the
    outputs of :func:`fit_gaba`, :func:`fit_gabaglx` and :func:`fit_cr`, plus the ratios
    ``gaba_cr`` (GABA+/Cr, single Gaussian), ``gabaglx_cr`` (GABA+/Cr, GABAGlx model) and ``glx_cr``."""
    off = line_broaden(np.atleast_2d(off_spectra), axis, lb_hz).real
    diff = line_broaden(np.atleast_2d(diff_spectra), axis, lb_hz).real
    g, gg, cr = fit_gaba(diff, axis), fit_gabaglx(diff, axis), fit_cr(off, axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"gaba": g, "gabaglx": gg, "cr": cr, "gaba_cr": g["area"] / cr["area"],
                "gabaglx_cr": gg["gaba_area"] / cr["area"], "glx_cr": gg["glx_area"] / cr["area"]}
