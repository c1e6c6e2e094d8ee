"""End-to-end harness runs on simgaba-small with the tiny preset."""
import json

import numpy as np
import pytest

from mrsbench.core.scans import Scan
from mrsbench.generators.contract import Generator
from mrsbench.harness.evaluator import HARNESS_VERSION, SCHEMA, run

FAMILIES = ("reconstruction.", "embedding.", "application.", "quantification.")


def _check(results, run_dir):
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["schema"] == SCHEMA and doc["harness_version"] == HARNESS_VERSION
    for key in ("model", "dataset", "dataset_hash", "preset", "seed", "package_versions", "git_commit", "wall_time_s",
                "metrics", "split"):
        assert key in doc, key
    for fam in FAMILIES:
        assert any(k.startswith(fam) for k in doc["metrics"]), fam
    for k in ("embedding.precision", "embedding.recall", "embedding.density", "embedding.coverage", "embedding.mmd2",
              "embedding.classifier_auc", "embedding.frechet", "embedding.memorisation_ratio",
              "embedding.umap_kde_overlap", "application.n20.augmented.snr", "application.n20.subset.shape_score",
              "application.noise_ratio", "quantification.gaba_cr.mape.augmented",
              "quantification.gaba_cr.truth_mape.augmented", "quantification.lcm.not_converged_rate.augmented",
              "quantification.lcm.shape_at_bound_rate.full"):
        assert k in doc["metrics"], k
    assert doc["metrics"]["quantification.lcm.not_converged_rate.full"] == 0.0
    for f in ("umap.png", "spectra.png", "bland_altman.png"):
        assert (run_dir / f).stat().st_size > 1000
    assert set(doc["split"]["test"]).isdisjoint(doc["split"]["train"])
    return doc


