"""Rendering of leaderboards: markdown/csv/json tables, the significance summary, the static HTML page and
the board's utility figure (the board itself is built in :mod:`mrsbench.leaderboard`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._files import atomic_path


def _fmt(cell, rank=None) -> str:
    """A board cell: mean over seeds, its 95% interval when known (else ± sd over seeds), the column rank."""
    if cell is None:
        return "n/a"
    ci = cell.get("ci")
    if ci:
        text = f"{cell['mean']:.4g} [{ci[0]:.3g}, {ci[1]:.3g}]"
    else:
        text = f"{cell['mean']:.4g} ± {cell['sd']:.2g}" if cell["n"] > 1 else f"{cell['mean']:.4g}"
    return text + (f" #{rank}" if rank is not None else "")


def significance_text(lb: dict) -> str:
    """Which pairs of rows differ significantly, column by column, and the board's rank stability."""
    lines = []
    for c in lb["columns"]:
        tests = [t for t in (lb.get("tests") or {}).get(c["metric"], []) if t.get("p") is not None]
        if not tests:
            continue
        sig = [t for t in tests if t["significant"]]
        pairs = "; ".join(f"{t['better']} better than {t['a'] if t['better'] == t['b'] else t['b']} "
                          f"(p_Holm {t['p_holm']:.2g})" for t in sorted(sig, key=lambda t: t["p_holm"]))
        lines.append(f"- {c['label']}: {len(sig)} of {len(tests)} pairs differ" + (f": {pairs}" if sig else ""))
    rs = lb.get("rank_stability")
    if rs and rs.get("top_stays_top") is not None:
        others = ", ".join(f"{m} {100 * p:.0f}%" for m, p in sorted(rs["p_top"].items(), key=lambda x: -x[1])
                           if m != rs["top"] and p > 0)
        lines.append(f"- Rank stability (plain ranks of each bootstrap replicate's values): the board's top row, "
                     f"{rs['top']}, is on top in {100 * rs['top_stays_top']:.0f}% of {rs['replicates']} replicates"
                     + (f"; on top instead: {others}" if others else "") + ".")
    return "\n".join(lines)


