"""Quantification: recovery of known amplitudes, flags, Gannet-style fits, CLI table."""
import numpy as np
import pytest

from mrsbench.core.axis import SpectralAxis
from mrsbench.fitting.gannet import fit_cr, fit_gaba, fit_gabaglx, gannet_fits, line_broaden
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


def test_shape_bound_flags_only_that_group(basis):
    from mrsbench.fitting.lcm import LCMResult
    names = ["NAA", "Cr", "H2O"]
    fitter = LCMFitter(basis.fids(AX, "off", names), names, [0, 0, 1], AX)
    cfg = fitter.config
    # the water group's width sits at its upper bound, the metabolite group's does not
    params = {"gamma": np.array([[np.pi * 4.0, np.pi * cfg.max_lw_hz]]), "sigma": np.zeros((1, 2)),
              "eps": np.zeros((1, 2)), "phi0": np.zeros(1), "phi1": np.zeros(1)}
    res = LCMResult(names, np.array([[10.0, 6.0, 20.0]]), np.array([[0.1, 0.1, 0.5]]), params,
                    np.zeros((1, 2)), np.zeros((1, 4)), np.zeros((1, 4)), np.zeros(4))
    flags = fitter._flags(res)[0]
    assert flags[:2] == ["ok", "ok"] and flags[2] == "shape_at_bound"


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
    assert not out["at_bound"][0]


def test_gannet_cr_flags_a_width_at_its_bound():
    # a "Cr" line 0.6 ppm wide: beyond the fit's 0.3 ppm width bound
    y = 5.0 / (1 + ((AX.ppm - 3.027) / 0.3) ** 2)
    assert fit_cr(y[None], AX)["at_bound"][0]
    # an inverted (unphased) line drives the height to its bound of 0; a normal line is not flagged at any
    # data scale (the height test is against the bound, not an absolute tolerance)
    good = 5.0 / (1 + ((AX.ppm - 3.027) / 0.03) ** 2)
    assert list(fit_cr(np.stack([-good, 1e-12 * good]), AX)["at_bound"]) == [True, False]


def test_gannet_gabaglx_areas_analytic():
    # three Gaussians of known areas on Gannet's baseline (linear + slow sine/cosine): areas A sqrt(pi/-b)
    f = AX.ppm
    peaks = [(3.0, -300.0, 3.71), (3.4, -350.0, 3.79), (1.0, -110.0, 3.01)]
    y = sum(A * np.exp(b * (f - c) ** 2) for A, b, c in peaks) + 0.2 * (f - 3.71) + 0.3 * np.sin(np.pi * f / 5.24) \
        - 0.1 * np.cos(np.pi * f / 5.24)
    out = fit_gabaglx(y[None], AX)
    area = lambda A, b: A * np.sqrt(np.pi / -b)
    assert out["gaba_area"][0] == pytest.approx(area(1.0, -110.0), rel=5e-3)
    assert out["glx_area"][0] == pytest.approx(area(3.0, -300.0) + area(3.4, -350.0), rel=5e-3)
    assert not out["at_bound"][0]


def test_gannet_gabaglx_flags_a_width_at_its_bound():
    f = AX.ppm
    # Glx far broader than Gannet's widest allowed Gaussian (b >= -40 ... here b = -15)
    y = np.exp(-110 * (f - 3.01) ** 2) + 3 * np.exp(-15 * (f - 3.71) ** 2) + 3 * np.exp(-15 * (f - 3.79) ** 2)
    assert fit_gabaglx(y[None], AX)["at_bound"][0]


def test_gannet_fits_do_not_depend_on_the_batch():
    rng = np.random.default_rng(3)
    f = AX.ppm
    ys = []
    for scale in (1.0, 50.0, 0.02):  # very different amplitudes in one batch
        y = scale * (np.exp(-110 * (f - 3.01) ** 2) + 3 * np.exp(-300 * (f - 3.71) ** 2) + 3 * np.exp(-300 * (f - 3.79) ** 2))
        ys.append(y + scale * 0.05 * rng.standard_normal(len(f)))
    ys = np.array(ys)
    for fit, key in ((fit_gaba, "area"), (fit_gabaglx, "gaba_area"), (fit_cr, "area")):
        together = fit(ys, AX)[key]
        alone = np.array([fit(y[None], AX)[key][0] for y in ys])
        assert np.allclose(together, alone, rtol=1e-9), fit.__name__


