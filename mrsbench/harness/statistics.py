"""Headline metrics recomputed from per-subject statistics: confidence intervals, paired tests and rank
stability over test subjects (and seeds).

Every results file stores, per test subject, the additive pieces of the board's headline columns
(``per_subject.stats``: sums and counts over the subject's jobs, the subject's reconstruction error and
power, and for the two-sample statistics of the embedding family delete-one-subject jackknife
pseudo-values). A column is a fixed function of the subject-weighted sums of these pieces, so that

* with every weight 1 it is the metric the harness reports (tested);
* with multinomial weights it is one bootstrap replicate over subjects (Efron & Tibshirani 1993);
* with the pieces of two models swapped for some subjects it is one pattern of a paired permutation test
  (every model is scored on the same subjects, subsets and conditioning transients, so under "no
  difference" the two models' pieces of a subject are exchangeable).

Columns of the embedding family (precision, recall, coverage, C2ST AUC, MMD², memorisation) are pooled
two-sample statistics that do not split into per-subject sums; their replicates move the reported value by
the change in the mean jackknife pseudo-value (its interval has the jackknife standard error's width), and
their tests compare mean pseudo-values.
"""
from __future__ import annotations

import numpy as np

from mrsbench.metrics.effective import break_even_batch, invert_curve_batch
from mrsbench.metrics.resampling import ALPHA, N_BOOT, badness, bootstrap_weights, holm, percentile_interval, permutation_p, swap_patterns

PV = "embedding.pv."
_UNIT_RANGE = {"embedding.precision", "embedding.recall", "embedding.coverage", "embedding.classifier_auc"}  # in [0, 1]   # prefix of jackknife pseudo-values among the per-subject statistics
_PV_COLUMNS = {"embedding.precision", "embedding.recall", "embedding.coverage", "embedding.classifier_auc",
               "embedding.mmd2", "embedding.memorisation_ratio"}


def load_stats(doc: dict) -> dict | None:
    """The per-subject statistics of a results document as float arrays with the subject on axis 0 (None
    when the document has none). Pseudo-values become ``.sum`` (0 where missing) and ``.count`` pieces."""
    ps = doc.get("per_subject")
    if not isinstance(ps, dict) or not isinstance(ps.get("stats"), dict) or not ps.get("subject"):
        return None
    out = {}
    for k, v in ps["stats"].items():
        a = np.array(v, dtype=float)
        if k.startswith(PV):
            out[k + ".sum"] = np.nan_to_num(a, nan=0.0)
            out[k + ".count"] = np.isfinite(a).astype(float)
        else:
            out[k] = a
    return out


def grid_of(metrics: dict) -> list[int]:
    """The subset-alone curve's grid of n (from the ``application.curve.n{g}.shape_score`` keys)."""
    return sorted(int(k.split(".")[2][1:]) for k in metrics if k.startswith("application.curve.n")
                  and k.endswith(".shape_score"))


def weighted_sums(stats: dict, W: np.ndarray) -> dict:
    """{piece: (P, ...)}: the sums of each per-subject piece under the weights W (P, S)."""
    return {k: np.tensordot(W, v, axes=(1, 0)) for k, v in stats.items()}


