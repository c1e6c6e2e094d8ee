"""The handlers of the ``mrsbench`` subcommands (one function per subcommand, named by the parser). Heavy
modules are imported inside the handlers only."""
from __future__ import annotations

import sys

EXIT_USER_ERROR = 2   # bad input (the exit code of argparse errors)


def _cmd_run(args) -> int:
    from mrsbench.generators.settings import parse_pairs
    from mrsbench.harness.evaluator import run, summary_table
    from mrsbench.harness.outputs import run_summary

    results, run_dir = run(args.model, dataset=args.dataset, preset=args.preset, seed=args.seed, out=args.out,
                           plugins=args.plugins, progress=not (args.no_progress or args.json), edit_order=args.edit_order,
                           basis=args.basis, generator_settings=parse_pairs(args.settings or []))
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
    from mrsbench.generators.settings import parse_grid
    grid = doc.get("settings") or {}
    if not isinstance(grid, dict):
        raise InputError(args.file or "sweep", "settings must be a table KEY = [values] (or \"v1,v2\")")
    grid = {k: [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v for k, v in grid.items()}
    doc["settings"] = {**grid, **parse_grid(args.settings or [])}
    if args.leaderboard:
        doc["leaderboard"] = True
    if args.no_track:
        doc["track"] = False
    if not doc.get("models"):
        raise InputError("sweep", "no models: give --models or a sweep file with models")
    if args.json:   # stdout holds the report only: what Ray prints there (a node lost, a task retried) goes to stderr
        import os
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
        try:
            report = run_sweep(SweepSpec(**doc), progress=False)
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        print(_json.dumps(report.to_dict(), indent=1))
    else:
        report = run_sweep(SweepSpec(**doc), progress=not args.no_progress)
        print(report.text())
    return 1 if report.failed else 0


def _cmd_submit(args) -> int:
    from mrsbench.boards.submit import submit
    from mrsbench.generators.settings import parse_pairs

    from mrsbench.harness.checks import check_seeds
    seeds = None if args.seeds is None else check_seeds([x.strip() for x in args.seeds.split(",") if x.strip()],
                                                        "--seeds")
    written, board = submit(args.target, dataset=args.dataset, preset=args.preset, root=args.root,
                            progress=not args.no_progress, name=args.name, seeds=seeds,
                            settings=parse_pairs(args.settings or []))
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


from mrsbench.cli.data_commands import (  # noqa: E402,F401  (the parser names them here)
    _cmd_basis, _cmd_list, _cmd_simulate, _cmd_qc, _cmd_quantify, _cmd_datasets, _cmd_cache, _cmd_report)
