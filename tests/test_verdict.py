"""Issue 37: boards built from synthetic results files with a known answer: the verdict sentence, the reference band
and the order by dominance over questions."""
import json

import numpy as np
import pytest

from mrsbench.harness.evaluator import HARNESS_VERSION, SCHEMA, results_checksum
from mrsbench.boards.leaderboard import build, load_results, render, validate_results

SUBJECTS = [f"s{i:02d}" for i in range(12)]
GRID = [5, 10, 20, 40, 80, 160]


def shape_of(n):
    """A real-only curve: shape score rising with log n (the known curve the effective n is read from)."""
    return 0.5 + 0.45 * np.log(n / 5) / np.log(160 / 5)


def gaba_err_of(n):
    return 40.0 / np.sqrt(n)


def make_doc(model, eff, eff_gaba, precision, seed=0, noise=0.2, description="", copied=None):
    """A results document whose per-subject statistics put the augmented 20-transient scan at ``eff`` effective
    transients by shape and ``eff_gaba`` by GABA+ error (per subject, with small noise), and whose precision
    pseudo-values centre on ``precision``."""
    from mrsbench.harness.statistics import doc_columns, load_stats
    import zlib
    rng = np.random.default_rng([zlib.crc32(model.encode()), seed])   # stable across processes (unlike hash())
    S = len(SUBJECTS)
    e = np.clip(eff * np.exp(rng.normal(0, noise / 10, S)), 5.5, 150)
    eg = np.clip(eff_gaba * np.exp(rng.normal(0, noise / 10, S)), 5.5, 150)
    stats = {"application.curve_shape.sum": np.tile(shape_of(np.array(GRID, float)), (S, 1)),
             "application.curve_shape.count": np.ones((S, len(GRID))),
             "application.curve_gaba_err.sum": np.tile(gaba_err_of(np.array(GRID, float)), (S, 1)),
             "application.curve_gaba_err.count": np.ones((S, len(GRID))),
             "application.aug_shape.sum": shape_of(e)[:, None], "application.aug_shape.count": np.ones((S, 1)),
             "application.aug_gaba_err.sum": gaba_err_of(eg)[:, None], "application.aug_gaba_err.count": np.ones((S, 1)),
             "embedding.pv.precision": precision + rng.normal(0, 0.01, S)}
    if copied is not None:   # the copied-noise probe's per-subject numerators and denominators
        stats["application.copied_noise.sum"] = copied * np.ones(S)
        stats["application.copied_noise.count"] = np.ones(S)
    metrics = {f"application.curve.n{g}.shape_score": float(shape_of(g)) for g in GRID}
    for kind in ("subset", "augmented"):
        for k in ("snr", "shape_score", "mse"):
            metrics[f"application.n20.{kind}.{k}"] = 0.5
    metrics.update({"reconstruction.nmse_full": None, "quantification.gaba_cr.mape.augmented": 10.0,
                    "embedding.precision": precision})
    doc = {"schema": SCHEMA, "model": model, "dataset": "simgaba-small", "dataset_hash": "h1",
           "preset": {"n_values": [20]}, "preset_name": "quick", "seed": seed, "harness_version": HARNESS_VERSION,
           "package_versions": {}, "wall_time_s": {"total": 1.0}, "metrics": metrics,
           "model_card": {"description": description},
           "per_subject": {"subject": SUBJECTS, "stats": {k: np.asarray(v).tolist() for k, v in stats.items()}}}
    cols = doc_columns(doc, load_stats(doc), np.ones((1, S)))
    for k, v in cols.items():   # the headline metrics the statistics give (a consistent file, as the harness writes)
        if not k.startswith("embedding."):
            metrics[k] = None if not np.isfinite(v[0]) else float(v[0])
    doc["checksum"] = results_checksum(doc)
    assert validate_results(doc) == [], validate_results(doc)
    return doc


def board(tmp_path, docs):
    for d in docs:
        (tmp_path / f"{d['model']}-seed{d['seed']}.json").write_text(json.dumps(d))
    return build(load_results([tmp_path]))


