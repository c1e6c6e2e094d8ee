"""Leaderboards and validation of results files (comparison: boards.compare; submission: boards.submit)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mrsbench.core.files import atomic_path, result_files
from mrsbench.core.errors import InputError
from mrsbench.harness.evaluator import HARNESS_VERSION, SCHEMA, results_checksum
from mrsbench.metrics.copied import FLAG_THRESHOLD as COPIED_FLAG

# Headline columns, grouped by family: (metric key, short label, direction, family). Direction: "higher",
# "lower", or a target value the metric should be close to. "{n}" is the preset's middle short-scan size
# (n_values[(len - 1) // 2]: 20 for quick and paper). SNR is never a headline column (nor ranked anywhere):
# noise-free synthetic transients inflate it; snr_inflation (-> 1) and the noise ratio (-> 1) judge it instead.
COLUMN_SPECS = [
    ("application.n{n}.effective_n", "eff. n (n={n})", "higher", "utility"),
    ("application.n{n}.gain", "gain n={n}", "higher", "utility"),
    ("application.n{n}.effective_n_gaba", "eff. n GABA+ (n={n})", "higher", "utility"),
    ("application.break_even_n", "break-even n", "higher", "utility"),
    ("embedding.precision", "precision", "higher", "fidelity"),
    ("embedding.recall", "recall", "higher", "fidelity"),
    ("embedding.coverage", "coverage", "higher", "fidelity"),
    ("embedding.classifier_auc", "C2ST AUC", 0.5, "fidelity"),
    ("embedding.mmd2", "MMD²", "lower", "fidelity"),
    ("application.noise_ratio", "noise ratio", 1.0, "honesty"),
    ("application.snr_inflation", "SNR inflation", 1.0, "honesty"),
    ("application.copied_noise", "copied noise", 0.0, "honesty"),
    ("quantification.gaba_cr.bias.augmented", "GABA+ bias aug %", 0.0, "honesty"),
    ("quantification.failure_rate.augmented", "failure rate aug", "lower", "honesty"),
    ("embedding.memorisation_ratio", "memorisation", 1.0, "privacy"),
    ("reconstruction.nmse_1.8-4.2ppm", "recon NMSE", "lower", "reconstruction"),
]
FAMILY_ORDER = ("utility", "fidelity", "honesty", "privacy", "reconstruction")


def middle_n(preset: dict | None) -> int:
    nv = list((preset or {}).get("n_values") or [20])
    return int(nv[(len(nv) - 1) // 2])


def columns_for(preset: dict | None) -> list[tuple]:
    """The headline columns of a board whose results have this preset (dict)."""
    n = middle_n(preset)
    return [(k.format(n=n), lab.format(n=n), d, fam) for k, lab, d, fam in COLUMN_SPECS]


COLUMNS = columns_for(None)   # for the default middle n (20); boards use columns_for(their preset)


REQUIRED_KEYS = {"schema": str, "model": str, "dataset": str, "dataset_hash": str, "preset": dict, "preset_name": str,
                 "seed": int, "harness_version": str, "package_versions": dict, "wall_time_s": dict, "metrics": dict,
                 "checksum": str}


def direction_of(metric: str):
    """How a metric is judged ("higher", "lower", a target value) or None when it is not to be ranked."""
    for k, _, d, _ in COLUMN_SPECS:
        if k.replace("n{n}", "") == metric or k == metric:
            return d
    last = metric.split(".")[-1]
    if metric.endswith(("iterations_median", "effective_n_clipped", "noise_free", "break_even_censored")):
        return None
    if last == "snr" or "curve." in metric:
        return None   # inflated by noise-free synthetic transients: judged by snr_inflation instead
    if "snr_inflation" in metric:
        return 1.0
    if metric.endswith("copied_noise"):
        return 0.0
    if last.startswith("effective_n") or last.startswith("gain") or last == "break_even_n":
        return "higher"
    if any(t in metric for t in ("mse", "mape", "nmse", "mmd2", "frechet", "linewidth", "bias", "_rate")):
        return "lower" if "bias" not in metric else 0.0
    if last in ("snr", "shape_score", "precision", "recall", "density", "coverage", "umap_kde_overlap", "r"):
        return "higher"
    if "classifier_auc" in metric:
        return 0.5
    if "memorisation" in metric or "noise_ratio" in metric:
        return 1.0
    return None


def better(a: float, b: float, direction) -> int:
    """-1 if a is better, 1 if b is better, 0 if tied or unknown."""
    if a is None or b is None or direction is None or a == b:
        return 0
    if direction == "higher":
        return -1 if a > b else 1
    if direction == "lower":
        return -1 if a < b else 1
    return -1 if abs(a - direction) < abs(b - direction) else 1


# --- loading and validation ----------------------------------------------------------------

def validate_results(doc: dict, source: str = "results", check_dataset: bool = False) -> list[str]:
    """Problems with a results document (empty list when valid)."""
    probs = structure_problems(doc)
    if probs:
        return probs
    if doc["schema"] != SCHEMA:
        probs.append(f"schema {doc['schema']!r}, expected {SCHEMA!r}")
    if doc["harness_version"] != HARNESS_VERSION:
        probs.append(f"harness version {doc['harness_version']} differs from this mrsbench's {HARNESS_VERSION}")
    if results_checksum(doc) != doc["checksum"]:
        probs.append("checksum mismatch: the file was edited after it was written")
    m = doc["metrics"]
    for fam in ("reconstruction.", "embedding.", "application.", "quantification."):
        if not any(k.startswith(fam) for k in m):
            probs.append(f"incomplete: no {fam[:-1]} metrics")
    for n in doc["preset"].get("n_values", []):
        for kind in ("subset", "augmented"):
            for key in ("snr", "shape_score", "mse"):
                if f"application.n{n}.{kind}.{key}" not in m:
                    probs.append(f"incomplete: missing application.n{n}.{kind}.{key}")
    for k, v in m.items():
        if v is not None and not (isinstance(v, (int, float)) and np.isfinite(v)):
            probs.append(f"metric {k} is not a finite number")
    from mrsbench.generators.settings import name_problems
    probs += name_problems(doc.get("model"), doc.get("generator_settings"))
    if not probs:
        probs += consistency_problems(doc)
    if check_dataset and not probs:
        probs += dataset_problems(doc)
    return probs


# A headline metric recomputed from the per-subject statistics agrees with the reported one to round-off: the
# statistics are stored with 12 significant digits (subject_stats.jsonable), and the recomputation is the same
# arithmetic as the harness's (tested in tests/test_uncertainty.py); 1e-6 relative leaves six orders of margin
# for that and catches any edit that matters on a board (the boards print 3-4 significant digits).
CONSISTENCY_RTOL, CONSISTENCY_ATOL = 1e-6, 1e-9


def consistency_problems(doc: dict) -> list[str]:
    """Headline metrics that disagree with the file's own per-subject statistics (an edited metric whose checksum
    was recomputed). Every metric that is a fixed function of the per-subject sums is recomputed with every
    subject weighted 1 (:func:`mrsbench.harness.statistics.columns_from_sums`); the pooled two-sample statistics of
    the embedding family do not split into per-subject sums and are not checked this way."""
    from mrsbench.harness.statistics import _PV_COLUMNS, doc_columns, load_stats
    m = doc["metrics"]
    try:
        stats = load_stats(doc)
    except (TypeError, ValueError) as e:
        return [f"per-subject statistics are not numeric arrays ({e})"]
    checkable = [k for k, _, _, _ in columns_for(doc.get("preset")) if k not in _PV_COLUMNS and m.get(k) is not None]
    if stats is None:
        return [f"no per-subject statistics to check {checkable[0]} against"] if checkable else []
    S = len(doc["per_subject"]["subject"])
    if any(np.shape(v)[:1] != (S,) for v in stats.values()):
        return ["per-subject statistics do not have one entry per test subject"]
    try:
        with np.errstate(all="ignore"):
            rec = doc_columns(doc, stats, np.ones((1, S)))
    except Exception as e:   # malformed pieces (wrong shapes inside): not a document the harness wrote
        return [f"per-subject statistics cannot be evaluated ({type(e).__name__}: {e})"]
    probs = []
    for k, v in rec.items():
        if k in _PV_COLUMNS or k not in m:
            continue
        r, x = float(v[0]), m[k]
        if x is None:
            if np.isfinite(r):
                probs.append(f"metric {k} is null but its per-subject statistics give {r:.6g}")
        elif not np.isfinite(r) or abs(r - x) > CONSISTENCY_ATOL + CONSISTENCY_RTOL * max(abs(r), abs(x)):
            probs.append(f"metric {k} = {x:.6g} disagrees with its per-subject statistics ({r:.6g})")
    for k in checkable:
        if k not in rec:
            probs.append(f"no per-subject statistics for {k}")
    return probs


def dataset_problems(doc: dict) -> list[str]:
    """Does the results file's dataset match the one this mrsbench generates (or reads)?

    The identity (generating configuration and code versions) must be equal; the numeric
    fingerprint must agree within :data:`~mrsbench.data.datasets.FINGERPRINT_RTOL` (last-bit float
    differences between machines pass, any real change of the data fails)."""
    from mrsbench.data.datasets import DATASETS, FINGERPRINT_RTOL, fingerprint_mismatch, load_dataset
    if doc["dataset"] not in DATASETS and not Path(doc["dataset"]).is_dir():
        return []  # a user's folder that is not here: cannot be checked
    c = load_dataset(doc["dataset"], progress=False)
    if c.meta["identity"] != doc["dataset_hash"]:
        return [f"dataset identity {doc['dataset_hash']} does not match {doc['dataset']} as generated by this "
                f"mrsbench ({c.meta['identity']}): made with another dataset configuration or simulator version"]
    fp = doc.get("dataset_fingerprint")
    if not isinstance(fp, dict):
        return ["no dataset_fingerprint (written by an older mrsbench): regenerate the results"]
    bad = fingerprint_mismatch(fp, c.meta["fingerprint"], FINGERPRINT_RTOL)
    return [f"dataset fingerprint of {doc['dataset']} differs: {bad}"] if bad else []


def _looks_like_results(doc) -> bool:
    return isinstance(doc, dict) and ("schema" in doc or {"model", "metrics"} <= set(doc)) and "rows" not in doc


def structure_problems(doc: dict) -> list[str]:
    """Missing or mistyped required fields (the part of validation a table needs)."""
    probs = []
    for k, t in REQUIRED_KEYS.items():
        if k not in doc:
            probs.append(f"missing field {k!r}")
        elif not isinstance(doc[k], t) or (t is int and isinstance(doc[k], bool)):
            probs.append(f"field {k!r} should be {t.__name__}, got {type(doc[k]).__name__}")
    if not probs and not doc["schema"].startswith("mrsbench.results"):
        probs.append(f"schema {doc['schema']!r} is not a mrsbench results schema")
    return probs


def read_json(path: str | Path, what: str = "JSON file"):
    """Parsed JSON of ``path``; a one-line InputError naming the file when it cannot be read."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "no such file")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(p, f"not a valid {what} ({e})") from None


