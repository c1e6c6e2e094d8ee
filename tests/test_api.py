"""The Python API (mrsbench.api): evaluate on names and instances, results and boards as DataFrames that
round-trip their files, no side effects of importing mrsbench, and the walkthrough in docs/python-api.md."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mrsbench
from mrsbench.boards.submit import compare_metrics
from mrsbench.cli import main
from mrsbench.core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
BOARDS = [ROOT / "leaderboards" / "simgaba-small" / "quick", ROOT / "leaderboards" / "simgaba" / "paper"]


def test_import_leaves_the_environment_unchanged_and_is_light():
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_WAIT_POLICY")}
    code = ("import os, sys, json; before = dict(os.environ); import mrsbench; "
            "print(json.dumps([before == dict(os.environ), sorted(m for m in ('torch', 'pandas', 'umap', 'mlflow') "
            "if m in sys.modules), callable(mrsbench.evaluate), 'torch' in sys.modules]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    unchanged, heavy, has_api, torch_after_api = json.loads(r.stdout)
    assert unchanged, "import mrsbench changed os.environ"
    assert heavy == [], heavy
    assert has_api and not torch_after_api     # the API is there, and loading it does not import torch


def test_entry_points_set_the_openmp_spin_only_before_torch():
    from mrsbench.core.parallel import openmp_defaults
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_WAIT_POLICY")}
    code = ("import os, sys; from mrsbench.core.parallel import openmp_defaults; {pre}openmp_defaults(); "
            "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('KMP_BLOCKTIME'))")
    out = lambda pre, e=env: subprocess.run([sys.executable, "-c", code.format(pre=pre)], capture_output=True,  # noqa
                                            text=True, env=e).stdout.split()
    assert out("") == ["1000", "1"]
    assert out("import torch; ") == ["None", "None"]                       # too late: nothing set
    assert out("", dict(env, OMP_WAIT_POLICY="PASSIVE")) == ["None", "None"]   # the user's choice kept
    assert callable(openmp_defaults)


@pytest.mark.slow
def test_evaluate_on_an_instance_equals_mrsbench_run(tmp_path, monkeypatch):
    """The same registered generator through `mrsbench run` and as an instance through evaluate: every metric
    within the reproduce tolerance; evaluate with out=None writes nothing."""
    from mrsbench.generators import registry
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--model", "pca", "--preset", "tiny", "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    cli = mrsbench.load_results(next((tmp_path / "cli").rglob("results.json")))
    work = tmp_path / "api"
    work.mkdir()
    monkeypatch.chdir(work)
    res = mrsbench.evaluate(registry.get("pca")(), preset="tiny", progress=False)
    assert list(work.iterdir()) == [], "evaluate(out=None) wrote files"
    assert res.path is None and res.model == "pca" and res.preset == "tiny"
    bad = [(k, a, b) for k, a, b, ok in compare_metrics(cli.metrics, res.metrics) if not ok]
    assert not bad, bad[:5]
    assert set(res.intervals) == set(cli.intervals)
    assert "in memory only" in res.summary and "by spectrum shape" in res.summary
    assert res.problems() == [] or all("figure" in p for p in res.problems())
    fig = res.figure("umap.png")
    assert fig.axes and fig.axes[0].get_xlabel()


@pytest.mark.slow
def test_an_unregistered_instance_runs_on_the_k_fold_preset(tmp_path, monkeypatch):
    """A class defined here (no plugin file, no registration, no get_params) on quick: one deep copy per fold,
    every subject tested, the instance untouched."""
    import numpy as np

    from mrsbench import Scan
    from mrsbench.generators import Generator

    class Resample(Generator):
        def fit(self, train, seed=0, val=None):
            self.train_ = train
            return self

        def sample(self, n, *, condition=None, seed=0):
            rng = np.random.default_rng(seed)
            src = condition if condition is not None else self.train_.scans[0]
            pick = lambda lab: src.fids[src.edit == lab][rng.integers(0, np.sum(src.edit == lab), n)]  # noqa: E731
            return Scan.from_on_off(pick(1), pick(0), src.axis)

    monkeypatch.chdir(tmp_path)
    g = Resample()
    res = mrsbench.evaluate(g, preset="quick", progress=False, out=tmp_path / "runs")
    assert not hasattr(g, "train_"), "the instance itself was fitted"
    assert res.model == "Resample" and res.data["model_card"]["folds"] == 4
    assert len(res.per_subject["subject"]) == 12 and sorted(set(res.per_subject["fold"])) == [0, 1, 2, 3]
    written = mrsbench.load_results(res.path)
    assert written.to_json() == res.path.read_text() and written.problems() == []


def test_settings_are_checked_against_the_generator():
    with pytest.raises(InputError, match=r"pca.*unknown setting.*'bogus'.*n_components"):
        mrsbench.evaluate("pca", preset="tiny", settings={"bogus": 1})
    with pytest.raises(InputError, match="set them on the instance"):
        mrsbench.evaluate(object(), settings={"a": 1})
    with pytest.raises(InputError, match="not a generator"):
        mrsbench.evaluate(object(), preset="tiny")
    with pytest.raises(InputError, match="unknown generator .no-such-model"):
        mrsbench.evaluate("no-such-model", preset="tiny", settings={"a": 1})


@pytest.mark.parametrize("board", BOARDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_boards_and_results_as_frames(board):
    b = mrsbench.load_board(board)
    assert b.to_json() == (board / "leaderboard.json").read_text()          # round trip, byte for byte
    df = b.to_frame()
    cols = b.data["columns"]
    assert len(df) == len(b.data["rows"]) * len(cols)
    physics = df[(df.model == "physics") & (df.metric == "application.n20.effective_n")].iloc[0]
    row = next(r for r in b.data["rows"] if r["model"] == "physics")
    cell = row["application.n20.effective_n"]
    assert physics["mean"] == cell["mean"] and [physics.ci_low, physics.ci_high] == cell["ci"]
    assert physics["rank"] == row["ranks"]["application.n20.effective_n"] and physics.position == row["position"]
    assert set(df[df.model == "bootstrap"].role) == {"floor"} and b.verdict.startswith("For filling up")
    wide = b.to_frame(wide=True)
    assert list(wide.index) == b.models and wide.loc["physics", "application.n20.effective_n"] == cell["mean"]
    for f in sorted(board.glob("*-seed*.json"))[:3]:
        r = mrsbench.load_results(f)
        assert r.to_json() == f.read_text()                                   # round trip, byte for byte
        m = r.to_frame()
        assert len(m) == len(r.metrics) and set(m.family) <= {"reconstruction", "embedding", "application",
                                                                "quantification"}
        k = "application.n20.effective_n"
        sel = m[m.metric == k].iloc[0]
        assert sel.value == r.metrics[k] and [sel.ci_low, sel.ci_high] == r.intervals[k]
        s = r.to_frame("subjects")
        assert s.subject.nunique() == len(r.per_subject["subject"])
        assert set(s.statistic) == set(r.per_subject["stats"])


def test_loading_bad_files_is_one_line(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"a": 1}')
    with pytest.raises(InputError, match="not a results file"):
        mrsbench.load_results(p)
    with pytest.raises(InputError, match="no leaderboard.json"):
        mrsbench.load_board(tmp_path)


def python_api_blocks() -> list[str]:
    text = (ROOT / "docs" / "python-api.md").read_text()
    return re.findall(r"<!-- python-api -->\s*```python\n(.*?)```", text, re.S)


@pytest.mark.slow
def test_python_api_walkthrough_runs(tmp_path):
    """docs/python-api.md as written, block after block in one fresh interpreter, from a folder holding the
    repository's leaderboards/."""
    blocks = python_api_blocks()
    assert len(blocks) == 5
    (tmp_path / "leaderboards").symlink_to(ROOT / "leaderboards")
    script = "\n\n".join(blocks)
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "'pca'" in out and "physics is worth" in out
    assert "pca[n_components=8]" in out and re.search(r"jitter \d+\.\d+", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leaderboards"]    # nothing written
