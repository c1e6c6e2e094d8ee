"""An example third-party generator, used as a plugin: ``mrsbench run --model jitter --plugins
examples/jitter_generator.py`` or ``mrsbench submit examples/jitter_generator.py``."""
import numpy as np

from mrsbench import Scan
from mrsbench.generators.contract import Generator


class Jitter(Generator):
    """Resample real transients of the subject, each with a small random phase."""

    name = "jitter"
    description = "real transients of the subject resampled, each with a small random phase (example plugin)"

    def __init__(self, phase_sd_rad: float = 0.05):
        self.phase_sd_rad = phase_sd_rad

    def fit(self, train, seed=0, val=None):
        self.train = train
        return self

    def sample(self, n, *, condition=None, seed=0):
        # condition: a Scan of one test subject's short scan (its first n ON + n OFF transients); None: the
        # harness asks for transients of no particular subject (reconstruction/embedding families)
        rng = np.random.default_rng(seed)
        src = condition if condition is not None else self.train.scans[rng.integers(len(self.train))]
        pick = lambda lab: src.fids[src.edit == lab][rng.integers(0, np.sum(src.edit == lab), n)]  # noqa: E731
        phase = np.exp(1j * rng.normal(0, self.phase_sd_rad, (n, 1)))
        return Scan.from_on_off(pick(1) * phase, pick(0) * phase, src.axis)


# registration: `--plugins` imports this file and takes the generators named here
MRSBENCH_GENERATORS = {"jitter": Jitter}
