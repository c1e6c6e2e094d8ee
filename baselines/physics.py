"""Physics-simulation baseline: quantify the conditioning transients with the LCM fitter and simulate
new transients from the basis with the estimated amplitudes, line shape, frequency/phase drift and
noise level."""
from __future__ import annotations

import numpy as np

from mrsbench.data import OFF, ON, Cohort, Scan
from mrsbench.generator import Generator
from mrsbench.processing import apply_shift, process


class PhysicsGenerator(Generator):
    """Basis-set simulation with parameters estimated by the quantifier."""

    name = "physics"
    description = "LCM fit of the conditioning transients, then basis-set simulation with fitted drift and noise"

    def __init__(self):
        self._q = None

    def fit(self, train: Cohort, seed: int = 0, val: Cohort | None = None) -> "PhysicsGenerator":
        from mrsbench.fitting.quantify import Quantifier
        self.axis = train.axis
        self._q = Quantifier(self.axis)
        # the training cohort's distribution: one parameter set per training subject
        self.params_ = [self._estimate(s) for s in train.scans]
        return self

    def _estimate(self, scan: Scan) -> dict:
        ax = self.axis
        p = process(scan)
        sp = p.spectra()
        ro, rd = self._q.fit(sp["off"][None], sp["diff"][None])
        clean_off = self._q.off.model_fid(ro)[0]
        clean_diff = self._q.diff.model_fid(rd)[0]
        # undo the referencing so synthetic transients sit where the real ones do
        back_f = -p.info.get("cr_shift_hz", 0.0)
        back_p = -p.info.get("tcr_phase_rad", 0.0)
        clean = {OFF: clean_off, ON: clean_off + clean_diff}
        # noise: sd of the real part of single-transient spectra in a signal-free band (9.8-10.8 ppm)
        spec = ax.to_spectrum(scan.fids)[:, ax.window(9.8, 10.8)]
        sigma_spec = float(np.median((spec - spec.mean(1, keepdims=True)).real.std(1)))
        return {"clean": clean, "f": -p.freq_hz + back_f, "phi": -p.phase_rad + back_p, "edit": scan.edit.copy(),
                "sigma": sigma_spec / np.sqrt(ax.n_points), "site": scan.site, "subject": scan.subject}

    def sample(self, n: int, *, condition: Scan | None = None, seed: int = 0) -> Scan:
        rng = np.random.default_rng(seed)
        par = self._estimate(condition) if condition is not None else self.params_[rng.integers(len(self.params_))]
        out = {}
        for lab in (ON, OFF):
            m = par["edit"] == lab
            j = rng.integers(0, m.sum(), n)
            f, ph = par["f"][m][j], par["phi"][m][j]
            x = apply_shift(np.tile(par["clean"][lab], (n, 1)), self.axis, f, ph)
            out[lab] = x + par["sigma"] * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))
        return Scan.from_on_off(out[ON], out[OFF], self.axis, subject=par["subject"] + "-synth", site=par["site"],
                                meta={"synthetic": True})
