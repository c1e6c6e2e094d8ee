"""`mrsbench sweep`: the grid models x seeds x datasets x presets, run as Ray tasks (an embedded local Ray,
or an existing cluster with ``address``) or, without Ray, one cell after another in this process with
the same outputs.

Layout (the leaderboards' own): ROOT/<dataset>/<preset>/<model>-seed<seed>.json, byte for byte the
``results.json`` that ``mrsbench run`` writes for that cell, its figures in .../figures/. A cell whose
valid results file exists (checksum, harness version, and the cell's model, dataset, preset and seed)
is skipped, so a sweep that was killed finishes only what is missing. Workers never write into ROOT:
a task returns its results and figure bytes to the driver, which publishes them atomically (figures
first, the results file last), logs them to MLflow and advances the progress bar. Workers on other
machines therefore need no shared file system.

The model-independent work of a (dataset, preset, seed) group (:mod:`mrsbench.harness.cell_work`) is one task
whose result every model's cell of the group receives, so it is computed once per group, not per model.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mrsbench.core.files import atomic_path
from mrsbench.core.errors import InputError, MRSBenchError


from mrsbench.sweep.spec import SPEC_KEYS, Cell, SweepSpec, load_sweep_file  # noqa: F401  (re-exported)


# --- which cells are done -------------------------------------------------------------------

def existing_problem(cell: Cell, root: Path) -> str | None:
    """None when the cell's results file exists and is valid for this cell; else why it must be (re)computed."""
    from mrsbench.boards.leaderboard import validate_results
    p = cell.path(root)
    if not p.is_file():
        return "missing"
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        return f"unreadable ({type(e).__name__})"
    if not isinstance(doc, dict):
        return "not a results document"
    probs = validate_results(doc, str(p))
    if probs:
        return probs[0]
    want = {"model": cell.model, "preset_name": cell.preset, "seed": cell.seed}
    for k, v in want.items():
        if doc.get(k) != v:
            return f"{k} is {doc.get(k)!r}, expected {v!r}"
    if not cell.is_path and doc.get("dataset") != cell.dataset:
        return f"dataset is {doc.get('dataset')!r}, expected {cell.dataset!r}"
    return None


# --- the work of a task (driver or worker) ---------------------------------------------------

def _limit_threads(cpus: float) -> None:
    """Torch intra-op threads and mrsbench's processing threads to the CPUs the task was given (Ray sets
    OMP_NUM_THREADS for BLAS)."""
    os.environ["MRSBENCH_THREADS"] = str(max(1, int(cpus)))
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(max(1, int(cpus)))


def shared_task(dataset: str, preset: str, seed: int, cpus: float = 1.0):
    """The model-independent work of a (dataset, preset, seed) group (disk cache of the node used)."""
    from mrsbench.harness.protocol import get_preset
    from mrsbench.harness.cell_work import cell_data, shared_for
    if cpus:
        _limit_threads(cpus)
    pr = get_preset(preset)
    return shared_for(cell_data(dataset, pr, seed, progress=False), pr, seed, progress=False)


def cell_task(cell: Cell, plugins: list[str], shared=None, cpus: float = 1.0) -> tuple[dict, dict]:
    """Run one cell exactly as ``mrsbench run`` does (untracked, into a temporary folder). Returns
    (results document, {figure file name: bytes})."""
    from mrsbench.generators import registry
    from mrsbench.harness.evaluator import run
    if cpus:
        _limit_threads(cpus)
    registry.load_plugins(plugins)
    with tempfile.TemporaryDirectory() as tmp:
        results, run_dir = run(cell.model, dataset=cell.dataset, preset=cell.preset, seed=cell.seed, out=tmp,
                               plugins=plugins, progress=False, track=False, shared=shared)
        figs = {f: (run_dir / f).read_bytes() for f in results.get("figures", [])}
    return results, figs


def publish(cell: Cell, root: Path, results: dict, figures: dict) -> Path:
    """Write the cell's figures, then its results file (the completion marker), each atomically."""
    dest = cell.path(root)
    for name, data in figures.items():
        with atomic_path(dest.parent / "figures" / f"{cell.model}-seed{cell.seed}-{name}") as t:
            Path(t).write_bytes(data)
    with atomic_path(dest, ".json") as t:
        Path(t).write_text(json.dumps(results, indent=1, sort_keys=True))
    return dest


# --- the sweep ----------------------------------------------------------------------------------

@dataclass
class CellOutcome:
    cell: Cell
    status: str                  # "done", "skipped", "failed"
    path: str | None = None
    error: str | None = None
    wall_s: float | None = None