def _ratio(T: dict, name: str) -> np.ndarray | None:
    a, b = T.get(name + ".sum"), T.get(name + ".count")
    if a is None or b is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def columns_from_sums(T: dict, n_values, grid, metrics: dict | None = None, pv_mode: str = "shift",
                      pv_centre: dict | None = None) -> dict:
    """The headline columns {metric key: (P,)} from weighted sums T (:func:`weighted_sums`).

    ``pv_mode``: "shift" reports a pseudo-value column as the document's metric plus the change of the mean
    pseudo-value from its all-subjects mean ``pv_centre`` (for intervals); "mean" reports the mean
    pseudo-value (for tests)."""
    out: dict = {}
    P = len(next(iter(T.values())))
    cs, cg = _ratio(T, "application.curve_shape"), _ratio(T, "application.curve_gaba_err")
    aug_s, aug_g = _ratio(T, "application.aug_shape"), _ratio(T, "application.aug_gaba_err")
    if cs is not None and aug_s is not None and len(grid) >= 2:
        gains = np.full((P, len(n_values)), np.nan)
        for j, n in enumerate(n_values):
            eff = invert_curve_batch(grid, cs, aug_s[:, j])
            eff = np.where(T["application.aug_shape.count"][:, j] > 0, eff, float(grid[0]))  # all failed: least n
            out[f"application.n{n}.effective_n"] = eff
            out[f"application.n{n}.gain"] = gains[:, j] = eff / n
            eg = invert_curve_batch(grid, cg, aug_g[:, j], increasing=False)
            eg = np.where(T["application.aug_gaba_err.count"][:, j] > 0, eg, float(grid[0]))
            out[f"application.n{n}.effective_n_gaba"] = eg
            out[f"application.n{n}.gain_gaba"] = eg / n
        be = break_even_batch(n_values, gains)
        # helps at every n: the largest n tested (censored)
        helps = np.isnan(be) & np.all(np.isfinite(gains), 1)
        out["application.break_even_n"] = np.where(helps, float(max(n_values)), be)
    snr = _ratio(T, "application.snr_ratio")
    if snr is not None:
        import warnings
        with warnings.catch_warnings():   # a replicate where every n failed: NaN, silently
            warnings.simplefilter("ignore", RuntimeWarning)
            out["application.snr_inflation"] = np.nanmean(snr, axis=1)
    ns, nr = _ratio(T, "application.noise_syn"), _ratio(T, "application.noise_real")
    if ns is not None and nr is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["application.noise_ratio"] = ns / nr
    cn = _ratio(T, "application.copied_noise")   # numerators / denominators of the probes (metrics.copied)
    if cn is not None:
        out["application.copied_noise"] = cn
    for key, piece in (("quantification.gaba_cr.bias.augmented", "quantification.gaba_bias_aug"),
                       ("quantification.failure_rate.augmented", "quantification.failed_aug")):
        r = _ratio(T, piece)
        if r is not None:
            out[key] = r
    if "reconstruction.err_window.sum" in T:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["reconstruction.nmse_1.8-4.2ppm"] = T["reconstruction.err_window.sum"] / T["reconstruction.power_window.sum"]
    for key in _PV_COLUMNS:
        r = _ratio(T, PV + key.split(".", 1)[1])
        if r is None:
            continue
        if pv_mode == "mean":
            out[key] = r
        else:
            theta = (metrics or {}).get(key)
            full = (pv_centre or {}).get(PV + key.split(".", 1)[1], np.nan)
            v = np.full(P, np.nan) if theta is None else theta + (r - full)
            out[key] = np.clip(v, 0.0, 1.0) if key in _UNIT_RANGE else v
    return out


def pv_centres(stats: dict) -> dict:
    """{pseudo-value piece: its mean over all subjects} (the centre that shifted replicates move from)."""
    out = {}
    for k in stats:
        if k.startswith(PV) and k.endswith(".sum"):
            name = k[:-4]
            c = stats[name + ".count"].sum()
            out[name] = stats[k].sum() / c if c > 0 else np.nan
    return out


def doc_columns(doc: dict, stats: dict, W: np.ndarray, pv_mode: str = "shift") -> dict:
    """Headline columns of one results document under subject weights W (P, S)."""
    return columns_from_sums(weighted_sums(stats, W), doc["preset"]["n_values"], grid_of(doc["metrics"]),
                             doc["metrics"], pv_mode, pv_centres(stats))


