"""The metric families of the harness, one module each, all of one shape.

A family is a function ``run(ctx: Context) -> FamilyResult``: it receives the fitted generator (through
``ctx.sample`` and ``ctx.gen``), the split (``ctx.train``, ``ctx.test``), the preset and seed, and the
model-independent work of the cell (``ctx.shared``, :mod:`mrsbench.shared`); it returns its metrics (flat
keys ``<family>.<...>``), its figures (file name -> a function drawing a matplotlib Figure) and what later
families may use (``products``). The run loop (:func:`mrsbench.harness.run`) calls them in the order of
:data:`FAMILIES`; adding a family is one new module and one line here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..data import Cohort
from ..protocol import Preset


@dataclass
class Context:
    model: str
    gen: object                 # the fitted generator
    sample: Callable            # sample(n, condition, seed) -> validated Scan (n ON + n OFF)
    train: Cohort
    test: Cohort
    pr: Preset
    seed: int
    shared: object              # SharedWork
    progress: bool = True
    products: dict = field(default_factory=dict)   # family name -> what it hands on
    gen_for: Callable | None = None                # subject -> the generator that did not see it (k-fold)
    # prepare(conditions): announce conditioning scans before sampling them (a generator may batch its work)
    prepare: Callable = lambda conditions: None

    def generator_for(self, subject: str | None):
        return self.gen if self.gen_for is None else self.gen_for(subject)


@dataclass
class FamilyResult:
    metrics: dict
    figures: dict = field(default_factory=dict)    # file name -> callable(results) -> matplotlib Figure
    products: dict = field(default_factory=dict)
    # per test subject (leading axis, in ``ctx.test`` order): additive statistics of the headline metrics
    # (sums and counts) or jackknife pseudo-values, from which mrsbench.subject_stats recomputes the metrics
    # for any weighting of the subjects (bootstrap intervals, paired permutation tests)
    subjects: dict = field(default_factory=dict)


def family_list():
    from . import application, embedding, quantification, reconstruction
    return [("reconstruction", reconstruction.run), ("embedding", embedding.run),
            ("application", application.run), ("quantification", quantification.run)]


FAMILY_NAMES = ("reconstruction", "embedding", "application", "quantification")