@dataclass
class SweepReport:
    backend: str
    outcomes: list[CellOutcome]
    wall_s: float
    boards: list[str] = field(default_factory=list)
    tracking_uri: str | None = None
    shared_s: dict = field(default_factory=dict)

    @property
    def failed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def counts(self) -> dict:
        c = {"done": 0, "skipped": 0, "failed": 0}
        for o in self.outcomes:
            c[o.status] += 1
        return c

    def to_dict(self) -> dict:
        return {"backend": self.backend, "wall_s": round(self.wall_s, 3), "counts": self.counts(),
                "cells": [dict(asdict(o.cell), status=o.status, path=o.path, error=o.error, wall_s=o.wall_s)
                          for o in self.outcomes], "boards": self.boards, "tracking_uri": self.tracking_uri,
                "shared_work_s": self.shared_s}

    def text(self) -> str:
        c = self.counts()
        hours = self.wall_s / 3600
        rate = f", {c['done'] / hours:.0f} cells/hour" if c["done"] and hours > 0 else ""
        lines = [f"sweep ({self.backend}): {c['done']} computed, {c['skipped']} already done, {c['failed']} failed "
                 f"in {self.wall_s:.0f} s{rate}"]
        for o in self.outcomes:
            if o.status == "done":
                lines.append(f"  done   {o.cell.label()}: {o.wall_s:.0f} s -> {o.path}")
        for k, v in self.shared_s.items():
            lines.append(f"  shared work {k}: {v:.0f} s (once for all its models)")
        for o in self.failed:
            lines.append(f"  FAILED {o.cell.label()}: {o.error}")
        for b in self.boards:
            lines.append(f"  leaderboard: {b}")
        if self.tracking_uri:
            lines.append(f"  MLflow: mlflow ui --backend-store-uri {self.tracking_uri}")
        return "\n".join(lines)


def _error_line(e: BaseException) -> str:
    """One line for a failed cell: the innermost mrsbench error's message where there is one."""
    cause = getattr(e, "cause", None) or e   # ray.exceptions.RayTaskError carries the original as .cause
    msg = str(cause).strip().splitlines()
    text = msg[0] if isinstance(cause, MRSBenchError) and msg else f"{type(cause).__name__}: {' '.join(msg)[:300]}"
    return text[:400]


def _backend(spec: SweepSpec) -> str:
    if spec.backend not in ("auto", "ray", "local"):
        raise InputError("sweep", f"unknown backend {spec.backend!r}; choose auto, ray or local")
    if spec.backend == "local":
        if spec.address:
            raise InputError("sweep", "--address needs the Ray backend")
        return "local"
    try:
        import ray  # noqa: F401
        return "ray"
    except ImportError:
        if spec.backend == "ray" or spec.address:
            raise InputError("sweep", "Ray is not installed: pip install 'mrsbench[ray]' (or use --backend local)") from None
        return "local"


def _note(msg: str) -> None:
    import sys
    print(msg, file=sys.stderr)


def run_sweep(spec: SweepSpec, progress: bool = True, log=_note) -> SweepReport:
    """Run every cell of ``spec`` that has no valid results file yet; a failing cell is reported and
    the others complete."""
    from mrsbench.generators import registry
    from mrsbench.harness.protocol import get_preset

    t0 = time.perf_counter()
    root = Path(spec.root)
    if len(spec.datasets) == 1 and len(spec.presets) == 1:   # --root may be that board's own folder
        from mrsbench.boards.submit import board_folder
        if board_folder(root, spec.datasets[0], spec.presets[0]) == root:
            root = root.parent.parent
    for p in spec.presets:
        get_preset(p)   # unknown presets fail before anything runs
    if not spec.models:
        raise InputError("sweep", "no models given")
    plugins = [str(Path(p).resolve()) if str(p).endswith(".py") or Path(p).is_file() else str(p)
               for p in spec.plugins]
    from mrsbench.core.files import reap_stale
    from mrsbench.harness.checks import check_dataset_name, check_output_folder, check_seeds
    check_output_folder(root, "--root")
    if spec.seeds is not None:
        check_seeds(spec.seeds, "--seeds")
    for d in spec.datasets:
        check_dataset_name(d, "--datasets")
    registry.check_plugins(plugins)   # each plugin imports and registers at least one generator
    from mrsbench.generators.settings import split_label
    for m in spec.models:
        registry.get(split_label(m)[0])   # an unknown generator is a one-line error before anything runs
    cells = spec.cells()   # settings checked against each generator's declared ones (one line each)
    for folder in sorted({c.path(root).parent for c in cells}):
        reap_stale(folder)   # staging files a killed sweep left (SIGKILL)
    outcomes: dict[Cell, CellOutcome] = {}
    todo = []
    for c in cells:
        prob = existing_problem(c, root)
        if prob is None:
            outcomes[c] = CellOutcome(c, "skipped", str(c.path(root)))
        else:
            todo.append(c)
    backend = _backend(spec)
    from mrsbench.sweep.tracking import SweepTracker
    tracker = SweepTracker(spec, root, backend, len(cells)) if spec.track and todo else None
    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc=f"mrsbench sweep ({backend})", unit="cell")

    def finished(o: CellOutcome, results=None):
        outcomes[o.cell] = o
        if tracker is not None:
            tracker.cell(o, results)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{o.cell.model} seed {o.cell.seed}: {o.status}")

    shared_times: dict = {}   # local backend: seconds of each group's shared work (incl. reading the cache)
    try:
        if todo:
            if backend == "ray":
                _run_ray(spec, todo, plugins, root, finished, log)
            else:
                _run_local(spec, todo, plugins, root, finished, shared_times)
    finally:
        if bar is not None:
            bar.close()
        if tracker is not None:
            tracker.close(outcomes, time.perf_counter() - t0)
    report = SweepReport(backend, [outcomes[c] for c in cells], time.perf_counter() - t0,
                         tracking_uri=tracker.uri if tracker is not None else None,
                         shared_s={"/".join(map(str, k)): v for k, v in shared_times.items()})
    if spec.leaderboard:
        from mrsbench.boards.leaderboard import write_leaderboard
        folders = sorted({c.path(root).parent for c in cells if outcomes[c].status in ("done", "skipped")})
        for f in folders:
            report.boards.append(str(write_leaderboard(f)))
    return report


