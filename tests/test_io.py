import numpy as np
import pytest

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.errors import InputError
from mrsbench.data.nifti_mrs import read_nifti_mrs, write_nifti_mrs
from mrsbench.data.readers import read_folder

from conftest import make_scan


def _gen(data, tags, dwell=5e-4, f0=127.75, hdr=None, centre=None):
    from nifti_mrs.create_nmrs import gen_nifti_mrs
    img = gen_nifti_mrs(data, dwell, f0, dim_tags=tags)
    for k, h in (hdr or {}).items():
        img.set_dim_tag(k, k, header=h)
    if centre is not None:
        img.add_hdr_field("SpecFreqChemShift", centre)
    return img


def test_round_trip_lossless(tmp_path):
    s = make_scan(5, subject="sub-01", site="philips1", axis=SpectralAxis(centre_ppm=4.65))
    p = write_nifti_mrs(s, tmp_path / "sub-01.nii.gz")
    r = read_nifti_mrs(p)
    np.testing.assert_array_equal(r.fids, s.fids)  # bit-exact
    np.testing.assert_array_equal(r.edit, s.edit)
    assert r.axis == s.axis and r.subject == "sub-01" and r.site == "philips1"
    assert r.meta["edit_order"] == "EditCondition header"


def test_round_trip_re_references_to_4_65(tmp_path):
    """A scan referenced at 4.68 ppm is written with the receiver at 4.65 ppm (the ecosystem's) and
    reads back with its peaks at the same ppm."""
    s = make_scan(5)
    assert s.axis.centre_ppm == 4.68
    r = read_nifti_mrs(write_nifti_mrs(s, tmp_path / "x.nii.gz"))
    assert r.axis.centre_ppm == 4.65
    peak = lambda sc: sc.axis.ppm[np.argmax(np.abs(sc.axis.to_spectrum(sc.off.mean(0))))]
    pt = s.axis.sw_hz / s.axis.n_points / s.axis.f0_mhz  # one spectral point (ppm): the grids differ by 3.9 points
    assert peak(r) == pytest.approx(peak(s), abs=pt) and peak(r) == pytest.approx(2.008, abs=pt)
    back = r.fids * np.exp(-2j * np.pi * 0.03 * s.axis.f0_mhz * s.axis.time)
    np.testing.assert_allclose(back, s.fids, rtol=0, atol=1e-12)


def test_written_file_is_standard_nifti_mrs(tmp_path):
    from nifti_mrs.nifti_mrs import NIFTI_MRS
    s = make_scan(3, axis=SpectralAxis(centre_ppm=4.65))
    p = write_nifti_mrs(s, tmp_path / "a.nii.gz")
    img = NIFTI_MRS(str(p))
    assert img.shape == (1, 1, 1, 2048, 3, 2)
    assert list(img.dim_tags[:2]) == ["DIM_DYN", "DIM_EDIT"]
    assert img.hdr_ext["dim_6_header"]["EditCondition"] == ["ON", "OFF"]
    assert img.spectralwidth == pytest.approx(2000.0)
    # nifti-mrs's accessor returns our convention; the raw stored data is its conjugate
    np.testing.assert_array_equal(np.asarray(img[:])[0, 0, 0, :, :, 0].T, s.on)
    np.testing.assert_array_equal(np.asarray(img.image[:])[0, 0, 0, :, :, 0].T, s.on.conj())


def test_edit_condition_header_honoured(tmp_path):
    s = make_scan(3)
    # OFF stored first, declared by the header: must come back as OFF
    data = np.stack([s.off.T, s.on.T], -1)[None, None, None]
    img = _gen(data, ["DIM_DYN", "DIM_EDIT", None], hdr={"DIM_EDIT": {"EditCondition": ["OFF", "ON"]}}, centre=4.68)
    img.save(str(tmp_path / "f.nii.gz"))
    r = read_nifti_mrs(tmp_path / "f.nii.gz")
    np.testing.assert_array_equal(r.on, s.on)
    np.testing.assert_array_equal(r.off, s.off)


