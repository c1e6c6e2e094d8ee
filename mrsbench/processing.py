"""Processing of edited transients: alignment, weighted averaging, subtraction, referencing.

Every step is a small pure function on arrays; :func:`process` composes them with a
:class:`ProcessingConfig`. Shapes: transients (T, N) complex FIDs; spectra via the axis convention.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .axis import SpectralAxis
from .data import OFF, ON, Scan
from .errors import InputError

CR_PPM = 3.027     # Cr methyl reference (FSL-MRS edited pipeline, metrics.md sec. 4)
CHO_PPM = 3.2      # ON-to-OFF alignment window centre, +/- 0.09 ppm (Mikkelsen et al. NBM 2020)
# Cr CH3 3.027 ppm, GPC/PCh N(CH3)3 3.21 ppm (Govindaraju et al. NBM 2000, Table 2): Cho sits 0.185 ppm above Cr
CHO_CR_SEP_PPM = 0.185
# L1 sub-spectrum alignment band (Osprey osp_editSubSpecAlignLNorm; Cleve et al. JMR 2017;279:60-69)
L1_ALIGN_PPM = (0.0, 4.2)
WATER_BAND_PPM = (4.4, 5.0)  # residual water (4.68 ppm at 37 C) and its drift-shifted copies


@dataclass(frozen=True)
class ProcessingConfig:
    """Parameters of :func:`process` (ppm windows, s, iteration counts)."""

    # alignment band: FSL-MRS uses 1.9-4.2 ppm for edited data; the upper edge is kept at 4.0 ppm so the
    # tail of residual water (4.68 ppm), which varies from transient to transient, stays out
    align_ppm: tuple[float, float] = (1.8, 4.0)
    t_max_s: float = 0.2                           # spectral registration uses t <= t_max (Near 2015)
    gn_iterations: int = 6
    # residual water varies from transient to transient and its tail reaches into the alignment band:
    # after the first pass, a water model (HSVD of the aligned average, 4.4-5.0 ppm poles) scaled to each
    # transient is subtracted from the copies used for estimating the shifts (not from the averages)
    water_model: bool = True
    ref_passes: int = 2                            # reference updated with w = 0.5 corr^2 between passes
    # ON-to-OFF alignment: "cho_tails" (least squares over Cho 3.2 +/- 0.09 ppm against OFF plus the
    # DIFF's own tails in that window), "cho" (plain least squares there), "l1" (L1 norm of the real DIFF
    # over 0-4.2 ppm, Cleve et al. 2017), "water" (4.68 +/- 0.22) or "none"; see align_on_to_off
    align_conditions: str = "cho_tails"
    weighted: bool = True                          # Osprey weighted averaging, w ~ 1/d^2
    reject_outliers: bool = True
    outlier_z: float = 3.0                         # robust z-score of d above which a transient is rejected
    cr_reference: bool = True
    phase_tcr: bool = True                         # zero-order phase from a Cr/Cho line-shape fit of OFF


@dataclass
class Processed:
    """Result of :func:`process`: averaged FIDs (N,), per-transient estimates and weights."""

    axis: SpectralAxis
    on: np.ndarray
    off: np.ndarray
    freq_hz: np.ndarray           # (T,) estimated frequency offset of each transient vs its reference
    phase_rad: np.ndarray         # (T,)
    weights: np.ndarray           # (T,) normalised per condition; 0 for rejected transients
    rejected: np.ndarray          # (T,) bool
    edit: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def diff(self) -> np.ndarray:
        return self.on - self.off

    def spectra(self) -> dict[str, np.ndarray]:
        ax = self.axis
        return {"on": ax.to_spectrum(self.on), "off": ax.to_spectrum(self.off), "diff": ax.to_spectrum(self.diff)}


# --- elementary steps ------------------------------------------------------------------------

def band_filter(fids: np.ndarray, axis: SpectralAxis, ppm: tuple[float, float]) -> np.ndarray:
    """Keep only the spectral band ``ppm`` (hard mask in the frequency domain)."""
    import scipy.fft as sfft

    m = np.fft.ifftshift(axis.window(*ppm))  # mask in unshifted FFT order: no fftshift round trip
    spec = sfft.fft(fids, axis=-1, workers=-1)
    spec *= m
    return sfft.ifft(spec, axis=-1, workers=-1, overwrite_x=True)


def phasor(axis: SpectralAxis, freq_hz, phase_rad, n: int | None = None) -> np.ndarray:
    """exp(i(2*pi*f*t + phi)) for the first ``n`` time points, f and phi broadcast per transient."""
    n = axis.n_points if n is None else n
    f = np.asarray(freq_hz, float)
    p = np.asarray(phase_rad, float)
    lead = np.broadcast_shapes(f.shape, p.shape)
    z = np.exp(2j * np.pi * f * axis.dwell_s)
    # z^k = z^(B*j) * z^m for k = B*j + m: two short running products (length B and n/B, relative
    # error ~ 64 * 1e-16) and one broadcast product; ~10x cheaper than cumprod over n or sin/cos per sample
    B = 64
    J = -(-n // B)
    lo = np.broadcast_to(z[..., None], z.shape + (B,)).copy()
    lo[..., 0] = 1.0
    lo = np.cumprod(lo, axis=-1)                                  # z^m, m < B
    hi = np.broadcast_to((lo[..., -1] * z)[..., None], z.shape + (J,)).copy()
    hi[..., 0] = 1.0
    hi = np.cumprod(hi, axis=-1) * np.exp(1j * p)[..., None]      # e^(i phi) z^(B j)
    out = (np.broadcast_to(hi, lead + (J,))[..., :, None] * np.broadcast_to(lo, lead + (B,))[..., None, :])
    return out.reshape(lead + (J * B,))[..., :n]


def apply_shift(fids: np.ndarray, axis: SpectralAxis, freq_hz, phase_rad) -> np.ndarray:
    """fids * exp(i(2*pi*f*t + phi)) with f, phi broadcast per transient."""
    return fids * phasor(axis, freq_hz, phase_rad, np.shape(fids)[-1])


def spectral_registration(fids: np.ndarray, ref: np.ndarray, axis: SpectralAxis, t_max_s: float = 0.2,
                          iterations: int = 6, start: tuple[np.ndarray, np.ndarray] | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Frequency (Hz) and zero-order phase (rad) that align each transient to ``ref`` (Near et al.
    MRM 2015): least squares |ref(t) - x(t) exp(i(2 pi f t + phi))|^2 over t <= t_max, solved for all
    transients at once by Gauss-Newton, started from the cross-spectrum peak (~1 Hz grid) unless
    ``start`` = (f, phi) is given.

    fids: (T, N) complex; ref: (N,) complex. Returns (f, phi), each (T,).
    """
    import scipy.fft as sfft

    x = np.atleast_2d(fids)
    n = max(8, min(x.shape[1], int(round(t_max_s / axis.dwell_s))))
    t = axis.time[:n]
    xs, r = x[:, :n], ref[:n]
    # |x exp(i theta)|^2 = |x|^2 and Im(conj(y) (y - r)) = Im(x conj(r) exp(i theta)) with y = x exp(i theta): the
    # normal equations' weights are fixed and the gradient needs one product with c = x conj(r) per iteration
    c = xs * np.conj(r)[None]
    if start is None:
        # coarse start: cross(f') = sum conj(x) r exp(-2 pi i f' t) peaks at the f that aligns x to r,
        # and its phase there is the phi that does
        zf = max(2048, 2 * n)  # ~1 Hz grid; Gauss-Newton refines
        cross = sfft.fft(np.conj(c), n=zf, axis=1, workers=-1)
        freqs = np.fft.fftfreq(zf, axis.dwell_s)
        cand = np.flatnonzero(np.abs(freqs) <= 60.0)  # search +/- 60 Hz
        k = cand[np.argmax(np.abs(cross[:, cand]), axis=1)]
        f = freqs[k].astype(float)
        phi = np.angle(cross[np.arange(len(k)), k]).astype(float)
    else:
        f, phi = np.array(start[0], float), np.array(start[1], float)
    w2pt = 2 * np.pi * t
    a2 = (xs.real.astype(float) ** 2 + xs.imag.astype(float) ** 2)
    s0, s1, s2 = a2.sum(1), a2 @ w2pt, a2 @ (w2pt ** 2)
    det = s2 * s0 - s1 ** 2 + 1e-300
    cr, ci = c.real, c.imag
    for _ in range(iterations):
        ph = phasor(axis, f, phi, n)
        g = cr * ph.imag + ci * ph.real          # Im(c exp(i theta)) = Re(conj(i y) (y - r))
        g1, g0 = g @ w2pt, g.sum(1)
        f = f - (s0 * g1 - s1 * g0) / det
        phi = phi - (s2 * g0 - s1 * g1) / det
    return f, np.angle(np.exp(1j * phi))


