"""The public generator interface (scikit-learn style) and the latent sampling strategies.

A generator learns from a training cohort and synthesises transients of the cohort's spectral axis:

* ``fit(train_cohort, seed, val_cohort=None)`` -> self
* ``sample(n, *, condition=None, seed)`` -> :class:`~mrsbench.core.scans.Scan` with ``n`` edit-ON and ``n``
  edit-OFF transients (interleaved). ``condition`` is a Scan of real transients of one subject: the
  generator then makes more transients of that subject (ON from ON, OFF from OFF).
* optional ``prepare(conditions)``: the harness announces, in batches, the conditioning scans it is about to
  pass to ``sample`` (in that order), so that per-condition work can be batched (the physics baseline fits
  them all in one LCM call); ``sample`` must give the same transients whether or not it was called;
* optional ``encode(fids) -> (T, d)`` and ``decode(z) -> (T, N)`` for latent models;
* ``save(path)`` / ``load(path)``.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from mrsbench.core.axis import SpectralAxis, _fft
from mrsbench.core.scans import OFF, ON, Cohort, Scan
from mrsbench.core.errors import MRSBenchError
from mrsbench.core.parallel import fft_workers


class GeneratorError(MRSBenchError):
    """A generator misbehaved (bad output, missing method); the message names the generator."""


class Generator:
    """Base class. Subclasses set ``name`` and ``description`` and implement ``fit`` and ``sample``."""

    name: str = "generator"
    description: str = ""
    axis: SpectralAxis | None = None
    # resources each cell of this generator asks for in `mrsbench sweep` (Ray resource names, e.g.
    # {"num_gpus": 1}); CPUs come from --cpus-per-cell
    resources: dict = {}

    def fit(self, train: Cohort, seed: int = 0, val: Cohort | None = None) -> "Generator":
        raise NotImplementedError

    def sample(self, n: int, *, condition: Scan | None = None, seed: int = 0) -> Scan:
        raise NotImplementedError

    def prepare(self, conditions: list[Scan]) -> None:
        """Optional batch hook: ``conditions`` are scans ``sample`` will be conditioned on next (default: nothing)."""

    def save(self, path) -> None:
        raise NotImplementedError(f"{self.name} does not support save")

    @classmethod
    def load(cls, path) -> "Generator":
        raise NotImplementedError(f"{cls.__name__} does not support load")

    @property
    def has_latent(self) -> bool:
        return callable(getattr(self, "encode", None)) and callable(getattr(self, "decode", None))


REQUIRED = ("fit", "sample")


@contextmanager
def generator_call(model: str, method: str):
    """Report any exception raised inside a generator's method as one line naming the generator
    and the method (a plugin's bug is not mrsbench's traceback)."""
    try:
        yield
    except GeneratorError:
        raise
    except Exception as e:
        msg = str(e).splitlines()[0][:300] if str(e) else ""
        raise GeneratorError(f"generator {model!r}: {method}() failed: {type(e).__name__}: {msg}") from e


def clone_generator(gen: Generator, model: str = "generator") -> Generator:
    """A new, unfitted generator with the same settings as ``gen`` (one per fold of a k-fold preset).

    As scikit-learn's ``clone``: ``type(gen)(**gen.get_params())`` when the generator has ``get_params``;
    otherwise a deep copy of the instance (which, passed in before fitting, is an unfitted generator with the
    same settings). An instance that can be neither is a one-line error naming the generator."""
    import copy
    get_params = getattr(gen, "get_params", None)
    try:
        if callable(get_params):
            return type(gen)(**copy.deepcopy(get_params()))
        return copy.deepcopy(gen)
    except Exception as e:
        raise GeneratorError(f"generator {model!r}: cannot make one copy per fold of a k-fold preset (give the class "
                             f"a get_params() returning its __init__ arguments): {type(e).__name__}: {e}") from None


def check_generator_class(cls) -> list[str]:
    """Problems with a generator class (empty when it satisfies the interface)."""
    problems = []
    for m in REQUIRED:
        f = getattr(cls, m, None)
        if not callable(f):
            problems.append(f"missing method {m}()")
        elif getattr(Generator, m, None) is f:
            problems.append(f"{m}() is not implemented (inherits the abstract base)")
    for m in ("encode", "decode"):
        if callable(getattr(cls, m, None)) != callable(getattr(cls, "encode" if m == "decode" else "decode", None)):
            problems.append("encode() and decode() must be provided together")
            break
    return problems


def validate_samples(out, n: int, axis: SpectralAxis, generator: str) -> Scan:
    """Check a generator's ``sample`` output: a Scan on ``axis`` with n ON and n OFF finite transients."""
    if not isinstance(out, Scan):
        raise GeneratorError(f"generator {generator!r}: sample() returned {type(out).__name__}, expected mrsbench.Scan")
    if not out.axis.compatible(axis):
        raise GeneratorError(f"generator {generator!r}: samples have axis {out.axis}, expected {axis}")
    n_on, n_off = int((out.edit == ON).sum()), int((out.edit == OFF).sum())
    if (n_on, n_off) != (n, n):
        raise GeneratorError(f"generator {generator!r}: asked for {n} ON + {n} OFF, got {n_on} ON + {n_off} OFF")
    if out.fids.dtype != np.complex128 or not np.all(np.isfinite(out.fids)):
        raise GeneratorError(f"generator {generator!r}: samples must be finite complex128")
    return out


class EarlyStopping:
    """Keep the best weights of a torch model by a validation score; stop after ``patience`` evaluations without
    an improvement larger than ``min_delta``. ``update(score, model)`` returns True when training should stop;
    ``restore(model)`` loads the best weights."""

    def __init__(self, patience: int, min_delta: float = 1e-6):
        self.patience, self.min_delta = patience, min_delta
        self.best, self.bad, self.state = np.inf, 0, None

    def update(self, score: float, model) -> bool:
        if score < self.best - self.min_delta:
            self.best, self.bad = score, 0
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.bad += 1
        return self.bad >= self.patience

    def restore(self, model) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)
        model.eval()