def run_intervals(doc: dict, n_boot: int = N_BOOT) -> dict:
    """{metric: [low, high]}: 95% percentile bootstrap intervals over the run's test subjects of its headline
    columns (seeded by the run's seed: the same results give the same intervals)."""
    stats = load_stats(doc)
    if stats is None:
        return {}
    S = len(doc["per_subject"]["subject"])
    rng = np.random.default_rng([int(doc.get("seed", 0)), 21])
    reps = doc_columns(doc, stats, bootstrap_weights(S, n_boot, rng))
    out = {}
    for k, v in sorted(reps.items()):
        ci = percentile_interval(v)
        out[k] = None if ci is None else [round(ci[0], 6), round(ci[1], 6)]
    return out


def jsonable(a) -> list:
    """Nested lists of an array for a results file: 12 significant digits, None where not finite."""
    a = np.asarray(a, float)
    if a.ndim == 0:
        return None if not np.isfinite(a) else float(f"{float(a):.12g}")
    return [jsonable(x) for x in a]


# --- boards: intervals over subjects and seeds, paired tests, rank stability ----------------------------

def _usable(docs: list[dict]) -> dict:
    """{seed: (doc, stats, subjects)} of the documents that carry per-subject statistics."""
    out = {}
    for d in docs:
        st = load_stats(d)
        if st is not None:
            out[d["seed"]] = (d, st, list(d["per_subject"]["subject"]))
    return out


def _raw_ranks(bad: np.ndarray) -> np.ndarray:
    """Competition ranks along the last axis of badness values (..., M): 1 + number strictly better; NaN
    stays NaN."""
    b = np.asarray(bad, float)
    better = (b[..., None, :] < b[..., :, None] - 1e-12 * np.maximum(1, np.abs(b[..., :, None])))
    r = 1.0 + np.sum(better & np.isfinite(b[..., None, :]), axis=-1)
    return np.where(np.isfinite(b), r, np.nan)


def _overall(ranks: dict, columns: list, families) -> np.ndarray:
    """Mean over families of the mean column rank ((..., M) per column) -> (..., M)."""
    fam = []
    for f in families:
        rk = [ranks[k] for k, _, _, cf in columns if cf == f and k in ranks]
        if rk:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                fam.append(np.nanmean(np.stack(rk), axis=0))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(fam), axis=0)


