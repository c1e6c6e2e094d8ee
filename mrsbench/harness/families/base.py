"""The data types every metric family shares: what a family receives (:class:`Context`) and returns
(:class:`FamilyResult`). In their own module so that the families import them without importing the package
that lists the families."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from mrsbench.core.scans import Cohort
from mrsbench.harness.protocol import Preset


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
    # (sums and counts) or jackknife pseudo-values, from which mrsbench.harness.statistics recomputes the metrics
    # for any weighting of the subjects (bootstrap intervals, paired permutation tests)
    subjects: dict = field(default_factory=dict)