def hsvd_components(fid: np.ndarray, axis: SpectralAxis, band_ppm: tuple[float, float], n_points: int = 128,
                    rank: int = 12) -> np.ndarray:
    """Sum of the damped complex exponentials of ``fid`` (N,) whose frequencies fall in ``band_ppm``,
    over all N points: HSVD (Barkhuijsen et al. JMR 1987; the state-space form of Pijnappel et al.
    JMR 1992, as used for residual-water removal by FSL-MRS and Osprey) on the first ``n_points``
    points, ``rank`` components; growing components are never kept."""
    n = min(n_points, len(fid))
    L = n // 2
    H = fid[np.arange(L)[:, None] + np.arange(n - L + 1)[None]]
    U = np.linalg.svd(H, full_matrices=False)[0][:, :rank]
    z = np.linalg.eigvals(np.linalg.lstsq(U[:-1], U[1:], rcond=None)[0])
    ppm = axis.hz_to_ppm(np.angle(z) / (2 * np.pi * axis.dwell_s))
    keep = (ppm >= band_ppm[0]) & (ppm <= band_ppm[1]) & (np.abs(z) < 1.0)
    if not keep.any():
        return np.zeros_like(fid)
    V = np.ones((len(fid), len(z)), complex)             # (N, rank) Vandermonde z^k by running product
    V[1:] = z[None]
    V = np.cumprod(V, axis=0)
    amp = np.linalg.lstsq(V[:n], fid[:n], rcond=None)[0]
    return V[:, keep] @ amp[keep]


