"""Probabilistic PCA baseline (Tipping & Bishop, JRSS-B 1999) on the spectral representation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mrsbench.core.scans import OFF, ON, Cohort, Scan
from mrsbench.generators.contract import Generator, LatentSampling, SpectralFeatures


class PCAGenerator(Generator):
    """Probabilistic PCA on the spectrum (real + imaginary); samples include its isotropic noise."""

    name = "pca"
    description = "probabilistic PCA on the complex spectrum; isotropic noise term used when sampling"

    def __init__(self, n_components: int = 32, ppm_range: tuple[float, float] | None = None,
                 sampling: LatentSampling = LatentSampling()):
        self.n_components = n_components
        self.ppm_range = ppm_range
        self.sampling = sampling

    def fit(self, train: Cohort, seed: int = 0, val: Cohort | None = None) -> "PCAGenerator":
        from sklearn.decomposition import PCA

        self.axis = train.axis
        fids = np.concatenate([s.fids for s in train.scans])
        edit = np.concatenate([s.edit for s in train.scans])
        self.features = SpectralFeatures(self.axis, self.ppm_range).fit(fids)
        X = self.features.transform(fids).astype(np.float64)
        k = min(self.n_components, X.shape[0] - 1, X.shape[1] - 1)
        pca = PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(X)
        self.mean_ = pca.mean_
        self.noise_var_ = float(pca.noise_variance_)  # ML estimate: mean of the discarded eigenvalues
        self.W_ = pca.components_.T * np.sqrt(np.maximum(pca.explained_variance_ - self.noise_var_, 0))
        self._set_posterior()
        z = self.encode_features(X)
        self.latent_ = {lab: (z[edit == lab].mean(0), np.cov(z[edit == lab].T)) for lab in (ON, OFF)}
        return self

    def _set_posterior(self):
        M = self.W_.T @ self.W_ + self.noise_var_ * np.eye(self.W_.shape[1])
        self._Minv_Wt = np.linalg.solve(M, self.W_.T)

    def encode_features(self, X):
        return (X - self.mean_) @ self._Minv_Wt.T

    def encode(self, fids, edit=None) -> np.ndarray:
        """Posterior mean latent codes (T, k)."""
        return self.encode_features(self.features.transform(fids).astype(np.float64))

    def decode(self, z, edit=None, rng=None, noise: bool = False) -> np.ndarray:
        """FIDs (T, N) from latent codes; with ``noise`` adds the isotropic noise term."""
        X = np.atleast_2d(z) @ self.W_.T
        X += self.mean_   # (in place: the same numbers as X + mean without another (T, 2M) array)
        if noise:
            rng = rng or np.random.default_rng(0)
            e = rng.standard_normal(X.shape)
            e *= np.sqrt(self.noise_var_)
            X += e
        return self.features.inverse(X, rng)

    def sample(self, n: int, *, condition: Scan | None = None, seed: int = 0) -> Scan:
        rng = np.random.default_rng(seed)
        out = {}
        for lab in (ON, OFF):
            if condition is not None:
                z = self.sampling.draw(self.encode(condition.fids[condition.edit == lab]), n, rng)
            else:
                mu, cov = self.latent_[lab]
                z = rng.multivariate_normal(mu, cov, size=n)
            out[lab] = self.decode(z, rng=rng, noise=True)
        ref = condition if condition is not None else None
        return Scan.from_on_off(out[ON], out[OFF], self.axis, subject=(ref.subject + "-synth") if ref else "pca-synth",
                                site=ref.site if ref else "", meta={"synthetic": True})

    def save(self, path) -> None:
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        np.savez(p / "pca.npz", W=self.W_, mean=self.mean_, noise_var=self.noise_var_,
                 **{f"lat_mu_{k}": v[0] for k, v in self.latent_.items()},
                 **{f"lat_cov_{k}": v[1] for k, v in self.latent_.items()})
        (p / "config.json").write_text(json.dumps({"n_components": self.n_components, "ppm_range": self.ppm_range,
                                                    "axis": self.axis.to_dict(), "scale": self.features.scale,
                                                    "noise_sd": self.features.noise_sd,
                                                    "sampling": [self.sampling.strategy, self.sampling.scale]}))

    @classmethod
    def load(cls, path) -> "PCAGenerator":
        from mrsbench.core.axis import SpectralAxis
        p = Path(path)
        cfg = json.loads((p / "config.json").read_text())
        g = cls(cfg["n_components"], tuple(cfg["ppm_range"]) if cfg["ppm_range"] else None,
                LatentSampling(*cfg["sampling"]))
        g.axis = SpectralAxis(**cfg["axis"])
        g.features = SpectralFeatures(g.axis, g.ppm_range, cfg["scale"], cfg["noise_sd"])
        z = np.load(p / "pca.npz", allow_pickle=False)
        g.W_, g.mean_, g.noise_var_ = z["W"], z["mean"], float(z["noise_var"])
        g.latent_ = {k: (z[f"lat_mu_{k}"], z[f"lat_cov_{k}"]) for k in (ON, OFF)}
        g._set_posterior()
        return g
