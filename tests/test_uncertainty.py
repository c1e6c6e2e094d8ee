"""Issue 21: k-fold splits, bootstrap intervals, paired permutation tests (synthetic data with a known answer)
and the headline columns recomputed from per-subject statistics."""
import numpy as np
import pytest

from mrsbench.core.scans import kfold_split
from mrsbench.metrics.effective import invert_curve, invert_curve_batch, isotonic_batch, isotonic_increasing
from mrsbench.metrics.resampling import (bootstrap_weights, holm, percentile_interval, permutation_p, swap_patterns)
from mrsbench.harness.statistics import board_statistics, columns_from_sums, weighted_sums

# --- k-fold -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_sites,per_site,k,seed", [(3, 4, 4, 0), (3, 4, 4, 1), (12, 12, 5, 2), (2, 5, 3, 7),
                                                      (4, 3, 6, 3)])
def test_kfold_covers_each_subject_once_disjoint_and_stratified(n_sites, per_site, k, seed):
    subjects = [f"s{i:03d}" for i in range(n_sites * per_site)]
    sites = [f"site{i % n_sites}" for i in range(len(subjects))]
    fo = kfold_split(subjects, sites, seed, k, 0.25)
    tested = [s for f in fo.folds for s in f.test]
    assert sorted(tested) == sorted(subjects)              # every subject tested exactly once per seed
    site_of = dict(zip(subjects, sites))
    sizes = [len(f.test) for f in fo.folds]
    assert max(sizes) - min(sizes) <= 1
    for f in fo.folds:
        tr, va, te = set(f.train), set(f.val), set(f.test)
        assert not (tr & te) and not (va & te) and not (tr & va)   # never train (or validate) on a test subject
        assert tr | va | te == set(subjects)
        assert tr
        # stratified: each site's share of the fold's test subjects differs from its share overall by < 1 subject
        for site in set(sites):
            n_here = sum(site_of[s] == site for s in te)
            assert abs(n_here - per_site / k) < 1 + 1e-9
    assert fo.to_dict()["test"] == list(fo.test)
    assert kfold_split(subjects, sites, seed, k) == fo          # deterministic
    assert kfold_split(subjects, sites, seed + 100, k) != fo    # the seed matters


def test_kfold_quick_preset_on_simgaba_small_tests_every_subject():
    from mrsbench.data.datasets import load_dataset
    from mrsbench.harness.protocol import get_preset
    from mrsbench.harness.cell_work import cell_data
    pr = get_preset("quick")
    c = load_dataset("simgaba-small", progress=False)
    cd = cell_data("simgaba-small", pr, 0, progress=False)
    assert pr.folds >= 2 and sorted(cd.test.subjects) == sorted(c.subjects)
    for tr, va, te in cd.folds:
        assert sorted({s.site for s in te.scans}) == sorted(set(c.sites))   # one subject per site per fold
        assert not set(tr.subjects) & set(te.subjects)


# --- resampling primitives -----------------------------------------------------------------------

def test_holm_matches_definition():
    p = [0.01, 0.04, 0.03, None, 0.005]
    adj = holm(p)
    # sorted: 0.005 (x4), 0.01 (x3), 0.03 (x2), 0.04 (x1), running max
    assert adj[4] == pytest.approx(0.02) and adj[0] == pytest.approx(0.03)
    assert adj[2] == pytest.approx(0.06) and adj[1] == pytest.approx(0.06) and adj[3] is None


def test_swap_patterns_exact_and_random():
    rng = np.random.default_rng(0)
    e = swap_patterns(4, rng)
    assert e.shape == (16, 4) and len({tuple(r) for r in e}) == 16 and not e[0].any()
    r = swap_patterns(20, rng)
    assert r.shape[1] == 20 and not r[0].any() and len(r) == 2000


def test_batch_inversion_equals_scalar():
    rng = np.random.default_rng(3)
    g = [5, 10, 20, 40, 80, 160]
    C = rng.normal(size=(500, 6)).cumsum(1) * 0.3 + rng.normal(size=(500, 6)) * 0.5
    Y = rng.normal(size=500) * 2
    assert np.allclose(isotonic_batch(C), [isotonic_increasing(c) for c in C], atol=1e-12)
    for inc in (True, False):
        assert np.allclose(invert_curve_batch(g, C, Y, inc), [invert_curve(g, c, y, inc)[0] for c, y in zip(C, Y)],
                           atol=1e-9)


