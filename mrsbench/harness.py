"""The fixed, versioned evaluation harness behind ``mrsbench run``.

Stages (each timed, each with a progress bar): data and split -> fit -> reconstruction ->
embedding -> application -> quantification -> write results (+ figures, MLflow).
Every score is computed on held-out test subjects; generators see only training and validation
subjects. A capability a generator lacks is recorded as not applicable (null), never as zero.
"""
from __future__ import annotations

import json
import platform
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from contextlib import contextmanager, nullcontext

from ._files import atomic_dir, atomic_path
from .data import OFF, ON, Cohort, Scan
from .errors import InputError

HARNESS_VERSION = "1.5"   # bump whenever the protocol (presets, metrics, splits, quantifier) changes; 1.4: LCM fits converge (sigma^2, variable projection, 2 starts); 1.5: exact NNLS + second start only where needed, average frame at the median transient
SCHEMA = "mrsbench.results/1"


@dataclass(frozen=True)
class Preset:
    """Evaluation protocol parameters."""

    name: str
    n_values: tuple[int, ...] = (20, 40)        # transients per condition in the short scan
    n_subsets: int = 3                          # random subsets per subject and n
    full_count: int = 160                       # fill up to this many per condition
    embedding_samples: int = 300                # fixed sample size for the two-sample statistics
    feature_dim: int = 16                       # PCA feature space fitted on real training data
    feature_ppm: tuple[float, float] = (1.8, 4.2)
    umap_neighbors: int = 15
    umap_epochs: int = 200
    generator_kwargs: dict = field(default_factory=dict)
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seeds: tuple[int, ...] = (0, 1, 2)          # fixed seeds used by `mrsbench submit`

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "quick": Preset("quick"),
    "paper": Preset("paper", n_values=(10, 20, 40, 80), n_subsets=5, embedding_samples=1000, umap_epochs=400),
    # for tests and smoke runs only: small, fast, not for leaderboards
    "tiny": Preset("tiny", n_values=(20,), n_subsets=1, embedding_samples=120, umap_epochs=50,
                   generator_kwargs={"vae": {"epochs": 4, "hidden": [128], "latent_dim": 8}}, seeds=(0,)),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise InputError("preset", f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


# --- helpers -----------------------------------------------------------------------------

def _features(fids: np.ndarray, axis, ppm) -> np.ndarray:
    s = axis.to_spectrum(fids)[:, axis.window(*ppm)]
    return np.concatenate([s.real, s.imag], 1)


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or None
    except Exception:
        return None


def _versions() -> dict:
    import importlib.metadata as md
    out = {"python": platform.python_version(), "mrsbench": __version__}
    for p in ("numpy", "scipy", "torch", "scikit-learn", "umap-learn", "mlflow", "nifti-mrs"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = None
    return out


STAGES = ("data", "fit", "reconstruction", "embedding", "application", "quantification")


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


def _tqdm(it, desc, total=None, enabled=True):
    if not enabled:
        return it
    from tqdm import tqdm
    return tqdm(it, desc=desc, total=total, leave=False)


@contextmanager
def generator_call(model: str, method: str):
    """Report any exception raised inside a generator's method as one line naming the generator
    and the method (a plugin's bug is not mrsbench's traceback)."""
    from .generator import GeneratorError
    try:
        yield
    except GeneratorError:
        raise
    except Exception as e:
        msg = str(e).splitlines()[0][:300] if str(e) else ""
        raise GeneratorError(f"generator {model!r}: {method}() failed: {type(e).__name__}: {msg}") from e


# --- the harness --------------------------------------------------------------------------

def run(model: str, dataset: str = "simgaba-small", preset: str = "quick", seed: int = 0, out: str | Path = "runs",
        plugins=None, progress: bool = True, track: bool = True, generator=None,
        edit_order: str | None = None, basis: str | None = None) -> tuple[dict, Path]:
    """Train and score a generator. Returns (results dict, run folder). ``edit_order`` ("ON,OFF" or
    "OFF,ON"): for real data interleaving the conditions on DIM_DYN without saying which comes first.
    ``basis``: simulate the named dataset from this user basis folder (:func:`~mrsbench.datasets.load_dataset`)."""
    pr = get_preset(preset)
    timings: dict = {}
    t_start = time.perf_counter()
    run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{model}-{uuid.uuid4().hex[:6]}"
    run_dir = Path(out) / run_id
    metrics: dict = {}
    if progress:
        from tqdm import tqdm
        _Stage.bar = tqdm(total=len(STAGES), desc="mrsbench run", unit="stage")
    try:
        return _run(model, dataset, pr, seed, out, plugins, progress, track, generator, timings, t_start, run_id,
                    run_dir, metrics, edit_order, basis)
    finally:
        if _Stage.bar is not None:
            _Stage.bar.close()
            _Stage.bar = None


def _run(model, dataset, pr, seed, out, plugins, progress, track, generator, timings, t_start, run_id, run_dir, metrics,
         edit_order=None, basis=None):
    from . import registry
    from .datasets import load_dataset
    from .generator import validate_samples

    with _Stage(timings, "data"):
        cohort = load_dataset(dataset, progress=progress, edit_order=edit_order, basis=basis)
        sp = cohort.split(seed, pr.split_fractions)
        train, val, test = cohort.subset(sp.train), cohort.subset(sp.val), cohort.subset(sp.test)
        if not test.scans or not train.scans:
            raise InputError(dataset, "too few subjects for a train/test split")
    with _Stage(timings, "fit"):
        if generator is None:
            registry.load_plugins(plugins)
            cls = registry.get(model)
            kwargs = dict(pr.generator_kwargs.get(model, {}))
            if model == "vae":
                kwargs.setdefault("progress", progress)
            with generator_call(model, "__init__"):
                gen = cls(**kwargs)
        else:
            gen = generator
        with generator_call(model, "fit"):
            gen.fit(train, seed=seed, val=val)

    def sample(n, cond, s):
        with generator_call(model, "sample"):
            out = gen.sample(n, condition=cond, seed=s)
        return validate_samples(out, n, cohort.axis, model)

    with _Stage(timings, "reconstruction"), generator_call(model, "encode/decode"):
        metrics.update(_reconstruction(gen, test, cohort.axis))
    with _Stage(timings, "embedding"):
        emb, emb_fig = _embedding(gen, train, test, cohort.axis, pr, seed, sample, progress)
        metrics.update(emb)
    with _Stage(timings, "application"):
        app, app_records, spectra_fig = _application(test, pr, seed, sample, progress)
        metrics.update(app)
    with _Stage(timings, "quantification"):
        qm, ba = _quantification(app_records, test, cohort.axis)
        metrics.update(qm)
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
    }
    if "harmonisation" in cohort.meta:  # real data: how it was read and put on one axis
        results["dataset_reading"] = {"layout": cohort.meta.get("layout"), "harmonisation": cohort.meta["harmonisation"],
                                      "edit_order": sorted({str(s.meta.get("edit_order")) for s in cohort.scans}),
                                      "water_references_left_out": len(cohort.meta.get("water_references", []))}
    if "basis" in cohort.meta:  # simulated from a user basis: which one, and what it lacked
        results["dataset_basis"] = cohort.meta["basis"]
    write_run(run_dir, results, emb_fig, spectra_fig, ba, Path(out) if track else None)
    return results, run_dir


def _reconstruction(gen, test: Cohort, axis) -> dict:
    if not gen.has_latent:
        return {"reconstruction.nmse_full": None, "reconstruction.nmse_1.8-4.2ppm": None}
    num_f = den_f = num_w = den_w = 0.0
    w = axis.window(1.8, 4.2)
    for s in test.scans:
        rec = gen.decode(gen.encode(s.fids))
        a, b = axis.to_spectrum(s.fids), axis.to_spectrum(rec)
        num_f += np.sum(np.abs(b - a) ** 2)
        den_f += np.sum(np.abs(a) ** 2)
        num_w += np.sum(np.abs(b[:, w] - a[:, w]) ** 2)
        den_w += np.sum(np.abs(a[:, w]) ** 2)
    return {"reconstruction.nmse_full": num_f / den_f, "reconstruction.nmse_1.8-4.2ppm": num_w / den_w}


def _embedding(gen, train, test, axis, pr: Preset, seed, sample, progress):
    from sklearn.decomposition import PCA

    from .metrics import twosample as ts

    rng = np.random.default_rng(seed + 1)
    tr_fids = np.concatenate([s.fids for s in train.scans])
    tr_raw = _features(tr_fids, axis, pr.feature_ppm)
    pca = PCA(pr.feature_dim, random_state=seed).fit(tr_raw)
    feat = lambda f: pca.transform(_features(f, axis, pr.feature_ppm))
    m = pr.embedding_samples
    # real held-out transients and synthetic ones conditioned on the same subjects (ON and OFF)
    per = max(1, int(np.ceil(m / (2 * len(test)))))
    real, fake = [], []
    for k, s in enumerate(_tqdm(test.scans, "embedding: sampling", enabled=progress)):
        real.append(s.fids[rng.choice(s.n_transients, min(2 * per, s.n_transients), replace=False)])
        cond = s.select(np.sort(rng.choice(s.n_transients, min(80, s.n_transients), replace=False)))
        fake.append(sample(per, cond, seed + 100 + k).fids)
    R = feat(np.concatenate(real))[:m]
    F = feat(np.concatenate(fake))[:m]
    n = min(len(R), len(F))
    R, F = R[:n], F[:n]
    out = {}
    out.update({f"embedding.{k}": v for k, v in ts.prdc(R, F, k=5).items()})
    out["embedding.mmd2"] = ts.mmd2_unbiased(R, F)
    out["embedding.classifier_auc"] = ts.classifier_auc(R, F, seed)
    out["embedding.frechet"] = ts.frechet_distance(R, F)
    # memorisation: unconditioned samples vs equal-size training and held-out sets
    U = feat(sample(n // 2 + 1, None, seed + 7).fids)
    H = feat(np.concatenate([s.fids for s in test.scans]))
    T = pca.transform(tr_raw)  # training features computed once
    k = min(len(H), len(T))
    out["embedding.memorisation_ratio"] = ts.memorisation_ratio(U, T[rng.choice(len(T), k, replace=False)],
                                                               H[rng.choice(len(H), k, replace=False)])
    # UMAP learned on real test spectra, synthetic projected in
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap
        um = umap.UMAP(n_neighbors=pr.umap_neighbors, n_epochs=pr.umap_epochs, random_state=seed, n_jobs=1).fit(R)
        eR, eF = um.embedding_, um.transform(F)
    out["embedding.umap_kde_overlap"] = ts.kde_overlap(eR, eF)
    return out, (eR, eF)


def _application(test: Cohort, pr: Preset, seed, sample, progress):
    from .processing import process
    from .qc import quality_report

    rng = np.random.default_rng(seed + 2)
    records = []   # per (subject, n, rep): processed full/subset/augmented
    acc: dict = {}
    noise_real, noise_syn = [], []
    ax = test.axis
    wn = ax.window(9.8, 10.8)
    spectra_fig = None
    jobs = [(s, n, r) for s in test.scans for n in pr.n_values for r in range(pr.n_subsets)]
    full_cache = {}
    for k, (s, n, r) in enumerate(_tqdm(jobs, "application", enabled=progress)):
        if s.subject not in full_cache:
            p_full = process(s)
            full_cache[s.subject] = (p_full, quality_report(p_full, p_full, osprey=False))
        pf, full_rep = full_cache[s.subject]
        on_idx, off_idx = np.flatnonzero(s.edit == ON), np.flatnonzero(s.edit == OFF)
        if n > min(len(on_idx), len(off_idx)):
            raise InputError(s.subject, f"preset needs {n} transients per condition, scan has fewer")
        sel = np.sort(np.r_[rng.choice(on_idx, n, replace=False), rng.choice(off_idx, n, replace=False)])
        sub = s.select(sel)
        fill = max(pr.full_count - n, 0)
        syn = sample(fill, sub, seed + 1000 + k) if fill else None
        aug = sub if syn is None else Scan(np.concatenate([sub.fids, syn.fids]), np.concatenate([sub.edit, syn.edit]),
                                           ax, s.subject, s.site)
        ps, pa = process(sub), process(aug)
        for kind, rep in (("full", full_rep), ("subset", quality_report(ps, pf, osprey=False)),
                          ("augmented", quality_report(pa, pf, osprey=False))):
            for key in ("snr", "linewidth_hz", "shape_score", "mse"):
                acc.setdefault(f"application.n{n}.{kind}.{key}", []).append(rep[key])
        if syn is not None:
            sr = ax.to_spectrum(syn.fids)[:, wn].real
            rr = ax.to_spectrum(sub.fids)[:, wn].real
            noise_syn.append(np.median(sr.std(1)))
            noise_real.append(np.median(rr.std(1)))
        records.append({"subject": s.subject, "n": n, "rep": r, "full": pf, "subset": ps, "augmented": pa})
        if spectra_fig is None:
            spectra_fig = (s.subject, n, pf, ps, pa)
    out = {k: float(np.mean(v)) for k, v in acc.items()}
    if noise_real:
        out["application.noise_ratio"] = float(np.median(noise_syn) / np.median(noise_real))
    return out, records, spectra_fig


QUANT = {"gaba_cr": "GABA+/tCr (LCM: DIFF GABA + MM3co)", "gaba_cr_gannet": "GABA+/Cr (Gannet GABAGlx model, 3 Hz LB)",
         "glx_cr": "Glx/tCr", "naa_cr": "tNAA/tCr", "cho_cr": "tCho/tCr", "mi_cr": "mI/tCr"}


def _quantification(records, test: Cohort, axis):
    from .fitting.gannet import gannet_fits
    from .fitting.quantify import Quantifier, lcm_ratios
    from .fitting.validation import true_ratios

    kinds = ("full", "subset", "augmented")
    procs = [r[k] for r in records for k in kinds]
    off = np.stack([p.spectra()["off"] for p in procs])
    diff = np.stack([p.spectra()["diff"] for p in procs])
    q = Quantifier(axis)
    ro, rd = q.fit(off, diff)
    lr = lcm_ratios(ro, rd)
    gg = gannet_fits(off, diff, axis)["gabaglx_cr"]
    # headline GABA+/tCr from the LCM; the Gannet-style estimate (GABAGlx, Gannet's default) alongside
    est = {"gaba_cr": lr["GABA+"], "gaba_cr_gannet": gg, "glx_cr": lr["Glx"], "naa_cr": lr["tNAA"],
           "cho_cr": lr["tCho"], "mi_cr": lr["mI"]}
    idx = {k: np.arange(len(procs))[i::3] for i, k in enumerate(kinds)}
    out = {}
    # LCM fit health per kind of scan: OFF fits that did not converge, or whose metabolite line shape
    # ended at a bound of its range (flags of the fit, see LCMFitter)
    bound = q.off.shape_at_bound(ro)[:, 0]
    for kind in kinds:
        out[f"quantification.lcm.not_converged_rate.{kind}"] = float(np.mean(~ro.converged[idx[kind]]))
        out[f"quantification.lcm.shape_at_bound_rate.{kind}"] = float(np.mean(bound[idx[kind]]))
    out["quantification.lcm.iterations_median"] = float(np.median(ro.iterations))
    gt = test.ground_truth
    truth = None
    if gt is not None and {"GABA", "MM3co", "Cr", "PCr"} <= set(gt.columns):
        # signal truth: amplitudes as simulated, conc * exp(-TE/T2) with each subject's T2
        t = true_ratios(gt.set_index("subject"), "signal")
        tr = {"gaba_cr": t["GABA+"], "gaba_cr_gannet": t["GABA+"], "glx_cr": t["Glx"], "naa_cr": t["tNAA"],
              "cho_cr": t["tCho"], "mi_cr": t["mI"]}
        subj = [r["subject"] for r in records]
        truth = {k: np.array([v[s] for s in subj]) for k, v in tr.items()}
    for name, e in est.items():
        full = e[idx["full"]]
        for kind in ("subset", "augmented"):
            x = e[idx[kind]]
            with np.errstate(divide="ignore", invalid="ignore"):
                pct = 100 * (x - full) / full
            out[f"quantification.{name}.bias.{kind}"] = float(np.nanmean(pct))
            out[f"quantification.{name}.mape.{kind}"] = float(np.nanmean(np.abs(pct)))
            out[f"quantification.{name}.r.{kind}"] = float(np.corrcoef(x, full)[0, 1]) if len(x) > 2 and np.std(x) > 0 else None
        if truth is not None:
            t = truth[name]
            k = np.median(t / full) if np.all(full > 0) else np.nan  # calibrate units on the full scans
            for kind in ("full", "subset", "augmented"):
                x = e[idx[kind]]
                out[f"quantification.{name}.truth_mape.{kind}"] = float(np.mean(np.abs(k * x - t) / t) * 100)
    ba = (est["gaba_cr"][idx["full"]], est["gaba_cr"][idx["augmented"]], est["gaba_cr"][idx["subset"]])
    return out, ba


# --- output ---------------------------------------------------------------------------------

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
