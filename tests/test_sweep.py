"""`mrsbench sweep`: grid, sweep files, resumption after a kill, failing cells, and a local-Ray sweep whose
results files match the sequential ones (tiny preset on simgaba-small)."""
import json
from pathlib import Path
import os
import subprocess
import sys
import textwrap

import pytest

from mrsbench.cli import main
from mrsbench.core.errors import InputError
from mrsbench.sweep.runner import Cell, SweepSpec, existing_problem, load_sweep_file, run_sweep

PLUGIN = textwrap.dedent("""
    import os, signal
    from mrsbench_baselines.pca import PCAGenerator

    class Broken(PCAGenerator):
        name = "broken"
        def fit(self, train, seed=0, val=None):
            raise ValueError("no convergence in epoch 3")

    class KillOnce(PCAGenerator):
        '''Kills its own process (SIGKILL: no clean-up at all) the first time it is fitted.'''
        name = "killonce"
        def fit(self, train, seed=0, val=None):
            marker = os.environ["KILLONCE_MARKER"]
            if not os.path.exists(marker):
                open(marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
            return super().fit(train, seed=seed, val=val)

    class EnvProbe(PCAGenerator):
        '''Fails unless the driver's MRSBENCH_* environment reached the process that fits it.'''
        name = "envprobe"
        def fit(self, train, seed=0, val=None):
            if os.environ.get("MRSBENCH_SWEEP_PROBE") != "on":
                raise ValueError("MRSBENCH_SWEEP_PROBE did not reach this worker")
            return super().fit(train, seed=seed, val=val)

    class GpuPca(PCAGenerator):
        '''Asks Ray for a GPU (as vae does); runs on CPU.'''
        name = "gpupca"
        resources = {"num_gpus": 1}

    class Sleepy(PCAGenerator):
        '''Notes the Ray node it is fitted on (a file beside this plugin), then takes 6 s.'''
        name = "sleepy"
        def fit(self, train, seed=0, val=None):
            import time, ray
            from pathlib import Path
            d = Path(__file__).parent / "markers"
            d.mkdir(exist_ok=True)
            (d / f"{ray.get_runtime_context().get_node_id()[:12]}-{os.getpid()}").touch()
            time.sleep(6)
            return super().fit(train, seed=seed, val=val)

    class Sleepy2(Sleepy):
        name = "sleepy2"

    MRSBENCH_GENERATORS = {"broken": Broken, "killonce": KillOnce, "envprobe": EnvProbe, "gpupca": GpuPca,
                           "sleepy": Sleepy, "sleepy2": Sleepy2}
""")


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    p = tmp_path_factory.mktemp("plugin") / "sweep_plugins.py"
    p.write_text(PLUGIN)
    return p


