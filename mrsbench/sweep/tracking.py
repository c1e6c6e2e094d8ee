"""MLflow for `mrsbench sweep`, logged from the driver: one parent run per sweep, a nested run per cell."""
from __future__ import annotations

import os
import time
from pathlib import Path


def default_store(root: Path) -> Path:
    """The folder of a sweep's default MLflow store (mlflow.db, mlartifacts/): the results root's parent."""
    return Path(root).resolve().parent


class SweepTracker:
    """One parent MLflow run for the sweep, a nested run per computed or failed cell, logged from the
    driver (workers on other nodes need no access to the tracking store)."""

    def __init__(self, spec, root: Path, backend: str, n_cells: int):
        import logging
        import warnings
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logging.getLogger("alembic").setLevel(logging.ERROR)
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")   # mlflow resets its loggers to INFO on import
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mlflow
        self.mlflow = mlflow
        env_uri = os.environ.get("MLFLOW_TRACKING_URI")
        # default store beside the results root, never inside it: a board root holds results only (MLflow's
        # artifact copies of results files would otherwise be read as results). runs/sweep -> runs/mlflow.db, the
        # store `mrsbench run --out runs` logs to; --root leaderboards -> ./mlflow.db
        store = default_store(root)
        store.mkdir(parents=True, exist_ok=True)
        self.uri = spec.tracking_uri or env_uri or f"sqlite:///{store / 'mlflow.db'}"
        self.client = mlflow.MlflowClient(tracking_uri=self.uri)
        name = "mrsbench-sweep"
        exp = self.client.get_experiment_by_name(name)
        local = self.uri.startswith(("sqlite:", "file:"))
        exp_id = exp.experiment_id if exp else self.client.create_experiment(
            name, artifact_location=(store / "mlartifacts").as_uri() if local else None)
        self.exp_id = exp_id
        from mrsbench.core.files import owner_tag
        from mrsbench.harness.tracking import close_orphaned_runs
        close_orphaned_runs(self.client, exp_id)   # parents of sweeps killed with SIGKILL
        self.parent = self.client.create_run(exp_id, run_name=f"sweep-{time.strftime('%Y%m%d-%H%M%S')}",
                                             tags={"mrsbench.backend": backend, "mrsbench.owner": owner_tag()})
        pid = self.parent.info.run_id
        self.client.log_param(pid, "models", ",".join(spec.models))
        self.client.log_param(pid, "datasets", ",".join(spec.datasets))
        self.client.log_param(pid, "presets", ",".join(spec.presets))
        self.client.log_param(pid, "seeds", "preset" if spec.seeds is None else ",".join(map(str, spec.seeds)))
        self.client.log_param(pid, "cells", n_cells)

    def cell(self, o, results: dict | None) -> None:
        from mlflow.entities import Metric, Param
        c = self.client
        r = c.create_run(self.exp_id, run_name=f"{o.cell.model}-{o.cell.dataset}-{o.cell.preset}-seed{o.cell.seed}",
                         tags={"mlflow.parentRunId": self.parent.info.run_id})
        rid = r.info.run_id
        ts = int(time.time() * 1000)
        params = [Param("model", o.cell.model), Param("dataset", o.cell.dataset), Param("preset", o.cell.preset),
                  Param("seed", str(o.cell.seed))]
        metrics = []
        if results is not None:
            params += [Param("harness_version", results["harness_version"]), Param("dataset_hash", str(results["dataset_hash"]))]
            metrics = [Metric(k, float(v), ts, 0) for k, v in results["metrics"].items() if v is not None]
            metrics += [Metric(f"wall_time_s.{k}", float(v), ts, 0) for k, v in results["wall_time_s"].items()]
        c.log_batch(rid, metrics=metrics, params=params)
        if o.path:
            c.log_artifact(rid, o.path)
        if o.error:
            c.set_tag(rid, "error", o.error[:4000])
        c.set_terminated(rid, "FINISHED" if o.status == "done" else "FAILED")

    def close(self, outcomes: dict, wall_s: float) -> None:
        pid = self.parent.info.run_id
        counts = {"done": 0, "skipped": 0, "failed": 0}
        for o in outcomes.values():
            counts[o.status] += 1
        for k, v in counts.items():
            self.client.log_metric(pid, f"cells_{k}", v)
        self.client.log_metric(pid, "wall_time_s", wall_s)
        if counts["done"] and wall_s > 0:
            self.client.log_metric(pid, "cells_per_hour", counts["done"] / wall_s * 3600)
        self.client.set_terminated(pid, "FINISHED" if not counts["failed"] else "FAILED")
