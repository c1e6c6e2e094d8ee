"""The handlers of the data and generator-inspection subcommands (list, datasets, simulate, basis, qc, quantify,
cache); the parser names them, :mod:`mrsbench.cli.commands` re-exports them. Heavy modules are imported inside the
handlers only."""
from __future__ import annotations


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
    if args.model:
        return _list_settings(args)
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


def _list_settings(args) -> int:
    """``list --model NAME``: the generator's settings, with the values the quick preset uses."""
    from mrsbench.generators import registry
    from mrsbench.generators.settings import declared, effective_defaults, format_value
    from mrsbench.harness.checks import check_model
    from mrsbench.harness.evaluator import generator_kwargs
    from mrsbench.harness.protocol import PRESETS
    check_model(args.model, args.plugins)
    cls = registry.get(args.model)
    rows = [{"setting": s.name, "type": s.describe(), "default": format_value(s.default),
             **{f"{p} preset": format_value(effective_defaults(cls, generator_kwargs(cls, args.model, pr, False))[s.name])
                for p, pr in PRESETS.items()}} for s in declared(cls)]
    if args.json:
        import json
        print(json.dumps({"model": args.model, "description": getattr(cls, "description", ""), "settings": rows}, indent=1))
        return 0
    print(f"{args.model}: {getattr(cls, 'description', '')}")
    if not rows:
        print("no settings (its __init__ takes none)")
        return 0
    from tabulate import tabulate
    print(tabulate([list(r.values()) for r in rows], headers=list(rows[0]), tablefmt="simple", disable_numparse=True))
    print(f"\nset with: mrsbench run --model {args.model} --set KEY=VALUE (lists as a+b; none for no value); the\n"
          f"result's model name carries the settings that differ from the preset's, e.g. {args.model}[KEY=VALUE]")
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
    realism = None
    if getattr(args, "realism", False):
        from mrsbench.data.realism import realism_rows
        realism = realism_rows(table)
    if args.json:
        print(json.dumps({**info, "per_subject": table.to_dict(orient="records"),
                          "realism": None if realism is None else [r.to_dict() for r in realism],
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
    if realism is not None:
        from mrsbench.data.realism import render_rows
        print(f"\nRealism: {info['dataset']} against real data (mrsbench.data.realism; KS D: two-sample "
              "Kolmogorov-Smirnov distance, 0 = same distribution)")
        print(render_rows(realism))
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


def _cmd_report(args) -> int:
    from mrsbench.boards.paper_figures import report
    for p in report(args.results, args.out, plugins=args.plugins, progress=not args.no_progress):
        print(f"wrote {p}")
    return 0
