"""The handlers of the ``mrsbench`` subcommands (one function per subcommand, named by the parser). Heavy
modules are imported inside the handlers only."""
from __future__ import annotations

import sys

EXIT_USER_ERROR = 2   # bad input (the exit code of argparse errors)


def _cmd_basis(args) -> int:
    from mrsbench.core.axis import SpectralAxis
    from mrsbench.core.errors import InputError
    from mrsbench.physics.basis import load_basis
    from mrsbench.physics.megapress import MegaPressConfig

    from mrsbench.harness.checks import check_output_folder
    try:
        cfg = MegaPressConfig(te_s=args.te / 1000.0, f0_mhz=args.field, edit_on_ppm=args.edit_on,
                              edit_off_ppm=args.edit_off, gaba_set=args.gaba)
    except ValueError as e:
        raise InputError("basis", str(e)) from None
    if not (args.sw > 0 and args.points >= 16 and args.linewidth >= 0):   # every argument checked before the work
        raise InputError("basis", f"--sw must be > 0 Hz, --points >= 16 and --linewidth >= 0 Hz (got {args.sw:g}, "
                                  f"{args.points}, {args.linewidth:g})")
    try:
        axis = SpectralAxis(sw_hz=args.sw, f0_mhz=args.field, n_points=args.points)
    except ValueError as e:
        raise InputError("basis", str(e)) from None
    check_output_folder(args.out, "--out")
    basis = load_basis(cfg, use_cache=not args.no_cache, progress=True)
    if args.format in ("fsl", "all"):
        paths = basis.write_fsl(args.out, axis=axis, lw_hz=args.linewidth)
        print(f"wrote {len(paths)} FSL-MRS basis files ({len(basis.names)} components x ON/OFF/DIFF) to {args.out} "
              f"[key {basis.key}]")
    if args.format in ("lcmodel", "all"):
        paths = basis.write_lcmodel(args.out, axis=axis, lw_hz=args.linewidth)
        print(f"wrote LCModel basis files {', '.join(p.name for p in paths)} to {args.out} [key {basis.key}]")
    return 0


def _cmd_run(args) -> int:
    from mrsbench.harness.evaluator import run, summary_table
    from mrsbench.harness.outputs import run_summary

    results, run_dir = run(args.model, dataset=args.dataset, preset=args.preset, seed=args.seed, out=args.out,
                           plugins=args.plugins, progress=not (args.no_progress or args.json), edit_order=args.edit_order,
                           basis=args.basis)
    if args.json:
        import json
        print(json.dumps(dict(results, run_dir=str(run_dir)), indent=1))
        return 0
    print(f"mrsbench {results['harness_version']} | model {results['model']} | dataset {results['dataset']} "
          f"({results['dataset_hash']}) | preset {results['preset_name']} | seed {results['seed']}")
    print(summary_table(results))
    print()
    print(run_summary(results, run_dir))
    return 0


def _cmd_leaderboard(args) -> int:
    from mrsbench.boards.leaderboard import build, load_results, render

    if args.json:
        args.format = "json"
    docs = load_results(args.results or ["leaderboards"])
    combos = sorted({(d["dataset"], d["preset_name"]) for d in docs
                     if (args.dataset is None or d["dataset"] == args.dataset)
                     and (args.preset is None or d["preset_name"] == args.preset)})
    if not combos:
        return print(render(build(docs, args.dataset, args.preset), args.format), end="") or 0  # raises
    if args.format == "json" and len(combos) > 1:
        import json
        print(json.dumps([build(docs, ds, pr) for ds, pr in combos], indent=1))
        return 0
    for k, (ds, pr) in enumerate(combos):  # one table per dataset and preset
        if k and args.format == "markdown":
            print()
        print(render(build(docs, ds, pr), args.format), end="")
    return 0


def _cmd_compare(args) -> int:
    from mrsbench.boards.compare import compare

    print(compare(args.a, args.b, model=args.model, allow_incompatible=args.allow_incompatible,
                  as_json=args.json), end="")
    return 0


