"""Signal-quality measures of edited spectra.

Challenge measures: Edited-MRS Reconstruction Challenge (Berto et al., MAGMA 2024), definitions in
../shared/reference/metrics.md sec. 1. Osprey SNR/FWHM: Oeltzschner et al. 2020, metrics.md sec. 2.
Inputs are real (phased) spectra on an axis; windows are inclusive ppm ranges.
"""
from __future__ import annotations

import numpy as np

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.errors import InputError

GABA_WIN = (2.8, 3.2)
GLX_WIN = (3.6, 3.9)
MSE_WIN = (2.5, 4.0)
NOISE_WIN = (9.8, 10.8)
OSPREY_NOISE_WIN = (-2.0, 0.0)


def _win(axis: SpectralAxis, lo: float, hi: float) -> np.ndarray:
    m = axis.window(lo, hi)
    if not m.any():
        raise InputError("metrics", f"window {lo}-{hi} ppm is outside the spectrum")
    return m


def _finite(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if not np.all(np.isfinite(x)):
        raise InputError("metrics", f"{what} contains NaN/Inf")
    return x


def challenge_mse(x: np.ndarray, ref: np.ndarray, axis: SpectralAxis) -> float:
    """Mean squared difference over 2.5-4 ppm after min-max normalising each spectrum in the window."""
    m = _win(axis, *MSE_WIN)
    a, b = _finite(x, "spectrum")[m], _finite(ref, "reference")[m]

    def mm(v):
        rng = v.max() - v.min()
        return (v - v.min()) / rng if rng > 0 else np.zeros_like(v)

    return float(np.mean((mm(a) - mm(b)) ** 2))


def detrended_noise_sd(spec_real: np.ndarray, axis: SpectralAxis, window=NOISE_WIN) -> float:
    """sqrt(sum(res^2)/(n-1)) of the real spectrum in ``window`` minus a fitted 2nd-order polynomial."""
    m = _win(axis, *window)
    y = spec_real[m]
    x = axis.ppm[m] - axis.ppm[m].mean()
    res = y - np.polyval(np.polyfit(x, y, 2), x)
    return float(np.sqrt(np.sum(res ** 2) / (len(y) - 1)))


def challenge_snr(spec_real: np.ndarray, axis: SpectralAxis) -> float:
    """GABA SNR: max of the real DIFF in 2.8-3.2 ppm / (2 * detrended noise sd in 9.8-10.8 ppm)."""
    s = _finite(spec_real, "spectrum")
    peak = s[_win(axis, *GABA_WIN)].max()
    sd = detrended_noise_sd(s, axis)
    if sd == 0:
        raise InputError("metrics", "noise region 9.8-10.8 ppm is exactly zero: SNR undefined (noise-free input?)")
    return float(peak / (2 * sd))


def challenge_linewidth(spec_real: np.ndarray, axis: SpectralAxis) -> tuple[float, float]:
    """GABA linewidth (ppm, Hz): in 2.8-3.2 ppm min-max normalise, find the peak; the span from the
    first point before it with value > 0.5 to the last point from it on with value > 0.5 (window
    edges when none qualifies)."""
    m = _win(axis, *GABA_WIN)
    y = _finite(spec_real, "spectrum")[m]
    p = axis.ppm[m]
    rng = y.max() - y.min()
    y = (y - y.min()) / rng if rng > 0 else np.zeros_like(y)
    k = int(np.argmax(y))
    before = np.flatnonzero(y[:k] > 0.5)
    after = np.flatnonzero(y[k:] > 0.5)
    left = before[0] if len(before) else 0
    right = k + after[-1] if len(after) else len(y) - 1
    lw = abs(p[left] - p[right])
    return float(lw), float(lw * axis.f0_mhz)


def shape_score(x: np.ndarray, ref: np.ndarray, axis: SpectralAxis) -> float:
    """0.6 * Pearson r over GABA 2.8-3.2 ppm + 0.4 * Pearson r over Glx 3.6-3.9 ppm."""
    x, ref = _finite(x, "spectrum"), _finite(ref, "reference")

    def r(lo, hi):
        m = _win(axis, lo, hi)
        a, b = x[m], ref[m]
        if a.std() == 0 or b.std() == 0:
            return 0.0
        return float(np.corrcoef(a, b)[0, 1])

    return 0.6 * r(*GABA_WIN) + 0.4 * r(*GLX_WIN)


def osprey_snr(spec: np.ndarray, axis: SpectralAxis, signal_win: tuple[float, float]) -> float:
    """(max |spectrum| in the signal window - mean of real noise in -2..0 ppm) / sd of the detrended
    real noise."""
    spec = _finite(spec, "spectrum")
    nm = _win(axis, *OSPREY_NOISE_WIN)
    sd = detrended_noise_sd(spec.real, axis, OSPREY_NOISE_WIN)
    if sd == 0:
        raise InputError("metrics", "noise region -2..0 ppm is exactly zero: SNR undefined")
    return float((np.abs(spec[_win(axis, *signal_win)]).max() - spec.real[nm].mean()) / sd)


def osprey_fwhm_hz(fid: np.ndarray, axis: SpectralAxis, signal_win: tuple[float, float]) -> float:
    """FWHM (Hz) of the peak in ``signal_win``: zero-fill x8, then average (i) the width of the span with
    Re >= half maximum and (ii) the width of a Lorentzian fitted to the real part around the peak."""
    from scipy.optimize import curve_fit

    big = axis.with_points(axis.n_points * 8)
    zf = np.zeros(big.n_points, complex)
    zf[: axis.n_points] = _finite(fid, "FID")
    s = big.to_spectrum(zf).real
    idx = np.flatnonzero(big.window(*signal_win))
    k = idx[np.argmax(s[idx])]
    if s[k] <= 0:
        raise InputError("metrics", f"no positive peak in {signal_win[0]}-{signal_win[1]} ppm: FWHM undefined "
                         "(spectrum not phased or signal absent)")
    half = s[k] / 2
    l = k
    while l > 0 and s[l] >= half:
        l -= 1
    r = k
    while r < len(s) - 1 and s[r] >= half:
        r += 1
    w_half = (r - l - 1) * big.hz_per_point
    hz = big.hz
    span = max(r - l, 8)  # at least a few points either side for the Lorentzian fit
    sel = slice(max(0, k - span), min(len(s), k + span + 1))

    def lor(f, a, f0, g, c):
        return a * (g / 2) ** 2 / ((f - f0) ** 2 + (g / 2) ** 2) + c

    try:
        p, _ = curve_fit(lor, hz[sel], s[sel], p0=[s[k], hz[k], max(w_half, big.hz_per_point), 0.0], maxfev=2000)
        w_lor = abs(p[2])
        if not np.isfinite(w_lor) or w_lor > 10 * max(w_half, 1e-9):
            w_lor = w_half
    except RuntimeError:
        w_lor = w_half
    return float(0.5 * (w_half + w_lor))
