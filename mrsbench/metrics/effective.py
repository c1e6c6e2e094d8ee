"""Effective transients: how many real transients a score is worth, read off the subset-alone quality curve.

The curve q(n) is the mean score of short scans of n real transients per condition (several random subsets
of every test subject) on a fixed grid of n. It is made monotone (pool-adjacent-violators, Ayer et al. 1955)
and inverted by linear interpolation in log n: ``effective_n(y)`` is the n whose subset alone scores y.
Outside the grid the answer is clipped to its ends and flagged (-1 below the smallest n, +1 above the largest).
Pure functions on arrays; no I/O.
"""
from __future__ import annotations

import numpy as np


def isotonic_increasing(y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Weighted least-squares non-decreasing fit to ``y`` (pool adjacent violators)."""
    y = np.asarray(y, float)
    w = np.ones_like(y) if w is None else np.asarray(w, float)
    vals, wts, counts = [], [], []
    for yi, wi in zip(y, w):
        vals.append(yi)
        wts.append(wi)
        counts.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            v2, w2, c2 = vals.pop(), wts.pop(), counts.pop()
            v1, w1, c1 = vals.pop(), wts.pop(), counts.pop()
            vals.append((v1 * w1 + v2 * w2) / (w1 + w2))
            wts.append(w1 + w2)
            counts.append(c1 + c2)
    return np.repeat(vals, counts)


def invert_curve(n_grid, curve, y: float, increasing: bool = True) -> tuple[float, int]:
    """The n at which the monotone version of ``curve`` (scores at ``n_grid``, ascending n) reaches ``y``:
    (effective n, clip flag). ``increasing=False`` for scores that fall with n (errors). Flag -1: y is worse
    than the curve at the smallest n (answer: that n); +1: better than at the largest n (answer: that n).
    On a flat stretch the smallest n that reaches y is returned. NaN when y or the curve is not finite."""
    n = np.asarray(n_grid, float)
    c = np.asarray(curve, float)
    if not np.isfinite(y) or not np.all(np.isfinite(c)) or len(n) < 2 or np.any(np.diff(n) <= 0):
        return float("nan"), 0
    s = 1.0 if increasing else -1.0
    m = isotonic_increasing(s * c)
    v = s * y
    if v < m[0]:
        return float(n[0]), -1
    if v > m[-1]:
        return float(n[-1]), 1
    if v == m[0]:
        return float(n[0]), 0
    i = int(np.searchsorted(m, v, side="left"))   # first grid point with m >= v; m[i-1] < v <= m[i]
    ln = np.log(n)
    frac = (v - m[i - 1]) / (m[i] - m[i - 1])
    return float(np.exp(ln[i - 1] + frac * (ln[i] - ln[i - 1]))), 0


def break_even(n_values, gains) -> float | None:
    """The short-scan size from which augmenting stops helping: where the gain (effective_n / n) crosses 1,
    interpolated linearly in (log n, log gain) between the preset's n values. None when the gain stays above 1
    at every n (augmenting helps throughout: the harness then reports the largest n tested as a lower bound);
    the smallest n when it is at or below 1 already there."""
    n = np.asarray(n_values, float)
    g = np.asarray(gains, float)
    ok = np.isfinite(g) & (g > 0)
    n, g = n[ok], g[ok]
    if len(n) == 0:
        return None
    if g[0] <= 1:
        return float(n[0])
    for i in range(1, len(n)):
        if g[i] <= 1:
            a, b = np.log(g[i - 1]), np.log(g[i])
            frac = a / (a - b)
            return float(np.exp(np.log(n[i - 1]) + frac * (np.log(n[i]) - np.log(n[i - 1]))))
    return None


def break_even_batch(n_values, gains: np.ndarray) -> np.ndarray:
    """:func:`break_even` of each row of ``gains`` (P, K) at once: (P,), NaN where it returns None."""
    n = np.asarray(n_values, float)
    g = np.asarray(gains, float)
    P = g.shape[0]
    out = np.full(P, np.nan)
    done, seen = np.zeros(P, bool), np.zeros(P, bool)
    prev_n, prev_g = np.full(P, np.nan), np.full(P, np.nan)
    for i in range(len(n)):
        gi = g[:, i]
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(gi) & (gi > 0)
        first = valid & ~done & ~seen & (gi <= 1)   # at or below 1 at the first usable n
        out[first] = n[i]
        cross = valid & ~done & seen & (gi <= 1)    # crosses 1 between the previous usable n and this one
        if cross.any():
            a, b = np.log(prev_g[cross]), np.log(gi[cross])
            frac = a / (a - b)
            out[cross] = np.exp(np.log(prev_n[cross]) + frac * (np.log(n[i]) - np.log(prev_n[cross])))
        done |= first | cross
        prev_n[valid], prev_g[valid] = n[i], gi[valid]
        seen |= valid
    return out


def isotonic_batch(y: np.ndarray) -> np.ndarray:
    """Unweighted non-decreasing least-squares fits of many short curves at once, (P, G) -> (P, G):
    m_i = max_{j<=i} min_{k>=i} mean(y_j..y_k) (the min-max formula of isotonic regression; equals
    :func:`isotonic_increasing` without weights). O(G^3) per row: for the few grid points of a curve."""
    y = np.asarray(y, float)
    P, G = y.shape
    c = np.concatenate([np.zeros((P, 1)), np.cumsum(y, 1)], 1)
    j = np.arange(G)[:, None]
    k = np.arange(G)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        av = (c[:, None, 1:] - c[:, :-1, None]) / np.where(k >= j, k - j + 1, 1)   # (P, j, k) mean of y_j..y_k
    av = np.where(k >= j, av, np.nan)
    out = np.empty((P, G))
    for i in range(G):
        inner = np.min(np.where(k[0] >= i, av, np.inf)[:, : i + 1, :], axis=2)   # min over k >= i, for j <= i
        out[:, i] = np.max(inner, axis=1)
    return out


def invert_curve_batch(n_grid, curves: np.ndarray, y: np.ndarray, increasing: bool = True) -> np.ndarray:
    """:func:`invert_curve` for P curves (P, G) and scores (P,) at once: the effective n of each (P,)."""
    n = np.asarray(n_grid, float)
    c = np.asarray(curves, float)
    y = np.asarray(y, float)
    s = 1.0 if increasing else -1.0
    out = np.full(len(y), np.nan)
    ok = np.isfinite(y) & np.all(np.isfinite(c), 1)
    if not ok.any() or len(n) < 2:
        return out
    rows = s * c[ok]
    if np.all(np.abs(rows - rows[:1]) <= 1e-12 * np.abs(rows[:1]).max(initial=0.0)):
        # one curve for every score (a paired test's subject swaps leave the model-independent real-only curve as
        # it was, up to the order of its sums): fitted once
        m = np.broadcast_to(isotonic_batch(rows[:1]), rows.shape)
    else:
        m = isotonic_batch(rows)
    v = s * y[ok]
    res = np.empty(len(v))
    below, above = v < m[:, 0], v > m[:, -1]
    i = np.clip(np.argmax(m >= v[:, None], axis=1), 1, len(n) - 1)
    r = np.arange(len(v))
    lo, hi = m[r, i - 1], m[r, i]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(hi > lo, (v - lo) / (hi - lo), 1.0)
    ln = np.log(n)
    with np.errstate(over="ignore", invalid="ignore"):   # rows below/above the grid are overwritten next
        res[:] = np.exp(ln[i - 1] + np.clip(frac, 0, 1) * (ln[i] - ln[i - 1]))
    res[v == m[:, 0]] = n[0]
    res[below] = n[0]
    res[above] = n[-1]
    out[ok] = res
    return out