def _cmd_sweep(args) -> int:
    import json as _json

    from mrsbench.core.errors import InputError
    from mrsbench.sweep.runner import SweepSpec, load_sweep_file, run_sweep

    doc = load_sweep_file(args.file) if args.file else {}
    lists = {"models": args.models, "seeds": args.seeds, "datasets": args.datasets, "presets": args.presets,
             "plugins": args.plugins or None}
    for k, v in lists.items():
        if v is not None:
            doc[k] = v
    for k in ("models", "datasets", "presets", "plugins", "seeds"):
        if isinstance(doc.get(k), str):
            doc[k] = [x.strip() for x in doc[k].split(",") if x.strip()]
    if doc.get("seeds") is not None:
        try:
            doc["seeds"] = [int(x) for x in doc["seeds"]]
        except (TypeError, ValueError):
            raise InputError("sweep", f"seeds must be integers, got {doc['seeds']!r}") from None
    for k, v in (("root", args.root), ("backend", args.backend), ("address", args.address), ("workers", args.workers),
                 ("cpus_per_cell", args.cpus_per_cell), ("gpus_per_cell", args.gpus_per_cell),
                 ("tracking_uri", args.tracking_uri)):
        if v is not None:
            doc[k] = v
    if args.leaderboard:
        doc["leaderboard"] = True
    if args.no_track:
        doc["track"] = False
    if not doc.get("models"):
        raise InputError("sweep", "no models: give --models or a sweep file with models")
    report = run_sweep(SweepSpec(**doc), progress=not args.no_progress and not args.json)
    print(_json.dumps(report.to_dict(), indent=1) if args.json else report.text())
    return 1 if report.failed else 0


def _cmd_submit(args) -> int:
    from mrsbench.boards.submit import submit

    from mrsbench.harness.checks import check_seeds
    seeds = None if args.seeds is None else check_seeds([x.strip() for x in args.seeds.split(",") if x.strip()],
                                                        "--seeds")
    written, board = submit(args.target, dataset=args.dataset, preset=args.preset, root=args.root,
                            progress=not args.no_progress, name=args.name, seeds=seeds)
    for p in written:
        print(f"wrote {p}")
    print(f"leaderboard: {board} (and index.html, leaderboard.json)")
    return 0


def _cmd_validate(args) -> int:
    """Validate each file (all are checked; the exit status is 2 when any is invalid or not reproduced)."""
    import json
    from pathlib import Path

    from mrsbench.core.errors import InputError
    from mrsbench.boards.leaderboard import read_json, validate_results

    reports, bad = [], []
    for f in args.results:
        p = Path(f)
        try:
            doc = read_json(p, "results file")
            if not isinstance(doc, dict):
                raise InputError(p, "not a results document")
            problems = validate_results(doc, str(p), check_dataset=not args.no_dataset_check)
        except InputError as e:
            doc, problems = {}, [e.problem]
        reports.append({"file": str(p), "valid": not problems, "problems": problems, "model": doc.get("model"),
                        "harness_version": doc.get("harness_version")})
        if problems:
            if len(args.results) == 1 and not args.json:   # one file: its problem is the one error line
                raise InputError(p, "invalid: " + "; ".join(problems))
            bad.append(p)
            if not args.json:
                print(f"{p}: invalid: " + "; ".join(problems), file=sys.stderr)
            continue
        if not args.json:
            print(f"{p}: valid ({doc['model']}, {doc['dataset']} {doc['dataset_hash']}, preset {doc['preset_name']}, "
                  f"seed {doc['seed']}, harness {doc['harness_version']})")
        if args.reproduce:
            from mrsbench.boards.submit import reproduce, reproduce_report
            _, rows = reproduce(p, plugins=args.plugins, progress=not args.no_progress)
            differ = [r for r in rows if not r[3]]
            reports[-1].update(reproduced=not differ, metrics_compared=len(rows), differing=[r[0] for r in differ])
            if not args.json:
                print(reproduce_report(rows, only_failures=not args.verbose))
            if differ:
                if len(args.results) == 1 and not args.json:
                    raise InputError(p, f"not reproduced: {len(differ)} of {len(rows)} metrics differ beyond tolerance "
                                        f"({', '.join(r[0] for r in differ[:5])}{', ...' if len(differ) > 5 else ''})")
                bad.append(p)
                if not args.json:
                    print(f"{p}: not reproduced: {len(differ)} of {len(rows)} metrics differ beyond tolerance "
                          f"({', '.join(r[0] for r in differ[:5])}{', ...' if len(differ) > 5 else ''})", file=sys.stderr)
            elif not args.json:
                print(f"{p}: reproduced ({len(rows)} metrics within tolerance)")
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports))
        return 0 if not bad else EXIT_USER_ERROR
    if bad:
        raise InputError("validate", f"{len(bad)} of {len(args.results)} file(s) invalid or not reproduced: "
                                     + ", ".join(str(b) for b in dict.fromkeys(bad)))
    return 0


