"""Two-sample statistics against analytic expectations."""
import numpy as np
import pytest

from mrsbench.metrics import twosample as ts


def test_identical_distributions():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((300, 4)), rng.standard_normal((300, 4))
    p = ts.prdc(x, y)
    assert p["precision"] > 0.8 and p["recall"] > 0.8 and 0.7 < p["density"] < 1.3 and p["coverage"] > 0.8
    assert abs(ts.mmd2_unbiased(x, y)) < 0.01
    assert 0.4 < ts.classifier_auc(x, y) < 0.6
    assert ts.frechet_distance(x, y) < 0.3
    assert 0.8 < ts.kde_overlap(x[:, :2], y[:, :2]) <= 1.0


def test_frechet_of_shifted_gaussians_is_squared_shift():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5000, 3))
    y = rng.standard_normal((5000, 3)) + np.array([2.0, 0, 0])
    assert ts.frechet_distance(x, y) == pytest.approx(4.0, abs=0.15)


def test_separated_distributions_are_detected():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 4))
    y = rng.standard_normal((200, 4)) + 4
    assert ts.prdc(x, y)["precision"] < 0.05 and ts.prdc(x, y)["coverage"] < 0.05
    assert ts.mmd2_unbiased(x, y) > 0.5
    assert ts.classifier_auc(x, y) > 0.99
    assert ts.kde_overlap(x[:, :2], y[:, :2]) < 0.05


def test_mode_collapse_lowers_recall_not_precision():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 2))
    y = 0.1 * rng.standard_normal((400, 2))  # all samples near the mode
    p = ts.prdc(x, y)
    assert p["precision"] > 0.9 and p["recall"] < 0.3


def test_memorisation_ratio():
    rng = np.random.default_rng(4)
    train, hold = rng.standard_normal((200, 5)), rng.standard_normal((200, 5))
    copies = train[:100] + 1e-6 * rng.standard_normal((100, 5))
    fresh = rng.standard_normal((100, 5))
    assert ts.memorisation_ratio(copies, train, hold) < 0.01
    assert 0.7 < ts.memorisation_ratio(fresh, train, hold) < 1.4