def load_results(paths) -> list[dict]:
    """Results documents from files or folders (searched recursively for *.json results).

    JSON files that are not results (no ``schema`` and no ``model``/``metrics``) are skipped; a
    results file with missing or mistyped fields is an error naming the file."""
    docs = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise InputError(p, "no such file or folder")
        files = [p] if p.is_file() else result_files(p)
        for f in files:
            doc = read_json(f, "JSON results file")
            if not _looks_like_results(doc):
                continue
            probs = structure_problems(doc)
            if probs:
                raise InputError(f, "not a valid results file: " + "; ".join(probs))
            doc["_source"] = str(f)
            docs.append(doc)
    return docs


def dedupe_seeds(docs: list[dict]) -> tuple[list[dict], list[dict]]:
    """One result per (model, seed): the most recently created one is kept (ties: the last source
    path). Returns (kept, dropped)."""
    best: dict = {}
    for d in docs:
        k = (d["model"], d["seed"])
        if k not in best or (str(d.get("created", "")), str(d.get("_source", ""))) >= \
                (str(best[k].get("created", "")), str(best[k].get("_source", ""))):
            best[k] = d
    kept = list(best.values())
    dropped = [d for d in docs if all(d is not b for b in kept)]
    return kept, dropped


# --- tables ---------------------------------------------------------------------------------

