"""In-vivo-like simulated MEGA-PRESS cohorts with known ground truth.

Three levels of variation (ranges from ../shared/reference/invivo.md unless stated):

* site (vendor-like): Gaussian line-shape width (shim quality), single-transient SNR, residual-water
  level (water-suppression quality), frequency offset, zero-order phase, eddy-current phase, drift rate;
* subject: correlated metabolite concentrations within de Graaf's adult ranges, T2 weighting at TE,
  macromolecules (MM09 and MM3co tied 3:2; MM share of GABA+ 41-49%), occasional lipid contamination,
  Voigt line shape (Lorentzian + Gaussian), smooth baseline;
* transient (160 ON + 160 OFF interleaved, TR 2 s): linear + random-walk frequency drift that also
  detunes the editing pulse (bases simulated on a grid of edit offsets, interpolated), phase and
  amplitude jitter, residual water varying per transient, complex Gaussian noise, and rare
  motion-corrupted transients (indices recorded).
"""
from __future__ import annotations

from dataclasses import dataclass, asdict, field

import numpy as np

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.scans import Cohort, Scan
from mrsbench.physics.detuning import EDIT_GRID_HZ, detuned_on_fids

COHORT_VERSION = "2"  # bump when the simulator's output changes (invalidates dataset caches)

# Adult brain concentration ranges, mM (de Graaf, In Vivo NMR Spectroscopy; invivo.md).
CONC_RANGES: dict[str, tuple[float, float]] = {
    "GABA": (1.0, 2.0), "Glu": (6.0, 12.5), "Gln": (3.0, 6.0), "GSH": (1.7, 3.0), "NAA": (7.5, 12.0),
    "NAAG": (0.5, 2.5), "Cr": (4.5, 10.5), "PCr": (3.0, 5.5), "mI": (4.0, 9.0), "Tau": (3.0, 6.0),
    "Asp": (1.0, 2.0), "Lac": (0.2, 1.0), "sI": (0.2, 0.5), "GPC": (0.6, 1.5), "PCh": (0.4, 1.0),
}
# GPC + PCh: choline compounds 1-2.5 mM split ~60/40 (range above sums to 1.0-2.5).

# Moderate positive correlations between metabolite pools (approx.; illustrative of the
# co-variation reported for tNAA, tCr and Glx): pairs and correlation coefficients.
CONC_CORRELATIONS = {("NAA", "NAAG"): 0.3, ("Cr", "PCr"): 0.4, ("Glu", "Gln"): 0.4, ("GPC", "PCh"): 0.5,
                     ("NAA", "Cr"): 0.3, ("Glu", "GABA"): 0.2, ("mI", "Cr"): 0.2}

# Metabolite T2 at 3 T (s): NAA 247, Cr 162, Cho 207 ms (Traber et al., JMRI 2004); GABA 88 ms
# (Edden et al., MRM 2012); Glu/Gln ~180 ms, mI ~200 ms, others ~150 ms (approx., Wyss et al. 2018).
T2_S = {"NAA": 0.247, "NAAG": 0.247, "Cr": 0.162, "PCr": 0.162, "GPC": 0.207, "PCh": 0.207, "GABA": 0.088,
        "Glu": 0.180, "Gln": 0.180, "GSH": 0.150, "mI": 0.200, "sI": 0.200, "Tau": 0.150, "Asp": 0.150,
        "Lac": 0.150}


