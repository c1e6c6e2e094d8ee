"""The linear-combination model of :class:`~mrsbench.fitting.lcm.LCMFitter`: the design matrix (basis spectra
with each group's line shape and the global phases), the baseline and free columns, the variable-projection
normal equations with analytic derivatives, and the packing and bounds of the nonlinear parameters. A mixin:
the fitter's ``__init__`` sets the tensors these methods read (``basis``, ``t``, ``nu``, ``poly``, ``win``,
group slices). The model and its conventions are described in :mod:`mrsbench.fitting.lcm`."""
from __future__ import annotations

import numpy as np

_CPU_BLOCK = 16  # spectra per design-matrix block on the CPU (measured: tests/perf/test_perf_fitting.py)


def _torch():
    import torch
    return torch


class LCMModel:
    """The model pieces of the batched LCM fit (see the module docstring)."""

    # --- model pieces -------------------------------------------------------------------------
    # Real arithmetic on complex vectors uses the interleaved view (torch.view_as_real: re, im per
    # point), in which the real inner product of two vectors is Re(a^H b): no [Re; Im] copies.
    def _spec(self, fid):
        torch = _torch()
        return torch.fft.fft(fid, dim=-1)[..., self._win_fft]

    def _design(self, th):
        """Metabolite columns (B, L, M) complex, including the global phase, and the line shapes."""
        torch = _torch()
        gam, s2, eps = th["gamma"], th["sigma2"], th["eps"]  # (B, G)
        t = self.t
        # lineshape per group (B, G, N)
        ls = torch.polar(torch.exp(-(gam[..., None] + s2[..., None] * t) * t), -eps[..., None] * t)
        Bn, (L, N) = ls.shape[0], self.basis.shape
        cols = torch.empty((Bn, L, len(self.win)), dtype=self._ct, device=self.device)  # (B, L, M)
        # on the CPU in blocks of spectra: a (block, L, N) work array stays cache- and allocator-friendly
        # (one (B, L, N) array per call costs more in fresh pages than the FFT itself)
        blk = max(1, Bn if self.device != "cpu" else min(Bn, _CPU_BLOCK))
        work = torch.empty((blk, L, N), dtype=self._ct, device=self.device)
        ph = self._phase(th)                                                         # (B, M)
        for i in range(0, Bn, blk):
            w = work[:min(blk, Bn - i)]
            for g, a, b in self._group_slices:
                src = self._basis_sorted[a:b] if self._basis_b_sorted is None else self._basis_b_sorted[i:i + blk, a:b]
                torch.mul(src, ls[i:i + blk, g:g + 1], out=w[:, a:b])
            # the window of the transform times the phase, written straight into the columns (one pass)
            torch.mul(self._spec(w), ph[i:i + blk, None, :], out=cols[i:i + blk])
        if self._unsort is not None:
            cols = cols[:, self._unsort]
        return cols, ls

    def _phase(self, th):
        """exp(i(phi0 + phi1 nu)) over the window, (B, M) complex."""
        torch = _torch()
        return torch.polar(torch.ones((), dtype=self._dt, device=self.device).expand(th["phi0"].shape[0], len(self.win)),
                           th["phi0"][:, None] + th["phi1"][:, None] * self.nu[None])

    @staticmethod
    def _ri(z):
        """(..., M) complex -> (..., 2M) real interleaved view (a copy only if not contiguous)."""
        torch = _torch()
        z = z.contiguous()
        return torch.view_as_real(z).reshape(*z.shape[:-1], 2 * z.shape[-1])

    def _baseline_rows(self, M):
        """Complex baseline as real interleaved rows (2K, 2M): [poly + 0i; 0 + i poly]."""
        torch = _torch()
        K = self.poly.shape[1]
        Pint = torch.zeros((2 * K, M, 2), dtype=self._dt, device=self.device)
        Pint[:K, :, 0] = self.poly.T
        Pint[K:, :, 1] = self.poly.T
        return Pint.reshape(2 * K, 2 * M)

    def _free_rows(self, A):
        """Rows of the free (unconstrained, real-coefficient) columns as real interleaved vectors: the
        baseline (2K, 2M), or, with per-spectrum extra columns, [extra; baseline] (B, F + 2K, 2M)."""
        torch = _torch()
        Pint = self._baseline_rows(A.shape[2])
        if self._extra is None:
            return Pint
        return torch.cat([self._ri(self._extra), Pint.expand(A.shape[0], -1, -1)], 1)

    def _gram(self, A, y):
        """Normal equations of the linear part, [A, free columns]: Gram (B, C, C) and X^T y (B, C),
        C = L + F + 2K (F extra columns, 0 unless given to ``fit``)."""
        torch = _torch()
        Xa = self._ri(A)                          # (B, L, 2M)
        Pint = self._free_rows(A)                 # (2K, 2M) or (B, F + 2K, 2M)
        Pt = Pint.transpose(-1, -2)
        yr = self._ri(y)                          # (B, 2M)
        Gaa = Xa @ Xa.transpose(1, 2)
        Gap = Xa @ Pt
        Gpp = (Pint @ Pt).expand(A.shape[0], -1, -1)
        Gm = torch.cat([torch.cat([Gaa, Gap], 2), torch.cat([Gap.transpose(1, 2), Gpp], 2)], 1)
        h = torch.cat([(Xa @ yr[..., None])[..., 0], (Pint @ yr[..., None])[..., 0] if Pint.dim() == 3
                       else yr @ Pt], 1)
        return Gm, h

    def _model(self, A, coef):
        """Linear model [A, free columns] coef as complex (B, M)."""
        torch = _torch()
        L, M = A.shape[1], A.shape[2]
        P = self._free_rows(A)
        free = (coef[:, None, L:] @ P)[:, 0] if P.dim() == 3 else coef[:, L:] @ P
        mr = (coef[:, None, :L] @ self._ri(A))[:, 0] + free
        return torch.view_as_complex(mr.reshape(-1, M, 2).contiguous())

    def _projected_normal(self, Jint, A, coef, Gm, h):
        """Gauss-Newton matrix of variable projection (Kaufman 1975; Golub & Pereyra 2003): the
        Jacobian of the residual after the linear solve is P J, J minus its projection onto the linear
        columns in use (amplitudes > 0 and the baseline), so (PJ)^T PJ = J^T J - J^T X (X^T X)^-1 X^T J.
        Without the projection Gauss-Newton overrates the curvature along directions the amplitudes
        absorb and LM crawls (measured: 35% of validation fits converged in 60 iterations, all of them
        in a median 12 with it). ``Jint``: (B, P, 2M) interleaved; the Gram matrix ``Gm`` and X^T y
        ``h`` of the current linear solve are reused; the small solve in double precision."""
        torch = _torch()
        f64 = torch.float64
        L, M = A.shape[1], A.shape[2]
        XtJ = torch.cat([self._ri(A) @ Jint.transpose(1, 2), self._baseline_rows(M) @ Jint.transpose(1, 2)], 1).to(f64)
        JtJ = (Jint @ Jint.transpose(1, 2)).to(f64)
        Gm, coef64 = Gm.to(f64), coef.to(f64)
        Xtr = h.to(f64) - (Gm @ coef64[..., None])[..., 0]        # X^T r, r the residual of the solve
        m = torch.cat([coef[:, :L] > 0, torch.ones_like(coef[:, L:], dtype=torch.bool)], 1).to(f64)
        XtX = Gm * m[:, :, None] * m[:, None, :]
        XtJ = XtJ * m[:, :, None]
        Xtr = Xtr * m
        d = torch.sqrt(torch.diagonal(XtX, dim1=1, dim2=2)).clamp_min(1e-300)
        XtXs = XtX / d[:, :, None] / d[:, None, :] + torch.diag_embed(1 - m) + 1e-10 * torch.eye(
            XtX.shape[1], dtype=f64, device=self.device)
        W = torch.linalg.solve(XtXs, torch.cat([XtJ, Xtr[..., None]], 2) / d[:, :, None])
        P = (XtJ / d[:, :, None]).transpose(1, 2)
        H = JtJ - P @ W[..., :-1]
        return 0.5 * (H + H.transpose(1, 2)), P, W[..., -1:]

    def _solve_linear(self, A, y, c0=None):
        """min ||y - [A, P] [c; b]||^2 with c >= 0 (baseline free), exactly, warm-started from ``c0``.
        Returns (coef, Gram, X^T y)."""
        from mrsbench.fitting.nnls import nnls_normal
        Gm, h = self._gram(A, y)
        coef = nnls_normal(Gm, h, A.shape[1], c0, self.config.nnls_iterations)
        return coef.to(self._dt), Gm, h

    def _residual(self, th, y, c0=None, design=None):
        A, ls = self._design(th) if design is None else design
        coef, Gm, h = self._solve_linear(A, y, c0)
        return y - self._model(A, coef), coef, A, ls, Gm, h

    def _jac_nonlinear(self, th, coef, A, ls):
        """d(model)/d(theta) for theta = [gamma_g, sigma2_g, eps_g (each G), phi0, phi1], (B, 3G+2, M)."""
        torch = _torch()
        L = A.shape[1]
        c = coef[:, :L].to(A.dtype)
        t = self.t
        ph = self._phase(th)
        # combined FID of each group, already broadened: (B, G, N) (kept as one batched product: a per-group
        # product was ~equally fast but rounds differently, which moves fits and so the committed boards)
        cg = c[:, None, :] * self.gmask.T.to(c.dtype)[None]           # (B, G, L)
        sg = (cg @ (self.basis if self._basis_b is None else self._basis_b)) * ls
        G = self.G
        d = self._spec(torch.cat([sg * (-t), sg * (-t ** 2)], 1)) * ph[:, None]  # (B, 2G, M)
        met = (c[:, None, :] @ A)                                     # (B, 1, M) metabolites incl. phase
        # d/d eps = FFT(-i t sg) = i d/d gamma: no third transform
        return torch.cat([d, 1j * d[:, :G], 1j * met, 1j * self.nu[None, None] * met], 1)

    def _pack(self, th):
        torch = _torch()
        return torch.cat([th["gamma"], th["sigma2"], th["eps"], th["phi0"][:, None], th["phi1"][:, None]], 1)

    def _bounds(self):
        """Lower and upper bounds of the packed parameter vector, (P,) each (phi0 unbounded: a wide box)."""
        torch = _torch()
        G, cfg = self.G, self.config
        lw, sh = list(self._max_gamma()), list(self._max_eps())
        lo = [0.0] * G + [0.0] * G + [-x for x in sh] + [-1e9, -cfg.max_phi1_s]
        hi = lw + [(2 * x) ** 2 for x in lw] + sh + [1e9, cfg.max_phi1_s]
        as_t = lambda x: torch.as_tensor(x, dtype=self._dt, device=self.device)
        return as_t(lo), as_t(hi)

    def _max_gamma(self) -> np.ndarray:
        """Lorentzian width bound of every group, gamma = pi x FWHM (1/s), (G,); the Gaussian's bound
        s <= (2 gamma_max)^2 goes with it."""
        return np.full(self.G, np.pi * self.config.max_lw_hz)

    def _max_eps(self) -> np.ndarray:
        """|shift| bound of every group (rad/s), (G,)."""
        return np.full(self.G, 2 * np.pi * self.config.max_shift_hz)

    def _unpack(self, v):
        torch = _torch()
        G = self.G
        cfg = self.config
        return {"gamma": torch.minimum(v[:, :G].clamp_min(0), self._gam_hi),
                "sigma2": torch.minimum(v[:, G:2 * G].clamp_min(0), (2 * self._gam_hi) ** 2),
                "eps": torch.maximum(torch.minimum(v[:, 2 * G:3 * G], self._eps_hi), -self._eps_hi),
                "phi0": v[:, 3 * G], "phi1": v[:, 3 * G + 1].clamp(-cfg.max_phi1_s, cfg.max_phi1_s)}
