"""``mrsbench compare``: two results (files, folders or leaderboard JSON files), metric by metric."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mrsbench.core.errors import InputError
from mrsbench.boards.leaderboard import _arrow, _looks_like_results, better, dedupe_seeds, direction_of, load_results, read_json

CONTEXT = ("dataset", "dataset_hash", "preset_name", "harness_version")


def _sides(path, model: str | None) -> dict[str, tuple[str, dict, dict, list]]:
    """{model: (label, metric means over seeds, context, results documents)} of a results file, a results
    folder or a leaderboard JSON file (no documents). A folder gives one entry per model (never an average
    over models)."""
    p = Path(path)
    if p.is_file():
        doc = read_json(p, "results or leaderboard JSON file")
        if isinstance(doc, dict) and "rows" in doc and "columns" in doc:  # leaderboard json
            ctx = {"dataset": doc.get("dataset"), "dataset_hash": doc.get("dataset_hash"),
                   "preset_name": doc.get("preset"), "harness_version": doc.get("harness_version")}
            return {r["model"]: (f"{r['model']} ({p.name})", {c["metric"]: (r.get(c["metric"]) or {}).get("mean")
                                                            for c in doc["columns"]}, ctx, [])
                    for r in doc["rows"] if model is None or r["model"] == model}
        if not _looks_like_results(doc):
            raise InputError(p, "neither a results file nor a leaderboard JSON")
        docs = load_results([p])
    else:
        docs = load_results([p])
        if not docs:
            raise InputError(p, "no results files in this folder")
    out = {}
    for m in sorted({d["model"] for d in docs}):
        if model is not None and m != model:
            continue
        ds, _ = dedupe_seeds([d for d in docs if d["model"] == m])
        ctxs = {tuple(d[k] for k in CONTEXT) for d in ds}
        if len(ctxs) > 1:
            raise InputError(p, f"results of {m} mix datasets, presets or harness versions: {sorted(ctxs)}")
        keys = sorted({k for d in ds for k in d["metrics"]})
        means = {}
        for k in keys:
            vals = [d["metrics"].get(k) for d in ds if d["metrics"].get(k) is not None]
            means[k] = float(np.mean(vals)) if vals else None
        seeds = sorted(d["seed"] for d in ds)
        label = f"{m} seed {seeds[0]}" if len(ds) == 1 else f"{m} (mean of seeds {', '.join(map(str, seeds))})"
        out[m] = (label, means, dict(zip(CONTEXT, next(iter(ctxs)))), ds)
    return out


def model_independent(metric: str) -> bool:
    """A metric every model gets the same value of under one dataset, preset and seed: the real short scans alone
    (``.subset``), the full scan, the subset-alone curve (application.curve.*)."""
    parts = metric.split(".")
    return "curve" in parts or any(p in ("subset", "full") for p in parts[1:]) or metric.endswith(
        (".subset", ".full"))


def winner(metric: str, x, y) -> int:
    """-1 when A is better, 1 when B is, 0 when tied: equal within the cross-machine reproduce tolerance of
    :data:`mrsbench.boards.submit.REPRODUCE_TOLERANCE` (round-off is not a win), a model-independent metric, or a
    metric without a direction."""
    from mrsbench.boards.submit import metric_tolerance
    if x is None or y is None or model_independent(metric):
        return 0
    rtol, atol = metric_tolerance(metric)
    if abs(x - y) <= atol + rtol * max(abs(x), abs(y)):
        return 0
    return better(x, y, direction_of(metric))


def _table(la, ma, lb_, mb, tests=None) -> str:
    from tabulate import tabulate
    tests = tests or {}
    rows = []
    wins = [0, 0]
    for k in sorted(set(ma) | set(mb)):
        x, y = ma.get(k), mb.get(k)
        d = direction_of(k)
        w = winner(k, x, y)
        if w:
            wins[0 if w < 0 else 1] += 1
        t = tests.get(k)
        rows.append([k, "n/a" if x is None else f"{x:.4g}", "n/a" if y is None else f"{y:.4g}",
                     "" if x is None or y is None else f"{y - x:+.4g}", _arrow(d) if d is not None else "?",
                     {-1: "A", 1: "B", 0: "="}[w],
                     "" if t is None else f"{t['p_holm']:.2g}" + (" *" if t["significant"] else "")])
    head = (f"A = {la}\nB = {lb_}\nbetter on {wins[0]} metrics: A; on {wins[1]}: B (differences beyond the "
            f"reproduce tolerance, metrics that depend on the model; '=' otherwise)\n")
    if tests:
        sig = sum(t["significant"] for t in tests.values())
        head += (f"significant (*): {sig} of {len(tests)} headline metrics (paired permutation test over the test "
                 f"subjects both were scored on, Holm-corrected over the {len(tests)} metrics, alpha 0.05)\n")
    head += "\n"
    return head + tabulate(rows, headers=["metric", "A", "B", "B − A", "better", "winner", "p (Holm)"],
                           tablefmt="github", disable_numparse=True) + "\n"


def compare(a, b, model: str | None = None, allow_incompatible: bool = False, as_json: bool = False) -> str:
    """Metric-by-metric comparison of A and B (files, folders or leaderboard JSON files).

    Folders are compared model by model (the models both hold; or the single model of each side).
    Results from different datasets, dataset identities, presets or harness versions are refused
    (``allow_incompatible`` compares them anyway, under a warning)."""
    sa, sb = _sides(a, model), _sides(b, model)
    if not sa or not sb:
        raise InputError(a if not sa else b, f"no results{f' of model {model}' if model else ''}")
    common = sorted(set(sa) & set(sb))
    if common:
        pairs = [(sa[m], sb[m]) for m in common]
    elif len(sa) == 1 and len(sb) == 1:
        pairs = [(next(iter(sa.values())), next(iter(sb.values())))]
    else:
        raise InputError("compare", f"A holds models {sorted(sa)}, B holds {sorted(sb)}: no model in common; "
                         "pick one side's model with --model or compare single files")
    if any(x[0] == y[0] for x, y in pairs):   # the same model and seed on both sides: say which file is which
        pairs = [((f"{x[0]} ({a})",) + tuple(x[1:]), (f"{y[0]} ({b})",) + tuple(y[1:])) if x[0] == y[0] else (x, y)
                 for x, y in pairs]
    out, docs = [], []
    from mrsbench.boards.leaderboard import columns_for
    from mrsbench.harness.statistics import paired_comparison
    for (la, ma, ca, da), (lb_, mb, cb, db) in pairs:
        diff = [f"{k} {ca[k]!r} vs {cb[k]!r}" for k in CONTEXT if ca[k] != cb[k]]
        warn = ""
        if diff:
            if not allow_incompatible:
                raise InputError("compare", f"{la} and {lb_} are not comparable ({'; '.join(diff)}); "
                                 "pass --allow-incompatible to compare anyway")
            warn = f"WARNING: not comparable ({'; '.join(diff)}): differences may not be due to the models\n"
        tests = paired_comparison(da, db, columns_for(da[0].get("preset"))) if da and db and not diff else {}
        out.append(warn + _table(la, ma, lb_, mb, tests))
        docs.append({"a": la, "b": lb_, "warning": warn.strip() or None, "metrics": [
            {"metric": k, "a": ma.get(k), "b": mb.get(k), "better": (lambda d: None if d is None else _arrow(d))(direction_of(k)),
             "winner": {-1: "a", 1: "b", 0: None}[winner(k, ma.get(k), mb.get(k))],
             "test": tests.get(k)}
            for k in sorted(set(ma) | set(mb))]})
    if as_json:
        import json
        return json.dumps(docs, indent=1) + "\n"
    return "\n".join(out)
