"""Compatibility: plugins written for mrsbench 0.1 call ``mrsbench.registry.register``. New code imports
:func:`mrsbench.generators.register` (the registry lives in :mod:`mrsbench.generators.registry`)."""
from mrsbench.generators.registry import available, get, list_generators, register  # noqa: F401