# wall time per model and seed measured on 2 idle CPU cores (quick: the committed board's results files, harness
# 1.7; paper: pca and physics cells, seed 0, harness 1.9, each in a fresh process with the shared work cached
# (2026-11-27, processing on worker processes); GPU: the lent H200, harness 1.6)
PRESET_TIMES = {"tiny": "~40 s (the first run also compiles UMAP, ~60 s)",
                "quick": "2 CPU cores, 4 folds (the generator trained 4 times): pca ~30 s, vae ~130 s + ~30 s shared "
                         "work once per dataset and seed (budget: 3 min per model and seed)",
                "paper": "2 CPU cores: pca ~80-95 s, physics ~85-100 s + ~35-55 s shared work once per dataset and seed; "
                         "GPU (H200, 16 cores): pca 110 s, vae 107 s + 105 s shared (simgaba)"}


def _cmd_list(args) -> int:
    from mrsbench.data.datasets import DATASETS, DESCRIPTIONS, config_key
    from mrsbench.harness.evaluator import PRESETS
    from mrsbench.physics.basis import cache_dir

    try:
        from mrsbench.generators.registry import list_generators
        gens = list_generators(args.plugins)
    except ImportError:  # pragma: no cover
        gens = []
    if args.json:
        import json
        print(json.dumps({
            "generators": [{"name": n, "description": d} for n, d in gens],
            "presets": [dict(pr.to_dict(), time_2_cpu_cores=PRESET_TIMES.get(name)) for name, pr in PRESETS.items()],
            "datasets": [{"name": name, "subjects": cfg.n_sites * cfg.subjects_per_site, "sites": cfg.n_sites,
                          "transients": 2 * cfg.n_pairs, "identity": f"sim-{config_key(cfg)}",
                          "cached_bytes": (cache_dir() / "datasets" / f"{cfg.name}-{config_key(cfg)}.npz").stat().st_size
                          if (cache_dir() / "datasets" / f"{cfg.name}-{config_key(cfg)}.npz").exists() else None}
                         for name, cfg in DATASETS.items()]}, indent=1))
        return 0
    print("generators:")
    for name, desc in gens:
        print(f"  {name:16s} {desc}")
    print("presets (n: short-scan sizes per condition; subsets per subject and n; seeds used by submit):")
    for name, pr in PRESETS.items():
        print(f"  {name:8s} n {','.join(map(str, pr.n_values))}, {pr.n_subsets} subset(s), seeds "
              f"{','.join(map(str, pr.seeds))}, {pr.embedding_samples} samples for the two-sample statistics, "
              f"UMAP {pr.umap_epochs} epochs; time per model-seed: {PRESET_TIMES.get(name, 'n/a')}")
    print("datasets:")
    for name, cfg in DATASETS.items():
        key = config_key(cfg)
        path = cache_dir() / "datasets" / f"{cfg.name}-{key}.npz"
        cached = f"cached, {path.stat().st_size / 1e6:.0f} MB" if path.exists() else "not cached (simulated on first use)"
        print(f"  {name:16s} {DESCRIPTIONS[name]}; {cfg.n_sites * cfg.subjects_per_site} subjects, {cfg.n_sites} sites, "
              f"{2 * cfg.n_pairs} transients; identity sim-{key}; {cached}")
    print("  <path>           real data: a folder of NIfTI-MRS files (flat or BIDS), one NIfTI-MRS file, or an "
          "Edited-MRS challenge .h5 file (see `mrsbench datasets PATH`)")
    return 0


