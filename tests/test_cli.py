import subprocess
import sys
import time


import pytest

from mrsbench.cli import main

SUBCOMMANDS = ["run", "sweep", "list", "simulate", "basis", "qc", "quantify", "datasets", "leaderboard", "compare", "submit", "validate", "cache", "report"]


def test_help_lists_subcommands_and_is_fast():
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "mrsbench", "--help"], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - t0
    for cmd in SUBCOMMANDS:
        assert cmd in out.stdout
    # a generous guard against importing torch/umap/mlflow at start-up (the target is < 1.5 s)
    assert elapsed < 5.0


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from mrsbench.cli.parser import build_parser; build_parser().format_help(); "
            "print(','.join(m for m in ('torch','umap','mlflow','matplotlib','sklearn','pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2


def test_bad_file_is_one_line_error(tmp_path, capsys):
    p = tmp_path / "junk.nii.gz"
    p.write_text("nope")
    # qc itself lands with the processing issue; the error path is shared by all commands
    rc = main(["qc", str(p)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_basis_command_writes_fsl_json(tmp_path, monkeypatch):
    import json
    monkeypatch.setenv("MRSBENCH_CACHE", str(tmp_path / "cache"))
    rc = main(["basis", "--out", str(tmp_path / "b"), "--points", "1024"])
    assert rc == 0
    doc = json.loads((tmp_path / "b" / "edit_off" / "NAA.json").read_text())
    assert len(doc["basis"]["basis_re"]) == 1024 and doc["meta"]["condition"] == "off"
    assert (tmp_path / "b" / "edit_diff" / "GABA.json").exists()
    # the default writes the LCModel .BASIS files next to the JSON folders; --format picks one
    assert "NDATAB = 1024" in (tmp_path / "b" / "edit_off.BASIS").read_text()
    assert main(["basis", "--out", str(tmp_path / "l"), "--points", "1024", "--format", "lcmodel"]) == 0
    assert sorted(p.name for p in (tmp_path / "l").iterdir()) == ["edit_diff.BASIS", "edit_off.BASIS", "edit_on.BASIS"]


def test_basis_command_bad_timing_is_clear(tmp_path, capsys):
    rc = main(["basis", "--out", str(tmp_path), "--te", "20"])
    assert rc == 2 and "no room" in capsys.readouterr().err


def test_qc_json_keys(tmp_path, capsys):
    import json
    from dataclasses import replace

    from mrsbench.data.simulate import CohortConfig, simulate_cohort
    from mrsbench.data.datasets import write_dataset
    cohort, extras = simulate_cohort(replace(CohortConfig(), n_sites=1, subjects_per_site=2, n_pairs=16))
    write_dataset(cohort, extras, tmp_path)
    assert main(["qc", str(tmp_path / "sub-001.nii.gz"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    for k in ("snr", "linewidth_ppm", "linewidth_hz", "naa_snr", "naa_fwhm_hz", "cr_fwhm_hz"):
        assert isinstance(rep[k], float)
    assert "shape_score" not in rep
    assert main(["qc", str(tmp_path / "sub-001.nii.gz"), "--reference", str(tmp_path / "sub-002.nii.gz"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert -1 <= rep["shape_score"] <= 1 and rep["mse"] >= 0
    assert rep["linewidth_hz"] == rep["linewidth_ppm"] * 127.75
    assert main(["qc", str(tmp_path / "sub-001.nii.gz")]) == 0
    assert "NAA FWHM" in capsys.readouterr().out


def test_every_subcommand_and_argument_has_help():
    """Every subcommand has a description and examples, every argument a non-empty help text; the top-level
    help lists the subcommands by group."""
    import argparse

    from mrsbench.cli.parser import GROUPS, build_parser
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    listed = {c for _, cmds in GROUPS for c in cmds}
    assert listed == set(sub.choices) == set(SUBCOMMANDS)
    helps = {a.dest: a.help for a in sub._choices_actions}
    for name, sp in sub.choices.items():
        assert helps.get(name), name
        assert sp.description and len(sp.description) > 60, name
        assert sp.epilog and "examples:" in sp.epilog and f"mrsbench {name}" in sp.epilog, name
        for a in sp._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            assert a.help and a.help.strip(), (name, a.dest)
    top = p.format_help()
    for group, cmds in GROUPS:
        assert group in top and all(c in top for c in cmds)


def test_list_shows_generators_presets_and_datasets(capsys):
    from mrsbench.harness.evaluator import PRESETS
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for section in ("generators:", "presets", "datasets:"):
        assert section in out
    for name in list(PRESETS) + ["simgaba-small", "simgaba", "pca", "vae", "physics"]:
        assert f"  {name} " in out, name
    assert "identity sim-" in out and "transients" in out and "time per model-seed: 2 CPU cores" in out
    assert "GPU (H200" in out


def test_every_command_has_quiet_and_table_commands_speak_json(capsys):
    import argparse
    import json

    from mrsbench.cli.parser import JSON_COMMANDS, build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, sp in sub.choices.items():
        assert "--quiet" in sp._option_string_actions, name
        if name in JSON_COMMANDS:
            assert "--json" in sp._option_string_actions, name
    assert main(["list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {g["name"] for g in doc["generators"]} >= {"vae", "pca", "physics", "bootstrap", "oracle"}
    assert {p["name"] for p in doc["presets"]} >= {"quick", "paper", "tiny"}


COMPLETE = """
import sys, argcomplete
from mrsbench.cli.parser import build_parser
argcomplete.autocomplete(build_parser(), output_stream=sys.stdout, exit_method=sys.exit)
"""


def test_shell_completion_from_the_parser():
    """argcomplete answers from the argparse parser (no hand-written completion script); run in a
    subprocess because argcomplete takes over file descriptors 8 and 9."""
    import os

    def complete(line):
        env = dict(os.environ, _ARGCOMPLETE="1", COMP_LINE=line, COMP_POINT=str(len(line)), _ARGCOMPLETE_IFS=" ")
        p = subprocess.run([sys.executable, "-c", COMPLETE], env=env, capture_output=True, text=True, timeout=60)
        return p.stdout.split()
    assert complete("mrsbench sw") == ["sweep"]
    assert "--presets" in complete("mrsbench sweep --pre")
