"""Compatibility: plugins written for mrsbench 0.1 import the generator contract from here. New code imports
:mod:`mrsbench.generators` (the contract lives in :mod:`mrsbench.generators.contract`)."""
from mrsbench.generators.contract import (EarlyStopping, Generator, GeneratorError, LatentSampling,  # noqa: F401
                                          SpectralFeatures, latent_sample, validate_samples)