def test_one_generator_dominating(tmp_path):
    lb = board(tmp_path, [make_doc("alpha", 50, 30, 0.9), make_doc("beta", 25, 12, 0.6), make_doc("gamma", 25, 12, 0.6),
                          make_doc("bootstrap", 20, 16, 0.9), make_doc("oracle", 60, 40, 0.7)])
    rows = {r["model"]: r for r in lb["rows"]}
    assert [r["model"] for r in lb["rows"]][:1] == ["alpha"] and rows["alpha"]["position"] == 1
    assert rows["beta"]["position"] == rows["gamma"]["position"] == 2   # tied (neither beats the other)
    assert rows["beta"]["dominated_by"] == ["alpha"]
    # the reference band: last, not ranked, and each generator placed between floor (20) and ceiling (60)
    assert [r["model"] for r in lb["rows"]][-2:] == ["bootstrap", "oracle"]
    assert rows["bootstrap"]["role"] == "floor" and rows["oracle"]["role"] == "ceiling"
    assert rows["bootstrap"]["position"] is None
    assert rows["alpha"]["bracket"] == pytest.approx(100 * (50 - 20) / (60 - 20), abs=3)
    v = lb["verdict"]
    assert v.startswith("For filling up a 20-transient scan, alpha is worth 2.5x the real transients "
                        "(significantly more than every other generator)")
    assert "On GABA+ quantification" in v and "beta" in v.split("On GABA+")[1]   # beta, gamma harm (12 < 18)
    assert lb["rank_stability"]["top"] == "alpha" and lb["rank_stability"]["top_stays_top"] > 0.95
    assert "bootstrap" not in lb["rank_stability"]["p_top"]
    md = render(lb, "markdown")
    assert md.startswith("**Verdict.** For filling up") and "ref: floor" in md and "ref: ceiling" in md


def test_two_incomparable_generators_share_the_front(tmp_path):
    lb = board(tmp_path, [make_doc("useful", 50, 30, 0.5), make_doc("faithful", 30, 30, 0.9)])
    rows = {r["model"]: r for r in lb["rows"]}
    assert rows["useful"]["position"] == rows["faithful"]["position"] == 1
    assert rows["useful"]["beats"]["utility"] == ["faithful"] and rows["faithful"]["beats"]["fidelity"] == ["useful"]
    assert "Not dominated on any question: useful, faithful." in lb["verdict"]
    assert lb["rows"][0]["model"] == "useful"   # within a position: the better utility first


def test_a_reference_row_outscoring_generators(tmp_path):
    lb = board(tmp_path, [make_doc("weak", 14, 10, 0.8), make_doc("bootstrap", 20, 16, 0.8)])
    rows = {r["model"]: r for r in lb["rows"]}
    assert rows["weak"]["position"] == 1 and rows["bootstrap"]["position"] is None   # not a contestant
    assert lb["rows"][0]["model"] == "weak"
    assert "worse than resampling the short scan (bootstrap, 1.0x): weak" in lb["verdict"]
    assert rows["weak"]["bracket"] is None   # no ceiling on this board


def test_no_significant_lead_is_said_so(tmp_path):
    """Two generators within noise of each other: the sentence does not crown one."""
    lb = board(tmp_path, [make_doc("one", 30, 20, 0.8, noise=3.0), make_doc("two", 29.5, 20, 0.8, noise=3.0)])
    assert "not significantly more than" in lb["verdict"]
    assert {r["position"] for r in lb["rows"]} == {1}


def test_generators_are_placed_above_the_strongest_floor(tmp_path):
    """Several "adds nothing" rows: a generator is credited only for what it adds beyond the best of them."""
    lb = board(tmp_path, [make_doc("gen", 50, 30, 0.8), make_doc("level", 40, 20, 0.8),
                          make_doc("bootstrap", 20, 16, 0.8), make_doc("smoothed", 30, 16, 0.8),
                          make_doc("subset-lcm", 40, 18, 0.8), make_doc("oracle", 60, 40, 0.8)])
    rows = {r["model"]: r for r in lb["rows"]}
    assert {rows[m]["role"] for m in ("bootstrap", "smoothed", "subset-lcm")} == {"floor"}
    assert lb["floor_model"] == "subset-lcm"
    assert rows["gen"]["bracket"] == pytest.approx(100 * (50 - 40) / (60 - 40), abs=3)
    assert rows["level"]["bracket"] == pytest.approx(0, abs=3)
    assert "no better than the short scan's own LCM model fit (subset-lcm, 2.0x): level" in lb["verdict"]
    assert [r["model"] for r in lb["rows"]][-4:] == ["bootstrap", "smoothed", "subset-lcm", "oracle"]


def test_copied_noise_is_flagged(tmp_path):
    lb = board(tmp_path, [make_doc("copier", 30, 20, 0.8, copied=0.8), make_doc("fresh", 30, 20, 0.8, copied=0.05)])
    rows = {r["model"]: r for r in lb["rows"]}
    assert "copied noise" in rows["copier"]["flags"] and "copied noise" not in rows["fresh"]["flags"]
    assert rows["copier"]["application.copied_noise"]["mean"] == pytest.approx(0.8)
    assert "Copied noise (their transients carry the short scan's own noise): copier." in lb["verdict"]


def test_a_floor_row_reaching_the_ceiling_places_no_generator(tmp_path):
    lb = board(tmp_path, [make_doc("gen", 30, 20, 0.8), make_doc("subset-lcm", 52, 18, 0.8),
                          make_doc("oracle", 50, 40, 0.8)])
    rows = {r["model"]: r for r in lb["rows"]}
    assert lb["floor_reaches_ceiling"] and rows["gen"]["bracket"] is None
    assert "is worth as much as the simulator's truth (oracle, 2.5x): no generator is placed between them" in lb["verdict"]
