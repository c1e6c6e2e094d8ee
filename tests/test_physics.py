"""Physics checks against independent expectations (closed forms, known shifts, conservation)."""
import json

import numpy as np
import pytest

from mrsbench.core.axis import SpectralAxis
from mrsbench.physics import spins as sp
from mrsbench.physics.basis import basis_key, load_basis, simulate_basis
from mrsbench.physics.megapress import MegaPressConfig, inversion_profile, simulate_system

F0 = 127.75
AX = SpectralAxis()


def pulse_acquire(system: sp.SpinSystem):
    exc = system.hard_pulse(90.0, 90.0)
    rho = exc @ system.initial_rho() @ exc.conj().T
    return sp.acquire_lines(system, rho, system.hamiltonian(F0, 4.68))


def test_single_spin_offset_and_amplitude():
    f, a = pulse_acquire(sp.SpinSystem([2.0], []))
    assert len(f) == 1
    assert f[0] == pytest.approx((2.0 - 4.68) * F0, abs=1e-6)
    assert a[0] == pytest.approx(1.0 + 0j, abs=1e-12)  # one proton, 90-acquire, absorption


def test_weak_ax_doublet_splits_by_j():
    J = 7.0
    f, a = pulse_acquire(sp.SpinSystem([1.3, 4.1], [(0, 1, J)]))
    nu_a = (1.3 - 4.68) * F0
    near = np.abs(f - nu_a) < 20
    fa = np.sort(f[near])
    assert len(fa) == 2
    assert fa[1] - fa[0] == pytest.approx(J, abs=0.01)  # first-order: split equals J
    assert np.mean(fa) == pytest.approx(nu_a, abs=0.1)


@pytest.mark.parametrize("dnu,J", [(10.0, 15.0), (25.0, 7.0), (3.0, 12.0)])
def test_ab_system_closed_form(dnu, J):
    """AB quartet: lines at nu0 +/- (D +/- J)/2, D = sqrt(dnu^2 + J^2); intensities (1 -/+ J/D)/2
    for outer/inner lines (Pople, Schneider & Bernstein)."""
    d1 = 3.0
    d2 = d1 + dnu / F0
    f, a = pulse_acquire(sp.SpinSystem([d1, d2], [(0, 1, J)]))
    nu0 = ((d1 + d2) / 2 - 4.68) * F0
    D = np.hypot(dnu, J)
    expect_f = np.sort(nu0 + np.array([-(D + J) / 2, -(D - J) / 2, (D - J) / 2, (D + J) / 2]))
    order = np.argsort(f)
    np.testing.assert_allclose(f[order], expect_f, atol=1e-6)
    expect_a = np.array([1 - J / D, 1 + J / D, 1 + J / D, 1 - J / D]) / 2
    np.testing.assert_allclose(a[order].real, expect_a, atol=1e-9)
    assert np.sum(a.real) == pytest.approx(2.0)  # total signal = number of protons


def test_singlet_area_scales_with_protons():
    cfg = MegaPressConfig()
    for n_h in (1, 2, 3, 6, 9):
        s = sp.SpinSystem([3.2], [], scale=n_h)
        f, a = simulate_system(s, cfg, cfg.edit_off_ppm)
        assert np.sum(a).real == pytest.approx(n_h, rel=1e-3)


def test_standin_spins_never_pulsed_or_detected():
    s = sp.SpinSystem([3.2, 3.2, 100.0], [(0, 2, 0.57), (1, 2, 0.57)])
    U = s.hard_pulse(180.0)
    Iz_n = s.ops["z"][2]
    np.testing.assert_allclose(U @ Iz_n @ U.conj().T, Iz_n, atol=1e-12)
    f, a = pulse_acquire(s)
    assert np.all(np.abs(f) < 500)  # nothing near 100 ppm (~12 kHz)
    assert np.sum(a).real == pytest.approx(2.0)


