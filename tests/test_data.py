import numpy as np
import pytest

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.scans import Cohort, Scan
from mrsbench.core.errors import InputError

from conftest import make_scan


def _cohort(n_sites=3, per_site=4):
    scans = [make_scan(2, subject=f"s{si}{k}", site=f"site{si}", seed=si * 10 + k)
             for si in range(n_sites) for k in range(per_site)]
    return Cohort(scans, name="toy")


def test_scan_on_off_interleaved():
    s = make_scan(3)
    assert s.n_transients == 6
    np.testing.assert_array_equal(s.edit, [1, 0, 1, 0, 1, 0])
    assert s.on.shape == (3, 2048) and s.off.shape == (3, 2048)


def test_split_deterministic_and_disjoint():
    c = _cohort()
    a, b = c.split(seed=7), c.split(seed=7)
    assert a == b
    allsets = [set(a.train), set(a.val), set(a.test)]
    assert not (allsets[0] & allsets[1]) and not (allsets[0] & allsets[2]) and not (allsets[1] & allsets[2])
    assert set().union(*allsets) == set(c.subjects)
    assert all(len(x) > 0 for x in allsets)
    assert c.split(seed=8) != a  # a different seed gives a different split (12 subjects)
    # stratified: every site appears in train
    sites = {c[s].site for s in a.train}
    assert sites == set(c.sites)


def test_split_proportions():
    c = _cohort(3, 10)
    sp = c.split(seed=0, fractions=(0.6, 0.2, 0.2))
    assert (len(sp.train), len(sp.val), len(sp.test)) == (18, 6, 6)


def test_subset_keeps_ground_truth_rows():
    import pandas as pd
    c = _cohort(1, 4)
    c.ground_truth = pd.DataFrame({"subject": c.subjects, "GABA": [1.0, 1.1, 1.2, 1.3]})
    sub = c.subset(["s02", "s00"])
    assert sub.subjects == ["s02", "s00"]
    assert list(sub.ground_truth["GABA"]) == [1.2, 1.0]


def test_cohort_rejects_mismatched_axis_and_duplicates():
    a = make_scan(2, subject="a")
    b = make_scan(2, subject="b", axis=SpectralAxis(sw_hz=4000.0))
    with pytest.raises(InputError, match="spectral width"):
        Cohort([a, b])
    c = make_scan(2, subject="c", axis=SpectralAxis(f0_mhz=297.2))
    with pytest.raises(InputError, match="field strength"):
        Cohort([a, c])
    with pytest.raises(InputError, match="duplicate"):
        Cohort([a, make_scan(2, subject="a")])


@pytest.mark.parametrize("bad,msg", [
    (np.ones((4, 2048)), "FIDs must be complex"),
    (np.ones((4, 2048), dtype=np.int32), "wrong dtype"),
    (np.ones((2048,), dtype=complex), "wrong shape"),
    (np.ones((1, 2048), dtype=complex), "at least 2"),
])
def test_scan_bad_arrays(bad, msg):
    with pytest.raises(InputError, match=msg):
        Scan(bad, np.zeros(len(bad) if bad.ndim == 2 else 1), SpectralAxis())


def test_scan_nan_and_labels():
    x = np.ones((4, 2048), dtype=complex)
    x[2, 5] = np.nan
    with pytest.raises(InputError, match="NaN/Inf"):
        Scan(x, np.array([1, 0, 1, 0]), SpectralAxis())
    with pytest.raises(InputError, match="both edit-ON and edit-OFF"):
        Scan(np.ones((4, 2048), complex), np.ones(4), SpectralAxis())
