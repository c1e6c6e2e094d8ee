"""Rendering of leaderboards: markdown/csv/json tables, the significance summary, the static HTML page and
the board's utility figure (the board itself is built in :mod:`mrsbench.boards.leaderboard`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mrsbench.core.files import atomic_path


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


def stability_text(lb: dict) -> str:
    """The board's rank stability in one sentence ("" where it was not computed)."""
    rs = lb.get("rank_stability")
    if not rs or rs.get("top_stays_top") is None:
        return ""
    others = ", ".join(f"{m} {100 * p:.0f}%" for m, p in sorted(rs["p_top"].items(), key=lambda x: -x[1])
                       if m != rs["top"] and p > 0)
    what = next((c["label"] for c in lb["columns"] if c["metric"] == rs.get("column")), "the board")
    return (f"Rank stability (main question, {what}, over bootstrap replicates of subjects and seeds): {rs['top']} "
            f"has the highest value in {100 * rs['top_stays_top']:.0f}% of {rs['replicates']} replicates"
            + (f"; instead: {others}" if others else "") + ".")


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
    stab = stability_text(lb)
    if stab:
        lines.append(f"- {stab}")
    return "\n".join(lines)


def _position(r: dict) -> str:
    role = r.get("role")
    return f"ref: {role}" if role else str(r.get("position", ""))


def _bracket(r: dict) -> str:
    b = r.get("bracket")
    return "" if b is None else f"{b:.0f}%"


GLOSSARY = {
    "eff. n": "effective transients: the number of real transients per condition whose short scan alone scores what "
              "the short scan filled up with synthetic transients scores (shape score of the DIFF against the full "
              "scan), read off the real-only curve",
    "gain": "effective transients / the real transients in the short scan (1 = the synthetic transients add nothing)",
    "eff. n GABA+": "effective transients judged by the GABA+/tCr error against the full scan's own estimate",
    "break-even n": "the short-scan size from which augmenting stops helping (the largest n tested when it helps at "
                    "every n)",
    "shape score": "0.6 r(GABA 2.8-3.2 ppm) + 0.4 r(Glx 3.6-3.9 ppm), Pearson r of the DIFF spectrum against the full "
                   "scan's (Edited-MRS Reconstruction Challenge)",
    "precision": "share of synthetic spectra within the real data's k-NN manifold (Naeem et al. 2020)",
    "recall": "share of real spectra within the synthetic data's k-NN manifold",
    "coverage": "share of real spectra with a synthetic one in their k-NN ball",
    "C2ST AUC": "classifier two-sample test: AUC of a classifier telling real from synthetic (0.5 = cannot tell)",
    "MMD²": "unbiased squared maximum mean discrepancy between real and synthetic features (Gaussian kernel, median "
            "bandwidth; 0 = same distribution)",
    "noise ratio": "mean noise SD (9.8-10.8 ppm) of the synthetic transients over that of the real ones (1 = realistic)",
    "SNR inflation": "SNR of the augmented scan over what 160 real transients give (1 = honest; > 1.5 flagged)",
    "copied noise": "share of a perturbation of the short scan's noise that reappears in the synthetic transients "
                    "(probe at the middle n, smoothed at the 6 Hz in-vivo linewidth over 1.8-4.2 ppm): 0 = independent "
                    "of the short scan like real transients, 1 = a copy of it; > 0.5 flagged",
    "GABA+ bias aug %": "mean signed GABA+/tCr error of the augmented scans against the full scan (%)",
    "failure rate aug": "share of augmented scans whose processing or fit failed (left out of the means)",
    "memorisation": "median over synthetic spectra of (distance to the nearest training spectrum) / (distance to the "
                    "nearest held-out real spectrum): about 1 = generalises, well below 1 = copies training data",
    "recon NMSE": "normalised mean squared error of encoding and decoding held-out transients over 1.8-4.2 ppm",
    "floor→ceiling": "where a generator's eff. n lies between the strongest floor row (0%: the best of bootstrap, "
                     "smoothed and subset-lcm, which add nothing beyond the short scan) and the oracle ceiling (100%)",
    "position": "1 + the number of generators that dominate it (significantly better on a question, worse on none)",
}


def glossary_for(label: str) -> str:
    """The glossary entry of a column label ("eff. n (n=20)" -> "eff. n")."""
    for k in sorted(GLOSSARY, key=len, reverse=True):
        if label.startswith(k):
            return GLOSSARY[k]
    return ""


