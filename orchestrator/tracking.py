"""MLflow: the tracking URI, one parent run per sweep and one child run per trial.

- Tracking URI: ``--mlflow-uri`` (``http://head:5000`` on a cluster, ``sqlite:///x.db``, or a
  path ending in ``.db``), default ``mlflow.db`` in the working directory. The driver resolves
  it to an absolute ``sqlite:////abs/path/mlflow.db`` (workers run elsewhere) and hands it to
  the trials. MLflow 3.17 disables plain-directory stores; a directory is refused with the fix.
- The driver creates the database and the experiment (= the spec's ``name``) before any trial
  starts: SQLite schema creation from several workers at once races.
- Parent run: one per sweep, its id kept in ``RESULTS/<name>/sweep.json`` so ``--resume``
  reuses it. Child run: one per trial, run name = trial id, tags ``mlflow.parentRunId``,
  ``trial_id``, ``sweep_id``, ``mlflow.source.git.commit``; params = the flat resolved config;
  metrics at every report step and final; artifacts ``spec.yaml`` and ``trial_config.json``.
  A retried or resumed trial finds its child by the ``trial_id`` tag and continues it.
- Only ``MlflowClient`` with explicit run ids: no global active-run state in workers.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
#: tag keys (besides mlflow.parentRunId)
TAG_TRIAL, TAG_SWEEP, TAG_STATUS = "trial_id", "sweep_id", "status"
MAX_TAG = 5000


class TrackingError(ValueError):
    """A tracking URI that cannot work; the message says what to pass instead."""


def resolve_tracking_uri(uri: str | None, cwd: str | os.PathLike[str] | None = None) -> str:
    """The absolute tracking URI the workers get.

    ``None`` -> ``sqlite:////<cwd>/mlflow.db``; ``sqlite:///rel.db`` and ``path/x.db`` ->
    absolute sqlite; ``http(s)://``, ``databricks`` and other schemes unchanged; a directory or
    ``file:`` store -> :class:`TrackingError` (disabled in MLflow 3.17).
    """
    base = Path(cwd or os.getcwd())
    if uri is None or uri == "":
        return f"sqlite:///{(base / 'mlflow.db').resolve()}"
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :]
        if not path.startswith("/"):
            path = str((base / path).resolve())
        return f"sqlite:///{path}"
    if uri.startswith("file:") or ("://" not in uri and not uri.endswith(".db")):
        raise TrackingError(
            f"--mlflow-uri {uri!r}: MLflow 3.17 no longer tracks to plain directories; pass "
            "sqlite:///path/mlflow.db (or a path ending in .db) or http://host:5000"
        )
    if "://" not in uri:
        return f"sqlite:///{(base / uri).resolve()}"
    return uri


#: seconds a SQLite connection waits for another writer's lock before "database is locked"
SQLITE_BUSY_TIMEOUT_S = 60.0


def prepare_sqlite(tracking_uri: str) -> None:
    """A local SQLite tracking store in WAL mode, before MLflow creates its schema.

    Write-ahead logging lets readers (the UI, the driver's queries) go on while a trial writes,
    and writers queue on the lock instead of failing: every connection waits for it (MLflow's
    sessions set ``PRAGMA busy_timeout = 20000``; this one :data:`SQLITE_BUSY_TIMEOUT_S`), and
    :func:`retry` backs off beyond that. The mode is a property of the file, set once here.
    WAL needs a local disk (not NFS): on a cluster use the PostgreSQL server (cluster.yaml).
    No-op for other URIs.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return
    import sqlite3

    path = Path(tracking_uri[len("sqlite:///") :])
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def artifact_location(tracking_uri: str) -> str | None:
    """Where a new experiment keeps artifacts: next to a SQLite file (``<dir>/mlartifacts``,
    absolute, so workers with another working directory agree); the server's default else."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def retry(fn: Callable[[], T], attempts: int = 8, first_wait: float = 0.2) -> T:
    """``fn()``, retried with exponential back-off: SQLite answers "database is locked" while
    another worker writes."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(first_wait * 2**attempt)
    raise AssertionError("unreachable")


def client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` on ``tracking_uri`` (MLflow imported lazily: it is slow to import)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def git_commit(path: str | os.PathLike[str] | None = None) -> str:
    """``git rev-parse HEAD`` of the repository holding ``path`` (this package); ``unknown``."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def ensure_experiment(tracking_uri: str, name: str) -> str:
    """The id of experiment ``name``, created (with its database) when missing."""
    prepare_sqlite(tracking_uri)
    mlflow = client(tracking_uri)
    experiment = retry(lambda: mlflow.get_experiment_by_name(name))
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            retry(lambda: mlflow.restore_experiment(experiment.experiment_id))
        return experiment.experiment_id
    try:
        return mlflow.create_experiment(name, artifact_location=artifact_location(tracking_uri))
    except Exception:  # created meanwhile by someone else
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def start_parent_run(
    tracking_uri: str, experiment_id: str, name: str, sweep_id: str, commit: str, spec_text: str
) -> str:
    """Create the sweep's parent run (tags ``sweep_id``, git commit; artifact ``spec.yaml``)."""
    mlflow = client(tracking_uri)
    run = retry(
        lambda: mlflow.create_run(
            experiment_id,
            run_name=name,
            tags={TAG_SWEEP: sweep_id, "mlflow.source.git.commit": commit, "git_commit": commit},
        )
    )
    retry(lambda: mlflow.log_text(run.info.run_id, spec_text, "spec.yaml"))
    return run.info.run_id


def reopen_run(tracking_uri: str, run_id: str) -> None:
    """Mark an earlier run RUNNING again (a resumed sweep's parent)."""
    mlflow = client(tracking_uri)
    retry(lambda: mlflow.update_run(run_id, status="RUNNING"))


def finish_run(tracking_uri: str, run_id: str, status: str = "FINISHED") -> None:
    """End a run: FINISHED, FAILED or KILLED."""
    mlflow = client(tracking_uri)
    retry(lambda: mlflow.set_terminated(run_id, status=status))


def log_artifacts(tracking_uri: str, run_id: str, local_dir: str, artifact_path: str) -> None:
    mlflow = client(tracking_uri)
    retry(lambda: mlflow.log_artifacts(run_id, local_dir, artifact_path))


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The metrics MLflow can hold: numbers and bools as floats (non-finite kept: MLflow
    stores NaN and inf)."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or (
            isinstance(value, int | float) and not isinstance(value, bool)
        ):
            out[key] = float(value)
    return out


def find_child_runs(tracking_uri: str, experiment_id: str, parent_run_id: str) -> list[Any]:
    """Every child run of ``parent_run_id`` (for tests and summaries)."""
    mlflow = client(tracking_uri)
    return retry(
        lambda: mlflow.search_runs(
            [experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
            max_results=10000,
        )
    )


class TrialTracker:
    """The child run of one trial, driven with explicit run ids."""

    def __init__(
        self,
        tracking_uri: str,
        experiment_id: str,
        parent_run_id: str,
        trial_id: str,
        sweep_id: str,
        commit: str,
    ):
        self.uri, self.experiment_id, self.parent = tracking_uri, experiment_id, parent_run_id
        self.trial_id, self.sweep_id, self.commit = trial_id, sweep_id, commit
        self.client = client(tracking_uri)
        self.run_id: str | None = None
        self.last_step = -1

    def start(self, config: Mapping[str, Any], spec_text: str | None = None) -> str:
        """Find this trial's child run (a retry or resume) or create it; log params once."""
        found = retry(
            lambda: self.client.search_runs(
                [self.experiment_id],
                filter_string=(
                    f"tags.mlflow.parentRunId = '{self.parent}' and tags.{TAG_TRIAL} = "
                    f"'{self.trial_id}'"
                ),
                max_results=1,
            )
        )
        if found:
            self.run_id = found[0].info.run_id
            retry(lambda: self.client.update_run(self.run_id, status="RUNNING"))
            return self.run_id
        tags = {
            "mlflow.parentRunId": self.parent,
            TAG_TRIAL: self.trial_id,
            TAG_SWEEP: self.sweep_id,
            "mlflow.source.git.commit": self.commit,
            "git_commit": self.commit,
        }
        run = retry(
            lambda: self.client.create_run(self.experiment_id, run_name=self.trial_id, tags=tags)
        )
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        params = [Param(k, str(v)) for k, v in sorted(config.items())]
        for i in range(0, len(params), 100):
            retry(lambda i=i: self.client.log_batch(self.run_id, params=params[i : i + 100]))
        retry(lambda: self.client.log_dict(self.run_id, dict(config), "trial_config.json"))
        if spec_text is not None:
            retry(lambda: self.client.log_text(self.run_id, spec_text, "spec.yaml"))
        return self.run_id

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log a report: ``step`` (else the report's ``step``/``epoch``, else the next index)."""
        from mlflow.entities import Metric

        if step is None:
            step = metrics.get("step", metrics.get("epoch"))
            step = int(step) if isinstance(step, int | float) and math.isfinite(step) else None
        if step is None:
            step = self.last_step + 1
        self.last_step = max(self.last_step, step)
        now = int(time.time() * 1000)
        values = [Metric(k, v, now, step) for k, v in numeric_metrics(metrics).items()]
        if values:
            retry(lambda: self.client.log_batch(self.run_id, metrics=values))

    def finish(
        self, status: str, metrics: Mapping[str, Any], error: str | None, traceback: str | None
    ) -> None:
        """Final metrics (at the last step), tags ``status``/``error``, end the run (FAILED for
        status ``failed``, else FINISHED)."""
        self.log_metrics(metrics, step=max(self.last_step, 0))
        tags = {TAG_STATUS: status}
        if error:
            tags["error"] = error[:MAX_TAG]
        for key, value in tags.items():
            retry(lambda key=key, value=value: self.client.set_tag(self.run_id, key, value))
        if traceback:
            retry(lambda: self.client.log_text(self.run_id, traceback, "traceback.txt"))
        retry(
            lambda: self.client.set_terminated(
                self.run_id, status="FAILED" if status == "failed" else "FINISHED"
            )
        )
