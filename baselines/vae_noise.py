"""`vae-noise`: the paper's VAE, sampled from its likelihood instead of its mean.

The paper names its own limitation: transients decoded from the VAE's mean carry no noise, so an augmented
scan's SNR is inflated and quantification biased. This variant keeps the VAE (same class, same training) and
adds what the mean leaves out, both estimated from data rather than set by hand:

* **observation noise**: a Gaussian likelihood with one variance per feature (real and imaginary part at each
  frequency of the band), the maximum-likelihood estimate from the training transients' reconstruction
  residuals (aligned transients, about each scan's mean residual), rescaled per subject by the ratio of the
  conditioning transients' residual spread to the training one (subjects and sites differ in noise level);
* **transient-level frequency and phase variation**: the conditioning transients are aligned (the harness's
  own spectral registration, Near et al. MRM 2015), encoded aligned, and every decoded transient gets the
  frequency and phase offset of a randomly drawn conditioning transient back.
"""
from __future__ import annotations

import numpy as np

from mrsbench.core.scans import OFF, ON, Cohort, Scan
from mrsbench.generators.contract import LatentSampling

from mrsbench_baselines.vae import VAEGenerator


class VAENoiseGenerator(VAEGenerator):
    """The VAE with a learned per-feature Gaussian likelihood and the conditioning transients' shift jitter."""

    name = "vae-noise"
    description = ("the paper's VAE sampled from its likelihood: learned per-feature noise and the conditioning "
                   "transients' frequency/phase jitter")

    def __init__(self, *args, sampling: LatentSampling = LatentSampling("interpolation"), **kw):
        # interpolation between conditioning codes without the Gaussian perturbation: the likelihood's noise is
        # drawn explicitly, so perturbing the codes as well would count the transients' spread twice
        super().__init__(*args, sampling=sampling, **kw)

    def fit(self, train: Cohort, seed: int = 0, val: Cohort | None = None) -> "VAENoiseGenerator":
        super().fit(train, seed, val)
        # the likelihood's variance from aligned transients (their shift jitter is drawn separately), about each
        # scan-condition's mean residual (the decoder's systematic misfit of a subject is not noise)
        r = np.concatenate([self._centred_residual(self._aligned(s.fids[s.edit == lab], s.axis)[0])
                            for s in train.scans for lab in (ON, OFF)])
        self.noise_var_ = np.maximum(np.mean(r ** 2, 0), 1e-12)      # ML variance per feature (D,)
        self.spread_ = float(np.sqrt(np.mean(r ** 2)))
        return self

    @staticmethod
    def _aligned(x: np.ndarray, axis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Transients of one condition aligned by the harness's own method, and the corrections (Hz, rad)."""
        from mrsbench.processing.alignment import align_condition, apply_shift
        from mrsbench.processing.config import ProcessingConfig
        if len(x) < 2:
            return x, np.zeros(len(x)), np.zeros(len(x))
        f, phi = align_condition(x, axis, ProcessingConfig())
        return apply_shift(x, axis, f, phi), f, phi

    def _centred_residual(self, fids: np.ndarray) -> np.ndarray:
        r = self._residual(fids)
        return (r - r.mean(0)) * np.sqrt(len(r) / max(len(r) - 1, 1))

    def _residual(self, fids: np.ndarray) -> np.ndarray:
        """Feature-space reconstruction residuals (T, D) of transients through the VAE's posterior mean."""
        x = self.features.transform(fids)
        import torch
        with torch.no_grad():
            mu = self.model(torch.as_tensor(x, device=self._device()))[0]
            rec = self.model.dec(mu).cpu().numpy()
        return x - rec

    def sample(self, n: int, *, condition: Scan | None = None, seed: int = 0) -> Scan:
        from mrsbench.processing.alignment import apply_shift

        rng = np.random.default_rng(seed)
        if condition is None:
            base = super().sample(n, condition=None, seed=seed)
            out = {lab: self._noisy(base.fids[base.edit == lab], 1.0, rng) for lab in (ON, OFF)}
            return Scan.from_on_off(out[ON], out[OFF], self.axis, subject="vae-noise-synth", meta={"synthetic": True})
        out = {}
        sampling = self.sampling if isinstance(self.sampling, LatentSampling) else LatentSampling()
        for lab in (ON, OFF):
            x = condition.fids[condition.edit == lab]
            aligned, f, phi = self._aligned(x, condition.axis)
            scale = float(np.sqrt(np.mean(self._centred_residual(aligned) ** 2))) / self.spread_ if len(x) > 1 else 1.0
            z = self.encode(aligned)
            mean = self.features.transform(self.decode(sampling.draw(z, n, rng)))
            fids = self._noisy(mean, scale, rng, features=True)
            pick = rng.integers(0, len(x), n)                           # a conditioning transient's offset back
            out[lab] = apply_shift(fids, condition.axis, -f[pick], -phi[pick])
        return Scan.from_on_off(out[ON], out[OFF], self.axis, subject=condition.subject + "-synth",
                                site=condition.site, meta={"synthetic": True})

    def _noisy(self, x: np.ndarray, scale: float, rng: np.random.Generator, features: bool = False) -> np.ndarray:
        """FIDs from decoder means plus a draw of the likelihood's noise (``x``: features if ``features``, else FIDs)."""
        m = x if features else self.features.transform(x)
        eps = rng.standard_normal(m.shape) * np.sqrt(self.noise_var_)[None, :] * scale
        return self.features.inverse(m + eps, rng)

    def save(self, path) -> None:
        import json
        from pathlib import Path
        super().save(path)
        (Path(path) / "noise.json").write_text(json.dumps({"noise_var": self.noise_var_.tolist(), "spread": self.spread_}))

    @classmethod
    def load(cls, path) -> "VAENoiseGenerator":
        import json
        from pathlib import Path
        g = super().load(path)
        d = json.loads((Path(path) / "noise.json").read_text())
        g.noise_var_, g.spread_ = np.asarray(d["noise_var"]), float(d["spread"])
        return g
