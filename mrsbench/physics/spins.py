"""Density-matrix engine for small proton spin systems (spin-1/2, full strong coupling).

Conventions
-----------
* Rotating frame at the carrier (``centre_ppm``); offset of spin i: nu_i = (delta_i - centre) * f0 (Hz).
* Hamiltonian (rad/s): H = sum_i 2*pi*nu_i*Iz_i + sum_{i<j} 2*pi*J_ij * (I_i . I_j)   (strong coupling).
* Rotations: R = exp(-i*theta*(cos(phi)*Fx + sin(phi)*Fy)) over the pulsed spins only.
  A 90 deg pulse about y turns Iz into Ix.
* Detection: s(t) = Tr(rho(t) F+) / 2**(n-2) over 1H spins, which picks coherence order -1 and
  gives exp(+2*pi*i*nu*t) for a spin at offset nu (the convention of :mod:`mrsbench.core.axis`);
  the normalisation makes each proton contribute amplitude 1 after an ideal 90 deg pulse.
* Heteronuclear stand-in spins (shift >= 30 ppm in the spin table) take part in J coupling only:
  they are never pulsed, never detected and start with no polarisation.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

HETERO_STANDIN_PPM = 30.0  # FID-A table uses 100 ppm (14N) and 40 ppm (31P) as stand-ins

_SX = np.array([[0, 0.5], [0.5, 0]], dtype=complex)
_SY = np.array([[0, -0.5j], [0.5j, 0]], dtype=complex)
_SZ = np.array([[0.5, 0], [0, -0.5]], dtype=complex)


def _embed(op: np.ndarray, i: int, n: int) -> np.ndarray:
    out = np.array([[1.0 + 0j]])
    for k in range(n):
        out = np.kron(out, op if k == i else np.eye(2))
    return out


@dataclass
class SpinSystem:
    """One coupled group of spins.

    shifts_ppm : (n,) chemical shifts; J : list of (i, j, Hz); scale : multiplicity of the group.
    """

    shifts_ppm: np.ndarray
    couplings: list
    scale: float = 1.0
    name: str = ""

    def __post_init__(self):
        self.shifts_ppm = np.asarray(self.shifts_ppm, dtype=float)

    @property
    def n(self) -> int:
        return len(self.shifts_ppm)

    @property
    def dim(self) -> int:
        return 2 ** self.n

    @cached_property
    def proton(self) -> np.ndarray:
        """Boolean (n,): True for 1H spins, False for heteronuclear stand-ins."""
        return self.shifts_ppm < HETERO_STANDIN_PPM

    @cached_property
    def ops(self) -> dict:
        n = self.n
        return {"x": [_embed(_SX, i, n) for i in range(n)],
                "y": [_embed(_SY, i, n) for i in range(n)],
                "z": [_embed(_SZ, i, n) for i in range(n)]}

    @cached_property
    def mz(self) -> np.ndarray:
        """Total magnetic quantum number of each basis state (diag of Fz over all spins)."""
        return np.real(np.diag(sum(self.ops["z"]))) if self.n else np.zeros(1)

    @cached_property
    def coherence_order(self) -> np.ndarray:
        """(dim, dim) coherence order p = m_a - m_b of each density-matrix element."""
        m = self.mz
        return np.rint(m[:, None] - m[None, :]).astype(int)

    def hamiltonian(self, f0_mhz: float, centre_ppm: float, frame_offset_hz: float = 0.0) -> np.ndarray:
        """Free-precession Hamiltonian (rad/s) in a frame rotating ``frame_offset_hz`` above the carrier."""
        o = self.ops
        nu = (self.shifts_ppm - centre_ppm) * f0_mhz - frame_offset_hz
        H = sum(2 * np.pi * nu[i] * o["z"][i] for i in range(self.n))
        for i, j, J in self.couplings:
            H = H + 2 * np.pi * J * (o["x"][i] @ o["x"][j] + o["y"][i] @ o["y"][j] + o["z"][i] @ o["z"][j])
        return np.asarray(H, dtype=complex)

    def f_op(self, axis: str, spins=None) -> np.ndarray:
        """Sum of single-spin operators over ``spins`` (default: all 1H spins)."""
        idx = np.flatnonzero(self.proton) if spins is None else spins
        return sum((self.ops[axis][i] for i in idx), np.zeros((self.dim, self.dim), complex))

    def initial_rho(self) -> np.ndarray:
        """Thermal-equilibrium deviation density matrix: Fz over 1H spins."""
        return self.f_op("z")

    def hard_pulse(self, theta_deg: float, phase_deg: float = 90.0, spins=None) -> np.ndarray:
        """Propagator of an instantaneous rotation on ``spins`` (default all 1H; stand-ins never)."""
        th, ph = np.deg2rad(theta_deg), np.deg2rad(phase_deg)
        pulsed = set(np.flatnonzero(self.proton) if spins is None else
                     [s for s in spins if self.proton[s]])
        r1 = (np.cos(th / 2) * np.eye(2) - 1j * np.sin(th / 2) * 2 * (np.cos(ph) * _SX + np.sin(ph) * _SY))
        out = np.array([[1.0 + 0j]])
        for k in range(self.n):
            out = np.kron(out, r1 if k in pulsed else np.eye(2))
        return out


def evolve_propagator(H: np.ndarray, t: float) -> np.ndarray:
    """exp(-i H t) for Hermitian H."""
    w, V = np.linalg.eigh(H)
    return (V * np.exp(-1j * w * t)) @ V.conj().T


def shaped_pulse_propagator(system: SpinSystem, b1_rad_s: np.ndarray, dt: float, f0_mhz: float,
                            centre_ppm: float, offset_hz: float, phase_deg: float = 0.0) -> np.ndarray:
    """Propagator of a shaped RF pulse applied at ``offset_hz`` from the carrier.

    The pulse is simulated piecewise-constant in the frame rotating with the RF (all offsets
    shifted by ``-offset_hz``); the result is returned in the carrier frame, i.e. it includes the
    z-rotation by 2*pi*offset*T accumulated relative to that frame. ``b1_rad_s`` (steps,) is the
    RF amplitude gamma*B1(t) in rad/s for each step of length ``dt`` (s).
    """
    H0 = system.hamiltonian(f0_mhz, centre_ppm, frame_offset_hz=offset_hz)
    ph = np.deg2rad(phase_deg)
    Hrf = np.cos(ph) * system.f_op("x") + np.sin(ph) * system.f_op("y")
    Hs = H0[None] + b1_rad_s[:, None, None] * Hrf[None]
    w, V = np.linalg.eigh(Hs)  # batched over steps
    Us = np.einsum("kij,kj,klj->kil", V, np.exp(-1j * w * dt), V.conj())
    U = np.eye(system.dim, dtype=complex)
    for Uk in Us:
        U = Uk @ U
    T = dt * len(b1_rad_s)
    Fz = np.diag(system.mz).astype(complex)
    # back to the carrier frame: rho_c = R rho_e R^dag with R(t) = exp(-i 2 pi offset Fz t)
    R = np.diag(np.exp(-1j * 2 * np.pi * offset_hz * T * np.diag(Fz)))
    return R @ U


def apply(rho: np.ndarray, U: np.ndarray, select: str | None, order: np.ndarray | None = None) -> np.ndarray:
    """Apply ``U`` to ``rho`` with optional coherence-pathway selection by crusher gradients.

    select=None: no selection. select="invert": keep only pathways p -> -p (a refocusing pulse
    between a symmetric crusher pair). select="keep": keep only p -> p (MEGA editing pulse
    gradients, which dephase the in-band transverse magnetisation the editing pulse refocuses
    while leaving z-magnetisation flips, and hence J-editing, intact).
    """
    if select is None:
        return U @ rho @ U.conj().T
    out = np.zeros_like(rho)
    for p in np.unique(order[np.abs(rho) > 0]):
        rp = np.where(order == p, rho, 0)
        moved = U @ rp @ U.conj().T
        target = -p if select == "invert" else p
        out += np.where(order == target, moved, 0)
    return out


def acquire_lines(system: SpinSystem, rho: np.ndarray, H: np.ndarray, tol: float = 1e-6):
    """Line list of the FID detected from ``rho`` under free precession ``H``.

    Returns (freq_hz, amp): s(t) = sum_k amp_k * exp(2*pi*i*freq_k*t), normalised so that each
    proton gives amplitude 1 after an ideal 90 degree pulse. Lines closer than 1e-4 Hz are merged.
    """
    w, V = np.linalg.eigh(H)
    rho_e = V.conj().T @ rho @ V
    Fp = system.f_op("x") + 1j * system.f_op("y")
    F_e = V.conj().T @ Fp @ V
    # s(t) = sum_ab rho_ab(t) F_ba, rho_ab(t) = rho_ab exp(-i (w_a - w_b) t)
    A = rho_e * F_e.T
    freq = (w[None, :] - w[:, None]) / (2 * np.pi)
    A = A.ravel() / 2 ** (system.n - 2)
    freq = freq.ravel()
    keep = np.abs(A) > tol * max(np.abs(A).max(), 1e-300)
    A, freq = A[keep], freq[keep]
    # merge degenerate lines
    order = np.argsort(freq)
    A, freq = A[order], freq[order]
    key = np.rint(freq / 1e-4).astype(np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    amp = np.zeros(len(uniq), complex)
    np.add.at(amp, inv, A)
    f = np.zeros(len(uniq))
    np.add.at(f, inv, freq)
    f /= np.bincount(inv)
    keep = np.abs(amp) > 1e-9
    return f[keep], amp[keep]


def connected_components(n: int, couplings) -> list[list[int]]:
    """Groups of spins linked by nonzero J couplings (independent sub-systems)."""
    parent = list(range(n))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j, J in couplings:
        if J != 0:
            parent[find(int(i))] = find(int(j))
    comps: dict[int, list[int]] = {}
    for k in range(n):
        comps.setdefault(find(k), []).append(k)
    return list(comps.values())


def split_system(shifts, couplings, scale=1.0, name="") -> list[SpinSystem]:
    """Split a group into uncoupled sub-systems (exact: their signals add). Sub-systems made only of
    stand-in spins are dropped (they give no 1H signal)."""
    out = []
    singles: dict[float, int] = {}  # uncoupled protons with equal shift are simulated once
    for comp in connected_components(len(shifts), couplings):
        idx = {old: new for new, old in enumerate(comp)}
        sub_shifts = [shifts[k] for k in comp]
        if all(s >= HETERO_STANDIN_PPM for s in sub_shifts):
            continue
        if len(comp) == 1:
            singles[float(sub_shifts[0])] = singles.get(float(sub_shifts[0]), 0) + 1
            continue
        sub_j = [(idx[int(i)], idx[int(j)], J) for i, j, J in couplings if int(i) in idx and int(j) in idx]
        out.append(SpinSystem(np.array(sub_shifts), sub_j, scale, name))
    for shift, count in singles.items():
        out.append(SpinSystem(np.array([shift]), [], scale * count, name))
    return out