def test_line_broadening_adds_lorentzian_width_and_keeps_area():
    t = AX.time
    fid = 4.0 * np.exp(2j * np.pi * AX.ppm_to_hz(3.027) * t - np.pi * 5.0 * t)  # 5 Hz FWHM Lorentzian
    spec = AX.to_spectrum(fid)
    out = line_broaden(spec, AX, 3.0)
    # the spectrum's integral is N * fid[0], unchanged by apodisation exp(-pi lb t) (=1 at t = 0)
    assert out.sum() == pytest.approx(spec.sum(), rel=1e-9)
    zf = AX.with_points(AX.n_points * 8)

    def fwhm_hz(x):
        s = np.zeros(zf.n_points, complex)
        s[:AX.n_points] = AX.to_fid(x)
        r = zf.to_spectrum(s).real
        above = np.flatnonzero(r >= r.max() / 2)
        return (above[-1] - above[0]) * zf.hz_per_point
    assert fwhm_hz(out) - fwhm_hz(spec) == pytest.approx(3.0, abs=0.1)
    assert np.array_equal(line_broaden(spec, AX, 0.0), spec)


def test_gannet_fits_ratios():
    f = AX.ppm
    lor = lambda c, a, w=0.05: a / (1 + ((f - c) / (w / 2)) ** 2)
    off = AX.to_spectrum(AX.to_fid(lor(3.027, 10.0) + lor(3.207, 4.0)))
    diff = AX.to_spectrum(AX.to_fid(np.exp(-110 * (f - 3.01) ** 2) + 3 * np.exp(-300 * (f - 3.71) ** 2)
                                    + 3 * np.exp(-300 * (f - 3.79) ** 2)))
    out = gannet_fits(off[None], diff[None], AX)
    assert out["gabaglx_cr"][0] == pytest.approx(out["gabaglx"]["gaba_area"][0] / out["cr"]["area"][0])
    # GABA area 1 * sqrt(pi/110) ~ 0.169 after broadening; Cr area ~ 10 * pi * 0.05 / 2 ~ 0.785
    assert 0.17 < out["gaba_cr"][0] < 0.26 and 0.17 < out["gabaglx_cr"][0] < 0.26


def test_true_ratios_signal_and_concentration():
    import pandas as pd

    from mrsbench.fitting.validation import true_ratios
    cols = ("GABA", "MM3co", "Cr", "PCr", "Glu", "Gln", "NAA", "NAAG", "GPC", "PCh", "mI")
    gt = pd.DataFrame({m: [1.0, 2.0] for m in cols})
    for m in cols:
        if m != "MM3co":
            gt[f"t2w_{m}"] = [0.5, 0.5]
    gt["t2w_GABA"] = [0.25, 0.5]
    sig, conc = true_ratios(gt, "signal"), true_ratios(gt, "concentration")
    assert np.allclose(conc["GABA"], 0.5) and np.allclose(sig["GABA"], [0.25, 0.5])
    # MM3co is an amplitude already (no T2 weighting): GABA+ = (GABA t2w + MM3co) / (tCr t2w)
    assert np.allclose(sig["GABA+"], [(0.25 + 1) / 1.0, (1.0 + 2) / 2.0])
    with pytest.raises(ValueError):
        true_ratios(gt, "nonsense")