def test_grid_and_sweep_file(tmp_path):
    spec = SweepSpec(models=["pca", "vae"], datasets=["simgaba-small"], presets=["quick", "tiny"])
    cells = spec.cells()
    # quick has seeds 0,1,2 and tiny seed 0: (3 + 1) x 2 models
    assert len(cells) == 8 and len(set(cells)) == 8
    assert Cell("vae", "simgaba-small", "tiny", 0) in cells
    assert cells[0].path(tmp_path) == tmp_path / "simgaba-small" / "quick" / "pca-seed0.json"
    assert SweepSpec(models=["pca"], seeds=[5, 6]).cells() == [Cell("pca", "simgaba-small", "quick", 5),
                                                               Cell("pca", "simgaba-small", "quick", 6)]
    f = tmp_path / "sweep.toml"
    f.write_text('[sweep]\nmodels = ["pca", "physics"]\nseeds = [0, 1]\npresets = ["tiny"]\nroot = "out"\n')
    assert load_sweep_file(f) == {"models": ["pca", "physics"], "seeds": [0, 1], "presets": ["tiny"], "root": "out"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"modles": ["pca"]}')
    with pytest.raises(InputError, match="unknown field.*modles"):
        load_sweep_file(bad)
    with pytest.raises(InputError, match="no such sweep file"):
        load_sweep_file(tmp_path / "none.toml")


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["sweep", "--presets", "tiny", "--root", str(tmp_path)]) == 2
    assert "no models" in capsys.readouterr().err
    assert main(["sweep", "--models", "nosuchmodel", "--root", str(tmp_path), "--no-track"]) == 2
    err = capsys.readouterr().err
    assert "unknown generator 'nosuchmodel'" in err and len(err.strip().splitlines()) == 1
    assert main(["sweep", "--models", "pca", "--presets", "huge", "--root", str(tmp_path)]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert main(["sweep", "--models", "pca", "--seeds", "a,b", "--root", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())  # nothing ran, nothing written


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, plugin):
    """A sequential sweep of pca + a generator that fails: the failure is reported, pca completes."""
    root = tmp_path_factory.mktemp("seq")
    rep = run_sweep(SweepSpec(models=["pca", "broken"], presets=["tiny"], seeds=[0], root=str(root),
                              plugins=[str(plugin)], backend="local"), progress=False)
    return root, rep


def test_failing_cell_is_reported_and_others_complete(sequential):
    root, rep = sequential
    st = {o.cell.model: o for o in rep.outcomes}
    assert st["pca"].status == "done" and st["broken"].status == "failed"
    assert "generator 'broken': fit() failed: ValueError: no convergence in epoch 3" in st["broken"].error
    assert (root / "simgaba-small" / "tiny" / "pca-seed0.json").is_file()
    assert not (root / "simgaba-small" / "tiny" / "broken-seed0.json").exists()
    assert "FAILED broken simgaba-small/tiny seed 0" in rep.text()
    assert not list(root.rglob(".tmp*"))
    # the sweep's MLflow parent run holds both cells, the failed one marked FAILED
    from mlflow import MlflowClient
    assert not (root / "mlflow.db").exists() and not (root / "mlartifacts").exists()   # a results root holds results only
    c = MlflowClient(tracking_uri=f"sqlite:///{root.parent / 'mlflow.db'}")
    runs = c.search_runs([c.get_experiment_by_name("mrsbench-sweep").experiment_id])
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.data.params["model"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert len(parent) == 1 and parent[0].data.metrics["cells_done"] == 1 and parent[0].data.metrics["cells_failed"] == 1
    assert children["pca"].info.status == "FINISHED" and "embedding.mmd2" in children["pca"].data.metrics
    assert children["broken"].info.status == "FAILED" and "no convergence" in children["broken"].data.tags["error"]


def test_results_file_is_what_run_writes(sequential):
    """A sweep cell's file is a valid results document, identical in every metric to `mrsbench run`."""
    from mrsbench.harness.evaluator import run
    from mrsbench.boards.leaderboard import validate_results
    root, _ = sequential
    doc = json.loads((root / "simgaba-small" / "tiny" / "pca-seed0.json").read_text())
    assert validate_results(doc) == []
    res, _ = run("pca", preset="tiny", seed=0, out=root.parent / "single", progress=False, track=False)
    assert set(res["metrics"]) == set(doc["metrics"]) and res["split"] == doc["split"]
    for k, v in res["metrics"].items():   # equal; last bits may differ when the shared work is read from disk
        w = doc["metrics"][k]
        assert (v is None and w is None) or abs(v - w) <= 1e-9 * max(1.0, abs(v)), k
    assert res["dataset_hash"] == doc["dataset_hash"]


def test_killed_sweep_resumes_only_missing_cells(tmp_path, plugin):
    root = tmp_path / "root"
    env = dict(os.environ, KILLONCE_MARKER=str(tmp_path / "killed"))
    cmd = [sys.executable, "-m", "mrsbench", "sweep", "--models", "pca,killonce", "--presets", "tiny", "--seeds", "0",
           "--backend", "local", "--root", str(root), "--plugins", str(plugin), "--no-progress", "--no-track"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == -9, p.stderr[-2000:]          # killed in the second cell
    done = root / "simgaba-small" / "tiny" / "pca-seed0.json"
    assert done.is_file() and not (root / "simgaba-small" / "tiny" / "killonce-seed0.json").exists()
    before = (done.read_bytes(), done.stat().st_mtime_ns)
    p = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    rep = json.loads(p.stdout)
    assert {c["model"]: c["status"] for c in rep["cells"]} == {"pca": "skipped", "killonce": "done"}
    assert (done.read_bytes(), done.stat().st_mtime_ns) == before
    assert existing_problem(Cell("killonce", "simgaba-small", "tiny", 0), root) is None
    # a plugin's cell records its plugin (what `validate --reproduce` imports again), a built-in's does not
    killonce = json.loads((root / "simgaba-small" / "tiny" / "killonce-seed0.json").read_text())
    assert killonce["plugin"]["source"] == str(Path(plugin).resolve()) and len(killonce["plugin"]["sha256"]) == 64
    assert "plugin" not in json.loads(done.read_text())
    # an edited results file is not "done": it is recomputed
    doc = json.loads(done.read_text())
    doc["metrics"]["embedding.mmd2"] = 0.0
    done.write_text(json.dumps(doc))
    assert "checksum" in existing_problem(Cell("pca", "simgaba-small", "tiny", 0), root)


def test_local_ray_sweep_matches_sequential(sequential, tmp_path, plugin, monkeypatch):
    """Also: the embedded cluster's workers see the driver's MRSBENCH_* variables (set after Python started)."""
    pytest.importorskip("ray")
    seq_root, _ = sequential
    monkeypatch.setenv("MRSBENCH_SWEEP_PROBE", "on")
    rep = run_sweep(SweepSpec(models=["pca", "envprobe"], presets=["tiny"], seeds=[0], root=str(tmp_path),
                              plugins=[str(plugin)], backend="ray", workers=2, leaderboard=True, track=False),
                    progress=False)
    assert rep.backend == "ray" and [o.status for o in rep.outcomes] == ["done", "done"], rep.text()
    a = json.loads((seq_root / "simgaba-small" / "tiny" / "pca-seed0.json").read_text())
    b = json.loads((tmp_path / "simgaba-small" / "tiny" / "pca-seed0.json").read_text())
    assert set(a) == set(b) and a["split"] == b["split"] and a["dataset_hash"] == b["dataset_hash"]
    assert a["figures"] == b["figures"] and set(a["metrics"]) == set(b["metrics"])
    for k, v in a["metrics"].items():   # 1 thread in a Ray worker vs 2 here: BLAS round-off only
        w = b["metrics"][k]
        assert (v is None and w is None) or abs(v - w) <= 1e-7 * max(1.0, abs(v)), k
    for f in a["figures"]:
        assert (tmp_path / "simgaba-small" / "tiny" / "figures" / f"pca-seed0-{f}").stat().st_size > 1000
    assert (tmp_path / "simgaba-small" / "tiny" / "leaderboard.json").is_file()


# --- a real two-node Ray cluster (issue 42) ------------------------------------------------------

from raycluster import TwoNodeCluster  # noqa: E402  (tests/raycluster.py)


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    cl = TwoNodeCluster()
    try:
        yield cl.start(head_gpus=1)   # the head declares a fake GPU: Ray schedules by declared resources
    finally:
        cl.stop()


def _sweep(cl, root, models, plugin, *extra):
    cmd = [sys.executable, "-m", "mrsbench", "sweep", "--models", models, "--presets", "tiny", "--seeds", "0",
           "--address", cl.address, "--root", str(root), "--plugins", str(plugin), "--no-progress", "--json", *extra]
    return subprocess.Popen(cmd, env=cl.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_node_cluster_sweep(cluster, sequential, plugin, tmp_path):
    """Cells run on both nodes; the results equal the sequential run's within the reproduce tolerance; a generator
    declaring a GPU runs on the node that has one; MLflow has the parent run and every child."""
    from mrsbench.boards.submit import compare_metrics
    nodes = cluster.nodes()
    assert len(nodes) == 2
    gpu_node = next(n["id"] for n in nodes if n["gpus"] > 0)
    root = tmp_path / "root"
    p = _sweep(cluster, root, "pca,bootstrap,gpupca", plugin, "--tracking-uri", f"sqlite:///{tmp_path / 'ml.db'}")
    out, err = p.communicate(timeout=900)
    assert p.returncode == 0, err[-3000:]
    rep = json.loads(out)
    cells = {c["model"]: c for c in rep["cells"]}
    assert all(c["status"] == "done" for c in cells.values()), rep
    assert len({c["node"] for c in cells.values()}) == 2, f"cells did not run on both nodes: {nodes}, {rep}"
    assert cells["gpupca"]["node"] == gpu_node
    assert set(rep["timeline"]["nodes"]) == {n["id"] for n in nodes}
    # the (dataset, preset, seed) group's shared work: computed once for the cluster, every cell got that one
    assert [v["computed"] for v in rep["timeline"]["shared"].values()] == [1]
    a = json.loads((sequential[0] / "simgaba-small" / "tiny" / "pca-seed0.json").read_text())
    b = json.loads((root / "simgaba-small" / "tiny" / "pca-seed0.json").read_text())
    assert all(ok for _, _, _, ok in compare_metrics(a["metrics"], b["metrics"]))
    from mlflow import MlflowClient
    c = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'ml.db'}")
    runs = c.search_runs([c.get_experiment_by_name("mrsbench-sweep").experiment_id])
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parent) == 1 and parent[0].data.metrics["cells_done"] == 3
    assert sorted(r.data.params["model"] for r in children) == ["bootstrap", "gpupca", "pca"]
    assert all(r.info.status == "FINISHED" for r in children + parent)


def test_killing_the_worker_node_mid_sweep(cluster, plugin, tmp_path):
    """The worker node dies while fitting a cell: Ray runs that cell again on the head (or the sweep reports it
    failed); whatever happens, every results file there is complete and valid and nothing half-written remains."""
    import time
    from mrsbench.boards.leaderboard import validate_results
    nodes = [n["id"] for n in cluster.nodes()]
    root = tmp_path / "root"
    markers = Path(plugin).parent / "markers"
    p = _sweep(cluster, root, "sleepy,sleepy2", plugin, "--no-track")
    try:
        deadline = time.time() + 300
        while time.time() < deadline:   # both cells fitting, one per node
            seen = {m.name.split("-")[0] for m in markers.glob("*")} if markers.is_dir() else set()
            if len(seen & set(nodes)) == 2:
                break
            time.sleep(0.5)
        assert len(seen & set(nodes)) == 2, f"the cells did not start on both nodes: {seen}"
        cluster.kill_worker_node()
        out, err = p.communicate(timeout=600)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode in (0, 1), err[-3000:]
    rep = json.loads(out)   # --json: the report alone on stdout (Ray's notes of the lost node go to stderr)
    head = next(n["id"] for n in cluster.nodes() if n["gpus"] > 0)
    for c in rep["cells"]:
        f = root / "simgaba-small" / "tiny" / f"{c['model']}-seed0.json"
        if c["status"] == "done":
            assert validate_results(json.loads(f.read_text())) == []
        else:
            assert c["status"] == "failed" and c["error"] and not f.exists()
    assert not list(root.rglob(".tmp*"))
    # the cell that was on the dead node ran again on the head, or was reported failed
    done = [c for c in rep["cells"] if c["status"] == "done"]
    assert {c["node"] for c in done} <= {head} and (len(done) == 2 or any(c["status"] == "failed" for c in rep["cells"]))
