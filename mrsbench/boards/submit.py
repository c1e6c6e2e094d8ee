"""Submitting a generator to a leaderboard (all seeds or nothing) and reproducing a results file."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from mrsbench.core.files import honour_umask
from mrsbench.core.errors import InputError, MRSBenchError


def load_generator_class(target: str):
    """``module:Class`` or ``path/to/file.py[:Class]`` (the file's single Generator subclass by default)."""
    import importlib
    import importlib.util
    import inspect
    import sys

    from mrsbench.generators.contract import Generator

    mod_part, _, cls_name = target.partition(":")
    if mod_part.endswith(".py"):
        p = Path(mod_part).resolve()
        if not p.is_file():
            raise InputError(mod_part, "no such file")
        spec = importlib.util.spec_from_file_location(f"mrsbench_submit_{p.stem}", p)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        try:
            spec.loader.exec_module(mod)
        except Exception as e:
            raise InputError(mod_part, f"failed to import: {type(e).__name__}: {e}") from None
    else:
        try:
            mod = importlib.import_module(mod_part)
        except Exception as e:
            raise InputError(mod_part, f"failed to import: {type(e).__name__}: {e}") from None
    if cls_name:
        if not hasattr(mod, cls_name):
            raise InputError(target, f"module has no attribute {cls_name!r}")
        return getattr(mod, cls_name)
    cands = [c for _, c in inspect.getmembers(mod, inspect.isclass) if issubclass(c, Generator) and c is not Generator
             and c.__module__ == mod.__name__]
    if len(cands) != 1:
        raise InputError(target, f"found {len(cands)} Generator subclasses; name one as FILE.py:Class")
    return cands[0]


def _model_name(cls, name: str | None) -> str:
    model = name or getattr(cls, "name", None)
    if not model or model == "generator":
        model = cls.__name__.lower()
    return model


def board_folder(root: str | Path, dataset: str, preset: str) -> Path:
    """Where results of (dataset, preset) go: ROOT/<dataset>/<preset>/, or ROOT itself when it is that board's
    folder (named <dataset>/<preset>, or holding a leaderboard.json of that dataset and preset). A board folder of
    another dataset or preset is a one-line error."""
    root = Path(root)
    if root.name == preset and root.parent.name == Path(str(dataset)).name:
        return root
    lbj = root / "leaderboard.json"
    if lbj.is_file():
        try:
            lb = json.loads(lbj.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            lb = None
        if isinstance(lb, dict) and "preset" in lb:
            if (lb.get("dataset"), lb.get("preset")) != (dataset, preset):
                raise InputError(root, f"is the board of {lb.get('dataset')}/{lb.get('preset')}, not {dataset}/{preset}: "
                                       "give the results root (ROOT/<dataset>/<preset>/ is used) or that board's folder")
            return root
    return root / Path(str(dataset)).name / preset


def submit(target: str, dataset: str = "simgaba-small", preset: str = "quick", root: str | Path = "leaderboards",
           progress: bool = True, name: str | None = None, seeds=None,
           settings: dict | None = None) -> tuple[list[Path], Path]:
    """Check a generator class, run the harness with every one of the preset's fixed seeds and, only
    when all succeed, write the results (with provenance) and figures into ROOT/<dataset>/<preset>/
    and regenerate the leaderboard there (``root`` may also be that board's folder). ``seeds``: other seeds than
    the preset's. A failing seed leaves that folder exactly as it was and is reported as one line naming the
    generator and the seed. A seed submitted again replaces the earlier result of that seed (one result per model
    and seed). A k-fold preset trains one copy of the generator per fold (:func:`mrsbench.generators.contract.clone_generator`)."""
    from mrsbench.generators.contract import check_generator_class
    from mrsbench.harness.evaluator import get_preset, results_checksum, run
    from mrsbench.boards.leaderboard import build, load_results, write_leaderboard

    cls = load_generator_class(target)
    problems = check_generator_class(cls)
    if problems:
        raise InputError(target, "does not satisfy the generator interface: " + "; ".join(problems))
    model = _model_name(cls, name)
    from mrsbench.generators.settings import build as make_generator, label, normalise
    settings = normalise(cls, model, settings or {})   # checked against the class's __init__ (one line each)
    model = label(model, settings)
    pr = get_preset(preset)
    dest = board_folder(root, dataset, preset)
    from mrsbench.harness.checks import check_output_folder, check_seeds
    check_output_folder(dest, "--root")
    seeds = check_seeds(pr.seeds if seeds is None else seeds)
    from mrsbench.core.files import reap_stale
    reap_stale(dest)   # staging a killed submit left (SIGKILL)
    with tempfile.TemporaryDirectory() as tmp:
        staged = []
        for seed in seeds:
            try:
                results, run_dir = run(model, dataset=dataset, preset=preset, seed=seed, out=tmp, progress=progress,
                                       track=False, generator=make_generator(cls, model, {}, settings),
                                       generator_settings=settings)
            except MRSBenchError as e:
                raise InputError(f"generator {model!r}", f"seed {seed} failed, nothing was written to {dest}: {e}") from None
            results["submission"] = {"target": target, "class": f"{cls.__module__}.{cls.__qualname__}"}
            results["checksum"] = results_checksum(results)
            staged.append((seed, results, run_dir))
        # the board must build with the new results before anything in dest changes
        existing = load_results([dest]) if dest.is_dir() else []
        new_docs = [dict(r, _source=str(dest / f"{model}-seed{s}.json")) for s, r, _ in staged]
        build([d for d in existing if d["_source"] not in {n["_source"] for n in new_docs}] + new_docs)
        written = _publish(dest, model, staged)
    return written, write_leaderboard(dest)


def _publish(dest: Path, model: str, staged) -> list[Path]:
    """Stage every file in a hidden folder inside dest, then move them in (one rename each, after all
    are complete). The staging folder is removed whatever happens."""
    dest.mkdir(parents=True, exist_ok=True)
    from mrsbench.core.files import owner_tag
    stage = Path(tempfile.mkdtemp(dir=dest, prefix=f".tmp-{owner_tag()}-submit-"))
    try:
        moves = []
        for seed, results, run_dir in staged:
            f = stage / f"{model}-seed{seed}.json"
            f.write_text(json.dumps(results, indent=1, sort_keys=True))
            moves.append((f, dest / f.name))
            for fig in results.get("figures", []):
                g = stage / f"{model}-seed{seed}-{fig}"
                shutil.copyfile(run_dir / fig, g)
                moves.append((g, dest / "figures" / g.name))
        for f, _ in moves:
            honour_umask(f)
        if any(d.parent.name == "figures" for _, d in moves):
            (dest / "figures").mkdir(exist_ok=True)
        for f, d in moves:
            os.replace(f, d)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [d for _, d in moves if d.suffix == ".json"]


# --- reproduce ------------------------------------------------------------------------------

# Cross-machine tolerance of `validate --reproduce`, per metric (rtol, atol): a metric passes when
# |a - b| <= atol + rtol * max(|a|, |b|). Measured: the committed pca quick results (made on another
# machine) against a fresh run here differ by median 1e-6 relative, at most 7e-3 on the UMAP KDE
# overlap and 5e-3 of a percentage point on the quantification bias/MAPE; 1 vs 2 threads: see README.
REPRODUCE_TOLERANCE = (
    ("embedding.umap_kde_overlap", 0.0, 0.05),      # UMAP's stochastic layout amplifies round-off
    ("embedding.", 0.02, 0.01),                     # counts over k-NN balls, a classifier AUC
    ("quantification.", 0.01, 0.1),                 # percent (bias, MAPE) and r; iterative fits
    ("application.", 0.005, 1e-4),
    ("reconstruction.", 0.005, 1e-6),
    ("", 0.005, 1e-6),
)


def metric_tolerance(key: str) -> tuple[float, float]:
    for prefix, rtol, atol in REPRODUCE_TOLERANCE:
        if key.startswith(prefix):
            return rtol, atol
    raise AssertionError("unreachable")  # pragma: no cover  ("" matches everything)


def compare_metrics(a: dict, b: dict) -> list[tuple[str, float | None, float | None, bool]]:
    """(metric, recorded, reproduced, within tolerance) for every metric of either document."""
    rows = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if x is None or y is None:
            ok = x is None and y is None
        else:
            rtol, atol = metric_tolerance(k)
            ok = bool(abs(x - y) <= atol + rtol * max(abs(x), abs(y)))
        rows.append((k, x, y, ok))
    return rows


def reproduce(path: str | Path, plugins=None, progress: bool = True) -> tuple[dict, list]:
    """Re-run the model, dataset, preset and seed of a results file and compare every metric within
    :data:`REPRODUCE_TOLERANCE`. A submitted generator is loaded from its recorded target (relative
    paths are tried from the current folder, then from the results file's folder). Returns
    (the new results, comparison rows)."""
    from mrsbench.harness.evaluator import run
    from mrsbench.boards.leaderboard import read_json, validate_results

    path = Path(path)
    doc = read_json(path, "results file")
    if not isinstance(doc, dict):
        raise InputError(path, "not a results document")
    probs = validate_results(doc, str(path), check_dataset=True)
    if probs:
        raise InputError(path, "invalid, not reproduced: " + "; ".join(probs))
    gen = None
    sub = doc.get("submission")
    if isinstance(sub, dict) and sub.get("target"):
        target = sub["target"]
        mod, _, cls_name = target.partition(":")
        if mod.endswith(".py") and not Path(mod).is_file() and (path.parent / Path(mod).name).is_file():
            target = str(path.parent / Path(mod).name) + (f":{cls_name}" if cls_name else "")
        cls = load_generator_class(target)
        from mrsbench.generators.settings import build, normalise
        gen = build(cls, doc["model"], {}, normalise(cls, doc["model"], doc.get("generator_settings") or {}))
    plug = doc.get("plugin")
    if not plugins and gen is None and isinstance(plug, dict) and plug.get("source"):
        src = str(plug["source"])   # a plugin's generator (run/sweep --plugins): the recorded plugin, else beside the file
        if src.endswith(".py") and not Path(src).is_file() and (path.parent / Path(src).name).is_file():
            src = str(path.parent / Path(src).name)
        plugins = [src]
    with tempfile.TemporaryDirectory() as tmp:
        new, _ = run(doc["model"], dataset=doc["dataset"], preset=doc["preset_name"], seed=doc["seed"], out=tmp,
                     plugins=plugins, progress=progress, track=False, generator=gen)
    if new["dataset_hash"] != doc["dataset_hash"]:
        raise InputError(path, f"dataset identity changed: {doc['dataset_hash']} vs {new['dataset_hash']}")
    return new, compare_metrics(doc["metrics"], new["metrics"])


def reproduce_report(rows, only_failures: bool = False) -> str:
    from tabulate import tabulate
    fmt = lambda v: "null" if v is None else f"{v:.6g}"
    table = [(k, fmt(x), fmt(y), "" if x is None or y is None else f"{abs(x - y):.2g}",
              "ok" if ok else "DIFFERS") for k, x, y, ok in rows if ok is False or not only_failures]
    return tabulate(table, headers=["metric", "recorded", "reproduced", "|diff|", ""], tablefmt="github",
                    disable_numparse=True)