def _run_local(spec, todo, plugins, root, finished, shared_times: dict) -> None:
    """Sequential, in this process: one group's shared work, then its models' cells."""
    groups: dict = {}
    for c in todo:
        groups.setdefault((c.dataset, c.preset, c.seed), []).append(c)
    for (d, p, s), cells in groups.items():
        try:
            t = time.perf_counter()
            shared = shared_task(d, p, s, cpus=0)
            shared_times[(d, p, s)] = round(time.perf_counter() - t, 1)
        except Exception as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            for c in cells:
                finished(CellOutcome(c, "failed", error=_error_line(e)))
            continue
        for c in cells:
            t = time.perf_counter()
            try:
                results, figs = cell_task(c, plugins, shared, cpus=0)
            except Exception as e:
                finished(CellOutcome(c, "failed", error=_error_line(e), wall_s=round(time.perf_counter() - t, 1)))
                continue
            path = publish(c, root, results, figs)
            finished(CellOutcome(c, "done", str(path), wall_s=results["wall_time_s"]["total"]), results)


def _run_ray(spec, todo, plugins, root, finished, log) -> None:
    import ray

    started = False
    if not ray.is_initialized():
        kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if spec.address:
            ray.init(address=spec.address, **kw)
        else:
            # the workers of the embedded cluster inherit the driver's environment (MRSBENCH_*, MLFLOW_*): its
            # raylet is this process's child. No runtime_env: a job-level one keeps the workers Ray starts with
            # the cluster from taking tasks and makes it start others (measured: 1-2 s of a 36 s tiny sweep)
            ray.init(num_cpus=spec.workers or os.cpu_count(), **kw)
        started = True
    try:
        have_gpu = ray.cluster_resources().get("GPU", 0) > 0
        from mrsbench.generators import registry
        from mrsbench.generators.settings import split_label
        shared_remote = ray.remote(shared_task)
        cell_remote = ray.remote(cell_task)
        groups: dict = {}
        pending = {}
        warned: set = set()
        for c in todo:
            key = (c.dataset, c.preset, c.seed)
            if key not in groups:
                groups[key] = shared_remote.options(num_cpus=spec.cpus_per_cell, max_retries=0).remote(
                    c.dataset, c.preset, c.seed, spec.cpus_per_cell)
            gpus = spec.gpus_per_cell
            if gpus is None:
                gpus = float(getattr(registry.get(split_label(c.model)[0]), "resources", {}).get("num_gpus", 0))
            if gpus and not have_gpu:
                if c.model not in warned:
                    log(f"note: {c.model} asks for a GPU but the Ray cluster has none; its cells run on CPU")
                    warned.add(c.model)
                gpus = 0
            ref = cell_remote.options(num_cpus=spec.cpus_per_cell, num_gpus=gpus, max_retries=0).remote(
                c, plugins, groups[key], spec.cpus_per_cell)
            pending[ref] = (c, time.perf_counter())
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                c, t = pending.pop(ref)
                try:
                    results, figs = ray.get(ref)
                except Exception as e:
                    finished(CellOutcome(c, "failed", error=_error_line(e), wall_s=round(time.perf_counter() - t, 1)))
                    continue
                path = publish(c, root, results, figs)
                finished(CellOutcome(c, "done", str(path), wall_s=results["wall_time_s"]["total"]), results)
    finally:
        if started:
            ray.shutdown()