def build(docs: list[dict], dataset: str | None = None, preset: str | None = None) -> dict:
    """Leaderboard: rows per model (mean, sd, n over seeds), ranks per headline column, mean rank.
    Only results sharing dataset hash, harness version and preset are compared; the rest are
    listed as incompatible."""
    docs = [d for d in docs if (dataset is None or d["dataset"] == dataset) and (preset is None or d["preset_name"] == preset)]
    if not docs:
        raise InputError("leaderboard", "no results match" + (f" dataset {dataset}" if dataset else "")
                         + (f" preset {preset}" if preset else ""))
    # a file that `mrsbench validate` rejects is never ranked: listed with its reason
    not_ranked, valid = [], []
    for d in docs:
        probs = validate_results(d, d.get("_source", "results"))
        if probs:
            not_ranked.append({"model": d["model"], "seed": d["seed"], "source": d.get("_source"),
                               "reason": "; ".join(probs[:3]) + (f" (+{len(probs) - 3} more)" if len(probs) > 3 else "")})
        else:
            valid.append(d)
    if not valid:
        raise InputError("leaderboard", f"none of the {len(docs)} results files is valid (e.g. "
                         f"{not_ranked[0]['source']}: {not_ranked[0]['reason']})")
    docs = valid
    key = lambda d: (d["dataset"], d["dataset_hash"], d["harness_version"], d["preset_name"])
    groups: dict = {}
    for d in docs:
        groups.setdefault(key(d), []).append(d)
    main_key = max(groups, key=lambda k: (len({d["model"] for d in groups[k]}), len(groups[k])))
    main, duplicates = dedupe_seeds(groups[main_key])
    rows = {}
    for d in main:
        rows.setdefault(d["model"], []).append(d)
    columns = columns_for(main[0].get("preset"))
    table = []
    for model, ds in rows.items():
        row = {"model": model, "seeds": sorted(d["seed"] for d in ds)}
        flags = []
        if any((d["metrics"].get("application.noise_free") or 0) > 0 for d in ds):
            flags.append("noise-free transients")
        if any((d["metrics"].get("application.snr_inflation") or 0) > 1.5 for d in ds):
            flags.append("SNR inflated")
        cn = [d["metrics"].get("application.copied_noise", np.nan) for d in ds]
        flags += ["copied noise"] if np.mean(cn) > COPIED_FLAG else []
        row["flags"] = flags
        row["card"] = next((d.get("model_card") for d in ds if d.get("model_card")), None)
        for k, _, _, _ in columns:
            vals = [d["metrics"].get(k) for d in ds]
            vals = [v for v in vals if v is not None]
            row[k] = {"mean": float(np.mean(vals)), "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                      "n": len(vals)} if vals else None
        table.append(row)
    for k, _, direc, _ in columns:
        scored = [(r[k]["mean"], i) for i, r in enumerate(table) if r[k] is not None]
        score = (lambda v: -v) if direc == "higher" else (lambda v: v) if direc == "lower" else (lambda v: abs(v - direc))
        vals = [score(v) for v, _ in scored]
        for v, i in scored:  # competition ranking by the means: ties share the best rank
            table[i].setdefault("raw_ranks", {})[k] = 1 + sum(1 for w in vals if w < score(v) - 1e-12)
    # intervals over subjects and seeds, paired tests between rows, ranks that tie where differences are not
    # significant, rank stability (mrsbench.harness.statistics)
    from mrsbench.harness.statistics import board_statistics
    from mrsbench.boards.verdict import reference_role
    main_col = f"application.n{middle_n(main[0].get('preset'))}.effective_n"
    for r in table:
        r["role"] = reference_role(r["model"], r.get("card"))
    contestants = [r["model"] for r in table if r["role"] is None]
    stats = board_statistics(rows, columns, FAMILY_ORDER, main=main_col, contestants=contestants)
    for r in table:
        r["ranks"] = {}
        for k, _, _, _ in columns:
            if r[k] is not None:
                ci = stats["ci"].get(r["model"], {}).get(k)
                r[k]["ci"] = ci
                rk = stats["ranks"].get(r["model"], {}).get(k)
                r["ranks"][k] = rk if rk is not None else r.get("raw_ranks", {}).get(k)
    # per family: the mean of its column ranks; overall: the mean over families (each family weighs the same)
    # (the same from the plain ranks of the means: the tie-break between rows whose ranks tie)
    for r in table:
        for name, src in (("", "ranks"), ("raw_", "raw_ranks")):
            fam_ranks = {}
            for fam in FAMILY_ORDER:
                rk = [r.get(src, {})[k] for k, _, _, f in columns if f == fam and k in r.get(src, {})]
                if rk:
                    fam_ranks[fam] = float(np.mean(rk))
            r[name + "family_ranks"] = fam_ranks
            r[name + "mean_rank"] = float(np.mean(list(fam_ranks.values()))) if fam_ranks else None
    rs = stats["rank_stability"]
    incompatible = [{"model": d["model"], "dataset": d["dataset"], "dataset_hash": d["dataset_hash"],
                     "harness_version": d["harness_version"], "preset": d["preset_name"], "seed": d["seed"],
                     "source": d.get("_source")} for k, g in groups.items() if k != main_key for d in g]
    lb = {"dataset": main_key[0], "dataset_hash": main_key[1], "harness_version": main_key[2], "preset": main_key[3],
            "columns": [{"metric": k, "label": lab, "better": _arrow(d), "direction": d, "family": fam}
                        for k, lab, d, fam in columns],
            "families": list(FAMILY_ORDER),
            "rows": table, "incompatible": incompatible,
            "tests": stats["tests"], "rank_stability": rs,
            "statistics": STATISTICS_NOTE.format(alpha=stats["alpha"], n_boot=stats["n_boot"]),
            "duplicates": [{"model": d["model"], "seed": d["seed"], "source": d.get("_source")} for d in duplicates],
            "not_ranked": not_ranked, "middle_n": middle_n(main[0].get("preset"))}
    # questions, reference brackets, order by dominance, the verdict sentence (mrsbench.boards.verdict)
    from mrsbench.boards.verdict import apply_verdict
    apply_verdict(lb, main_col)
    from mrsbench.boards.variants import variants_note
    lb["variants"] = variants_note(lb, main_col)   # rows of one generator with different settings, side by side
    return lb


STATISTICS_NOTE = (
    "[low, high]: 95% bootstrap interval ({n_boot} replicates; seeds and, within each seed, test subjects drawn "
    "with replacement). Ranks: 1 + the number of models significantly better in that column (paired permutation "
    "test over subjects, every model scored on the same subjects and subsets; Holm-corrected over the model pairs "
    "of each column, family-wise alpha = {alpha}): rows whose difference is not significant share a rank. "
    "Rank stability: the share of bootstrap replicates in which a generator (reference rows aside) has the "
    "highest effective transients at the board's middle n, the main question.")


def _arrow(d) -> str:
    return "↑" if d == "higher" else "↓" if d == "lower" else f"→{d:g}"


def write_leaderboard(folder: str | Path) -> Path:
    from mrsbench.boards.render import html_page, render, utility_figure
    """Regenerate README.md (markdown), leaderboard.json and index.html in a leaderboard folder."""
    folder = Path(folder)
    all_docs = load_results([folder])
    lb = build(all_docs)
    with atomic_path(folder / "README.md", ".md") as t:
        Path(t).write_text(f"# mrsbench leaderboard: {lb['dataset']} / {lb['preset']}\n\n" + render(lb, "markdown"))
    with atomic_path(folder / "leaderboard.json", ".json") as t:
        Path(t).write_text(render(lb, "json"))
    docs = [d for d in all_docs if d.get("harness_version") == lb["harness_version"]
            and d.get("dataset_hash") == lb["dataset_hash"] and d.get("preset_name") == lb["preset"]]
    utility_figure(docs, folder / "utility.png")
    with atomic_path(folder / "index.html", ".html") as t:
        Path(t).write_text(html_page(lb, folder))
    return folder / "README.md"


def render(lb: dict, fmt: str = "markdown") -> str:
    """The board as markdown, csv or json (:mod:`mrsbench.boards.render`)."""
    from mrsbench.boards.render import render as _render
    return _render(lb, fmt)
