"""Model-independent work of one evaluation cell: everything the harness computes from the real data
of one (dataset, split, preset protocol, seed) that does not depend on the generator.

That is the feature space and the real side of the embedding (training-feature PCA, held-out real
features, the conditioning transients drawn for each test subject, the UMAP fitted on real spectra),
the short-scan subsets drawn for the application family with the processing and quality of the full
and subset scans, and their LCM/Gannet fits. Every model scored on the same cell needs exactly this,
so it is computed once and reused: cached on disk by content (``$MRSBENCH_CACHE/shared``), keyed by the
dataset identity, the split, the protocol, the seed, the harness version and the source of mrsbench
itself, and passed between the tasks of a sweep. Random draws use the same generators and order as
before the split, so results do not depend on whether the work came from the cache.
"""
from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrsbench.core.scans import OFF, ON, Cohort
from mrsbench.core.errors import InputError
from mrsbench.processing import Processed, remember, scan_key
from mrsbench.harness.protocol import HARNESS_VERSION, Preset
from mrsbench.harness.subset_curve import _curve_real, processing_failed, truth_quality
from mrsbench.core.parallel import ordered_pool_map

SHARED_FORMAT = 4   # 4: the application jobs' processed subsets kept (subset_processed)
NOISE_PPM = (9.8, 10.8)  # signal-free band for the noise ratio of synthetic vs real transients
NOISE_FREE_RATIO = 0.1   # synthetic/real noise below this: the transients are (nearly) noise-free


def features(fids: np.ndarray, axis, ppm) -> np.ndarray:
    """Real and imaginary spectrum within ``ppm`` (T, 2M): the raw features the PCA feature space is fitted on."""
    return axis.real_imag_points(fids, axis.window(*ppm))   # (in blocks, without full-size copies)


@dataclass
class SharedWork:
    """Model-independent part of one cell (see the module docstring). Shapes: D feature dims, n pairs."""

    key: str
    # embedding
    feat_pca: object                      # sklearn PCA on training features
    real: np.ndarray                      # (n, D) held-out real features
    cond_idx: list                        # per test subject: sorted conditioning transient indices
    per_subject: int                      # synthetic transients drawn per test subject
    train_sub: np.ndarray                 # (k, D) training features for the memorisation ratio
    held_sub: np.ndarray                  # (k, D) held-out features for the memorisation ratio
    umap: object                          # UMAP fitted on ``real``
    umap_real: np.ndarray                 # (n, 2)
    real_subject: np.ndarray              # (n,) test-subject index of each row of ``real``
    real_edit: np.ndarray                 # (n,) edit label (ON 1 / OFF 0) of each row of ``real`` (figures)
    held_subject: np.ndarray              # (k,) test-subject index of each row of ``held_sub``
    # application: one job per (test subject, n, repeat)
    jobs: list                            # [(subject index, n, rep)]
    selections: list                      # per job: transient indices of the subset
    full: list                            # per test subject: Processed full scan
    full_quality: list                    # per test subject: quality_report of the full scan
    subset_quality: list                  # per job: quality_report of the subset vs the full scan
    subset_noise: np.ndarray              # per job: median noise sd of the subset's transients (9.8-10.8 ppm)
    first_subset: Processed               # the first job's processed subset (figure)
    # quantification
    full_fits: dict                       # name -> (n_subjects,) estimates and fit health
    subset_fits: dict                     # name -> (n_jobs,)
    subset_failed: np.ndarray             # (n_jobs,) bool: processing failed (see processing_failed)
    # subset-alone quality curve at the grid n not already among the jobs (n = full count: the full scan)
    grid: tuple                           # n per condition, ascending
    curve_jobs: list                      # [(subject index, n, rep)]
    curve_quality: list                   # per curve job: quality_report vs the full scan
    curve_failed: np.ndarray              # (n_curve_jobs,) bool
    curve_fits: dict                      # name -> (n_curve_jobs,)
    # simulated data: the noise-free truth DIFF (real, (N,)) per test subject and scores against it
    truth_diff: list | None
    full_truth_q: list | None             # per test subject: {shape_score, mse} vs truth
    subset_truth_q: list | None           # per job
    curve_truth_q: list | None            # per curve job
    # per job: (processing's content key, Processed) of the subset, handed to processing's memory whenever this
    # shared work is used (see remember_subsets): a generator that processes the same conditioning subsets
    # (the physics baseline's prepare, 580 in a paper cell) then finds them processed, in any later process too
    subset_processed: list | None = None

    def remember_subsets(self) -> None:
        """Give the processed subsets to :func:`mrsbench.processing.process_many`'s memory (exactly what
        ``process`` returned for them; nothing is recomputed)."""
        for key, p in self.subset_processed or ():
            remember(None, p, key=key)

    @property
    def n_pairs(self) -> int:
        return len(self.real)


