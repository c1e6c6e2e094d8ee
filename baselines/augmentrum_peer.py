"""Peer row `augmentrum`: the augmentation package a user would otherwise reach for (augmentrum 0.0.3, PyPI,
Apache-2.0; LaMaster, Merkofer, Igwe), wrapped through the public plugin mechanism (an entry point, as a
third-party generator would be) and installed with ``pip install 'mrsbench[peers]'``.

What it does with a conditioning scan (it learns nothing from the training subjects):

1. align each condition's transients with mrsbench's processing (robust spectral registration, the harness's
   own :func:`~mrsbench.processing.alignment.align_condition`) and average them: one ON and one OFF FID;
2. augmentrum's ``TransientSynthesizer`` turns that pair into a train of 2n interleaved transients (ON, OFF, ON,
   ...: one scan's tracks shared by both conditions, as they are acquired) with its literature defaults for
   3 T: linear drift, AR(1) wander, respiration, phase coupled to frequency, receiver phase and amplitude
   jitter, slow broadening and motion events (see its docstring);
3. augmentrum's ``Noise`` adds white complex Gaussian noise with the conditioning scan's own per-transient noise
   level (sd of the real and imaginary FID tail, robust: 1.4826 x MAD).

Settings: ``tr_s`` (the clock of the synthesised dynamics; 2 s is Big GABA's TR), ``dynamics`` (False: the
averages repeated, noise only), ``align`` (False: the plain average of the unaligned transients)."""
from __future__ import annotations

import numpy as np

from mrsbench.core.scans import OFF, ON, Cohort, Scan
from mrsbench.generators.contract import Generator

_TAIL = 0.25   # last quarter of the FID (t > 0.77 s at 2048 points, 2000 Hz): metabolite signal (T2* < 0.1 s) gone


def noise_sd(fids: np.ndarray) -> float:
    """Per-transient time-domain noise sd (real and imaginary parts each) of (T, N) FIDs, from their tails."""
    tail = fids[:, -max(16, int(_TAIL * fids.shape[1])):]
    parts = np.concatenate([tail.real - np.median(tail.real, 1, keepdims=True),
                            tail.imag - np.median(tail.imag, 1, keepdims=True)], 1)
    return float(1.4826 * np.median(np.abs(parts)))


class AugmentrumPeer(Generator):
    """augmentrum's TransientSynthesizer + Noise on the aligned average of the conditioning scan."""

    name = "augmentrum"
    board_role = "peer"   # a reference row on boards: an existing augmentation tool, not a learned generator
    description = ("peer row: augmentrum 0.0.3 TransientSynthesizer (drift, respiration, phase coupling, motion "
                   "events) + Noise on the conditioning scan's aligned average")
    licence = "Apache-2.0 (augmentrum)"
    link = "https://github.com/julianmer/Augmentrum"

    def __init__(self, tr_s: float = 2.0, dynamics: bool = True, align: bool = True):
        self.tr_s, self.dynamics, self.align = tr_s, dynamics, align

    def fit(self, train: Cohort, seed: int = 0, val: Cohort | None = None) -> "AugmentrumPeer":
        try:
            import augmentrum  # noqa: F401
        except ImportError:
            raise ImportError("augmentrum is not installed: pip install 'mrsbench[peers]'") from None
        if not self.tr_s > 0:
            raise ValueError(f"tr_s must be positive, got {self.tr_s!r}")
        self.axis = train.axis
        self.train_ = train
        return self

    def _average(self, fids: np.ndarray) -> np.ndarray:
        if not self.align or len(fids) < 2:
            return fids.mean(0)
        from mrsbench.processing.alignment import align_condition, phasor
        from mrsbench.processing.config import ProcessingConfig
        f, p = align_condition(fids, self.axis, ProcessingConfig())
        return (fids * phasor(self.axis, f, p)).mean(0)

    def sample(self, n: int, *, condition: Scan | None = None, seed: int = 0) -> Scan:
        from augmentrum.augmentation.noise import Noise
        from augmentrum.augmentation.transient_synthesis import TransientSynthesizer
        rng = np.random.default_rng(seed)
        src = condition if condition is not None else self.train_.scans[rng.integers(len(self.train_.scans))]
        avg = {lab: self._average(src.fids[src.edit == lab]) for lab in (ON, OFF)}
        sd = noise_sd(src.fids)
        N = src.axis.n_points
        s1, s2 = (int(x) for x in rng.integers(0, 2**31 - 1, 2))
        if self.dynamics:   # the train factor itself: the synthesiser applied to a unit FID, one scan, 2n transients
            unit = np.ones((1, 1, 1, 1, N), np.complex128)
            factor, _ = TransientSynthesizer(n_transients=2 * n, tr_s=self.tr_s, seed=s1).process_tensor(
                unit, sw_hz=src.axis.sw_hz)
            factor = np.asarray(factor).reshape(N, 2 * n).T
        else:
            factor = np.ones((2 * n, N), np.complex128)
        train = np.empty((2 * n, N), np.complex128)
        train[0::2] = avg[ON][None] * factor[0::2]
        train[1::2] = avg[OFF][None] * factor[1::2]
        noisy, _ = Noise(sigma=sd, seed=s2).process_tensor(train.T.reshape(1, 1, 1, 1, N, 2 * n))
        noisy = np.asarray(noisy).reshape(N, 2 * n).T
        return Scan.from_on_off(noisy[0::2], noisy[1::2], src.axis, subject=f"{src.subject}-augmentrum",
                                site=src.site, meta={"synthetic": True})
