"""End-to-end harness runs on simgaba-small with the tiny preset."""
import json

import numpy as np
import pytest

from mrsbench.data import Scan
from mrsbench.generator import Generator
from mrsbench.harness import HARNESS_VERSION, SCHEMA, run

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


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    res = {}
    for model in ("vae", "pca", "physics"):
        res[model] = run(model, preset="tiny", out=out, progress=False)
    return out, res


@pytest.mark.parametrize("model", ["vae", "pca", "physics"])
def test_end_to_end(runs, model):
    out, res = runs
    results, run_dir = res[model]
    doc = _check(results, run_dir)
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
        assert m["application.n20.augmented.shape_score"] < b["application.n20.augmented.shape_score"]
        assert m["application.n20.augmented.mse"] > b["application.n20.augmented.mse"]
    assert copy["metrics"]["embedding.memorisation_ratio"] < 0.2
    assert res["pca"][0]["metrics"]["embedding.memorisation_ratio"] > 0.5


def test_results_written_atomically_and_never_touch_earlier_runs(runs, tmp_path, monkeypatch):
    import mrsbench.outputs as h
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
