"""Metric functions against hand-computed values on small synthetic spectra."""

import numpy as np
import pytest

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.errors import InputError
from mrsbench.metrics import quality as q

AX = SpectralAxis(sw_hz=2000.0, n_points=16384)  # fine grid for width checks


def gauss(ax, ppm0, fwhm_ppm, h=1.0):
    return h * np.exp(-4 * np.log(2) * (ax.ppm - ppm0) ** 2 / fwhm_ppm ** 2)


def test_linewidth_of_known_gaussian():
    for fwhm in (0.05, 0.1, 0.15):
        lw_ppm, lw_hz = q.challenge_linewidth(gauss(AX, 3.0, fwhm), AX)
        step = AX.hz_per_point / AX.f0_mhz
        assert abs(lw_ppm - fwhm) <= 2 * step
        assert lw_hz == pytest.approx(lw_ppm * AX.f0_mhz)


def test_linewidth_window_edge_fallback():
    # a peak wider than the window: no point falls below half maximum -> window edges
    flat = np.ones(AX.n_points)
    flat[AX.window(3.0, 3.01)] = 2.0
    lw_ppm, _ = q.challenge_linewidth(flat + gauss(AX, 3.0, 5.0), AX)
    m = AX.window(2.8, 3.2)
    assert lw_ppm <= np.ptp(AX.ppm[m]) + 1e-9


def test_identical_spectra_shape_one_mse_zero():
    rng = np.random.default_rng(0)
    s = gauss(AX, 3.0, 0.1) + gauss(AX, 3.75, 0.05, 0.7) + 0.01 * rng.standard_normal(AX.n_points)
    assert q.shape_score(s, s, AX) == pytest.approx(1.0)
    assert q.challenge_mse(s, s, AX) == 0.0
    # scaling does not change the normalised measures
    assert q.challenge_mse(3 * s + 1, s, AX) == pytest.approx(0.0, abs=1e-20)
    assert q.shape_score(-s, s, AX) == pytest.approx(-1.0)


def test_snr_of_known_noise_level():
    rng = np.random.default_rng(3)
    sigma, h = 0.05, 2.0
    s = gauss(AX, 3.0, 0.1, h) + sigma * rng.standard_normal(AX.n_points) + 0.3 * (AX.ppm - 3.0) ** 2
    snr = q.challenge_snr(s, AX)
    # peak ~ h (+ noise); the quadratic baseline is removed by the detrending
    assert snr == pytest.approx(h / (2 * sigma), rel=0.1)


def test_snr_noise_free_is_an_error():
    with pytest.raises(InputError, match="noise"):
        q.challenge_snr(gauss(AX, 3.0, 0.1), AX)
    bad = gauss(AX, 3.0, 0.1)
    bad[5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        q.challenge_linewidth(bad, AX)


def test_osprey_fwhm_of_lorentzian():
    ax = SpectralAxis()
    for lw in (4.0, 8.0, 12.0):
        fid = np.exp(2j * np.pi * ax.ppm_to_hz(2.008) * ax.time - np.pi * lw * ax.time)
        assert q.osprey_fwhm_hz(fid, ax, (1.8, 2.2)) == pytest.approx(lw, rel=0.03)


def test_osprey_snr_known_noise():
    ax = SpectralAxis(n_points=8192)
    rng = np.random.default_rng(5)
    spec = np.zeros(ax.n_points, complex)
    spec += gauss(ax, 2.0, 0.05, 10.0)
    spec += 0.1 * (rng.standard_normal(ax.n_points) + 1j * rng.standard_normal(ax.n_points))
    assert q.osprey_snr(spec, ax, (1.8, 2.2)) == pytest.approx(100.0, rel=0.12)


def test_metrics_on_external_challenge_spectrum(shared_dir):
    d = shared_dir / "data" / "edited_mrs_challenge_sample"
    fids = np.load(d / "ground_truth_fids.npy")[0]
    # fftshift(ifft) on a descending axis (the challenge's) equals our fftshift(fft) on an ascending
    # one for the same FID; their ppm grid is offset by half a point: centre 3.0 - sw/(2 N f0)
    ax = SpectralAxis(sw_hz=2000.0, f0_mhz=127.731, n_points=2048, centre_ppm=3.0 - 2000.0 / (2 * 2048 * 127.731))
    ppm_ext = np.load(d / "ppm.npy")[0]
    # their point i (descending) holds our point N - i: same ppm values, shifted by one index
    np.testing.assert_allclose(np.sort(ppm_ext)[:-1], ax.ppm[1:], atol=1e-9)
    spec = ax.to_spectrum(fids.T)
    diff = (spec[1] - spec[0])
    # find the phase and check the known landmarks through our axis
    off = spec[0]
    naa = ax.ppm[ax.window(1.9, 2.1)][np.argmax(np.abs(off[ax.window(1.9, 2.1)]))]
    assert naa == pytest.approx(2.0, abs=0.02)
    d = diff.real
    lw_ppm, lw_hz = q.challenge_linewidth(d, ax)
    assert 0.03 < lw_ppm < 0.3
    assert q.shape_score(d, d, ax) == pytest.approx(1.0) and q.challenge_mse(d, d, ax) == 0
    rng = np.random.default_rng(0)
    sigma = 0.01
    noisy = d + sigma * rng.standard_normal(d.shape)
    assert q.challenge_snr(noisy, ax) == pytest.approx(d[ax.window(2.8, 3.2)].max() / (2 * sigma), rel=0.15)
    assert 0.8 < q.shape_score(noisy, d, ax) <= 1.0


def test_osprey_fwhm_no_positive_peak_is_a_clear_error():
    ax = SpectralAxis()
    fid = -np.exp(2j * np.pi * ax.ppm_to_hz(2.008) * ax.time - np.pi * 6 * ax.time)  # inverted peak
    with pytest.raises(InputError, match="no positive peak"):
        q.osprey_fwhm_hz(fid, ax, (1.8, 2.2))
    # a very narrow line still fits (the Lorentzian gets enough points)
    fid = np.exp(2j * np.pi * ax.ppm_to_hz(2.008) * ax.time - np.pi * 1.0 * ax.time)
    assert q.osprey_fwhm_hz(fid, ax, (1.8, 2.2)) == pytest.approx(1.0, rel=0.1)
