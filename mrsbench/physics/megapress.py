"""MEGA-PRESS (Mescher et al., NMR Biomed 1998) density-matrix simulation.

Timing (FID-A's MEGA-PRESS example, ../shared/reference/invivo.md): excitation at t = 0,
refocusing pulses at TE1/2 and TE1/2 + TE/2, editing pulse 1 centred midway between them
(TE1/2 + TE/4) and editing pulse 2 at TE1/2 + 3TE/4; acquisition starts at the echo (t = TE).
For TE 68 ms and TE1 10 ms this gives the intervals tau = [5, 17, 17, 17, 12] ms.
Excitation and refocusing are ideal (instantaneous) pulses about y on all 1H spins, each
refocusing pulse with crusher coherence selection (p -> -p). Editing pulses are Gaussian,
14 ms, simulated piecewise in the RF frame with the MEGA gradient selection (p -> p).
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import numpy as np

from mrsbench.physics import spins as sp


@dataclass(frozen=True)
class MegaPressConfig:
    """Sequence and scanner parameters (times in s, frequencies in ppm / MHz)."""

    te_s: float = 0.068            # Big GABA TE (Mikkelsen et al. 2017)
    te1_s: float = 0.010           # FID-A example: tau1 = 5 ms
    f0_mhz: float = 127.75         # 3 T (Big GABA Philips: 127.751 MHz)
    centre_ppm: float = 4.68       # carrier / receiver centre
    edit_on_ppm: float = 1.9       # Big GABA edit-ON
    edit_off_ppm: float = 7.46     # Big GABA edit-OFF
    edit_duration_s: float = 0.014  # 14 ms Gaussian editing pulses
    # Gaussian truncated where it falls to 6% of its peak: calibrated so that the inversion FWHM is
    # ~88 Hz, the bandwidth quoted for a 14 ms Gaussian editing pulse (../shared/reference/invivo.md)
    edit_truncation: float = 0.06
    edit_steps: int = 140          # piecewise-constant steps (100 us)
    edit_flip_deg: float = 180.0
    gaba_set: str = "near"         # "near" (Near/Kaiser, default) or "govindaraju"

    def __post_init__(self):
        import math
        for k in ("te_s", "te1_s", "f0_mhz", "centre_ppm", "edit_on_ppm", "edit_off_ppm", "edit_duration_s"):
            if not math.isfinite(getattr(self, k)):
                raise ValueError(f"{k} must be a finite number, got {getattr(self, k)}")
        # proton frequencies of MR scanners: 0.5 T (21 MHz, the lowest clinical fields) to 28.2 T (1.2 GHz, the
        # highest NMR magnets); anything outside is a unit mistake (T for MHz) or a typo
        if not 20.0 <= self.f0_mhz <= 1200.0:
            raise ValueError(f"field {self.f0_mhz} MHz is not a proton frequency of an MR scanner (20-1200 MHz; "
                             "give MHz, e.g. 127.75 for 3 T)")
        if self.te_s <= 0:
            raise ValueError(f"TE must be positive, got {self.te_s * 1e3:g} ms")
        tau5 = self.te_s / 4 - self.te1_s / 2
        if self.te1_s <= 0 or tau5 < self.edit_duration_s / 2:
            raise ValueError(f"TE {self.te_s} s / TE1 {self.te1_s} s leave no room for a "
                             f"{self.edit_duration_s * 1e3:.1f} ms editing pulse before the echo")
        if self.gaba_set not in ("near", "govindaraju"):
            raise ValueError("gaba_set must be 'near' or 'govindaraju'")

    @property
    def taus(self) -> tuple[float, float, float, float, float]:
        """Centre-to-centre intervals (s): exc-180, 180-E1, E1-180, 180-E2, E2-echo."""
        a, q = self.te1_s / 2, self.te_s / 4
        return (a, q, q, q, q - a)

    def to_dict(self) -> dict:
        return asdict(self)


def gaussian_b1(cfg: MegaPressConfig) -> tuple[np.ndarray, float]:
    """Piecewise-constant Gaussian RF amplitude (rad/s) and the step length (s).

    Scaled so that the on-resonance flip angle is ``edit_flip_deg``.
    """
    n, T = cfg.edit_steps, cfg.edit_duration_s
    dt = T / n
    t = (np.arange(n) + 0.5) * dt - T / 2
    sigma = (T / 2) / np.sqrt(2 * np.log(1 / cfg.edit_truncation))
    shape = np.exp(-t ** 2 / (2 * sigma ** 2))
    b1 = shape * np.deg2rad(cfg.edit_flip_deg) / (shape.sum() * dt)
    return b1, dt


def inversion_profile(cfg: MegaPressConfig, offsets_hz: np.ndarray) -> np.ndarray:
    """Mz after the editing pulse for a single uncoupled spin at each offset from the pulse (Hz)."""
    b1, dt = gaussian_b1(cfg)
    out = []
    for off in np.atleast_1d(offsets_hz):
        s = sp.SpinSystem(np.array([cfg.centre_ppm + off / cfg.f0_mhz]), [])
        U = sp.shaped_pulse_propagator(s, b1, dt, cfg.f0_mhz, cfg.centre_ppm, 0.0)
        rho = U @ s.initial_rho() @ U.conj().T
        out.append(2 * np.real(np.trace(rho @ s.f_op("z"))))
    return np.array(out)


def simulate_system(system: sp.SpinSystem, cfg: MegaPressConfig, edit_ppm: float | None):
    """Lines (freq_hz rel. carrier, complex amp) of one spin system for one MEGA-PRESS condition.

    ``edit_ppm=None`` simulates plain PRESS (no editing pulses).
    """
    H = system.hamiltonian(cfg.f0_mhz, cfg.centre_ppm)
    order = system.coherence_order
    t1, t2, t3, t4, t5 = cfg.taus
    half = cfg.edit_duration_s / 2 if edit_ppm is not None else 0.0
    exc = system.hard_pulse(90.0, 90.0)
    ref = system.hard_pulse(180.0, 90.0)
    rho = exc @ system.initial_rho() @ exc.conj().T
    rho = sp.apply(rho, sp.evolve_propagator(H, t1), None)
    rho = sp.apply(rho, ref, "invert", order)
    if edit_ppm is not None:
        b1, dt = gaussian_b1(cfg)
        Ue = sp.shaped_pulse_propagator(system, b1, dt, cfg.f0_mhz, cfg.centre_ppm,
                                        (edit_ppm - cfg.centre_ppm) * cfg.f0_mhz, phase_deg=0.0)
    def edit_block(rho, before, after):
        """Evolve (centre-to-centre interval minus half the pulse), editing pulse, evolve."""
        rho = sp.apply(rho, sp.evolve_propagator(H, before - half), None)
        if edit_ppm is not None:
            rho = sp.apply(rho, Ue, "keep", order)
        return sp.apply(rho, sp.evolve_propagator(H, after - half), None)

    rho = edit_block(rho, t2, t3)
    rho = sp.apply(rho, ref, "invert", order)
    rho = edit_block(rho, t4, t5)
    f, a = sp.acquire_lines(system, rho, H)
    return f, a * system.scale


def simulate_molecule(groups: list[dict], cfg: MegaPressConfig, edit_ppm: float | None):
    """All lines of a molecule (list of spin-table groups) for one condition."""
    fs, As = [], []
    for g in groups:
        for s in sp.split_system(g["shifts_ppm"], g["j_couplings_hz"], g.get("scale_factor", 1.0), g.get("name", "")):
            f, a = simulate_system(s, cfg, edit_ppm)
            fs.append(f)
            As.append(a)
    return np.concatenate(fs), np.concatenate(As)