def test_quantify_cli_table(tmp_path, capsys):
    from dataclasses import replace

    import pandas as pd

    from mrsbench.cli import main
    from mrsbench.data.simulate import CohortConfig, simulate_cohort
    from mrsbench.data.datasets import write_dataset
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
    lcm = df[df.method == "lcm"]
    assert np.isfinite(lcm[lcm.estimate > 0].fit_error_percent).all()
    # combined rows are flagged from their own CRLB, not from a component's
    for m in ("GABA+", "Glx", "tNAA", "tCho", "tCr"):
        row = lcm[lcm.metabolite == m].iloc[0]
        assert ("crlb>" in row.flag) == (row.crlb_percent > 50), m


def test_recovery_simgaba_small():
    from mrsbench.data.datasets import load_dataset
    from mrsbench.fitting.validation import recovery
    rep = recovery(load_dataset("simgaba-small", progress=False))
    for k, v in rep.items():
        print(k, {a: round(b, 3) for a, b in v.items()})
    # 12 subjects drawn around the range centres (narrow spread): reported, guarded against regressions
    assert rep["lcm.tCho"]["r"] >= 0.95 and rep["lcm.Glx"]["r"] >= 0.9
    assert rep["lcm.GABA"]["r"] >= 0.85 and rep["lcm.GABA+"]["r"] >= 0.9
    assert rep["gannet_gabaglx.GABA+"]["r"] >= 0.75


def test_noise_free_validation_spectra_recover_the_signal_truth():
    """The validation cohort's noise-free ON/OFF (no drift, water, phase or noise): the LCM must give back
    the simulated signal ratios almost exactly, while the concentration ratios stay out of reach by the
    between-subject T2 jitter alone, which is why recovery is judged against the signal truth."""
    from mrsbench.data.simulate import simulate_cohort
    from mrsbench.fitting.quantify import Quantifier, lcm_ratios
    from mrsbench.fitting.validation import VALIDATION, true_ratios
    cohort, extras = simulate_cohort(VALIDATION)
    ax = cohort.axis
    off = ax.to_spectrum(extras["clean"][:, 1])
    diff = ax.to_spectrum(extras["clean"][:, 0]) - off
    est = lcm_ratios(*Quantifier(ax).fit(off, diff))
    sig = true_ratios(cohort.ground_truth, "signal")
    conc = true_ratios(cohort.ground_truth, "concentration")
    r = lambda k, t: np.corrcoef(est[k], t[k])[0, 1]
    for k in ("GABA", "Glx", "tNAA", "tCho", "mI"):
        assert r(k, sig) > 0.99, k
    assert r("GABA+", sig) > 0.98
    assert r("GABA", conc) < 0.97  # the T2-jitter cap (about 0.95)


@pytest.fixture(scope="module")
def validation():
    from mrsbench.fitting.validation import processed_spectra, validation_cohort
    cohort = validation_cohort()
    return cohort, processed_spectra(cohort)


def _restarts_check(axis, off, restarts: int = 10):
    """The quantifier's OFF fit of ``off`` and the best cost of ``restarts`` random line-shape starts on the
    same (water-free) data: (fraction of spectra within 0.1% of the best, result)."""
    from mrsbench.fitting.quantify import Quantifier
    q = Quantifier(axis)
    fitter = q.off
    res = q.fit_off(off)
    data = off - axis.to_spectrum(res.removed)   # what the fitter saw: residual water removed (HSVD)
    cost = lambda r: np.sum(np.abs(r.data - r.fit) ** 2, 1)
    c0, best = cost(res), cost(res)
    rng = np.random.default_rng(2024)
    G = fitter.G
    for _ in range(restarts):
        init = {"gamma": rng.uniform(0, np.pi * 10, (len(off), G)), "sigma": rng.uniform(0, 60, (len(off), G)),
                "eps": rng.uniform(-2 * np.pi * 3, 2 * np.pi * 3, (len(off), G))}
        best = np.minimum(best, cost(fitter.fit(data, init=init)))
    return np.mean(c0 <= best * 1.001), res


