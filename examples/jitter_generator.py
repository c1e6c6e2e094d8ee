import numpy as np

from mrsbench import Scan
from mrsbench.generator import Generator


class Jitter(Generator):
    """Resample real transients of the subject, each with a small random phase."""

    name = "jitter"

    def fit(self, train, seed=0, val=None):
        self.train = train
        return self

    def sample(self, n, *, condition=None, seed=0):
        rng = np.random.default_rng(seed)
        src = condition if condition is not None else self.train.scans[rng.integers(len(self.train))]
        pick = lambda lab: src.fids[src.edit == lab][rng.integers(0, np.sum(src.edit == lab), n)]
        phase = np.exp(1j * rng.normal(0, 0.05, (n, 1)))
        return Scan.from_on_off(pick(1) * phase, pick(0) * phase, src.axis)
