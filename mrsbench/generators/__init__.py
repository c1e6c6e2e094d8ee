"""The generator contract a model implements (``contract``: :class:`Generator`, latent sampling, spectral
features) and the registry that finds generators by name (entry points ``mrsbench.generators`` and plugin
files). This is what a third-party generator imports."""
from mrsbench.generators.contract import (EarlyStopping, Generator, GeneratorError, LatentSampling,
                                          SpectralFeatures, latent_sample)
from mrsbench.generators.registry import register

__all__ = ["Generator", "GeneratorError", "LatentSampling", "SpectralFeatures", "EarlyStopping", "latent_sample",
           "register"]