def test_editing_pulse_inversion_profile():
    cfg = MegaPressConfig()
    prof = inversion_profile(cfg, np.array([0.0, 1000.0]))
    assert prof[0] == pytest.approx(-1.0, abs=1e-6)  # on resonance: full inversion
    assert prof[1] == pytest.approx(1.0, abs=1e-3)   # far off resonance: untouched
    off = np.linspace(-100, 100, 401)
    inv = (1 - inversion_profile(cfg, off)) / 2
    fwhm = np.ptp(off[inv >= 0.5])
    assert 80 <= fwhm <= 96  # ~88 Hz for a 14 ms Gaussian (invivo.md)


@pytest.fixture(scope="module")
def basis():
    return simulate_basis()


def _spec(basis, cond, names, lw=6.0):
    return AX.to_spectrum(basis.fids(AX, cond, names, lw_hz=lw)).real


def _centre(ppm, y):
    pos = np.clip(y, 0, None)
    return float((ppm * pos).sum() / pos.sum())


def test_gaba_edited_signal(basis):
    w = AX.window(2.85, 3.17)
    diff = _spec(basis, "diff", ["GABA"])[0]
    assert diff[w].max() > 0 and diff[w].sum() > 0
    centre = _centre(AX.ppm[w], diff[w])
    assert abs(centre - 3.01) <= 0.03
    # integral relative to a 2-proton singlet through the same sequence
    s = sp.SpinSystem([3.01], [], scale=2)
    cfg = basis.config
    f, a = simulate_system(s, cfg, cfg.edit_off_ppm)
    fid = np.exp(2j * np.pi * np.outer(AX.time, f + (cfg.centre_ppm - AX.centre_ppm) * AX.f0_mhz)) @ a
    singlet = AX.to_spectrum(fid * np.exp(-np.pi * 6.0 * AX.time)).real
    ratio = diff[w].sum() / singlet[w].sum()
    print(f"GABA edited integral / 2H singlet = {ratio:.3f}")
    assert 0.3 <= ratio <= 1.3


def test_glx_coedited(basis):
    w = AX.window(3.6, 3.9)
    for name in ("Glu", "Gln"):
        diff = _spec(basis, "diff", [name])[0]
        assert diff[w].sum() > 0
        assert 3.65 <= _centre(AX.ppm[w], diff[w]) <= 3.85


@pytest.mark.parametrize("name", ["Cr", "PCr", "GPC", "PCh"])
def test_singlets_cancel_in_diff(basis, name):
    off = _spec(basis, "off", [name])[0]
    diff = _spec(basis, "diff", [name])[0]
    w = AX.window(2.9, 3.3)
    assert np.abs(diff[w]).max() < 0.01 * off[w].max()


def test_naa_position_and_negative_diff(basis):
    f, a = basis.lines["NAA"]["off"]
    ppm = basis.config.centre_ppm + f / basis.config.f0_mhz
    strongest = ppm[np.argmax(np.abs(a))]
    assert strongest == pytest.approx(2.008, abs=1e-6)
    diff = _spec(basis, "diff", ["NAA"])[0]
    off = _spec(basis, "off", ["NAA"])[0]
    w = AX.window(1.95, 2.06)
    assert diff[w].min() < -0.3 * off[w].max()


def test_gaba_govindaraju_selectable():
    cfg = MegaPressConfig(gaba_set="govindaraju")
    b = simulate_basis(cfg, metabolites=("GABA",))
    w = AX.window(2.85, 3.17)
    diff = AX.to_spectrum(b.fids(AX, "diff", ["GABA"], lw_hz=6.0)).real[0]
    assert abs(_centre(AX.ppm[w], diff[w]) - 3.01) <= 0.03
    assert basis_key(cfg, ("GABA",)) != basis_key(MegaPressConfig(), ("GABA",))


