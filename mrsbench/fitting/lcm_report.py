"""What an LCM fit reports beyond its amplitudes: model FIDs, component spectra, fit errors, bound and
convergence flags (a mixin of :class:`~mrsbench.fitting.lcm.LCMFitter`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mrsbench.fitting.lcm_result import LCMResult   # the data type, not the fitter (no cycle with fitting.lcm)


class LCMReport:
    """Methods that read an :class:`~mrsbench.fitting.lcm.LCMResult` with the fitter's basis and bounds."""

    def model_fid(self, res: LCMResult) -> np.ndarray:
        """Noise-free model FIDs (B, N) over the whole band from a fit (metabolites with their group
        line shapes and zero-order phase, plus what was removed from the data before the fit, ``res.removed``:
        residual water; the baseline and first-order phase are left out)."""
        t = self.axis.time
        basis = self.basis.cpu().numpy().astype(np.complex128)[None] if res.basis is None else res.basis
        gam, s2, eps = (np.asarray(res.params[k], float)[..., None] for k in ("gamma", "sigma2", "eps"))
        ls = np.exp(-(gam + s2 * t) * t - 1j * eps * t)  # (B, G, N)
        out = (res.amplitudes[:, :, None] * basis * ls[:, self.groups]).sum(1)
        out = out * np.exp(1j * np.asarray(res.params["phi0"], float))[:, None]
        return out if res.removed is None else out + res.removed

    def component_spectra(self, res: LCMResult) -> np.ndarray:
        """Fitted contribution of every component over the fit window, (B, L, M) complex (amplitude x
        its line-shaped, phased basis column)."""
        import torch
        th = {k: torch.as_tensor(np.asarray(res.params[k]), dtype=self._dt, device=self.device)
              for k in ("gamma", "sigma2", "eps", "phi0", "phi1")}
        with self._per_spectrum_basis(res.basis):
            A, _ = self._design(th)
        return A.cpu().numpy() * res.amplitudes[:, :, None]

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
        return self._at_bound(res.params)

    def _at_bound(self, p: dict) -> np.ndarray:
        s2 = p["sigma2"] if "sigma2" in p else np.asarray(p["sigma"]) ** 2
        zero = lambda x, hi: np.isclose(x, 0.0, rtol=0, atol=1e-6 * hi)
        gh = self._max_gamma()
        return (zero(p["gamma"], gh) & zero(s2, (2 * gh) ** 2)) \
            | np.isclose(p["gamma"], gh, rtol=1e-6) \
            | np.isclose(s2, (2 * gh) ** 2, rtol=1e-6) \
            | np.isclose(np.abs(p["eps"]), self._max_eps(), rtol=1e-6)

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
