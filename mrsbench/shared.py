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

SHARED_FORMAT = 1
NOISE_PPM = (9.8, 10.8)  # signal-free band for the noise ratio of synthetic vs real transients


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

    @property
    def n_pairs(self) -> int:
        return len(self.real)


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


def shared_key(identity: str | None, split: dict, pr: Preset, seed: int) -> str:
    doc = {"format": SHARED_FORMAT, "harness": HARNESS_VERSION, "source": source_hash(), "identity": identity,
           "split": split, "protocol": pr.protocol_dict(), "seed": seed}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def cache_path(key: str) -> Path:
    from .physics.basis import cache_dir
    return cache_dir() / "shared" / f"{key}.pkl"


_MEMO: dict = {}   # in-process: the last few SharedWork objects by key


def get_shared(train: Cohort, test: Cohort, identity: str | None, split: dict, pr: Preset, seed: int,
               progress: bool = True, cache: bool = True) -> SharedWork:
    """The shared work of this cell: from memory, from the disk cache, or computed (and cached).
    A cache file that cannot be read is recomputed and replaced."""
    key = shared_key(identity, split, pr, seed)
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
        sw = compute_shared(train, test, pr, seed, key, progress)
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
                   progress: bool = True) -> SharedWork:
    emb = _embedding_real(train, test, pr, seed)
    app, subset_procs = _application_real(test, pr, seed, progress)
    full_fits = fit_block(app["full"], test.axis)
    subset_fits = fit_block(subset_procs, test.axis)
    return SharedWork(key=key, **emb, **app, full_fits=full_fits, subset_fits=subset_fits)


def _embedding_real(train: Cohort, test: Cohort, pr: Preset, seed: int) -> dict:
    import warnings

    from sklearn.decomposition import PCA

    axis = test.axis
    rng = np.random.default_rng(seed + 1)
    tr_raw = features(np.concatenate([s.fids for s in train.scans]), axis, pr.feature_ppm)
    pca = PCA(pr.feature_dim, random_state=seed).fit(tr_raw)
    feat = lambda f: pca.transform(features(f, axis, pr.feature_ppm))
    m = pr.embedding_samples
    per = max(1, int(np.ceil(m / (2 * len(test)))))
    real, cond_idx = [], []
    for s in test.scans:   # the same draws, in the same order, as the generator-side loop needs
        real.append(s.fids[rng.choice(s.n_transients, min(2 * per, s.n_transients), replace=False)])
        cond_idx.append(np.sort(rng.choice(s.n_transients, min(80, s.n_transients), replace=False)))
    R = feat(np.concatenate(real))[:m]
    n = min(len(R), m, 2 * per * len(test))   # synthetic features: per ON + per OFF per subject, at most m
    R = R[:n]
    H = feat(np.concatenate([s.fids for s in test.scans]))
    T = pca.transform(tr_raw)
    k = min(len(H), len(T))
    t_sub = T[rng.choice(len(T), k, replace=False)]
    h_sub = H[rng.choice(len(H), k, replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap
        um = umap.UMAP(n_neighbors=pr.umap_neighbors, n_epochs=pr.umap_epochs, random_state=seed, n_jobs=1).fit(R)
    return dict(feat_pca=pca, real=R, cond_idx=cond_idx, per_subject=per, train_sub=t_sub, held_sub=h_sub,
                umap=um, umap_real=np.asarray(um.embedding_))


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
    first = None
    for k, (i, n, r) in enumerate(tqdm_if(jobs, "application: real subsets", enabled=progress)):
        s = test.scans[i]
        if full[i] is None:
            full[i] = process(s)
            full_q[i] = quality_report(full[i], full[i], osprey=False)
        on_idx, off_idx = np.flatnonzero(s.edit == ON), np.flatnonzero(s.edit == OFF)
        if n > min(len(on_idx), len(off_idx)):
            raise InputError(s.subject, f"preset needs {n} transients per condition, scan has fewer")
        sel = np.sort(np.r_[rng.choice(on_idx, n, replace=False), rng.choice(off_idx, n, replace=False)])
        sub = s.select(sel)
        ps = process(sub)
        sels.append(sel)
        sub_q.append(quality_report(ps, full[i], osprey=False))
        if pr.full_count > n:   # the noise of the real transients that synthetic ones are compared with
            noise[k] = np.median(ax.to_spectrum(sub.fids)[:, wn].real.std(1))
        if first is None:
            first = ps
        procs.append(ps)
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