_BLAS_THREADS_IN_STATS: list = []   # BLAS thread counts seen inside mmd2_unbiased during the module's runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from threadpoolctl import threadpool_info

    import mrsbench.metrics.twosample as ts
    real = ts.mmd2_unbiased

    def spy(*a, **k):
        _BLAS_THREADS_IN_STATS.append([d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"])
        return real(*a, **k)
    out = tmp_path_factory.mktemp("runs")
    res = {}
    ts.mmd2_unbiased = spy
    try:
        for model in ("vae", "pca", "physics"):
            res[model] = run(model, preset="tiny", out=out, progress=False)
    finally:
        ts.mmd2_unbiased = real
    return out, res


@pytest.mark.parametrize("model", ["vae", "pca", "physics"])
def test_end_to_end(runs, model):
    out, res = runs
    results, run_dir = res[model]
    doc = _check(results, run_dir)
    if model == "vae":      # the generator's own training curves (train/validation loss, KL)
        assert (run_dir / "training.png").stat().st_size > 1000 and "training.png" in doc["figures"]
    if model == "physics":  # no encoder: not applicable, never zero
        assert doc["metrics"]["reconstruction.nmse_full"] is None
    else:
        assert 0 < doc["metrics"]["reconstruction.nmse_full"] < 1.5


def test_mlflow_has_runs(runs):
    from test_robustness import _mlflow_runs
    out, res = runs
    parents = [r for r in _mlflow_runs((out / "mlflow.db").resolve()) if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) >= 3
    assert {r.data.params["model"] for r in parents} >= {"vae", "pca", "physics"}
    assert all("embedding.mmd2" in r.data.metrics for r in parents)
    nested = [r for r in _mlflow_runs((out / "mlflow.db").resolve()) if "mlflow.parentRunId" in r.data.tags]
    assert len(nested) >= 3 and {r.data.params["n"] for r in nested} == {"20"}
    assert all("augmented.shape_score" in r.data.metrics for r in nested)


class NoiseGen(Generator):
    name = "noise"

    def fit(self, train, seed=0, val=None):
        self.axis = train.axis
        self.sd = float(np.std(np.concatenate([s.fids for s in train.scans])))
        return self

    def sample(self, n, *, condition=None, seed=0):
        rng = np.random.default_rng(seed)
        x = self.sd * (rng.standard_normal((2 * n, self.axis.n_points)) + 1j * rng.standard_normal((2 * n, self.axis.n_points)))
        return Scan(x, np.tile([1, 0], n), self.axis)


class CopyGen(Generator):
    name = "copy"

    def fit(self, train, seed=0, val=None):
        self.axis = train.axis
        self.pool = {lab: np.concatenate([s.fids[s.edit == lab] for s in train.scans]) for lab in (0, 1)}
        return self

    def sample(self, n, *, condition=None, seed=0):
        rng = np.random.default_rng(seed)
        on = self.pool[1][rng.integers(0, len(self.pool[1]), n)]
        off = self.pool[0][rng.integers(0, len(self.pool[0]), n)]
        return Scan.from_on_off(on, off, self.axis)


def test_harness_fails_bad_generators(runs, tmp_path):
    _, res = runs
    noise, _ = run("noise", preset="tiny", out=tmp_path, progress=False, track=False, generator=NoiseGen())
    copy, _ = run("copy", preset="tiny", out=tmp_path, progress=False, track=False, generator=CopyGen())
    m = noise["metrics"]
    for base in ("pca", "physics"):
        b = res[base][0]["metrics"]
        # noise collapses onto the centre of the real feature space: recall/coverage reveal it (precision
        # alone cannot, as Naeem et al. 2020 note), and a classifier tells it apart
        assert m["embedding.classifier_auc"] > b["embedding.classifier_auc"]
        assert m["embedding.recall"] < b["embedding.recall"]
        assert m["embedding.coverage"] < b["embedding.coverage"]
        assert m["embedding.mmd2"] > b["embedding.mmd2"]
        # and the application family: its augmented scans are worse, or (harness >= 1.8, whose ON-to-OFF
        # alignment follows the noise further) every one of them leaves the plausible alignment range, is
        # counted as failed and the augmented scan is worth the grid's smallest n (flagged -1)
        if m["application.failure_rate.augmented"] == 1.0:
            assert m["application.n20.augmented.shape_score"] is None
            assert m["application.n20.effective_n_clipped"] == -1
            assert m["application.n20.effective_n"] < b["application.n20.effective_n"]
        else:
            assert m["application.n20.augmented.shape_score"] < b["application.n20.augmented.shape_score"]
            assert m["application.n20.augmented.mse"] > b["application.n20.augmented.mse"]
        assert m["application.failure_rate.augmented"] > b["application.failure_rate.augmented"] or \
            m["application.n20.augmented.shape_score"] < b["application.n20.augmented.shape_score"]
    assert copy["metrics"]["embedding.memorisation_ratio"] < 0.2
    assert res["pca"][0]["metrics"]["embedding.memorisation_ratio"] > 0.5


def test_results_written_atomically_and_never_touch_earlier_runs(runs, tmp_path, monkeypatch):
    import mrsbench.harness.outputs as h
    out, res = runs
    before = {p: p.read_bytes() for p in out.rglob("results.json")}

    def boom(*a, **k):
        raise RuntimeError("interrupted")
    monkeypatch.setattr(h, "_figures", boom)
    with pytest.raises(RuntimeError):
        run("pca", preset="tiny", out=out, progress=False, track=False)
    after = {p: p.read_bytes() for p in out.rglob("results.json")}
    assert after == before  # no new half-written results, earlier ones unchanged
    assert not list(out.rglob(".tmp-*"))


def test_cli_run_unknown_model(capsys):
    from mrsbench.cli import main
    assert main(["run", "--model", "nope", "--preset", "tiny", "--no-progress"]) == 2
    assert "unknown generator 'nope'" in capsys.readouterr().err


def _columns_equal_metrics(doc):
    """The board's columns recomputed from the per-subject statistics with every weight 1 are the metrics."""
    from mrsbench.boards.leaderboard import columns_for
    from mrsbench.harness.statistics import doc_columns, load_stats
    st = load_stats(doc)
    S = len(doc["per_subject"]["subject"])
    cols = doc_columns(doc, st, np.ones((1, S)))
    checked = 0
    for k, _, _, _ in columns_for(doc["preset"]):
        v = doc["metrics"].get(k)
        if v is None:
            assert k not in cols or not np.isfinite(cols[k][0]), k
            continue
        assert cols[k][0] == pytest.approx(v, rel=1e-8, abs=1e-10), k
        lo, hi = doc["intervals"][k]
        assert lo <= hi, k
        checked += 1
    return checked


@pytest.mark.parametrize("model", ["vae", "pca", "physics"])
def test_columns_from_per_subject_stats_equal_metrics(runs, model):
    _, res = runs
    doc = json.loads((res[model][1] / "results.json").read_text())
    assert doc["per_subject"]["subject"] == doc["split"]["test"]
    assert _columns_equal_metrics(doc) >= (14 if model != "physics" else 13)


def _content(scan):
    return hash((scan.fids.tobytes(), scan.edit.tobytes()))


class FoldSpy(Generator):
    """Resamples the conditioning transients; refuses to be asked about a subject it was trained on, and to be
    conditioned on a scan the harness did not announce to ``prepare`` first."""
    name = "foldspy"
    announced: set = set()
    sampled: int = 0

    def prepare(self, conditions):
        for c in conditions:
            assert c.subject not in self.seen, "leak: prepare for a subject seen in training"
            FoldSpy.announced.add(_content(c))

    def fit(self, train, seed=0, val=None):
        self.axis = train.axis
        self.seen = set(train.subjects) | set(val.subjects if val is not None else [])
        self.pool = train.scans[0]
        return self

    def sample(self, n, *, condition=None, seed=0):
        rng = np.random.default_rng(seed)
        src = self.pool if condition is None else condition
        if condition is not None:
            assert condition.subject not in self.seen, "leak: sampled for a subject seen in training"
            assert _content(condition) in FoldSpy.announced, "conditioned on a scan not announced to prepare()"
            FoldSpy.sampled += 1
        on, off = src.fids[src.edit == 1], src.fids[src.edit == 0]
        return Scan.from_on_off(on[rng.integers(0, len(on), n)], off[rng.integers(0, len(off), n)], self.axis)


def test_kfold_run_tests_every_subject_with_a_generator_that_never_saw_it(tmp_path, monkeypatch):
    from mrsbench.harness import protocol
    from mrsbench.generators import registry
    from mrsbench.data.datasets import load_dataset
    pr = protocol.Preset("tinyfold", n_values=(20,), n_subsets=1, embedding_samples=120, umap_epochs=50, folds=3,
                         seeds=(0,))
    monkeypatch.setitem(protocol.PRESETS, "tinyfold", pr)
    monkeypatch.setattr(registry, "get", lambda name: FoldSpy)
    FoldSpy.announced, FoldSpy.sampled = set(), 0
    res, run_dir = run("foldspy", preset="tinyfold", out=tmp_path, progress=False, track=False)
    assert FoldSpy.sampled >= 12 + 12   # embedding (one per subject) and application (one per subject here)
    doc = json.loads((run_dir / "results.json").read_text())
    subjects = load_dataset("simgaba-small", progress=False).subjects
    ps = doc["per_subject"]
    assert sorted(ps["subject"]) == sorted(subjects)          # every subject tested, once
    assert sorted(ps["fold"]) == sorted([0, 1, 2] * 4)
    assert doc["split"]["k"] == 3 and doc["model_card"]["folds"] == 3
    for f in doc["split"]["folds"]:
        assert set(f["test"]).isdisjoint(f["train"]) and set(f["test"]).isdisjoint(f["val"])
    assert _columns_equal_metrics(doc) >= 13


def test_compare_reports_paired_tests_of_the_headline_metrics(runs):
    """`mrsbench compare` of two models run on the same split: a paired permutation test (Holm over the headline
    metrics) per headline column; with 2 test subjects nothing can be significant (smallest exact p = 0.25)."""
    import json as _json

    from mrsbench.boards.compare import compare
    _, res = runs
    out = _json.loads(compare(res["vae"][1] / "results.json", res["pca"][1] / "results.json", as_json=True))
    tested = {m["metric"]: m["test"] for m in out[0]["metrics"] if m.get("test")}
    assert "application.n20.effective_n" in tested and "reconstruction.nmse_1.8-4.2ppm" in tested
    for t in tested.values():
        assert 0.25 <= t["p"] <= 1 and t["p_holm"] >= t["p"] and not t["significant"]
    text = compare(res["vae"][1] / "results.json", res["pca"][1] / "results.json")
    assert "p (Holm)" in text and "Holm-corrected over the" in text


def test_embedding_statistics_run_on_one_blas_thread(runs):
    """The embedding family's two-sample statistics (many small products, repeated per subject by the
    jackknife) run with one BLAS thread: with OpenBLAS's 2 threads the quick preset's embedding stage took
    2.5-2.8 s, with 1 thread 1.2-1.6 s (metrics equal to ~1e-13). Seen during the module's runs."""
    seen = _BLAS_THREADS_IN_STATS
    assert seen and all(n == [1] * len(n) for n in seen), seen


def test_shared_work_hands_its_processed_subsets_to_later_processes(tmp_path, monkeypatch):
    """Shared work read back from its disk cache (as a later `mrsbench run`, or a sweep's cell on another worker,
    gets it) gives processing's memory the application jobs' processed subsets: a generator's process_many of the
    same conditioning subsets (the physics baseline's prepare) processes none of them again, and gets exactly
    what process() gives."""
    import numpy as np
    from mrsbench.harness import cell_work as shared
    from mrsbench.processing import pipeline
    from mrsbench.harness.protocol import PRESETS
    monkeypatch.setenv("MRSBENCH_SHARED_DIR", str(tmp_path))
    pr = PRESETS["tiny"]
    cd = shared.cell_data("simgaba-small", pr, 0, progress=False)
    shared._MEMO.clear()
    sw = shared.shared_for(cd, pr, 0, progress=False)
    shared._MEMO.clear()
    pipeline._MEMO.clear()
    sw2 = shared.shared_for(cd, pr, 0, progress=False)   # from the disk cache
    assert sw2 is not sw and len(sw2.subset_processed) == len(sw2.jobs) > 0
    subs = [cd.test.scans[i].select(sel) for (i, _, _), sel in zip(sw2.jobs, sw2.selections)]
    fresh = [pipeline.process(s) for s in subs[:2]]
    pipeline._MEMO.clear()
    sw2.remember_subsets()
    monkeypatch.setattr(pipeline, "process", lambda *a, **k: pytest.fail("a remembered subset was processed again"))
    got = pipeline.process_many(subs)
    # The remembered subsets were processed in worker processes (one BLAS thread each), `fresh` here with this
    # process's BLAS threads: a BLAS reduction in another order differs in the last bits (seen: tcr_phase_rad
    # 0.2909472726916675 vs 0.29094727269166754 with 2 OpenBLAS threads), and processing's iterative alignment can
    # carry that to ~1e-12 relative. rtol 1e-9 is far above round-off and far below any real change (a
    # recomputed-with-other-settings subset differs by > 1e-3). What must hold exactly is that nothing was
    # processed again (the monkeypatched process() above).
    for a, b in zip(got, fresh):
        for x, y in ((a.on, b.on), (a.off, b.off), (a.weights, b.weights)):
            assert x.shape == y.shape and np.allclose(x, y, rtol=1e-9, atol=1e-12 * np.abs(y).max())
        assert a.info.keys() == b.info.keys()
        for k in a.info:
            va, vb = a.info[k], b.info[k]
            if isinstance(va, (float, np.floating, np.ndarray, list)) and not isinstance(va, bool):
                assert np.allclose(va, vb, rtol=1e-9, atol=1e-12), k
            else:
                assert va == vb, k
