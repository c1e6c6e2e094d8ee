"""Referencing and phasing from the OFF average: Cr frequency reference and tCr zero-order phase."""
from __future__ import annotations

import numpy as np

from mrsbench.core.axis import SpectralAxis
from mrsbench.processing.config import CHO_CR_SEP_PPM, CR_PPM

def peak_ppm(spec: np.ndarray, axis: SpectralAxis, lo: float, hi: float) -> float:
    """Position (ppm) of the largest |spectrum| point in [lo, hi], refined by a parabola."""
    idx = np.flatnonzero(axis.window(lo, hi))
    m = np.abs(spec[idx])
    k = int(np.argmax(m))
    if 0 < k < len(m) - 1:
        y0, y1, y2 = m[k - 1], m[k], m[k + 1]
        den = y0 - 2 * y1 + y2
        frac = 0.5 * (y0 - y2) / den if den != 0 else 0.0
    else:
        frac = 0.0
    return float(axis.ppm[idx[k]] + frac * axis.hz_per_point / axis.f0_mhz)

def cr_reference_shift(off_fid: np.ndarray, axis: SpectralAxis) -> float:
    """Frequency shift (Hz) that puts the Cr methyl peak (largest in 2.9-3.1 ppm) at 3.027 ppm."""
    big = axis.with_points(axis.n_points * 4)
    zf = np.zeros(big.n_points, complex)
    zf[: axis.n_points] = off_fid
    p = peak_ppm(big.to_spectrum(zf), big, 2.9, 3.1)
    return (CR_PPM - p) * axis.f0_mhz

def tcr_phase(off_fid: np.ndarray, axis: SpectralAxis) -> float:
    """Zero-order phase (rad) that makes the Cr methyl singlet absorptive and positive.

    Fits the complex OFF spectrum over 2.85-3.35 ppm with two Voigt lines (Cr and Cho, 0.185 ppm apart,
    shared widths), one phase and a complex linear baseline, and returns minus the fitted phase (Osprey's
    op_phaseCrCho fits two Lorentzians the same way; Voigt lines because in-vivo lines are). Summing or
    peak-picking the 2.9-3.1 ppm window instead is biased by 10-20 degrees: the window is asymmetric about
    the peak and the dispersion tails of Cho, macromolecules and baseline fall into it."""
    from scipy.optimize import least_squares

    m = np.fft.ifftshift(axis.window(2.85, 3.35))  # the window in unshifted FFT order
    fft = np.fft.fft
    y = fft(off_fid)[m]
    ppm = np.fft.ifftshift(axis.ppm)[m]
    x = ppm - 3.1
    t = axis.time
    k = int(np.argmax(np.abs(y)))
    c0 = float(np.clip(ppm[k], 2.95, 3.10))
    yn = y / (float(np.abs(y).max()) or 1.0)
    sep = np.exp(2j * np.pi * CHO_CR_SEP_PPM * axis.f0_mhz * t)
    ones = np.ones_like(x)

    def parts(p):
        a_cr, a_cho, c, lw, gw, ph = p[:6]
        base = np.exp(2j * np.pi * axis.ppm_to_hz(c) * t - np.pi * lw * t - (gw * t) ** 2)
        fid = (a_cr + a_cho * sep) * base
        rot = np.exp(1j * ph)
        return base, fid, rot

    def resid(p):
        _, fid, rot = parts(p)
        r = fft(fid)[m] * rot + (p[6] + 1j * p[7]) + (p[8] + 1j * p[9]) * x - yn
        return np.concatenate([r.real, r.imag])

    def jac(p):
        base, fid, rot = parts(p)
        cols = fft(np.stack([base, sep * base, 2j * np.pi * axis.f0_mhz * t * fid, -np.pi * t * fid,
                             -2 * p[4] * t ** 2 * fid, fid]), axis=-1)[:, m] * rot
        cols[5] *= 1j
        J = np.concatenate([cols, np.stack([ones, 1j * ones, x, 1j * x])])
        return np.concatenate([J.real, J.imag], axis=1).T

    # a unit-amplitude Lorentzian FID of width lw peaks at ~1 / (pi lw dwell) in the spectrum
    a0 = 3.0 * np.pi * axis.dwell_s
    p0 = [a0, 0.5 * a0, c0, 3.0, 10.0, float(np.angle(y[k])), 0, 0, 0, 0]
    sol = least_squares(resid, p0, jac=jac, method="lm", x_scale=[a0, a0, 0.005, 1, 5, 0.05, 0.1, 0.1, 0.1, 0.1])
    return float(-np.angle(np.exp(1j * sol.x[5])))