@dataclass(frozen=True)
class CohortConfig:
    """Every parameter of a simulated cohort (frequencies Hz, times s, angles degrees)."""

    name: str = "simgaba-small"
    n_sites: int = 3
    subjects_per_site: int = 4
    n_pairs: int = 160                      # ON/OFF pairs (320 transients)
    tr_s: float = 2.0                       # Big GABA TR
    sw_hz: float = 2000.0
    n_points: int = 2048
    f0_mhz: float = 127.75
    centre_ppm: float = 4.68
    te_s: float = 0.068
    seed: int = 20261125
    conc_sampling: str = "gaussian"   # "gaussian": centred, range = +/-2 sd; "uniform": spans the ranges evenly
    # site level
    site_gauss_lw_hz: tuple[float, float] = (3.0, 6.0)     # -> NAA FWHM ~6-9 Hz with the Lorentzian part
    site_snr: tuple[float, float] = (12.0, 22.0)           # single-transient NAA SNR, order 15-20
    site_water_rel: tuple[float, float] = (1.0, 30.0)      # residual water / NAA amplitude (log-uniform)
    site_freq_offset_hz: tuple[float, float] = (-4.0, 4.0)
    site_phase_deg: tuple[float, float] = (-40.0, 40.0)
    site_ec_rad: tuple[float, float] = (0.0, 0.25)          # eddy-current phase amplitude, decay 30 ms
    site_drift_hz_min: tuple[float, float] = (0.1, 2.0)     # |drift| log-uniform; typ. 0.3, up to 1.2-3.9
    # subject level
    subj_lorentz_lw_hz: tuple[float, float] = (2.5, 4.0)
    t2_jitter: float = 0.10
    mm_share: tuple[float, float] = (0.41, 0.49)            # MM fraction of the 3 ppm GABA+ signal
    lipid_prob: float = 0.15
    lipid_rel: tuple[float, float] = (0.5, 3.0)             # lipid amplitude in NAA-proton units
    baseline_rel: float = 0.05
    # transient level
    random_walk_hz: float = 0.05           # per-transient random-walk step sd (~0.9 Hz over a scan)
    phase_jitter_deg: float = 3.0
    amp_jitter: float = 0.01
    water_jitter: float = 0.25
    motion_prob: float = 0.008
    edit_grid_hz: tuple[float, ...] = EDIT_GRID_HZ
    # a user-supplied MEGA-PRESS basis (FSL-MRS JSON ON/OFF folders or LCModel .BASIS pair) instead of the
    # built-in one; editing-pulse detuning under drift needs the built-in engine and is then off
    basis_dir: str | None = None
    basis_hash: str | None = None

    @property
    def axis(self) -> SpectralAxis:
        return SpectralAxis(self.sw_hz, self.f0_mhz, self.n_points, self.centre_ppm)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SubjectTruth:
    subject: str
    site: str
    conc: dict
    values: dict = field(default_factory=dict)


def _bases(cfg: CohortConfig):
    """Basis FIDs on the cohort axis: nominal ON/OFF for all components and ON for the edited
    metabolites on the grid of editing-pulse detunings. Returns (names, on, off, on_grid)."""
    from mrsbench.physics.basis import load_basis
    from mrsbench.physics.megapress import MegaPressConfig

    ax = cfg.axis
    base_cfg = MegaPressConfig(te_s=cfg.te_s, f0_mhz=cfg.f0_mhz, centre_ppm=cfg.centre_ppm)
    basis = load_basis(base_cfg)
    names = [n for n in basis.names if n != "H2O"]
    if cfg.basis_dir is not None:
        from mrsbench.physics.external_basis import external_bases
        names, on, off, _missing = external_bases(cfg.basis_dir, names, ax)
        water = basis.fids(ax, "off", ["H2O"])[0] / 2.0  # residual water is not part of a user's basis
        return names, on, off, np.repeat(on[None], len(cfg.edit_grid_hz), 0), water
    on = basis.fids(ax, "on", names)
    off = basis.fids(ax, "off", names)
    water = basis.fids(ax, "off", ["H2O"])[0] / 2.0  # one proton-equivalent
    return names, on, off, detuned_on_fids(base_cfg, ax, on, names, cfg.edit_grid_hz), water


def _loguniform(rng, lo, hi, size=None):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def _draw_concentrations(rng, n: int, sampling: str = "gaussian") -> list[dict]:
    names = list(CONC_RANGES)
    C = np.eye(len(names))
    for (a, b), r in CONC_CORRELATIONS.items():
        i, j = names.index(a), names.index(b)
        C[i, j] = C[j, i] = r
    z = rng.multivariate_normal(np.zeros(len(names)), C, size=n)
    if sampling == "uniform":  # Gaussian copula: same correlations, uniform marginals over each range
        from scipy.stats import norm
        u = norm.cdf(z)
        return [{m: float(CONC_RANGES[m][0] + u[i, k] * (CONC_RANGES[m][1] - CONC_RANGES[m][0]))
                 for k, m in enumerate(names)} for i in range(n)]
    out = []
    for row in z:
        d = {}
        for k, m in enumerate(names):
            lo, hi = CONC_RANGES[m]
            # mean at the range centre, range = +/-2 sd, clipped to the range
            d[m] = float(np.clip((lo + hi) / 2 + row[k] * (hi - lo) / 4, lo, hi))
        out.append(d)
    return out


