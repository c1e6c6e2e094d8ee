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
from pathlib import Path

from mrsbench.core.files import atomic_path
from mrsbench.core.errors import InputError
from mrsbench.sweep.report import CellOutcome, SweepReport, _error_line  # noqa: F401  (re-exported)
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
    t0 = time.time()
    sw = shared_for(cell_data(dataset, pr, seed, progress=False), pr, seed, progress=False)
    sw.computed_on = {"node": _node(), "start": t0, "end": time.time()}   # the sweep's timeline (not pickled work)
    return sw


def _node() -> str:
    """The Ray node this runs on (first 12 hex digits of its id), or "local" outside Ray."""
    try:
        import ray
        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()[:12]
    except ImportError:
        pass
    return "local"


def cell_task(cell: Cell, plugins: list[str], shared=None, cpus: float = 1.0) -> tuple[dict, dict, dict]:
    """Run one cell exactly as ``mrsbench run`` does (untracked, into a temporary folder). Returns
    (results document, {figure file name: bytes}, where and when it ran: node, start and end wall-clock times, the
    shared work's)."""
    t0 = time.time()
    from mrsbench.generators import registry
    from mrsbench.harness.evaluator import run
    if cpus:
        _limit_threads(cpus)
    registry.load_plugins(plugins)
    with tempfile.TemporaryDirectory() as tmp:
        results, run_dir = run(cell.model, dataset=cell.dataset, preset=cell.preset, seed=cell.seed, out=tmp,
                               plugins=plugins, progress=False, track=False, shared=shared)
        figs = {f: (run_dir / f).read_bytes() for f in results.get("figures", [])}
    return results, figs, {"node": _node(), "start": t0, "end": time.time(),
                           "shared": getattr(shared, "computed_on", None)}


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
    timeline = {"wall0": time.time() - (time.perf_counter() - t0), "shared": {}}
    try:
        if todo:
            if backend == "ray":
                _run_ray(spec, todo, plugins, root, finished, log, timeline)
            else:
                _run_local(spec, todo, plugins, root, finished, shared_times, timeline)
    finally:
        if bar is not None:
            bar.close()
        if tracker is not None:
            tracker.close(outcomes, time.perf_counter() - t0)
    report = SweepReport(backend, [outcomes[c] for c in cells], time.perf_counter() - t0,
                         tracking_uri=tracker.uri if tracker is not None else None,
                         shared_s={"/".join(map(str, k)): v for k, v in shared_times.items()},
                         shared_timeline={k: {a: b for a, b in v.items() if a != "_seen"}
                                          for k, v in timeline["shared"].items()})
    if spec.leaderboard:
        from mrsbench.boards.leaderboard import write_leaderboard
        folders = sorted({c.path(root).parent for c in cells if outcomes[c].status in ("done", "skipped")})
        for f in folders:
            report.boards.append(str(write_leaderboard(f)))
    return report


def _done(c: Cell, path, results: dict, info: dict, timeline: dict) -> CellOutcome:
    """A computed cell's outcome, placed on the sweep's timeline (seconds from its start; its group's shared work
    too, the first time a cell reports it)."""
    w0 = timeline["wall0"]
    sh = info.get("shared")
    if sh:   # "computed": how many times the group's shared work was computed (1: once for the whole cluster)
        g = timeline["shared"].setdefault("/".join(map(str, (c.dataset, c.preset, c.seed))), {
            "node": sh["node"], "start_s": round(sh["start"] - w0, 1), "end_s": round(sh["end"] - w0, 1),
            "computed": 0, "_seen": []})
        if (sh["node"], sh["start"]) not in g["_seen"]:
            g["_seen"].append((sh["node"], sh["start"]))
            g["computed"] += 1
    return CellOutcome(c, "done", str(path), wall_s=results["wall_time_s"]["total"], node=info["node"],
                       start_s=round(info["start"] - w0, 1), end_s=round(info["end"] - w0, 1))


