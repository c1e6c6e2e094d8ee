"""Statistical realism of the simulated cohort, each against its configured target."""
from dataclasses import replace

import numpy as np
import pytest

from mrsbench.data.simulate import CohortConfig, simulate_cohort
from mrsbench.data.datasets import content_hash, load_dataset, write_dataset


@pytest.fixture(scope="module")
def small():
    return load_dataset("simgaba-small", with_extras=True, progress=False)


def _corrected(scan, drift_hz, phase_deg):
    t = scan.axis.time
    return scan.fids * np.exp(-2j * np.pi * drift_hz[:, None] * t[None] - 1j * np.deg2rad(phase_deg))


def _fwhm_hz(spec_real, ax, lo, hi, zf=8):
    """Half-height full width of the largest peak in [lo, hi] ppm (linear interpolation)."""
    w = np.flatnonzero(ax.window(lo, hi))
    i = w[np.argmax(spec_real[w])]
    h = spec_real[i] / 2
    l = i
    while spec_real[l] > h:
        l -= 1
    r = i
    while spec_real[r] > h:
        r += 1
    xl = l + (h - spec_real[l]) / (spec_real[l + 1] - spec_real[l])
    xr = r - 1 + (spec_real[r - 1] - h) / (spec_real[r - 1] - spec_real[r])
    return (xr - xl) * ax.hz_per_point


def test_shape_and_labels(small):
    cohort, extras = small
    assert len(cohort) == 12 and len(set(cohort.sites)) == 3
    s = cohort.scans[0]
    assert s.fids.shape == (320, 2048) and s.edit.sum() == 160
    assert np.array_equal(s.edit[:4], [1, 0, 1, 0])  # interleaved
    ax = s.axis
    assert (ax.sw_hz, ax.n_points, ax.f0_mhz) == (2000.0, 2048, 127.75)
    gt = cohort.ground_truth
    for col in ("subject", "site", "GABA", "Glu", "Gln", "NAA", "NAAG", "Cr", "PCr", "GPC", "PCh", "mI", "MM3co",
                "naa_fwhm_hz", "snr", "drift_hz_per_min", "outlier_transients"):
        assert col in gt.columns


def test_naa_linewidth_per_site(small):
    cohort, ex = small
    gt = cohort.ground_truth
    ax = cohort.axis
    big = ax.with_points(ax.n_points * 8)
    measured = []
    for k, s in enumerate(cohort.scans):
        off = _corrected(s, ex["drift_hz"][k], gt.phase_deg[k])[s.edit == 0].mean(0)
        zf = np.zeros(big.n_points, complex)
        zf[: ax.n_points] = off
        spec = big.to_spectrum(zf).real
        measured.append(_fwhm_hz(spec, big, 1.95, 2.06))
    gt = gt.assign(measured=measured)
    for site, g in gt.groupby("site"):
        # NAAG (2.04 ppm) and eddy currents broaden slightly: within 20% of the configured Voigt FWHM
        assert g.measured.mean() == pytest.approx(g.naa_fwhm_hz.mean(), rel=0.2), site
    assert 5.0 <= np.median(measured) <= 11.0  # in-vivo 6-9 Hz (invivo.md)


def test_single_transient_snr_per_site(small):
    cohort, ex = small
    gt = cohort.ground_truth
    ax = cohort.axis
    wn = ax.window(9.8, 10.8)
    snr = []
    for k, s in enumerate(cohort.scans):
        spec = ax.to_spectrum(_corrected(s, ex["drift_hz"][k], gt.phase_deg[k])[s.edit == 0]).real
        clean = ax.to_spectrum(ex["clean"][k, 1]).real
        peak = clean[ax.window(1.9, 2.1)].max()
        noise = spec[:, wn]
        resid = noise - noise.mean(1, keepdims=True)
        snr.append(peak / np.median(resid.std(1)))
    gt = gt.assign(measured=snr)
    for site, g in gt.groupby("site"):
        assert g.measured.mean() == pytest.approx(g.snr.mean(), rel=0.15), site
    assert 10 <= np.median(snr) <= 25  # order 15-20 (invivo.md)