def test_edit_pulse_keys_resolved(tmp_path):
    s = make_scan(3)
    data = np.stack([s.off.T, s.on.T], -1)[None, None, None]
    img = _gen(data, ["DIM_DYN", "DIM_EDIT", None], hdr={"DIM_EDIT": {"EditCondition": ["A", "B"]}}, centre=4.68)
    img.add_hdr_field("EditPulse", {"A": {"PulseOffset": 7.5}, "B": {"PulseOffset": 1.9}})
    img.save(str(tmp_path / "f.nii.gz"))
    r = read_nifti_mrs(tmp_path / "f.nii.gz")
    np.testing.assert_array_equal(r.on, s.on)


def test_missing_edit_header_inferred_from_naa(tmp_path):
    s = make_scan(3)
    data = np.stack([s.off.T, s.on.T], -1)[None, None, None]
    img = _gen(data, ["DIM_DYN", "DIM_EDIT", None], centre=4.68)
    img.save(str(tmp_path / "f.nii.gz"))
    r = read_nifti_mrs(tmp_path / "f.nii.gz")
    np.testing.assert_array_equal(r.on, s.on)
    assert "inferred" in r.meta["edit_order"]


def test_folder_reads_cohort(tmp_path):
    for k in range(3):
        write_nifti_mrs(make_scan(2, subject=f"s{k}", seed=k), tmp_path / f"s{k}.nii.gz")
    c = read_folder(tmp_path)
    assert c.subjects == ["s0", "s1", "s2"]


# ---- bad input: one clear error naming the file and the problem ----------------------

def test_not_nifti(tmp_path):
    p = tmp_path / "junk.nii.gz"
    p.write_bytes(b"this is not a nifti file")
    with pytest.raises(InputError, match=r"junk\.nii\.gz: not NIfTI-MRS"):
        read_nifti_mrs(p)


def test_plain_nifti_is_not_nifti_mrs(tmp_path):
    import nibabel as nib
    p = tmp_path / "plain.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), str(p))
    with pytest.raises(InputError, match=r"plain\.nii\.gz: not NIfTI-MRS"):
        read_nifti_mrs(p)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_nifti_mrs(tmp_path / "nope.nii.gz")


def test_interleaved_on_dim_dyn_without_edit_dimension(tmp_path):
    """spec2nii's layout for many vendors: ON/OFF alternating on DIM_DYN, no DIM_EDIT. The order is told
    from NAA (smaller in ON), or given; a given order that contradicts the data is still honoured."""
    s = make_scan(3)  # interleaved ON, OFF, ON, ...
    assert s.edit[0] == 1
    img = _gen(s.fids.T[None, None, None], ["DIM_DYN", None, None])
    img.save(str(tmp_path / "interleaved.nii.gz"))
    r = read_nifti_mrs(tmp_path / "interleaved.nii.gz")
    assert np.allclose(r.on, s.on) and np.allclose(r.off, s.off) and "inferred" in r.meta["edit_order"]
    g = read_nifti_mrs(tmp_path / "interleaved.nii.gz", edit_order="OFF,ON")
    assert np.allclose(g.on, s.off) and "given" in g.meta["edit_order"]
    with pytest.raises(InputError, match=r"interleaved\.nii\.gz: edit order"):
        read_nifti_mrs(tmp_path / "interleaved.nii.gz", edit_order="ON,ON")


def test_no_editing_information(tmp_path):
    s = make_scan(3)
    img = _gen(s.fids[:5].T[None, None, None], ["DIM_DYN", None, None])  # 5 transients: not ON/OFF pairs
    img.save(str(tmp_path / "unedited.nii.gz"))
    with pytest.raises(InputError, match=r"unedited\.nii\.gz: no editing information"):
        read_nifti_mrs(tmp_path / "unedited.nii.gz")


