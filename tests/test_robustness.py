"""Results that validate anywhere, all-or-nothing submissions, clean interrupts, umask, one-line errors."""
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mrsbench.harness import evaluator as harness
from mrsbench.cli import main
from mrsbench.data.datasets import FINGERPRINT_RTOL, fingerprint, fingerprint_mismatch, load_dataset

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = (ROOT / "examples" / "jitter_generator.py").read_text()


# --- dataset identity ---------------------------------------------------------------------

def _perturbed(cohort, rel=1e-13, seed=0):
    """The cohort with every FID changed in its last bits, as another CPU/BLAS build gives."""
    rng = np.random.default_rng(seed)
    for s in cohort.scans:
        s.fids[:] = s.fids * (1 + rel * rng.standard_normal(s.fids.shape))
    return cohort


def test_fingerprint_survives_round_off_and_catches_real_changes():
    c = load_dataset("simgaba-small", progress=False)
    fp = fingerprint(c)
    ident = c.meta["identity"]
    p = _perturbed(load_dataset("simgaba-small", progress=False))
    assert fingerprint_mismatch(fp, fingerprint(p)) is None
    # a real change: one subject's data scaled by 1e-4 (far below any metric's resolution), another seed
    c.scans[3].fids[:] *= 1 + 1e-4
    assert "sub-004" in fingerprint_mismatch(fp, fingerprint(c))
    other = load_dataset("simgaba-small", seed=123, progress=False)
    fo = dict(zip(fp, fingerprint(other).values()))
    assert fingerprint_mismatch(fp, fo) is not None
    assert other.meta["identity"] != ident and ident.startswith("sim-")
    assert FINGERPRINT_RTOL < 1e-4


def test_committed_results_validate_on_another_machine(monkeypatch):
    """The committed simgaba-small results validate when the regenerated data differ in the last
    bits (what the exact content hash used to reject on every other machine)."""
    import mrsbench.data.datasets as ds
    from mrsbench.boards.leaderboard import validate_results

    real = ds.load_dataset

    def other_machine(*a, **k):
        c = real(*a, **k)
        before = c.meta["content_hash"]
        _perturbed(c)
        c.meta.update(content_hash=ds.content_hash(c), fingerprint=ds.fingerprint(c))
        assert c.meta["content_hash"] != before
        return c

    monkeypatch.setattr(ds, "load_dataset", other_machine)
    files = sorted((ROOT / "leaderboards" / "simgaba-small").rglob("*-seed*.json"))
    if not files:
        pytest.skip("no committed simgaba-small results")
    for f in files:
        assert validate_results(json.loads(f.read_text()), str(f), check_dataset=True) == [], f


# --- submit, reproduce ----------------------------------------------------------------------