def test_frequency_drift_recovered(small):
    cohort, ex = small
    ax = cohort.axis
    gt = cohort.ground_truth
    big = ax.with_points(ax.n_points * 4)
    errs = []
    for k in (0, 5, 9):
        s = cohort.scans[k]
        x = np.zeros((s.n_transients, big.n_points), complex)
        x[:, : ax.n_points] = s.fids * np.exp(-np.pi * 3 * ax.time)
        mag = np.abs(big.to_spectrum(x))
        w = np.flatnonzero(big.window(1.85, 2.2))  # NAA singlet (present in both ON and OFF residue)
        off = s.edit == 0
        bad = [int(v) for v in str(gt.outlier_transients[k]).split(";") if v]
        off[bad] = False  # motion-corrupted transients carry their own frequency jumps
        i = w[np.argmax(mag[:, w], axis=1)]
        y0, y1, y2 = mag[np.arange(len(i)), i - 1], mag[np.arange(len(i)), i], mag[np.arange(len(i)), i + 1]
        frac = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
        f_est = (i + frac - big.n_points // 2) * big.hz_per_point - big.ppm_to_hz(2.008)
        true = ex["drift_hz"][k]
        e = (f_est - f_est[off].mean()) - (true - true[off].mean())
        errs.append(np.sqrt(np.mean(e[off] ** 2)))
        tmin = np.arange(s.n_transients) * 2.0 / 60
        slope = np.polyfit(tmin[off], f_est[off], 1)[0]
        assert slope == pytest.approx(gt.drift_hz_per_min[k], abs=0.15 + 0.1 * abs(gt.drift_hz_per_min[k]))
    assert max(errs) < 1.0


def test_gaba_plus_cr_and_mm_share(small):
    cohort, ex = small
    ax = cohort.axis
    gt = cohort.ground_truth
    spec = ax.to_spectrum(ex["clean"]).real
    diff, off = spec[:, 0] - spec[:, 1], spec[:, 1]
    ratio = diff[:, ax.window(2.79, 3.2)].sum(1) / off[:, ax.window(2.93, 3.12)].sum(1)
    # Big GABA Gannet GABA+/Cr ~0.09-0.12 (invivo.md); individuals spread around it
    assert 0.07 <= np.median(ratio) <= 0.14
    assert np.all((ratio > 0.03) & (ratio < 0.25))
    # MM share of the edited 3 ppm signal, rendered from the components
    from mrsbench.physics.basis import load_basis
    b = load_basis()
    d = ax.to_spectrum(b.fids(ax, "diff", ["GABA", "MM3co"], lw_hz=6.0)).real[:, ax.window(2.85, 3.17)].sum(1)
    from mrsbench.data.simulate import T2_S
    for _, r in gt.iterrows():
        share = r.MM3co * d[1] / (r.MM3co * d[1] + r.GABA * np.exp(-0.068 / T2_S["GABA"]) * d[0])
        assert 0.35 <= share <= 0.55  # 41-49% configured (T2 jitter moves it slightly)


def test_motion_outliers_recorded(small):
    cohort, _ = small
    idx = [int(i) for v in cohort.ground_truth.outlier_transients for i in str(v).split(";") if i]
    assert 0 < len(idx) < 0.05 * 320 * len(cohort)


def test_determinism_and_seed():
    cfg = replace(CohortConfig(), n_sites=1, subjects_per_site=2, n_pairs=8)
    a, _ = simulate_cohort(cfg)
    b, _ = simulate_cohort(cfg)
    assert content_hash(a) == content_hash(b)
    for sa, sb in zip(a.scans, b.scans):
        assert sa.fids.tobytes() == sb.fids.tobytes()
    c, _ = simulate_cohort(replace(cfg, seed=cfg.seed + 1))
    assert content_hash(c) != content_hash(a)
    assert not np.allclose(c.ground_truth.GABA, a.ground_truth.GABA)


def test_simulate_files_load_back(tmp_path):
    from nifti_mrs.nifti_mrs import NIFTI_MRS
    import pandas as pd
    from mrsbench.data.readers import read_folder
    cfg = replace(CohortConfig(), n_sites=1, subjects_per_site=2, n_pairs=4)
    cohort, extras = simulate_cohort(cfg)
    write_dataset(cohort, extras, tmp_path)
    back = read_folder(tmp_path)
    assert back.subjects == cohort.subjects
    for a, b in zip(cohort.scans, back.scans):  # re-referenced from 4.68 to 4.65 ppm on writing
        np.testing.assert_allclose(b.fids * np.exp(-2j * np.pi * 0.03 * a.axis.f0_mhz * a.axis.time), a.fids,
                                   rtol=0, atol=1e-12 * np.abs(a.fids).max())
        np.testing.assert_array_equal(a.edit, b.edit)
        assert b.site == a.site
    img = NIFTI_MRS(str(tmp_path / "sub-001.nii.gz"))
    assert img.shape == (1, 1, 1, 2048, 4, 2) and img.dim_tags[1] == "DIM_EDIT"
    gt = pd.read_csv(tmp_path / "ground_truth.csv")
    assert list(gt.subject) == cohort.subjects and "MM3co" in gt.columns
    z = np.load(tmp_path / "noise_free_spectra.npz")
    assert z["on"].shape == (2, 2048)
    assert z["phase_rad"].shape == z["drift_hz"].shape == (2, cohort.scans[0].n_transients)


def test_cli_simulate(tmp_path):
    from mrsbench.cli import main
    assert main(["simulate", "--dataset", "nope", "--out", str(tmp_path)]) == 2


def test_user_folder_loads_as_dataset(tmp_path):
    cfg = replace(CohortConfig(), n_sites=1, subjects_per_site=3, n_pairs=4)
    cohort, extras = simulate_cohort(cfg)
    write_dataset(cohort, extras, tmp_path)
    c = load_dataset(tmp_path, progress=False)
    assert c.subjects == cohort.subjects and c.ground_truth is None
    # through NIfTI-MRS with the receiver at 4.65 ppm: the same signal, re-referenced from 4.68 ppm
    for a, b in zip(cohort.scans, c.scans):
        assert b.axis.centre_ppm == 4.65 and a.axis.centre_ppm == 4.68
        back = b.fids * np.exp(-2j * np.pi * 0.03 * a.axis.f0_mhz * a.axis.time)
        np.testing.assert_allclose(back, a.fids, rtol=0, atol=1e-12 * np.abs(a.fids).max())
        np.testing.assert_array_equal(b.edit, a.edit)
    assert c.meta["identity"] == f"files-{c.meta['content_hash']}"


def test_nifti_peaks_at_true_ppm_in_the_4_65_convention(tmp_path):
    """A file mrsbench writes, read as FSL-MRS/spec2nii users read it (nifti_mrs data, receiver assumed
    at 4.65 ppm, axis built here independently): NAA and Cr sit at their true ppm."""
    from nifti_mrs.nifti_mrs import NIFTI_MRS
    from mrsbench.data.nifti_mrs import write_nifti_mrs
    from mrsbench.core.scans import Scan
    cfg = replace(CohortConfig(), n_sites=1, subjects_per_site=1, n_pairs=16)
    cohort, extras = simulate_cohort(cfg)
    clean = extras["clean"][0]  # noise-free ON, OFF of the subject (no frequency offset or drift)
    scan = Scan.from_on_off(np.repeat(clean[:1], 2, 0), np.repeat(clean[1:], 2, 0), cohort.axis)
    p = write_nifti_mrs(scan, tmp_path / "s.nii.gz")
    img = NIFTI_MRS(str(p))
    data = np.asarray(img[:])[0, 0, 0]  # (points, dyn, edit)
    off = data[:, :, list(img.hdr_ext["dim_6_header"]["EditCondition"]).index("OFF")].mean(1)
    n, bw, f0 = len(off), img.spectralwidth, img.spectrometer_frequency[0]
    ppm = (np.arange(n) - n // 2) * bw / n / f0 + 4.65
    spec = np.abs(np.fft.fftshift(np.fft.fft(off)))
    for lo, hi, true in ((1.9, 2.1, 2.008), (2.95, 3.1, 3.027)):
        w = (ppm > lo) & (ppm < hi)
        assert ppm[w][np.argmax(spec[w])] == pytest.approx(true, abs=0.01)


def test_cohort_from_an_exported_basis_recovers_its_truth(tmp_path):
    """A cohort simulated from the basis `mrsbench basis` exports (FSL-MRS JSON, 2 Hz broadened) instead of
    the built-in engine: same subjects and variation model, detuning off; quantified with the built-in
    quantifier it recovers its known truth about as well as the built-in cohort does (measured: r within
    0.005, mean bias within 1.5 points). From the LCModel .BASIS export the cohort is the same."""
    from dataclasses import replace

    from mrsbench.cli import main
    from mrsbench.data.simulate import CohortConfig, simulate_cohort
    from mrsbench.fitting.validation import processed_spectra, recovery
    from mrsbench.core.errors import InputError
    from mrsbench.physics.external_basis import basis_hash
    assert main(["basis", "--out", str(tmp_path / "b")]) == 0
    lcm = tmp_path / "lcm"
    lcm.mkdir()
    for c in ("on", "off"):
        (lcm / f"edit_{c}.BASIS").write_bytes((tmp_path / "b" / f"edit_{c}.BASIS").read_bytes())
    cfg = CohortConfig(name="t", n_sites=2, subjects_per_site=6, n_pairs=32, seed=99, conc_sampling="uniform")
    own, _ = simulate_cohort(cfg)
    ext, ex = simulate_cohort(replace(cfg, basis_dir=str(tmp_path / "b"), basis_hash=basis_hash(tmp_path / "b")))
    _, ex2 = simulate_cohort(replace(cfg, basis_dir=str(lcm), basis_hash=basis_hash(lcm)))
    assert np.allclose(ex2["clean"], ex["clean"], atol=1e-5 * np.abs(ex["clean"]).max())
    a, b = recovery(own, spectra=processed_spectra(own)), recovery(ext, spectra=processed_spectra(ext))
    for k in ("lcm.tNAA", "lcm.tCho", "lcm.mI", "lcm_off.Glx", "lcm.GABA+"):
        print(k, round(a[k]["r"], 3), round(b[k]["r"], 3), round(a[k]["bias"], 1), round(b[k]["bias"], 1))
        assert b[k]["r"] >= a[k]["r"] - (0.1 if k == "lcm.GABA+" else 0.03), k
        if k != "lcm.GABA+":
            assert abs(b[k]["bias"] - a[k]["bias"]) < 4.0, k
    with pytest.raises(InputError, match="basis: expected FSL-MRS folders"):
        simulate_cohort(replace(cfg, basis_dir=str(tmp_path), basis_hash="x"))


def test_cached_cohort_is_memory_mapped_with_the_same_bytes(tmp_path, small):
    """The dataset cache's FIDs are mapped from the .npz where it stores them uncompressed: the same bytes as
    numpy reads through zipfile (2-D, 1-D fortran-order and object arrays are read the plain way), compressed
    members fall back, and the mapped scans can be written to (copy-on-write: the file stays as it was)."""
    import zipfile

    from mrsbench.data.datasets import _stored_npz_array
    cohort, _ = small
    x = np.stack([s.fids for s in cohort.scans[:3]])
    f = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    np.savez(tmp_path / "a.npz", fids=x, f=f, labels=np.array(["a", "bb"]))
    np.savez_compressed(tmp_path / "c.npz", fids=x)
    mm = _stored_npz_array(tmp_path / "a.npz", "fids")
    assert mm is not None and mm.dtype == x.dtype and np.array_equal(mm, x)
    assert np.array_equal(_stored_npz_array(tmp_path / "a.npz", "f"), f)
    assert np.array_equal(_stored_npz_array(tmp_path / "a.npz", "labels"), np.array(["a", "bb"]))
    assert _stored_npz_array(tmp_path / "c.npz", "fids") is None
    assert _stored_npz_array(tmp_path / "a.npz", "missing") is None
    mm[0, 0, 0] = 99
    assert np.array_equal(np.load(tmp_path / "a.npz")["fids"], x)
    with zipfile.ZipFile(tmp_path / "a.npz") as zf:
        assert zf.testzip() is None
    from mrsbench.data.datasets import config_key, dataset_config
    from mrsbench.physics.basis import cache_dir
    cfg = dataset_config("simgaba-small")
    again = load_dataset("simgaba-small", progress=False)   # from the mapped cache
    plain = np.load(cache_dir() / "datasets" / f"{cfg.name}-{config_key(cfg)}.npz")["fids"]
    assert all(np.array_equal(s.fids, plain[i]) for i, s in enumerate(again.scans))