def _variant_rows(v: dict) -> tuple[list, list]:
    head = [k for k in v["rows"][0] if k != "model"]
    fmt = lambda x: "n/a" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))   # noqa: E731
    return head, [[fmt(r[k]) for k in head] for r in v["rows"]]


def variants_markdown(lb: dict) -> str:
    """The settings-variants note (mrsbench.boards.variants) as markdown."""
    from tabulate import tabulate
    text = ""
    for v in lb.get("variants") or []:
        head, rows = _variant_rows(v)
        text += (f"\n\nSettings variants of {v['generator']} (means over seeds; eff. n at n = {lb.get('middle_n')}): "
                 f"{v['sentence']}\n\n" + tabulate(rows, headers=head, tablefmt="github", disable_numparse=True))
    return text + ("\n" if text else "")


def variants_html(lb: dict) -> str:
    import html
    out = []
    for v in lb.get("variants") or []:
        head, rows = _variant_rows(v)
        out.append(f"<h3>{html.escape(v['generator'])} by settings</h3><p>{html.escape(v['sentence'])}</p><table>"
                   + "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
                   + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
                   + "</table>")
    return (f"<h2>Settings variants (means over seeds; eff. n at n = {lb.get('middle_n')})</h2><div id=\"variants\">"
            + "".join(out) + "</div>") if out else ""


def render(lb: dict, fmt: str = "markdown") -> str:
    if fmt == "json":
        return json.dumps(lb, indent=1)
    cols = lb["columns"]
    fams = lb.get("families", [])
    header = ["position", "model", "seeds", "floor→ceiling"] + [f"{f} rank" for f in fams] + \
        [f"{c['label']} {c['better']}" for c in cols]
    rows = [[_position(r), r["model"] + "".join(f" ⚠ {x}" for x in r.get("flags", [])), len(r["seeds"]), _bracket(r)]
            + [f"{r['family_ranks'][f]:.1f}" if f in r.get("family_ranks", {}) else "n/a" for f in fams]
            + [_fmt(r[c["metric"]], r.get("ranks", {}).get(c["metric"])) for c in cols] for i, r in enumerate(lb["rows"])]
    if fmt == "csv":
        import csv
        import io
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["position", "model", "seeds", "role"] + [c["metric"] + x for c in cols
                                                             for x in ("", ".sd", ".ci_low", ".ci_high", ".rank")])
        for i, r in enumerate(lb["rows"]):
            cells = []
            for c in cols:
                cell = r[c["metric"]] or {}
                ci = cell.get("ci") or ["", ""]
                cells += [cell.get("mean", ""), cell.get("sd", ""), ci[0], ci[1], r.get("ranks", {}).get(c["metric"], "")]
            w.writerow([r.get("position") if r.get("position") is not None else "", r["model"], len(r["seeds"]),
                        r.get("role") or "generator"] + cells)
        return buf.getvalue()
    from tabulate import tabulate
    text = (f"**Verdict.** {lb.get('verdict', '')}\n\n"
            f"Leaderboard — dataset `{lb['dataset']}` (identity {lb['dataset_hash']}), preset `{lb['preset']}`, "
            f"harness {lb['harness_version']}. Mean over seeds [95% interval over subjects and seeds] #rank in the column "
            "(± sd over seeds where no interval could be computed); ↑ higher is better, ↓ lower is better, "
            "→x closer to x is better. Columns by family: "
            + "; ".join(f"{f}: " + ", ".join(c["label"] for c in cols if c.get("family") == f) for f in fams)
            + ". A question's (family's) rank is the mean of its columns' ranks. " + lb.get("order_rule", "")
            + f" floor→ceiling: where a generator's eff. n lies between the strongest floor row ({lb.get('floor_model') or 'none'}, 0%) and oracle (100%). ⚠ flags: noise-free transients (noise ratio < 0.1), SNR inflated (> 1.5x what 160 real "
            "transients give) or copied noise (> 0.5 of the short scan's own noise carried by the synthetic transients). eff. n: real transients whose short scan alone scores what the augmented scan scores "
            "(shape score vs the full scan); gain = eff. n / n; break-even n: from where augmenting stops helping (the largest n tested when it helps at every n).\n\n")
    text += tabulate(rows, headers=header, tablefmt="github")
    if lb.get("statistics"):
        text += "\n\n" + lb["statistics"] + "\n"
    sig = significance_text(lb)
    if sig:
        text += "\nSignificant differences (paired tests over subjects, Holm-corrected per column):\n\n" + sig + "\n"
    text += variants_markdown(lb)
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


