"""Copied noise: how much of the short scan's own noise the synthetic transients carry.

A short scan of n real transients filled up to N with synthetic ones is worth more than the short scan only if
the synthetic transients bring new information. A generator that re-uses the short scan (copies it, smooths its
average, fits a model to it) fills the scan with the short scan's own noise, however much fresh noise it adds:
its noise ratio and SNR can look right while nothing was learned (issue 37: an augmenter that averages the short
scan, broadens it and adds fresh noise reached gain 1.54 at n = 20).

The measure is a probe, not a correlation of errors: the harness draws the fill twice with the same seed, once
conditioned on the short scan and once on the short scan with a second, independent noise realisation of its own
level added to every transient (d per transient; d_bar its average per condition). If the fill's average moves
by D, the **copied noise** is the share of the perturbation that reappears in it,

    copied = Re <G D, G d_bar> / <G d_bar, G d_bar>,

over 1.8-4.2 ppm of the ON and OFF spectra together, after both are smoothed with a Gaussian line of the in-vivo
metabolite linewidth (G: 6 Hz FWHM, Big GABA's median Cr FWHM, ../shared/reference/invivo.md) so that the measure
sees noise at the scale of the peaks it would distort (line broadening keeps that part of the noise and removes
the rest). 0: the fill does not follow the short scan's noise (independent transients, as real ones); 1: it
carries it in full (copies of the average plus fresh noise, or resampled transients).

Why not the correlation of the augmented and the short scan's DIFF errors (tried first, simgaba-small/quick,
seed 0): against the noise-free truth the full scan and the short scan share the real data's systematic
deviations (residual water, eddy currents, motion), so real-like transients scored -0.33, and line broadening
changes the error's shape so that a tuned-smoothing copy scored -0.10: it could not see the case it is for."""
from __future__ import annotations

import numpy as np

from mrsbench.core.axis import SpectralAxis

BAND_PPM = (1.8, 4.2)        # the metabolite band the harness fits and scores
SMOOTH_FWHM_HZ = 6.0         # Big GABA (Osprey QM, 104 Philips subjects): median Cr FWHM 6.0 Hz
# flag threshold (boards, the run summary): copied noise above it is flagged. Measured on simgaba-small/quick
# (docs/validation.md): independent transients (oracle) 0, model-based denoising of the short scan (subset-lcm,
# physics) ~0.1-0.2, tuned smoothing ~0.7, copies of the average (smoothed with lb_hz=0) and bootstrap ~1.
FLAG_THRESHOLD = 0.5


def _smoothed_band(fid_avg: np.ndarray, axis: SpectralAxis, fwhm_hz: float = SMOOTH_FWHM_HZ) -> np.ndarray:
    """(..., N) FIDs -> the Gaussian-smoothed spectra over :data:`BAND_PPM` (complex, (..., M))."""
    t = axis.time
    g = np.exp(-(np.pi * fwhm_hz * t) ** 2 / (4 * np.log(2)))   # FT of a Gaussian line of FWHM fwhm_hz
    return axis.to_spectrum(fid_avg * g)[..., axis.window(*BAND_PPM)]


def noise_transfer(moved: np.ndarray, perturbation: np.ndarray, axis: SpectralAxis) -> tuple[float, float]:
    """Numerator and denominator of the copied noise for one probe: ``moved`` the change of the fill's average
    FID, ``perturbation`` the average perturbation of the short scan's FID, each (2, N) (ON, OFF). Their ratio is
    the copied noise; sums over probes give the ratio over probes."""
    a, b = _smoothed_band(np.asarray(moved), axis), _smoothed_band(np.asarray(perturbation), axis)
    return float(np.real(np.vdot(b, a))), float(np.real(np.vdot(b, b)))
