"""The distribution as a user installs it: a wheel built from the repository, installed into a fresh virtual
environment, runs ``mrsbench run --model pca --preset tiny`` from an empty folder with no file of the checkout on
the path; the reference generators install as ``mrsbench_baselines`` (no top-level ``baselines`` that could
collide with other distributions), registered through the entry points only.

The fresh environment gets its third-party dependencies (numpy, torch, ...) from this environment's
site-packages through a ``.pth`` line (tests run without network, and reinstalling torch would take minutes);
its own site-packages, which comes first on ``sys.path``, holds only the wheel. A ``.pth`` line adds a folder to
the path without running the ``.pth`` files inside it, so this environment's editable install of mrsbench (a
path finder set up by such a file) stays inactive there."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
              "-w", str(out)], cwd=out)
    assert r.returncode == 0, r.stderr[-2000:]
    wheels = list(out.glob("mrsbench-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_holds_the_packages_under_their_own_names(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"mrsbench", "mrsbench_baselines"}, tops
    assert "mrsbench/resources/spin_systems.json" in names
    # every subpackage of the source tree is in the wheel (a package missing from pyproject's list fails here)
    src = {str(p.parent.relative_to(REPO)).replace(os.sep, "/") for p in (REPO / "mrsbench").rglob("__init__.py")}
    assert {s + "/__init__.py" for s in src} <= set(names), sorted({s + "/__init__.py" for s in src} - set(names))
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "pca = mrsbench_baselines.pca:PCAGenerator" in entry and "baselines." not in entry.replace(
        "mrsbench_baselines.", "")


def test_wheel_installs_and_runs_from_an_empty_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    r = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert r.returncode == 0, r.stderr
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "_mrsbench_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    assert r.returncode == 0, r.stderr[-2000:]

    empty = tmp_path / "work"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    where = _run([str(py), "-c", "import importlib.util as u, mrsbench, mrsbench_baselines; "
                  "print(mrsbench.__file__); print(mrsbench_baselines.__file__); print(u.find_spec('baselines'))"],
                 cwd=empty, env=env)
    assert where.returncode == 0, where.stderr[-2000:]
    mod, base, plain = where.stdout.split()
    assert Path(mod).is_relative_to(site) and Path(base).is_relative_to(site), where.stdout
    assert plain == "None"                                # no top-level "baselines" installed

    r = _run([str(venv / "bin" / "mrsbench"), "run", "--model", "pca", "--preset", "tiny", "--out", "out",
              "--no-progress"], cwd=empty, env=env, timeout=900)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    res = json.loads(next((empty / "out").rglob("results.json")).read_text())
    assert res["model"] == "pca" and res["preset_name"] == "tiny"
    assert res["metrics"], "no metrics"
