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

from .data import OFF, ON, Cohort
from .errors import InputError
from .processing import Processed
from .protocol import HARNESS_VERSION, Preset

SHARED_FORMAT = 3
NOISE_PPM = (9.8, 10.8)  # signal-free band for the noise ratio of synthetic vs real transients
# subset-alone quality curve: real transients per condition (the Big GABA scan has 160; the grid)
N_GRID = (5, 10, 20, 40, 80, 160)
# failure rule (documented in the README): the ON-to-OFF correction of a processed scan beyond these is an
# alignment failure. After each condition is put at its median transient's frequency, ON and OFF of one scan
# differ by the drift between interleaved transients (< 0.1 Hz at Big GABA drift rates) plus estimation
# error (a few tenths of a Hz on 10-transient subsets here): 3 Hz (0.023 ppm) and 45 degrees are far outside both.
ALIGN_MAX_HZ = 3.0
ALIGN_MAX_RAD = np.deg2rad(45.0)
NOISE_FREE_RATIO = 0.1   # synthetic/real noise below this: the transients are (nearly) noise-free


def features(fids: np.ndarray, axis, ppm) -> np.ndarray:
    """Real and imaginary spectrum within ``ppm`` (T, 2M): the raw features the PCA feature space is fitted on."""
    s = axis.to_spectrum(fids)[:, axis.window(*ppm)]
    return np.concatenate([s.real, s.imag], 1)


def tqdm_if(it, desc, total=None, enabled=True):
    if not enabled:
        return it
    from tqdm import tqdm
    return tqdm(it, desc=desc, total=total, leave=False)


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
    from .datasets import load_dataset
    cohort, extras = load_dataset(dataset, progress=progress, edit_order=edit_order, basis=basis, with_extras=True)
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
    import os
    from .physics.basis import cache_dir
    d = os.environ.get("MRSBENCH_SHARED_DIR")
    return (Path(d) if d else cache_dir() / "shared") / f"{key}.pkl"


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
            from ._files import atomic_path
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
    real, cond_idx, lab = [], [], []
    for i, s in enumerate(test.scans):   # the same draws, in the same order, as the generator-side loop needs
        real.append(s.fids[rng.choice(s.n_transients, min(2 * per, s.n_transients), replace=False)])
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap
        um = umap.UMAP(n_neighbors=pr.umap_neighbors, n_epochs=pr.umap_epochs, random_state=seed, n_jobs=1).fit(R)
    return dict(feat_pca=pca, real=R, cond_idx=cond_idx, per_subject=per, train_sub=t_sub, held_sub=H[h_pick],
                umap=um, umap_real=np.asarray(um.embedding_), real_subject=np.concatenate(lab)[:n],
                held_subject=h_lab[h_pick])


def subset_jobs(test: Cohort, pr: Preset) -> list:
    return [(i, n, r) for i in range(len(test.scans)) for n in pr.n_values for r in range(pr.n_subsets)]


def _application_real(test: Cohort, pr: Preset, seed: int, progress: bool) -> dict:
    from .processing import process
    from .qc import quality_report

    rng = np.random.default_rng(seed + 2)
    ax = test.axis
    wn = ax.window(*NOISE_PPM)
    jobs = subset_jobs(test, pr)
    full = [None] * len(test.scans)
    full_q = [None] * len(test.scans)
    sels, sub_q, noise, procs = [], [], np.full(len(jobs), np.nan), []

    def full_work(s):
        p = process(s)
        return p, quality_report(p, p, osprey=False)

    def full_done(i, res, _):
        full[i], full_q[i] = res
    scans = test.scans
    ordered_pool_map(lambda i: (full_work, (scans[i],), None), full_done, len(scans))

    def work(sub, ref, fill):
        ps = process(sub)
        nz = np.median(ax.to_spectrum(sub.fids)[:, wn].real.std(1)) if fill else np.nan
        return ps, quality_report(ps, ref, osprey=False), nz

    def produce(k):   # the subsets are drawn in order, in this thread
        i, n, r = jobs[k]
        s = scans[i]
        on_idx, off_idx = np.flatnonzero(s.edit == ON), np.flatnonzero(s.edit == OFF)
        if n > min(len(on_idx), len(off_idx)):
            raise InputError(s.subject, f"preset needs {n} transients per condition, scan has fewer")
        sel = np.sort(np.r_[rng.choice(on_idx, n, replace=False), rng.choice(off_idx, n, replace=False)])
        sels.append(sel)
        # the noise of the real transients that synthetic ones are compared with (where the scan is filled up)
        return work, (s.select(sel), full[i], pr.full_count > n), None

    def consume(k, res, _):
        ps, q, nz = res
        procs.append(ps)
        sub_q.append(q)
        noise[k] = nz
    ordered_pool_map(produce, consume, len(jobs), desc="shared: real subsets" if progress else None)
    first = procs[0]
    return dict(jobs=jobs, selections=sels, full=full, full_quality=full_q, subset_quality=sub_q,
                subset_noise=noise, first_subset=first), procs


