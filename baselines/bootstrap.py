"""Reference row `bootstrap`: resamples the conditioning transients (with replacement, per condition).

It adds no information about the subject: an augmented scan built from it holds the same real transients
as the short scan, some of them several times. Its effective transients bracket the scale from below —
a generator whose gain is not above bootstrap's has learned nothing a copy machine does not know."""
from __future__ import annotations

import numpy as np

from mrsbench.core.scans import OFF, ON, Cohort, Scan
from mrsbench.generators.contract import Generator


class BootstrapGenerator(Generator):
    """Resample real transients of the conditioning scan (a random training subject without one)."""

    name = "bootstrap"
    board_role = "floor"     # a reference row on boards: what resampling the short scan alone gives (mrsbench.boards.verdict)
    description = "reference row: resamples the conditioning transients with replacement (adds no information)"

    def fit(self, train: Cohort, seed: int = 0, val: Cohort | None = None) -> "BootstrapGenerator":
        self.axis = train.axis
        self.train_ = train
        return self

    def sample(self, n: int, *, condition: Scan | None = None, seed: int = 0) -> Scan:
        rng = np.random.default_rng(seed)
        src = condition if condition is not None else self.train_.scans[rng.integers(len(self.train_.scans))]
        pick = {}
        for lab in (ON, OFF):
            pool = src.fids[src.edit == lab]
            pick[lab] = pool[rng.integers(0, len(pool), n)]
        return Scan.from_on_off(pick[ON].astype(np.complex128), pick[OFF].astype(np.complex128), src.axis,
                                subject=f"{src.subject}-bootstrap", site=src.site, meta={"synthetic": True})

