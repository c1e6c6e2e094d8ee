"""Quantification of processed edited scans: LCM on OFF and DIFF, Gannet-style fits, tables."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrsbench.core.axis import SpectralAxis
from mrsbench.fitting.lcm import LCMConfig, LCMFitter
from mrsbench.fitting.lcm_result import LCMResult

OFF_METABOLITES = ("NAA", "NAAG", "Cr", "PCr", "GPC", "PCh", "mI", "sI", "Glu", "Gln", "GSH", "GABA", "Lac",
                   "Asp", "Tau")
OFF_MM = ("MM09", "MM12", "MM14", "MM17", "MM20", "Lip09", "Lip13", "Lip20")
DIFF_METABOLITES = ("GABA", "Glu", "Gln", "NAA", "NAAG", "GSH")
DIFF_MM = ("MM3co",)
# combined estimates (FSL-MRS/Osprey conventions)
COMBINED = {"tNAA": ("NAA", "NAAG"), "tCr": ("Cr", "PCr"), "tCho": ("GPC", "PCh"), "Glx": ("Glu", "Gln")}


@dataclass
class Quantifier:
    """LCM quantifier for OFF and DIFF spectra on one axis (basis loaded from the cache)."""

    axis: SpectralAxis
    off_config: LCMConfig = LCMConfig(ppm_range=(0.2, 4.2))
    # DIFF: few columns, so more iterations in double precision cost little
    diff_config: LCMConfig = LCMConfig(ppm_range=(1.8, 4.2), baseline_order=1, iterations=30, nnls_iterations=150,
                                       precision="double")
    device: str | None = None
    mm3co: str = "free"   # "free": fitted in DIFF; "tied": MM3co = MM09/1.5 from the OFF fit (Osprey 3to2MM)
    # "model": the DIFF fit also solves for a residual ON/OFF misalignment, as two columns with free real
    # coefficients built from the OFF fit's model m(t): d/dphi = FFT(i m) and d/df = FFT(2 pi i t m) (the
    # first-order change of ON - OFF when ON is dphi rad / df Hz off OFF; what is not edited cancels only
    # when aligned); "none": not modelled (the harness default at 1.7)
    diff_misalignment: str = "none"
    # "model" (harness >= 1.9): each DIFF is fitted with its own basis, whose edited columns are the ON
    # spectra at the frequency offsets processing measured for that scan's ON transients (drift detunes the
    # editing pulse, see mrsbench.physics.detuning), weighted as they were averaged; "none": the nominal
    # basis (the default up to 1.8). Needs the offsets (``fit(..., on_offsets=...)``); without them: nominal.
    edit_detuning: str = "model"
    # DIFF's zero- and first-order phase: "off" (harness >= 1.9) those of the OFF fit; "start": estimated from
    # DIFF alone by the fitter's least-squares start (up to 1.8)
    diff_phase: str = "off"
    # residual water in OFF: "hsvd" (harness >= 1.10) removed before the fit by HSVD over 4.4-5.0 ppm, as FSL-MRS
    # and Osprey remove it (HLSVD) before fitting, and no water in the OFF basis; "group" (up to 1.9) an H2O
    # column with its own line shape. Its tail is all the 0.2-4.2 ppm window sees of it, and the tail's
    # width, Gaussian and shift trade off: with the group, 10-11 of 48 OFF fits of two fresh cohorts (seeds
    # 7000002, 7000003) ended >0.1% above the best of 10 random restarts (up to 2%, Cr/PCr moved by up to 1.5
    # CRLB); with HSVD none did, on half the LM iterations
    water: str = "hsvd"

    def __post_init__(self):
        from mrsbench.physics.basis import load_basis
        from mrsbench.physics.megapress import MegaPressConfig
        # a field within 0.1% of the default (127.731 MHz challenge data, 127.7 MHz GE) uses the default
        # basis: rendered at the scan's field its offsets move by < 0.1 Hz and J patterns do not change
        f0 = self.axis.f0_mhz
        cfg = MegaPressConfig() if np.isclose(f0, MegaPressConfig().f0_mhz, rtol=1e-3) else MegaPressConfig(f0_mhz=f0)
        basis = load_basis(cfg, progress=False)
        self._basis, self._basis_cfg = basis, cfg   # kept for the per-scan DIFF bases (diff_basis)
        if self.water not in ("hsvd", "group"):
            raise ValueError("water must be 'hsvd' or 'group'")
        # with water="group" residual water (4.68 ppm) gets its own line-shape group: its tail reaches into 3.5-4.2 ppm
        water = ("H2O",) if self.water == "group" else ()
        names = OFF_METABOLITES + OFF_MM + water
        self.off = LCMFitter(basis.fids(self.axis, "off", names), names,
                             [0] * len(OFF_METABOLITES) + [1] * len(OFF_MM) + [2] * len(water), self.axis,
                             self.off_config, self.device)
        if self.mm3co not in ("tied", "free"):
            raise ValueError("mm3co must be 'tied' or 'free'")
        if self.diff_misalignment not in ("none", "model"):
            raise ValueError("diff_misalignment must be 'none' or 'model'")
        if self.edit_detuning not in ("none", "model"):
            raise ValueError("edit_detuning must be 'none' or 'model'")
        if self.diff_phase not in ("off", "start"):
            raise ValueError("diff_phase must be 'off' or 'start'")
        names = DIFF_METABOLITES + (DIFF_MM if self.mm3co == "free" else ())
        groups = [0] * len(DIFF_METABOLITES) + ([1] if self.mm3co == "free" else [])
        fids = basis.fids(self.axis, "diff", names)
        # residual water does not cancel in DIFF (it varies from transient to transient): own group
        fids = np.concatenate([fids, basis.fids(self.axis, "off", ["H2O"])])
        self.diff = LCMFitter(fids, list(names) + ["H2O"], groups + [max(groups) + 1], self.axis, self.diff_config,
                              self.device)
        self._mm3co_spec = self.axis.to_spectrum(basis.fids(self.axis, "diff", ["MM3co"])[0])
        self._diff_metabolites = list(names[:len(DIFF_METABOLITES)])
        # built when first needed (diff_basis): the nominal DIFF basis (L, N), edit-ON FIDs of the DIFF metabolites
        # on the detuning grid (G, len(DIFF_METABOLITES), N) and their OFF FIDs
        self._diff_nominal = self._on_grid = self._off_fids = None

    def diff_basis(self, on_offsets) -> np.ndarray:
        """(B, L, N) DIFF basis FIDs per spectrum: the nominal DIFF basis with the metabolite columns made from
        ON at each spectrum's ON-transient frequency offsets (``on_offsets``: B pairs (offsets Hz, weights), as
        :meth:`mrsbench.processing.Processed.on_offsets_hz` gives), minus OFF."""
        from mrsbench.physics.detuning import detuned_on_fids, grid_weights
        names = self._diff_metabolites
        if self._on_grid is None:
            b = self._basis
            self._diff_nominal = self.diff.basis.cpu().numpy().astype(np.complex128)  # DIFF metabolites, [MM3co], H2O
            self._on_grid = detuned_on_fids(self._basis_cfg, self.axis, b.fids(self.axis, "on", names), names)
            self._off_fids = b.fids(self.axis, "off", names)
        c = np.stack([grid_weights(hz, w) for hz, w in on_offsets])      # (B, G)
        out = np.repeat(self._diff_nominal[None], len(c), 0)
        out[:, :len(names)] = np.einsum("bg,gln->bln", c, self._on_grid) - self._off_fids[None]
        return out

    def fit(self, off_spectra: np.ndarray, diff_spectra: np.ndarray, on_offsets=None):
        """Fit batches (B, N) of OFF and DIFF spectra. Returns (off_result, diff_result).

        ``on_offsets``: per spectrum, the frequency offsets (Hz) and averaging weights of its ON transients
        (:meth:`mrsbench.processing.Processed.on_offsets_hz`); with ``edit_detuning="model"`` DIFF is then
        fitted with each scan's own editing (see :meth:`diff_basis`).

        With ``mm3co="tied"`` the co-edited MM3co signal is fixed from the OFF fit's MM09 amplitude
        (MM09 3 H : MM3co 2 H, Osprey's 3to2MM), subtracted from DIFF and reported in the DIFF result
        as an extra ``MM3co`` amplitude (its CRLB scaled from MM09's)."""
        off_spectra, diff_spectra = np.atleast_2d(off_spectra), np.atleast_2d(diff_spectra)
        ro = self.fit_off(off_spectra)
        # ON and OFF share one line shape (same voxel, same shim): DIFF is fitted with the OFF fit's
        # metabolite line shape held fixed, which removes the GABA/MM3co-vs-width ambiguity
        # (validation: GABA/tCr r 0.84 -> 0.89, GABA+/tCr 0.69 -> 0.90)
        G = self.diff.G
        shape = {k: np.repeat(ro.params[k][:, :1], G, 1) for k in ("gamma", "sigma", "eps")}
        if self.diff_phase == "off":
            # and its phase: processing phased ON and OFF together and aligned ON to OFF, so DIFF has OFF's
            # zero- and first-order phase. Estimated from DIFF alone (the least-squares start, never refined
            # with the shape held) it was 0.5-2 deg off even on noise-free spectra (DIFF's columns are nearly
            # collinear), which moved GABA by several percent (seed 31337: DIFF GABA r 0.915 -> 0.934 by this alone)
            shape.update(phi0=ro.params["phi0"], phi1=ro.params["phi1"])
        extra = self._misalignment_columns(ro)
        if on_offsets is not None and len(on_offsets) != len(diff_spectra):
            raise ValueError(f"on_offsets: {len(on_offsets)} entries for {len(diff_spectra)} spectra")
        offs = on_offsets if self.edit_detuning == "model" else None
        if self.mm3co == "free":
            return ro, self._fit_diff(diff_spectra, off_spectra, shape, extra, offs)
        k = ro.names.index("MM09")
        mm3 = ro.amplitudes[:, k] / 1.5
        rd = self._fit_diff(diff_spectra - mm3[:, None] * self._mm3co_spec[None], off_spectra, shape, extra, offs)
        rd.names = rd.names + ["MM3co"]
        rd.amplitudes = np.concatenate([rd.amplitudes, mm3[:, None]], 1)
        rd.crlb = np.concatenate([rd.crlb, ro.crlb[:, k:k + 1] / 1.5], 1)
        rd.flags = [row + [ro.flags[b][k]] for b, row in enumerate(rd.flags)]
        return ro, rd

    def fit_off(self, off_spectra: np.ndarray) -> LCMResult:
        """The OFF fit of spectra (B, N): with ``water="hsvd"`` each spectrum's residual water (HSVD components
        over :data:`~mrsbench.processing.WATER_BAND_PPM`) is removed first and kept in the result's ``removed``
        (B, N) FIDs, which :meth:`~mrsbench.fitting.lcm.LCMFitter.model_fid` adds back."""
        off_spectra = np.atleast_2d(off_spectra)
        if self.water == "group":
            return self.off.fit(off_spectra)
        water = remove_water(self.axis.to_fid(off_spectra), self.axis)
        res = self.off.fit(off_spectra - self.axis.to_spectrum(water))
        res.removed = water
        return res

    def _fit_diff(self, diff, off, shape, extra, on_offsets=None, chunk: int = 128):
        """The DIFF fit, with each scan's own basis where ``on_offsets`` are given (in chunks of ``chunk``
        spectra: a basis per spectrum is (L, N) complex)."""
        if on_offsets is None:
            return self._fit_diff_batch(diff, off, shape, extra)
        parts = []
        for i in range(0, len(diff), chunk):
            sl = slice(i, i + chunk)
            parts.append(self._fit_diff_batch(diff[sl], off[sl], {k: v[sl] for k, v in shape.items()},
                                              None if extra is None else extra[sl],
                                              self.diff_basis(on_offsets[sl])))
        return parts[0] if len(parts) == 1 else LCMResult.concat(parts)

    def _fit_diff_batch(self, diff, off, shape, extra, basis=None, passes: int = 6):
        """The DIFF fit; with misalignment columns, Gauss-Newton on the ON/OFF misalignment: each pass rotates
        and shifts ON = DIFF + OFF back by the total estimated so far (exactly, in the time domain) and refits,
        so the first-order columns only have to catch what is left. ``params["extra"]`` then holds the total
        (phase rad, frequency Hz) by which ON was found off OFF. The columns are OFF's derivatives, not ON's: with
        DIFF's phase held at OFF's (harness 1.9) each pass catches ~90% of what is left (a known 4 deg / 0.3 Hz
        misalignment to 1.7% after 6 passes, to 0.1% after 10; with DIFF's own phase estimate 3 passes did)."""
        if extra is None:
            return self.diff.fit(diff, init=shape, fix_shape=True, basis=basis)
        ax = self.axis
        on_fid, off_fid = ax.to_fid(diff + off), ax.to_fid(off)
        total = np.zeros((len(diff), 2))
        d = diff
        for k in range(passes):
            rd = self.diff.fit(d, init=shape, fix_shape=True, extra=extra, basis=basis)
            total += rd.params["extra"]
            if k + 1 < passes:
                back = np.exp(-1j * (total[:, :1] + 2 * np.pi * total[:, 1:] * ax.time[None]))
                d = ax.to_spectrum(on_fid * back - off_fid)
        rd.params["extra"] = total
        return rd

    def _misalignment_columns(self, ro) -> np.ndarray | None:
        """(B, 2, N) spectra d/dphi and d/df (per rad, per Hz) of the OFF model, or None (see diff_misalignment)."""
        if self.diff_misalignment == "none":
            return None
        m = self.off.model_fid(ro)
        ax = self.axis
        cols = np.stack([ax.to_spectrum(1j * m), ax.to_spectrum(2j * np.pi * ax.time * m)], 1)
        if self.diff_phase == "off":   # DIFF's columns carry OFF's first-order phase too (model_fid has phi0 only)
            cols = cols * np.exp(1j * np.asarray(ro.params["phi1"], float)[:, None, None] * 2 * np.pi * ax.hz)
        return cols


def remove_water(fids: np.ndarray, axis: SpectralAxis) -> np.ndarray:
    """Residual-water model of each FID (B, N): the sum of its HSVD components (Barkhuijsen et al. JMR 1987)
    with frequencies in :data:`~mrsbench.processing.WATER_BAND_PPM` (4.4-5.0 ppm), (B, N) complex. A FID with
    non-finite values gets none (zeros): its fit reports it (``nonfinite`` flags) as without water removal."""
    from mrsbench.processing import WATER_BAND_PPM
    from mrsbench.processing.alignment import hsvd_components
    return np.stack([hsvd_components(np.asarray(f, complex), axis, WATER_BAND_PPM) if np.isfinite(f).all()
                     else np.zeros(len(f), complex) for f in np.atleast_2d(fids)])


def lcm_ratios(off_res, diff_res) -> dict[str, np.ndarray]:
    """Ratios to tCr (Cr + PCr from the OFF fit): GABA and GABA+ (GABA + MM3co) and Glx from DIFF,
    tNAA, tCho, mI, Glx from OFF. Each (B,)."""
    def amp(res, name):
        return res.amplitudes[:, res.names.index(name)]

    tcr = amp(off_res, "Cr") + amp(off_res, "PCr")
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "GABA": amp(diff_res, "GABA") / tcr,
            "GABA+": (amp(diff_res, "GABA") + amp(diff_res, "MM3co")) / tcr,
            "Glx": (amp(diff_res, "Glu") + amp(diff_res, "Gln")) / tcr,
            "Glx_off": (amp(off_res, "Glu") + amp(off_res, "Gln")) / tcr,
            "tNAA": (amp(off_res, "NAA") + amp(off_res, "NAAG")) / tcr,
            "tCho": (amp(off_res, "GPC") + amp(off_res, "PCh")) / tcr,
            "mI": amp(off_res, "mI") / tcr,
        }


def _row(metab, method, spectrum, est, tcr, sd, flag, fit_error=float("nan")):
    ratio = est / tcr if (tcr and np.isfinite(tcr) and tcr > 0) else float("nan")
    crlb = 100 * sd / est if est > 0 else float("inf")
    if not np.isfinite(est) or not np.isfinite(ratio):
        flag = "nonfinite" if flag == "ok" else flag + "|nonfinite"
    return {"metabolite": metab, "method": method, "spectrum": spectrum, "estimate": float(est),
            "ratio_tcr": float(ratio), "crlb_percent": float(crlb), "flag": flag, "fit_error_percent": float(fit_error)}


def quantify_table(off_spec: np.ndarray, diff_spec: np.ndarray, axis: SpectralAxis, quantifier: Quantifier | None = None,
                   crlb_flag: float = 50.0, on_offsets=None):
    """Long-form table (pandas DataFrame) for one processed scan: LCM rows for every OFF component
    and the DIFF GABA/MM3co, combined GABA+, Glx (DIFF), tNAA, tCho, tCr; Gannet rows GABA+, Glx, Cr.

    ``estimate`` is the fitted amplitude (LCM: T2-weighted concentration-like units; Gannet: area),
    ``ratio_tcr`` the ratio to tCr of the same method, ``crlb_percent`` the relative Cramer-Rao
    bound (Gannet: from the fit covariance), ``flag`` ok / at_bound / crlb>X% / nonfinite /
    shape_at_bound / not_converged, ``fit_error_percent`` (LCM: RMS residual in the component's own
    region relative to its fitted peak, see :meth:`LCMFitter.fit_error_percent`; Gannet: its FitErr).
    ``on_offsets``: the scan's ON-transient frequency offsets and weights (``Processed.on_offsets_hz()``),
    for the DIFF fit with the scan's own editing (see :class:`Quantifier`)."""
    import pandas as pd

    from mrsbench.fitting.gannet import gannet_fits

    q = quantifier or Quantifier(axis)
    ro, rd = q.fit(off_spec[None], diff_spec[None], on_offsets=None if on_offsets is None else [on_offsets])
    rows = []

    def get(res, name):
        k = res.names.index(name)
        return res.amplitudes[0, k], res.crlb[0, k], res.flags[0][k]

    tcr = get(ro, "Cr")[0] + get(ro, "PCr")[0]
    combos_off = {"tNAA": ("NAA", "NAAG"), "tCho": ("GPC", "PCh"), "tCr": ("Cr", "PCr")}
    combos_diff = {"GABA+": ("GABA", "MM3co"), "Glx": ("Glu", "Gln")}
    fe_off = q.off.fit_error_percent(ro, combos_off)
    fe_diff = q.diff.fit_error_percent(rd, {k: v for k, v in combos_diff.items() if all(n in rd.names for n in v)}) \
        if q.mm3co == "free" else q.diff.fit_error_percent(rd, {"Glx": ("Glu", "Gln")})
    for name in ro.names:
        a, sd, fl = get(ro, name)
        rows.append(_row(name, "lcm", "off", a, tcr, sd, fl, fe_off[name][0]))
    for name in ("GABA", "MM3co"):
        a, sd, fl = get(rd, name)
        rows.append(_row(name, "lcm", "diff", a, tcr, sd, fl, fe_diff.get(name, [np.nan])[0]))

    def combo(res, names, label, spectrum, fe):
        vals = [get(res, n) for n in names]
        a = sum(v[0] for v in vals)
        sd = float(np.sqrt(sum(v[1] ** 2 for v in vals)))
        # a combined row is flagged from its own CRLB; of its components' flags only the fit-level
        # ones carry over (a small, uncertain MM3co does not make GABA+ uncertain)
        inherited = sorted({f for v in vals for f in v[2].split("|") if f in ("nonfinite", "shape_at_bound",
                                                                              "not_converged")})
        pc = 100 * sd / a if a > 0 else np.inf
        fl = inherited + ([f"crlb>{crlb_flag:g}%"] if pc > crlb_flag else [])
        rows.append(_row(label, "lcm", spectrum, a, tcr, sd, "|".join(fl) or "ok", fe))

    for label, names in combos_diff.items():
        combo(rd, names, label, "diff", fe_diff.get(label, [np.nan])[0])
    for label, names in combos_off.items():
        combo(ro, names, label, "off", fe_off[label][0])
    gf = gannet_fits(off_spec[None], diff_spec[None], axis)
    g, gg, cr = gf["gaba"], gf["gabaglx"], gf["cr"]
    c_area = cr["area"][0]
    def fl(fit):
        return "at_bound" if fit["at_bound"][0] else "ok"

    rows.append(_row("GABA+", "gannet", "diff", g["area"][0], c_area, g["area_sd"][0], fl(g), g["fit_error"][0]))
    rows.append(_row("Glx", "gannet", "diff", gg["glx_area"][0], c_area, gg["glx_area_sd"][0], fl(gg), gg["glx_fit_error"][0]))
    rows.append(_row("tCr", "gannet", "off", c_area, c_area, cr["area_sd"][0], fl(cr), cr["fit_error"][0]))
    df = pd.DataFrame(rows)
    for i, r in df.iterrows():
        if r.flag == "ok" and r.crlb_percent > crlb_flag:
            df.loc[i, "flag"] = f"crlb>{crlb_flag:g}%"
    return df