QUANT_NAMES = ("gaba_cr", "gaba_cr_gannet", "glx_cr", "naa_cr", "cho_cr", "mi_cr")
_QUANTIFIERS: dict = {}


def fit_block(procs: list, axis) -> dict:
    """LCM (OFF and DIFF) and Gannet-style fits of processed scans, batched. Returns name -> (B,) arrays:
    the estimates of QUANT_NAMES and the OFF fit's health (converged, shape_at_bound, iterations)."""
    from .fitting.gannet import gannet_fits
    from .fitting.quantify import Quantifier, lcm_ratios

    if axis not in _QUANTIFIERS:   # building the basis and the fitters costs seconds: once per axis
        _QUANTIFIERS[axis] = Quantifier(axis)
    q = _QUANTIFIERS[axis]
    off = np.stack([p.spectra()["off"] for p in procs])
    diff = np.stack([p.spectra()["diff"] for p in procs])
    ro, rd = q.fit(off, diff)
    lr = lcm_ratios(ro, rd)
    gg = gannet_fits(off, diff, axis)["gabaglx_cr"]
    # headline GABA+/tCr from the LCM; the Gannet-style estimate (GABAGlx, Gannet's default) alongside
    est = {"gaba_cr": lr["GABA+"], "gaba_cr_gannet": gg, "glx_cr": lr["Glx"], "naa_cr": lr["tNAA"],
           "cho_cr": lr["tCho"], "mi_cr": lr["mI"]}
    # OFF fits that did not converge, or whose metabolite line shape ended at a bound (see LCMFitter)
    est.update(converged=np.asarray(ro.converged, bool), shape_at_bound=np.asarray(q.off.shape_at_bound(ro)[:, 0], bool),
               iterations=np.asarray(ro.iterations, float))
    return {k: np.asarray(v) for k, v in est.items()}


def worker_threads() -> int:
    """Threads for processing scans in parallel: $MRSBENCH_THREADS (a sweep sets it to the CPUs of its task),
    else the CPUs this process may use."""
    import os
    v = os.environ.get("MRSBENCH_THREADS")
    if v:
        return max(1, int(v))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # not on Linux
        return max(1, os.cpu_count() or 1)


