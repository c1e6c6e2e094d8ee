"""Real data in: each layout spec2nii, BIDS and the Edited-MRS challenge produce, read, harmonised, run through
`mrsbench run --preset tiny` and `mrsbench quantify`; harmonised peaks where the native ones are."""
import json
import warnings

import numpy as np
import pytest

from mrsbench.core.axis import SpectralAxis
from mrsbench.cli import main
from mrsbench.core.errors import InputError
from mrsbench.core.grid import BENCH_AXIS, resample_fids
from mrsbench.physics.basis import load_basis
from mrsbench.data.readers import read_challenge_h5, read_path

# typical grey-matter concentrations (mM; de Graaf, In Vivo NMR Spectroscopy, table 2.x)
CONC = {"NAA": 12.0, "NAAG": 1.5, "Cr": 5.0, "PCr": 4.0, "GPC": 1.0, "PCh": 0.6, "mI": 6.0, "Glu": 9.0, "Gln": 3.0,
        "GABA": 1.4, "GSH": 1.5, "MM3co": 1.1, "MM09": 1.6}
SUBJECTS = 6


@pytest.fixture(scope="module")
def basis():
    return load_basis()


def _clean(basis, axis: SpectralAxis, seed: int):
    """Noise-free ON and OFF FIDs on ``axis`` rendered from the basis's lines (frequencies, amplitudes) and
    Gaussian MM components, every line placed at its ppm; at another field the J-coupled patterns are
    not re-simulated (a test scan of another vendor, not physics). Independent of mrsbench.core.grid."""
    rng = np.random.default_rng(seed)
    amps = {k: v * rng.uniform(0.9, 1.1) for k, v in CONC.items()}
    t = axis.time
    cfg = basis.config
    out = []
    for cond in ("on", "off"):
        fid = np.zeros(axis.n_points, complex)
        for name, a in amps.items():
            if name in basis.lines:
                f, amp = basis.lines[name][cond]
                nu = ((cfg.centre_ppm + np.asarray(f) / cfg.f0_mhz) - axis.centre_ppm) * axis.f0_mhz
                fid += a * (np.exp(2j * np.pi * np.outer(t, nu)) @ amp)
            else:
                for ppm, fwhm, protons in basis.gaussians[name][cond]:
                    fid += a * protons * np.exp(2j * np.pi * (ppm - axis.centre_ppm) * axis.f0_mhz * t
                                                - (np.pi * fwhm * t) ** 2 / (4 * np.log(2)))
        out.append(fid * np.exp(-np.pi * 4.0 * t - (np.pi * 4.0 * t) ** 2 / (4 * np.log(2))))
    return out[0], out[1]


def _scan(basis, axis, subject, seed, n_pairs=24, site=""):
    from mrsbench.core.scans import Scan
    on, off = _clean(basis, axis, seed)
    rng = np.random.default_rng(seed + 100)
    t = axis.time
    sig = np.abs(off).max() / 20.0

    def tr(x):
        f = rng.normal(0, 1.0, (n_pairs, 1))
        y = x[None] * np.exp(2j * np.pi * f * t[None])
        return y + sig * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))

    return Scan.from_on_off(tr(on), tr(off), axis, subject=subject, site=site)


