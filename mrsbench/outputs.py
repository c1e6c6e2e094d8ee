"""Writing a run: results.json, figures and the MLflow run (all or nothing), and the summary table."""
from __future__ import annotations

import json
from contextlib import contextmanager, nullcontext
from pathlib import Path

from ._files import atomic_dir, atomic_path
from .families import QUANT


def results_checksum(results: dict) -> str:
    """SHA-256 of the canonical JSON of a results document without its ``checksum`` (and without
    fields added after writing): lets `mrsbench validate` detect edited files."""
    import hashlib
    doc = {k: v for k, v in results.items() if k not in ("checksum", "mlflow_tracking_uri")}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def write_run(run_dir: Path, results: dict, emb, spectra, ba, mlflow_root: Path | None = None) -> list[Path]:
    """Figures and results.json (+ the MLflow run when ``mlflow_root`` is given), all or nothing.

    Everything is written into a hidden temporary folder that is renamed to ``run_dir`` as the last
    step, inside the MLflow run: an error or interrupt (Ctrl-C, SIGTERM) leaves no run folder and
    an MLflow run marked FAILED, never a FINISHED run without its metrics."""
    renamed = False
    with (_mlflow_run(results, mlflow_root) if mlflow_root is not None else nullcontext()) as ml:
        try:
            with atomic_dir(run_dir) as tmp:
                figs = _figures(tmp, results, emb, spectra, ba)
                results["figures"] = [p.name for p in figs]
                results["checksum"] = results_checksum(results)
                with atomic_path(tmp / "results.json", ".json") as t:
                    Path(t).write_text(json.dumps(results, indent=1, sort_keys=True))
                if ml is not None:
                    _mlflow_log(results, tmp, figs)
            renamed = True
        except BaseException:
            if renamed:  # interrupted between the rename and the end of the MLflow run
                import shutil
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    return [run_dir / f for f in results["figures"]]


def _figures(run_dir: Path, results, emb, spectra, ba) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []

    def save(fig, name):
        p = run_dir / name
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        out.append(p)

    eR, eF = emb
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.scatter(eR[:, 0], eR[:, 1], s=6, alpha=0.6, label="real (held-out)")
    ax.scatter(eF[:, 0], eF[:, 1], s=6, alpha=0.6, label=f"synthetic ({results['model']})")
    ax.set_title(f"UMAP (KDE overlap {results['metrics'].get('embedding.umap_kde_overlap') or 0:.2f})")
    ax.legend()
    save(fig, "umap.png")
    subj, n, pf, ps, pa = spectra
    axis = pf.axis
    fig, ax = plt.subplots(figsize=(7, 4))
    for lab, pp in (("full scan", pf), (f"subset n={n}", ps), ("augmented", pa)):
        ax.plot(axis.ppm, pp.spectra()["diff"].real, lw=1, label=lab)
    ax.set_xlim(4.2, 1.8)
    ax.set_xlabel("ppm")
    ax.set_title(f"DIFF spectra, {subj}")
    ax.legend()
    save(fig, "spectra.png")
    full, aug, sub = ba
    fig, axs = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for a, x, lab in ((axs[0], sub, "subset"), (axs[1], aug, "augmented")):
        m, d = (x + full) / 2, x - full
        a.scatter(m, d, s=12)
        a.axhline(d.mean(), color="k")
        for sgn in (-1, 1):
            a.axhline(d.mean() + sgn * 1.96 * d.std(), color="k", ls="--")
        a.set_title(f"Bland-Altman GABA+/Cr: {lab} vs full")
        a.set_xlabel("mean")
    axs[0].set_ylabel("difference")
    save(fig, "bland_altman.png")
    return out


@contextmanager
def _mlflow_run(results: dict, out_root: Path):
    """An MLflow run for ``results`` (FAILED if the block raises). Tracking store: $MLFLOW_TRACKING_URI or
    sqlite OUT/mlflow.db; artifacts of a new experiment in the local store go to OUT/mlartifacts
    (not ./mlruns of the current folder)."""
    import logging
    import os
    import warnings
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow
    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    out_root = Path(out_root).resolve()
    uri = env_uri or f"sqlite:///{out_root / 'mlflow.db'}"
    out_root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI: restore the user's setting, or a
    # later run in this process (another --out) would log into this run's store
    if env_uri is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = env_uri
    name = f"mrsbench-{results['dataset']}-{results['preset_name']}"
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        art = None if env_uri and not env_uri.startswith(("sqlite:", "file:")) else (out_root / "mlartifacts").as_uri()
        exp_id = mlflow.create_experiment(name, artifact_location=art)
    else:
        exp_id = exp.experiment_id
    results["mlflow_tracking_uri"] = uri
    with mlflow.start_run(run_name=results["run_id"], experiment_id=exp_id) as active:
        yield active


def _mlflow_log(results: dict, run_dir: Path, figures) -> None:
    """Params, metrics, results.json and figures into the active MLflow run, one nested run per n."""
    import mlflow
    mlflow.log_params({"model": results["model"], "dataset": results["dataset"], "dataset_hash": results["dataset_hash"],
                       "preset": results["preset_name"], "seed": results["seed"],
                       "harness_version": results["harness_version"]})
    mlflow.log_metrics({k: v for k, v in results["metrics"].items() if v is not None})
    mlflow.log_metrics({f"wall_time_s.{k}": v for k, v in results["wall_time_s"].items()})
    mlflow.log_artifact(str(run_dir / "results.json"))
    for f in figures:
        mlflow.log_artifact(str(f))
    # one nested run per short-scan size n, so application/quantification can be compared across n
    for n in results["preset"]["n_values"]:
        with mlflow.start_run(run_name=f"{results['run_id']}-n{n}", nested=True):
            mlflow.log_params({"model": results["model"], "n": n})
            pref = f"application.n{n}."
            mlflow.log_metrics({k[len(pref):]: v for k, v in results["metrics"].items()
                                if k.startswith(pref) and v is not None})


HEADLINE = [("reconstruction.nmse_1.8-4.2ppm", "lower"), ("embedding.precision", "higher"),
            ("embedding.recall", "higher"), ("embedding.mmd2", "lower"), ("embedding.classifier_auc", "closer to 0.5"),
            ("embedding.memorisation_ratio", "closer to 1"), ("embedding.umap_kde_overlap", "higher"),
            ("application.noise_ratio", "closer to 1")]


def summary_table(results: dict) -> str:
    from tabulate import tabulate
    m = results["metrics"]
    rows = [(k, "n/a" if m.get(k) is None else f"{m[k]:.4g}", d) for k, d in HEADLINE]
    for n in results["preset"]["n_values"]:
        for kind in ("subset", "augmented"):
            for key, d in (("snr", "higher"), ("shape_score", "higher"), ("mse", "lower")):
                k = f"application.n{n}.{kind}.{key}"
                rows.append((k, "n/a" if m.get(k) is None else f"{m[k]:.4g}", d))
    for name in QUANT:
        for kind in ("subset", "augmented"):
            k = f"quantification.{name}.mape.{kind}"
            rows.append((k, "n/a" if m.get(k) is None else f"{m[k]:.4g}", "lower"))
    return tabulate(rows, headers=["metric", "value", "better"], tablefmt="github")
