"""Leaderboards and validation of results files (comparison: :mod:`mrsbench.compare`; submission:
:mod:`mrsbench.submission`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._files import atomic_path
from .errors import InputError
from .harness import HARNESS_VERSION, SCHEMA, results_checksum

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
    if check_dataset and not probs:
        probs += dataset_problems(doc)
    return probs


def dataset_problems(doc: dict) -> list[str]:
    """Does the results file's dataset match the one this mrsbench generates (or reads)?

    The identity (generating configuration and code versions) must be equal; the numeric
    fingerprint must agree within :data:`~mrsbench.datasets.FINGERPRINT_RTOL` (last-bit float
    differences between machines pass, any real change of the data fails)."""
    from .datasets import DATASETS, FINGERPRINT_RTOL, fingerprint_mismatch, load_dataset
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
        files = [p] if p.is_file() else sorted(x for x in p.rglob("*.json") if x.name != "leaderboard.json"
                                                and not x.name.startswith(".tmp-"))
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
        for v, i in scored:  # competition ranking: ties share the best rank
            table[i].setdefault("ranks", {})[k] = 1 + sum(1 for w in vals if w < score(v) - 1e-12)
    # per family: the mean of its column ranks; overall: the mean over families (each family weighs the same)
    for r in table:
        fam_ranks = {}
        for fam in FAMILY_ORDER:
            rk = [r.get("ranks", {})[k] for k, _, _, f in columns if f == fam and k in r.get("ranks", {})]
            if rk:
                fam_ranks[fam] = float(np.mean(rk))
        r["family_ranks"] = fam_ranks
        r["mean_rank"] = float(np.mean(list(fam_ranks.values()))) if fam_ranks else None
    table.sort(key=lambda r: (r["mean_rank"] is None, r["mean_rank"] or 0, r["model"]))
    incompatible = [{"model": d["model"], "dataset": d["dataset"], "dataset_hash": d["dataset_hash"],
                     "harness_version": d["harness_version"], "preset": d["preset_name"], "seed": d["seed"],
                     "source": d.get("_source")} for k, g in groups.items() if k != main_key for d in g]
    return {"dataset": main_key[0], "dataset_hash": main_key[1], "harness_version": main_key[2], "preset": main_key[3],
            "columns": [{"metric": k, "label": lab, "better": _arrow(d), "family": fam} for k, lab, d, fam in columns],
            "families": list(FAMILY_ORDER),
            "rows": table, "incompatible": incompatible,
            "duplicates": [{"model": d["model"], "seed": d["seed"], "source": d.get("_source")} for d in duplicates]}


def _arrow(d) -> str:
    return "↑" if d == "higher" else "↓" if d == "lower" else f"→{d:g}"


def _fmt(cell) -> str:
    if cell is None:
        return "n/a"
    return f"{cell['mean']:.4g} ± {cell['sd']:.2g}" if cell["n"] > 1 else f"{cell['mean']:.4g}"


def render(lb: dict, fmt: str = "markdown") -> str:
    if fmt == "json":
        return json.dumps(lb, indent=1)
    cols = lb["columns"]
    fams = lb.get("families", [])
    header = ["rank", "model", "seeds"] + [f"{f} rank" for f in fams] + [f"{c['label']} {c['better']}" for c in cols]
    rows = [[i + 1, r["model"] + "".join(f" ⚠ {x}" for x in r.get("flags", [])), len(r["seeds"])]
            + [f"{r['family_ranks'][f]:.1f}" if f in r.get("family_ranks", {}) else "n/a" for f in fams]
            + [_fmt(r[c["metric"]]) for c in cols] for i, r in enumerate(lb["rows"])]
    if fmt == "csv":
        import csv
        import io
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["rank", "model", "seeds"] + [x for c in cols for x in (c["metric"], c["metric"] + ".sd")])
        for i, r in enumerate(lb["rows"]):
            w.writerow([i + 1, r["model"], len(r["seeds"])] +
                       [x for c in cols for x in ((r[c["metric"]] or {}).get("mean", ""), (r[c["metric"]] or {}).get("sd", ""))])
        return buf.getvalue()
    from tabulate import tabulate
    text = (f"Leaderboard — dataset `{lb['dataset']}` (identity {lb['dataset_hash']}), preset `{lb['preset']}`, "
            f"harness {lb['harness_version']}. Mean ± sd over seeds; ↑ higher is better, ↓ lower is better, "
            "→x closer to x is better. Columns by family: "
            + "; ".join(f"{f}: " + ", ".join(c["label"] for c in cols if c.get("family") == f) for f in fams)
            + ". A family's rank is the mean of its columns' ranks; rows are ordered by the mean of the family "
            "ranks. ⚠ flags: noise-free transients (noise ratio < 0.1) or SNR inflated (> 1.5x what 160 real "
            "transients give). eff. n: real transients whose short scan alone scores what the augmented scan scores "
            "(shape score vs the full scan); gain = eff. n / n; break-even n: from where augmenting stops helping (the largest n tested when it helps at every n).\n\n")
    text += tabulate(rows, headers=header, tablefmt="github")
    cards = [(r["model"], r.get("card")) for r in lb["rows"] if r.get("card")]
    if cards:
        text += "\n\nModel cards (from the first seed's results; times on the machine that made them):\n\n"
        text += tabulate([[m, c.get("description", ""), c.get("parameters") if c.get("parameters") is not None else "n/a",
                           "n/a" if c.get("training_s") is None else f"{c['training_s']:.1f}",
                           "n/a" if c.get("sampling_transients_per_s") is None else f"{c['sampling_transients_per_s']:.0f}",
                           c.get("device", ""), c.get("licence") or c.get("link") or ""] for m, c in cards],
                         headers=["model", "description", "parameters", "training (s)", "sampling (transients/s)",
                                  "device", "licence / link"], tablefmt="github")
    if lb["incompatible"]:
        text += "\n\nIncompatible results (different dataset identity, harness version or preset; not ranked):\n"
        text += tabulate([[d["model"], d["dataset"], d["dataset_hash"], d["harness_version"], d["preset"], d["seed"]]
                          for d in lb["incompatible"]],
                         headers=["model", "dataset", "identity", "harness", "preset", "seed"], tablefmt="github")
    if lb.get("duplicates"):
        text += ("\n\nRepeated runs of a seed (not counted; the most recently created run of each seed is kept): "
                 + ", ".join(f"{d['model']} seed {d['seed']} ({Path(d['source'] or '?').name})" for d in lb["duplicates"]))
        text += "\n"
    return text + "\n"


def write_leaderboard(folder: str | Path) -> Path:
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


def utility_figure(docs: list[dict], path: Path) -> Path | None:
    """The board's utility curves: the subset-alone shape score against n (shared by every model: the same
    real subsets), the full scan, and each model's augmented scan at the preset's n (mean over seeds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not docs:
        return None
    curve: dict = {}
    aug: dict = {}
    for d in docs:
        for k, v in d["metrics"].items():
            if v is None:
                continue
            parts = k.split(".")
            if k.startswith("application.curve.n") and k.endswith(".shape_score"):
                curve.setdefault(int(parts[2][1:]), []).append(v)
            elif k.startswith("application.n") and k.endswith(".augmented.shape_score"):
                aug.setdefault(d["model"], {}).setdefault(int(parts[1][1:]), []).append(v)
    if not curve:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    g = sorted(curve)
    ax.plot(g, [np.mean(curve[n]) for n in g], "o-", color="k", lw=2, label="subset alone (real transients)")
    ax.plot([g[-1]], [1.0], "*", color="k", ms=12, label="full scan (the reference)")
    for model in sorted(aug):
        ns = sorted(aug[model])
        ax.plot(ns, [np.mean(aug[model][n]) for n in ns], "s--", label=f"augmented: {model}")
    ax.set_xscale("log")
    ax.set_xticks(g)
    ax.set_xticklabels([str(n) for n in g])
    ax.set_xlabel("real transients per condition in the short scan, n")
    ax.set_ylabel("challenge shape score vs the full scan (DIFF)")
    ax.set_title(f"utility: {docs[0]['dataset']} / {docs[0]['preset_name']} (mean over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, ".png") as t:
        fig.savefig(t, dpi=110, format="png")
    plt.close(fig)
    return path


def html_page(lb: dict, folder: Path) -> str:
    """A static, self-contained page: sortable table (click a header) plus UMAP and spectra figures."""
    import html
    cols = lb["columns"]
    head = "".join(f'<th data-col="{i + 2}" data-better="{html.escape(c["better"])}" title="{html.escape(c.get("family", ""))}">{html.escape(c["label"])} '
                   f'{html.escape(c["better"])}</th>' for i, c in enumerate(cols))
    body = []
    for r in lb["rows"]:
        cells = "".join(
            f'<td data-v="{"" if r[c["metric"]] is None else r[c["metric"]]["mean"]}">{html.escape(_fmt(r[c["metric"]]))}</td>'
            for c in cols)
        flag = "".join(f" ⚠ {html.escape(x)}" for x in r.get("flags", []))
        body.append(f'<tr data-model="{html.escape(r["model"])}"><td>{html.escape(r["model"])}{flag}</td>'
                    f'<td data-v="{len(r["seeds"])}">{len(r["seeds"])}</td>{cells}</tr>')
    figs = []
    for r in lb["rows"]:
        for kind in ("utility", "spectra", "bland_altman", "umap"):
            f = folder / "figures" / f"{r['model']}-seed{r['seeds'][0]}-{kind}.png"
            if f.exists():
                figs.append(f'<figure><img src="figures/{f.name}" alt="{kind} {r["model"]}" width="420">'
                            f'<figcaption>{html.escape(r["model"])}: {kind}</figcaption></figure>')
    incompatible = ""
    if lb["incompatible"]:
        items = "".join(f"<li>{html.escape(d['model'])} seed {d['seed']}: dataset {html.escape(d['dataset'])} "
                        f"({html.escape(d['dataset_hash'])}), harness {html.escape(d['harness_version'])}, "
                        f"preset {html.escape(d['preset'])}</li>" for d in lb["incompatible"])
        incompatible = f"<h2>Not ranked (incompatible)</h2><ul id=\"incompatible\">{items}</ul>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>mrsbench leaderboard {lb['dataset']} / {lb['preset']}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px}}
th{{cursor:pointer;background:#eee}} figure{{display:inline-block;margin:1em}}</style></head><body>
<h1>mrsbench leaderboard</h1><p>dataset <b>{html.escape(lb['dataset'])}</b> (identity {html.escape(lb['dataset_hash'])}),
preset <b>{html.escape(lb['preset'])}</b>, harness {html.escape(lb['harness_version'])}. Click a column to sort
(best first, using its direction: ↑ higher, ↓ lower, →x closest to x).</p>
{'<figure><img src="utility.png" alt="utility curves" width="640"><figcaption>utility curves: every model against the subset alone</figcaption></figure>' if (folder / "utility.png").exists() else ''}
<table id="lb"><thead><tr><th data-col="0">model</th><th data-col="1">seeds</th>{head}</tr></thead>
<tbody>{''.join(body)}</tbody></table>
{incompatible}<div id="figs">{''.join(figs)}</div>
<script>
function sortBy(col){{
  const th=document.querySelector('th[data-col="'+col+'"]'); const b=th.dataset.better||'';
  const rows=[...document.querySelectorAll('#lb tbody tr')];
  const key=r=>{{const c=r.children[col]; const v=parseFloat(c.dataset.v);
    if(isNaN(v)) return col==0? c.textContent : Infinity;
    if(b=='↑') return -v; if(b=='↓') return v; if(b.startsWith('→')) return Math.abs(v-parseFloat(b.slice(1))); return v;}};
  rows.sort((x,y)=>{{const a=key(x),c=key(y); return a<c?-1:a>c?1:0;}});
  const tb=document.querySelector('#lb tbody'); rows.forEach(r=>tb.appendChild(r));
  document.body.dataset.sorted=col;
}}
document.querySelectorAll('#lb th').forEach(th=>th.addEventListener('click',()=>sortBy(+th.dataset.col)));
const m=location.hash.match(/sort=(\\d+)/); if(m) sortBy(+m[1]);
</script></body></html>
"""
