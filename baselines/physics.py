"""Physics-simulation baseline: quantify the conditioning transients with the LCM fitter and simulate
new transients from the basis with the estimated amplitudes, line shape, frequency/phase drift and
noise level."""
from __future__ import annotations

import numpy as np

from mrsbench.core.scans import OFF, ON, Cohort, Scan
from mrsbench.generators.contract import Generator
from mrsbench.processing import apply_shift, process_many, scan_key
from mrsbench_baselines.denoised import transient_sigma


class PhysicsGenerator(Generator):
    """Basis-set simulation with parameters estimated by the quantifier."""

    name = "physics"
    description = "LCM fit of the conditioning transients, then basis-set simulation with fitted drift and noise"

    def __init__(self):
        self._q = None
        self._ready: dict = {}   # content key of a conditioning scan -> its estimate (see prepare)

    def fit(self, train: Cohort, seed: int = 0, val: Cohort | None = None) -> "PhysicsGenerator":
        from mrsbench.fitting.quantify import Quantifier
        self.axis = train.axis
        self._q = Quantifier(self.axis)
        self._ready = {}
        # the training cohort's distribution: one parameter set per training subject (one batched fit)
        self.params_ = self._estimate_many(train.scans)
        return self

    def prepare(self, conditions: list[Scan]) -> None:
        """Estimate the parameters of every conditioning scan in one batched LCM fit (the harness announces
        the scans it will pass to ``sample``); ``sample`` then uses (and drops) the stored estimate."""
        todo = {}
        for c in conditions:
            k = scan_key(c)   # processing's content key: passed on, so each scan is hashed once here
            if k not in self._ready and k not in todo:
                todo[k] = c
        for k, est in zip(todo, self._estimate_many(list(todo.values()), keys=list(todo))):
            self._ready[k] = est

    def _estimate_many(self, scans: list[Scan], keys: list | None = None) -> list[dict]:
        """Per scan: the noise-free model FIDs of ON and OFF, the per-transient frequency and phase drift
        and the noise level, from processing and one batched LCM fit of all the scans' OFF and DIFF."""
        if not scans:
            return []
        ps = process_many(scans, keys=keys)   # in parallel (worker processes), in order; each scan once
        sp = [p.spectra() for p in ps]
        # DIFF with each scan's own editing (its ON transients' frequency offsets), as the harness quantifies
        ro, rd = self._q.fit(np.stack([x["off"] for x in sp]), np.stack([x["diff"] for x in sp]),
                             on_offsets=[p.on_offsets_hz() for p in ps])
        clean_off = self._q.off.model_fid(ro)
        clean_diff = self._q.diff.model_fid(rd)
        out = []
        for b, (scan, p) in enumerate(zip(scans, ps)):
            # undo the referencing so synthetic transients sit where the real ones do
            back_f = -p.info.get("cr_shift_hz", 0.0)
            back_p = -p.info.get("tcr_phase_rad", 0.0)
            clean = {OFF: clean_off[b], ON: clean_off[b] + clean_diff[b]}
            out.append({"clean": clean, "f": -p.freq_hz + back_f, "phi": -p.phase_rad + back_p,
                        "edit": scan.edit.copy(), "sigma": transient_sigma(scan), "site": scan.site,
                        "subject": scan.subject})
        return out

    def sample(self, n: int, *, condition: Scan | None = None, seed: int = 0) -> Scan:
        rng = np.random.default_rng(seed)
        if condition is not None:
            par = self._ready.pop(scan_key(condition), None) or self._estimate_many([condition])[0]
        else:
            par = self.params_[rng.integers(len(self.params_))]
        out = {}
        for lab in (ON, OFF):
            m = par["edit"] == lab
            j = rng.integers(0, m.sum(), n)
            f, ph = par["f"][m][j], par["phi"][m][j]
            x = apply_shift(np.tile(par["clean"][lab], (n, 1)), self.axis, f, ph)
            out[lab] = x + par["sigma"] * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))
        return Scan.from_on_off(out[ON], out[OFF], self.axis, subject=par["subject"] + "-synth", site=par["site"],
                                meta={"synthetic": True})