@dataclass
class CellData:
    """The data of one evaluation cell: the dataset, its seeded split (or k folds) and the test subjects' truth.

    With folds, ``test`` is every subject (in fold order), ``folds`` holds (train, val, test) cohorts per fold,
    and ``train``/``val`` are the first fold's (the feature space and the memorisation check use them, with
    ``held`` = the first fold's test subjects)."""

    cohort: Cohort
    split: object                         # data.Split or data.Folds
    train: Cohort
    val: Cohort
    test: Cohort
    truth: list | None                    # noise-free truth DIFF per test subject (simulated data)
    folds: list | None = None             # [(train, val, test)] per fold
    held: Cohort | None = None            # held-out subjects for the memorisation check (default: test)

    def fold_of(self) -> dict:
        """test subject -> fold index (0 for a single split)."""
        if self.folds is None:
            return {s: 0 for s in self.test.subjects}
        return {s: f for f, (_, _, te) in enumerate(self.folds) for s in te.subjects}


def cell_data(dataset: str, pr: Preset, seed: int, progress: bool = True, edit_order: str | None = None,
              basis: str | None = None) -> CellData:
    """Load a dataset (name or path), split it with ``seed`` (one split, or the preset's k folds) and take its
    truth: what the harness and a sweep's shared-work task both start from. Too few subjects is a one-line error."""
    from mrsbench.data.datasets import load_dataset
    cohort, extras = load_dataset(dataset, progress=progress, edit_order=edit_order, basis=basis, with_extras=True)
    cohort = flag_short_subjects(cohort, pr)
    need = max(pr.folds, 3) if pr.folds > 1 else 3   # training, validation and test subjects (at least one each)
    if len(cohort) < need:
        raise InputError(dataset, f"{len(cohort)} subject(s): a run needs at least {need} (training, validation and "
                                  f"test subjects{f', {pr.folds} folds' if pr.folds > 1 else ''}; preset {pr.name})")
    if pr.folds > 1:
        if len(cohort) < pr.folds:
            raise InputError(dataset, f"{len(cohort)} subjects: too few for the preset's {pr.folds} folds")
        fo = cohort.kfold(seed, pr.folds, pr.val_fraction)
        folds = [(cohort.subset(f.train), cohort.subset(f.val), cohort.subset(f.test)) for f in fo.folds]
        if any(not tr.scans for tr, _, _ in folds):
            raise InputError(dataset, "too few subjects for k-fold training sets")
        test = cohort.subset(fo.test)
        return CellData(cohort, fo, folds[0][0], folds[0][1], test, truth_of_test(cohort, extras, test), folds,
                        folds[0][2])
    sp = cohort.split(seed, pr.split_fractions)
    train, val, test = cohort.subset(sp.train), cohort.subset(sp.val), cohort.subset(sp.test)
    if not test.scans or not train.scans:
        raise InputError(dataset, "too few subjects for a train/test split")
    return CellData(cohort, sp, train, val, test, truth_of_test(cohort, extras, test))


def flag_short_subjects(cohort, pr: Preset):
    """Subjects whose scan has fewer than the preset's full scan (``full_count`` transients per condition): they
    run, but their "full scan" reference is that shorter scan, which the run must say. Recorded in
    ``meta["short_subjects"]`` ({subject: [ON, OFF] transients}); the results keep it and the run summary
    shows it."""
    from mrsbench.core.scans import OFF, ON
    short = {s.subject: [int((s.edit == ON).sum()), int((s.edit == OFF).sum())] for s in cohort.scans
             if min(int((s.edit == ON).sum()), int((s.edit == OFF).sum())) < pr.full_count}
    if short:
        cohort.meta["short_subjects"] = short
    else:
        cohort.meta.pop("short_subjects", None)
    return cohort