def _cmd_simulate(args) -> int:
    from mrsbench.harness.checks import check_output_folder, check_seeds
    from mrsbench.data.datasets import DATASETS, load_dataset, write_dataset
    from mrsbench.core.errors import InputError

    if args.dataset not in DATASETS:
        raise InputError("--dataset", f"{args.dataset!r}: only simulated datasets can be written with `simulate` "
                                      f"({', '.join(DATASETS)})")
    if args.seed is not None:
        check_seeds([args.seed])
    check_output_folder(args.out, "--out")
    cohort, extras = load_dataset(args.dataset, seed=args.seed, with_extras=True, basis=args.basis)
    if not extras:
        from mrsbench.core.errors import InputError
        raise InputError(args.dataset, "only simulated datasets can be written with `simulate`")
    paths = write_dataset(cohort, extras, args.out, progress=not args.quiet)
    print(f"wrote {len(paths)} NIfTI-MRS files, ground_truth.csv and noise_free_spectra.npz to {args.out} "
          f"(dataset {cohort.name}, content hash {cohort.meta['content_hash']})")
    return 0


def _cmd_qc(args) -> int:
    import json

    from mrsbench.data.nifti_mrs import read_nifti_mrs
    from mrsbench.metrics.qc import qc_scan

    from mrsbench.core.grid import check_field
    scan = read_nifti_mrs(args.file)
    check_field(scan.axis, args.file)   # the measures' ppm windows are defined for 1H at about 3 T
    ref = read_nifti_mrs(args.reference, expected_axis=scan.axis) if args.reference else None
    rep = qc_scan(scan, ref)
    if args.json:
        print(json.dumps(rep))
        return 0
    rows = [("GABA SNR (DIFF, challenge)", rep["snr"], ""), ("GABA linewidth", rep["linewidth_ppm"], "ppm"),
            ("GABA linewidth", rep["linewidth_hz"], "Hz"), ("NAA SNR (OFF, Osprey)", rep["naa_snr"], ""),
            ("NAA FWHM (OFF)", rep["naa_fwhm_hz"], "Hz"), ("Cr FWHM (OFF)", rep["cr_fwhm_hz"], "Hz")]
    if ref is not None:
        rows += [("shape score vs reference", rep["shape_score"], ""), ("MSE vs reference (2.5-4 ppm)", rep["mse"], "")]
    print(f"{args.file}: {rep['n_on']} ON + {rep['n_off']} OFF transients, {rep['rejected_transients']} rejected")
    for name, v, unit in rows:
        print(f"  {name:30s} {v:10.4f} {unit}")
    return 0


