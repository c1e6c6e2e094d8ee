"""Resampling statistics over subjects: bootstrap weights, percentile intervals, paired sign-flip
permutation tests and the Holm correction. Pure functions on arrays; no I/O.

References: Efron & Tibshirani (1993) An Introduction to the Bootstrap, ch. 13 (percentile interval);
Good (2005) Permutation, Parametric and Bootstrap Tests of Hypotheses, sec. 3.3 (paired one-sample
permutation test by sign flips / swaps within pairs: exact under exchangeability of the pair);
Holm (1979) Scand J Stat 6:65-70 (step-down family-wise error control).
"""
from __future__ import annotations

import numpy as np

ALPHA = 0.05          # two-sided level of every interval and test
N_BOOT = 1000         # bootstrap replicates
N_PERM = 1999         # random swap patterns when exact enumeration is too large (plus the observed one)
EXACT_MAX_UNITS = 11  # enumerate all 2^U swap patterns up to U = 11 (2048)


def bootstrap_weights(n_units: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_units) multinomial counts: how often each unit is drawn in each replicate (sum n_units)."""
    return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot).astype(float)


def percentile_interval(values: np.ndarray, alpha: float = ALPHA) -> tuple[float, float] | None:
    """Percentile bootstrap interval of replicate values (non-finite replicates ignored); None when fewer
    than half of them are finite."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) < max(2, len(values) // 2):
        return None
    lo, hi = np.percentile(v, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def swap_patterns(n_units: int, rng: np.random.Generator, n_perm: int = N_PERM,
                  exact_max: int = EXACT_MAX_UNITS) -> np.ndarray:
    """(P, n_units) 0/1 swap patterns for a paired permutation test; row 0 is the observed data (no swap).
    All 2^U patterns when U <= ``exact_max`` (an exact test), else row 0 plus ``n_perm`` random ones."""
    if n_units <= exact_max:
        idx = np.arange(2 ** n_units)
        return ((idx[:, None] >> np.arange(n_units)[None, :]) & 1).astype(float)
    rand = rng.integers(0, 2, size=(n_perm, n_units)).astype(float)
    return np.vstack([np.zeros((1, n_units)), rand])


def permutation_p(stat: np.ndarray, exact: bool) -> float | None:
    """Two-sided p-value from the statistic under each swap pattern (``stat[0]``: observed).
    Exact: the share of patterns at least as extreme; Monte Carlo: (1 + count) / (1 + P) (Phipson & Smyth 2010)."""
    t = np.asarray(stat, float)
    if not np.isfinite(t[0]):
        return None
    t = np.where(np.isfinite(t), t, np.inf)   # a pattern whose statistic cannot be computed counts as extreme
    obs = abs(t[0])
    tol = 1e-12 * max(1.0, obs)
    extreme = np.abs(t) >= obs - tol
    if exact:
        return float(np.mean(extreme))
    return float((1 + np.sum(extreme[1:])) / len(t))


def holm(pvalues: list) -> list:
    """Holm step-down adjusted p-values (None stays None; the family is the non-None p-values)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    out: list = [None] * len(pvalues)
    run = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda j: pvalues[j])):
        run = max(run, min(1.0, (m - rank) * pvalues[i]))
        out[i] = run
    return out


def badness(v: np.ndarray, direction) -> np.ndarray:
    """Smaller is better: -v for "higher", v for "lower", |v - target| for a target value."""
    v = np.asarray(v, float)
    if direction == "higher":
        return -v
    if direction == "lower":
        return v
    return np.abs(v - float(direction))