# --- latent sampling strategies (paper): shared by every latent generator -------------------

# the paper's three ways of drawing from the latent space (van de Sande et al., its Fig. 5): random sampling
# around encoded transients ("RS"), interpolation between them, hybrid (interpolate, then perturb)
STRATEGIES = ("random", "interpolation", "hybrid")


@dataclass(frozen=True)
class LatentSampling:
    """How to draw latent codes from encoded conditioning transients.

    strategy: "random" (Gaussian perturbation around a random encoded transient), "interpolation"
    (between random pairs), "hybrid" (interpolate, then perturb). ``scale`` is the perturbation sd
    relative to the per-dimension sd of the encoded set.
    """

    strategy: str = field(default="hybrid", metadata={"choices": STRATEGIES, "aliases": {"rs": "random"}})
    scale: float = 0.5

    def draw(self, z: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown sampling strategy {self.strategy!r}")
        z = np.atleast_2d(z)
        sd = z.std(0, keepdims=True) + 1e-8
        i = rng.integers(0, len(z), n)
        if self.strategy == "random":
            return z[i] + self.scale * sd * rng.standard_normal((n, z.shape[1]))
        j = rng.integers(0, len(z), n)
        a = rng.uniform(0, 1, (n, 1))
        out = (1 - a) * z[i] + a * z[j]
        if self.strategy == "hybrid":
            out = out + self.scale * sd * rng.standard_normal((n, z.shape[1]))
        return out


def latent_sample(gen, n: int, condition: Scan, seed: int, sampling: LatentSampling) -> Scan:
    """Sample n ON + n OFF transients from a latent generator conditioned on ``condition``."""
    rng = np.random.default_rng(seed)
    out = {}
    for lab in (ON, OFF):
        z = gen.encode(condition.fids[condition.edit == lab], edit=lab)
        out[lab] = gen.decode(sampling.draw(z, n, rng), edit=lab)
    return Scan.from_on_off(out[ON], out[OFF], condition.axis, subject=condition.subject + "-synth",
                            site=condition.site, meta={"synthetic": True})


# --- shared spectral representation -------------------------------------------------------

_BLOCK = 512   # transients per block in SpectralFeatures (bounded temporaries)


@dataclass
class SpectralFeatures:
    """Real features of transients: real and imaginary parts of the spectrum over a ppm range,
    concatenated, divided by one global scale (median over training transients of max |spectrum|).
    Outside the ppm range a decoded transient gets zero signal plus white noise at the level of the
    training data (so it stays a complete transient)."""

    axis: SpectralAxis
    ppm_range: tuple[float, float] | None = None
    scale: float = 1.0
    noise_sd: float = 0.0
    normalisation: str = "global_max"   # "global_max" (median of max |spectrum|) or "none"

    @property
    def mask(self) -> np.ndarray:
        if self.ppm_range is None:
            return np.ones(self.axis.n_points, bool)
        return self.axis.window(*self.ppm_range)

    def fit(self, fids: np.ndarray) -> "SpectralFeatures":
        if self.normalisation not in ("global_max", "none"):
            raise ValueError(f"unknown normalisation {self.normalisation!r}")
        fids = np.atleast_2d(fids)
        m = self.mask
        # per transient, in blocks (the same numbers as on the whole (T, N) spectrum at once, without its copies)
        peak, mad = np.empty(len(fids)), np.empty(len(fids))
        for i in range(0, len(fids), _BLOCK):
            s = self.axis.to_spectrum(fids[i:i + _BLOCK])
            peak[i:i + _BLOCK] = np.abs(s[:, m]).max(1) if m.any() else 0.0
            out = s[:, ~m].real
            # robust noise sd of the real part outside the band (1.4826 x median absolute deviation from the
            # median, per transient, then the median over transients): water, lipids and the tails of the
            # metabolite peaks outside the band would inflate a plain sd (measured: the flow's synthetic/real
            # noise ratio at 9.8-10.8 ppm 6.1 with it, 1.3 with this)
            if out.size:
                mad[i:i + _BLOCK] = np.median(np.abs(out - np.median(out, 1, keepdims=True)), 1)
        self.scale = (float(np.median(peak)) or 1.0) if self.normalisation == "global_max" else 1.0
        self.noise_sd = float(1.4826 * np.median(mad)) if (~m).any() and len(fids) else 0.0
        return self

    def transform(self, fids: np.ndarray) -> np.ndarray:
        """(T, 2M) float32: real then imaginary spectrum over the band, divided by ``scale``."""
        return self.axis.real_imag_points(fids, self.mask, self.scale, np.float32, _BLOCK)

    def inverse(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, float))
        m = self.mask
        k = int(m.sum())
        N = self.axis.n_points
        # the spectrum is written straight into FFT order (to_fid's ifftshift without its copy): point i of the
        # shifted spectrum goes to index at[i]
        at = np.argsort(np.fft.ifftshift(np.arange(N)))
        spec = np.empty((len(x), N), complex) if m.all() else np.zeros((len(x), N), complex)
        spec[:, at[m]] = (x[:, :k] + 1j * x[:, k:]) * self.scale
        if (~m).any() and rng is not None and self.noise_sd > 0:
            spec[:, at[~m]] = self.noise_sd * (rng.standard_normal((len(x), (~m).sum())) +
                                               1j * rng.standard_normal((len(x), (~m).sum())))
        return _fft().ifft(spec, axis=-1, workers=fft_workers())
