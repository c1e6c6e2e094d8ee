"""The command line's parser: every subcommand with a description and examples, every argument with a help
text (units and defaults). Each subcommand names its handler (``handler="_cmd_run"``), a function of
:mod:`mrsbench.cli.commands` that ``main`` looks up: the parser does not import the command line (no cycle)."""
from __future__ import annotations

import argparse

GROUPS = (
    ("run and compare", ("run", "sweep", "submit", "leaderboard", "compare", "validate", "report")),
    ("data", ("list", "datasets", "simulate", "cache")),
    ("instruments", ("qc", "quantify", "basis")),
)


class _Fmt(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each help text; descriptions and examples kept as written."""


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {x}" for x in lines)


def _add_edit_order(p):
    p.add_argument("--edit-order", choices=["ON,OFF", "OFF,ON"], default=None, metavar="ON,OFF|OFF,ON",
                   help="for files interleaving ON and OFF on DIM_DYN without an edit dimension: the condition of the "
                        "first transient (default: told from NAA at 2.01 ppm, which the 1.9 ppm pulse partly inverts)")


def _add_plugins(p):
    p.add_argument("--plugins", nargs="*", default=[], metavar="MODULE_OR_PATH",
                   help="extra generator plugins: importable modules or .py files")


def _add_set(p, help):
    p.add_argument("--set", dest="settings", action="append", default=None, metavar="KEY=VALUE", help=help)


def _sub(sub, name, help, description, examples):
    return sub.add_parser(name, help=help, description=description, epilog=_examples(*examples), formatter_class=_Fmt)


def build_parser() -> argparse.ArgumentParser:
    from mrsbench.core.version import __version__
    groups = "\n".join(f"  {g}: {', '.join(c)}" for g, c in GROUPS)
    p = argparse.ArgumentParser(prog="mrsbench", formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "Benchmark generative models of GABA-edited MEGA-PRESS MRS transients: reconstruction, feature-level\n"
        "similarity, application (fill-up of a short scan) and quantification agreement.\n\ncommands by group:\n"
        + groups), epilog=_examples("mrsbench run --model vae", "mrsbench list",
                                    "mrsbench COMMAND --help        (each command's options and examples)"))
    p.add_argument("--version", action="version", version=f"mrsbench {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = _sub(sub, "run", "train a generator and score it with the fixed harness",
             "Train a generator on the training subjects of a dataset and score it: reconstruction of held-out\n"
             "transients, two-sample statistics and UMAP overlap in a fixed feature space, a short scan filled up\n"
             "with synthetic transients scored against the full scan, and LCM/Gannet quantification agreement.\n"
             "Results go to OUT/<run-id>/ (results.json, figures) and to MLflow (OUT/mlflow.db).",
             ["mrsbench run --model vae", "mrsbench run --model pca --preset paper --dataset simgaba --seed 1",
              "mrsbench run --model vae --set strategy=interpolation --set scale=0.25",
              "mrsbench run --model pca --preset tiny --dataset path/to/bids_root"])
    r.add_argument("--model", required=True, help="generator name (see `mrsbench list`), optionally with settings: "
                                                  "vae[strategy=random]")
    _add_set(r, "a generator setting KEY=VALUE (repeatable; see `mrsbench list --model NAME`), e.g. "
                "--set strategy=interpolation --set scale=0.25; lists as 1.8+4.2")
    r.add_argument("--dataset", default="simgaba-small",
                   help="dataset name, or real data: a folder of NIfTI-MRS files (flat or BIDS), one NIfTI-MRS file "
                        "or an Edited-MRS challenge .h5 file")
    _add_edit_order(r)
    r.add_argument("--basis", default=None, help="simulate the named dataset from this MEGA-PRESS basis folder "
                                                "(see `mrsbench simulate --basis`)")
    r.add_argument("--preset", default="quick", help="evaluation preset: quick | paper | tiny (see `mrsbench list`)")
    r.add_argument("--seed", type=int, default=0, help="seed of the split, the subsets and the generator's training")
    r.add_argument("--out", default="runs", help="output folder (results under OUT/<run-id>/)")
    _add_plugins(r)
    r.add_argument("--no-progress", action="store_true", help="hide progress bars")
    r.set_defaults(handler="_cmd_run")

    ls = _sub(sub, "list", "list generators, presets and datasets",
              "List the registered generators (built-in baselines and installed plugins), the evaluation presets\n"
              "(what each runs and how long it took here) and the datasets (simulated: subjects, sites, whether\n"
              "cached and its size; real data: the paths accepted). With --model: that generator's settings (the\n"
              "KEY=VALUE pairs --set takes), their types, choices and defaults.",
              ["mrsbench list", "mrsbench list --plugins my_gen.py", "mrsbench list --model vae"])
    _add_plugins(ls)
    ls.add_argument("--model", default=None, help="show this generator's settings")
    ls.set_defaults(handler="_cmd_list")

    s = _sub(sub, "simulate", "write a simulated dataset as NIfTI-MRS files + ground truth",
             "Simulate a named cohort (cached on first use) and write one NIfTI-MRS file per subject (receiver at\n"
             "4.65 ppm), ground_truth.csv (true concentrations, T2 weights, line widths, SNR, drift) and\n"
             "noise_free_spectra.npz. With --basis the cohort is built from your own MEGA-PRESS basis.",
             ["mrsbench simulate --dataset simgaba-small --out data/simgaba-small",
              "mrsbench simulate --dataset simgaba-small --basis my_basis/ --out data/mine"])
    s.add_argument("--dataset", default="simgaba-small", help="simulated dataset name (see `mrsbench list`)")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--seed", type=int, default=None, help="override the dataset's seed (default: the dataset's own)")
    s.add_argument("--basis", default=None,
                   help="simulate from this MEGA-PRESS basis instead of the built-in one: a folder with FSL-MRS JSON "
                        "ON/OFF folders (edit_on/, edit_off/) or two LCModel files (*on*.BASIS, *off*.BASIS); "
                        "editing-pulse detuning under drift is then off")
    s.set_defaults(handler="_cmd_simulate")

    b = _sub(sub, "basis", "simulate the MEGA-PRESS basis set and write it (FSL-MRS JSON, LCModel .BASIS)",
             "Simulate the MEGA-PRESS basis (density matrix, refocusing and editing pulses) and write it for other\n"
             "tools: FSL-MRS JSON folders edit_on/, edit_off/, edit_diff/ and LCModel edit_on.BASIS,\n"
             "edit_off.BASIS, edit_diff.BASIS, each with the receiver at 4.65 ppm in that tool's convention.",
             ["mrsbench basis --out basis/", "mrsbench basis --out basis_te80/ --te 80 --format lcmodel"])
    b.add_argument("--out", required=True, help="output folder (FSL-MRS: edit_on/, edit_off/, edit_diff/ inside; "
                   "LCModel: edit_on.BASIS, edit_off.BASIS, edit_diff.BASIS)")
    b.add_argument("--format", choices=["fsl", "lcmodel", "all"], default="all",
                   help="FSL-MRS JSON folders, LCModel .BASIS files (also for Osprey), or both")
    b.add_argument("--te", type=float, default=68.0, help="echo time (ms)")
    b.add_argument("--field", type=float, default=127.75, help="spectrometer frequency (MHz)")
    b.add_argument("--sw", type=float, default=2000.0, help="spectral width (Hz)")
    b.add_argument("--points", type=int, default=2048, help="complex points per FID")
    b.add_argument("--edit-on", type=float, default=1.9, help="edit-ON pulse frequency (ppm)")
    b.add_argument("--edit-off", type=float, default=7.46, help="edit-OFF pulse frequency (ppm)")
    b.add_argument("--gaba", choices=["near", "govindaraju"], default="near", help="GABA spin parameters")
    b.add_argument("--linewidth", type=float, default=2.0, help="Lorentzian line width of the written FIDs (Hz)")
    b.add_argument("--no-cache", action="store_true", help="simulate even if a cached basis exists")
    b.set_defaults(handler="_cmd_basis")

    q = _sub(sub, "qc", "process a scan and print its signal-quality measures",
             "Process one edited scan (alignment, weighting, averaging, referencing) and print the challenge's GABA\n"
             "SNR and linewidth of the DIFF, Osprey's NAA SNR and NAA/Cr FWHM of the OFF; with --reference also\n"
             "the challenge shape score and MSE against the reference scan's DIFF.",
             ["mrsbench qc sub-01.nii.gz", "mrsbench qc short.nii.gz --reference full.nii.gz --json"])
    q.add_argument("file", help="an edited NIfTI-MRS file")
    q.add_argument("--reference", default=None, help="a reference scan (e.g. the full scan) for shape score and MSE")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(handler="_cmd_qc")

    qu = _sub(sub, "quantify", "process and quantify a scan (LCM + Gannet-style)",
              "Process and quantify: LCM (FSL-MRS model) on OFF and DIFF, Gannet-style GABA+, Glx and Cr fits;\n"
              "a table of estimates, ratios to tCr, CRLBs, fit errors and flags.",
              ["mrsbench quantify sub-01.nii.gz", "mrsbench quantify path/to/bids_root --out table.csv"])
    qu.add_argument("file", help="a NIfTI-MRS file, a folder of them (flat or BIDS) or an Edited-MRS challenge .h5 "
                                 "file; with several subjects the table has a subject column")
    _add_edit_order(qu)
    qu.add_argument("--out", default=None, help="also write the table as CSV here")
    qu.set_defaults(handler="_cmd_quantify")

    ds = _sub(sub, "datasets", "inspect a dataset before a run: subjects, sites, axis, transients, quality",
              "Read a dataset as a run would (layout, harmonisation onto one axis, ON/OFF order) and print its\n"
              "subjects, sites, axis, transients per condition and per-subject quality (NAA SNR, Cr/NAA FWHM, residual\n"
              "water, frequency offset and drift). --realism compares their distributions with real Big GABA data.",
              ["mrsbench datasets simgaba-small", "mrsbench datasets simgaba-small --realism",
               "mrsbench datasets path/to/bids_root --figure quality.png",
               "mrsbench datasets track1.h5 --json"])
    ds.add_argument("dataset", help="dataset name (see `mrsbench list`), folder (flat or BIDS), NIfTI-MRS or challenge "
                                    ".h5 file")
    _add_edit_order(ds)
    ds.add_argument("--figure", default=None, help="write a per-subject quality figure (PNG) here")
    ds.add_argument("--realism", action="store_true",
                    help="compare the cohort's quality distributions (Cr/NAA FWHM, SNR, frequency offset and drift, "
                         "residual water) with 104 Big GABA subjects and published drift (KS distance, percentiles)")
    ds.add_argument("--json", action="store_true", help="machine-readable output")
    ds.add_argument("--quiet", action="store_true", help="no progress bars")
    ds.set_defaults(handler="_cmd_datasets")

    lb = _sub(sub, "leaderboard", "build a leaderboard table from results files",
              "Rank results of one dataset identity, preset and harness version: mean and sd over seeds of the\n"
              "headline metrics, rows ordered by dominance over questions, reference rows in their own band.",
              ["mrsbench leaderboard --results leaderboards/simgaba-small/quick",
               "mrsbench leaderboard --results runs --format csv"])
    lb.add_argument("--results", nargs="*", default=None, help="results files or folders (default: leaderboards/)")
    lb.add_argument("--dataset", default=None, help="only this dataset (default: one table per dataset)")
    lb.add_argument("--preset", default=None, help="only this preset (default: one table per preset)")
    lb.add_argument("--format", choices=["markdown", "csv", "json"], default="markdown", help="output format")
    lb.set_defaults(handler="_cmd_leaderboard")

    c = _sub(sub, "compare", "compare two results (files, folders or leaderboards)",
             "Metric by metric differences between two results files, or model by model between two folders;\n"
             "results of different datasets, presets or harness versions are refused unless allowed.",
             ["mrsbench compare runs/A/results.json runs/B/results.json",
              "mrsbench compare leaderboards/simgaba-small/quick old_boards/quick --model pca"])
    c.add_argument("a", help="first results file or folder")
    c.add_argument("b", help="second results file or folder")
    c.add_argument("--model", default=None, help="compare only this model (folders hold several)")
    c.add_argument("--allow-incompatible", action="store_true",
                   help="compare results of different datasets, presets or harness versions (with a warning)")
    c.set_defaults(handler="_cmd_compare")

    sw = _sub(sub, "sweep", "run the grid models x seeds x datasets x presets (Ray, resumable)",
              "Run every cell of the grid models x seeds x datasets x presets and write each cell's results file\n"
              "(the results.json `mrsbench run` writes) to ROOT/<dataset>/<preset>/<model>-seed<seed>.json.\n"
              "With Ray installed (pip install 'mrsbench[ray]') the cells are Ray tasks on an embedded local Ray\n"
              "(--workers CPUs) or on an existing cluster (--address); without it they run one after another here.\n"
              "Cells whose valid results file exists are skipped, so re-running a killed sweep finishes only what is\n"
              "missing; a failing cell is reported and the others complete. The model-independent work of each\n"
              "(dataset, preset, seed) is computed once and shared by its models' cells. MLflow: one parent run per\n"
              "sweep with a nested run per cell, logged by this process (the driver).",
              ["mrsbench sweep --models pca,physics --presets tiny --seeds 0,1",
               "mrsbench sweep --models vae,pca,physics --datasets simgaba --presets paper --root leaderboards --leaderboard",
               "mrsbench sweep --file sweep.toml --address ray://head-node:10001",
               "mrsbench sweep --models pca --backend local --json",
               "mrsbench sweep --models vae,pca --set strategy=random,interpolation,hybrid --root leaderboards"])
    sw.add_argument("--file", default=None, help="sweep file (TOML or JSON) with the fields below (models, seeds, "
                                                 "datasets, presets, root, ...); options given here override it")
    sw.add_argument("--models", default=None, help="comma-separated generator names (see `mrsbench list`)")
    _add_set(sw, "a generator setting KEY=VALUE,VALUE... (repeatable): the grid runs every combination, e.g. "
                 "--set strategy=random,interpolation,hybrid (each model must declare the setting)")
    sw.add_argument("--seeds", default=None, help="comma-separated seeds (default: each preset's fixed seeds)")
    sw.add_argument("--datasets", default=None, help="comma-separated dataset names or data paths (default: simgaba-small)")
    sw.add_argument("--presets", default=None, help="comma-separated presets (default: quick)")
    sw.add_argument("--root", default=None, help="results root: ROOT/<dataset>/<preset>/<model>-seed<seed>.json "
                                                 "(default: runs/sweep)")
    sw.add_argument("--backend", choices=["auto", "ray", "local"], default=None,
                    help="auto: Ray when installed, else local (sequential, in this process) (default: auto)")
    sw.add_argument("--address", default=None, help="join an existing Ray cluster (e.g. auto, ray://HOST:10001) "
                                                    "instead of starting a local one")
    sw.add_argument("--workers", type=int, default=None, help="local Ray: number of CPUs (parallel cells) "
                                                              "(default: all CPUs)")
    sw.add_argument("--cpus-per-cell", type=float, default=None, help="CPUs requested by each cell's Ray task "
                                                                      "(default: 1)")
    sw.add_argument("--gpus-per-cell", type=float, default=None,
                    help="GPUs requested by each cell (default: what the generator declares in its `resources`)")
    sw.add_argument("--leaderboard", "--submit", action="store_true",
                    help="regenerate the leaderboard (README.md, index.html, leaderboard.json) of every affected folder")
    sw.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                                                         "sqlite mlflow.db beside ROOT, in its parent folder: a "
                                                         "results root holds results only)")
    sw.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    _add_plugins(sw)
    sw.add_argument("--json", action="store_true", help="print the sweep report as JSON")
    sw.add_argument("--no-progress", action="store_true", help="hide the progress bar over cells")
    sw.set_defaults(handler="_cmd_sweep")

    sm = _sub(sub, "submit", "check a generator class and run the harness for the leaderboard",
              "Check a generator class (the public API), run the harness for every seed of the preset and add the\n"
              "results to the leaderboard folder, all seeds or none.",
              ["mrsbench submit my_gen.py", "mrsbench submit mypkg.gen:MyGenerator --dataset simgaba --preset paper"])
    sm.add_argument("target", help="MODULE:CLASS or path/to/file.py")
    sm.add_argument("--dataset", default="simgaba-small", help="dataset name")
    sm.add_argument("--preset", default="quick", help="evaluation preset (its seeds are run)")
    sm.add_argument("--root", default="leaderboards", help="leaderboard root (results go to ROOT/<dataset>/<preset>/) "
                                                           "or that board's own folder")
    sm.add_argument("--seeds", default=None, help="comma-separated seeds (default: the preset's fixed seeds)")
    _add_set(sm, "a setting KEY=VALUE of the class's __init__ (repeatable), recorded and part of the model name")
    sm.add_argument("--name", default=None, help="model name in the leaderboard (default: the class's name)")
    sm.add_argument("--no-progress", action="store_true", help="hide progress bars")
    sm.set_defaults(handler="_cmd_submit")

    rp = _sub(sub, "report", "draw the paper's Figures 4 and 5 for results files of one cell",
              "Figure 5 of the seed paper (van de Sande et al.): a UMAP learned on held-out real spectra with each\n"
              "model's synthetic spectra projected in (density shading of the real points, ON/OFF markers, one panel\n"
              "per results file: per model or per sampling strategy), and Figure 4 for each model with an encoder\n"
              "(two held-out subjects, ON and OFF: spectrum, reconstruction and residual). The run's own steps are\n"
              "redone (its data, the shared UMAP, each generator trained fold by fold with its recorded settings and\n"
              "the run's seed), so the points are the run's. The results files must share dataset, preset and seed.",
              ["mrsbench report leaderboards/simgaba-small/quick/vae*-seed0.json --out figures",
               "mrsbench report runs/*/results.json --out figures"])
    rp.add_argument("results", nargs="+", help="results files (results.json of runs, or a board's <model>-seed<s>.json)")
    rp.add_argument("--out", default="figures", help="folder for paper_figure5_umap.png and paper_figure4_<model>.png "
                                                     "(a board's figures/ folder puts them on its page)")
    _add_plugins(rp)
    rp.add_argument("--no-progress", action="store_true", help="hide progress bars")
    rp.set_defaults(handler="_cmd_report")

    v = _sub(sub, "validate", "validate results files (and optionally reproduce them)",
             "Check results files: schema, checksum, harness version, headline metrics against the file's own\n"
             "per-subject statistics, dataset identity and fingerprint (the data regenerated); with --reproduce\n"
             "re-run each and compare every metric within its tolerance.",
             ["mrsbench validate leaderboards/simgaba-small/quick/pca-seed0.json",
              "mrsbench validate leaderboards/simgaba-small/quick/*-seed*.json --no-dataset-check",
              "mrsbench validate runs/<id>/results.json --reproduce"])
    v.add_argument("results", nargs="+", help="results JSON files (runs/<id>/results.json or a leaderboard's "
                                              "MODEL-seedN.json); each is checked")
    v.add_argument("--no-dataset-check", action="store_true",
                   help="skip regenerating the dataset to check its identity and fingerprint")
    v.add_argument("--reproduce", action="store_true",
                   help="re-run the same model, dataset, preset and seed and compare every metric within tolerance")
    v.add_argument("--verbose", action="store_true", help="with --reproduce: list every metric, not only failures")
    v.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_plugins(v)
    v.set_defaults(handler="_cmd_validate")
    ca = _sub(sub, "cache", "show what the cache holds and its size; clear it",
              "The cache ($MRSBENCH_CACHE, else ~/.cache/mrsbench) holds simulated basis sets, simulated datasets\n"
              "and the shared work of each dataset, preset and seed. Everything in it is remade on demand:\n"
              "clearing costs time, never results.",
              ["mrsbench cache", "mrsbench cache --clear shared", "mrsbench cache --clear all"])
    ca.add_argument("--clear", default=None, metavar="PARTS",
                    help="comma-separated parts to remove: basis, datasets, shared, or all")
    ca.set_defaults(handler="_cmd_cache")
    # every command: --quiet (no progress bars: for scripts and logs); --json where a command prints a table
    for name, sp in sub.choices.items():
        opts = set(sp._option_string_actions)
        if "--quiet" not in opts:
            sp.add_argument("--quiet", action="store_true", help="no progress bars (results and errors only)")
        if name in JSON_COMMANDS and "--json" not in opts:
            sp.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    return p


# commands that print a table and also speak JSON
JSON_COMMANDS = ("run", "list", "compare", "validate", "leaderboard", "quantify", "qc", "datasets", "sweep", "cache")