def _run_local(spec, todo, plugins, root, finished, shared_times: dict, timeline: dict) -> None:
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
                results, figs, info = cell_task(c, plugins, shared, cpus=0)
            except Exception as e:
                finished(CellOutcome(c, "failed", error=_error_line(e), wall_s=round(time.perf_counter() - t, 1)))
                continue
            path = publish(c, root, results, figs)
            finished(_done(c, path, results, info, timeline), results)


class _Placer:
    """Round-robin over the alive nodes' cell slots (CPUs // CPUs per cell; GPU cells over the nodes with GPUs),
    interleaved by node, as soft node affinity that spills to another node when the chosen one is busy."""

    def __init__(self, ray, cpus_per_cell: float):
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        per = max(cpus_per_cell, 1e-9)
        self.slots = self._interleave({n["NodeID"]: int(n["Resources"].get("CPU", 0) // per) for n in nodes})
        self.gpu_slots = self._interleave({n["NodeID"]: int(n["Resources"].get("GPU", 0)) for n in nodes})
        self.i = {False: 0, True: 0}

    @staticmethod
    def _interleave(counts: dict) -> list:
        out, k = [], 0
        while any(c > k for c in counts.values()):
            out += [n for n, c in counts.items() if c > k]
            k += 1
        return out

    def next(self, gpus: float):
        slots = self.gpu_slots if gpus else self.slots
        if len(set(slots)) < 2:
            return "DEFAULT"   # one node: nothing to place
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        node = slots[self.i[bool(gpus)] % len(slots)]
        self.i[bool(gpus)] += 1
        try:
            return NodeAffinitySchedulingStrategy(node, soft=True, _spill_on_unavailable=True)
        except TypeError:   # a Ray without the spill option: soft affinity alone
            return NodeAffinitySchedulingStrategy(node, soft=True)


def _run_ray(spec, todo, plugins, root, finished, log, timeline: dict) -> None:
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
            # address="local": a new instance even where `ray start` left a cluster on this machine (ray.init()
            # alone would join that one, and refuse num_cpus)
            ray.init(address="local", num_cpus=spec.workers or os.cpu_count(), **kw)
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
        placer = _Placer(ray, spec.cpus_per_cell)
        for c in todo:
            key = (c.dataset, c.preset, c.seed)
            if key not in groups:
                # max_retries: system failures only (a node lost; application errors are not retried): the shared
                # work lives in the cluster's object store, and a copy lost with its node is recomputed (lineage)
                groups[key] = shared_remote.options(num_cpus=spec.cpus_per_cell, max_retries=2).remote(
                    c.dataset, c.preset, c.seed, spec.cpus_per_cell)
            gpus = spec.gpus_per_cell
            if gpus is None:
                gpus = float(getattr(registry.get(split_label(c.model)[0]), "resources", {}).get("num_gpus", 0))
            if gpus and not have_gpu:
                if c.model not in warned:
                    log(f"note: {c.model} asks for a GPU but the Ray cluster has none; its cells run on CPU")
                    warned.add(c.model)
                gpus = 0
            # placement: cells are CPU-bound and minutes long; Ray's own policies left a free node idle while cells
            # queued on another (measured on a two-node cluster, tests/test_sweep.py), so each cell is given a node
            # round-robin over the nodes' cell slots, softly (a busy or lost node's cell runs elsewhere); a cell on
            # a node that dies is run again (max_retries: system failures only, a generator's error fails at once)
            ref = cell_remote.options(num_cpus=spec.cpus_per_cell, num_gpus=gpus, max_retries=2,
                                      scheduling_strategy=placer.next(gpus)).remote(
                c, plugins, groups[key], spec.cpus_per_cell)
            pending[ref] = (c, time.perf_counter())
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                c, t = pending.pop(ref)
                try:
                    results, figs, info = ray.get(ref)
                except Exception as e:
                    finished(CellOutcome(c, "failed", error=_error_line(e), wall_s=round(time.perf_counter() - t, 1)))
                    continue
                path = publish(c, root, results, figs)
                finished(_done(c, path, results, info, timeline), results)
    finally:
        if started:
            ray.shutdown()
