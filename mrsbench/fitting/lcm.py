"""Batched linear-combination model fitting (torch; GPU when present, else CPU).

Model (FSL-MRS, Clarke et al. MRM 2021; ../shared/reference/metrics.md sec. 4), frequency domain,
over a ppm range:

    Y(nu) = B(nu) + exp(i(phi0 + nu*phi1)) * sum_g sum_l c_l FFT{ m_l(t) exp(-(gamma_g + s_g t) t - i eps_g t) }

with per-group Lorentzian gamma_g (1/s), Gaussian s_g = sigma_g^2 (1/s^2) and shift eps_g (rad/s), global
phases, and a complex polynomial baseline B. The Gaussian is fitted as s = sigma^2 >= 0: the model is
smooth in s with a non-zero derivative at s = 0, whereas with sigma itself exp(-sigma^2 t^2) has zero
derivative at sigma = 0 and a fit clamped there can never leave (measured: 16 of 48 validation OFF fits
ended at sigma = 0, OFF GABA/tCr r 0.65). Amplitudes c >= 0 and the baseline are solved for every
trial of the nonlinear parameters (variable projection) by an exact batched non-negative
least-squares (:mod:`.nnls`); the nonlinear parameters take batched Levenberg-Marquardt steps on the
variable-projection Gauss-Newton matrix with analytic derivatives until each spectrum converges (the
decrease the Gauss-Newton model still promises, or an accepted step's, below ``ftol`` x cost, or no
descent at the largest damping), converged spectra leaving the batch. Cramer-Rao lower bounds come from
the Fisher information of the full model at the solution.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from mrsbench.core.axis import SpectralAxis
from mrsbench.fitting.lcm_model import _CPU_BLOCK, LCMModel, _torch  # noqa: F401  (_CPU_BLOCK: tests)
from mrsbench.fitting.lcm_report import LCMReport
from mrsbench.fitting.lcm_result import LCMResult  # noqa: F401  (re-exported: mrsbench.fitting.lcm.LCMResult)


def default_device() -> str:
    torch = _torch()
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class LCMConfig:
    ppm_range: tuple[float, float] = (0.2, 4.2)   # FSL-MRS default fitting range
    baseline_order: int = 2                       # complex polynomial (FSL-MRS default order 2)
    iterations: int = 60                          # maximum LM iterations (each spectrum stops when converged)
    ftol: float = 1e-5                            # convergence: relative cost decrease of an accepted step
    # initial LM damping (x the Gauss-Newton matrix's diagonal; Marquardt 1963). Measured at harness 1.10 on the
    # benchmark batch and 48 validation spectra: 0.1 takes 7-17% fewer iterations than 0.01 with the final costs
    # as close to the best of 10 random restarts or closer (water-free OFF: 48/48 at both on two fresh cohorts)
    lam0: float = 0.1
    starts: int = 2                               # line-shape starts per spectrum (see LCMFitter.fit)
    nnls_iterations: int = 60                     # active-set NNLS: nnls_iterations // 6 steps, then FISTA
    precision: str = "single"                      # "double" for reference fits (about 2x slower)
    max_shift_hz: float = 10.0
    max_lw_hz: float = 25.0
    max_phi1_s: float = 0.003                     # |first-order phase| bound (rad per rad/s)
    crlb_flag_percent: float = 50.0


class LCMFitter(LCMModel, LCMReport):
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
        self._extra = None   # per-spectrum free columns of the fit in progress (see fit)
        self._basis_b = self._basis_b_sorted = None   # per-spectrum basis of the fit in progress (see fit)
        torch = _torch()
        single = self.config.precision == "single"
        self._dt = torch.float32 if single else torch.float64
        self._ct = torch.complex64 if single else torch.complex128
        self.basis = torch.as_tensor(np.asarray(basis_fids), dtype=self._ct, device=self.device)
        self.G = int(self.groups.max()) + 1
        self.win = np.flatnonzero(axis.window(*self.config.ppm_range))
        # the window's indices in unshifted FFT order (saves an fftshift per evaluation)
        wf = (self.win - axis.n_points // 2) % axis.n_points
        # a window that does not wrap round the FFT's zero index is a slice (a view, no gather)
        self._win_fft = slice(int(wf[0]), int(wf[-1]) + 1) if np.array_equal(wf, np.arange(wf[0], wf[0] + len(wf))) \
            else torch.as_tensor(wf, device=self.device)
        self.t = torch.as_tensor(axis.time, dtype=self._dt, device=self.device)
        hz = axis.hz[self.win]
        self.nu = torch.as_tensor(2 * np.pi * hz, dtype=self._dt, device=self.device)  # rad/s
        x = np.linspace(-1, 1, len(self.win))
        self.poly = torch.as_tensor(np.stack([x ** k for k in range(self.config.baseline_order + 1)], 1),
                                    dtype=self._dt, device=self.device)  # (M, K)
        self._gam_hi = torch.as_tensor(self._max_gamma(), dtype=self._dt, device=self.device)
        self._eps_hi = torch.as_tensor(self._max_eps(), dtype=self._dt, device=self.device)
        self.gmask = torch.as_tensor(np.eye(self.G)[self.groups], dtype=self._dt, device=self.device)  # (L, G)
        # the basis sorted by group, so each group's line shape multiplies one contiguous slice (a
        # broadcast product, no (B, L, N) gather of line shapes); columns are put back in basis order
        order = np.argsort(self.groups, kind="stable")
        self._order = torch.as_tensor(order, device=self.device)
        self._basis_sorted = self.basis[self._order].contiguous()
        sg = self.groups[order]
        self._group_slices = [(g, int(np.searchsorted(sg, g)), int(np.searchsorted(sg, g, "right")))
                              for g in range(self.G)]  # (an empty slice for a group without columns)
        self._unsort = None if np.array_equal(order, np.arange(len(order))) else \
            torch.as_tensor(np.argsort(order), device=self.device)

    def fit(self, spectra: np.ndarray, init: dict | None = None, fix_shape: bool = False,
            extra: np.ndarray | None = None, basis: np.ndarray | None = None) -> LCMResult:
        """Fit spectra (B, N) complex (``axis.to_spectrum`` convention). Returns :class:`LCMResult`.

        ``init`` gives starting shape parameters per spectrum (``gamma``, ``sigma``, ``eps`` (B, G) and
        optionally ``phi0``, ``phi1`` (B,)); with ``fix_shape`` they are kept fixed (only amplitudes
        and baseline are solved), e.g. to fit DIFF with the line shape of the OFF fit. ``extra`` (B, F, N)
        complex spectra: per-spectrum columns with free real coefficients, solved jointly with the
        amplitudes and the baseline (only with ``fix_shape``); their coefficients are returned in
        ``params["extra"]`` (B, F). ``basis`` (B, L, N) complex FIDs: a basis per spectrum in place of the
        fitter's (same components and groups; only with ``fix_shape``), e.g. a DIFF basis with each scan's own
        editing efficiency; kept in the result's ``basis``."""
        torch = _torch()
        Y = torch.as_tensor(np.atleast_2d(spectra), dtype=self._ct, device=self.device)
        y = Y[:, self.win]
        if basis is not None:
            if not fix_shape:
                raise ValueError("a per-spectrum basis needs fix_shape=True")
            basis = np.asarray(basis)
            if basis.shape != (y.shape[0], *self.basis.shape):
                raise ValueError(f"basis must be (B, L, N) = ({y.shape[0]}, {', '.join(map(str, self.basis.shape))}), "
                                 f"got {basis.shape}")
        if extra is not None:
            if not fix_shape:
                raise ValueError("extra columns need fix_shape=True")
            E = torch.as_tensor(np.asarray(extra), dtype=self._ct, device=self.device)
            if E.dim() != 3 or E.shape[0] != y.shape[0] or E.shape[2] != Y.shape[1]:
                raise ValueError(f"extra must be (B, F, N) = ({y.shape[0]}, F, {Y.shape[1]}), got {tuple(E.shape)}")
            self._extra = E[:, :, self.win].contiguous()
        try:
            with self._per_spectrum_basis(basis):
                res = self._fit(y, init, fix_shape)
            res.basis = basis
            return res
        finally:
            self._extra = None

    @contextmanager
    def _per_spectrum_basis(self, basis):
        """Within the block, columns (and derivatives) come from ``basis`` (B, L, N), one per spectrum (None:
        the fitter's own)."""
        if basis is None:
            yield
            return
        torch = _torch()
        self._basis_b = torch.as_tensor(basis, dtype=self._ct, device=self.device)
        # in group order for _design (the same tensor when the basis is already sorted by group)
        self._basis_b_sorted = self._basis_b if self._unsort is None else self._basis_b[:, self._order].contiguous()
        try:
            yield
        finally:
            self._basis_b = self._basis_b_sorted = None

    def _fit(self, y, init, fix_shape) -> LCMResult:
        torch = _torch()
        G = self.G
        # starts: 1) Lorentzian lines, 6 Hz FWHM (10 Hz for the last group: the quantifier's broad
        # macromolecules), no Gaussian; 2) 3 Hz Lorentzian with sigma 15/s for the last group, tried only where
        # start 1 ends with a line shape at a bound of its range or unconverged (a sign of a side minimum); the
        # lower cost wins. Measured at harness 1.10 (the quantifier's water-free OFF, 48 spectra each of the
        # validation cohort and three fresh seeds): final cost within 0.1% of the best of 10 random restarts for
        # 48/48 in each, with start 1 alone too; start 2 ran for 26 of the benchmark's 96 (an unbroadened MM
        # group). With a residual-water line-shape group (up to 1.9) both starts reached 37-42/48 on fresh seeds.
        gam0 = np.full(G, np.pi * 6.0)
        if G > 1:
            gam0[-1] = np.pi * 10.0
        starts = [(gam0, np.zeros(G)), (np.full(G, np.pi * 3.0), np.full(G, 15.0 ** 2))]
        S = 1 if (init is not None or fix_shape) else max(1, min(self.config.starts, len(starts)))
        state, iters, done = self._run(y, *starts[0], init, fix_shape)
        if S > 1:
            th = self._unpack(state[0])
            params = {k: th[k].cpu().numpy() for k in ("gamma", "sigma2", "eps")}
            again = np.flatnonzero(self._at_bound(params).any(1) | ~done)
            if len(again):
                # from start 1's solution with the last group's line shape restarted
                ini = {k: th[k][torch.as_tensor(again, device=self.device)].cpu().numpy() for k in th}
                ini["gamma"][:, -1], ini["sigma2"][:, -1], ini["eps"][:, -1] = starts[1][0][-1], starts[1][1][-1], 0.0
                st2, it2, dn2 = self._run(y[again], *starts[1], ini, False)
                ag = torch.as_tensor(again, device=self.device)
                better = ((st2[1].abs() ** 2).sum(1) < (state[1][ag].abs() ** 2).sum(1))
                for x, x2 in zip(state, st2):
                    x[ag[better]] = x2[better]
                b = better.cpu().numpy()
                iters[again] += it2  # the work done for this spectrum over both starts
                done[again[b]] = dn2[b]
        v, r, coef, A, ls = state[:5]
        res = self._finish(self._unpack(v), coef, A, ls, r, y)
        res.iterations, res.converged = iters, done
        res.flags = self._flags(res)
        return res

    def _run(self, y, gam0, s20, init, fix_shape):
        """One start for every spectrum in ``y`` (B, M): returns (state, iterations, converged)."""
        torch = _torch()
        Bn, G = y.shape[0], self.G
        as_t = lambda x: torch.as_tensor(np.asarray(x, float), dtype=self._dt, device=self.device)
        th = {"gamma": as_t(gam0).repeat(Bn, 1), "sigma2": as_t(s20).repeat(Bn, 1),
              "eps": torch.zeros((Bn, G), dtype=self._dt, device=self.device),
              "phi1": torch.zeros(Bn, dtype=self._dt, device=self.device)}
        # zero-order phase start: unconstrained complex least squares on the unphased columns; the
        # phase of the amplitude-weighted coefficient sum is the common phase of the metabolites
        th["phi0"] = torch.zeros(Bn, dtype=self._dt, device=self.device)
        A0, ls0 = self._design(th)
        AhA = A0.conj() @ A0.transpose(1, 2)
        Ahy = (A0.conj() @ y[..., None])[..., 0]
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
        thv = self._unpack(v)
        # without ``init`` only phi0 moved since A0 (phi1 = 0): the columns are A0 times exp(i phi0),
        # exactly what _design would return, without a second transform of every column
        design = None if init is not None else (A0 * self._phase(thv)[:, None, :], ls0)
        state = [v, *self._residual(thv, y, design=design)]   # v, r, coef, A, ls, Gram, X^T y
        iters = np.zeros(Bn, int)
        done = np.zeros(Bn, bool) if not fix_shape else np.ones(Bn, bool)
        if not fix_shape:
            state = self._levenberg_marquardt(state, y, iters, done)
        return state, iters, done

    def _levenberg_marquardt(self, state, y, iters, done):
        """Batched LM on the shape parameters until every spectrum has converged (or the iteration
        cap). ``state`` = [v, r, coef, A, ls, Gram, X^T y]; converged spectra leave the active batch
        (the active rows are kept compact: gathered only when some converge); ``iters`` and ``done``
        are filled in place."""
        torch = _torch()
        cfg = self.config
        lo, hi = self._bounds()
        span = hi - lo
        act_np = np.flatnonzero(~done)
        act = torch.as_tensor(act_np, device=self.device)
        cur = [x[act] for x in state]                  # the active rows' state
        ya = y[act]
        lam = torch.full((len(act_np),), cfg.lam0, dtype=self._dt, device=self.device)
        cost = (cur[1].abs() ** 2).sum(1)
        for _ in range(cfg.iterations):
            if not len(act_np):
                break
            va, ra, ca, Aa, lsa, Ga, ha = cur
            J = self._ri(self._jac_nonlinear(self._unpack(va), ca, Aa, lsa))
            JtJ, P, Wr = self._projected_normal(J, Aa, ca, Ga, ha)
            # gradient (PJ)^T r = J^T r - J^T X (X^T X)^-1 X^T r: the part of r in the span of X
            # (what an inexact inner solve leaves) removed
            g = (J @ self._ri(ra)[..., None])[..., 0].to(JtJ.dtype) - (P @ Wr)[..., 0]
            # active set: a parameter at a bound whose descent direction points out of its range is
            # held for this step (projecting a full step instead stalls LM: the damping grows
            # while the clamped step makes no progress)
            held = ((va <= lo + 1e-6 * span) & (g < 0)) | ((va >= hi - 1e-6 * span) & (g > 0))
            free = (~held).to(JtJ.dtype)
            JtJ = JtJ * free[:, :, None] * free[:, None, :] + torch.diag_embed(1 - free)
            g = g * free
            D = torch.diagonal(JtJ, dim1=1, dim2=2).clamp_min(1e-12)
            # the decrease the Gauss-Newton model still promises, g^T H^-1 g: below ftol x cost the
            # spectrum has converged here, without spending a trial step to find out
            gn = torch.linalg.solve(JtJ + 1e-9 * torch.diag_embed(D), g[..., None])[..., 0]
            flat = ((gn * g).sum(1) <= cfg.ftol * cost.to(g.dtype)).cpu().numpy()
            step = torch.linalg.solve(JtJ + lam.to(JtJ.dtype)[:, None, None] * torch.diag_embed(D),
                                      g[..., None])[..., 0].to(va.dtype)
            v_new = self._pack(self._unpack(va + step))
            # trial steps only for the spectra that are not flat
            every = not flat.any()   # (then no gathers: the trial rows are the active rows)
            tri = torch.as_tensor(np.flatnonzero(~flat), device=self.device)
            new = [v_new, *self._residual(self._unpack(v_new), ya, ca)] if every else \
                [v_new[tri], *self._residual(self._unpack(v_new[tri]), ya[tri], ca[tri])]
            cost_new = cost.clone()
            cost_new[tri] = (new[1].abs() ** 2).sum(1)
            ok = cost_new < cost
            # converged: flat, an accepted step that gains less than ftol, or no descent even at the
            # largest damping (a minimum to within the arithmetic's precision)
            conv = flat | ((ok & (cost - cost_new <= cfg.ftol * cost)) | (~ok & (lam >= 1e6))).cpu().numpy()
            okt = ok[tri]
            if every and bool(okt.all()):
                cur = new   # every step accepted: the trial state is the new state (no row-wise copy)
            else:
                oki = tri[okt]
                for x, xn in zip(cur, new):
                    x[oki] = xn[okt]
            cost = torch.where(ok, cost_new, cost)
            lam = torch.where(ok, lam / 3, lam * 4).clamp(1e-7, 1e7)
            iters[act_np] += 1
            if conv.any():  # write the converged rows back and compact the active set
                done[act_np[conv]] = True
                ci = torch.as_tensor(np.flatnonzero(conv), device=self.device)
                for x, xc in zip(state, cur):
                    x[act[ci]] = xc[ci]
                keep = torch.as_tensor(np.flatnonzero(~conv), device=self.device)
                act_np, act = act_np[~conv], act[keep]
                cur, ya, lam, cost = [x[keep] for x in cur], ya[keep], lam[keep], cost[keep]
        for x, xc in zip(state, cur):  # rows stopped by the iteration cap
            x[act] = xc
        return state

    def _finish(self, th, coef, A, ls, r, y) -> LCMResult:
        torch = _torch()
        L = A.shape[1]
        M = y.shape[1]
        K = self.poly.shape[1]
        # Fisher information of [amplitudes, baseline, nonlinear] with sigma^2 from the residual
        J_nl = self._jac_nonlinear(th, coef, A, ls).transpose(1, 2)
        P = self.poly.to(A.dtype)
        ext = [] if self._extra is None else [self._extra.to(A.dtype).transpose(1, 2)]
        cols = torch.cat([A.transpose(1, 2), *ext, P[None].expand(A.shape[0], M, K),
                          1j * P[None].expand(A.shape[0], M, K), J_nl], 2)
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
        F = 0 if self._extra is None else self._extra.shape[1]
        if F:
            params["extra"] = coef[:, L:L + F].cpu().numpy().astype(np.float64)
        return LCMResult(self.names, amps.cpu().numpy().astype(np.float64), crlb.cpu().numpy(), params,
                         coef[:, L + F:].cpu().numpy(), model.cpu().numpy(), y.cpu().numpy(), self.axis.ppm[self.win])
