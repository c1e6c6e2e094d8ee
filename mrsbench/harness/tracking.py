"""MLflow tracking of one run: the run (FAILED if writing fails), its params, metrics, results file and
figures, and one nested run per short-scan size n. Sweeps log from the driver: :mod:`mrsbench.sweep.tracking`."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


@contextmanager
def mlflow_run(results: dict, out_root: Path):
    """An MLflow run for ``results`` (FAILED if the block raises). Tracking store: $MLFLOW_TRACKING_URI or
    sqlite OUT/mlflow.db; artifacts of a new experiment in the local store go to OUT/mlartifacts
    (not ./mlruns of the current folder)."""
    import logging
    import os
    import warnings
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")   # mlflow resets its loggers to INFO on import
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow
    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    out_root = Path(out_root).resolve()
    uri = env_uri or f"sqlite:///{out_root / 'mlflow.db'}"
    out_root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI: restore the user's setting, or a
    # later run in this process (another --out) would log into this run's store
    if env_uri is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = env_uri
    name = f"mrsbench-{results['dataset']}-{results['preset_name']}"
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        art = None if env_uri and not env_uri.startswith(("sqlite:", "file:")) else (out_root / "mlartifacts").as_uri()
        exp_id = mlflow.create_experiment(name, artifact_location=art)
    else:
        exp_id = exp.experiment_id
    results["mlflow_tracking_uri"] = uri
    close_orphaned_runs(mlflow.MlflowClient(tracking_uri=uri), exp_id)
    from mrsbench.core.files import owner_tag
    with mlflow.start_run(run_name=results["run_id"], experiment_id=exp_id,
                          tags={"mrsbench.owner": owner_tag()}) as active:
        yield active


def close_orphaned_runs(client, exp_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs of this experiment that a process of this host started and that no longer
    runs (killed with SIGKILL, which runs no clean-up; tag ``mrsbench.owner`` = HOST~PID). Returns their ids."""
    from mrsbench.core.files import pid_alive, owner_tag
    host = owner_tag().split("~")[0]
    out = []
    try:
        runs = client.search_runs([exp_id], filter_string="attributes.status = 'RUNNING'", max_results=200)
    except Exception:   # a store that cannot be searched: nothing to close
        return out
    for r in runs:
        h, _, pid = str(r.data.tags.get("mrsbench.owner", "")).partition("~")
        if h == host and pid.isdigit() and not pid_alive(int(pid)):
            client.set_terminated(r.info.run_id, "KILLED")
            out.append(r.info.run_id)
    return out


def mlflow_log(results: dict, run_dir: Path, figures) -> None:
    """Params, metrics, results.json and figures into the active MLflow run, one nested run per n."""
    import mlflow
    mlflow.log_params({"model": results["model"], "dataset": results["dataset"], "dataset_hash": results["dataset_hash"],
                       "preset": results["preset_name"], "seed": results["seed"],
                       "harness_version": results["harness_version"]})
    mlflow.log_metrics({k: v for k, v in results["metrics"].items() if v is not None})
    mlflow.log_metrics({f"wall_time_s.{k}": v for k, v in results["wall_time_s"].items()})
    mlflow.log_artifact(str(run_dir / "results.json"))
    for f in figures:
        mlflow.log_artifact(str(f))
    # one nested run per short-scan size n, so application/quantification can be compared across n
    for n in results["preset"]["n_values"]:
        with mlflow.start_run(run_name=f"{results['run_id']}-n{n}", nested=True):
            mlflow.log_params({"model": results["model"], "n": n})
            pref = f"application.n{n}."
            mlflow.log_metrics({k[len(pref):]: v for k, v in results["metrics"].items()
                                if k.startswith(pref) and v is not None})