def _mean_stats(values):
    """Per-subject pieces of a mean-type column (the GABA+ bias of augmented scans), one job per subject."""
    v = np.asarray(values, float)
    return {"quantification.gaba_bias_aug.sum": v, "quantification.gaba_bias_aug.count": np.ones(len(v))}


def test_bootstrap_interval_covers_the_true_mean():
    """Coverage of the 95% interval of a mean over 30 subjects: close to 95% over 400 cohorts."""
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(400):
        x = rng.normal(2.0, 1.0, size=30)
        W = bootstrap_weights(30, 1000, rng)
        reps = columns_from_sums(weighted_sums(_mean_stats(x), W), [20], [])["quantification.gaba_cr.bias.augmented"]
        lo, hi = percentile_interval(reps)
        hits += lo <= 2.0 <= hi
    assert 0.90 <= hits / 400 <= 0.99


def _doc(model, seed, values, subjects):
    st = _mean_stats(values)
    return {"model": model, "seed": seed, "preset": {"n_values": [20]},
            "metrics": {"quantification.gaba_cr.bias.augmented": float(np.mean(values))},
            "per_subject": {"subject": subjects, "stats": {k: v.tolist() for k, v in st.items()}}}


COL = [("quantification.gaba_cr.bias.augmented", "bias", 0.0, "honesty")]


def test_paired_test_identical_generators_not_different_in_95_percent():
    """Two generators from the same distribution, 12 subjects with a large subject effect: the paired test at
    5% calls them different in at most ~5% of 300 repeats."""
    rng = np.random.default_rng(5)
    subjects = [f"s{i}" for i in range(12)]
    rejections = 0
    for rep in range(300):
        subject_effect = rng.normal(0, 5, 12)
        a = subject_effect + rng.normal(0, 1, 12)
        b = subject_effect + rng.normal(0, 1, 12)
        st = board_statistics({"A": [_doc("A", 0, a, subjects)], "B": [_doc("B", 0, b, subjects)]}, COL,
                              ["honesty"], n_boot=50, seed=rep)
        rejections += st["tests"][COL[0][0]][0]["significant"]
    assert rejections / 300 <= 0.065


def test_paired_test_detects_a_clearly_better_generator_and_ranks_show_ties():
    rng = np.random.default_rng(6)
    subjects = [f"s{i}" for i in range(12)]
    detected = 0
    for rep in range(50):
        subject_effect = rng.normal(0, 5, 12)
        good = subject_effect * 0 + rng.normal(0, 1, 12)         # bias near 0
        bad = good + 3 + rng.normal(0, 1, 12)                    # 3 % further from the target
        twin = good + rng.normal(0, 0.3, 12)
        st = board_statistics({"good": [_doc("good", 0, good, subjects)], "bad": [_doc("bad", 0, bad, subjects)],
                               "twin": [_doc("twin", 0, twin, subjects)]}, COL, ["honesty"], n_boot=200, seed=rep)
        t = {(x["a"], x["b"]): x for x in st["tests"][COL[0][0]]}
        detected += t[("bad", "good")]["significant"] and t[("bad", "good")]["better"] == "good"
    assert detected >= 48
    k = COL[0][0]
    assert st["ranks"]["bad"][k] == 3 and st["ranks"]["good"][k] == st["ranks"]["twin"][k] == 1   # a tie
    lo, hi = st["ci"]["good"][k]
    assert lo <= np.mean(good) <= hi
    assert st["rank_stability"]["top"] in ("good", "twin")


def test_permutation_p_exact_and_monte_carlo():
    assert permutation_p(np.array([2.0, 2.0, -2.0, 1.0]), exact=True) == 0.75
    assert permutation_p(np.array([3.0] + [0.0] * 99), exact=False) == pytest.approx(1 / 100)
    assert permutation_p(np.array([np.nan, 1.0]), exact=True) is None
