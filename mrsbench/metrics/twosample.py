"""Two-sample statistics between real and synthetic feature sets (rows = samples).

Definitions: ../shared/reference/metrics.md sec. 6 — precision/recall/density/coverage (Naeem et al.,
ICML 2020, k = 5); unbiased MMD^2 with a Gaussian kernel, bandwidth = median pairwise distance
(Gretton et al., JMLR 2012); classifier two-sample test AUC (Lopez-Paz & Oquab, ICLR 2017); Frechet
distance of Gaussian fits (Heusel et al. 2017); memorisation ratio (nearest training vs nearest
held-out distance).
"""
from __future__ import annotations

import numpy as np


def _cdist(a, b):
    d2 = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2 * a @ b.T
    return np.sqrt(np.maximum(d2, 0))


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict:
    """Precision, recall, density, coverage with k-NN balls (Naeem et al. 2020)."""
    rr = _cdist(real, real)
    ff = _cdist(fake, fake)
    rf = _cdist(real, fake)
    r_rad = np.sort(rr, 1)[:, k]  # k-th neighbour excluding self (index 0 is self)
    f_rad = np.sort(ff, 1)[:, k]
    inside = rf < r_rad[:, None]  # (R, F): fake j inside real ball i
    precision = float(inside.any(0).mean())
    recall = float((rf.T < f_rad[:, None]).any(0).mean())
    density = float(inside.sum(0).mean() / k)
    coverage = float((rf.min(1) < r_rad).mean())
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None) -> float:
    """Unbiased MMD^2 U-statistic, Gaussian kernel exp(-d^2 / (2 h^2)), h = median pairwise distance
    of the pooled sample unless given (reported unclipped: may be slightly negative)."""
    z = np.concatenate([x, y])
    if bandwidth is None:
        d = _cdist(z, z)
        bandwidth = float(np.median(d[np.triu_indices(len(z), 1)])) or 1.0
    k = lambda a, b: np.exp(-_cdist(a, b) ** 2 / (2 * bandwidth ** 2))
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def classifier_auc(real: np.ndarray, fake: np.ndarray, seed: int = 0, folds: int = 5) -> float:
    """Cross-validated ROC AUC of a logistic-regression real-vs-synthetic classifier (0.5 = indistinguishable)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.metrics import roc_auc_score

    X = np.concatenate([real, fake])
    y = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    p = cross_val_predict(clf, X, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed), method="predict_proba")
    return float(roc_auc_score(y, p[:, 1]))


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """||mu_x - mu_y||^2 + Tr(Cx + Cy - 2 (Cx Cy)^(1/2))."""
    from scipy.linalg import sqrtm
    mx, my = x.mean(0), y.mean(0)
    cx, cy = np.cov(x.T), np.cov(y.T)
    cs = sqrtm(cx @ cy)
    if np.iscomplexobj(cs):
        cs = cs.real
    return float(((mx - my) ** 2).sum() + np.trace(cx + cy - 2 * cs))


def memorisation_ratio(fake: np.ndarray, train: np.ndarray, holdout: np.ndarray) -> float:
    """Median over synthetic samples of d(nearest training) / d(nearest held-out). About 1 for a
    generator that generalises; much below 1 for one that copies training data. ``train`` and
    ``holdout`` should be the same size."""
    dt = _cdist(fake, train).min(1)
    dh = _cdist(fake, holdout).min(1)
    return float(np.median(dt / np.maximum(dh, 1e-300)))


def kde_overlap(a: np.ndarray, b: np.ndarray, grid: int = 80) -> float:
    """Overlap integral of two 2-D Gaussian KDEs, sum(min(p, q)) dA in [0, 1] (1 = identical)."""
    from scipy.stats import gaussian_kde
    lo = np.minimum(a.min(0), b.min(0))
    hi = np.maximum(a.max(0), b.max(0))
    pad = 0.1 * (hi - lo)
    xs = [np.linspace(l - p, h + p, grid) for l, h, p in zip(lo, hi, pad)]
    X, Y = np.meshgrid(*xs)
    pts = np.vstack([X.ravel(), Y.ravel()])
    p = gaussian_kde(a.T)(pts)
    q = gaussian_kde(b.T)(pts)
    dA = (xs[0][1] - xs[0][0]) * (xs[1][1] - xs[1][0])
    return float(np.minimum(p, q).sum() * dA)
