"""Effective transients: inversion of the subset-alone curve on synthetic curves with a known answer."""
import numpy as np
import pytest

from mrsbench.metrics.effective import break_even, invert_curve, isotonic_increasing

GRID = [5, 10, 20, 40, 80, 160]


def test_inversion_recovers_a_known_n():
    # a curve linear in log n: q(n) = log2(n); the score of n = 28 real transients is log2(28)
    q = np.log2(GRID)
    for n_true in (5, 7.5, 28, 100, 160):
        n, flag = invert_curve(GRID, q, np.log2(n_true))
        assert n == pytest.approx(n_true, rel=1e-9) and flag == 0
    # an SNR-like curve, sqrt(n): exact at the grid points, log-linear between them
    n, _ = invert_curve(GRID, np.sqrt(GRID), np.sqrt(40))
    assert n == pytest.approx(40)
    n, _ = invert_curve(GRID, np.sqrt(GRID), np.sqrt(30))
    assert 20 < n < 40 and abs(n - 30) / 30 < 0.03


def test_clipping_is_flagged():
    q = np.log2(GRID)
    assert invert_curve(GRID, q, 0.0) == (5.0, -1)
    assert invert_curve(GRID, q, 99.0) == (160.0, 1)
    assert np.isnan(invert_curve(GRID, q, np.nan)[0])


def test_decreasing_error_curve():
    err = 100 / np.sqrt(GRID)       # error falls as 1/sqrt(n)
    n, flag = invert_curve(GRID, err, 100 / np.sqrt(20), increasing=False)
    assert n == pytest.approx(20) and flag == 0
    assert invert_curve(GRID, err, 1000.0, increasing=False) == (5.0, -1)
    assert invert_curve(GRID, err, 0.0, increasing=False) == (160.0, 1)


def test_noisy_curve_made_monotone():
    q = np.array([0.5, 0.62, 0.60, 0.8, 0.9, 1.0])     # a dip from subset noise
    m = isotonic_increasing(q)
    assert np.all(np.diff(m) >= 0) and m[1] == m[2] == pytest.approx(0.61)
    n, _ = invert_curve(GRID, q, 0.61)
    assert n == pytest.approx(10)    # the smallest n that reaches the score


def test_break_even():
    assert break_even([10, 20, 40, 80], [2.0, 1.5, 0.9, 0.6]) == pytest.approx(
        np.exp(np.log(20) + np.log(1.5) / (np.log(1.5) - np.log(0.9)) * np.log(2)))
    assert break_even([10, 20], [3.0, 2.0]) is None
    assert break_even([10, 20], [0.8, 0.5]) == 10.0


def test_break_even_batch_is_break_even_row_by_row():
    """The vectorised form the board statistics use gives what the documented scalar rule gives, row by row,
    including rows with gaps (NaN, non-positive gains), rows at or below 1 from the start and rows above 1 throughout."""
    from mrsbench.metrics.effective import break_even, break_even_batch
    rng = np.random.default_rng(5)
    g = np.exp(rng.normal(0, 0.5, (4000, 4)))
    g[rng.random(g.shape) < 0.1] = np.nan
    g[rng.random(g.shape) < 0.03] = 0.0
    g[:5] = [[2, 1.5, 1.2, 1.1], [0.9, 2, 2, 2], [np.nan, 0.8, 2, 2], [2, np.nan, 0.5, 2], [np.nan] * 4]
    n = [10, 20, 40, 80]
    want = np.array([np.nan if (b := break_even(n, row)) is None else b for row in g])
    np.testing.assert_allclose(break_even_batch(n, g), want, rtol=1e-12, equal_nan=True)
    assert np.isnan(break_even_batch(n, g[:1]))[0] and break_even_batch(n, g[1:2])[0] == 10