def test_cache_keyed_by_every_parameter(tmp_path, monkeypatch):
    monkeypatch.setenv("MRSBENCH_CACHE", str(tmp_path))
    cfg = MegaPressConfig()
    b1 = load_basis(cfg, metabolites=("Cr", "GABA"))
    assert len(list((tmp_path / "basis").glob("*.npz"))) == 1
    b2 = load_basis(cfg, metabolites=("Cr", "GABA"))
    for cond in ("on", "off"):
        np.testing.assert_array_equal(b1.lines["GABA"][cond][1], b2.lines["GABA"][cond][1])
    # any changed parameter gives a new key and a fresh simulation, never the stale basis
    changed = MegaPressConfig(te_s=0.080)
    b3 = load_basis(changed, metabolites=("Cr", "GABA"))
    assert b3.key != b1.key and len(list((tmp_path / "basis").glob("*.npz"))) == 2
    assert not np.allclose(np.sort(np.abs(b3.lines["GABA"]["on"][1]))[-5:], np.sort(np.abs(b1.lines["GABA"]["on"][1]))[-5:])
    fields = MegaPressConfig().to_dict()
    for k, v in fields.items():
        if isinstance(v, float):
            alt = MegaPressConfig(**{**fields, k: v * 1.01}) if k != "te1_s" else MegaPressConfig(te1_s=0.011)
            assert basis_key(alt, ("Cr",)) != basis_key(cfg, ("Cr",)), k


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("MRSBENCH_CACHE", str(tmp_path))
    b = load_basis(metabolites=("Cr",))
    p = tmp_path / "basis" / f"{b.key}.npz"
    p.write_bytes(b"garbage")
    b2 = load_basis(metabolites=("Cr",))
    assert set(b2.lines) == {"Cr"}