def test_uncombined_coils_are_combined(tmp_path):
    """DIM_COIL: four coils with different gains and phases and equal noise; the signal-weighted combination
    gives back the common signal up to one complex scale, with a higher SNR than any one coil."""
    s = make_scan(4)
    rng = np.random.default_rng(2)
    gains = np.array([1.0, 0.5, 0.2, 0.05]) * np.exp(1j * np.array([0.3, -1.2, 2.0, 0.7]))
    clean = s.fids
    coils = clean[..., None] * gains + 0.02 * (rng.standard_normal(clean.shape + (4,)) +
                                               1j * rng.standard_normal(clean.shape + (4,)))
    data = np.transpose(coils, (1, 0, 2))[None, None, None]  # (1,1,1,points,dyn,coil)
    img = _gen(data, ["DIM_DYN", "DIM_COIL", None])
    img.save(str(tmp_path / "coils.nii.gz"))
    r = read_nifti_mrs(tmp_path / "coils.nii.gz")
    assert r.meta["coils_combined"] == 4
    k = np.vdot(s.on.ravel(), r.on.ravel()) / np.vdot(s.on.ravel(), s.on.ravel())
    assert np.abs(r.on - k * s.on).std() < 0.02 * np.abs(k)  # better than the best coil's noise (0.02 / |g|=1)
    bad = _gen(np.zeros_like(data), ["DIM_DYN", "DIM_COIL", None])
    bad.save(str(tmp_path / "deadcoils.nii.gz"))
    with pytest.raises(InputError, match=r"deadcoils\.nii\.gz: coil dimension"):
        read_nifti_mrs(tmp_path / "deadcoils.nii.gz")


def test_spectral_width_mismatch(tmp_path):
    p = write_nifti_mrs(make_scan(2, axis=SpectralAxis(sw_hz=4000.0)), tmp_path / "sw.nii.gz")
    with pytest.raises(InputError, match=r"sw\.nii\.gz: spectral width 4000 Hz differs"):
        read_nifti_mrs(p, expected_axis=SpectralAxis())


def test_field_strength_mismatch(tmp_path):
    p = write_nifti_mrs(make_scan(2, axis=SpectralAxis(f0_mhz=297.2)), tmp_path / "7t.nii.gz")
    with pytest.raises(InputError, match=r"7t\.nii\.gz: field strength 6\.98 T"):
        read_nifti_mrs(p, expected_axis=SpectralAxis())


def test_folder_with_another_grid_is_harmonised(tmp_path):
    write_nifti_mrs(make_scan(2, subject="a"), tmp_path / "a.nii.gz")
    write_nifti_mrs(make_scan(2, subject="b", axis=SpectralAxis(sw_hz=4000.0)), tmp_path / "b.nii.gz")
    c = read_folder(tmp_path)
    assert c.meta["harmonisation"]["resampled"] == ["a", "b"]  # NIfTI at 4.65 ppm: both onto the bench axis
    assert all(s.axis == SpectralAxis() for s in c.scans)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf(tmp_path, bad):
    s = make_scan(3)
    data = np.stack([s.on.T, s.off.T], -1)[None, None, None].copy()
    data[0, 0, 0, 10, 1, 0] = bad
    img = _gen(data, ["DIM_DYN", "DIM_EDIT", None], hdr={"DIM_EDIT": {"EditCondition": ["ON", "OFF"]}})
    img.save(str(tmp_path / "nan.nii.gz"))
    with pytest.raises(InputError, match=r"nan\.nii\.gz: 1 NaN/Inf"):
        read_nifti_mrs(tmp_path / "nan.nii.gz")


def test_too_few_transients(tmp_path):
    s = make_scan(2)
    data = np.stack([s.on[:1].T, s.off[:1].T], -1)[None, None, None]
    img = _gen(data, ["DIM_DYN", "DIM_EDIT", None], hdr={"DIM_EDIT": {"EditCondition": ["ON", "OFF"]}})
    img.save(str(tmp_path / "one.nii.gz"))
    with pytest.raises(InputError, match=r"one\.nii\.gz: only 1 transient"):
        read_nifti_mrs(tmp_path / "one.nii.gz")


def test_wrong_dtype(tmp_path):
    import nibabel as nib
    good = write_nifti_mrs(make_scan(2), tmp_path / "good.nii.gz")
    src = nib.load(str(good))
    hdr = src.header.copy()
    hdr.set_data_dtype(np.float32)
    real = nib.Nifti2Image(np.abs(np.asarray(src.dataobj)).astype(np.float32), src.affine, header=hdr)
    nib.save(real, str(tmp_path / "real.nii.gz"))
    with pytest.raises(InputError, match=r"real\.nii\.gz: wrong dtype float32"):
        read_nifti_mrs(tmp_path / "real.nii.gz")