def _cmd_quantify(args) -> int:
    import pandas as pd

    from mrsbench.core.files import atomic_path
    from mrsbench.fitting.quantify import Quantifier, quantify_table
    from mrsbench.processing import process
    from mrsbench.data.readers import read_path

    if args.out:
        from mrsbench.harness.checks import check_output_file
        check_output_file(args.out, "--out")
    cohort = read_path(args.file, edit_order=args.edit_order)
    q = Quantifier(cohort.axis)
    tables = []
    for scan in cohort.scans:
        p = process(scan)
        sp = p.spectra()
        t = quantify_table(sp["off"], sp["diff"], scan.axis, quantifier=q, on_offsets=p.on_offsets_hz())
        tables.append(t.assign(subject=scan.subject) if len(cohort.scans) > 1 else t)
    table = pd.concat(tables, ignore_index=True)
    if args.out:
        with atomic_path(args.out, ".csv") as tmp:
            table.to_csv(tmp, index=False)
    if args.json:
        import json
        print(json.dumps({"file": str(args.file), "rows": json.loads(table.to_json(orient="records")),
                          "csv": str(args.out) if args.out else None}))
        return 0
    from tabulate import tabulate
    show = table.copy()
    print(f"{args.file}: LCM (FSL-MRS model) on OFF and DIFF, Gannet-style GABA+/Glx/Cr")
    print(tabulate(show, headers="keys", tablefmt="github", showindex=False, floatfmt=".4g"))
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _cmd_datasets(args) -> int:
    import json

    from mrsbench.data.datasets import load_dataset
    from mrsbench.data.inspection import figure, inspect_cohort

    cohort = load_dataset(args.dataset, progress=not args.quiet, edit_order=args.edit_order)
    table = inspect_cohort(cohort, progress=not args.quiet)
    ax = cohort.axis
    info = {"dataset": cohort.meta.get("dataset", str(args.dataset)), "identity": cohort.meta.get("identity"),
            "layout": cohort.meta.get("layout", "simulated"), "subjects": len(cohort.scans),
            "sites": sorted({s.site for s in cohort.scans}), "axis": ax.to_dict(),
            "harmonisation": cohort.meta.get("harmonisation"),
            "water_references_left_out": cohort.meta.get("water_references", []),
            "edit_order": sorted({str(s.meta.get("edit_order") or "known (simulated)") for s in cohort.scans})}
    fig = figure(table, args.figure, f"{info['dataset']}: {len(cohort.scans)} subjects") if args.figure else None
    if args.json:
        print(json.dumps({**info, "per_subject": table.to_dict(orient="records"),
                          "figure": str(fig) if fig else None}, default=str))
        return 0
    from tabulate import tabulate
    h = info["harmonisation"] or {}
    print(f"{info['dataset']} [{info['identity']}] layout {info['layout']}: {info['subjects']} subjects, sites "
          f"{', '.join(s or '(none)' for s in info['sites'])}")
    print(f"  axis: {ax.sw_hz:g} Hz, {ax.n_points} points, {ax.f0_mhz:g} MHz ({ax.f0_mhz / 42.577:.2f} T), receiver "
          f"{ax.centre_ppm:g} ppm; harmonisation: {h.get('method', 'n/a')}"
          + (f" ({len(h.get('resampled', []))} resampled)" if h.get("resampled") else ""))
    print(f"  ON/OFF order: {'; '.join(info['edit_order'])}; water references left out: "
          f"{len(info['water_references_left_out'])}")
    print(tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".3g"))
    if fig:
        print(f"figure: {fig}")
    return 0


def _cmd_cache(args) -> int:
    import json

    from mrsbench.harness.cache import cache_report, clear_cache

    if args.clear:
        gone = clear_cache([x.strip() for x in args.clear.split(",") if x.strip()])
        if args.json:
            print(json.dumps({"removed": gone}))
        else:
            for g in gone:
                print(f"removed {g['part']}: {g['files']} files, {g['bytes'] / 1e6:.1f} MB ({g['path']})")
            if not gone:
                print("nothing to remove")
        return 0
    rep = cache_report()
    if args.json:
        print(json.dumps(rep))
        return 0
    from tabulate import tabulate
    print(f"mrsbench cache: {rep['root']} ($MRSBENCH_CACHE), {rep['bytes'] / 1e6:.1f} MB in all")
    print(tabulate([[p["part"], f"{p['bytes'] / 1e6:.1f}", p["files"], p["what"]] for p in rep["parts"]],
                   headers=["part", "MB", "files", "what"], tablefmt="github", disable_numparse=True))
    print("clear with: mrsbench cache --clear shared (or datasets, basis, all); everything is remade on demand")
    return 0