def _remove_water(fids: np.ndarray, axis: SpectralAxis, ph: np.ndarray) -> np.ndarray:
    """Subtract from each transient (T, N) its own complex multiple of the average's water model, all
    in the aligned frame given by the phasors ``ph`` (T, N); returned in the original frame. The
    multiple is the projection onto the model within 4.5-4.86 ppm (time domain, by Parseval)."""
    al = fids * ph
    water = hsvd_components(al.mean(0).astype(complex), axis, WATER_BAND_PPM)
    band = axis.to_fid(axis.to_spectrum(water) * axis.window(4.5, 4.86))
    c = (al @ np.conj(band).astype(fids.dtype)) / (np.vdot(band, band).real + 1e-300)
    return fids - (c[:, None] * water.astype(fids.dtype)[None]) * np.conj(ph)


def align_condition(fids: np.ndarray, axis: SpectralAxis, cfg: ProcessingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Robust-style alignment of one condition (Mikkelsen et al. NBM 2020, block form): align the
    band-filtered transients to an initial reference (the transient acquired in the middle of the
    scan, as in Near et al. 2015); then rebuild the reference as the average of the aligned
    transients weighted by w = 0.5 corr^2 with the current reference, re-filter the transients in
    the aligned frame (so the band edges do not bias the estimate) and refine; ``ref_passes`` passes."""
    n = max(8, min(fids.shape[1], int(round(cfg.t_max_s / axis.dwell_s))))
    f = np.zeros(len(fids))
    phi = np.zeros(len(fids))
    # single precision is ample here (estimates reach the Cramer-Rao bound, see tests) and halves the cost
    fids = np.asarray(fids, np.complex64)
    xs = band_filter(fids, axis, cfg.align_ppm)[:, :n]
    ref = xs[len(xs) // 2]
    first = True
    for _ in range(max(1, cfg.ref_passes)):
        its = cfg.gn_iterations if first else max(2, cfg.gn_iterations // 2)
        df, dphi = spectral_registration(xs, ref, axis, cfg.t_max_s, its, None if first else (np.zeros(len(f)), np.zeros(len(f))))
        f, phi = f + df, phi + dphi
        ph = phasor(axis, f, phi).astype(np.complex64)
        if first and cfg.water_model:
            fids = _remove_water(fids, axis, ph)
        xs = band_filter(fids * ph, axis, cfg.align_ppm)[:, :n]
        corr = np.abs(xs @ np.conj(ref)) / (np.linalg.norm(xs, axis=1) * np.linalg.norm(ref) + 1e-300)
        w = 0.5 * corr ** 2
        ref = (w[:, None] * xs).sum(0) / w.sum()
        first = False
    df, dphi = spectral_registration(xs, ref, axis, cfg.t_max_s, max(2, cfg.gn_iterations // 2),
                                     (np.zeros(len(f)), np.zeros(len(f))))
    f, phi = f + df, phi + dphi
    # the frame of the average: the median transient's frequency and the transients' mean phase, not the
    # initial reference's (a motion-corrupted middle transient would otherwise shift and rotate the whole
    # condition: measured on a fresh validation cohort, an ON average 19 Hz and 84 degrees off its OFF)
    f = f - np.median(f)
    phi = phi - np.angle(np.mean(np.exp(1j * phi)))
    return f, np.angle(np.exp(1j * phi))


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
    w = 1.0 / np.maximum(d, 1e-300) ** 2 if weighted else np.ones(len(d))
    w = np.where(rejected, 0.0, w)
    return w / w.sum(), rejected


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


def align_on_to_off(on: np.ndarray, off: np.ndarray, axis: SpectralAxis, mode: str = "cho_tails") -> tuple[float, float]:
    """(f, phi) that align ON to OFF, ON * exp(i(2 pi f t + phi)).

    ``"cho"``: least squares |ON' - OFF|^2 over Cho 3.2 +/- 0.09 ppm (complex spectra; Mikkelsen et al.
    NBM 2020); ``"water"``: the same over residual water 4.68 +/- 0.22 ppm. The DIFF is not zero in the Cho
    window: the dispersion (imaginary) tails of the large edited signals outside it (NAA at 2.0 ppm, Glx,
    GABA) reach in, and pull the plain fit by about 3 degrees on noise-free simulated scans, which leaves a
    Cr residue under GABA+. ``"cho_tails"`` (default) fits ON' - OFF to those tails instead of to zero: the
    tails are the window's part of the causal signal whose real spectrum is the current DIFF's real part
    outside the window (Kramers-Kronig: a causal FID's imaginary spectrum is the Hilbert transform of its
    real one); two passes from the "cho" estimate (bias about 0.7 degrees). ``"l1"``: minimise the L1 norm
    of the real DIFF over 0-4.2 ppm (Cleve et al. JMR 2017; Osprey's default; phased spectra), nearly
    unbiased but less precise on short scans here."""
    if mode not in ("cho_tails", "l1", "cho", "water"):
        raise ValueError(f"align mode must be 'cho_tails', 'cho', 'l1' or 'water', not {mode!r}")
    if mode == "l1":
        # residual water does not cancel between the averages (least of all in short scans) and its tail
        # would dominate the L1 norm: align copies with the water (HSVD, 4.4-5.0 ppm) removed
        return _align_l1(on - hsvd_components(on, axis, WATER_BAND_PPM),
                         off - hsvd_components(off, axis, WATER_BAND_PPM), axis)
    lo, hi = (4.68 - 0.22, 4.68 + 0.22) if mode == "water" else (CHO_PPM - 0.09, CHO_PPM + 0.09)
    m = np.fft.ifftshift(axis.window(lo, hi))  # window in unshifted FFT order
    S_all = np.fft.fft(off)
    p = _fit_shift(on, S_all[m], m, axis, (0.0, 0.0))
    if mode == "cho_tails":
        for _ in range(2):
            d = _shifted_spectra(on, axis, p[0], p[1])[0] - S_all
            p = _fit_shift(on, S_all[m] + _causal_tails(d, m), m, axis, p)
    return p


def _shifted_spectra(on: np.ndarray, axis: SpectralAxis, f: float, phi: float, mask=slice(None)) -> np.ndarray:
    """(2, M): FFT of on * exp(i(2 pi f t + phi)) and its derivative in f, at ``mask`` (unshifted FFT order)."""
    t = axis.time
    x = on * np.exp(1j * (2 * np.pi * f * t + phi))
    return np.fft.fft(np.stack([x, 2j * np.pi * t * x]), axis=-1)[:, mask]


def _fit_shift(on: np.ndarray, target: np.ndarray, m: np.ndarray, axis: SpectralAxis, start,
               iterations: int = 8) -> tuple[float, float]:
    """Gauss-Newton for min over (f, phi) of |FFT(on exp(i(2 pi f t + phi)))[m] - target|^2 (complex)."""
    f, phi = float(start[0]), float(start[1])
    for _ in range(iterations):
        Y = _shifted_spectra(on, axis, f, phi, m)
        r = Y[0] - target
        J = np.stack([Y[1], 1j * Y[0]], axis=1)                       # d/df, d/dphi (complex)
        Jr = np.concatenate([J.real, J.imag])
        step = np.linalg.lstsq(Jr, np.concatenate([r.real, r.imag]), rcond=None)[0]
        f, phi = f - step[0], phi - step[1]
        if abs(step[0]) < 1e-6 and abs(step[1]) < 1e-7:
            break
    return float(f), float(np.angle(np.exp(1j * phi)))


def _causal_tails(spectrum: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The part inside ``window`` of the causal signal whose real spectrum is Re(spectrum) outside the
    window (zero inside): FID = 2 u(t) IFFT(real part), first point halved. Spectra in unshifted FFT
    order (window a mask in the same order)."""
    x = np.fft.ifft(np.where(window, 0.0, spectrum.real))
    n = len(x)
    s = 2 * x
    s[n // 2:] = 0
    s[0] = x[0]
    return np.fft.fft(s)[window]


def _align_l1(on: np.ndarray, off: np.ndarray, axis: SpectralAxis, iterations: int = 40,
              delta_rel: float = 1e-3) -> tuple[float, float]:
    """min over (f, phi) of sum |Re(ON' - OFF)| over 0-4.2 ppm by iteratively reweighted Gauss-Newton
    (weights 1 / max(|r|, delta), delta = 1e-3 of the largest OFF point), started at (0, 0)."""
    w = np.fft.ifftshift(axis.window(*L1_ALIGN_PPM))
    off_re = np.fft.fft(off)[w].real
    delta = delta_rel * (float(np.abs(off_re).max()) or 1.0)
    f = phi = 0.0
    for _ in range(iterations):
        Y = _shifted_spectra(on, axis, f, phi, w)
        r = Y[0].real - off_re
        J = np.stack([Y[1].real, -Y[0].imag], axis=1)  # d Re(Y)/df, d Re(Y)/dphi = Re(i Y)
        om = 1.0 / np.maximum(np.abs(r), delta)
        step = np.linalg.solve(J.T @ (J * om[:, None]), J.T @ (om * r))
        f, phi = f - step[0], phi - step[1]
        if abs(step[0]) < 1e-5 and abs(step[1]) < 1e-6:
            break
    return float(f), float(np.angle(np.exp(1j * phi)))


# --- pipeline ---------------------------------------------------------------------------------

def check_transients(scan: Scan) -> tuple[np.ndarray, dict]:
    """Documented fallbacks: all-zero transients are dropped (recorded); a condition left with fewer
    than 2 transients is an error. Unequal ON/OFF counts are allowed (each condition is averaged
    on its own) and recorded."""
    src = scan.meta.get("source") or f"subject {scan.subject}"
    zero = ~np.any(scan.fids != 0, axis=1)
    keep = ~zero
    for lab, name in ((ON, "edit-ON"), (OFF, "edit-OFF")):
        n = int(np.sum(keep & (scan.edit == lab)))
        if n < 2:
            raise InputError(src, f"only {n} usable {name} transient(s) (all-zero transients are dropped); "
                             "at least 2 per condition are needed")
    info = {"dropped_zero": np.flatnonzero(zero).tolist(), "n_on": int(np.sum(keep & (scan.edit == ON))),
            "n_off": int(np.sum(keep & (scan.edit == OFF)))}
    return keep, info


def process(scan: Scan, cfg: ProcessingConfig | None = None) -> Processed:
    """Align, weight, average, subtract and reference an edited scan."""
    cfg = cfg or ProcessingConfig()
    ax = scan.axis
    keep, info = check_transients(scan)
    T = scan.n_transients
    freq = np.zeros(T)
    phase = np.zeros(T)
    weights = np.zeros(T)
    rejected = np.zeros(T, bool)
    avg = {}
    for lab in (ON, OFF):
        idx = np.flatnonzero(keep & (scan.edit == lab))
        x = scan.fids[idx]
        f, p = align_condition(x, ax, cfg)
        al = x * phasor(ax, f, p)
        d = transient_distances(ax.to_spectrum(al)[:, ax.window(*cfg.align_ppm)])
        w, rej = averaging_weights(d, cfg.weighted, cfg.reject_outliers, cfg.outlier_z)
        freq[idx], phase[idx], weights[idx], rejected[idx] = f, p, w, rej
        avg[lab] = (w[:, None] * al).sum(0)
    on, off = avg[ON], avg[OFF]
    # referencing and phasing come from OFF alone and are applied to both conditions (they commute with
    # the ON-to-OFF alignment); the tails and L1 alignments use real parts, so they run on phased spectra
    if cfg.cr_reference:
        df = cr_reference_shift(off, ax)
        on, off = apply_shift(on, ax, df, 0.0), apply_shift(off, ax, df, 0.0)
        info["cr_shift_hz"] = df
    if cfg.phase_tcr:
        ph = tcr_phase(off, ax)
        on, off = on * np.exp(1j * ph), off * np.exp(1j * ph)
        info["tcr_phase_rad"] = ph
    if cfg.align_conditions != "none":
        f, p = align_on_to_off(on, off, ax, cfg.align_conditions)
        on = apply_shift(on, ax, f, p)
        info["on_to_off_hz"], info["on_to_off_rad"] = f, p
    return Processed(ax, on, off, freq, phase, weights, rejected, scan.edit.copy(), info)


def process_subset(scan: Scan, index, cfg: ProcessingConfig | None = None) -> Processed:
    """Process the transients ``index`` of ``scan``."""
    return process(scan.select(index), cfg)