def shared_for(cd: CellData, pr: Preset, seed: int, progress: bool = True, cache: bool = True) -> "SharedWork":
    """The shared work of a cell from its data (cache, memo or computed)."""
    return get_shared(cd.train, cd.test, cd.cohort.meta.get("identity"), cd.split.to_dict(), pr, seed, progress,
                      cache=cache, truth=cd.truth, held=cd.held)


# --- content key and cache -------------------------------------------------------------------

_SOURCE_HASH = None


def source_hash() -> str:
    """SHA-256 of mrsbench's own source files: a code change invalidates cached shared work."""
    global _SOURCE_HASH
    if _SOURCE_HASH is None:
        h = hashlib.sha256()
        root = Path(__file__).parent
        for p in sorted(root.rglob("*.py")):
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
        _SOURCE_HASH = h.hexdigest()
    return _SOURCE_HASH


def shared_key(identity: str | None, split: dict, pr: Preset, seed: int, truth: bool = False) -> str:
    """Content key of a cell's shared work; ``truth``: whether the dataset's noise-free truth is scored against."""
    doc = {"format": SHARED_FORMAT, "harness": HARNESS_VERSION, "source": source_hash(), "identity": identity,
           "split": split, "protocol": pr.protocol_dict(), "seed": seed, "truth": bool(truth)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def cache_path(key: str) -> Path:
    """$MRSBENCH_SHARED_DIR/KEY.pkl, else $MRSBENCH_CACHE/shared/KEY.pkl (~/.cache/mrsbench by default)."""
    from mrsbench.harness.cache import shared_dir
    return shared_dir() / f"{key}.pkl"


_MEMO: dict = {}   # in-process: the last few SharedWork objects by key


def get_shared(train: Cohort, test: Cohort, identity: str | None, split: dict, pr: Preset, seed: int,
               progress: bool = True, cache: bool = True, truth: list | None = None,
               held: Cohort | None = None) -> SharedWork:
    """The shared work of this cell: from memory, from the disk cache, or computed (and cached).
    A cache file that cannot be read is recomputed and replaced."""
    key = shared_key(identity, split, pr, seed, truth is not None)
    if key in _MEMO:
        return _MEMO[key]
    path = cache_path(key)
    sw = None
    if cache and identity is not None and path.is_file():
        try:
            with open(path, "rb") as f:
                sw = pickle.load(f)
            if not isinstance(sw, SharedWork) or sw.key != key:
                sw = None
        except Exception:  # truncated or from another version of a dependency: recompute
            sw = None
    if sw is None:
        sw = compute_shared(train, test, pr, seed, key, progress, truth, held)
        if cache and identity is not None:
            from mrsbench.core.files import atomic_path
            try:
                with atomic_path(path, ".pkl") as tmp, open(tmp, "wb") as f:
                    pickle.dump(sw, f, protocol=pickle.HIGHEST_PROTOCOL)
            except OSError:
                pass  # a read-only cache only costs time
    while len(_MEMO) >= 4:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[key] = sw
    return sw


# --- computation ---------------------------------------------------------------------------

def compute_shared(train: Cohort, test: Cohort, pr: Preset, seed: int, key: str = "",
                   progress: bool = True, truth: list | None = None, held: Cohort | None = None) -> SharedWork:
    """``truth``: per test subject the noise-free DIFF spectrum (real part, (N,)) of a simulated dataset;
    ``held``: the held-out subjects of the memorisation check (default ``test``; k-fold: the first fold's)."""
    emb = _embedding_real(train, test, pr, seed, held)
    app, subset_procs = _application_real(test, pr, seed, progress)
    full_fits = fit_block(app["full"], test.axis)
    subset_fits = fit_block(subset_procs, test.axis)
    curve, curve_procs = _curve_real(test, pr, seed, app["full"], progress)
    curve["curve_fits"] = fit_block(curve_procs, test.axis) if curve_procs else {}
    tq = dict(truth_diff=None, full_truth_q=None, subset_truth_q=None, curve_truth_q=None)
    if truth is not None:
        tq = dict(truth_diff=list(truth), full_truth_q=[truth_quality(p, truth[i]) for i, p in enumerate(app["full"])],
                  subset_truth_q=[truth_quality(p, truth[i]) for (i, _, _), p in zip(app["jobs"], subset_procs)],
                  curve_truth_q=[truth_quality(p, truth[i]) for (i, _, _), p in zip(curve["curve_jobs"], curve_procs)])
    app["subset_failed"] = np.array([processing_failed(p) for p in subset_procs], bool)
    return SharedWork(key=key, **emb, **app, full_fits=full_fits, subset_fits=subset_fits, **curve, **tq)


def _embedding_real(train: Cohort, test: Cohort, pr: Preset, seed: int, held: Cohort | None = None) -> dict:
    import warnings

    from sklearn.decomposition import PCA

    axis = test.axis
    held = test if held is None else held
    rng = np.random.default_rng(seed + 1)
    tr_raw = features(np.concatenate([s.fids for s in train.scans]), axis, pr.feature_ppm)
    pca = PCA(pr.feature_dim, random_state=seed).fit(tr_raw)
    feat = lambda f: pca.transform(features(f, axis, pr.feature_ppm))
    m = pr.embedding_samples
    per = max(1, int(np.ceil(m / (2 * len(test)))))
    real, cond_idx, lab, edit = [], [], [], []
    for i, s in enumerate(test.scans):   # the same draws, in the same order, as the generator-side loop needs
        pick = rng.choice(s.n_transients, min(2 * per, s.n_transients), replace=False)
        real.append(s.fids[pick])
        edit.append(s.edit[pick])
        lab.append(np.full(len(real[-1]), i))
        cond_idx.append(np.sort(rng.choice(s.n_transients, min(80, s.n_transients), replace=False)))
    R = feat(np.concatenate(real))[:m]
    n = min(len(R), m, 2 * per * len(test))   # synthetic features: per ON + per OFF per subject, at most m
    R = R[:n]
    H = feat(np.concatenate([s.fids for s in held.scans]))
    pos = {s: i for i, s in enumerate(test.subjects)}
    h_lab = np.concatenate([np.full(s.n_transients, pos.get(s.subject, -1)) for s in held.scans])
    T = pca.transform(tr_raw)
    k = min(len(H), len(T))
    t_sub = T[rng.choice(len(T), k, replace=False)]
    h_pick = rng.choice(len(H), k, replace=False)
    from mrsbench.metrics.umap_cache import import_umap
    umap = import_umap()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        um = umap.UMAP(n_neighbors=pr.umap_neighbors, n_epochs=pr.umap_epochs, random_state=seed, n_jobs=1).fit(R)
    return dict(feat_pca=pca, real=R, cond_idx=cond_idx, per_subject=per, train_sub=t_sub, held_sub=H[h_pick],
                umap=um, umap_real=np.asarray(um.embedding_), real_subject=np.concatenate(lab)[:n],
                real_edit=np.concatenate(edit)[:n],
                held_subject=h_lab[h_pick])


def subset_jobs(test: Cohort, pr: Preset) -> list:
    return [(i, n, r) for i in range(len(test.scans)) for n in pr.n_values for r in range(pr.n_subsets)]


def _full_work(scan):
    """A full scan processed and its quality against itself (module level: runs in a worker process)."""
    from mrsbench.processing import process
    from mrsbench.metrics.qc import quality_report
    p = process(scan)
    return p, quality_report(p, p, osprey=False)


def _subset_work(sub, ref, fill: bool):
    """A subset processed, its quality against the full scan ``ref``, where it is to be filled up with synthetic
    transients its transients' noise sd (real part, NOISE_PPM), and its content key (hashed here, in the worker):
    (Processed, quality, noise, key)."""
    from mrsbench.processing import process
    from mrsbench.metrics.qc import quality_report
    ps = process(sub)
    ax = sub.axis
    nz = np.median(ax.to_spectrum(sub.fids)[:, ax.window(*NOISE_PPM)].real.std(1)) if fill else np.nan
    return ps, quality_report(ps, ref, osprey=False), nz, scan_key(sub)


def _application_real(test: Cohort, pr: Preset, seed: int, progress: bool) -> dict:
    rng = np.random.default_rng(seed + 2)
    jobs = subset_jobs(test, pr)
    full = [None] * len(test.scans)
    full_q = [None] * len(test.scans)
    sels, sub_q, noise, procs, keys = [], [], np.full(len(jobs), np.nan), [], []

    def full_done(i, res, _):
        full[i], full_q[i] = res
    scans = test.scans
    ordered_pool_map(lambda i: (_full_work, (scans[i],), None), full_done, len(scans), processes=True)

    def produce(k):   # the subsets are drawn in order, in this thread
        i, n, r = jobs[k]
        s = scans[i]
        on_idx, off_idx = np.flatnonzero(s.edit == ON), np.flatnonzero(s.edit == OFF)
        if n > min(len(on_idx), len(off_idx)):
            raise InputError(s.subject, f"preset needs {n} transients per condition, scan has fewer")
        sel = np.sort(np.r_[rng.choice(on_idx, n, replace=False), rng.choice(off_idx, n, replace=False)])
        sels.append(sel)
        # the noise of the real transients that synthetic ones are compared with (where the scan is filled up)
        return _subset_work, (s.select(sel), full[i], pr.full_count > n), None

    def consume(k, res, _):
        ps, q, nz, key = res   # (key: for SharedWork.remember_subsets, which the harness calls)
        procs.append(ps)
        keys.append(key)
        sub_q.append(q)
        noise[k] = nz
    ordered_pool_map(produce, consume, len(jobs), desc="shared: real subsets" if progress else None, processes=True)
    first = procs[0]
    return dict(jobs=jobs, selections=sels, full=full, full_quality=full_q, subset_quality=sub_q,
                subset_noise=noise, first_subset=first, subset_processed=list(zip(keys, procs))), procs


QUANT_NAMES = ("gaba_cr", "gaba_cr_gannet", "glx_cr", "naa_cr", "cho_cr", "mi_cr")
_QUANTIFIERS: dict = {}


def fit_block(procs: list, axis) -> dict:
    """LCM (OFF and DIFF) and Gannet-style fits of processed scans, batched. Returns name -> (B,) arrays:
    the estimates of QUANT_NAMES and the OFF fit's health (converged, shape_at_bound, iterations)."""
    from mrsbench.fitting.gannet import gannet_fits
    from mrsbench.fitting.quantify import Quantifier, lcm_ratios

    if axis not in _QUANTIFIERS:   # building the basis and the fitters costs seconds: once per axis
        _QUANTIFIERS[axis] = Quantifier(axis)
    q = _QUANTIFIERS[axis]
    off = np.stack([p.spectra()["off"] for p in procs])
    diff = np.stack([p.spectra()["diff"] for p in procs])
    # DIFF with each scan's own editing: ON at the frequency offsets its transients were acquired at
    ro, rd = q.fit(off, diff, on_offsets=[p.on_offsets_hz() for p in procs])
    lr = lcm_ratios(ro, rd)
    gg = gannet_fits(off, diff, axis)["gabaglx_cr"]
    # headline GABA+/tCr from the LCM; the Gannet-style estimate (GABAGlx, Gannet's default) alongside
    est = {"gaba_cr": lr["GABA+"], "gaba_cr_gannet": gg, "glx_cr": lr["Glx"], "naa_cr": lr["tNAA"],
           "cho_cr": lr["tCho"], "mi_cr": lr["mI"]}
    # OFF fits that did not converge, or whose metabolite line shape ended at a bound (see LCMFitter)
    est.update(converged=np.asarray(ro.converged, bool), shape_at_bound=np.asarray(q.off.shape_at_bound(ro)[:, 0], bool),
               iterations=np.asarray(ro.iterations, float))
    return {k: np.asarray(v) for k, v in est.items()}


def truth_of_test(cohort: Cohort, extras: dict, test: Cohort) -> list | None:
    """The noise-free truth DIFF (real part, (N,)) of each test subject of a simulated dataset, else None."""
    clean = (extras or {}).get("clean")
    if clean is None or len(clean) != len(cohort.scans):
        return None
    idx = {s: i for i, s in enumerate(cohort.subjects)}
    ax = cohort.axis
    return [ax.to_spectrum(clean[idx[s], 0] - clean[idx[s], 1]).real for s in test.subjects]