def _nifti(data, tags, axis, path, hdr_extra=None):
    """NIfTI-MRS as spec2nii writes it (nifti_mrs's own writer; FIDs in the NIfTI-MRS convention)."""
    from nifti_mrs.create_nmrs import gen_nifti_mrs_hdr_ext
    from nifti_mrs.hdr_ext import Hdr_Ext
    hdr = Hdr_Ext(axis.f0_mhz, "1H", dimensions=4 + len(tags))
    for k, tag in enumerate(tags):
        hdr.set_dim_info(k, tag)
    hdr.set_standard_def("SpecFreqChemShift", axis.centre_ppm)
    for k, v in (hdr_extra or {}).items():
        hdr.set_standard_def(k, v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = gen_nifti_mrs_hdr_ext(np.ascontiguousarray(data.astype(np.complex128)), axis.dwell_s, hdr)
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(str(path))
    return path


AX465 = SpectralAxis(centre_ppm=4.65)  # spec2nii's receiver reference


def _write_layout(kind, basis, root):
    """Six subjects in one of the layouts; returns the dataset path."""
    for i in range(SUBJECTS):
        if kind == "mixed":
            axis = [AX465, SpectralAxis(5000.0, 123.25, 4096, 4.65), SpectralAxis(4000.0, 127.7, 4096, 4.65)][i % 3]
        else:
            axis = AX465
        s = _scan(basis, axis, f"s{i}", seed=i)
        on, off = s.on, s.off
        inter = np.empty((2 * len(on), axis.n_points), complex)
        inter[0::2], inter[1::2] = on, off
        if kind in ("interleaved", "mixed"):
            _nifti(inter.T[None, None, None], ["DIM_DYN"], axis, root / f"sub{i:02d}_svs.nii.gz")
        elif kind == "separate":
            _nifti(on.T[None, None, None], ["DIM_DYN"], axis, root / f"sub{i:02d}_svs_on.nii.gz")
            _nifti(off.T[None, None, None], ["DIM_DYN"], axis, root / f"sub{i:02d}_svs_off.nii.gz")
        elif kind == "coils":
            g = np.array([1.0, 0.6, 0.3]) * np.exp(1j * np.array([0.2, -1.0, 2.1]))
            rng = np.random.default_rng(i)
            x = inter.T[..., None] * g + 0.3 * np.abs(off).max() / 20 * (
                rng.standard_normal(inter.T.shape + (3,)) + 1j * rng.standard_normal(inter.T.shape + (3,)))
            _nifti(x[None, None, None], ["DIM_DYN", "DIM_COIL"], axis, root / f"sub{i:02d}_svs.nii.gz")
        elif kind == "bids":
            d = root / f"sub-{i:02d}" / "ses-01" / "mrs"
            _nifti(inter.T[None, None, None], ["DIM_DYN"], axis, d / f"sub-{i:02d}_ses-01_svs.nii.gz")
            water = np.exp(2j * np.pi * axis.ppm_to_hz(4.68) * axis.time - np.pi * 6 * axis.time) * 1e3
            _nifti(np.tile(water[:, None], (1, 4))[None, None, None], ["DIM_DYN"], axis,
                   d / f"sub-{i:02d}_ses-01_mrsref.nii.gz")
    if kind == "bids":
        (root / "participants.tsv").write_text("participant_id\tsite\n" + "".join(
            f"sub-{i:02d}\t{'GE' if i % 2 else 'Philips'}\n" for i in range(SUBJECTS)))
    return root


def _peak_ppm(spec, axis, lo, hi):
    w = axis.window(lo, hi)
    return axis.ppm[w][np.argmax(spec[w])]


@pytest.mark.parametrize("kind", ["interleaved", "separate", "coils", "bids", "mixed"])
def test_layout_reads_runs_and_quantifies(kind, basis, tmp_path, capsys):
    root = _write_layout(kind, basis, tmp_path / kind)
    c = read_path(root)
    assert len(c.scans) == SUBJECTS and sorted(s.subject for s in c.scans)[0] in ("s0", "sub00_svs", "sub00_svs_on",
                                                                                   "sub00", "sub-00_ses-01")
    for s in c.scans:  # ON is the condition with the smaller NAA (the order was told, or given)
        assert s.n_transients == 48
    if kind == "bids":
        assert {s.site for s in c.scans} == {"GE", "Philips"} and len(c.meta["water_references"]) == SUBJECTS
        assert c.scans[0].subject.startswith("sub-") and c.meta["layout"] == "bids"
    if kind == "mixed":
        h = c.meta["harmonisation"]
        assert len(h["resampled"]) == SUBJECTS and all(s.axis == BENCH_AXIS for s in c.scans)
    rc = main(["run", "--model", "pca", "--preset", "tiny", "--dataset", str(root), "--out", str(tmp_path / "runs"),
               "--no-progress"])
    assert rc == 0
    res = json.loads(next((tmp_path / "runs").glob("*/results.json")).read_text())
    assert res["dataset_hash"].startswith("files-") and res["dataset_reading"]["layout"] in ("folder", "bids")
    # 24 transients per condition, fewer than the preset's full scan of 160: run, but said so (issue 35)
    assert all(v == [24, 24] for v in res["short_subjects"].values())
    assert len(res["short_subjects"]) == SUBJECTS and "Short scans: 6 subject(s)" in capsys.readouterr().out
    assert np.isfinite(res["metrics"]["reconstruction.test.nmse"]) if "reconstruction.test.nmse" in res["metrics"] else True
    capsys.readouterr()
    assert main(["quantify", str(root)]) == 0
    out = capsys.readouterr().out
    assert "GABA+" in out and "subject" in out


def test_harmonised_peaks_sit_where_the_native_ones_do(basis):
    """NAA, Cr (OFF) and the GABA+ DIFF peak of scans natively at 2000 Hz/2048, 5000 Hz/4096 (123.25 MHz)
    and 4000 Hz/4096 (127.7 MHz) lie at the same ppm (+-0.01) before and after resampling onto the
    benchmark axis; the NAA area is kept."""
    for axis in (AX465, SpectralAxis(5000.0, 123.25, 4096, 4.65), SpectralAxis(4000.0, 127.7, 4096, 4.65)):
        on, off = _clean(basis, axis, 3)
        h_on, h_off = resample_fids(np.stack([on, off]), axis)
        big = axis.with_points(axis.n_points * 8)  # native peaks on a fine (zero-filled) grid

        def zf(x):
            y = np.zeros(big.n_points, complex)
            y[:axis.n_points] = x
            return big.to_spectrum(y).real

        hb = BENCH_AXIS.with_points(BENCH_AXIS.n_points * 8)

        def zfh(x):
            y = np.zeros(hb.n_points, complex)
            y[:BENCH_AXIS.n_points] = x
            return hb.to_spectrum(y).real

        for (lo, hi), (a, b) in (((1.9, 2.1), (off, h_off)), ((2.95, 3.1), (off, h_off)), ((2.9, 3.1), (on - off, h_on - h_off))):
            assert _peak_ppm(zf(a), big, lo, hi) == pytest.approx(_peak_ppm(zfh(b), hb, lo, hi), abs=0.01), (axis, lo)
        w, wh = big.window(1.85, 2.15), hb.window(1.85, 2.15)
        area = zf(off)[w].sum() / big.n_points * (big.n_points / axis.n_points)
        area_h = zfh(h_off)[wh].sum() / hb.n_points * (hb.n_points / BENCH_AXIS.n_points)
        assert area_h == pytest.approx(area, rel=0.02)


def _challenge_file(shared_dir, path, scans=SUBJECTS, n=24, seed=0):
    import h5py
    d = shared_dir / "data" / "edited_mrs_challenge_sample"
    gt = np.load(d / "ground_truth_fids.npy")[0]            # (points, 2): OFF, ON
    rng = np.random.default_rng(seed)
    t = np.load(d / "t.npy")[0]
    x = np.empty((scans, gt.shape[0], 2, n), complex)
    sig = np.abs(gt).max() / 30
    for s in range(scans):
        a = rng.uniform(0.9, 1.1)
        for c in range(2):
            f = rng.normal(0, 1.5, n)
            x[s, :, c] = a * gt[:, c, None] * np.exp(2j * np.pi * np.outer(t, f)) + \
                sig * (rng.standard_normal((gt.shape[0], n)) + 1j * rng.standard_normal((gt.shape[0], n)))
    with h5py.File(path, "w") as h:
        h["transient_fids"] = x
        h["ppm"] = np.load(d / "ppm.npy")
        h["t"] = t[None]
        h["target_spectra"] = np.zeros((scans, gt.shape[0]))
    return path


def test_challenge_h5_read_run_and_quantified(shared_dir, tmp_path, capsys):
    p = _challenge_file(shared_dir, tmp_path / "track1.h5")
    c = read_challenge_h5(p)
    assert len(c.scans) == SUBJECTS and c.scans[0].n_transients == 48 and c.meta["target_spectra_shape"][0] == SUBJECTS
    ax = c.axis
    assert ax.f0_mhz == pytest.approx(127.731, rel=1e-4) and ax.sw_hz == pytest.approx(2000.0)
    from mrsbench.processing import process
    sp = process(c.scans[0]).spectra()
    # the challenge README: NAA at 2.00 ppm in OFF (the ppm convention, checked to +/-0.015), the ON-OFF GABA
    # peak at 3.01 ppm: at 24 + 24 noisy transients the maximum of the GABA multiplet falls on either of its
    # lobes (2.96 or 3.0-3.04 ppm, depending on noise and a fraction of a degree of ON/OFF phase)
    assert _peak_ppm(sp["off"].real, ax, 1.9, 2.1) == pytest.approx(2.008, abs=0.015)
    assert _peak_ppm(sp["diff"].real, ax, 2.9, 3.1) == pytest.approx(3.0, abs=0.05)
    assert main(["run", "--model", "pca", "--preset", "tiny", "--dataset", str(p), "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["quantify", str(p)]) == 0 and "track1-000" in capsys.readouterr().out
    assert main(["datasets", str(p), "--figure", str(tmp_path / "q.png"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "challenge-hdf5" in out and "track1-005" in out and (tmp_path / "q.png").stat().st_size > 1000


def test_bad_real_data_inputs(tmp_path, basis, shared_dir):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"notes\.txt: unknown layout"):
        read_path(tmp_path / "notes.txt")
    # mixed field strengths: a 7 T scan among 3 T scans
    d = tmp_path / "mixed_field"
    s = _scan(basis, AX465, "a", 0)
    inter = s.fids
    _nifti(inter.T[None, None, None], ["DIM_DYN"], AX465, d / "a.nii.gz")
    ax7 = SpectralAxis(4000.0, 297.2, 2048, 4.65)
    _nifti(inter.T[None, None, None], ["DIM_DYN"], ax7, d / "b7t.nii.gz")
    with pytest.raises(InputError, match=r"b7t\.nii\.gz: field strength 6\.98 T"):
        read_path(d)
    # an ON file without its OFF partner
    e = tmp_path / "lonely"
    _nifti(s.on.T[None, None, None], ["DIM_DYN"], AX465, e / "x_on.nii.gz")
    with pytest.raises(InputError, match=r"x_on\.nii\.gz: a one-condition file"):
        read_path(e)
    # an HDF5 file that is not a challenge file
    import h5py
    with h5py.File(tmp_path / "other.h5", "w") as h:
        h["data"] = np.zeros(3)
    with pytest.raises(InputError, match=r"other\.h5: not an Edited-MRS challenge file"):
        read_path(tmp_path / "other.h5")
    # through the CLI: one line naming the file, no traceback
    assert main(["datasets", str(d), "--quiet"]) != 0
