import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.errors import InputError


def test_ppm_of_known_offset():
    ax = SpectralAxis(sw_hz=2000.0, f0_mhz=127.75, n_points=2048, centre_ppm=4.68)
    # a pure tone at +/-k bins lands exactly on its bin; its ppm is centre + Hz/f0
    for k in (-300, 0, 17, 400):
        nu = k * ax.sw_hz / ax.n_points
        fid = np.exp(2j * np.pi * nu * ax.time)
        spec = ax.to_spectrum(fid)
        i = int(np.argmax(np.abs(spec)))
        assert ax.hz[i] == pytest.approx(nu)
        assert ax.ppm[i] == pytest.approx(4.68 + nu / 127.75)


def test_naa_lands_at_2_008_ppm():
    ax = SpectralAxis()
    fid = np.exp(2j * np.pi * ax.ppm_to_hz(2.008) * ax.time - ax.time / 0.2)
    i = np.argmax(np.abs(ax.to_spectrum(fid)))
    assert abs(ax.ppm[i] - 2.008) <= ax.hz_per_point / ax.f0_mhz


def test_axis_grids_match_numpy_fftfreq():
    ax = SpectralAxis(sw_hz=2000.0, n_points=2048)
    np.testing.assert_allclose(ax.hz, np.fft.fftshift(np.fft.fftfreq(2048, 1 / 2000.0)))
    assert ax.dwell_s == pytest.approx(5e-4)
    assert np.all(np.diff(ax.ppm) > 0)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=8, max_value=512), st.integers(0, 2**31 - 1))
def test_fft_round_trip(n, seed):
    ax = SpectralAxis(n_points=n)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, n)) + 1j * rng.normal(size=(3, n))
    np.testing.assert_allclose(ax.to_fid(ax.to_spectrum(x)), x, atol=1e-12)
    # Parseval: energy is conserved up to the 1/N of the unnormalised FFT
    np.testing.assert_allclose(np.sum(np.abs(ax.to_spectrum(x)) ** 2, -1), n * np.sum(np.abs(x) ** 2, -1))


def test_window_selection():
    ax = SpectralAxis()
    m = ax.window(2.8, 3.2)
    assert m.any() and ax.ppm[m].min() >= 2.8 and ax.ppm[m].max() <= 3.2
    sl = ax.window_slice(3.2, 2.8)  # order-insensitive
    np.testing.assert_array_equal(ax.ppm[sl], ax.ppm[m])
    with pytest.raises(InputError, match="outside the axis"):
        ax.window_slice(40, 50)


def test_invalid_axis():
    with pytest.raises(InputError):
        SpectralAxis(sw_hz=-1)
    with pytest.raises(InputError):
        SpectralAxis(n_points=1)


@pytest.mark.parametrize("n_points,lo,hi", [(2048, 0.2, 4.2), (2048, -10.0, 20.0), (1023, 1.0, 4.0)])
def test_spectrum_points_equal_the_shifted_spectrum(n_points, lo, hi):
    """Blocks of transients gathered from the unshifted FFT: exactly to_spectrum(fids)[:, mask], across block
    boundaries and for an odd number of points (where fftshift and ifftshift differ)."""
    ax = SpectralAxis(sw_hz=2000.0, f0_mhz=127.7, n_points=n_points)
    rng = np.random.default_rng(3)
    fids = rng.standard_normal((37, n_points)) + 1j * rng.standard_normal((37, n_points))
    m = ax.window(lo, hi)
    got = ax.spectrum_points(fids, m, block=8)
    assert np.array_equal(got, ax.to_spectrum(fids)[:, m])
    assert np.array_equal(ax.spectrum_points(fids.astype(np.complex64), m), ax.to_spectrum(fids.astype(np.complex64))[:, m])
    with pytest.raises(InputError, match="expected"):
        ax.spectrum_points(fids[:, :-1], m)
