"""The seed paper's figures for any results files (van de Sande et al., "Data-driven Synthesis of MRS Data using a
Variational Autoencoder"): its Figure 4 (held-out spectra, their reconstructions and the residuals, ON and OFF, two
subjects) and Figure 5 (a UMAP learned on real spectra with each model's synthetic spectra projected in, density
shading of the real points, ON/OFF markers, one panel per model or sampling strategy).

Results files hold metrics, not samples, so the figures are made by redoing the run's own steps: the cell's data
and shared work (the same UMAP, fitted on held-out real spectra, cached), each generator made with its recorded
settings and trained fold by fold with the run's seed, and sampled exactly as the embedding family samples
(conditioning transients and seeds of the run) — the points are the run's points."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mrsbench.core.errors import InputError
from mrsbench.core.scans import OFF, ON

FIG5 = "paper_figure5_umap.png"


def fig4_name(model: str) -> str:
    return f"paper_figure4_{model}.png"


def _generator(doc: dict, pr, plugins):
    from mrsbench.generators import registry
    from mrsbench.generators.settings import build, normalise, split_label
    from mrsbench.harness.checks import check_model
    from mrsbench.harness.evaluator import generator_kwargs
    if doc.get("submission"):
        from mrsbench.boards.submit import load_generator_class
        cls, base = load_generator_class(doc["submission"]["target"]), split_label(doc["model"])[0]
        kwargs = {}
    else:
        base = split_label(doc["model"])[0]
        check_model(base, plugins)
        cls = registry.get(base)
        kwargs = generator_kwargs(cls, base, pr, False)
    return lambda: build(cls, doc["model"], kwargs, normalise(cls, base, doc.get("generator_settings") or {}, kwargs))


def collect(paths, plugins=None, progress: bool = True) -> dict:
    """Everything the two figures draw, for results files of one dataset, preset and seed."""
    from mrsbench.boards.leaderboard import read_json, structure_problems
    from mrsbench.core.parallel import tqdm_if
    from mrsbench.generators.contract import generator_call
    from mrsbench.harness.cell_work import cell_data, features, shared_for
    from mrsbench.harness.protocol import get_preset
    docs = []
    for p in paths:
        d = read_json(Path(p), "results file")
        probs = structure_problems(d) if isinstance(d, dict) else ["not a JSON object"]
        if probs:
            raise InputError(p, "not a results file: " + "; ".join(probs[:2]))
        docs.append(d)
    cells = {(d["dataset"], d["preset_name"], d["seed"]) for d in docs}
    if len(cells) != 1:
        raise InputError("report", "the results files belong to different cells (dataset, preset, seed): "
                                   + "; ".join("/".join(map(str, c)) for c in sorted(cells)) + " — one figure per cell")
    dataset, preset, seed = cells.pop()
    pr = get_preset(preset)
    cd = cell_data(dataset, pr, seed, progress)
    sw = shared_for(cd, pr, seed, progress)
    parts = cd.folds if cd.folds is not None else [(cd.train, cd.val, cd.test)]
    fold_of = cd.fold_of()
    axis = cd.test.axis
    out = {"dataset": dataset, "preset": preset, "seed": seed, "real": sw.umap_real, "real_edit": sw.real_edit,
           "axis": axis, "models": {}}
    conds = [s.select(sw.cond_idx[k]) for k, s in enumerate(cd.test.scans)]
    show = [s for s in parts[0][2].scans][:2]   # Figure 4: two held-out subjects of the first fold
    import warnings
    for doc in docs:
        model = doc["model"]
        make = _generator(doc, pr, plugins)
        gens = []
        for tr, va, _ in tqdm_if(parts, f"report: training {model}", enabled=progress):
            with generator_call(model, "fit"):
                gens.append(make().fit(tr, seed=seed, val=va))
        fids, edit = [], []
        for k, c in enumerate(conds):   # as the embedding family: per_subject ON + OFF each, seed + 100 + k
            with generator_call(model, "sample"):
                s = gens[fold_of.get(c.subject, 0)].sample(sw.per_subject, condition=c, seed=seed + 100 + k)
            fids.append(s.fids)
            edit.append(s.edit)
        n = len(sw.real)
        F = sw.feat_pca.transform(features(np.concatenate(fids), axis, pr.feature_ppm))[:n]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            emb = sw.umap.transform(F)
        rec = None
        if gens[0].has_latent:
            rec = []
            for s in show:
                pick = [int(np.flatnonzero(s.edit == lab)[0]) for lab in (ON, OFF)]
                with generator_call(model, "encode/decode"):
                    r = gens[0].decode(gens[0].encode(s.fids[pick]))
                rec.append((s.subject, s.fids[pick], np.asarray(r)))
        out["models"][model] = {"umap": emb, "edit": np.concatenate(edit)[:n], "reconstruction": rec}
    return out


def figure5(data: dict):
    """One panel per model: real points as density shading, synthetic ON (o) and OFF (^) projected in."""
    import matplotlib.pyplot as plt
    from scipy.stats import gaussian_kde
    R = data["real"]
    models = list(data["models"])
    k = len(models)
    cols = min(k, 3)
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.2 * rows), squeeze=False, sharex=True, sharey=True)
    allp = np.concatenate([R] + [m["umap"] for m in data["models"].values()])
    lo, hi = allp.min(0), allp.max(0)
    pad = 0.05 * (hi - lo)
    gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], 120), np.linspace(lo[1] - pad[1], hi[1] + pad[1], 120))
    dens = gaussian_kde(R.T)(np.vstack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    for ax, m in zip(axes.ravel(), models):
        d = data["models"][m]
        ax.contourf(gx, gy, dens, levels=8, cmap="Greys", alpha=0.7)
        for lab, mk, col, name in ((ON, "o", "tab:red", "ON"), (OFF, "^", "tab:blue", "OFF")):
            sel = d["edit"] == lab
            ax.scatter(d["umap"][sel, 0], d["umap"][sel, 1], s=9, marker=mk, c=col, alpha=0.6, label=f"synthetic {name}")
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("UMAP 1 (a.u.)")
        ax.set_ylabel("UMAP 2 (a.u.)")
    for ax in axes.ravel()[k:]:
        ax.axis("off")
    axes[0, 0].legend(loc="best", fontsize=8, title="shading: real (held-out) density", title_fontsize=8)
    fig.suptitle(f"UMAP learned on held-out real spectra, synthetic projected in ({data['dataset']}/{data['preset']}, "
                 f"seed {data['seed']})", fontsize=10)
    fig.tight_layout()
    return fig


def figure4(data: dict, model: str, ppm: tuple[float, float] = (1.8, 4.2)):
    """Two held-out subjects x (ON, OFF): the real spectrum, its reconstruction and the residual (offset below)."""
    import matplotlib.pyplot as plt
    ax_ = data["axis"]
    rec = data["models"][model]["reconstruction"]
    w = ax_.window(*ppm)
    x = ax_.ppm[w]
    fig, axes = plt.subplots(len(rec), 2, figsize=(10, 3.4 * len(rec)), squeeze=False)
    for i, (subject, real, r) in enumerate(rec):
        for j, name in enumerate(("ON", "OFF")):
            a, b = ax_.to_spectrum(real[j]).real[w], ax_.to_spectrum(r[j]).real[w]
            off = 1.2 * np.ptp(a)
            p = axes[i, j]
            p.plot(x, a, color="k", lw=0.9, label="held-out transient")
            p.plot(x, b, color="tab:red", lw=0.9, label="reconstruction")
            p.plot(x, a - b - off, color="tab:gray", lw=0.8, label="residual (offset)")
            p.set_xlim(ppm[1], ppm[0])
            p.set_xlabel("chemical shift (ppm)")
            p.set_ylabel("real part (a.u.)")
            p.set_title(f"{subject}, edit-{name}", fontsize=10)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"{model}: reconstructions of held-out transients ({data['dataset']}/{data['preset']}, seed "
                 f"{data['seed']})", fontsize=10)
    fig.tight_layout()
    return fig


def report(paths, out: str | Path, plugins=None, progress: bool = True) -> list[Path]:
    """Write Figure 5 (every model) and Figure 4 (each model with an encoder) as PNG into ``out``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mrsbench.core.files import atomic_path
    data = collect(paths, plugins, progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    figs = [(FIG5, lambda: figure5(data))] + [(fig4_name(m), lambda m=m: figure4(data, m))
                                              for m, d in data["models"].items() if d["reconstruction"]]
    for name, draw in figs:
        fig = draw()
        with atomic_path(out / name) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(out / name)
    return written
