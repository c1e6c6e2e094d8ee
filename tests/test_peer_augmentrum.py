"""The peer row `augmentrum` (issue 40): registered through the public entry point, deterministic, the conditioning
scan's noise level and average, one scan's tracks shared by ON and OFF, and a one-line error without the package."""
from __future__ import annotations

import sys
from importlib.metadata import entry_points

import numpy as np
import pytest

from mrsbench.core.scans import OFF, ON, Cohort
from conftest import make_scan


def test_registered_through_the_public_entry_point():
    eps = {e.name: e.value for e in entry_points(group="mrsbench.generators")}
    assert eps["augmentrum"] == "mrsbench_baselines.augmentrum_peer:AugmentrumPeer"
    from mrsbench.boards.verdict import reference_role
    assert reference_role("augmentrum", None) == "peer" and reference_role("augmentrum[dynamics=false]", None) == "peer"
    assert reference_role("something-else", {"description": "peer row: a tool"}) == "peer"


def test_noise_sd_of_white_noise():
    from mrsbench_baselines.augmentrum_peer import noise_sd
    rng = np.random.default_rng(0)
    x = 0.3 * (rng.standard_normal((40, 2048)) + 1j * rng.standard_normal((40, 2048)))
    assert noise_sd(x) == pytest.approx(0.3, rel=0.02)


def _fitted(**kw):
    pytest.importorskip("augmentrum")
    from mrsbench_baselines.augmentrum_peer import AugmentrumPeer
    scan = make_scan(16, seed=1)
    return AugmentrumPeer(**kw).fit(Cohort([scan])), scan


def test_samples_are_deterministic_and_keep_the_noise_level():
    g, scan = _fitted()
    a, b, c = g.sample(32, condition=scan, seed=5), g.sample(32, condition=scan, seed=5), g.sample(32, condition=scan,
                                                                                                  seed=6)
    assert a.n_transients == 64 and np.array_equal(a.fids, b.fids) and not np.allclose(a.fids, c.fids)
    assert (a.edit == ON).sum() == 32 and (a.edit == OFF).sum() == 32
    from mrsbench_baselines.augmentrum_peer import noise_sd
    assert noise_sd(a.fids) == pytest.approx(noise_sd(scan.fids), rel=0.1)   # each transient as noisy as a real one


def test_without_dynamics_it_is_the_average_plus_noise():
    g, scan = _fitted(dynamics=False, align=False)
    s = g.sample(400, condition=scan, seed=0)
    for lab in (ON, OFF):
        mean_syn = s.fids[s.edit == lab].mean(0)
        mean_real = scan.fids[scan.edit == lab].mean(0)
        # 400 transients of sd 0.01 each: their mean is within a few 0.01/sqrt(400) of the real average
        assert np.abs(mean_syn - mean_real).std() < 3 * 0.01 / np.sqrt(400) * np.sqrt(2)


def test_on_and_off_share_one_scan_of_dynamics(monkeypatch):
    """In acquisition order (ON, OFF, ON, ...) the transients are the averages times one TransientSynthesizer scan
    of 2n transients, the scan augmentrum itself draws for a unit FID with the same seed (noise switched off)."""
    g, scan = _fitted(align=False)
    from augmentrum.augmentation.noise import Noise
    from augmentrum.augmentation.transient_synthesis import TransientSynthesizer
    monkeypatch.setattr(Noise, "process_tensor", lambda self, x, *a, **k: (x, None))
    n, seed = 24, 2
    s = g.sample(n, condition=scan, seed=seed)
    N = scan.axis.n_points
    s1 = int(np.random.default_rng(seed).integers(0, 2**31 - 1, 2)[0])
    ref, _ = TransientSynthesizer(n_transients=2 * n, tr_s=2.0, seed=s1).process_tensor(
        np.ones((1, 1, 1, 1, N), complex), sw_hz=scan.axis.sw_hz)
    factor = np.asarray(ref).reshape(N, 2 * n).T
    avg = {lab: scan.fids[scan.edit == lab].mean(0) for lab in (ON, OFF)}
    np.testing.assert_allclose(s.fids[s.edit == ON], avg[ON] * factor[0::2], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s.fids[s.edit == OFF], avg[OFF] * factor[1::2], rtol=1e-6, atol=1e-9)
    assert np.ptp(np.angle(factor[:, 100])) > 0.1, "no dynamics drawn"


def test_missing_package_is_one_line(monkeypatch):
    from mrsbench_baselines.augmentrum_peer import AugmentrumPeer
    monkeypatch.setitem(sys.modules, "augmentrum", None)
    with pytest.raises(ImportError, match=r"pip install 'mrsbench\[peers\]'"):
        AugmentrumPeer().fit(Cohort([make_scan(4)]))
