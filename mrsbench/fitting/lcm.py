"""Batched linear-combination model fitting (torch; GPU when present, else CPU).

Model (FSL-MRS, Clarke et al. MRM 2021; ../shared/reference/metrics.md sec. 4), frequency domain,
over a ppm range:

    Y(nu) = B(nu) + exp(i(phi0 + nu*phi1)) * sum_g sum_l c_l FFT{ m_l(t) exp(-(gamma_g + s_g t) t - i eps_g t) }

with per-group Lorentzian gamma_g (1/s), Gaussian s_g = sigma_g^2 (1/s^2) and shift eps_g (rad/s), global
phases, and a complex polynomial baseline B. The Gaussian is fitted as s = sigma^2 >= 0: the model is
smooth in s with a non-zero derivative at s = 0, whereas with sigma itself exp(-sigma^2 t^2) has zero
derivative at sigma = 0 and a fit clamped there can never leave (measured: 16 of 48 validation OFF fits
ended at sigma = 0, OFF GABA/tCr r 0.65). Amplitudes c >= 0 and the baseline are solved for every
trial of the nonlinear parameters (variable projection) by a batched non-negative least-squares
(accelerated projected gradient, FISTA); the nonlinear parameters take batched Levenberg-Marquardt
steps with analytic derivatives until each spectrum converges (relative cost decrease below
``ftol`` on an accepted step, or no descent at the largest damping), spectra that have converged
leaving the batch. Cramer-Rao lower bounds come from the Fisher information of the full model at
the solution.
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
    iterations: int = 60                          # maximum LM iterations (each spectrum stops when converged)
    ftol: float = 1e-5                            # convergence: relative cost decrease of an accepted step
    starts: int = 2                               # line-shape starts per spectrum (see LCMFitter.fit)
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
    params: dict                  # gamma, sigma, sigma2, eps (B, G); phi0, phi1 (B,)
    baseline: np.ndarray          # (B, 2*(order+1))
    fit: np.ndarray               # (B, M) complex model over the fit window
    data: np.ndarray              # (B, M)
    ppm: np.ndarray               # (M,)
    flags: list = field(default_factory=list)  # per spectrum, per amplitude: str
    iterations: np.ndarray | None = None          # (B,) LM iterations taken
    converged: np.ndarray | None = None           # (B,) bool

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
        gam, s2, eps = th["gamma"], th["sigma2"], th["eps"]  # (B, G)
        t = self.t
        # lineshape per group (B, G, N)
        ls = torch.exp(-(gam[..., None] + s2[..., None] * t) * t - 1j * eps[..., None] * t)
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

    def _real_design(self, A):
        """[Re; Im] of the metabolite columns next to the complex baseline's columns: (B, 2M, L+2K)."""
        torch = _torch()
        Bn, M, _ = A.shape
        K = self.poly.shape[1]
        Pr = torch.zeros((Bn, 2 * M, 2 * K), dtype=self._dt, device=self.device)
        Pr[:, :M, :K] = self.poly
        Pr[:, M:, K:] = self.poly
        return torch.cat([torch.cat([A.real, A.imag], 1), Pr], 2)

    def _projected_normal(self, Jr, A, coef, rr):
        """Gauss-Newton matrix of variable projection (Kaufman 1975; Golub & Pereyra 2003): the
        Jacobian of the residual after the linear solve is P J, J minus its projection onto the linear
        columns in use (amplitudes > 0 and the baseline), so (PJ)^T PJ = J^T J - J^T X (X^T X)^-1 X^T J.
        Without the projection Gauss-Newton overrates the curvature along directions the amplitudes
        absorb and LM crawls (measured: 35% of validation fits converged in 60 iterations, all of them
        in a median 12 with it). Only small (P x P, C x P) products; the solve in double precision."""
        torch = _torch()
        L = A.shape[2]
        X = self._real_design(A).to(torch.float64)
        Jr = Jr.to(torch.float64)
        m = torch.cat([coef[:, :L] > 0, torch.ones_like(coef[:, L:], dtype=torch.bool)], 1).to(torch.float64)
        XtX = (X.transpose(1, 2) @ X) * m[:, :, None] * m[:, None, :]
        XtJ = (X.transpose(1, 2) @ Jr) * m[:, :, None]
        JtJ = Jr.transpose(1, 2) @ Jr
        d = torch.sqrt(torch.diagonal(XtX, dim1=1, dim2=2)).clamp_min(1e-300)
        XtXs = XtX / d[:, :, None] / d[:, None, :] + torch.diag_embed(1 - m) + 1e-10 * torch.eye(
            XtX.shape[1], dtype=torch.float64, device=self.device)
        r64 = rr.to(torch.float64)[..., None]
        Xtr = (X.transpose(1, 2) @ r64) * m[:, :, None]
        W = torch.linalg.solve(XtXs, torch.cat([XtJ, Xtr], 2) / d[:, :, None])  # (X^T X)^-1 X^T [J, r], scaled
        P = (XtJ / d[:, :, None]).transpose(1, 2)
        H = JtJ - P @ W[..., :-1]
        # gradient (PJ)^T r = J^T P r: the part of r in the span of X (an inexact inner solve) removed
        g = (Jr.transpose(1, 2) @ r64)[..., 0] - (P @ W[..., -1:])[..., 0]
        return 0.5 * (H + H.transpose(1, 2)), g

    def _solve_linear(self, A, y, c0=None):
        """min ||y - [A, P] [c; b]||^2 with c >= 0 (FISTA on the normal equations, baseline free)."""
        torch = _torch()
        Bn, M, L = A.shape
        K = self.poly.shape[1]
        X = self._real_design(A)  # (B, 2M, L+2K)
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
        """d(model)/d(theta) for theta = [gamma_g, sigma2_g, eps_g (each G), phi0, phi1], (B, M, 3G+2)."""
        torch = _torch()
        L = A.shape[2]
        c = coef[:, :L].to(A.dtype)
        t = self.t
        ph = torch.exp(1j * (th["phi0"][:, None] + th["phi1"][:, None] * self.nu[None]))
        # combined FID of each group, already broadened: (B, G, N)
        sg = torch.stack([(c * self.gmask[:, g].to(c.dtype)) @ self.basis for g in range(self.G)], 1) * ls
        d_gamma = self._spec(sg * (-t)) * ph[:, None]
        d_sigma = self._spec(sg * (-t ** 2)) * ph[:, None]
        d_eps = self._spec(sg * (-1j * t)) * ph[:, None]
        cols = [d_gamma[:, g] for g in range(self.G)] + [d_sigma[:, g] for g in range(self.G)] + \
            [d_eps[:, g] for g in range(self.G)]
        met = (A * c[:, None, :]).sum(2)  # metabolite part incl. phase
        cols.append(1j * met)
        cols.append(1j * self.nu[None] * met)
        return torch.stack(cols, 2)

    def _pack(self, th):
        torch = _torch()
        return torch.cat([th["gamma"], th["sigma2"], th["eps"], th["phi0"][:, None], th["phi1"][:, None]], 1)

    def _bounds(self):
        """Lower and upper bounds of the packed parameter vector, (P,) each (phi0 unbounded: a wide box)."""
        torch = _torch()
        G, cfg = self.G, self.config
        lw, sh = np.pi * cfg.max_lw_hz, 2 * np.pi * cfg.max_shift_hz
        lo = [0.0] * G + [0.0] * G + [-sh] * G + [-1e9, -cfg.max_phi1_s]
        hi = [lw] * G + [(2 * lw) ** 2] * G + [sh] * G + [1e9, cfg.max_phi1_s]
        as_t = lambda x: torch.as_tensor(x, dtype=self._dt, device=self.device)
        return as_t(lo), as_t(hi)

    def _unpack(self, v):
        G = self.G
        cfg = self.config
        return {"gamma": v[:, :G].clamp(0, np.pi * cfg.max_lw_hz),
                "sigma2": v[:, G:2 * G].clamp(0, (2 * np.pi * cfg.max_lw_hz) ** 2),
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
        # starts (the batch holds every spectrum once per start; the lowest final cost wins):
        # 1) Lorentzian lines, 6 Hz FWHM (10 Hz for the last group: residual water in the quantifier),
        #    no Gaussian; 2) 3 Hz Lorentzian with sigma 15/s. Measured on the validation cohort, final
        #    cost within 0.1% of the best of 10 random restarts: start 1 alone 92-96%, start 2 alone
        #    90%, both 98%; the minima they miss differ in the water group's Lorentzian/Gaussian split.
        gam0 = np.full(G, np.pi * 6.0)
        if G > 1:
            gam0[-1] = np.pi * 10.0
        starts = [(gam0, np.zeros(G)), (np.full(G, np.pi * 3.0), np.full(G, 15.0 ** 2))]
        S = 1 if (init is not None or fix_shape) else max(1, min(self.config.starts, len(starts)))
        as_t = lambda x: torch.as_tensor(np.asarray(x, float), dtype=self._dt, device=self.device)
        th = {"gamma": torch.cat([as_t(g).repeat(Bn, 1) for g, _ in starts[:S]]),
              "sigma2": torch.cat([as_t(s2).repeat(Bn, 1) for _, s2 in starts[:S]]),
              "eps": torch.zeros((S * Bn, G), dtype=self._dt, device=self.device),
              "phi1": torch.zeros(S * Bn, dtype=self._dt, device=self.device)}
        ys = y.repeat(S, 1)
        # zero-order phase start: unconstrained complex least squares on the unphased columns; the
        # phase of the amplitude-weighted coefficient sum is the common phase of the metabolites
        th["phi0"] = torch.zeros(S * Bn, dtype=self._dt, device=self.device)
        A0, _ = self._design(th)
        AhA = A0.conj().transpose(1, 2) @ A0
        Ahy = (A0.conj().transpose(1, 2) @ ys[..., None])[..., 0]
        eye = torch.eye(AhA.shape[1], dtype=AhA.dtype, device=self.device)
        cz = torch.linalg.solve(AhA + 1e-9 * torch.diagonal(AhA, dim1=1, dim2=2).real.mean(1)[:, None, None] * eye,
                                Ahy[..., None])[..., 0]
        th["phi0"] = torch.angle((cz * torch.diagonal(AhA, dim1=1, dim2=2).real).sum(1))
        if init is not None:
            for k, val in init.items():
                val = np.asarray(val, float)
                k, val = ("sigma2", val ** 2) if k == "sigma" else (k, val)
                th[k] = torch.as_tensor(val, dtype=self._dt, device=self.device).reshape(th[k].shape)
        v = self._pack(self._unpack(self._pack(th)))
        r, coef, A, ls = self._residual(self._unpack(v), ys)
        iters = np.zeros(S * Bn, int)
        done = np.zeros(S * Bn, bool) if not fix_shape else np.ones(S * Bn, bool)
        if not fix_shape:
            v, r, coef, A, ls = self._levenberg_marquardt(v, r, coef, A, ls, ys, iters, done)
        if S > 1:  # keep each spectrum's best start
            cost = (r.abs() ** 2).sum(1).reshape(S, Bn)
            pick = torch.argmin(cost, 0) * Bn + torch.arange(Bn, device=self.device)
            v, r, coef, A, ls = v[pick], r[pick], coef[pick], A[pick], ls[pick]
            pk = pick.cpu().numpy()
            iters = iters.reshape(S, Bn).sum(0)  # the work done for this spectrum over all starts
            done = done[pk]
        res = self._finish(self._unpack(v), coef, A, ls, r, y)
        res.iterations, res.converged = iters, done
        res.flags = self._flags(res)
        return res

    def _levenberg_marquardt(self, v, r, coef, A, ls, y, iters, done):
        """Batched LM on the shape parameters until every spectrum has converged (or the iteration
        cap). Converged spectra leave the active batch; ``iters`` and ``done`` are filled in place."""
        torch = _torch()
        cfg = self.config
        Bn = y.shape[0]
        lam = torch.full((Bn,), 1e-2, dtype=self._dt, device=self.device)
        cost = (r.abs() ** 2).sum(1)
        lo, hi = self._bounds()
        span = hi - lo
        for _ in range(cfg.iterations):
            act_np = np.flatnonzero(~done)
            if not len(act_np):
                break
            act = torch.as_tensor(act_np, device=self.device)
            va, ra, ca, Aa, lsa, la, cs = v[act], r[act], coef[act], A[act], ls[act], lam[act], cost[act]
            J = self._jac_nonlinear(self._unpack(va), ca, Aa, lsa)
            Jr = torch.cat([J.real, J.imag], 1)
            rr = torch.cat([ra.real, ra.imag], 1)
            JtJ, g = self._projected_normal(Jr, Aa, ca, rr)
            # active set: a parameter at a bound whose descent direction points out of its range is
            # held for this step (projecting a full step instead stalls LM: the damping grows
            # while the clamped step makes no progress)
            held = ((va <= lo + 1e-6 * span) & (g < 0)) | ((va >= hi - 1e-6 * span) & (g > 0))
            free = (~held).to(JtJ.dtype)
            JtJ = JtJ * free[:, :, None] * free[:, None, :] + torch.diag_embed(1 - free)
            g = g * free
            D = torch.diagonal(JtJ, dim1=1, dim2=2).clamp_min(1e-12)
            step = torch.linalg.solve(JtJ + la.to(JtJ.dtype)[:, None, None] * torch.diag_embed(D),
                                      g[..., None])[..., 0].to(va.dtype)
            v_new = self._pack(self._unpack(va + step))
            r_new, coef_new, A_new, ls_new = self._residual(self._unpack(v_new), y[act], ca)
            cost_new = (r_new.abs() ** 2).sum(1)
            ok = cost_new < cs
            # converged: an accepted step that gains less than ftol, or no descent even at the
            # largest damping (a minimum to within the arithmetic's precision)
            conv = (ok & (cs - cost_new <= cfg.ftol * cs)) | (~ok & (la >= 1e6))
            oki = act[ok]
            v[oki], r[oki], coef[oki], A[oki], ls[oki] = v_new[ok], r_new[ok], coef_new[ok], A_new[ok], ls_new[ok]
            cost[oki] = cost_new[ok]
            lam[act] = torch.where(ok, la / 3, la * 4).clamp(1e-7, 1e7)
            iters[act_np] += 1
            done[act_np[conv.cpu().numpy()]] = True
        return v, r, coef, A, ls

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
        params = {k: v.cpu().numpy() for k, v in th.items()}
        params["sigma"] = np.sqrt(params["sigma2"])  # Gaussian sigma (1/s): exp(-sigma^2 t^2)
        return LCMResult(self.names, amps.cpu().numpy().astype(np.float64), crlb.cpu().numpy(), params,
                         coef[:, L:].cpu().numpy(), model.cpu().numpy(), y.cpu().numpy(), self.axis.ppm[self.win])

    def model_fid(self, res: LCMResult) -> np.ndarray:
        """Noise-free model FIDs (B, N) over the whole band from a fit (metabolites with their group
        line shapes and zero-order phase; the baseline and first-order phase are left out)."""
        t = self.axis.time
        basis = self.basis.cpu().numpy().astype(np.complex128)
        gam, s2, eps = (np.asarray(res.params[k], float)[..., None] for k in ("gamma", "sigma2", "eps"))
        ls = np.exp(-(gam + s2 * t) * t - 1j * eps * t)  # (B, G, N)
        out = (res.amplitudes[:, :, None] * basis[None] * ls[:, self.groups]).sum(1)
        return out * np.exp(1j * np.asarray(res.params["phi0"], float))[:, None]

    def component_spectra(self, res: LCMResult) -> np.ndarray:
        """Fitted contribution of every component over the fit window, (B, L, M) complex (amplitude x
        its line-shaped, phased basis column)."""
        torch = _torch()
        th = {k: torch.as_tensor(np.asarray(res.params[k]), dtype=self._dt, device=self.device)
              for k in ("gamma", "sigma2", "eps", "phi0", "phi1")}
        A, _ = self._design(th)
        return (A.cpu().numpy() * res.amplitudes[:, None, :]).transpose(0, 2, 1)

    def fit_error_percent(self, res: LCMResult, groups: dict[str, tuple[str, ...]] | None = None) -> dict:
        """Fit error per component (and per named combination of components), in percent:
        100 x RMS of the real residual where the component's fitted real signal exceeds 10% of its
        peak, divided by that peak (Gannet's FitErr idea, in the component's own region). (B,) each;
        NaN where the amplitude is 0."""
        comp = self.component_spectra(res).real  # (B, L, M)
        resid = (res.data - res.fit).real        # (B, M)
        sets = {n: (n,) for n in res.names}
        sets.update(groups or {})
        out = {}
        for label, members in sets.items():
            sig = comp[:, [res.names.index(m) for m in members]].sum(1)
            peak = np.abs(sig).max(1)
            win = np.abs(sig) >= 0.1 * peak[:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                rms = np.sqrt((resid ** 2 * win).sum(1) / win.sum(1))
                out[label] = np.where(peak > 0, 100 * rms / peak, np.nan)
        return out

    def shape_at_bound(self, res: LCMResult) -> np.ndarray:
        """(B, G) bool: a group's Lorentzian width, Gaussian s = sigma^2 or shift at a bound of its
        range (either end for the widths: a line with no broadening at all is not physical either)."""
        cfg = self.config
        p = res.params
        s2 = p["sigma2"] if "sigma2" in p else np.asarray(p["sigma"]) ** 2
        zero = lambda x, hi: np.isclose(x, 0.0, rtol=0, atol=1e-6 * hi)
        return (zero(p["gamma"], np.pi * cfg.max_lw_hz) & zero(s2, (2 * np.pi * cfg.max_lw_hz) ** 2)) \
            | np.isclose(p["gamma"], np.pi * cfg.max_lw_hz, rtol=1e-6) \
            | np.isclose(s2, (2 * np.pi * cfg.max_lw_hz) ** 2, rtol=1e-6) \
            | np.isclose(np.abs(p["eps"]), 2 * np.pi * cfg.max_shift_hz, rtol=1e-6)

    def _flags(self, res: LCMResult) -> list:
        """Per spectrum and component: ok, or '|'-joined nonfinite / at_bound (amplitude 0) /
        crlb>X% / shape_at_bound (its group's line shape at a bound) / not_converged."""
        cfg = self.config
        out = []
        pc = res.crlb_percent()
        bound = self.shape_at_bound(res)[:, self.groups]  # (B, L)
        conv = np.ones(len(pc), bool) if res.converged is None else res.converged
        for b in range(res.amplitudes.shape[0]):
            row = []
            for l in range(res.amplitudes.shape[1]):
                f = []
                if not np.isfinite(res.amplitudes[b, l]) or not np.isfinite(res.crlb[b, l]):
                    f.append("nonfinite")
                if res.amplitudes[b, l] <= 0:
                    f.append("at_bound")
                elif pc[b, l] > cfg.crlb_flag_percent:
                    f.append(f"crlb>{cfg.crlb_flag_percent:g}%")
                if bound[b, l]:
                    f.append("shape_at_bound")
                if not conv[b]:
                    f.append("not_converged")
                row.append("|".join(f) or "ok")
            out.append(row)
        return out
