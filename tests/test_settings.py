"""Generator settings (issue 40): declared from __init__, checked, canonical names, and the round trip through a run's
results, validate, reproduce and a sweep's cells."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mrsbench.core.errors import InputError
from mrsbench.generators import registry
from mrsbench.generators.contract import LatentSampling
from mrsbench.generators.settings import declared, label, name_problems, normalise, parse_grid, split_label


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mrsbench", *args], capture_output=True, text=True, cwd=cwd)


def test_declared_settings_of_the_baselines():
    vae = {s.name: s for s in declared(registry.get("vae"))}
    assert vae["strategy"].choices == ("random", "interpolation", "hybrid") and vae["strategy"].default == "hybrid"
    assert vae["strategy"].path == ("sampling", "strategy") and vae["scale"].kind == "float"
    assert vae["hidden"].kind == "tuple[int]" and vae["ppm_range"].optional and "progress" not in vae
    assert [s.name for s in declared(registry.get("physics"))] == []
    assert {"n_components", "strategy", "scale"} <= {s.name for s in declared(registry.get("pca"))}


def test_normalise_types_checks_and_drops_defaults():
    vae = registry.get("vae")
    got = normalise(vae, "vae", {"strategy": "rs", "scale": "0.25", "hidden": "256+128", "ppm_range": "none",
                                 "beta": "0.01", "epochs": "4"}, {"epochs": 4})
    # rs is the paper's name of random sampling; beta and epochs equal the harness's values and are dropped
    assert got == {"hidden": (256, 128), "ppm_range": None, "scale": 0.25, "strategy": "random"}
    assert normalise(vae, "vae", {"sampling.strategy": "interpolation"}) == {"strategy": "interpolation"}
    assert normalise(vae, "vae", {"strategy": "hybrid", "scale": 0.5}) == {}
    for bad, msg in [({"bogus": 1}, r"^vae: unknown setting 'bogus'; it takes: latent_dim"),
                     ({"epochs": "2.5"}, r"^vae: setting epochs='2.5': expected an integer$"),
                     ({"scale": "abc"}, r"expected a number"), ({"scale": "nan"}, r"finite"),
                     ({"strategy": "sideways"}, r"expected one of random, interpolation, hybrid"),
                     ({"latent_dim": "none"}, r"cannot be none")]:
        with pytest.raises(InputError, match=msg):
            normalise(vae, "vae", bad)


@pytest.mark.parametrize("settings", [{}, {"strategy": "random"}, {"scale": 0.1, "strategy": "interpolation"},
                                      {"hidden": (512, 64), "ppm_range": None}, {"ppm_range": (0.5, 4.2)},
                                      {"latent_dim": 4, "lr": 3e-05}])
def test_names_round_trip(settings):
    name = label("vae", settings)
    base, text = split_label(name)
    assert base == "vae" and normalise(registry.get("vae"), "vae", text) == settings
    assert name_problems(name, json.loads(json.dumps(settings))) == []
    assert not set(name) & set(' /\\:*?"<>|'), "not a portable file name"
    if settings:
        assert name_problems(name, {}) and name_problems("vae", settings)


def test_strategies_draw_as_documented():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((30, 2))
    draws = {s: LatentSampling(s, 0.5).draw(z, 400, np.random.default_rng(7)) for s in ("random", "interpolation",
                                                                                           "hybrid")}
    assert not np.allclose(draws["random"], draws["interpolation"]) and not np.allclose(draws["hybrid"],
                                                                                        draws["interpolation"])
    from scipy.spatial import Delaunay
    hull = Delaunay(z)
    assert (hull.find_simplex(draws["interpolation"]) >= 0).all(), "interpolation left the encoded set's hull"
    assert (hull.find_simplex(draws["random"]) < 0).any() and (hull.find_simplex(draws["hybrid"]) < 0).any()
    # interpolation keeps to the span of the encoded codes: smaller spread than the perturbing strategies
    assert draws["interpolation"].std() < draws["hybrid"].std() and draws["interpolation"].std() < z.std()


def test_strategies_give_different_pca_samples(small_split):
    train, val, test = small_split
    cls = registry.get("pca")
    from mrsbench.generators.settings import build
    out = {}
    for s in ("random", "interpolation", "hybrid"):
        g = build(cls, "pca", {}, normalise(cls, "pca", {"strategy": s, "n_components": 8}))
        g.fit(train.subset(train.subjects[:3]), seed=0)
        out[s] = g.sample(16, condition=test.scans[0], seed=3).fids
    assert not np.allclose(out["random"], out["interpolation"]) and not np.allclose(out["hybrid"], out["random"])


def test_sweep_grid_expands_to_canonical_names():
    from mrsbench.sweep.spec import SweepSpec
    spec = SweepSpec(models=["vae", "pca[n_components=8]"], presets=["tiny"], seeds=[0],
                     settings=parse_grid(["strategy=rs,interpolation,hybrid"]))
    assert [c.model for c in spec.cells()] == [
        "vae[strategy=random]", "vae[strategy=interpolation]", "vae",
        "pca[n_components=8,strategy=random]", "pca[n_components=8,strategy=interpolation]", "pca[n_components=8]"]
    with pytest.raises(InputError, match="^physics: unknown setting 'strategy'"):
        SweepSpec(models=["physics"], settings={"strategy": ["random"]}).cells()


def test_settings_round_trip_through_run_validate_reproduce_and_sweep(tmp_path):
    """One tiny run from the command line with --set; its results file carries the settings, validates, reproduces,
    is the cell a sweep with the same grid expects (skipped, not re-run), and an edited name is caught."""
    r = _cli("run", "--model", "pca", "--preset", "tiny", "--set", "strategy=rs", "--set", "scale=0.25",
             "--set", "n_components=32", "--out", str(tmp_path / "runs"), "--no-progress", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["model"] == "pca[scale=0.25,strategy=random]"       # n_components=32 is the default: not identity
    assert doc["generator_settings"] == {"scale": 0.25, "strategy": "random"}
    f = tmp_path / "runs" / doc["run_id"] / "results.json"
    r = _cli("validate", str(f), "--reproduce")
    assert r.returncode == 0 and "reproduced" in r.stdout, r.stdout + r.stderr
    # the sweep's cell of this configuration finds the file and skips it
    dest = tmp_path / "root" / "simgaba-small" / "tiny" / "pca[scale=0.25,strategy=random]-seed0.json"
    dest.parent.mkdir(parents=True)
    dest.write_text(f.read_text())
    r = _cli("sweep", "--models", "pca", "--set", "strategy=random", "--set", "scale=0.25", "--presets", "tiny",
             "--seeds", "0", "--root", str(tmp_path / "root"), "--backend", "local", "--no-track", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert [(c["model"], c["status"]) for c in rep["cells"]] == [("pca[scale=0.25,strategy=random]", "skipped")]
    # a results file whose name and settings disagree does not validate (checksum recomputed, as a forger would)
    from mrsbench.harness.evaluator import results_checksum
    bad = json.loads(f.read_text())
    bad["generator_settings"]["scale"] = 0.5
    bad["checksum"] = results_checksum(bad)
    g = tmp_path / "bad.json"
    g.write_text(json.dumps(bad))
    r = _cli("validate", str(g))
    assert r.returncode == 2 and "does not match its generator settings" in r.stdout + r.stderr


def test_cli_settings_errors_are_one_line(tmp_path):
    for args, msg in [(["run", "--model", "pca", "--set", "bogus=1"], "pca: unknown setting 'bogus'"),
                      (["run", "--model", "pca", "--set", "scale"], "expected KEY=VALUE"),
                      (["run", "--model", "pca[scale=0.1"], "malformed model name"),
                      (["sweep", "--models", "physics", "--set", "strategy=rs"], "physics: unknown setting")]:
        r = _cli(*args, cwd=tmp_path)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = _cli("list", "--model", "vae")
    assert r.returncode == 0 and "strategy" in r.stdout and "random, interpolation, hybrid" in r.stdout
    assert "tiny preset" in r.stdout


def test_sweep_file_settings_and_submit_settings_are_checked(tmp_path):
    """A sweep file's settings table is a grid like --set; submit checks --set against the submitted class."""
    f = tmp_path / "sweep.toml"
    f.write_text('[sweep]\nmodels = ["physics"]\npresets = ["tiny"]\n[sweep.settings]\nstrategy = ["random"]\n')
    r = _cli("sweep", "--file", str(f), "--backend", "local", "--no-track", cwd=tmp_path)
    assert r.returncode == 2 and "physics: unknown setting 'strategy'" in r.stderr
    gen = tmp_path / "my_gen.py"
    gen.write_text("from mrsbench.generators import Generator\n\n"
                   "class Mine(Generator):\n    name = 'mine'\n\n    def __init__(self, k: int = 3):\n        self.k = k\n\n"
                   "    def fit(self, train, seed=0, val=None):\n        return self\n\n"
                   "    def sample(self, n, *, condition=None, seed=0):\n        raise NotImplementedError\n")
    r = _cli("submit", str(gen), "--preset", "tiny", "--set", "k=two", "--root", str(tmp_path / "lb"), cwd=tmp_path)
    assert r.returncode == 2 and "mine: setting k='two': expected an integer" in r.stderr, r.stderr
    assert not (tmp_path / "lb").exists()