def test_lcm_converges_to_the_best_of_random_restarts(validation):
    """48 validation OFF spectra: the final cost is within 0.1% of the best of 10 random restarts for
    >= 95% of them (the former sigma parameterisation, 10 fixed iterations and one start: 31%, with 16
    fits stuck at sigma = 0), every fit reports convergence and no Gaussian sigma is stuck at 0."""
    cohort, (off, *_) = validation
    frac, res = _restarts_check(cohort.axis, off)
    print(f"within 0.1% of the best of 10 restarts: {frac:.3f}; iterations median {np.median(res.iterations)}")
    assert frac >= 0.95
    assert res.converged.all() and (res.iterations > 0).all()
    assert (res.params["sigma"][:, 0] > 1.0).all()  # metabolite Gaussian never trapped at 0


def test_lcm_converges_on_a_cohort_it_was_not_tuned_on():
    """The same check on 24 subjects of a fresh seed (never used in development): with residual water fitted
    as its own line-shape group (harness <= 1.9) 37-42 of 48 fresh-seed fits reached the best minimum (side
    minima of the water's tail, up to 2% in cost); with the water removed before the fit (HSVD) all did."""
    from dataclasses import replace
    from mrsbench.data.simulate import simulate_cohort
    from mrsbench.fitting.validation import VALIDATION, processed_spectra
    cohort = simulate_cohort(replace(VALIDATION, seed=20261127, subjects_per_site=6))[0]
    frac, res = _restarts_check(cohort.axis, processed_spectra(cohort)[0])
    print(f"fresh seed: within 0.1% of the best of 10 restarts: {frac:.3f}")
    assert frac >= 0.95 and res.converged.all()


def test_residual_water_removed_before_the_off_fit(basis):
    """Residual water made of two damped exponentials (4.68 and 4.74 ppm, 6 and 15 Hz, 10x the metabolite peak;
    analytic, not HSVD output) on noise-free OFF spectra of known amplitudes: the quantifier's HSVD model of it
    matches the true water over the fit window to 2% of the metabolite peak (measured <= 0.8%), the ratios to
    tCr come back within 1% (tNAA, tCho, Glx measured <= 0.1%; with the former H2O line-shape group up to 0.7,
    0.7 and 2.3% off), and model_fid adds the water back. Without water nothing is removed. mI (its 4.06 ppm
    line next to the window's edge) is not asserted: one spectrum's is 14% low (with the group: 69%)."""
    from mrsbench.fitting.quantify import OFF_MM, Quantifier
    q = Quantifier(AX)
    names = list(OFF_METABOLITES + OFF_MM)
    assert q.off.names == names   # no water column in the OFF basis
    rng = np.random.default_rng(5)
    amps = rng.uniform(0.5, 10, (3, len(names)))
    t = AX.time
    met = (amps @ basis.fids(AX, "off", names)) * np.exp(-(np.pi * 4.0 + 12.0 ** 2 * t) * t) * np.exp(0.2j)
    peak = np.abs(AX.to_spectrum(met)).max()
    water = sum(a * np.exp((2j * np.pi * AX.ppm_to_hz(ppm) - np.pi * lw) * t)
                for ppm, lw, a in ((4.68, 6.0, 1.0), (4.74, 15.0, 0.5))) * np.exp(1j)
    water = water * 10 * peak / np.abs(AX.to_spectrum(water)).max()
    clean, wet = q.fit_off(AX.to_spectrum(met)), q.fit_off(AX.to_spectrum(met + water))
    assert np.all(clean.removed == 0) and np.array_equal(clean.amplitudes, q.off.fit(AX.to_spectrum(met)).amplitudes)
    win = AX.window(0.2, 4.2)
    assert np.abs(AX.to_spectrum(wet.removed - water)[:, win]).max() < 0.02 * peak
    assert np.abs(AX.to_spectrum(q.off.model_fid(wet) - met - water)[:, win]).max() < 0.02 * peak

    def ratios(a):
        c = lambda *ns: sum(a[:, names.index(n)] for n in ns)
        return np.stack([c("NAA", "NAAG"), c("GPC", "PCh"), c("Glu", "Gln")]) / c("Cr", "PCr")
    assert np.abs(ratios(wet.amplitudes) / ratios(amps) - 1).max() < 0.01
    big = amps > 2
    assert np.median(np.abs(wet.amplitudes - amps)[big] / amps[big]) < 0.01


