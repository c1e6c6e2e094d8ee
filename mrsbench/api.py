"""The Python API: run the harness on a generator (a registered name or an instance from your own code), read
results files and boards, list generators, load datasets. Everything returns Python objects; tables come as
tidy pandas DataFrames. Nothing is written unless ``out`` is given, and nothing is logged to MLflow unless
``track=True``.

    >>> import mrsbench
    >>> res = mrsbench.evaluate("pca", preset="tiny")          # doctest: +SKIP
    >>> res.metrics["application.n20.gain"]                   # doctest: +SKIP
    >>> res.to_frame()                                        # doctest: +SKIP
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mrsbench.core.errors import InputError

__all__ = ["evaluate", "load_results", "load_board", "list_generators", "load_dataset", "Results", "Board"]


def _family(metric: str) -> str:
    return metric.split(".", 1)[0]


@dataclass
class Results:
    """One results document (what ``results.json`` holds) with accessors.

    ``data`` is the document itself (``to_json`` writes it back exactly as ``mrsbench run`` writes it);
    ``path`` the file it was read from (None in memory)."""

    data: dict
    path: Path | None = None
    figures: dict = field(default_factory=dict, repr=False)   # in memory: file name -> callable(results) -> Figure

    model = property(lambda self: self.data["model"], doc="The generator's name (with its settings, if any).")
    dataset = property(lambda self: self.data["dataset"])
    preset = property(lambda self: self.data["preset_name"])
    seed = property(lambda self: self.data["seed"])
    harness_version = property(lambda self: self.data["harness_version"])

    @property
    def metrics(self) -> dict:
        """Metric name -> value (None: not applicable to this generator, e.g. reconstruction without an encoder)."""
        return self.data["metrics"]

    @property
    def intervals(self) -> dict:
        """Headline metric -> [low, high], the 95% bootstrap interval over test subjects."""
        return self.data.get("intervals", {})

    @property
    def per_subject(self) -> dict:
        """``subject``, ``site``, ``fold`` lists and ``stats``: per-subject pieces of the headline metrics."""
        return self.data.get("per_subject", {})

    @property
    def summary(self) -> str:
        """The run summary ``mrsbench run`` prints (headline utilities, harm to quantification, flags)."""
        from mrsbench.harness.outputs import run_summary
        return run_summary(self.data, self.path.parent if self.path is not None else None)

    def table(self) -> str:
        """The per-family summary table ``mrsbench run`` prints."""
        from mrsbench.harness.outputs import summary_table
        return summary_table(self.data)

    def figure(self, name: str):
        """Draw one of the run's figures (in memory: from the run's figure functions; e.g. ``"umap.png"``)."""
        if name not in self.figures:
            raise InputError(self.model, f"no figure {name!r} in memory; have: {', '.join(sorted(self.figures)) or 'none'}")
        return self.figures[name](self.data)

    def problems(self) -> list[str]:
        """What ``mrsbench validate`` finds wrong with the document (empty: valid)."""
        from mrsbench.boards.leaderboard import validate_results
        return validate_results(self.data, str(self.path or self.model))

    # --- tables and files -------------------------------------------------------------------
    def to_frame(self, kind: str = "metrics"):
        """A tidy DataFrame. ``kind="metrics"``: one row per metric (model, dataset, preset, seed, family, metric,
        value, ci_low, ci_high). ``kind="subjects"``: one row per test subject, per-subject statistic and entry of
        that statistic (its grid position: short-scan size or subset; 0 for a single value)."""
        import pandas as pd
        ident = {"model": self.model, "dataset": self.dataset, "preset": self.preset, "seed": self.seed}
        if kind == "metrics":
            rows = []
            for k, v in self.metrics.items():
                lo, hi = (self.intervals.get(k) or (None, None))
                rows.append({**ident, "family": _family(k), "metric": k, "value": v, "ci_low": lo, "ci_high": hi})
            return pd.DataFrame(rows, columns=[*ident, "family", "metric", "value", "ci_low", "ci_high"])
        if kind == "subjects":
            ps = self.per_subject
            rows = []
            for stat, per in ps.get("stats", {}).items():
                for i, subject in enumerate(ps.get("subject", [])):
                    vals = per[i] if isinstance(per[i], list) else [per[i]]
                    for j, v in enumerate(vals):
                        rows.append({**ident, "subject": subject, "site": ps["site"][i], "fold": ps["fold"][i],
                                     "family": _family(stat), "statistic": stat, "index": j, "value": v})
            return pd.DataFrame(rows, columns=[*ident, "subject", "site", "fold", "family", "statistic", "index",
                                               "value"])
        raise InputError("to_frame", f"kind must be 'metrics' or 'subjects', not {kind!r}")

    def to_json(self) -> str:
        """The document as ``mrsbench run`` writes it (a file read with :func:`load_results` comes back byte for
        byte)."""
        return json.dumps(self.data, indent=1, sort_keys=True)

    def save(self, path: str | Path) -> Path:
        """Write the document to ``path`` (a ``.json`` file), atomically."""
        from mrsbench.core.files import atomic_path
        path = Path(path)
        with atomic_path(path, ".json") as t:
            Path(t).write_text(self.to_json())
        return path


@dataclass
class Board:
    """A leaderboard (``leaderboard.json`` of a board folder): rows with intervals and ranks per question, the
    paired tests, the reference brackets and the verdict sentence."""

    data: dict
    path: Path | None = None

    verdict = property(lambda self: self.data.get("verdict", ""), doc="The board's verdict sentence.")
    dataset = property(lambda self: self.data["dataset"])
    preset = property(lambda self: self.data["preset"])

    @property
    def models(self) -> list[str]:
        return [r["model"] for r in self.data["rows"]]

    @property
    def questions(self) -> dict:
        return self.data.get("questions", {})

    def to_frame(self, wide: bool = False):
        """A tidy DataFrame: one row per model and headline column (model, role, position, question, metric,
        label, direction, mean, sd, n seeds, ci_low, ci_high, rank in the column, the question's rank).
        ``wide=True``: one row per model, a column per metric's mean (the board's table)."""
        import pandas as pd
        rows = []
        for r in self.data["rows"]:
            for c in self.data["columns"]:
                cell = r.get(c["metric"]) or {}
                lo, hi = cell.get("ci") or (None, None)
                rows.append({"model": r["model"], "role": r.get("role"), "position": r.get("position"),
                             "question": c["family"], "metric": c["metric"], "label": c["label"],
                             "direction": c["direction"], "mean": cell.get("mean"), "sd": cell.get("sd"),
                             "n": cell.get("n"), "ci_low": lo, "ci_high": hi,
                             "rank": (r.get("ranks") or {}).get(c["metric"]),
                             "question_rank": (r.get("question_ranks") or {}).get(c["family"])})
        df = pd.DataFrame(rows, columns=["model", "role", "position", "question", "metric", "label", "direction",
                                         "mean", "sd", "n", "ci_low", "ci_high", "rank", "question_rank"])
        if wide:
            return df.pivot(index="model", columns="metric", values="mean").reindex(self.models)
        return df

    def to_json(self) -> str:
        """The board as ``leaderboard.json`` holds it (a file read with :func:`load_board` comes back byte for
        byte)."""
        from mrsbench.boards.render import render
        return render(self.data, "json")


# --- functions --------------------------------------------------------------------------------

def evaluate(generator, dataset: str = "simgaba-small", preset: str = "quick", seed: int = 0,
             settings: dict | None = None, out: str | Path | None = None, track: bool = False, plugins=None,
             progress: bool = True) -> Results:
    """Run the harness on one generator and return its :class:`Results`.

    ``generator``: a registered name (``"pca"``; plugins given with ``plugins``) or an instance of a class with
    ``fit`` and ``sample`` (the generator contract, :mod:`mrsbench.generators`), unfitted: on a k-fold preset
    (quick) it is copied once per fold (``type(g)(**g.get_params())`` when it has ``get_params``, else a deep
    copy) and the instance itself is left untouched. ``settings``: ``__init__`` arguments of a registered
    generator, its declared settings (``mrsbench list --model NAME``; recorded in the results as ``generator_settings``
    and in the model name, ``pca[n_components=8]``; a value equal to the default is dropped).
    ``out``: a folder to write the run into (results.json and figures, as ``mrsbench run --out``); None writes
    nothing. ``track``: also log to MLflow (needs ``out``)."""
    from mrsbench.core.parallel import openmp_defaults
    from mrsbench.generators.contract import check_generator_class
    from mrsbench.harness.evaluator import run
    openmp_defaults()   # before anything imports torch (see its docstring); import mrsbench sets nothing
    if track and out is None:
        raise InputError("track", "MLflow tracking needs an output folder: give out=...")
    if isinstance(generator, str):   # the harness checks the settings against the generator's declared ones
        name, instance = generator, None
    else:
        if settings:
            raise InputError("settings", "settings apply to a registered generator's name; set them on the instance")
        if isinstance(generator, type):
            raise InputError(generator.__name__, "pass an instance (e.g. MyGenerator()), not the class")
        name = str(getattr(generator, "name", "") or "")
        if name in ("", "generator"):   # the contract's default name: the class's name says more
            name = type(generator).__name__
        problems = check_generator_class(type(generator))
        if problems:
            raise InputError(name, "not a generator: " + "; ".join(problems))
        instance = generator
    figures: dict = {}
    results, run_dir = run(name, dataset=dataset, preset=preset, seed=seed, out=out, plugins=plugins,
                           progress=progress, track=track, generator=instance, figures=figures,
                           generator_settings=dict(settings) if settings else None)
    return Results(results, run_dir / "results.json" if run_dir is not None else None, figures)


def load_results(path: str | Path) -> Results:
    """A results file (``results.json`` of a run, or a board's ``<model>-seed<seed>.json``)."""
    from mrsbench.boards.leaderboard import read_json, structure_problems
    path = Path(path)
    doc = read_json(path, "results file")
    probs = structure_problems(doc) if isinstance(doc, dict) else ["not a JSON object"]
    if probs:
        raise InputError(path, "not a results file: " + "; ".join(probs[:3]))
    return Results(doc, path)


def load_board(path: str | Path) -> Board:
    """A board: a folder holding ``leaderboard.json`` (as ``mrsbench submit``/``sweep --leaderboard`` write) or
    that file itself."""
    from mrsbench.boards.leaderboard import read_json
    path = Path(path)
    f = path / "leaderboard.json" if path.is_dir() else path
    if not f.is_file():
        raise InputError(path, "no leaderboard.json here (make one with mrsbench leaderboard or sweep --leaderboard)")
    doc = read_json(f, "leaderboard file")
    if not (isinstance(doc, dict) and "rows" in doc and "columns" in doc):
        raise InputError(f, "not a leaderboard file (no rows and columns)")
    return Board(doc, f)


def list_generators(plugins=None):
    """The registered generators (built-in baselines, installed entry points and ``plugins``) as a DataFrame
    with ``name`` and ``description``."""
    import pandas as pd
    from mrsbench.generators.registry import list_generators as _list
    return pd.DataFrame(_list(plugins), columns=["name", "description"])


def load_dataset(name_or_path: str | Path, seed: int | None = None, progress: bool = False):
    """A dataset as a :class:`~mrsbench.Cohort`: a registered name (``simgaba-small``, ``simgaba``: simulated
    and cached on first use) or a path (a NIfTI-MRS folder or BIDS tree, a challenge HDF5 file)."""
    from mrsbench.data.datasets import load_dataset as _load
    return _load(name_or_path, seed=seed, progress=progress)
