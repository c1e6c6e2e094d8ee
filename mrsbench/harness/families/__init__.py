"""The metric families of the harness, one module each, all of one shape.

A family is a function ``run(ctx: Context) -> FamilyResult``: it receives the fitted generator (through
``ctx.sample`` and ``ctx.gen``), the split (``ctx.train``, ``ctx.test``), the preset and seed, and the
model-independent work of the cell (``ctx.shared``, :mod:`mrsbench.harness.cell_work`); it returns its metrics (flat
keys ``<family>.<...>``), its figures (file name -> a function drawing a matplotlib Figure) and what later
families may use (``products``). The run loop (:func:`mrsbench.harness.evaluator.run`) calls them in the order of
:data:`FAMILIES`; adding a family is one new module and one line here.
"""
from __future__ import annotations

from mrsbench.harness.families.base import Context, FamilyResult  # noqa: F401  (the families' shared types, re-exported)


def family_list():
    from mrsbench.harness.families import application
    from mrsbench.harness.families import embedding
    from mrsbench.harness.families import quantification
    from mrsbench.harness.families import reconstruction
    return [("reconstruction", reconstruction.run), ("embedding", embedding.run),
            ("application", application.run), ("quantification", quantification.run)]


FAMILY_NAMES = ("reconstruction", "embedding", "application", "quantification")