def simulate_cohort(cfg: CohortConfig, progress: bool = False) -> tuple[Cohort, dict]:
    """Simulate a cohort. Returns the :class:`Cohort` (ground truth attached as a DataFrame) and a
    dict of extra arrays: noise-free ON/OFF FIDs per subject (n_subjects, 2, N), the frequency (Hz) and
    zero-order phase (rad; before motion corruption) of every transient (n_subjects, T)."""
    import pandas as pd

    rng = np.random.default_rng(cfg.seed)
    ax = cfg.axis
    t = ax.time
    names, on_b, off_b, grid_b, water_b = _bases(cfg)
    n_pairs = cfg.n_pairs
    n_sub = cfg.n_sites * cfg.subjects_per_site
    all_conc = _draw_concentrations(rng, n_sub, cfg.conc_sampling)
    # GABA+ edited integral per unit concentration of GABA and MM3co (for the MM-share tie)
    w = ax.window(2.85, 3.17)
    diff_spec = ax.to_spectrum((on_b - off_b) * np.exp(-np.pi * 6.0 * t)).real
    gaba_int = diff_spec[names.index("GABA"), w].sum()
    mm_int = diff_spec[names.index("MM3co"), w].sum() if "MM3co" in names else 0.0

    scans, rows, clean, drifts, phases = [], [], [], [], []
    it = range(n_sub)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"simulating {cfg.name}", unit="subject")
    sites = []
    for s in range(cfg.n_sites):
        sites.append({
            "site": f"site{s + 1:02d}",
            "gauss_lw": rng.uniform(*cfg.site_gauss_lw_hz),
            "snr": rng.uniform(*cfg.site_snr),
            "water_rel": _loguniform(rng, *cfg.site_water_rel),
            "f_off": rng.uniform(*cfg.site_freq_offset_hz),
            "phase": rng.uniform(*cfg.site_phase_deg),
            "ec": rng.uniform(*cfg.site_ec_rad),
            "drift": _loguniform(rng, *cfg.site_drift_hz_min) * rng.choice([-1, 1]),
        })
    for k in it:
        site = sites[k // cfg.subjects_per_site]
        subj = f"sub-{k + 1:03d}"
        srng = np.random.default_rng([cfg.seed, k])
        conc = dict(all_conc[k])
        t2w = {m: np.exp(-cfg.te_s / (T2_S[m] * (1 + cfg.t2_jitter * srng.standard_normal()))) for m in T2_S}
        share = srng.uniform(*cfg.mm_share)
        gaba_sig = conc["GABA"] * t2w["GABA"] * gaba_int
        mm3co = share / (1 - share) * gaba_sig / mm_int if mm_int else 0.0  # no MM3co in a user basis: none
        conc["MM3co"] = float(mm3co)
        conc["MM09"] = float(mm3co * 1.5)  # MM09 (3 H) : MM3co (2 H) tied 3:2 (Osprey 3to2MM)
        amp = np.zeros(len(names))
        for m, c in conc.items():
            if m in names:
                amp[names.index(m)] = c * t2w.get(m, 1.0)
        # other MM components in proportion to MM09 (same scale), lipids occasionally
        for m in ("MM12", "MM14", "MM17", "MM20"):
            u = srng.uniform(0.6, 1.0)
            if m in names:
                amp[names.index(m)] = conc["MM09"] * u
        lipid = srng.random() < cfg.lipid_prob
        lip_amp = srng.uniform(*cfg.lipid_rel) * conc["NAA"] if lipid else 0.0
        for m in ("Lip09", "Lip13", "Lip20"):
            u = srng.uniform(0.5, 1.0) if lipid else 0.0
            if m in names:
                amp[names.index(m)] = lip_amp * u
        lor = srng.uniform(*cfg.subj_lorentz_lw_hz)
        gau = site["gauss_lw"] * srng.uniform(0.9, 1.1)
        shape = np.exp(-np.pi * lor * t - (np.pi * gau * t) ** 2 / (4 * np.log(2)))
        # smooth baseline: two very broad components (FWHM ~0.8-1.5 ppm) around 1-4 ppm
        base = np.zeros(ax.n_points, complex)
        for _ in range(2):
            nu = ax.ppm_to_hz(srng.uniform(1.0, 4.0))
            fw = srng.uniform(0.8, 1.5) * ax.f0_mhz
            base += cfg.baseline_rel * conc["NAA"] * 3 * srng.uniform(-1, 1) * \
                np.exp(2j * np.pi * nu * t - (np.pi * fw * t) ** 2 / (4 * np.log(2)))
        clean_on = (amp @ on_b) * shape + base
        clean_off = (amp @ off_b) * shape + base
        grid = np.einsum("m,gmn->gn", amp, grid_b) * shape + base  # (G, N) ON at each detuning
        # --- transients (interleaved ON, OFF) -------------------------------------------------
        n_tr = 2 * n_pairs
        tmin = np.arange(n_tr) * cfg.tr_s / 60.0
        rate = site["drift"] * srng.uniform(0.7, 1.3)
        walk = np.cumsum(srng.normal(0, cfg.random_walk_hz, n_tr))
        df = site["f_off"] + rate * tmin + walk                      # Hz, per transient
        ph = np.deg2rad(site["phase"] + srng.normal(0, cfg.phase_jitter_deg, n_tr))
        a = 1 + srng.normal(0, cfg.amp_jitter, n_tr)
        is_on = np.arange(n_tr) % 2 == 0
        fids = np.empty((n_tr, ax.n_points), complex)
        fids[~is_on] = clean_off
        gh = np.asarray(cfg.edit_grid_hz)
        d_on = np.clip(df[is_on], gh[0], gh[-1])
        hi = np.clip(np.searchsorted(gh, d_on), 1, len(gh) - 1)
        lo = hi - 1
        wt = ((d_on - gh[lo]) / (gh[hi] - gh[lo]))[:, None]
        fids[is_on] = (1 - wt) * grid[lo] + wt * grid[hi]
        # residual water, varying transient to transient
        naa_amp = conc["NAA"] * t2w["NAA"] * 3
        wamp = site["water_rel"] * naa_amp * np.exp(srng.normal(0, cfg.water_jitter, n_tr))
        wph = srng.normal(0, 0.3, n_tr)
        water = (wamp * np.exp(1j * wph))[:, None] * (water_b * np.exp(-np.pi * (lor + 2.0) * t))[None]
        fids = fids + water
        # motion-corrupted transients: phase jump, frequency jump, signal loss, broadening
        motion = np.flatnonzero(srng.random(n_tr) < cfg.motion_prob)
        ec = site["ec"] * np.exp(-t / 0.03)
        fids = fids * (a * np.exp(1j * ph))[:, None] * np.exp(2j * np.pi * df[:, None] * t[None] + 1j * ec[None])
        for i in motion:
            fids[i] *= srng.uniform(0.3, 0.8) * np.exp(1j * srng.uniform(-np.pi, np.pi)) * \
                np.exp(2j * np.pi * srng.uniform(-15, 15) * t - np.pi * srng.uniform(5, 20) * t)
        # noise: single-transient NAA SNR = peak(real OFF NAA) / sd(real spectral noise)
        ref_spec = ax.to_spectrum(clean_off * np.exp(1j * ec)).real
        naa_peak = np.abs(ref_spec[ax.window(1.9, 2.1)]).max()
        snr = site["snr"] * srng.uniform(0.9, 1.1)
        sigma = naa_peak / (snr * np.sqrt(ax.n_points))  # per real/imag channel in the time domain
        fids = fids + sigma * (srng.standard_normal(fids.shape) + 1j * srng.standard_normal(fids.shape))
        edit = is_on.astype(np.int8)
        scans.append(Scan(fids, edit, ax, subject=subj, site=site["site"], meta={"simulated": True}))
        clean.append(np.stack([clean_on, clean_off]))  # truth: no phase, drift, eddy currents, water, noise
        drifts.append(df)
        phases.append(ph)
        naa_lw = _voigt_fwhm(lor, gau)
        row = {"subject": subj, "site": site["site"], **{m: round(v, 6) for m, v in conc.items()},
               "lorentz_lw_hz": lor, "gauss_lw_hz": gau, "naa_fwhm_hz": naa_lw, "snr": snr,
               "drift_hz_per_min": rate, "freq_offset_hz": site["f_off"], "phase_deg": site["phase"],
               "water_rel": site["water_rel"], "lipid": bool(lipid), "mm_share": share,
               "noise_sigma": sigma, "outlier_transients": ";".join(str(i) for i in motion),
               # T2 weighting exp(-TE/T2) of each metabolite in this subject: signal amplitude = conc * t2w
               **{f"t2w_{m}": round(float(v), 6) for m, v in t2w.items()}}
        rows.append(row)
    gt = pd.DataFrame(rows)
    cohort = Cohort(scans, name=cfg.name, ground_truth=gt, meta={"config": cfg.to_dict()})
    extras = {"clean": np.stack(clean), "drift_hz": np.stack(drifts), "phase_rad": np.stack(phases)}
    return cohort, extras


def _voigt_fwhm(lor: float, gau: float) -> float:
    """Voigt FWHM from Lorentzian and Gaussian FWHMs (Olivero & Longbothum 1977, 0.02% accuracy)."""
    return 0.5346 * lor + np.sqrt(0.2166 * lor ** 2 + gau ** 2)
