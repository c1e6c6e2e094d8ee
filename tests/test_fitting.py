"""Quantification: recovery of known amplitudes, flags, Gannet-style fits, CLI table."""
import numpy as np
import pytest

from mrsbench.axis import SpectralAxis
from mrsbench.fitting.gannet import fit_cr, fit_gaba
from mrsbench.fitting.lcm import LCMConfig, LCMFitter
from mrsbench.fitting.quantify import OFF_METABOLITES
from mrsbench.physics.basis import load_basis

AX = SpectralAxis()


@pytest.fixture(scope="module")
def basis():
    return load_basis()


def _synth(basis, names, amps, lw_hz=4.0, gauss=12.0, shift_hz=1.5, phi0=0.2, noise=0.0, seed=0):
    t = AX.time
    fids = basis.fids(AX, "off", names)
    ls = np.exp(-(np.pi * lw_hz + gauss ** 2 * t) * t + 2j * np.pi * shift_hz * t)
    spec = AX.to_spectrum((amps @ fids) * ls) * np.exp(1j * phi0)
    if noise:
        rng = np.random.default_rng(seed)
        spec = spec + noise * (rng.standard_normal(spec.shape) + 1j * rng.standard_normal(spec.shape))
    return spec


@pytest.mark.parametrize("precision", ["single", "double"])
def test_lcm_recovers_known_amplitudes(basis, precision):
    names = list(OFF_METABOLITES)
    rng = np.random.default_rng(1)
    amps = rng.uniform(0.5, 10, (3, len(names)))
    spectra = np.stack([_synth(basis, names, a, shift_hz=s, phi0=p) for a, s, p in zip(amps, (1.5, -2.0, 0.5), (0.2, -0.3, 0.0))])
    fitter = LCMFitter(basis.fids(AX, "off", names), names, [0] * len(names), AX,
                       LCMConfig(iterations=30, nnls_iterations=300, precision=precision))
    res = fitter.fit(spectra)
    big = amps > 2  # well-determined components: within 3% (noise-free, exact model)
    rel = np.abs(res.amplitudes - amps) / amps
    assert np.median(rel[big]) < 0.02 and rel[big].max() < 0.1
    # the model applies exp(-i eps t): a +f Hz shift is eps = -2 pi f
    assert np.allclose(-res.params["eps"][:, 0] / (2 * np.pi), [1.5, -2.0, 0.5], atol=0.05)


def test_crlb_tracks_noise(basis):
    names = ["NAA", "Cr", "PCr", "GPC", "PCh", "mI", "Glu"]
    amps = np.array([10, 6, 4, 1, 0.7, 5, 8.0])
    fitter = LCMFitter(basis.fids(AX, "off", names), names, [0] * len(names), AX, LCMConfig(precision="double"))
    lo = fitter.fit(np.stack([_synth(basis, names, amps, noise=2.0, seed=s) for s in range(24)]))
    hi = fitter.fit(np.stack([_synth(basis, names, amps, noise=8.0, seed=s) for s in range(24)]))
    # CRLB scales with the noise, and matches the empirical spread of the estimates
    assert np.median(hi.crlb / lo.crlb) == pytest.approx(4.0, rel=0.25)
    emp = hi.amplitudes.std(0)
    pred = np.median(hi.crlb, 0)
    assert np.all((emp / pred > 0.5) & (emp / pred < 2.0))


def test_absent_component_flagged_not_dropped(basis):
    names = ["NAA", "Cr", "Lac"]
    fitter = LCMFitter(basis.fids(AX, "off", names), names, [0, 0, 0], AX)
    res = fitter.fit(_synth(basis, names, np.array([10.0, 6.0, 0.0]), noise=0.5)[None])
    assert res.amplitudes.shape == (1, 3)
    k = names.index("Lac")
    assert res.flags[0][k] != "ok" or res.crlb_percent()[0, k] > 20
    assert all(np.isfinite(res.amplitudes[0]))