@pytest.fixture
def two_seed_preset(monkeypatch):
    pr = harness.PRESETS["tiny"]
    from dataclasses import replace
    monkeypatch.setitem(harness.PRESETS, "tiny2", replace(pr, name="tiny2", seeds=(0, 1)))
    return "tiny2"


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def test_submit_is_all_or_nothing(tmp_path, two_seed_preset, capsys):
    good = tmp_path / "good_gen.py"
    good.write_text(PLUGIN)
    root = tmp_path / "lb"
    assert main(["submit", str(good), "--preset", two_seed_preset, "--root", str(root), "--no-progress"]) == 0
    dest = root / "simgaba-small" / two_seed_preset
    before = _tree(dest)
    assert {"jitter-seed0.json", "jitter-seed1.json"} <= set(before)
    bad = tmp_path / "flaky_gen.py"
    bad.write_text(PLUGIN.replace('name = "jitter"', 'name = "flaky"').replace(
        "        self.train = train\n",
        "        self.train = train\n        if seed == 1:\n            raise RuntimeError('out of luck')\n"))
    capsys.readouterr()
    assert main(["submit", str(bad), "--preset", two_seed_preset, "--root", str(root), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'flaky'" in err and "seed 1" in err and "fit()" in err and "out of luck" in err
    assert _tree(dest) == before  # no orphan seed file, no figure, no board change
    # a failure into a fresh folder leaves no folder at all
    assert main(["submit", str(bad), "--preset", two_seed_preset, "--root", str(tmp_path / "new"), "--no-progress"]) == 2
    assert not (tmp_path / "new" / "simgaba-small" / two_seed_preset / "figures").exists()
    assert not list((tmp_path / "new").rglob("*.json"))


def test_repeated_seed_counted_once(tmp_path):
    from mrsbench.boards.leaderboard import build, load_results
    from test_leaderboard import _doc
    a, b = _doc("m", 0, {"embedding.mmd2": 0.1}), _doc("m", 0, {"embedding.mmd2": 0.3})
    a["created"], b["created"] = "2026-01-01T00:00:00", "2026-02-01T00:00:00"
    for name, d in (("a.json", a), ("b.json", b)):
        d.pop("checksum")
        d["checksum"] = harness.results_checksum(d)
        (tmp_path / name).write_text(json.dumps(d))
    lb = build(load_results([tmp_path]))
    assert lb["rows"][0]["seeds"] == [0] and lb["rows"][0]["embedding.mmd2"]["mean"] == pytest.approx(0.3)
    assert [Path(d["source"]).name for d in lb["duplicates"]] == ["a.json"]


def test_validate_reproduce(tmp_path, capsys):
    plugin = tmp_path / "my_generator.py"
    plugin.write_text(PLUGIN)
    root = tmp_path / "lb"
    assert main(["submit", str(plugin), "--preset", "tiny", "--root", str(root), "--no-progress"]) == 0
    res = root / "simgaba-small" / "tiny" / "jitter-seed0.json"
    capsys.readouterr()
    assert main(["validate", str(res), "--reproduce", "--no-progress"]) == 0
    assert "reproduced" in capsys.readouterr().out
    # an edited file with a recomputed checksum passes plain validation but not --reproduce
    doc = json.loads(res.read_text())
    doc["metrics"]["application.n20.augmented.shape_score"] += 0.05
    doc["checksum"] = harness.results_checksum(doc)
    res.write_text(json.dumps(doc))
    assert main(["validate", str(res), "--no-dataset-check"]) == 0
    capsys.readouterr()
    assert main(["validate", str(res), "--reproduce", "--no-progress"]) == 2
    assert "application.n20.augmented.shape_score" in capsys.readouterr().err


def test_reproduce_tolerance_table():
    from mrsbench.boards.submit import compare_metrics
    rows = dict((k, ok) for k, _, _, ok in compare_metrics(
        {"application.n20.subset.snr": 2.0, "embedding.umap_kde_overlap": 0.87, "reconstruction.nmse_full": None,
         "quantification.gaba_cr.bias.subset": 0.18},
        {"application.n20.subset.snr": 2.0 * (1 + 1e-5), "embedding.umap_kde_overlap": 0.864,
         "reconstruction.nmse_full": 0.1, "quantification.gaba_cr.bias.subset": 0.25}))
    assert rows == {"application.n20.subset.snr": True, "embedding.umap_kde_overlap": True,
                    "reconstruction.nmse_full": False, "quantification.gaba_cr.bias.subset": True}
    bad = compare_metrics({"application.n20.subset.snr": 2.0}, {"application.n20.subset.snr": 2.1})
    assert bad[0][3] is False


# --- interrupted runs, MLflow, file modes -----------------------------------------------------

def _mlflow_runs(db: Path) -> list:
    """Every run (nested included) in the sqlite store ``db``, as mlflow Run objects."""
    from mlflow.tracking import MlflowClient
    c = MlflowClient(tracking_uri=f"sqlite:///{db}")
    ids = [e.experiment_id for e in c.search_experiments()]
    return list(c.search_runs(ids)) if ids else []


INTERRUPT = textwrap.dedent("""
    import os, signal, sys
    # Python's own SIGINT handler, as in a terminal: a child started from a background job of a
    # non-interactive shell inherits SIGINT ignored, and the signal would then never arrive
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from mrsbench.harness import outputs
    from mrsbench.cli import main
    real = outputs._figures
    def figures(run_dir, *a, **k):
        out = real(run_dir, *a, **k)          # in the write window: figures written, results.json not yet
        os.kill(os.getpid(), getattr(signal, sys.argv[2]))
        return out
    outputs._figures = figures
    sys.exit(main(["run", "--model", "pca", "--preset", "tiny", "--out", sys.argv[1], "--no-progress"]))
""")


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_interrupted_run_leaves_nothing(tmp_path, sig):
    out = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    p = subprocess.run([sys.executable, "-c", INTERRUPT, str(out), sig], capture_output=True, text=True,
                       cwd=tmp_path, timeout=600, env=env)
    assert p.returncode == (143 if sig == "SIGTERM" else 130), p.stderr[-2000:]   # 128 + the signal's number
    assert "Traceback" not in p.stderr
    left = [x.name for x in out.iterdir() if x.is_dir() and x.name != "mlartifacts"]
    assert left == []  # no run folder, not even a hidden temporary one
    runs = _mlflow_runs(out / "mlflow.db")
    assert [r.info.status for r in runs] == ["FAILED"]
    assert not (tmp_path / "mlruns").exists()


def test_mlflow_artifacts_under_out_and_modes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    old = os.umask(0o022)
    try:
        results, run_dir = harness.run("pca", preset="tiny", out=tmp_path / "runs", progress=False)
    finally:
        os.umask(old)
    assert not (tmp_path / "mlruns").exists()
    arts = list((tmp_path / "runs" / "mlartifacts").rglob("results.json"))
    assert len(arts) == 1
    assert stat.S_IMODE((run_dir / "results.json").stat().st_mode) == 0o644
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o755
    runs = _mlflow_runs(tmp_path / "runs" / "mlflow.db")
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.status for r in parent] == ["FINISHED"] and "embedding.mmd2" in parent[0].data.metrics
    assert all(r.info.status == "FINISHED" for r in runs) and len(runs) == 1 + len(results["preset"]["n_values"])
    assert "MLFLOW_TRACKING_URI" not in os.environ  # a later run with another --out logs into its own store


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_umask(tmp_path, mask, mode):
    from mrsbench.core.files import atomic_path, atomic_savez
    from mrsbench.boards.leaderboard import write_leaderboard
    from test_leaderboard import _doc
    (tmp_path / "r.json").write_text(json.dumps(_doc("m", 0, {"embedding.mmd2": 0.1})))
    old = os.umask(mask)
    try:
        with atomic_path(tmp_path / "a.txt") as t:
            Path(t).write_text("x")
        atomic_savez(tmp_path / "c.npz", x=np.zeros(2))
        write_leaderboard(tmp_path)
    finally:
        os.umask(old)
    for f in ("a.txt", "c.npz", "README.md", "leaderboard.json", "index.html"):
        assert stat.S_IMODE((tmp_path / f).stat().st_mode) == mode, f


# --- one-line errors --------------------------------------------------------------------------

def _one_line_error(capsys, argv, *needles):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_truncated_nifti(tmp_path, capsys):
    from mrsbench.data.nifti_mrs import write_nifti_mrs
    from conftest import make_scan
    p = write_nifti_mrs(make_scan(8), tmp_path / "s.nii.gz")
    b = p.read_bytes()
    bad = tmp_path / "trunc.nii.gz"
    bad.write_bytes(b[: len(b) // 2])
    for cmd in ("qc", "quantify"):
        _one_line_error(capsys, [cmd, str(bad)], "trunc.nii.gz", "truncated")
    folder = tmp_path / "cohort"
    folder.mkdir()
    (folder / "trunc.nii.gz").write_bytes(b[: len(b) // 2])
    _one_line_error(capsys, ["run", "--model", "pca", "--preset", "tiny", "--dataset", str(folder), "--out",
                             str(tmp_path / "o"), "--no-progress"], "trunc.nii.gz")


@pytest.mark.parametrize("where,needle", [("fit", "fit()"), ("sample", "sample()"), ("scan", "sample()")])
def test_generator_errors_name_generator_and_method(tmp_path, capsys, where, needle):
    src = PLUGIN.replace('name = "jitter"', 'name = "broken"')
    if where == "fit":
        src = src.replace("        self.train = train\n", "        raise ValueError('bad weights')\n")
    elif where == "sample":
        src = src.replace("        rng = np.random.default_rng(seed)\n", "        raise ValueError('bad weights')\n")
    else:  # output that Scan itself rejects
        src = src.replace("return Scan.from_on_off(pick(1) * phase, pick(0) * phase, src.axis)",
                          "return Scan.from_on_off(pick(1)[:, :10] * phase, pick(0) * phase, src.axis)")
    f = tmp_path / "broken.py"
    f.write_text(src + "\nMRSBENCH_GENERATORS = {'broken': Jitter}\n")
    _one_line_error(capsys, ["run", "--model", "broken", "--plugins", str(f), "--preset", "tiny", "--out",
                             str(tmp_path / "o"), "--no-progress"], "'broken'", needle)
    assert not (tmp_path / "o").exists() or not [p for p in (tmp_path / "o").iterdir() if p.is_dir()
                                                  and p.name != "mlartifacts"]


def test_bad_results_files(tmp_path, capsys):
    from test_leaderboard import _doc
    good = _doc("m", 0, {"embedding.mmd2": 0.1})
    (tmp_path / "good.json").write_text(json.dumps(good))
    nul = dict(good, schema=None)
    (tmp_path / "nul.json").write_text(json.dumps(nul))
    _one_line_error(capsys, ["leaderboard", "--results", str(tmp_path)], "nul.json", "schema")
    (tmp_path / "nul.json").unlink()
    missing = {k: v for k, v in good.items() if k not in ("seed", "metrics")}
    (tmp_path / "missing.json").write_text(json.dumps(missing))
    _one_line_error(capsys, ["leaderboard", "--results", str(tmp_path)], "missing.json", "seed")
    (tmp_path / "missing.json").unlink()
    (tmp_path / "broken.json").write_text('{"schema": "mrsbench.results/1", ')
    _one_line_error(capsys, ["compare", str(tmp_path / "broken.json"), str(tmp_path / "good.json")], "broken.json")
    _one_line_error(capsys, ["leaderboard", "--results", str(tmp_path)], "broken.json")
    _one_line_error(capsys, ["validate", str(tmp_path / "broken.json")], "broken.json")


def test_compare_refuses_incompatible_and_compares_folders_per_model(tmp_path, capsys):
    from test_leaderboard import _doc
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for folder, mmd in ((a, 0.1), (b, 0.2)):
        for model, off in (("pca", 0.0), ("vae", 1.0)):
            (folder / f"{model}.json").write_text(json.dumps(_doc(model, 0, {"embedding.mmd2": mmd + off})))
    out = main(["compare", str(a), str(b)])
    text = capsys.readouterr().out
    assert out == 0 and text.count("A = ") == 2 and "A = pca seed 0" in text and "A = vae seed 0" in text
    row = [l for l in text.split("A = vae")[1].splitlines() if l.startswith("| embedding.mmd2")][0]
    assert "1.1" in row and "1.2" in row  # the vae rows, never a mean over models
    other = _doc("pca", 0, {"embedding.mmd2": 0.1}, dataset_hash="h2")
    (tmp_path / "o.json").write_text(json.dumps(other))
    for p, needle in ((tmp_path / "o.json", "dataset_hash"),):
        _one_line_error(capsys, ["compare", str(a / "pca.json"), str(p)], needle, "not comparable")
    old = _doc("pca", 0, {"embedding.mmd2": 0.1}, harness="0.9")
    (tmp_path / "old.json").write_text(json.dumps(old))
    _one_line_error(capsys, ["compare", str(a / "pca.json"), str(tmp_path / "old.json")], "harness_version")
    paper = _doc("pca", 0, {"embedding.mmd2": 0.1}, preset="paper")
    (tmp_path / "paper.json").write_text(json.dumps(paper))
    _one_line_error(capsys, ["compare", str(a / "pca.json"), str(tmp_path / "paper.json")], "preset_name")
    assert main(["compare", str(a / "pca.json"), str(tmp_path / "paper.json"), "--allow-incompatible"]) == 0
    assert "WARNING: not comparable" in capsys.readouterr().out