def board_statistics(docs_by_model: dict, columns: list, families, n_boot: int = N_BOOT, alpha: float = ALPHA,
                     seed: int = 0, main: str | None = None, contestants: list | None = None) -> dict:
    """Intervals, paired tests, significance-aware ranks and rank stability of a board.

    ``docs_by_model``: {model: [results documents, one per seed]}; ``columns``: (key, label, direction, family).
    Returns {"ci": {model: {key: [lo, hi]}}, "tests": {key: [{"a", "b", "p", "p_holm", "significant",
    "better"}]}, "ranks": {model: {key: rank}}, "rank_stability": {...}, "method": text}.

    Intervals: 95% percentile bootstrap, seeds drawn with replacement (when there are several) and within each
    drawn seed its test subjects drawn with replacement (one subject draw per seed and replicate). Tests: per
    column and pair of models, a paired permutation test over subjects (a subject's pieces swapped between the
    two models in every seed both ran; exact up to 11 subjects, else 1999 random swaps), Holm-corrected over
    the pairs of the column. A model's rank in a column is 1 + the number of models significantly better.
    Rank stability: how often each model tops the board over the bootstrap replicates: by the ``main`` column
    among ``contestants`` (the board's main question; default: every model) when given, else by the raw ranks
    averaged within and then over families."""
    models = sorted(docs_by_model)
    use = {m: _usable(docs_by_model[m]) for m in models}
    seeds = sorted({s for m in models for s in use[m]})
    keys = [k for k, _, _, _ in columns]
    direc = {k: d for k, _, d, _ in columns}
    out: dict = {"ci": {m: {} for m in models}, "tests": {k: [] for k in keys}, "ranks": {m: {} for m in models},
                 "rank_stability": None, "alpha": alpha, "n_boot": n_boot}
    observed = {m: {k: np.mean([d["metrics"][k] for d in docs_by_model[m] if d["metrics"].get(k) is not None])
                    if any(d["metrics"].get(k) is not None for d in docs_by_model[m]) else np.nan for k in keys}
                for m in models}
    rng = np.random.default_rng([seed, 21, 1])
    subj = {}
    for s in seeds:
        lists = {tuple(use[m][s][2]) for m in models if s in use[m]}
        if len(lists) > 1:   # models saw different subjects under one seed: not comparable on that seed
            for m in models:
                use[m].pop(s, None)
            continue
        subj[s] = list(next(iter(lists)))
    seeds = sorted(subj)
    reps = {m: {} for m in models}
    if seeds:
        C = rng.multinomial(len(seeds), np.full(len(seeds), 1 / len(seeds)), size=n_boot).astype(float) \
            if len(seeds) > 1 else np.ones((n_boot, 1))
        W = {s: bootstrap_weights(len(subj[s]), n_boot, rng) for s in seeds}
        for m in models:
            vals = {s: doc_columns(use[m][s][0], use[m][s][1], W[s]) for s in seeds if s in use[m]}
            for k in keys:
                num = np.zeros(n_boot)
                den = np.zeros(n_boot)
                for j, s in enumerate(seeds):
                    if s in vals and k in vals[s]:
                        v = vals[s][k]
                        num += np.where(C[:, j] > 0, C[:, j] * v, 0.0)
                        den += C[:, j]
                if den.any():
                    with np.errstate(invalid="ignore", divide="ignore"):
                        reps[m][k] = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
                    ci = percentile_interval(reps[m][k], alpha)
                    out["ci"][m][k] = None if ci is None else [float(f"{ci[0]:.6g}"), float(f"{ci[1]:.6g}")]
    # paired permutation tests, Holm over the pairs of each column
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    for a, b in pairs:
        common = [s for s in seeds if s in use[a] and s in use[b]]
        res = _paired_test(use[a], use[b], common, subj, keys, direc, rng) if common else {}
        for k in keys:
            p, sign = res.get(k, (None, 0))
            out["tests"][k].append({"a": a, "b": b, "p": p, "better": a if sign < 0 else b if sign > 0 else None})
    for k in keys:
        adj = holm([t["p"] for t in out["tests"][k]])
        for t, pa in zip(out["tests"][k], adj):
            t["p_holm"] = pa
            t["significant"] = bool(pa is not None and pa < alpha)
    for k in keys:
        obs = {m: observed[m][k] for m in models}
        for m in models:
            if not np.isfinite(obs[m]):
                continue
            worse_than = 0
            for t in out["tests"][k]:
                if m not in (t["a"], t["b"]):
                    continue
                other = t["b"] if t["a"] == m else t["a"]
                if not np.isfinite(obs[other]):
                    continue
                if t["p"] is None:   # untested (no per-subject statistics): the plain order
                    worse_than += int(badness(obs[other], direc[k]) < badness(obs[m], direc[k]))
                else:
                    worse_than += int(t["significant"] and t["better"] == other)
            out["ranks"][m][k] = 1 + worse_than
    # rank stability over the bootstrap replicates
    if seeds and len(models) > 1 and all(reps[m] for m in models):
        ranks_b = {}
        ranks_o = {}
        for k in keys:
            bad = np.stack([badness(reps[m].get(k, np.full(n_boot, np.nan)), direc[k]) for m in models], 1)
            ranks_b[k] = _raw_ranks(bad)
            ranks_o[k] = _raw_ranks(np.array([badness(observed[m][k], direc[k]) for m in models]))
        if main is not None and main in keys:
            who = [m for m in models if contestants is None or m in contestants]
            idx = [models.index(m) for m in who]
            ov_b = ranks_b[main][:, idx]
            ov_o = ranks_o[main][idx]
        else:
            who = models
            ov_b = _overall(ranks_b, columns, families)          # (B, M)
            ov_o = _overall(ranks_o, columns, families)          # (M,)
        if len(who) >= 2 and np.isfinite(ov_o).any():   # "on top" needs at least two contestants
            top_o = who[int(np.nanargmin(ov_o))]
            ok = np.all(np.isfinite(ov_b), 1)
            tops = np.array([who[int(np.argmin(r))] for r in ov_b[ok]])
            out["rank_stability"] = {"top": top_o, "replicates": int(ok.sum()), "column": main,
                                     "top_stays_top": float(np.mean(tops == top_o)) if ok.any() else None,
                                     "p_top": {m: float(np.mean(tops == m)) for m in who} if ok.any() else {}}
    return out


