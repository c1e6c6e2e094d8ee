"""Application family (issue 16): reference rows bracket the effective-transients scale, the failure rule
counts failed scans and leaves them out of the means, truth-referenced scores exist on simulated data."""
from dataclasses import replace

import numpy as np
import pytest

from mrsbench.harness import protocol
from mrsbench.core.scans import OFF, ON, Scan
from mrsbench.harness.evaluator import run
from mrsbench.processing import Processed
from mrsbench.harness.subset_curve import ALIGN_MAX_HZ, fit_failed, processing_failed
from mrsbench_baselines.bootstrap import BootstrapGenerator


class NoiseGenerator(BootstrapGenerator):
    """Pure noise at the level of the conditioning transients (no signal at all)."""

    name = "noise"

    def sample(self, n, *, condition=None, seed=0):
        rng = np.random.default_rng(seed)
        src = condition if condition is not None else self.train_.scans[0]
        ax = src.axis
        spec = ax.to_spectrum(src.fids)[:, ax.window(9.8, 10.8)]
        sigma = np.median(spec.real.std(1)) / np.sqrt(ax.n_points)
        z = lambda: sigma * (rng.standard_normal((n, ax.n_points)) + 1j * rng.standard_normal((n, ax.n_points)))
        return Scan.from_on_off(z(), z(), ax, subject="noise", site=src.site)


class ShiftedOnGenerator(BootstrapGenerator):
    """Bootstrap, with every synthetic ON transient 10 Hz off: the augmented scan's ON average follows the
    synthetic majority, 10 Hz away from OFF (an implausible ON/OFF offset: a processing failure)."""

    name = "shifted_on"

    def sample(self, n, *, condition=None, seed=0):
        s = super().sample(n, condition=condition, seed=seed)
        f = s.fids.copy()
        f[s.edit == ON] *= np.exp(2j * np.pi * 10.0 * s.axis.time)[None]
        return Scan(f, s.edit, s.axis, s.subject, s.site)


@pytest.fixture(scope="module")
def ref_runs(tmp_path_factory):
    """The reference rows on a small preset with 3 subsets per subject (the tiny preset has 1)."""
    pr = replace(protocol.PRESETS["tiny"], name="tiny-ref", n_subsets=3, embedding_samples=60, umap_epochs=20)
    protocol.PRESETS["tiny-ref"] = pr
    out = tmp_path_factory.mktemp("refs")
    res = {}
    try:
        for name, gen in (("oracle", None), ("bootstrap", None), ("noise", NoiseGenerator()),
                          ("shifted_on", ShiftedOnGenerator())):
            res[name] = run(name, preset="tiny-ref", out=out, progress=False, track=False, generator=gen)[0]["metrics"]
    finally:
        protocol.PRESETS.pop("tiny-ref", None)
    return res


def test_reference_rows_bracket_the_scale(ref_runs):
    g = {k: m["application.n20.gain"] for k, m in ref_runs.items()}
    assert g["oracle"] > 2.0                     # truth-based transients: worth far more than the short scan
    assert g["bootstrap"] <= 1.25                # copies of the short scan add nothing (tolerance: 6 subsets)
    assert g["noise"] < 1.0                      # pure noise dilutes the short scan
    assert g["oracle"] > g["bootstrap"] > g["noise"]
    for m in ref_runs.values():
        assert 5 <= m["application.n20.effective_n"] <= 160
        assert m["application.curve.n160.shape_score"] == pytest.approx(1.0)   # the full scan against itself
        assert m["application.curve.n5.shape_score"] < m["application.curve.n80.shape_score"]


def test_truth_referenced_scores_on_simulated_data(ref_runs):
    m = ref_runs["oracle"]
    for kind in ("full", "subset", "augmented"):
        assert 0 < m[f"application.n20.{kind}.shape_score_truth"] <= 1
    # the full scan is itself noisy: its truth score caps what any augmented scan is scored against it
    assert m["application.n20.full.shape_score_truth"] < 1
    assert m["application.n20.augmented.shape_score_truth"] > m["application.n20.subset.shape_score_truth"]
    assert m["application.n20.effective_n_truth"] is not None


def test_honest_snr(ref_runs):
    # bootstrap's copies and the oracle's noisy transients: SNR about what real transients give
    assert ref_runs["oracle"]["application.noise_free"] == 0.0
    assert 0.5 < ref_runs["oracle"]["application.noise_ratio"] < 2.0
    assert ref_runs["oracle"]["application.snr_inflation"] < 1.5


def test_failures_are_counted_and_left_out(ref_runs):
    m = ref_runs["shifted_on"]
    assert m["application.failure_rate.augmented"] == 1.0
    assert m["application.n20.augmented.shape_score"] is None        # nothing left to average
    assert m["quantification.failure_rate.augmented"] == 1.0
    assert m["quantification.gaba_cr.mape.augmented"] is None
    assert ref_runs["bootstrap"]["application.failure_rate.augmented"] == 0.0
    assert m["application.failure_rate.subset"] == ref_runs["bootstrap"]["application.failure_rate.subset"]


def _processed(f_hz=0.0, phi=0.0, bad=False):
    from mrsbench.core.axis import SpectralAxis
    ax = SpectralAxis()
    on = np.ones(ax.n_points, complex)
    if bad:
        on[3] = np.nan
    return Processed(ax, on, on.copy(), np.zeros(2), np.zeros(2), np.ones(2), np.zeros(2, bool),
                     np.array([ON, OFF]), {"on_to_off_hz": f_hz, "on_to_off_rad": phi})


def test_failure_rule_units():
    assert not processing_failed(_processed(0.5, 0.1))
    assert processing_failed(_processed(ALIGN_MAX_HZ + 0.1))
    assert processing_failed(_processed(-ALIGN_MAX_HZ - 0.1))
    assert processing_failed(_processed(0.0, np.deg2rad(60)))
    assert processing_failed(_processed(bad=True))
    fits = {"gaba_cr": np.array([0.1, 0.1, np.nan, -0.2, 0.1]), "converged": np.array([1, 0, 1, 1, 1], bool),
            "shape_at_bound": np.array([0, 0, 0, 0, 1], bool)}
    assert fit_failed(fits).tolist() == [False, True, True, True, True]
