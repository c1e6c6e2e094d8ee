"""Bad input across the commands (issue 35): each case exits 2 with one line naming the argument or file, fails
before any work, and writes nothing; real-data reading never changes data silently; leftovers of killed runs are
found; SIGTERM exits 143."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mrsbench.core.axis import SpectralAxis
from mrsbench.cli import main
from conftest import make_scan

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "jitter_generator.py"


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _fails(capsys, argv, *needles, seconds=20.0):
    """Exit status 2, one line on stderr that names what is wrong (each of ``needles``), fast (no work done)."""
    capsys.readouterr()
    t0 = time.perf_counter()
    rc = main(argv)
    dt = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    assert rc == 2, (argv, rc, err)
    assert len(err.splitlines()) == 1 and "internal error" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    assert dt < seconds, f"{argv}: failed after {dt:.1f} s of work"
    return err


@pytest.fixture
def a_file(tmp_path):
    f = tmp_path / "a_file.txt"
    f.write_text("not a folder")
    return f


# --- arguments checked before any work ------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["at", "under"])
def test_output_paths_that_are_files(capsys, tmp_path, a_file, where):
    out = a_file if where == "at" else a_file / "sub"
    before = _tree(tmp_path)
    _fails(capsys, ["run", "--model", "pca", "--preset", "tiny", "--out", str(out), "--no-progress"], "--out")
    _fails(capsys, ["sweep", "--models", "pca", "--presets", "tiny", "--root", str(out), "--no-track",
                    "--backend", "local", "--no-progress"], "--root")
    _fails(capsys, ["simulate", "--dataset", "simgaba-small", "--out", str(out)], "--out")
    _fails(capsys, ["submit", str(EXAMPLE), "--preset", "tiny", "--root", str(out), "--no-progress"], "--root")
    _fails(capsys, ["basis", "--out", str(out)], "--out")
    assert _tree(tmp_path) == before


def test_quantify_out_checked_before_reading(capsys, tmp_path, a_file):
    f = tmp_path / "scan.nii.gz"
    from mrsbench.data.nifti_mrs import write_nifti_mrs
    write_nifti_mrs(make_scan(n_per_cond=4), f)
    _fails(capsys, ["quantify", str(f), "--out", str(tmp_path)], "--out", "is a folder")
    _fails(capsys, ["quantify", str(f), "--out", str(a_file / "t.csv")], "--out")


@pytest.mark.parametrize("argv,needle", [
    (["run", "--model", "pca", "--preset", "tiny", "--seed", "-1"], "seed -1"),
    (["run", "--model", "pca", "--preset", "tiny", "--seed", str(2 ** 40)], "out of range"),
    (["run", "--model", "pca", "--preset", "nosuch"], "unknown preset"),
    (["run", "--model", "nosuch", "--preset", "tiny"], "unknown generator 'nosuch'"),
    (["run", "--model", "pca", "--preset", "tiny", "--dataset", "no/such/folder"], "no/such/folder"),
    (["sweep", "--models", "pca", "--seeds", "0,-3", "--presets", "tiny", "--no-track", "--backend", "local"], "-3"),
    (["submit", str(EXAMPLE), "--preset", "tiny", "--seeds", "-1"], "seed -1"),
    (["basis", "--out", "OUT", "--field", "0"], "field 0"),
    (["basis", "--out", "OUT", "--field", "3"], "MHz"),
    (["basis", "--out", "OUT", "--sw", "-5"], "--sw"),
    (["simulate", "--dataset", "simgaba-small", "--out", "OUT", "--seed", "-2"], "seed -2"),
    (["cache", "--clear", "everything"], "unknown cache part"),
])
def test_bad_arguments_fail_at_once(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.setenv("MRSBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in argv]
    if argv[0] == "run":
        argv += ["--out", str(tmp_path / "runs"), "--no-progress"]
    _fails(capsys, argv, needle)
    assert _tree(tmp_path) in ([], ["cache"]), _tree(tmp_path)   # no basis cached (basis --field 0 simulated none)
    assert not (tmp_path / "cache" / "basis").exists()


def test_plugin_that_registers_nothing_names_the_file(capsys, tmp_path):
    p = tmp_path / "unregistered.py"
    p.write_text(EXAMPLE.read_text().split("# registration")[0])   # the class, without MRSBENCH_GENERATORS
    err = _fails(capsys, ["run", "--model", "jitter", "--plugins", str(p), "--preset", "tiny", "--out",
                          str(tmp_path / "runs"), "--no-progress"], str(p), "registers no generator", "Jitter")
    assert "MRSBENCH_GENERATORS" in err
    broken = tmp_path / "broken.py"
    broken.write_text("import definitely_not_a_module_xyz\n")
    _fails(capsys, ["sweep", "--models", "pca", "--plugins", str(broken), "--presets", "tiny", "--root",
                    str(tmp_path / "sw"), "--no-track", "--backend", "local"], str(broken), "definitely_not_a_module_xyz")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "sw").exists()


def test_example_plugin_registers_itself(capsys):
    assert main(["list", "--plugins", str(EXAMPLE)]) == 0
    assert "jitter" in capsys.readouterr().out


# --- real data: never changed silently -----------------------------------------------------------------------

def _write(scan, path):
    from mrsbench.data.nifti_mrs import write_nifti_mrs
    return write_nifti_mrs(scan, path)


def test_qc_on_7t_names_the_field(capsys, tmp_path):
    f = _write(make_scan(n_per_cond=4, axis=SpectralAxis(f0_mhz=297.2, centre_ppm=4.65)), tmp_path / "7t.nii.gz")
    _fails(capsys, ["qc", str(f)], str(f), "field strength", "3 T")


def test_one_file_dataset_says_too_few_subjects(capsys, tmp_path):
    f = _write(make_scan(n_per_cond=8), tmp_path / "one.nii.gz")
    _fails(capsys, ["run", "--model", "pca", "--preset", "tiny", "--dataset", str(f), "--out", str(tmp_path / "r"),
                    "--no-progress"], "1 subject(s)", "at least 3")
    assert not (tmp_path / "r").exists()


def test_all_zero_imaginary_part_is_refused(capsys, tmp_path):
    s = make_scan(n_per_cond=4, axis=SpectralAxis(centre_ppm=4.65))   # written as is (no re-referencing)
    from mrsbench.core.scans import Scan
    real = Scan(s.fids.real + 0j, s.edit, s.axis, subject="r")
    f = _write(real, tmp_path / "real.nii.gz")
    _fails(capsys, ["datasets", str(f), "--quiet"], str(f), "imaginary part is zero")


@pytest.fixture(scope="module")
def basis():
    from mrsbench.physics.basis import load_basis
    return load_basis()


@pytest.mark.parametrize("f0,n,sw", [(123.25, 2048, 2000.0), (123.25, 4096, 4000.0), (123.25, 2048, 5000.0),
                                     (127.75, 4096, 2000.0), (127.75, 2048, 4000.0), (127.75, 4096, 5000.0)])
@pytest.mark.parametrize("first", ["ON", "OFF"])
def test_edit_order_from_the_signal_at_any_field_width_and_length(basis, tmp_path, f0, n, sw, first):
    """Interleaved on DIM_DYN without DIM_EDIT: the ON/OFF order is told from NAA (relative to Cr) at 2.89 and 3 T,
    2048 and 4096 points, 2, 4 and 5 kHz, with a residual water line 30x the NAA peak and a 10 Hz offset."""
    from test_readers import _nifti, _scan
    from mrsbench.data.readers import read_path
    ax = SpectralAxis(sw, f0, n, 4.65)
    s = _scan(basis, ax, "s", seed=3)
    t = ax.time
    naa = np.abs(ax.to_spectrum(s.off.mean(0))[ax.window(1.9, 2.1)]).max()
    water = 30 * naa / n * 8 * np.exp(2j * np.pi * ax.ppm_to_hz(4.68) * t - np.pi * 6 * t)
    rot = np.exp(2j * np.pi * 10.0 * t)
    on, off = s.on * rot + water, s.off * rot + water
    inter = np.empty((2 * len(on), n), complex)
    a, b = (on, off) if first == "ON" else (off, on)
    inter[0::2], inter[1::2] = a, b
    f = tmp_path / "x.nii.gz"
    _nifti(inter.T[None, None, None], ["DIM_DYN"], ax, f)
    c = read_path(f)
    got = c.scans[0]
    assert np.allclose(got.on, on if got.axis == ax else got.on)   # ON is what was written as ON
    assert got.meta["edit_order"].startswith(f"{first},") and "inferred" in got.meta["edit_order"]


def test_only_off_grid_scans_are_resampled(basis, tmp_path, capsys):
    """Five files on one native grid and one off it: the five are read as they are (bit for bit), only the sixth is
    resampled, and `mrsbench datasets` says which."""
    from test_readers import _scan
    from mrsbench.core.grid import harmonise_scans
    from mrsbench.data.nifti_mrs import read_nifti_mrs, write_nifti_mrs
    native, other = SpectralAxis(2000.0, 123.25, 2048, 4.65), SpectralAxis(4000.0, 127.7, 4096, 4.65)
    for i in range(6):
        write_nifti_mrs(_scan(basis, other if i == 5 else native, f"s{i}", seed=i), tmp_path / "d" / f"s{i}.nii.gz")
    scans = [read_nifti_mrs(tmp_path / "d" / f"s{i}.nii.gz", subject=f"s{i}") for i in range(6)]
    out, rec = harmonise_scans(scans)
    assert rec["resampled"] == ["s5"] and out[5].axis == native
    assert all(a is b for a, b in zip(out[:5], scans[:5]))   # untouched
    assert main(["datasets", str(tmp_path / "d"), "--json", "--quiet"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {r["subject"]: r["resampled"] for r in info["per_subject"]} == {f"s{i}": "yes" if i == 5 else "no"
                                                                           for i in range(6)}


def test_repetition_time_is_read_and_written(tmp_path):
    from mrsbench.data.nifti_mrs import read_nifti_mrs, write_nifti_mrs
    f = write_nifti_mrs(make_scan(n_per_cond=4), tmp_path / "tr.nii.gz", repetition_time_s=2.0)
    assert read_nifti_mrs(f).meta["repetition_time_s"] == 2.0
    assert oct(os.stat(f).st_mode & 0o777) == oct(0o666 & ~_umask())   # not 0600


def _umask():
    m = os.umask(0o022)
    os.umask(m)
    return m


# --- boards and validate -------------------------------------------------------------------------------------

COMMITTED = ROOT / "leaderboards" / "simgaba-small" / "quick"


def test_boards_never_rank_what_validate_rejects(tmp_path, capsys):
    import shutil
    board = tmp_path / "simgaba-small" / "quick"
    board.mkdir(parents=True)
    for f in COMMITTED.glob("*-seed*.json"):   # the generators without settings variants and the references
        if "[" not in f.name and not f.name.startswith("augmentrum"):   # (fewer rows: the board builds 3x faster)
            shutil.copy(f, board / f.name)
    from mrsbench.harness.outputs import results_checksum
    # an edited checksum-mismatching file, and an edited metric with its checksum recomputed
    a = json.loads((board / "pca-seed0.json").read_text())
    a["metrics"]["embedding.mmd2"] = 0.0
    (board / "pca-seed0.json").write_text(json.dumps(a))
    b = json.loads((board / "physics-seed1.json").read_text())
    b["metrics"]["application.n20.effective_n"] = 150.0
    b["checksum"] = results_checksum(b)
    (board / "physics-seed1.json").write_text(json.dumps(b))
    # MLflow's artifact copies under the root are never read as results
    art = tmp_path / "mlartifacts" / "1" / "x" / "artifacts"
    art.mkdir(parents=True)
    shutil.copy(COMMITTED / "vae-seed0.json", art / "vae-seed0.json")
    assert main(["leaderboard", "--results", str(tmp_path), "--format", "json"]) == 0
    lb = json.loads(capsys.readouterr().out)
    bad = {(d["model"], d["seed"]): d["reason"] for d in lb["not_ranked"]}
    assert set(bad) == {("pca", 0), ("physics", 1)}
    assert "checksum" in bad[("pca", 0)] and "per-subject statistics" in bad[("physics", 1)]
    assert {r["model"]: r["seeds"] for r in lb["rows"]}["physics"] == [0, 2]
    assert not any(d.get("source", "").find("mlartifacts") >= 0 for d in lb["duplicates"])
    # validate takes several files: all reported, exit 2 when any is invalid
    files = [str(board / "pca-seed1.json"), str(board / "physics-seed1.json")]
    assert main(["validate", *files, "--no-dataset-check"]) == 2
    cap = capsys.readouterr()
    assert "pca-seed1.json: valid" in cap.out and "physics-seed1.json: invalid" in cap.err
    assert "disagrees with its per-subject statistics" in cap.err
    # a symlinked board folder is followed
    link = tmp_path / "linked"
    link.mkdir()
    (link / "quick").symlink_to(board, target_is_directory=True)
    assert main(["leaderboard", "--results", str(link), "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 9   # 7 generators and references + smoothed, subset-lcm


def test_board_folder_as_root(tmp_path):
    from mrsbench.core.errors import InputError
    from mrsbench.boards.submit import board_folder
    assert board_folder(tmp_path, "simgaba-small", "quick") == tmp_path / "simgaba-small" / "quick"
    assert board_folder(COMMITTED, "simgaba-small", "quick") == COMMITTED
    with pytest.raises(InputError, match="is the board of simgaba-small/quick"):
        board_folder(COMMITTED, "simgaba", "paper")


def test_compare_round_off_is_no_win_and_sides_are_named(tmp_path, capsys):
    import shutil
    a = tmp_path / "a" / "pca-seed0.json"
    b = tmp_path / "b" / "pca-seed0.json"
    for p in (a, b):
        p.parent.mkdir()
        shutil.copy(COMMITTED / "pca-seed0.json", p)
    d = json.loads(b.read_text())
    d["metrics"] = {k: (v * (1 + 1e-7) if isinstance(v, float) else v) for k, v in d["metrics"].items()}
    b.write_text(json.dumps(d))
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "better on 0 metrics: A; on 0: B" in out
    assert f"({a})" in out and f"({b})" in out


def test_quantify_json(tmp_path, capsys, basis):
    from test_readers import _scan
    from mrsbench.data.nifti_mrs import write_nifti_mrs
    f = write_nifti_mrs(_scan(basis, SpectralAxis(centre_ppm=4.65), "q", seed=1), tmp_path / "q.nii.gz")
    assert main(["quantify", str(f), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] and "metabolite" in doc["rows"][0] or doc["rows"]


def test_cache_command_shows_and_clears(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MRSBENCH_CACHE", str(tmp_path))
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "k.pkl").write_bytes(b"x" * 1000)
    assert main(["cache", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert {p["part"]: p["bytes"] for p in rep["parts"]}["shared"] == 1000 and rep["bytes"] == 1000
    assert main(["cache", "--clear", "shared"]) == 0
    assert "removed shared: 1 files" in capsys.readouterr().out and not (tmp_path / "shared").exists()


def test_edit_order_shown_readably():
    out = subprocess.run([sys.executable, "-m", "mrsbench", "run", "--help"], capture_output=True, text=True).stdout
    assert "--edit-order ON,OFF|OFF,ON" in out and "{ON,OFF,OFF,ON}" not in out


# --- leftovers of killed runs, signals -----------------------------------------------------------------------

def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_leftovers_of_a_killed_process_are_reaped(tmp_path):
    from mrsbench.core.files import owner_tag, reap_stale
    host = owner_tag().split("~")[0]
    dead = tmp_path / f".tmp-{host}~{_dead_pid()}-20261207-run-abc"
    dead.mkdir()
    (dead / "results.json").write_text("{}")
    alive = tmp_path / f".tmp-{owner_tag()}-x.json"
    alive.write_text("{}")
    other_host = tmp_path / ".tmp-otherhost~1-y"
    other_host.mkdir()
    assert reap_stale(tmp_path) == [dead]
    assert not dead.exists() and alive.exists() and other_host.exists()


def test_orphaned_mlflow_run_is_marked_killed(tmp_path):
    from mlflow import MlflowClient
    from mrsbench.core.files import owner_tag
    from mrsbench.harness.tracking import close_orphaned_runs
    c = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = c.create_experiment("e", artifact_location=(tmp_path / "art").as_uri())
    host = owner_tag().split("~")[0]
    dead = c.create_run(exp, tags={"mrsbench.owner": f"{host}~{_dead_pid()}"})
    mine = c.create_run(exp, tags={"mrsbench.owner": owner_tag()})
    assert close_orphaned_runs(c, exp) == [dead.info.run_id]
    assert c.get_run(dead.info.run_id).info.status == "KILLED" and c.get_run(mine.info.run_id).info.status == "RUNNING"


def test_sigterm_exits_143_and_leaves_nothing(tmp_path):
    out = tmp_path / "runs"
    p = subprocess.Popen([sys.executable, "-m", "mrsbench", "run", "--model", "pca", "--preset", "tiny", "--out",
                          str(out), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert "terminated" in err
    assert not [x for x in _tree(out) if x.startswith(".tmp") or x.endswith("results.json")]


# --- submit on the k-fold (quick) preset ---------------------------------------------------------------------

@pytest.mark.slow
def test_submit_example_plugin_on_quick_and_reproduce(tmp_path, capsys):
    """The example plugin submitted with the default (quick, 4-fold) preset, one seed, then reproduced."""
    root = tmp_path / "lb"
    assert main(["submit", str(EXAMPLE), "--preset", "quick", "--seeds", "0", "--root", str(root), "--no-progress"]) == 0
    res = root / "simgaba-small" / "quick" / "jitter-seed0.json"
    doc = json.loads(res.read_text())
    assert doc["model_card"]["folds"] == 4 and doc["submission"]["target"] == str(EXAMPLE)
    assert (root / "simgaba-small" / "quick" / "README.md").exists()
    capsys.readouterr()
    assert main(["validate", str(res), "--reproduce", "--no-progress"]) == 0
    assert "reproduced" in capsys.readouterr().out