def test_nonfinite_point_outside_the_window_does_not_stop_the_water_removal(basis):
    """A spectrum with a NaN outside the fit window (which the fit never reads) in a batch: no error (HSVD needs
    a finite FID, so its water is not removed), and the other spectra's fits are those they get alone."""
    from mrsbench.fitting.quantify import Quantifier
    q = Quantifier(AX)
    names = list(q.off.names)
    rng = np.random.default_rng(2)
    good = np.stack([_synth(basis, names, rng.uniform(0.5, 5, len(names)), noise=0.05, seed=k) for k in range(2)])
    bad = good[:1].copy()
    bad[0, np.flatnonzero(AX.window(4.5, 4.6))[0]] = np.nan
    res = q.fit_off(np.concatenate([good, bad]))
    assert np.allclose(res.amplitudes[:2], q.fit_off(good).amplitudes, rtol=1e-3, atol=1e-6)  # (batch rounding)
    assert np.all(res.removed[2] == 0) and np.isfinite(res.amplitudes[2]).all()


def test_lcm_leaves_sigma_zero(basis):
    """Started exactly at sigma = 0 (where exp(-sigma^2 t^2) has zero derivative in sigma), the fit still
    finds the true Gaussian width: the Gaussian is fitted as s = sigma^2."""
    names = ["NAA", "Cr", "PCr", "GPC", "mI", "Glu"]
    amps = np.array([10.0, 5.0, 3.0, 1.5, 6.0, 8.0])
    spec = _synth(basis, names, amps, lw_hz=3.0, gauss=20.0, shift_hz=0.5, phi0=0.1)
    fitter = LCMFitter(basis.fids(AX, "off", names), names, [0] * len(names), AX, LCMConfig(precision="double"))
    res = fitter.fit(spec[None], init={"gamma": [[np.pi * 3.0]], "sigma": [[0.0]], "eps": [[0.0]]})
    assert res.params["sigma"][0, 0] == pytest.approx(20.0, rel=0.02)
    assert res.converged[0] and np.all(np.abs(res.amplitudes[0] - amps) / amps < 0.02)
    capped = LCMFitter(basis.fids(AX, "off", names), names, [0] * len(names), AX, LCMConfig(iterations=1)).fit(spec[None])
    assert not capped.converged[0] and all("not_converged" in f for f in capped.flags[0])


def test_recovery_validation_set(validation):
    """48 full scans whose concentrations span the published ranges uniformly (own seed): the issue's
    targets against the simulated signal amplitudes (conc * exp(-TE/T2), each subject's own T2)."""
    from mrsbench.fitting.validation import recovery
    cohort, spectra = validation
    rep = recovery(cohort, spectra=spectra)
    for k, v in rep.items():
        print("validation", k, {a: round(b, 3) for a, b in v.items()})
    for name in ("lcm.tNAA", "lcm.tCho", "lcm.mI"):
        assert rep[name]["r"] >= 0.95, name
    for name in ("lcm.GABA", "gannet_gabaglx.GABA+", "lcm.Glx", "gannet_gabaglx.Glx"):
        assert rep[name]["r"] >= 0.9, name
    assert rep["lcm.GABA+"]["r"] >= 0.85 and rep["gannet.GABA+"]["r"] >= 0.85
    assert rep["agreement.GABA+"]["r"] >= 0.85 and abs(rep["agreement.GABA+"]["bias_percent"]) < 5
    # against concentrations the 10% between-subject T2 jitter caps r (noise-free GABA/tCr ~0.96)
    assert rep["conc:lcm.GABA"]["r"] >= 0.85 and rep["conc:gannet_gabaglx.GABA+"]["r"] >= 0.85
    for name in ("conc:lcm.tNAA", "conc:lcm.tCho", "conc:lcm.mI"):
        assert rep[name]["r"] >= 0.95, name
    # OFF fit: GABA/tCr from the OFF spectrum alone (0.65 before the fit converged), unbiased OFF ratios
    assert rep["lcm_off.GABA"]["r"] >= 0.9
    for name in ("lcm.tNAA", "lcm.tCho", "lcm.mI", "lcm_off.Glx"):
        assert abs(rep[name]["bias"]) <= 3 and rep[name]["r"] >= 0.97, name