def _matrix(lb: dict, family: str, models: list) -> str:
    """The paired tests of one question as a model x model table: green where the row beats the column (significantly
    better in a column of the question, worse in none), red where the column beats the row, amber where each is
    significantly better somewhere, blank where nothing is significant."""
    import html

    from mrsbench.boards.verdict import _sig
    keys = [c["metric"] for c in lb["columns"] if c["family"] == family]
    head = "".join(f"<th>{html.escape(m)}</th>" for m in models)
    body = []
    for a in models:
        cells = []
        for b in models:
            if a == b:
                cells.append('<td class="self"></td>')
                continue
            s = [_sig(lb, k, a, b) for k in keys]
            kind = ("mixed" if -1 in s and 1 in s else "win" if -1 in s else "loss" if 1 in s else "none")
            txt = {"win": "better", "loss": "worse", "mixed": "mixed", "none": ""}[kind]
            cells.append(f'<td class="{kind}" title="{html.escape(a)} vs {html.escape(b)}: {kind}">{txt}</td>')
        body.append(f"<tr><th>{html.escape(a)}</th>{''.join(cells)}</tr>")
    return (f'<table class="matrix" data-question="{family}"><thead><tr><th>row vs column</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def html_page(lb: dict, folder: Path) -> str:
    """A static, self-contained page: the verdict, a sortable table (click a header) with a rank column per question,
    the reference rows in their own band, a glossary, the paired tests as a matrix per question, and the figures
    (click to open full size)."""
    import html
    cols = lb["columns"]
    fams = lb.get("families", [])
    fixed = ["position", "model", "seeds", "floor→ceiling"] + [f"{f} rank" for f in fams]
    head = "".join(f'<th data-col="{i}" data-better="{"↓" if i == 0 or i >= 4 else "↑" if i == 3 else ""}" '
                   f'title="{html.escape(glossary_for(h) or (lb.get("questions") or {}).get(h[:-5], ""))}">'
                   f"{html.escape(h)}</th>" for i, h in enumerate(fixed))
    head += "".join(f'<th data-col="{i + len(fixed)}" data-better="{html.escape(c["better"])}" '
                    f'title="{html.escape(c.get("family", "") + ": " + glossary_for(c["label"]))}">'
                    f'{html.escape(c["label"])} {html.escape(c["better"])}</th>' for i, c in enumerate(cols))

    def row_html(r):
        pos = r.get("position")
        lead = [(pos if pos is not None else "", _position(r)), (r["model"], None), (len(r["seeds"]), None),
                (r.get("bracket") if r.get("bracket") is not None else "", _bracket(r))]
        lead += [((r.get("family_ranks") or {}).get(f, ""), f"{r['family_ranks'][f]:.1f}" if f in (r.get("family_ranks")
                                                                                                    or {}) else "n/a")
                 for f in fams]
        cells = []
        for i, (v, shown) in enumerate(lead):
            text = html.escape(str(shown if shown is not None else v))
            if i == 1:
                text += "".join(f" ⚠ {html.escape(x)}" for x in r.get("flags", []))
            cells.append(f'<td data-v="{v if i != 1 else ""}">{text}</td>')
        cells += [f'<td data-v="{"" if r[c["metric"]] is None else r[c["metric"]]["mean"]}">'
                  f'{html.escape(_fmt(r[c["metric"]], r.get("ranks", {}).get(c["metric"])))}</td>' for c in cols]
        return f'<tr data-model="{html.escape(r["model"])}" data-role="{r.get("role") or "generator"}">{"".join(cells)}</tr>'

    gens = [r for r in lb["rows"] if not r.get("role")]
    refs = [r for r in lb["rows"] if r.get("role")]
    figs = []
    for f in sorted((folder / "figures").glob("paper_figure*.png")):   # mrsbench report --out <board>/figures
        cap = ("the paper's Figure 5: UMAP of held-out real spectra (shading), synthetic projected in" if "figure5" in
               f.name else f"the paper's Figure 4: reconstructions of held-out transients, {f.stem[len('paper_figure4_'):]}")
        figs.append(f'<figure><a href="figures/{f.name}" target="_blank"><img src="figures/{f.name}" alt="{html.escape(cap)}" '
                    f'style="width:min(1000px,95vw)"></a><figcaption>{html.escape(cap)} (click for full size)</figcaption>'
                    '</figure>')
    for r in lb["rows"]:
        for kind in ("utility", "spectra", "bland_altman", "umap", "training"):
            f = folder / "figures" / f"{r['model']}-seed{r['seeds'][0]}-{kind}.png"
            if f.exists():
                figs.append(f'<figure><a href="figures/{f.name}" target="_blank"><img src="figures/{f.name}" '
                            f'alt="{kind} {r["model"]}" style="width:min(640px,95vw)"></a>'
                            f'<figcaption>{html.escape(r["model"])}: {kind} (click for full size)</figcaption></figure>')
    stab = stability_text(lb)
    models = [r["model"] for r in lb["rows"]]
    matrices = "".join(f"<h3>{html.escape(f)}: {html.escape((lb.get('questions') or {}).get(f, ''))}</h3>"
                       + _matrix(lb, f, models) for f in fams)
    gloss = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in GLOSSARY.items())
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
    ncol = len(fixed) + len(cols)
    return f"""<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>mrsbench leaderboard {html.escape(lb['dataset'])} / {html.escape(lb['preset'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:100%}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}} th{{cursor:pointer;background:#eee}} #wrap{{overflow-x:auto}}
#verdict{{font-size:1.15em;background:#f3f7ff;border-left:4px solid #36c;padding:.6em 1em}}
tr.band td{{background:#f6f6f6;font-style:italic}} tr[data-role=floor] td,tr[data-role=ceiling] td,tr[data-role=peer] td{{background:#fafafa;color:#444}}
table.matrix td{{text-align:center;min-width:4em}} td.win{{background:#bfe8bf}} td.loss{{background:#f3c0c0}}
td.mixed{{background:#f7e3a8}} td.self{{background:#ddd}} figure{{display:inline-block;margin:1em}} dt{{font-weight:bold}}</style>
</head><body>
<h1>mrsbench leaderboard</h1>
<p id="verdict"><b>Verdict.</b> {html.escape(lb.get('verdict', ''))}</p>
<p>dataset <b>{html.escape(lb['dataset'])}</b> (identity {html.escape(lb['dataset_hash'])}), preset
<b>{html.escape(lb['preset'])}</b>, harness {html.escape(lb['harness_version'])}. {html.escape(lb.get('order_rule', ''))}
{html.escape(stab)} Hover a column for its definition (glossary below); click it to sort (best first).</p>
<div id="wrap"><table id="lb"><thead><tr>{head}</tr></thead>
<tbody id="gens">{''.join(row_html(r) for r in gens)}</tbody>
<tbody id="refs"><tr class="band"><td colspan="{ncol}">reference rows: brackets, not contestants (floor: adds
nothing beyond the short scan: bootstrap resamples it, smoothed fills it with its own line-broadened average, subset-lcm
with its own LCM model fit; ceiling: oracle, the simulator's own truth; peer: an existing augmentation tool; generators
are placed from the strongest floor row, {html.escape(str(lb.get('floor_model') or 'none'))}, to the ceiling)</td></tr>{''.join(row_html(r) for r in refs)}</tbody>
</table></div>
{'<figure><a href="utility.png" target="_blank"><img src="utility.png" alt="utility curves" style="width:min(800px,95vw)"></a><figcaption>utility curves: every model against the subset alone (click for full size)</figcaption></figure>' if (folder / "utility.png").exists() else ''}
{variants_html(lb)}<h2>Paired tests by question</h2><p id="statistics">{html.escape(lb.get("statistics") or "")}</p>
<div id="matrices">{matrices}</div>
<h2>Glossary</h2><dl id="glossary">{gloss}</dl>
{incompatible}<h2>Figures</h2><div id="figs">{''.join(figs)}</div>
<script>
function sortBy(col){{
  const th=document.querySelector('#lb th[data-col="'+col+'"]'); const b=th.dataset.better||'';
  const rows=[...document.querySelectorAll('#gens tr')];
  const key=r=>{{const c=r.children[col]; const v=parseFloat(c.dataset.v);
    if(isNaN(v)) return col==1? c.textContent : Infinity;
    if(b=='↑') return -v; if(b=='↓') return v; if(b.startsWith('→')) return Math.abs(v-parseFloat(b.slice(1))); return v;}};
  rows.sort((x,y)=>{{const a=key(x),c=key(y); return a<c?-1:a>c?1:0;}});
  const tb=document.querySelector('#gens'); rows.forEach(r=>tb.appendChild(r));
  document.body.dataset.sorted=col;
}}
document.querySelectorAll('#lb th').forEach(th=>th.addEventListener('click',()=>sortBy(+th.dataset.col)));
const m=location.hash.match(/sort=(\\d+)/); if(m) sortBy(+m[1]);
</script></body></html>
"""
