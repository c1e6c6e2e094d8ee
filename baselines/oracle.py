"""Reference row `oracle` (simulated datasets only): new transients of the subject drawn from its true
noise-free ON and OFF spectra and the simulator's own transient model.

What it knows that no generator can: the noise-free truth of every subject (the cohort's stored clean
spectra) and the simulator's per-subject drift rate, frequency offset, phase and noise level (its ground
truth table, :mod:`mrsbench.data.simulate`). Each transient gets the subject's frequency offset plus its linear
drift at a random time of the 160-pair scan and a random-walk term, the site phase with the simulator's
phase jitter, the amplitude jitter, and complex Gaussian noise of the subject's sigma. Left out (so the
oracle's transients are slightly cleaner than the real ones): residual water, eddy-current phase,
motion-corrupted transients and the drift-dependent detuning of the editing pulse. Its effective
transients bracket the scale from above: a real generator can approach but should not beat it."""
from __future__ import annotations

import numpy as np

from mrsbench.core.scans import OFF, ON, Cohort, Scan
from mrsbench.generators.contract import Generator


class OracleGenerator(Generator):
    """Truth-based transients (simulated datasets only)."""

    name = "oracle"
    board_role = "ceiling"   # a reference row on boards: the simulator's own truth (mrsbench.boards.verdict)
    description = "reference row (simulated data only): the subject's true noise-free spectra + the simulator's transient model"

    def fit(self, train: Cohort, seed: int = 0, val: Cohort | None = None) -> "OracleGenerator":
        from mrsbench.data.datasets import load_dataset
        cfg = train.meta.get("config")
        name = train.meta.get("dataset", train.name)
        if not cfg or train.ground_truth is None or "noise_sigma" not in train.ground_truth.columns:
            raise ValueError(f"dataset {name!r} has no simulated truth: the oracle runs on simulated datasets only")
        basis = cfg.get("basis_dir")
        base = cfg["name"].split("-basis-")[0] if basis else cfg["name"]
        full, extras = load_dataset(base, seed=cfg.get("seed"), with_extras=True, progress=False, basis=basis)
        if full.meta.get("identity") != train.meta.get("identity"):
            raise ValueError(f"dataset {name!r}: its simulated truth could not be regenerated (identity differs)")
        self.axis = train.axis
        self.cfg_ = cfg
        self.clean_ = {s: extras["clean"][i] for i, s in enumerate(full.subjects)}   # (2, N): ON, OFF
        self.truth_ = full.ground_truth.set_index("subject")
        self.train_subjects_ = list(train.subjects)
        return self

    def sample(self, n: int, *, condition: Scan | None = None, seed: int = 0) -> Scan:
        rng = np.random.default_rng(seed)
        subj = condition.subject if condition is not None else self.train_subjects_[rng.integers(len(self.train_subjects_))]
        if subj not in self.clean_:
            raise ValueError(f"subject {subj!r} is not in the simulated cohort")
        row, cfg, ax = self.truth_.loc[subj], self.cfg_, self.axis
        t = ax.time
        out = {}
        for k, lab in enumerate((ON, OFF)):
            tmin = rng.uniform(0, 2 * cfg["n_pairs"] * cfg["tr_s"] / 60.0, n)          # time in the scan, min
            f = row["freq_offset_hz"] + row["drift_hz_per_min"] * tmin + rng.normal(0, cfg["random_walk_hz"], n) \
                * np.sqrt(rng.uniform(1, 2 * cfg["n_pairs"], n))
            ph = np.deg2rad(row["phase_deg"] + rng.normal(0, cfg["phase_jitter_deg"], n))
            a = 1 + rng.normal(0, cfg["amp_jitter"], n)
            clean = self.clean_[subj][0 if lab == ON else 1]
            x = (a * np.exp(1j * ph))[:, None] * clean[None] * np.exp(2j * np.pi * f[:, None] * t[None])
            sigma = float(row["noise_sigma"])
            out[lab] = x + sigma * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))
        return Scan.from_on_off(out[ON], out[OFF], ax, subject=f"{subj}-oracle", site=str(row["site"]),
                                meta={"synthetic": True})