def test_design_matches_direct_formula_unsorted_groups_and_blocks(basis):
    """The blocked, group-sliced design equals the model written out directly in numpy: FFT of each
    basis FID times its group's line shape, with the global phase, for interleaved groups and a batch
    larger than one CPU block."""
    import torch
    from mrsbench.fitting import lcm
    names = ["NAA", "Cr", "PCr", "GPC", "mI"]
    groups = [1, 0, 2, 0, 1]
    fitter = LCMFitter(basis.fids(AX, "off", names), names, groups, AX, LCMConfig(precision="double"), device="cpu")
    rng = np.random.default_rng(3)
    Bn = lcm._CPU_BLOCK + 5
    th = {"gamma": rng.uniform(5, 40, (Bn, 3)), "sigma": rng.uniform(0, 30, (Bn, 3)), "eps": rng.uniform(-30, 30, (Bn, 3)),
          "phi0": rng.uniform(-1, 1, Bn), "phi1": rng.uniform(-1e-3, 1e-3, Bn)}
    A, _ = fitter._design({**{k: torch.as_tensor(v) for k, v in th.items()}, "sigma2": torch.as_tensor(th["sigma"] ** 2)})
    t, fids = AX.time, basis.fids(AX, "off", names)
    nu = 2 * np.pi * AX.hz[fitter.win]
    for b in (0, Bn - 1):
        for l, g in enumerate(groups):
            ls = np.exp(-(th["gamma"][b, g] + th["sigma"][b, g] ** 2 * t) * t - 1j * th["eps"][b, g] * t)
            col = AX.to_spectrum(fids[l] * ls)[fitter.win] * np.exp(1j * (th["phi0"][b] + th["phi1"][b] * nu))
            assert np.allclose(A[b, l].numpy(), col, rtol=1e-9, atol=1e-9 * np.abs(col).max())


def test_external_spectrum_quantified_stably(shared_dir):
    """The challenge's external ground truth (not simulated by mrsbench) as 40 + 40 transients with
    +-2 Hz jitter and noise at an averaged NAA SNR of ~200: three noise realisations give tNAA/tCr
    within 3% of each other (was 1.55-1.97, a 21% spread, when OFF fits stopped early), and so do tCho/tCr
    and Glx/tCr (their CRLBs at this SNR are a few percent; measured 1.0%, 2.6%, 1.2%). All fits converge."""
    from mrsbench.core.scans import Scan
    from mrsbench.fitting.quantify import Quantifier, lcm_ratios
    from mrsbench.processing import process
    d = shared_dir / "data" / "edited_mrs_challenge_sample"
    fids = np.load(d / "ground_truth_fids.npy")[0]  # (N, 2): OFF, ON
    ax = SpectralAxis(sw_hz=2000.0, f0_mhz=127.731, n_points=2048, centre_ppm=3.0 - 2000.0 / (2 * 2048 * 127.731))
    peak = np.abs(ax.to_spectrum(fids[:, 0])[ax.window(1.9, 2.1)]).max()
    n = 40
    sig = peak / 200 * np.sqrt(n / ax.n_points / 2)
    q = Quantifier(ax)
    est = []
    for seed in (10, 11, 12):
        rng = np.random.default_rng(seed)

        def transients(f):
            x = f[None] * np.exp(2j * np.pi * rng.uniform(-2, 2, (n, 1)) * ax.time[None])
            return x + sig * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))

        p = process(Scan.from_on_off(transients(fids[:, 1]), transients(fids[:, 0]), ax)).spectra()
        ro, rd = q.fit(p["off"][None], p["diff"][None])
        assert ro.converged.all()
        r = lcm_ratios(ro, rd)
        est.append([r["tNAA"][0], r["tCho"][0], r["Glx_off"][0]])
    est = np.array(est)
    spread = (est.max(0) - est.min(0)) / est.mean(0)
    print("external spectrum, spread of tNAA, tCho, Glx (OFF) /tCr over noise realisations:", np.round(spread, 4))
    assert (spread < 0.03).all()


