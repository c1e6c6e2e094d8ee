"""Batched linear-combination model fitting (torch; GPU when present, else CPU).

Model (FSL-MRS, Clarke et al. MRM 2021; ../shared/reference/metrics.md sec. 4), frequency domain,
over a ppm range:

    Y(nu) = B(nu) + exp(i(phi0 + nu*phi1)) * sum_g sum_l c_l FFT{ m_l(t) exp(-(gamma_g + sigma_g^2 t) t - i eps_g t) }

with per-group Lorentzian gamma_g (1/s), Gaussian sigma_g (1/s) and shift eps_g (rad/s), global phases,
and a complex polynomial baseline B. Amplitudes c >= 0 and the baseline are solved for every
trial of the nonlinear parameters (variable projection) by a batched non-negative least-squares
(accelerated projected gradient, FISTA); the nonlinear parameters take batched Levenberg-Marquardt
steps with analytic derivatives. Cramer-Rao lower bounds come from the Fisher information of the
full model at the solution.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..axis import SpectralAxis


_CPU_BLOCK = 16  # spectra per design-matrix block on the CPU (measured: tests/perf/test_perf_fitting.py)


def _torch():
    import torch
    return torch


def default_device() -> str:
    torch = _torch()
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class LCMConfig:
    ppm_range: tuple[float, float] = (0.2, 4.2)   # FSL-MRS default fitting range
    baseline_order: int = 2                       # complex polynomial (FSL-MRS default order 2)
    iterations: int = 10
    nnls_iterations: int = 60
    precision: str = "single"                      # "double" for reference fits (about 2x slower)
    max_shift_hz: float = 10.0
    max_lw_hz: float = 25.0
    max_phi1_s: float = 0.003                     # |first-order phase| bound (rad per rad/s)
    crlb_flag_percent: float = 50.0


@dataclass
class LCMResult:
    """Per-spectrum results; arrays are (B, ...). ``names`` index the amplitude columns."""

    names: list
    amplitudes: np.ndarray        # (B, L) >= 0
    crlb: np.ndarray              # (B, L) absolute sd
    params: dict                  # gamma, sigma, eps (B, G); phi0, phi1 (B,)
    baseline: np.ndarray          # (B, 2*(order+1))
    fit: np.ndarray               # (B, M) complex model over the fit window
    data: np.ndarray              # (B, M)
    ppm: np.ndarray               # (M,)
    flags: list = field(default_factory=list)  # per spectrum, per amplitude: str

    def crlb_percent(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.amplitudes > 0, 100 * self.crlb / self.amplitudes, np.inf)


class LCMFitter:
    """Fit batches of spectra with one basis.

    Parameters
    ----------
    basis_fids : (L, N) complex basis FIDs on ``axis`` (unbroadened).
    names : L component names; groups : L group indices (e.g. 0 metabolites, 1 macromolecules).
    """

    def __init__(self, basis_fids: np.ndarray, names, groups, axis: SpectralAxis, config: LCMConfig | None = None,
                 device: str | None = None):
        self.names = list(names)
        self.groups = np.asarray(groups, int)
        self.axis = axis
        self.config = config or LCMConfig()
        self.device = device or default_device()
        torch = _torch()
        single = self.config.precision == "single"
        self._dt = torch.float32 if single else torch.float64
        self._ct = torch.complex64 if single else torch.complex128
        self.basis = torch.as_tensor(np.asarray(basis_fids), dtype=self._ct, device=self.device)
        self.G = int(self.groups.max()) + 1
        self.win = np.flatnonzero(axis.window(*self.config.ppm_range))
        # the window's indices in unshifted FFT order (saves an fftshift per evaluation)
        self._win_fft = torch.as_tensor((self.win - axis.n_points // 2) % axis.n_points, device=self.device)
        self.t = torch.as_tensor(axis.time, dtype=self._dt, device=self.device)
        hz = axis.hz[self.win]
        self.nu = torch.as_tensor(2 * np.pi * hz, dtype=self._dt, device=self.device)  # rad/s
        x = np.linspace(-1, 1, len(self.win))
        self.poly = torch.as_tensor(np.stack([x ** k for k in range(self.config.baseline_order + 1)], 1),
                                    dtype=self._dt, device=self.device)  # (M, K)
        self.gmask = torch.as_tensor(np.eye(self.G)[self.groups], dtype=self._dt, device=self.device)  # (L, G)
        # the basis sorted by group, so each group's line shape multiplies one contiguous slice (a
        # broadcast product, no (B, L, N) gather of line shapes); columns are put back in basis order
        order = np.argsort(self.groups, kind="stable")
        self._basis_sorted = self.basis[torch.as_tensor(order, device=self.device)].contiguous()
        sg = self.groups[order]
        self._group_slices = [(int(g), int(np.searchsorted(sg, g)), int(np.searchsorted(sg, g, "right")))
                              for g in np.unique(sg)]
        self._unsort = None if np.array_equal(order, np.arange(len(order))) else \
            torch.as_tensor(np.argsort(order), device=self.device)

    # --- model pieces -------------------------------------------------------------------------
    def _spec(self, fid):
        torch = _torch()
        return torch.fft.fft(fid, dim=-1)[..., self._win_fft]

    def _design(self, th):
        """Metabolite columns (B, M, L) complex, including global phase."""
        torch = _torch()
        gam, sig, eps = th["gamma"], th["sigma"], th["eps"]  # (B, G)
        t = self.t
        # lineshape per group (B, G, N)
        ls = torch.exp(-(gam[..., None] + sig[..., None] ** 2 * t) * t - 1j * eps[..., None] * t)
        Bn, (L, N) = ls.shape[0], self.basis.shape
        cols = torch.empty((Bn, L, len(self.win)), dtype=self._ct, device=self.device)  # (B, L, M)
        # on the CPU in blocks of spectra: a (block, L, N) work array stays cache- and allocator-friendly
        # (one (B, L, N) array per call costs more in fresh pages than the FFT itself)
        blk = Bn if self.device != "cpu" else min(Bn, _CPU_BLOCK)
        work = torch.empty((blk, L, N), dtype=self._ct, device=self.device)
        for i in range(0, Bn, blk):
            w = work[:min(blk, Bn - i)]
            for g, a, b in self._group_slices:
                torch.mul(self._basis_sorted[a:b], ls[i:i + blk, g:g + 1], out=w[:, a:b])
            cols[i:i + blk] = self._spec(w)
        if self._unsort is not None:
            cols = cols[:, self._unsort]
        ph = torch.exp(1j * (th["phi0"][:, None] + th["phi1"][:, None] * self.nu[None]))  # (B, M)
        return cols.transpose(1, 2) * ph[..., None], ls

    def _solve_linear(self, A, y, c0=None):
        """min ||y - [A, P] [c; b]||^2 with c >= 0 (FISTA on the normal equations, baseline free)."""
        torch = _torch()
        Bn, M, L = A.shape
        K = self.poly.shape[1]
        Ar = torch.cat([A.real, A.imag], 1)  # (B, 2M, L)
        Pr = torch.zeros((Bn, 2 * M, 2 * K), dtype=self._dt, device=self.device)
        Pr[:, :M, :K] = self.poly
        Pr[:, M:, K:] = self.poly
        X = torch.cat([Ar, Pr], 2)  # (B, 2M, L+2K)
        yr = torch.cat([y.real, y.imag], 1)
        Gm = X.transpose(1, 2) @ X
        h = (X.transpose(1, 2) @ yr[..., None])[..., 0]
        scale = torch.sqrt(torch.diagonal(Gm, dim1=1, dim2=2)).clamp_min(1e-30)  # Jacobi preconditioning
        Gs = Gm / scale[:, :, None] / scale[:, None, :]
        hs = h / scale
        Lip = torch.linalg.eigvalsh(Gs)[:, -1:].clamp_min(1e-30)
        z = torch.zeros_like(hs) if c0 is None else c0 * scale
        xk, tk = z.clone(), 1.0
        nonneg = torch.zeros(L + 2 * K, dtype=torch.bool, device=self.device)
        nonneg[:L] = True
        for _ in range(self.config.nnls_iterations):
            g = (Gs @ z[..., None])[..., 0] - hs
            xn = z - g / Lip
            xn = torch.where(nonneg, xn.clamp_min(0), xn)
            tn = (1 + (1 + 4 * tk * tk) ** 0.5) / 2
            z = xn + ((tk - 1) / tn) * (xn - xk)
            xk, tk = xn, tn
        coef = xk / scale
        return coef, X

    def _residual(self, th, y, c0=None):
        A, ls = self._design(th)
        coef, X = self._solve_linear(A, y, c0)
        model_r = (X @ coef[..., None])[..., 0]
        M = y.shape[1]
        model = model_r[:, :M] + 1j * model_r[:, M:]
        return y - model, coef, A, ls

    def _jac_nonlinear(self, th, coef, A, ls):
        """d(model)/d(theta) for theta = [gamma_g, sigma_g, eps_g (each G), phi0, phi1], (B, M, 3G+2)."""
        torch = _torch()
        L = A.shape[2]
        c = coef[:, :L].to(A.dtype)
        t = self.t
        ph = torch.exp(1j * (th["phi0"][:, None] + th["phi1"][:, None] * self.nu[None]))
        # combined FID of each group, already broadened: (B, G, N)
        sg = torch.stack([(c * self.gmask[:, g].to(c.dtype)) @ self.basis for g in range(self.G)], 1) * ls
        d_gamma = self._spec(sg * (-t)) * ph[:, None]
        d_sigma = self._spec(sg * (-2 * th["sigma"][..., None] * t ** 2)) * ph[:, None]
        d_eps = self._spec(sg * (-1j * t)) * ph[:, None]
        cols = [d_gamma[:, g] for g in range(self.G)] + [d_sigma[:, g] for g in range(self.G)] + \
            [d_eps[:, g] for g in range(self.G)]
        met = (A * c[:, None, :]).sum(2)  # metabolite part incl. phase
        cols.append(1j * met)
        cols.append(1j * self.nu[None] * met)
        return torch.stack(cols, 2)

    def _pack(self, th):
        torch = _torch()
        return torch.cat([th["gamma"], th["sigma"], th["eps"], th["phi0"][:, None], th["phi1"][:, None]], 1)

    def _unpack(self, v):
        G = self.G
        cfg = self.config
        return {"gamma": v[:, :G].clamp(0, np.pi * cfg.max_lw_hz),
                "sigma": v[:, G:2 * G].clamp(0, 2 * np.pi * cfg.max_lw_hz),
                "eps": v[:, 2 * G:3 * G].clamp(-2 * np.pi * cfg.max_shift_hz, 2 * np.pi * cfg.max_shift_hz),
                "phi0": v[:, 3 * G], "phi1": v[:, 3 * G + 1].clamp(-cfg.max_phi1_s, cfg.max_phi1_s)}

    def fit(self, spectra: np.ndarray, init: dict | None = None, fix_shape: bool = False) -> LCMResult:
        """Fit spectra (B, N) complex (``axis.to_spectrum`` convention). Returns :class:`LCMResult`.

        ``init`` gives starting shape parameters per spectrum (``gamma``, ``sigma``, ``eps`` (B, G) and
        optionally ``phi0``, ``phi1`` (B,)); with ``fix_shape`` they are kept fixed (only amplitudes
        and baseline are solved), e.g. to fit DIFF with the line shape of the OFF fit."""
        torch = _torch()
        Y = torch.as_tensor(np.atleast_2d(spectra), dtype=self._ct, device=self.device)
        y = Y[:, self.win]
        Bn = y.shape[0]
        G = self.G
        # initial guess: 3 Hz Lorentzian, moderate Gaussian, no shift; phase from a coarse grid
        th = {"gamma": torch.full((Bn, G), np.pi * 3.0, dtype=self._dt, device=self.device),
              "sigma": torch.full((Bn, G), 15.0, dtype=self._dt, device=self.device),
              "eps": torch.zeros((Bn, G), dtype=self._dt, device=self.device),
              "phi0": torch.zeros(Bn, dtype=self._dt, device=self.device),
              "phi1": torch.zeros(Bn, dtype=self._dt, device=self.device)}
        # zero-order phase start: unconstrained complex least squares on the unphased columns; the
        # phase of the amplitude-weighted coefficient sum is the common phase of the metabolites
        A0, _ = self._design(th)
        AhA = A0.conj().transpose(1, 2) @ A0
        Ahy = (A0.conj().transpose(1, 2) @ y[..., None])[..., 0]
        eye = torch.eye(AhA.shape[1], dtype=AhA.dtype, device=self.device)
        cz = torch.linalg.solve(AhA + 1e-9 * torch.diagonal(AhA, dim1=1, dim2=2).real.mean(1)[:, None, None] * eye,
                                Ahy[..., None])[..., 0]
        th["phi0"] = torch.angle((cz * torch.diagonal(AhA, dim1=1, dim2=2).real).sum(1))
        if init is not None:
            for k, val in init.items():
                th[k] = torch.as_tensor(np.asarray(val), dtype=self._dt, device=self.device).reshape(th[k].shape)
        v = self._pack(th)
        lam = torch.full((Bn,), 1e-2, dtype=self._dt, device=self.device)
        r, coef, A, ls = self._residual(self._unpack(v), y)
        cost = (r.abs() ** 2).sum(1)
        for _ in range(0 if fix_shape else self.config.iterations):
            J = self._jac_nonlinear(self._unpack(v), coef, A, ls)
            Jr = torch.cat([J.real, J.imag], 1)
            rr = torch.cat([r.real, r.imag], 1)
            JtJ = Jr.transpose(1, 2) @ Jr
            g = (Jr.transpose(1, 2) @ rr[..., None])[..., 0]
            D = torch.diagonal(JtJ, dim1=1, dim2=2).clamp_min(1e-12)
            step = torch.linalg.solve(JtJ + lam[:, None, None] * torch.diag_embed(D), g[..., None])[..., 0]
            v_new = self._pack(self._unpack(v + step))
            r_new, coef_new, A_new, ls_new = self._residual(self._unpack(v_new), y, coef)
            cost_new = (r_new.abs() ** 2).sum(1)
            ok = cost_new < cost
            v = torch.where(ok[:, None], v_new, v)
            r = torch.where(ok[:, None], r_new, r)
            coef = torch.where(ok[:, None], coef_new, coef)
            A = torch.where(ok[:, None, None], A_new, A)
            ls = torch.where(ok[:, None, None], ls_new, ls)
            cost = torch.where(ok, cost_new, cost)
            lam = torch.where(ok, lam / 3, lam * 4).clamp(1e-7, 1e7)
        th = self._unpack(v)
        return self._finish(th, coef, A, ls, r, y)

    def _finish(self, th, coef, A, ls, r, y) -> LCMResult:
        torch = _torch()
        L = A.shape[2]
        M = y.shape[1]
        K = self.poly.shape[1]
        # Fisher information of [amplitudes, baseline, nonlinear] with sigma^2 from the residual
        J_nl = self._jac_nonlinear(th, coef, A, ls)
        P = self.poly.to(A.dtype)
        cols = torch.cat([A, P[None].expand(A.shape[0], M, K), 1j * P[None].expand(A.shape[0], M, K), J_nl], 2)
        # in double precision with Jacobi scaling: the columns' scales span many decades
        Jr = torch.cat([cols.real, cols.imag], 1).to(torch.float64)
        dof = max(2 * M - Jr.shape[2], 1)
        s2 = (r.abs().to(torch.float64) ** 2).sum(1) / dof
        F = Jr.transpose(1, 2) @ Jr / s2[:, None, None]
        d = torch.sqrt(torch.diagonal(F, dim1=1, dim2=2).clamp_min(1e-300))
        Fs = F / d[:, :, None] / d[:, None, :]
        cov = torch.linalg.pinv(Fs, rtol=1e-12) / d[:, :, None] / d[:, None, :]
        crlb = torch.sqrt(torch.diagonal(cov, dim1=1, dim2=2)[:, :L].clamp_min(0))
        model = y - r
        amps = coef[:, :L]
        res = LCMResult(self.names, amps.cpu().numpy().astype(np.float64), crlb.cpu().numpy(),
                        {k: v.cpu().numpy() for k, v in th.items()}, coef[:, L:].cpu().numpy(),
                        model.cpu().numpy(), y.cpu().numpy(), self.axis.ppm[self.win])
        res.flags = self._flags(res)
        return res

    def model_fid(self, res: LCMResult) -> np.ndarray:
        """Noise-free model FIDs (B, N) over the whole band from a fit (metabolites with their group
        line shapes and zero-order phase; the baseline and first-order phase are left out)."""
        t = self.axis.time
        basis = self.basis.cpu().numpy().astype(np.complex128)
        gam, sig, eps = (np.asarray(res.params[k], float)[..., None] for k in ("gamma", "sigma", "eps"))
        ls = np.exp(-(gam + sig ** 2 * t) * t - 1j * eps * t)  # (B, G, N)
        out = (res.amplitudes[:, :, None] * basis[None] * ls[:, self.groups]).sum(1)
        return out * np.exp(1j * np.asarray(res.params["phi0"], float))[:, None]

    def _flags(self, res: LCMResult) -> list:
        cfg = self.config
        out = []
        pc = res.crlb_percent()
        for b in range(res.amplitudes.shape[0]):
            row = []
            # per line-shape group: a group's width or shift at its bound flags that group's components only
            bound = (np.isclose(res.params["gamma"][b], np.pi * cfg.max_lw_hz)
                     | np.isclose(np.abs(res.params["eps"][b]), 2 * np.pi * cfg.max_shift_hz))[self.groups]
            for l in range(res.amplitudes.shape[1]):
                f = []
                if not np.isfinite(res.amplitudes[b, l]) or not np.isfinite(res.crlb[b, l]):
                    f.append("nonfinite")
                if res.amplitudes[b, l] <= 0:
                    f.append("at_bound")
                elif pc[b, l] > cfg.crlb_flag_percent:
                    f.append(f"crlb>{cfg.crlb_flag_percent:g}%")
                if bound[l]:
                    f.append("shape_at_bound")
                row.append("|".join(f) or "ok")
            out.append(row)
        return out
