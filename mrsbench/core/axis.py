"""Spectral axis: time/frequency/ppm grids and the FID <-> spectrum convention.

Sign convention (the NIfTI-MRS / FSL-MRS one, Clarke et al. MRM 2022):
a resonance at chemical shift ``delta`` (ppm) has the offset frequency
``nu = (delta - centre_ppm) * f0_mhz`` (Hz) and the FID ``exp(+2j*pi*nu*t)``.
The spectrum is ``fftshift(fft(fid))``; array index increases with frequency, so
both ``hz`` and ``ppm`` *increase* with index (plot with an inverted x axis, as is
customary). ``to_fid`` is the exact inverse of ``to_spectrum``.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import numpy as np

from mrsbench.core.errors import InputError
from mrsbench.core.parallel import fft_workers

# Big GABA Philips protocol: 2000 Hz, 2048 points, 127.75 MHz, centre 4.68 ppm
# (Mikkelsen et al., NeuroImage 2017; ../shared/reference/invivo.md).
DEFAULT_SW_HZ = 2000.0
DEFAULT_F0_MHZ = 127.75
DEFAULT_POINTS = 2048
DEFAULT_CENTRE_PPM = 4.68


def _fft():
    """scipy.fft (multi-threaded with workers=fft_workers()), imported on first use to keep import fast."""
    import scipy.fft
    return scipy.fft


@dataclass(frozen=True)
class SpectralAxis:
    """Acquisition grid of a single-voxel spectrum.

    Parameters
    ----------
    sw_hz : spectral width (Hz) = 1 / dwell time.
    f0_mhz : spectrometer (1H) frequency (MHz).
    n_points : number of complex time points.
    centre_ppm : chemical shift of the receiver (carrier) frequency (ppm).
    """

    sw_hz: float = DEFAULT_SW_HZ
    f0_mhz: float = DEFAULT_F0_MHZ
    n_points: int = DEFAULT_POINTS
    centre_ppm: float = DEFAULT_CENTRE_PPM

    def __post_init__(self) -> None:
        for name in ("sw_hz", "f0_mhz", "centre_ppm"):
            v = getattr(self, name)
            if not np.isfinite(v):
                raise InputError("SpectralAxis", f"{name} must be finite, got {v}")
        if self.sw_hz <= 0 or self.f0_mhz <= 0:
            raise InputError("SpectralAxis", f"sw_hz and f0_mhz must be positive, got {self.sw_hz}, {self.f0_mhz}")
        if int(self.n_points) != self.n_points or self.n_points < 2:
            raise InputError("SpectralAxis", f"n_points must be an integer >= 2, got {self.n_points}")
        object.__setattr__(self, "n_points", int(self.n_points))

    # --- grids -----------------------------------------------------------------
    @property
    def dwell_s(self) -> float:
        """Dwell time (s)."""
        return 1.0 / self.sw_hz

    @property
    def time(self) -> np.ndarray:
        """Sample times (s), shape (n_points,), starting at 0."""
        return np.arange(self.n_points) * self.dwell_s

    @property
    def hz(self) -> np.ndarray:
        """Frequency offset from the carrier (Hz), shape (n_points,), increasing.

        Equals ``fftshift(fftfreq(n_points, dwell_s))``.
        """
        return (np.arange(self.n_points) - self.n_points // 2) * (self.sw_hz / self.n_points)

    @property
    def ppm(self) -> np.ndarray:
        """Chemical shift (ppm) of each spectral point, shape (n_points,), increasing."""
        return self.centre_ppm + self.hz / self.f0_mhz

    @property
    def hz_per_point(self) -> float:
        return self.sw_hz / self.n_points

    # --- conversions -----------------------------------------------------------
    def ppm_to_hz(self, ppm):
        """Offset frequency (Hz) of a chemical shift (ppm)."""
        return (np.asarray(ppm) - self.centre_ppm) * self.f0_mhz

    def hz_to_ppm(self, hz):
        return self.centre_ppm + np.asarray(hz) / self.f0_mhz

    def ppm_to_index(self, ppm) -> np.ndarray:
        """Fractional spectral index of a chemical shift."""
        return self.ppm_to_hz(ppm) / self.hz_per_point + self.n_points // 2

    def to_spectrum(self, fid: np.ndarray, axis: int = -1) -> np.ndarray:
        """Spectrum ``fftshift(fft(fid))`` along ``axis`` (points must equal n_points)."""
        fid = np.asarray(fid)
        if fid.shape[axis] != self.n_points:
            raise InputError("to_spectrum", f"expected {self.n_points} points on axis {axis}, got {fid.shape[axis]}")
        return np.fft.fftshift(_fft().fft(fid, axis=axis, workers=fft_workers()), axes=axis)

    def spectrum_points(self, fids: np.ndarray, mask: np.ndarray, block: int = 1024) -> np.ndarray:
        """``to_spectrum(fids)[:, mask]`` for fids (T, N), the same numbers, computed ``block`` transients at a
        time and gathered straight from the unshifted transform (no full-size shifted copy: for a cohort's
        ~30k transients that copy and the mask's took longer than the FFT). Returns (T, M) complex."""
        fids = np.asarray(fids)
        if fids.ndim != 2 or fids.shape[1] != self.n_points:
            raise InputError("spectrum_points", f"expected (T, {self.n_points}) FIDs, got {fids.shape}")
        pos = np.fft.fftshift(np.arange(self.n_points))[np.asarray(mask, bool)]   # to_spectrum(x)[j] = fft(x)[pos[j]]
        # (the transform's own output type: complex64 from single precision, else complex128)
        out = np.empty((len(fids), len(pos)), np.result_type(fids.dtype, np.complex64))
        for i in range(0, len(fids), block):
            f = _fft().fft(fids[i:i + block], axis=1, workers=fft_workers())
            np.take(f, pos, axis=1, out=out[i:i + block])
        return out

    def real_imag_points(self, fids: np.ndarray, mask: np.ndarray, scale: float | None = None, dtype=np.float64,
                         block: int = 512) -> np.ndarray:
        """Features [Re, Im] of ``spectrum_points(fids, mask)`` (divided by ``scale`` if given), (T, 2M) of ``dtype``,
        column-major: the numbers and layout of the whole-array ``np.concatenate([s.real, s.imag], 1)`` (a BLAS
        product of the features rounds differently with the other layout), ``block`` transients at a time."""
        fids = np.atleast_2d(fids)
        M = int(np.count_nonzero(mask))
        out = np.empty((len(fids), 2 * M), dtype, order="F")
        for i in range(0, len(fids), block):
            s = self.spectrum_points(fids[i:i + block], mask)
            if scale is not None:
                s = s / scale
            out[i:i + block, :M], out[i:i + block, M:] = s.real, s.imag
        return out

    def to_fid(self, spectrum: np.ndarray, axis: int = -1) -> np.ndarray:
        """Inverse of :meth:`to_spectrum`."""
        spectrum = np.asarray(spectrum)
        if spectrum.shape[axis] != self.n_points:
            raise InputError("to_fid", f"expected {self.n_points} points on axis {axis}, got {spectrum.shape[axis]}")
        return _fft().ifft(np.fft.ifftshift(spectrum, axes=axis), axis=axis, workers=fft_workers())

    def window(self, lo_ppm: float, hi_ppm: float) -> np.ndarray:
        """Boolean mask of points with ``lo_ppm <= ppm <= hi_ppm``, shape (n_points,)."""
        lo, hi = min(lo_ppm, hi_ppm), max(lo_ppm, hi_ppm)
        p = self.ppm
        return (p >= lo) & (p <= hi)

    def window_slice(self, lo_ppm: float, hi_ppm: float) -> slice:
        """Contiguous slice covering ``[lo_ppm, hi_ppm]`` (ppm increases with index)."""
        idx = np.flatnonzero(self.window(lo_ppm, hi_ppm))
        if idx.size == 0:
            raise InputError("SpectralAxis", f"window {lo_ppm}-{hi_ppm} ppm lies outside the axis "
                             f"({self.ppm[0]:.2f}-{self.ppm[-1]:.2f} ppm)")
        return slice(int(idx[0]), int(idx[-1]) + 1)

    def with_points(self, n_points: int) -> "SpectralAxis":
        return SpectralAxis(self.sw_hz, self.f0_mhz, n_points, self.centre_ppm)

    def to_dict(self) -> dict:
        return asdict(self)

    def compatible(self, other: "SpectralAxis", rtol: float = 1e-6) -> bool:
        return (self.n_points == other.n_points
                and np.isclose(self.sw_hz, other.sw_hz, rtol=rtol)
                and np.isclose(self.f0_mhz, other.f0_mhz, rtol=1e-3))