def test_batched_nnls_matches_scipy_nnls():
    """The active-set NNLS on the normal equations agrees with scipy's Lawson-Hanson NNLS (an independent
    implementation) on random problems with some unconstrained columns and many active bounds, from a
    cold and from a (wrong) warm start."""
    import torch
    from scipy.optimize import nnls
    from mrsbench.fitting.nnls import nnls_normal
    rng = np.random.default_rng(11)
    B, m, n, free = 40, 60, 12, 3
    X = rng.standard_normal((B, m, n)) * rng.uniform(0.1, 10, (B, 1, n))
    y = rng.standard_normal((B, m)) + (X[:, :, :4] @ rng.uniform(0, 1, (B, 4, 1)))[..., 0]
    G = torch.as_tensor(np.einsum("bmi,bmj->bij", X, X))
    h = torch.as_tensor(np.einsum("bmi,bm->bi", X, y))
    for c0 in (None, torch.as_tensor(rng.uniform(0, 1, (B, n)))):
        got = nnls_normal(G, h, n - free, c0).numpy()
        for b in range(B):
            # free columns via the split x = x+ - x- (both >= 0): the standard reduction to NNLS
            Xs = np.concatenate([X[b], -X[b][:, n - free:]], 1)
            sol, _ = nnls(Xs, y[b])
            ref = np.concatenate([sol[:n - free], sol[n - free:n] - sol[n:]])
            assert np.allclose(got[b], ref, atol=1e-8 * np.abs(ref).max()), b
        assert (got[:, :n - free] >= 0).all() and (got[:, :n - free] == 0).mean() > 0.1


def test_diff_misalignment_model_recovers_a_known_on_off_misalignment():
    """ON rotated by a known 4 degrees and shifted by 0.3 Hz against OFF: with diff_misalignment="model" the
    DIFF fit's two extra coefficients move by the applied phase (rad) and frequency (Hz), and GABA+ stays where
    it was on the aligned DIFF (measured: within 1%), while the plain fit's GABA+ moves (by 25-30%: Cr's residue
    sits under it at 3.0 ppm)."""
    from mrsbench.data.datasets import load_dataset
    from mrsbench.fitting.quantify import Quantifier, lcm_ratios
    from mrsbench.processing import process
    c = load_dataset("simgaba-small", progress=False)
    sp = [process(s).spectra() for s in c.scans[:4]]
    off = np.stack([x["off"] for x in sp])
    on = np.stack([x["on"] for x in sp])
    dphi, df = np.radians(4.0), 0.3
    on_mis = AX.to_spectrum(AX.to_fid(on) * np.exp(1j * (2 * np.pi * df * AX.time + dphi)))
    diff, diff_mis = on - off, on_mis - off
    qm, q0 = Quantifier(AX, diff_misalignment="model"), Quantifier(AX)
    ro, rd = qm.fit(off, diff)
    _, rd_mis = qm.fit(off, diff_mis)
    moved = rd_mis.params["extra"] - rd.params["extra"]
    assert np.allclose(moved[:, 0], dphi, rtol=0.05) and np.allclose(moved[:, 1], df, rtol=0.05)
    g = lambda r_off, r_diff: lcm_ratios(r_off, r_diff)["GABA+"]
    ref = g(ro, rd)
    assert np.all(np.abs(g(ro, rd_mis) / ref - 1) < 0.02)
    ro0, rd0 = q0.fit(off, diff)
    _, rd0_mis = q0.fit(off, diff_mis)
    assert np.max(np.abs(g(ro0, rd0_mis) / g(ro0, rd0) - 1)) > 0.05
