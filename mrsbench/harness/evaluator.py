"""The fixed, versioned evaluation harness behind ``mrsbench run``.

Stages (each timed, each with a progress bar): data and split -> shared (model-independent work,
cached) -> fit -> reconstruction -> embedding -> application -> quantification -> write results
(+ figures, MLflow). Every score is computed on held-out test subjects; generators see only training
and validation subjects. A capability a generator lacks is recorded as not applicable (null), never as
zero. The metric families are in :mod:`mrsbench.harness.families`, the shared work in :mod:`mrsbench.harness.cell_work`,
the writing in :mod:`mrsbench.harness.outputs`.
"""
from __future__ import annotations

import re
import platform
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np

from mrsbench.core.version import __version__
from mrsbench.core.errors import InputError
from mrsbench.generators.contract import generator_call  # noqa: F401  (re-exported)
from mrsbench.harness.families.quantification import QUANT  # noqa: F401  (re-exported)
from mrsbench.harness.outputs import HEADLINE, results_checksum, summary_table, write_run  # noqa: F401  (re-exported)
from mrsbench.harness.protocol import HARNESS_VERSION, PRESETS, SCHEMA, Preset, get_preset  # noqa: F401  (re-exported)

__all__ = ["run", "HARNESS_VERSION", "SCHEMA", "PRESETS", "Preset", "get_preset", "QUANT", "HEADLINE",
           "results_checksum", "summary_table", "write_run", "STAGES"]


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or None
    except Exception:
        return None


def _file_sha256(path: str) -> str | None:
    import hashlib
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