def render(lb: dict, fmt: str = "markdown") -> str:
    if fmt == "json":
        return json.dumps(lb, indent=1)
    cols = lb["columns"]
    fams = lb.get("families", [])
    header = ["rank", "model", "seeds"] + [f"{f} rank" for f in fams] + [f"{c['label']} {c['better']}" for c in cols]
    rows = [[r.get("position", i + 1), r["model"] + "".join(f" ⚠ {x}" for x in r.get("flags", [])), len(r["seeds"])]
            + [f"{r['family_ranks'][f]:.1f}" if f in r.get("family_ranks", {}) else "n/a" for f in fams]
            + [_fmt(r[c["metric"]], r.get("ranks", {}).get(c["metric"])) for c in cols] for i, r in enumerate(lb["rows"])]
    if fmt == "csv":
        import csv
        import io
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["rank", "model", "seeds"] + [c["metric"] + x for c in cols
                                                 for x in ("", ".sd", ".ci_low", ".ci_high", ".rank")])
        for i, r in enumerate(lb["rows"]):
            cells = []
            for c in cols:
                cell = r[c["metric"]] or {}
                ci = cell.get("ci") or ["", ""]
                cells += [cell.get("mean", ""), cell.get("sd", ""), ci[0], ci[1], r.get("ranks", {}).get(c["metric"], "")]
            w.writerow([i + 1, r["model"], len(r["seeds"])] + cells)
        return buf.getvalue()
    from tabulate import tabulate
    text = (f"Leaderboard — dataset `{lb['dataset']}` (identity {lb['dataset_hash']}), preset `{lb['preset']}`, "
            f"harness {lb['harness_version']}. Mean over seeds [95% interval over subjects and seeds] #rank in the column "
            "(± sd over seeds where no interval could be computed); ↑ higher is better, ↓ lower is better, "
            "→x closer to x is better. Columns by family: "
            + "; ".join(f"{f}: " + ", ".join(c["label"] for c in cols if c.get("family") == f) for f in fams)
            + ". A family's rank is the mean of its columns' ranks; rows are ordered by the mean of the family "
            "ranks. ⚠ flags: noise-free transients (noise ratio < 0.1) or SNR inflated (> 1.5x what 160 real "
            "transients give). eff. n: real transients whose short scan alone scores what the augmented scan scores "
            "(shape score vs the full scan); gain = eff. n / n; break-even n: from where augmenting stops helping (the largest n tested when it helps at every n).\n\n")
    text += tabulate(rows, headers=header, tablefmt="github")
    if lb.get("statistics"):
        text += "\n\n" + lb["statistics"] + "\n"
    sig = significance_text(lb)
    if sig:
        text += "\nSignificant differences (paired tests over subjects, Holm-corrected per column):\n\n" + sig + "\n"
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
    if lb.get("not_ranked"):
        text += "\n\nNot ranked (the file fails `mrsbench validate`):\n\n"
        text += tabulate([[d["model"], d["seed"], Path(d["source"] or "?").name, d["reason"]] for d in lb["not_ranked"]],
                         headers=["model", "seed", "file", "reason"], tablefmt="github")
        text += "\n"
    if lb.get("duplicates"):
        text += ("\n\nRepeated runs of a seed (not counted; the most recently created run of each seed is kept): "
                 + ", ".join(f"{d['model']} seed {d['seed']} ({Path(d['source'] or '?').name})" for d in lb["duplicates"]))
        text += "\n"
    return text + "\n"


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
            f'<td data-v="{"" if r[c["metric"]] is None else r[c["metric"]]["mean"]}">'
            f'{html.escape(_fmt(r[c["metric"]], r.get("ranks", {}).get(c["metric"])))}</td>'
            for c in cols)
        flag = "".join(f" ⚠ {html.escape(x)}" for x in r.get("flags", []))
        body.append(f'<tr data-model="{html.escape(r["model"])}"><td>{html.escape(r["model"])}{flag}</td>'
                    f'<td data-v="{len(r["seeds"])}">{len(r["seeds"])}</td>{cells}</tr>')
    figs = []
    for r in lb["rows"]:
        for kind in ("utility", "spectra", "bland_altman", "umap", "training"):
            f = folder / "figures" / f"{r['model']}-seed{r['seeds'][0]}-{kind}.png"
            if f.exists():
                figs.append(f'<figure><img src="figures/{f.name}" alt="{kind} {r["model"]}" width="420">'
                            f'<figcaption>{html.escape(r["model"])}: {kind}</figcaption></figure>')
    sig = significance_text(lb)
    stats_html = (f'<p id="statistics">{html.escape(lb.get("statistics") or "")}</p>'
                  + (f'<ul id="significance">{"".join(f"<li>{html.escape(x[2:])}</li>" for x in sig.splitlines())}</ul>'
                     if sig else ""))
    incompatible = ""
    if lb["incompatible"]:
        items = "".join(f"<li>{html.escape(d['model'])} seed {d['seed']}: dataset {html.escape(d['dataset'])} "
                        f"({html.escape(d['dataset_hash'])}), harness {html.escape(d['harness_version'])}, "
                        f"preset {html.escape(d['preset'])}</li>" for d in lb["incompatible"])
        incompatible = f"<h2>Not ranked (incompatible)</h2><ul id=\"incompatible\">{items}</ul>"
    if lb.get("not_ranked"):
        items = "".join(f"<li>{html.escape(d['model'])} seed {d['seed']} ({html.escape(Path(d['source'] or '?').name)}): "
                        f"{html.escape(d['reason'])}</li>" for d in lb["not_ranked"])
        incompatible += f"<h2>Not ranked (fails validation)</h2><ul id=\"not-ranked\">{items}</ul>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>mrsbench leaderboard {lb['dataset']} / {lb['preset']}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px}}
th{{cursor:pointer;background:#eee}} figure{{display:inline-block;margin:1em}}</style></head><body>
<h1>mrsbench leaderboard</h1><p>dataset <b>{html.escape(lb['dataset'])}</b> (identity {html.escape(lb['dataset_hash'])}),
preset <b>{html.escape(lb['preset'])}</b>, harness {html.escape(lb['harness_version'])}. Click a column to sort
(best first, using its direction: ↑ higher, ↓ lower, →x closest to x).</p>
{'<figure><img src="utility.png" alt="utility curves" width="640"><figcaption>utility curves: every model against the subset alone</figcaption></figure>' if (folder / "utility.png").exists() else ''}
<table id="lb"><thead><tr><th data-col="0">model</th><th data-col="1">seeds</th>{head}</tr></thead>
<tbody>{''.join(body)}</tbody></table>
{stats_html}{incompatible}<div id="figs">{''.join(figs)}</div>
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