def test_gannet_gaussian_area_analytic():
    # a Gaussian of known area plus a linear baseline: area = A sqrt(pi/-b)
    A, b, c = 2.0, -120.0, 3.01
    y = A * np.exp(b * (AX.ppm - c) ** 2) + 0.1 * (AX.ppm - 3) + 0.05
    out = fit_gaba(y[None], AX)
    assert out["area"][0] == pytest.approx(A * np.sqrt(np.pi / -b), rel=1e-3)
    assert out["centre_ppm"][0] == pytest.approx(c, abs=1e-3)
    assert out["fit_error"][0] < 1.0


def test_gannet_cr_lorentzian_area():
    w, A = 0.06, 5.0
    lor = lambda c, a: a / (1 + ((AX.ppm - c) / (w / 2)) ** 2)
    y = lor(3.027, A) + lor(3.207, 2.0)
    out = fit_cr(y[None], AX)
    # area of a Lorentzian peak of height A and FWHM w: A * pi * w / 2 (window-truncated tails aside)
    assert out["area"][0] == pytest.approx(A * np.pi * w / 2, rel=0.02)


def test_quantify_cli_table(tmp_path, capsys):
    from dataclasses import replace

    import pandas as pd

    from mrsbench.cli import main
    from mrsbench.cohort import CohortConfig, simulate_cohort
    from mrsbench.datasets import write_dataset
    cohort, extras = simulate_cohort(replace(CohortConfig(), n_sites=1, subjects_per_site=1, n_pairs=64))
    write_dataset(cohort, extras, tmp_path)
    out = tmp_path / "table.csv"
    assert main(["quantify", str(tmp_path / "sub-001.nii.gz"), "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns[:6]) == ["metabolite", "method", "estimate", "ratio_tcr", "crlb_percent", "flag"] or \
        {"metabolite", "method", "estimate", "ratio_tcr", "crlb_percent", "flag"} <= set(df.columns)
    assert set(df.method) == {"lcm", "gannet"}
    for m in ("GABA+", "Glx", "tNAA", "tCho", "tCr", "NAA", "Cr", "GABA", "MM3co"):
        assert m in set(df.metabolite), m
    tcr = df[(df.metabolite == "tCr") & (df.method == "lcm")].iloc[0]
    assert tcr.ratio_tcr == pytest.approx(1.0)
    assert df.flag.notna().all() and (df.flag != "").all()
    # a NaN estimate never appears without a flag
    assert not (df.estimate.isna() & (df.flag == "ok")).any()


def test_recovery_simgaba_small():
    from mrsbench.datasets import load_dataset
    from mrsbench.fitting.validation import recovery
    rep = recovery(load_dataset("simgaba-small", progress=False))
    for k, v in rep.items():
        print(k, {a: round(b, 3) for a, b in v.items()})
    assert rep["lcm.tCho"]["r"] >= 0.95 and rep["lcm.Glx"]["r"] >= 0.9
    assert rep["lcm.GABA"]["r"] >= 0.85
    assert rep["lcm.GABA+"]["r"] >= 0.85


def test_recovery_validation_set():
    """48 full scans whose concentrations span the published ranges uniformly (own seed)."""
    from mrsbench.fitting.validation import recovery, validation_cohort
    rep = recovery(validation_cohort())
    for k, v in rep.items():
        print("validation", k, {a: round(b, 3) for a, b in v.items()})
    for name in ("lcm.tNAA", "lcm.tCho", "lcm.mI"):
        assert rep[name]["r"] >= 0.95, name
    assert rep["lcm.Glx"]["r"] >= 0.9
    # below the 0.9 target at this SNR (reported, not hidden): guard against regressions
    assert rep["lcm.GABA"]["r"] >= 0.85
    assert rep["lcm.GABA+"]["r"] >= 0.85
    assert rep["gannet_gabaglx.GABA+"]["r"] >= 0.6