def _versions() -> dict:
    import importlib.metadata as md
    out = {"python": platform.python_version(), "mrsbench": __version__}
    for p in ("numpy", "scipy", "torch", "scikit-learn", "umap-learn", "mlflow", "nifti-mrs"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = None
    return out


# "shared": the model-independent work of the cell (computed once per dataset, split, protocol and seed, then
# reused from the cache; see mrsbench.harness.cell_work)
STAGES = ("data", "shared", "fit", "reconstruction", "embedding", "application", "quantification")


class _Stage:
    """Times a stage into ``timings`` and advances the overall stage progress bar."""

    bar = None

    def __init__(self, timings: dict, name: str):
        self.timings, self.name = timings, name

    def __enter__(self):
        self.t0 = time.perf_counter()
        if _Stage.bar is not None:
            _Stage.bar.set_description(f"mrsbench run: {self.name}")
        return self

    def __exit__(self, *exc):
        self.timings[self.name] = round(time.perf_counter() - self.t0, 3)
        if _Stage.bar is not None and exc[0] is None:
            _Stage.bar.update(1)


def _model_card(gen, timings: dict, sampled) -> dict:
    """What a board shows about a generator: description, parameter count (torch modules, numpy arrays
    ending in ``_``), training time, sampling speed, device, and a licence/link when the class gives them."""
    n_par = None
    f = getattr(gen, "n_parameters", None)
    if callable(f):
        n_par = int(f())
    else:
        try:
            import sys
            if "torch" in sys.modules:
                import torch
                mods = [v for v in vars(gen).values() if isinstance(v, torch.nn.Module)]
                if mods:
                    n_par = int(sum(p.numel() for m in mods for p in m.parameters()))
        except Exception:
            n_par = None
        if n_par is None:
            arrs = [v for k, v in vars(gen).items() if k.endswith("_") and isinstance(v, np.ndarray)]
            n_par = int(sum(a.size for a in arrs)) if arrs else None
    dev = getattr(gen, "device", None)
    if callable(getattr(gen, "_device", None)):
        try:
            dev = gen._device()
        except Exception:
            pass
    return {"description": getattr(gen, "description", "") or "", "parameters": n_par,
            "training_s": timings.get("fit"), "device": str(dev or "cpu"),
            "sampling_transients_per_s": round(sampled[0] / sampled[1], 1) if sampled[1] > 0 else None,
            "licence": getattr(gen, "licence", None), "link": getattr(gen, "link", None)}


# --- the harness --------------------------------------------------------------------------

def generator_kwargs(cls, name: str, pr: Preset, progress: bool) -> dict:
    """The ``__init__`` arguments the harness makes a registered generator with: the preset's for it, and
    ``progress`` where the class takes it (its own training bars follow the run's)."""
    import inspect
    kwargs = dict(pr.generator_kwargs.get(name, {}))
    if "progress" in inspect.signature(cls.__init__).parameters:
        kwargs.setdefault("progress", progress)
    return kwargs


def run(model: str, dataset: str = "simgaba-small", preset: str = "quick", seed: int = 0, out: str | Path = "runs",
        plugins=None, progress: bool = True, track: bool = True, generator=None,
        edit_order: str | None = None, basis: str | None = None, shared=None,
        shared_cache: bool = True, figures: dict | None = None,
        generator_settings: dict | None = None) -> tuple[dict, Path | None]:
    """Train and score a generator. Returns (results dict, run folder). ``edit_order`` ("ON,OFF" or
    "OFF,ON"): for real data interleaving the conditions on DIM_DYN without saying which comes first.
    ``basis``: simulate the named dataset from this user basis folder (:func:`~mrsbench.data.datasets.load_dataset`).
    ``shared``: the cell's :class:`~mrsbench.harness.cell_work.SharedWork` when already computed (a sweep passes it);
    otherwise it is read from the cache or computed (and cached unless ``shared_cache`` is False).
    ``out=None``: nothing is written (no files, no MLflow); the run folder returned is None and ``figures``, when a
    dict is given, receives the figure functions (file name -> callable(results) -> matplotlib Figure).
    ``model`` may carry settings (``vae[strategy=interpolation]``, :mod:`mrsbench.generators.settings`);
    ``generator_settings``: more of them (``--set``), checked against the generator's declared settings; the model
    name recorded is the canonical one. With ``generator`` given: the settings it was made with, recorded as they are."""
    from mrsbench.core.parallel import openmp_defaults
    openmp_defaults()   # before the checks, the generator or the fits import torch
    from mrsbench.harness.checks import check_dataset_name, check_model, check_output_folder, check_seeds
    # every argument checked before any work (one line naming the argument)
    pr = get_preset(preset)
    seed = check_seeds([seed])[0]
    if out is not None:
        check_output_folder(out, "--out")
    if basis is None:
        check_dataset_name(dataset)
    base, settings = model, dict(generator_settings or {})
    if generator is None:   # a registered name, perhaps with settings: vae[strategy=interpolation] and/or --set
        from mrsbench.generators.settings import label, normalise, split_label
        base, from_name = split_label(model)
        check_model(base, plugins)
        if from_name or settings:
            from mrsbench.generators import registry
            cls = registry.get(base)
            settings = normalise(cls, base, {**from_name, **settings}, generator_kwargs(cls, base, pr, progress))
        model = label(base, settings)
    timings: dict = {}
    from mrsbench.core.clock import take
    t_start = take() or time.perf_counter()   # from the command line's start when run from it
    from mrsbench.core.files import reap_stale
    reaped = reap_stale(out) if out is not None else []   # what a killed run (SIGKILL) left in this folder
    if reaped:
        import sys
        print(f"mrsbench run: removed {len(reaped)} leftover(s) of a killed run in {out}: "
              + ", ".join(p.name for p in reaped[:3]), file=sys.stderr)
    run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{re.sub(r'[^A-Za-z0-9_.=+-]', '_', model)}-{uuid.uuid4().hex[:6]}"
    run_dir = Path(out) / run_id if out is not None else None
    metrics: dict = {}
    if progress:
        from tqdm import tqdm
        _Stage.bar = tqdm(total=len(STAGES), desc="mrsbench run", unit="stage")
    try:
        return _run(model, dataset, pr, seed, out, plugins, progress, track, generator, timings, t_start, run_id,
                    run_dir, metrics, edit_order, basis, shared, shared_cache, figures,
                    settings, base)
    finally:
        if _Stage.bar is not None:
            _Stage.bar.close()
            _Stage.bar = None


def _run(model, dataset, pr, seed, out, plugins, progress, track, generator, timings, t_start, run_id, run_dir, metrics,
         edit_order=None, basis=None, shared=None, shared_cache=True, figure_sink=None,
         generator_settings=None, base=None):
    from mrsbench.generators import registry
    from mrsbench.harness.families import Context, family_list
    from mrsbench.generators.contract import validate_samples
    from mrsbench.core.parallel import tqdm_if
    from mrsbench.harness.cell_work import cell_data, shared_for, shared_key

    with _Stage(timings, "data"):
        cd = cell_data(dataset, pr, seed, progress, edit_order, basis)
        cohort, sp, train, val, test, truth = cd.cohort, cd.split, cd.train, cd.val, cd.test, cd.truth
    with _Stage(timings, "shared"):
        identity = cohort.meta.get("identity")
        if shared is not None and shared.key != shared_key(identity, sp.to_dict(), pr, seed, truth is not None):
            raise InputError(dataset, "the shared work passed in belongs to another dataset, split, preset or seed")
        sw = shared or shared_for(cd, pr, seed, progress, cache=shared_cache)
        sw.remember_subsets()
    with _Stage(timings, "fit"):
        if generator is None:
            registry.load_plugins(plugins)
            cls = registry.get(base)
            kwargs = generator_kwargs(cls, base, pr, progress)

            def make():
                with generator_call(model, "__init__"):
                    if generator_settings:
                        from mrsbench.generators.settings import build
                        return build(cls, model, kwargs, generator_settings)
                    return cls(**kwargs)
        elif cd.folds is not None:   # one fresh copy per fold (scikit-learn's clone), the instance itself untouched
            from mrsbench.generators.contract import clone_generator
            pristine = clone_generator(generator, model)
            make = lambda: clone_generator(pristine, model)   # noqa: E731
        else:
            make = lambda: generator   # noqa: E731
        parts = cd.folds if cd.folds is not None else [(train, val, test)]
        gens = []
        for f, (tr, va, _) in enumerate(tqdm_if(parts, "fit: folds", enabled=progress and len(parts) > 1)):
            g = make()
            with generator_call(model, "fit"):
                g.fit(tr, seed=seed, val=va)
            gens.append(g)
        fold_of = cd.fold_of()
        gen = gens[0]

    sampled = [0, 0.0]   # transients, seconds (model card)

    def gen_for(subject: str | None):
        """The generator trained without this test subject (k-fold: its fold's; None: the first fold's)."""
        return gens[fold_of.get(subject, 0)] if subject is not None else gens[0]

    def sample(n, cond, s):
        t0 = time.perf_counter()
        with generator_call(model, "sample"):
            out = gen_for(None if cond is None else cond.subject).sample(n, condition=cond, seed=s)
        sampled[0] += 2 * n
        sampled[1] += time.perf_counter() - t0
        return validate_samples(out, n, cohort.axis, model)

    def prepare(conds):
        """Announce conditioning scans to their fold generators' optional ``prepare`` (timed as sampling)."""
        t0 = time.perf_counter()
        by_gen: dict = {}
        for c in conds:
            by_gen.setdefault(fold_of.get(c.subject, 0), []).append(c)
        for f, cs in by_gen.items():
            with generator_call(model, "prepare"):
                gens[f].prepare(cs)
        sampled[1] += time.perf_counter() - t0

    ctx = Context(model, gen, sample, train, test, pr, seed, sw, progress, gen_for=gen_for, prepare=prepare)
    figures = {}
    if callable(getattr(gen, "training_figure", None)):   # a generator may draw its training curves (first fold)
        figures["training.png"] = lambda results: gen.training_figure()
    subj_stats: dict = {}
    for name, family in family_list():
        with _Stage(timings, name):
            res = family(ctx)
        metrics.update(res.metrics)
        figures.update(res.figures)
        subj_stats.update(res.subjects)
        ctx.products[name] = res.products
    timings["total"] = round(time.perf_counter() - t_start, 3)

    results = {
        "schema": SCHEMA, "run_id": run_id, "model": model, "dataset": cohort.meta.get("dataset", dataset),
        "dataset_hash": cohort.meta.get("identity"), "dataset_fingerprint": cohort.meta.get("fingerprint"),
        "preset": pr.to_dict(), "preset_name": pr.name,
        "seed": seed, "harness_version": HARNESS_VERSION, "package_versions": _versions(),
        "git_commit": _git_commit(), "split": sp.to_dict(), "wall_time_s": timings,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "metrics": {k: (None if v is None or (isinstance(v, float) and not np.isfinite(v)) else float(v))
                    for k, v in sorted(metrics.items())},
        "model_card": dict(_model_card(gen, timings, sampled), folds=len(gens)),
    }
    from mrsbench.harness.statistics import jsonable, run_intervals
    results["per_subject"] = {"subject": list(test.subjects), "site": list(test.sites),
                              "fold": [fold_of.get(s, 0) for s in test.subjects],
                              "stats": {k: jsonable(v) for k, v in sorted(subj_stats.items())}}
    results["intervals"] = run_intervals(results)
    if "harmonisation" in cohort.meta:  # real data: how it was read and put on one axis
        results["dataset_reading"] = {"layout": cohort.meta.get("layout"), "harmonisation": cohort.meta["harmonisation"],
                                      "edit_order": sorted({str(s.meta.get("edit_order")) for s in cohort.scans}),
                                      "water_references_left_out": len(cohort.meta.get("water_references", []))}
    from mrsbench.generators.registry import plugin_source
    src = plugin_source(base) if generator is None else None
    if src is not None:   # a plugin's generator: what `validate --reproduce` must import again
        results["plugin"] = {"source": src, "sha256": _file_sha256(src)}
    if cohort.meta.get("short_subjects"):   # shorter than the preset's full scan: their reference is shorter, said so
        results["short_subjects"] = cohort.meta["short_subjects"]
    if "basis" in cohort.meta:  # simulated from a user basis: which one, and what it lacked
        results["dataset_basis"] = cohort.meta["basis"]
    if generator_settings:
        results["generator_settings"] = {k: list(v) if isinstance(v, tuple) else v for k, v in generator_settings.items()}
    if figure_sink is not None:
        figure_sink.update(figures)
    if out is None:   # in memory only: the document a written run would hold, less its figures
        results["figures"] = []
        results["checksum"] = results_checksum(results)
        return results, None
    write_run(run_dir, results, figures, Path(out) if track else None)
    return results, run_dir


