"""Issue 37: the stronger "adds nothing" brackets (smoothed, subset-lcm) and the copied-noise probe, against
analytic values and scans with known offsets, and in the harness with generators whose answer is known."""
from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import pytest
from scipy.special import erfc

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.scans import OFF, ON, Cohort, Scan
from mrsbench.metrics.copied import FLAG_THRESHOLD, SMOOTH_FWHM_HZ, noise_transfer


def test_registered_as_floor_rows():
    eps = {e.name: e.value for e in entry_points(group="mrsbench.generators")}
    assert eps["smoothed"] == "mrsbench_baselines.denoised:SmoothedSubset"
    assert eps["subset-lcm"] == "mrsbench_baselines.denoised:LCMSubset"
    from mrsbench.boards.verdict import reference_role
    assert reference_role("smoothed", None) == reference_role("subset-lcm", None) == "floor"
    assert reference_role("smoothed[lb_hz=0]", None) == "floor"


def test_noise_transfer_of_copies_nothing_and_line_broadening():
    """1 for a copy, 0 for nothing; for exponential broadening lb of white noise, seen through the Gaussian line
    g of FWHM w: sum g^2 l / sum g^2 = exp(b^2 / 4a) erfc(b / 2 sqrt(a)) with g^2 = exp(-a t^2), l = exp(-b t)
    (a = 2 (pi w)^2 / (4 ln 2), b = pi lb; the acquisition, 1.02 s, is long against g)."""
    ax = SpectralAxis()
    rng = np.random.default_rng(3)
    num = den = 0.0
    lb = 4.0
    for _ in range(40):
        d = rng.standard_normal((2, ax.n_points)) + 1j * rng.standard_normal((2, ax.n_points))
        assert noise_transfer(d, d, ax)[0] == pytest.approx(noise_transfer(d, d, ax)[1])
        assert noise_transfer(0 * d, d, ax)[0] == 0
        a, b = noise_transfer(d * np.exp(-np.pi * lb * ax.time), d, ax)
        num, den = num + a, den + b
    a_, b_ = 2 * (np.pi * SMOOTH_FWHM_HZ) ** 2 / (4 * np.log(2)), np.pi * lb
    assert num / den == pytest.approx(np.exp(b_ ** 2 / (4 * a_)) * erfc(b_ / (2 * np.sqrt(a_))), abs=0.03)


def _peaks(ax: SpectralAxis, edited: bool) -> np.ndarray:
    """Noise-free OFF (NAA 2.008, Cr 3.027, Cho 3.185 ppm singlets, T2* 60 ms) or ON (NAA partly inverted by the
    1.9 ppm pulse, plus an edited 3.0 ppm doublet)."""
    t = ax.time
    line = lambda ppm, a: a * np.exp(2j * np.pi * ax.ppm_to_hz(ppm) * t - t / 0.06)   # noqa: E731
    off = line(2.008, 1.0) + line(3.027, 0.8) + line(3.185, 0.6)
    return off if not edited else line(2.008, 0.4) + line(3.027, 0.8) + line(3.185, 0.6) + line(2.98, 0.15) + line(3.02, 0.15)


def _scan(f0=3.0, phi0=0.4, n=32, sigma=0.002, seed=0) -> tuple[Scan, dict]:
    ax = SpectralAxis()
    rng = np.random.default_rng(seed)
    clean = {lab: _peaks(ax, lab == ON) * np.exp(1j * (2 * np.pi * f0 * ax.time + phi0)) for lab in (ON, OFF)}
    noise = lambda: sigma * (rng.standard_normal((n, ax.n_points)) + 1j * rng.standard_normal((n, ax.n_points)))   # noqa: E731
    return Scan.from_on_off(clean[ON] + noise(), clean[OFF] + noise(), ax, subject="s1", site="A"), clean


def test_processing_frame_is_undone():
    """The processed averages moved back by to_acquisition_frame are where the transients were acquired: the
    known clean ON and OFF at +3 Hz and 0.4 rad."""
    from mrsbench.processing import process
    from mrsbench_baselines.denoised import to_acquisition_frame
    scan, clean = _scan()
    p = process(scan)
    on, off = to_acquisition_frame(p, p.on, p.off)
    for got, want in ((on, clean[ON]), (off, clean[OFF])):
        assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.02


def test_smoothed_fill_is_the_broadened_average_plus_the_scans_noise():
    from mrsbench_baselines.denoised import SmoothedSubset, broaden
    scan, clean = _scan(sigma=0.01)
    g = SmoothedSubset(lb_hz=2.0).fit(Cohort([scan]))
    syn = g.sample(400, condition=scan, seed=1)
    again = g.sample(400, condition=scan, seed=1)
    assert np.array_equal(syn.fids, again.fids)
    for lab in (ON, OFF):
        x = syn.fids[syn.edit == lab]
        assert np.std(x[:, -512:].real) == pytest.approx(0.01, rel=0.05)   # the scan's own transient noise
        want = broaden(clean[lab], scan.axis, 2.0)
        assert np.linalg.norm(x.mean(0) - want) / np.linalg.norm(want) < 0.03
    with pytest.raises(ValueError, match="lb_hz"):
        SmoothedSubset(lb_hz=-1.0).fit(Cohort([scan]))


def test_broadening_is_tuned_on_the_training_subjects(small_split):
    """More smoothing for shorter scans (less signal to lose, more noise to remove), none beyond the grid."""
    from mrsbench_baselines.denoised import LB_GRID, SmoothedSubset
    train, _, _ = small_split
    g = SmoothedSubset().fit(train, seed=0)
    lb = [g.tuned_[n] for n in sorted(g.tuned_)]
    assert sorted(g.tuned_) == [5, 10, 20, 40, 80]
    assert all(v in LB_GRID for v in lb) and lb[0] > 0 and lb[0] >= lb[-1]
    assert g.lb_for(20) == g.tuned_[20] and g.lb_for(15) in (g.tuned_[10], g.tuned_[20]) and g.lb_for(320) == g.tuned_[80]


@pytest.mark.slow
def test_copied_noise_in_the_harness():
    """The probe in a real run: the oracle ignores the short scan (0), copies of its average plus fresh noise carry
    it (flagged, also in the run summary), the LCM model fit passes only what looks like metabolite signal."""
    import mrsbench
    kw = dict(dataset="simgaba-small", preset="tiny", seed=0, progress=False)
    oracle = mrsbench.evaluate("oracle", **kw)
    copies = mrsbench.evaluate("smoothed", settings={"lb_hz": 0.0}, **kw)
    lcm = mrsbench.evaluate("subset-lcm", **kw)
    assert oracle.metrics["application.copied_noise"] == 0.0
    assert copies.metrics["application.copied_noise"] > 0.7   # not 1: processing re-weighs and re-aligns the perturbed scan
    assert lcm.metrics["application.copied_noise"] < FLAG_THRESHOLD
    lo, hi = copies.intervals["application.copied_noise"]
    assert FLAG_THRESHOLD < lo <= hi
    assert "copied noise" in copies.summary and "copied noise" not in oracle.summary
    # the copies are honest about their noise: the older honesty measures cannot see them
    assert copies.metrics["application.noise_ratio"] == pytest.approx(1.0, abs=0.05)
