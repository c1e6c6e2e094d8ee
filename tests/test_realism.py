"""Issue 39 (realism report, first part): the frequency track's statistics on tracks with known drift and
autocorrelation, the comparison against the Big GABA sample, and `mrsbench datasets --realism` end to end."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mrsbench.data.inspection import frequency_track
from mrsbench.data.realism import SNR_SCALE, realism_rows, reference_qm


def _track(drift_hz_per_min, phi, sd, n=320, tr_s=2.0, seed=0):
    """Processing's corrections for an interleaved scan whose offsets are a linear drift plus AR(1) noise."""
    rng = np.random.default_rng(seed)
    e = np.zeros(n)
    for k in range(1, n):
        e[k] = phi * e[k - 1] + rng.normal(0, sd * np.sqrt(1 - phi ** 2))
    offset = drift_hz_per_min * np.arange(n) * tr_s / 60.0 + e
    edit = np.arange(n) % 2
    return SimpleNamespace(freq_hz=-(offset - np.where(edit == 1, 2.0, -1.0)), weights=np.ones(n), edit=edit)


def test_frequency_track_recovers_drift_and_autocorrelation():
    t = frequency_track(_track(0.8, 0.7, 0.3))
    assert t["drift_hz_per_min"] == pytest.approx(0.8, abs=0.1)   # each condition's own reference removed
    assert t["freq_lag1"] == pytest.approx(0.7, abs=0.1)
    assert t["freq_resid_sd_hz"] == pytest.approx(0.3, rel=0.25)
    white = frequency_track(_track(0.0, 0.0, 0.3, seed=1))
    assert abs(white["freq_lag1"]) < 0.15 and abs(white["drift_hz_per_min"]) < 0.1


def test_the_reference_sample_against_itself_and_a_shifted_copy():
    ref = reference_qm()
    assert len(ref["Cr_FWHM"]) == 104 and np.median(ref["Cr_FWHM"]) == pytest.approx(6.04, abs=0.01)   # invivo.md: 6.0
    table = pd.DataFrame({"cr_fwhm_hz": ref["Cr_FWHM"], "naa_fwhm_hz": ref["Cr_FWHM"],
                          "cr_snr_single": ref["Cr_SNR"] * SNR_SCALE, "freq_offset_hz": ref["freqShift"],
                          "water_rel": ref["residual_water_ampl"] * 7.0, "drift_hz_per_min": 0.3,
                          "freq_resid_sd_hz": 0.2, "freq_lag1": 0.5})
    rows = {r.measure: r for r in realism_rows(table)}
    for m in ("Cr FWHM (OFF average)", "Cr SNR per transient", "|frequency offset| of the average",
              "residual water spread"):   # the water's units do not matter: only its spread is compared
        assert rows[m].ks_d <= 1 / 104 + 1e-12, m   # (round-off in the rescaled logs may split one tie)
    assert rows["|drift|"].ks_d is None and rows["|drift|"].cohort[0] == pytest.approx(0.3)
    table["cr_fwhm_hz"] = ref["Cr_FWHM"] + 2.0   # every subject 2 Hz broader: clearly another distribution
    assert {r.measure: r for r in realism_rows(table)}["Cr FWHM (OFF average)"].ks_d > 0.5


@pytest.mark.slow
def test_datasets_realism_from_the_command_line(capsys):
    from mrsbench.cli import main
    assert main(["datasets", "simgaba-small", "--realism", "--json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["measure"]: r for r in doc["realism"]}
    assert 0 <= rows["Cr FWHM (OFF average)"]["ks_d"] <= 1 and rows["|drift|"]["ks_d"] is None
    assert all(np.isfinite(s["drift_hz_per_min"]) for s in doc["per_subject"])
    # the simulator's own drift truth: measured from processing's per-transient estimates within 0.3 Hz/min
    from mrsbench.data.datasets import load_dataset
    truth = load_dataset("simgaba-small", progress=False).ground_truth.set_index("subject")["drift_hz_per_min"]
    got = pd.Series({s["subject"]: s["drift_hz_per_min"] for s in doc["per_subject"]})
    assert np.abs(got - truth.loc[got.index]).max() < 0.3