def ordered_pool_map(produce, consume, n_items: int, threads: int | None = None, desc: str | None = None):
    """For k in range(n_items): ``work = produce(k)`` in this thread (in order: generator sampling and random
    draws stay sequential and deterministic), then ``fn(*args)`` of the returned ``(fn, args, extra)`` runs on a
    pool of threads (numpy and scipy.fft release the GIL), and ``consume(k, result, extra)`` is called in order
    of k. At most 2 x threads items are in flight, so memory stays bounded. ``desc``: a progress bar."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor
    threads = threads or worker_threads()
    bar = None
    if desc and n_items:
        from tqdm import tqdm
        bar = tqdm(total=n_items, desc=desc, leave=False)

    def done(j, res, extra):
        consume(j, res, extra)
        if bar is not None:
            bar.update(1)
    try:
        if threads <= 1:
            for k in range(n_items):
                fn, args, extra = produce(k)
                done(k, fn(*args), extra)
            return
        with ThreadPoolExecutor(threads) as ex:
            q = deque()
            for k in range(n_items):
                fn, args, extra = produce(k)
                q.append((k, ex.submit(fn, *args), extra))
                while len(q) > 2 * threads:
                    done(*_pop(q))
            while q:
                done(*_pop(q))
    finally:
        if bar is not None:
            bar.close()


def _pop(q):
    j, fut, extra = q.popleft()
    return j, fut.result(), extra


# --- failure rule, truth scores, the subset-alone curve -------------------------------------------

def processing_failed(p: Processed) -> bool:
    """A processed scan that must not be averaged in: non-finite averages, or an ON-to-OFF correction
    beyond ALIGN_MAX_HZ / ALIGN_MAX_RAD (the alignment left the plausible range)."""
    if not (np.all(np.isfinite(p.on)) and np.all(np.isfinite(p.off))):
        return True
    return bool(abs(p.info.get("on_to_off_hz", 0.0)) > ALIGN_MAX_HZ or abs(p.info.get("on_to_off_rad", 0.0)) > ALIGN_MAX_RAD)


def fit_failed(fits: dict) -> np.ndarray:
    """Per fit of a :func:`fit_block`: OFF fit not converged, metabolite line shape at a bound, or GABA+/tCr
    not finite or <= 0."""
    g = np.asarray(fits["gaba_cr"], float)
    return ~np.asarray(fits["converged"], bool) | np.asarray(fits["shape_at_bound"], bool) | ~np.isfinite(g) | (g <= 0)


def truth_quality(p: Processed, truth_real: np.ndarray) -> dict:
    """Challenge shape score and MSE of a processed DIFF against the noise-free truth DIFF (real, (N,))."""
    from .metrics import quality as q
    d = p.spectra()["diff"].real
    return {"shape_score": q.shape_score(d, truth_real, p.axis), "mse": q.challenge_mse(d, truth_real, p.axis)}


def curve_grid(test: Cohort, pr: Preset) -> tuple:
    counts = [min(int(np.sum(s.edit == ON)), int(np.sum(s.edit == OFF))) for s in test.scans]
    top = min(min(counts), pr.full_count)
    return tuple(sorted({g for g in N_GRID if g < top} | {top}))


def _curve_real(test: Cohort, pr: Preset, seed: int, full: list, progress: bool):
    """Subsets for the grid n the preset does not already draw (its own random stream, seed + 3)."""
    from .processing import process
    from .qc import quality_report

    grid = curve_grid(test, pr)
    top = grid[-1]
    extra = [g for g in grid if g not in pr.n_values and g < top]
    rng = np.random.default_rng(seed + 3)
    jobs = [(i, n, r) for i in range(len(test.scans)) for n in extra for r in range(pr.n_subsets)]
    qual, procs = [], []

    def work(sub, ref):
        ps = process(sub)
        return ps, quality_report(ps, ref, osprey=False)

    def produce(k):
        i, n, _ = jobs[k]
        s = test.scans[i]
        on_idx, off_idx = np.flatnonzero(s.edit == ON), np.flatnonzero(s.edit == OFF)
        sel = np.sort(np.r_[rng.choice(on_idx, n, replace=False), rng.choice(off_idx, n, replace=False)])
        return work, (s.select(sel), full[i]), None

    def consume(k, res, _):
        procs.append(res[0])
        qual.append(res[1])
    ordered_pool_map(produce, consume, len(jobs), desc="shared: subset-alone curve" if progress else None)
    return dict(grid=grid, curve_jobs=jobs, curve_quality=qual,
                curve_failed=np.array([processing_failed(p) for p in procs], bool)), procs


def subset_curve(sw: SharedWork) -> dict:
    """The subset-alone scores at every grid n: {n: {"shape_score", "mse", "gaba_err" [, "shape_score_truth",
    "mse_truth"], "failed", "subject"}: arrays over (subject, repeat)}. n from the preset come from its own subsets, the
    largest n is the full scan itself (shape score 1, error 0 against itself), the rest from the curve jobs.
    gaba_err: 100 |GABA+/tCr - full| / full (%); a failed fit counts as failed there."""
    out = {}
    top = sw.grid[-1]
    jobs_n = np.array([n for _, n, _ in sw.jobs])
    cjobs_n = np.array([n for _, n, _ in sw.curve_jobs]) if sw.curve_jobs else np.zeros(0, int)
    full_g = sw.full_fits["gaba_cr"]
    full_bad = fit_failed(sw.full_fits)
    truth = sw.truth_diff is not None
    for g in sw.grid:
        if g == top:
            idx = np.arange(len(sw.full))
            q, tq = sw.full_quality, sw.full_truth_q
            gaba, subj = full_g, idx
            failed = np.zeros(len(idx), bool)   # the full scan is the reference itself
            rows = [(q[i], tq[i] if truth else None) for i in idx]
        else:
            src_jobs = g in set(jobs_n.tolist())
            idx = np.flatnonzero(jobs_n == g) if src_jobs else np.flatnonzero(cjobs_n == g)
            jobs = sw.jobs if src_jobs else sw.curve_jobs
            q = sw.subset_quality if src_jobs else sw.curve_quality
            tq = (sw.subset_truth_q if src_jobs else sw.curve_truth_q) if truth else None
            fits = sw.subset_fits if src_jobs else sw.curve_fits
            pf = sw.subset_failed if src_jobs else sw.curve_failed
            subj = np.array([jobs[k][0] for k in idx], int)
            gaba = np.asarray(fits["gaba_cr"])[idx]
            failed = pf[idx]
            gfail = failed | fit_failed({k: np.asarray(v)[idx] for k, v in fits.items()})
            rows = [(q[k], tq[k] if truth else None) for k in idx]
        d = {"shape_score": np.array([r[0]["shape_score"] for r in rows]), "mse": np.array([r[0]["mse"] for r in rows])}
        with np.errstate(divide="ignore", invalid="ignore"):
            err = 100 * np.abs(gaba - full_g[subj]) / full_g[subj]
        if g != top:
            err = np.where(gfail | full_bad[subj], np.nan, err)
        else:
            err = np.where(full_bad, np.nan, 0.0)
        d["gaba_err"] = err
        if truth:
            d["shape_score_truth"] = np.array([r[1]["shape_score"] for r in rows])
            d["mse_truth"] = np.array([r[1]["mse"] for r in rows])
        d["failed"] = np.asarray(failed, bool)
        d["subject"] = np.asarray(subj, int)
        out[g] = d
    return out


def truth_of_test(cohort: Cohort, extras: dict, test: Cohort) -> list | None:
    """The noise-free truth DIFF (real part, (N,)) of each test subject of a simulated dataset, else None."""
    clean = (extras or {}).get("clean")
    if clean is None or len(clean) != len(cohort.scans):
        return None
    idx = {s: i for i, s in enumerate(cohort.subjects)}
    ax = cohort.axis
    return [ax.to_spectrum(clean[idx[s], 0] - clean[idx[s], 1]).real for s in test.subjects]