def _read_like_fsl_mrs(path):
    """A basis file read the way FSL-MRS reads it (fsl_io.py: conjugate back; receiver at 4.65 ppm for
    1H whatever the file says): (ppm axis ascending, spectrum), written independently of mrsbench.core.axis."""
    b = json.loads(path.read_text())["basis"]
    fid = (np.array(b["basis_re"]) + 1j * np.array(b["basis_im"])).conj()
    n, bw = len(fid), 1.0 / b["basis_dwell"]
    hz = (np.arange(n) - n // 2) * bw / n
    return hz / b["basis_centre"] + 4.65, np.fft.fftshift(np.fft.fft(fid))


def _peak(ppm, spec, lo, hi):
    w = (ppm > lo) & (ppm < hi)
    return ppm[w][np.argmax(spec.real[w])]


def test_fsl_json_in_fsl_mrs_convention(tmp_path, basis):
    paths = basis.write_fsl(tmp_path, lw_hz=2.0)
    doc = json.loads((tmp_path / "edit_on" / "GABA.json").read_text())
    b = doc["basis"]
    assert b["basis_name"] == "GABA" and b["basis_dwell"] == pytest.approx(5e-4) and b["basis_nucleus"] == "1H"
    assert b["basis_centre"] == pytest.approx(127.75) and len(b["basis_re"]) == 2048
    ppm, naa = _read_like_fsl_mrs(tmp_path / "edit_off" / "NAA.json")
    assert _peak(ppm, naa, 1.5, 2.5) == pytest.approx(2.008, abs=0.01)
    assert _peak(ppm, naa, 5.0, 9.0) < 7.0 or np.abs(naa[(ppm > 7.2) & (ppm < 7.5)]).max() < 0.05 * np.abs(naa).max()
    ppm, cr = _read_like_fsl_mrs(tmp_path / "edit_off" / "Cr.json")
    assert _peak(ppm, cr, 2.8, 3.2) == pytest.approx(3.027, abs=0.01)
    _, on = _read_like_fsl_mrs(tmp_path / "edit_on" / "GABA.json")
    _, off = _read_like_fsl_mrs(tmp_path / "edit_off" / "GABA.json")
    d = (on - off).real
    w = (ppm > 2.8) & (ppm < 3.25)
    centre = np.sum(ppm[w] * np.clip(d[w], 0, None)) / np.sum(np.clip(d[w], 0, None))
    assert centre == pytest.approx(3.01, abs=0.02)
    # no empty files: MM3co exists where it has signal (ON, DIFF) and nowhere else
    assert (tmp_path / "edit_diff" / "MM3co.json").exists() and not (tmp_path / "edit_off" / "MM3co.json").exists()
    for p in paths:
        bb = json.loads(p.read_text())["basis"]
        assert np.abs(np.array(bb["basis_re"]) + 1j * np.array(bb["basis_im"])).max() > 0, p


def _read_lcmodel_basis_like_fsl_mrs(path):
    """A .BASIS file read the way FSL-MRS's readLCModelBasis does (lcm_io.py), written here independently:
    header lines are those from one holding '$' (not in column 0) to one holding '$END'; every other line
    is numbers, flattened into real/imaginary pairs; one block per METABO; each rolled by -ISHIFT, inverse
    FFT, conjugated; BADELT the dwell time, HZPPPM the field; receiver at 4.65 ppm. Returns
    {name: (ppm ascending, spectrum)} and the header values."""
    import re
    header, data, in_header, done = [], [], False, False
    for line in path.read_text().splitlines():
        if line.find("$") > 0:
            in_header = True
        if in_header:
            header.append(line)
        elif done:
            data += [float(v) for v in line.split()]
        if line.find("$END") > 0:
            in_header, done = False, True
    data = np.array(data)
    z = data[0::2] + 1j * data[1::2]
    names = [m.group(1).rstrip() for h in header for m in [re.search(r"\sMETABO\s*=\s*'([^']+?)'", h)] if m]
    shifts = [int(m.group(1)) for h in header for m in [re.search(r"\sISHIFT\s*=\s*([-0-9]+)", h)] if m]
    vals = {m.group(1).upper(): float(m.group(2)) for h in header
            for m in [re.search(r"\s([A-Za-z]+)\s*=\s*([0-9eE\-.]+)", h)] if m}
    z = z.reshape(len(names), -1)
    out = {}
    for name, sh, spec in zip(names, shifts, z):
        fid = np.conj(np.fft.ifft(np.roll(spec, -sh)))
        n, bw = len(fid), 1.0 / vals["BADELT"]
        hz = (np.arange(n) - n // 2) * bw / n
        out[name] = (hz / vals["HZPPPM"] + 4.65, np.fft.fftshift(np.fft.fft(fid)))
    return out, vals


def test_lcmodel_basis_read_back_as_fsl_mrs_reads_it(tmp_path, basis):
    paths = basis.write_lcmodel(tmp_path, lw_hz=2.0)
    assert [p.name for p in paths] == ["edit_on.BASIS", "edit_off.BASIS", "edit_diff.BASIS"]
    off, vals = _read_lcmodel_basis_like_fsl_mrs(tmp_path / "edit_off.BASIS")
    assert vals["HZPPPM"] == pytest.approx(127.75) and vals["BADELT"] == pytest.approx(5e-4)
    assert vals["NDATAB"] == 2048 and vals["ECHOT"] == pytest.approx(68.0)
    assert vals["FWHMBA"] == pytest.approx(2.0 / 127.75, rel=1e-3)
    assert _peak(*off["NAA"], 1.5, 2.5) == pytest.approx(2.008, abs=0.01)
    assert _peak(*off["Cr"], 2.8, 3.2) == pytest.approx(3.027, abs=0.01)
    assert "MM3co" not in off  # no empty components
    diff, _ = _read_lcmodel_basis_like_fsl_mrs(tmp_path / "edit_diff.BASIS")
    ppm, d = diff["GABA"]
    w = (ppm > 2.8) & (ppm < 3.25)
    centre = np.sum(ppm[w] * np.clip(d.real[w], 0, None)) / np.sum(np.clip(d.real[w], 0, None))
    assert centre == pytest.approx(3.01, abs=0.02) and "MM3co" in diff
    # the points are the FSL JSON export's FID exactly (to the 7 significant digits of E15.6)
    on, _ = _read_lcmodel_basis_like_fsl_mrs(tmp_path / "edit_on.BASIS")
    basis.write_fsl(tmp_path / "fsl", lw_hz=2.0)
    ppm_j, naa_j = _read_like_fsl_mrs(tmp_path / "fsl" / "edit_on" / "NAA.json")
    assert np.allclose(on["NAA"][1], naa_j, atol=1e-5 * np.abs(naa_j).max())


def test_basis_rejects_other_field(basis):
    from mrsbench.core.errors import InputError
    with pytest.raises(InputError, match="MHz"):
        basis.fids(SpectralAxis(f0_mhz=297.2), "on", ["Cr"])


def test_cross_check_external_challenge_spectrum(shared_dir, basis):
    d = shared_dir / "data" / "edited_mrs_challenge_sample"
    if not d.is_dir():
        pytest.skip("challenge sample absent")
    fids = np.load(d / "ground_truth_fids.npy")[0]
    ppm = np.load(d / "ppm.npy")[0]
    spec = np.fft.fftshift(np.fft.ifft(fids, axis=0), axes=0)  # the challenge's own convention
    ext_off, ext_on = spec[:, 0].real, spec[:, 1].real
    ext_diff = ext_on - ext_off
    w_naa = (ppm >= 1.9) & (ppm <= 2.1)
    # match line width: FWHM of the external OFF NAA peak
    i = np.flatnonzero(w_naa)[np.argmax(ext_off[w_naa])]
    half = ext_off[i] / 2
    lo, hi = i, i
    while ext_off[lo] > half:
        lo -= 1
    while ext_off[hi] > half:
        hi += 1
    lw_hz = abs(ppm[lo] - ppm[hi]) * 127.731
    ax = SpectralAxis(f0_mhz=127.75)
    names = ["GABA", "MM3co"]
    diff = ax.to_spectrum(basis.fids(ax, "diff", names, lw_hz=lw_hz)).real
    w = ax.window(2.85, 3.17)
    # MM3co at the published share of GABA+ (41-49%, invivo.md): 45% of the edited 3 ppm integral
    g, m = diff[0][w].sum(), diff[1][w].sum()
    gaba_plus = diff[0] + diff[1] * (0.45 / 0.55) * g / m
    ours = _centre(ax.ppm[w], gaba_plus[w])
    we = (ppm >= 2.85) & (ppm <= 3.17)
    theirs = _centre(ppm[we], ext_diff[we])
    print(f"GABA+ centre: simulated {ours:.3f} ppm, external {theirs:.3f} ppm")
    assert abs(ours - theirs) <= 0.03
    # negative NAA and co-edited Glx in both
    naa = ax.to_spectrum(basis.fids(ax, "diff", ["NAA"], lw_hz=lw_hz)).real[0]
    assert naa[ax.window(1.9, 2.1)].min() < 0 and ext_diff[w_naa].min() < 0
    glx = ax.to_spectrum(basis.fids(ax, "diff", ["Glu", "Gln"], lw_hz=lw_hz)).real.sum(0)
    wg = (ppm >= 3.6) & (ppm <= 3.9)
    assert glx[ax.window(3.6, 3.9)].max() > 0 and ext_diff[wg].max() > 0
    # OFF NAA/Cr peak-height ratio of the same order (equal concentrations in ours)
    off = ax.to_spectrum(basis.fids(ax, "off", ["NAA", "Cr"], lw_hz=lw_hz)).real
    ours_ratio = off[0][ax.window(1.9, 2.1)].max() / off[1][ax.window(2.95, 3.1)].max()
    wc = (ppm >= 2.95) & (ppm <= 3.1)
    theirs_ratio = ext_off[w_naa].max() / ext_off[wc].max()
    print(f"OFF NAA/Cr height: simulated {ours_ratio:.2f}, external {theirs_ratio:.2f}")
    assert 1 / 3 <= ours_ratio / theirs_ratio <= 3
