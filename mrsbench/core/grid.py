"""Bring scans from different scanners onto one benchmark axis (resampling in ppm).

Sites differ in spectral width, point count, field strength (Siemens 2.89 T at 123.2 MHz, GE/Philips 3 T
at 127.7 MHz) and receiver reference (NIfTI-MRS 4.65 ppm, Philips 4.68 ppm). A cohort whose scans do not
share one axis is resampled onto the benchmark axis :data:`BENCH_AXIS` (Big GABA Philips: 2000 Hz, 2048
points, 127.75 MHz, receiver 4.68 ppm; :mod:`mrsbench.core.axis`):

* each FID is zero-filled to at least 4x its length (band-limited interpolation of its DFT), its spectrum
  is linearly interpolated at the benchmark axis's ppm values (real and imaginary parts), points of the
  benchmark band outside the scan's band are zero, and the result is transformed back to a FID;
* amplitudes are scaled by (benchmark band in ppm) / (scan band in ppm), which keeps every peak's area
  in FID-amplitude units (sum of its spectrum points / N) unchanged;
* chemical shifts (ppm) and widths in ppm are kept; widths in Hz therefore scale with the field, as a
  spectrum plotted in ppm does. J-couplings (Hz) scale too: exact at one field only, a ~3% effect between
  2.89 T and 3 T, far below a line width.

The choice is recorded in the cohort's ``meta["harmonisation"]`` and from there in results.
"""
from __future__ import annotations

import numpy as np

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.errors import InputError

BENCH_AXIS = SpectralAxis()
# field strengths accepted as "3 T" (42.577 MHz/T): Siemens 2.89 T (123.2 MHz) to 3.05 T (130 MHz)
FIELD_RANGE_MHZ = (120.0, 130.5)


def check_field(axis: SpectralAxis, src) -> None:
    """One-line error unless the scan is 1H at about 3 T (the benchmark's protocol)."""
    lo, hi = FIELD_RANGE_MHZ
    if not lo <= axis.f0_mhz <= hi:
        raise InputError(src, f"field strength {axis.f0_mhz / 42.577:.2f} T ({axis.f0_mhz:g} MHz): the benchmark "
                         f"is defined at about 3 T ({lo / 42.577:.2f}-{hi / 42.577:.2f} T)")


def same_axis(a: SpectralAxis, b: SpectralAxis) -> bool:
    """Same grid: points, spectral width, receiver reference and field (to 0.1%)."""
    return a.compatible(b) and abs(a.centre_ppm - b.centre_ppm) < 1e-6


def resample_fids(fids: np.ndarray, src: SpectralAxis, dst: SpectralAxis = BENCH_AXIS) -> np.ndarray:
    """FIDs (..., src.n_points) on ``src`` resampled in ppm onto ``dst``: (..., dst.n_points) complex."""
    fids = np.asarray(fids)
    n_zf = 1 << int(np.ceil(np.log2(4 * max(src.n_points, dst.n_points))))
    big = src.with_points(n_zf)
    zf = np.zeros(fids.shape[:-1] + (n_zf,), complex)
    zf[..., :src.n_points] = fids
    spec = big.to_spectrum(zf).reshape(-1, n_zf)    # ppm increasing with index
    # linear interpolation at the benchmark ppm values: indices and weights once for every FID
    x, q = big.ppm, dst.ppm
    inside = (q >= x[0]) & (q <= x[-1])
    hi = np.clip(np.searchsorted(x, q), 1, n_zf - 1)
    w = (q - x[hi - 1]) / (x[hi] - x[hi - 1])
    out = np.where(inside, (1 - w) * spec[:, hi - 1] + w * spec[:, hi], 0.0)
    # keep peak areas in FID units, sum(points) / N = integral over ppm x f0 / sw: ratio of the bands in ppm
    scale = (dst.sw_hz / dst.f0_mhz) / (src.sw_hz / src.f0_mhz)
    return dst.to_fid(out * scale).reshape(fids.shape[:-1] + (dst.n_points,))


def common_grid(axes: list) -> SpectralAxis:
    """The grid to harmonise onto: the grid more than half of the scans share (only the others are resampled;
    resampling smooths noise: an unchanged file's NAA SNR moved by +6 to +9% when one off-grid file made every
    scan be resampled), else the benchmark grid :data:`BENCH_AXIS` (no grid speaks for the cohort)."""
    groups: list[list] = []
    for a in axes:
        for g in groups:
            if same_axis(g[0], a):
                g.append(a)
                break
        else:
            groups.append([a])
    best = max(groups, key=len)
    return best[0] if 2 * len(best) > len(axes) else BENCH_AXIS


def harmonise_scans(scans: list, target: SpectralAxis | None = None) -> tuple[list, dict]:
    """Put every scan on one axis. Scans already sharing one grid are left as they are. Otherwise ``target``
    (default: :func:`common_grid`, the grid most scans share when they are a majority, else the benchmark's) is the axis, and only the scans not on it are
    resampled. Returns (scans, record) where record says what was done and which scans were resampled (stored
    as ``meta["harmonisation"]``)."""
    from mrsbench.core.scans import Scan
    axes = [s.axis for s in scans]
    if target is None and all(same_axis(a, axes[0]) for a in axes):
        return scans, {"resampled": [], "axis": axes[0].to_dict(), "method": "none (one native grid)"}
    target = target or common_grid(axes)
    out, moved, native = [], [], {}
    for s in scans:
        if same_axis(s.axis, target):
            out.append(s)
            continue
        fids = resample_fids(s.fids, s.axis, target)
        meta = dict(s.meta, native_axis=s.axis.to_dict())
        out.append(Scan(fids, s.edit.copy(), target, subject=s.subject, site=s.site, meta=meta))
        moved.append(s.subject)
        native[s.subject] = s.axis.to_dict()
    return out, {"resampled": moved, "native_axes": native, "axis": target.to_dict(),
                 "method": "ppm resampling of the scans not on the majority grid (else the benchmark grid): 4x zero-fill, linear "
                           "interpolation of the spectrum at that grid's ppm values, zero outside the native band, "
                           "amplitude kept (mrsbench.core.grid)"}