def _paired_test(A: dict, B: dict, seeds: list, subj: dict, keys: list, direc: dict, rng) -> dict:
    """{key: (p, sign)}: paired permutation test of models A and B over the subjects of ``seeds``; sign < 0
    when A is better on the observed data."""
    units = sorted({x for s in seeds for x in subj[s]})
    pos = {u: i for i, u in enumerate(units)}
    sw = swap_patterns(len(units), rng)
    exact = len(sw) == 2 ** len(units)
    va = {k: [] for k in keys}
    vb = {k: [] for k in keys}
    for s in seeds:
        (da, sa, _), (_, sb, _) = A[s], B[s]
        sig = sw[:, [pos[x] for x in subj[s]]]              # (P, S_s): 1 = swap this subject's pieces
        shared = [k for k in sa if k in sb]
        Ta = {k: np.tensordot(1 - sig, sa[k], (1, 0)) + np.tensordot(sig, sb[k], (1, 0)) for k in shared}
        Tb = {k: np.tensordot(sig, sa[k], (1, 0)) + np.tensordot(1 - sig, sb[k], (1, 0)) for k in shared}
        nv, grid = da["preset"]["n_values"], grid_of(da["metrics"])
        ca = columns_from_sums(Ta, nv, grid, pv_mode="mean")
        cb = columns_from_sums(Tb, nv, grid, pv_mode="mean")
        for k in keys:
            if k in ca and k in cb:
                va[k].append(ca[k])
                vb[k].append(cb[k])
    out = {}
    for k in keys:
        if not va[k]:
            continue
        stat = badness(np.mean(va[k], 0), direc[k]) - badness(np.mean(vb[k], 0), direc[k])
        p = permutation_p(stat, exact)
        out[k] = (p, 0 if p is None or stat[0] == 0 else int(np.sign(stat[0])))
    return out


def paired_comparison(docs_a: list[dict], docs_b: list[dict], columns: list, alpha: float = ALPHA) -> dict:
    """{key: {"p", "p_holm", "significant", "better": "a" | "b" | None}} for ``mrsbench compare``: the paired
    permutation test of each headline column over the subjects both sides were scored on (seeds both ran),
    Holm-corrected over the columns tested. Empty when either side lacks per-subject statistics or the two
    sides share no seed with the same test subjects."""
    A, B = _usable(docs_a), _usable(docs_b)
    seeds = [s for s in sorted(set(A) & set(B)) if A[s][2] == B[s][2]]
    if not seeds:
        return {}
    keys = [k for k, _, _, _ in columns]
    direc = {k: d for k, _, d, _ in columns}
    res = _paired_test(A, B, seeds, {s: A[s][2] for s in seeds}, keys, direc, np.random.default_rng([0, 21, 2]))
    tested = [k for k in keys if k in res and res[k][0] is not None]
    adj = holm([res[k][0] for k in tested])
    return {k: {"p": res[k][0], "p_holm": pa, "significant": bool(pa < alpha),
                "better": "a" if res[k][1] < 0 else "b" if res[k][1] > 0 else None} for k, pa in zip(tested, adj)}
