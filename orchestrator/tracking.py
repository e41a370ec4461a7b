"""MLflow: the tracking URI, one parent run per sweep and one child run per trial.

- Tracking URI: ``--mlflow-uri`` (``http://head:5000`` on a cluster, ``sqlite:///x.db``, or a
  path ending in ``.db``), default ``mlflow.db`` in the working directory. The driver resolves
  it to an absolute ``sqlite:////abs/path/mlflow.db`` (workers run elsewhere) and hands it to
  the trials. MLflow 3.17 disables plain-directory stores; a directory is refused with the fix.
- The driver creates the database and the experiment (= the spec's ``name``) before any trial
  starts: SQLite schema creation from several workers at once races. The experiment carries
  ``mlflow.experimentKind = custom_model_development`` (set again on ``--resume``), the kind
  MLflow 3.17's UI gives model-training experiments: it opens them on the runs table, not on
  the GenAI traces overview.
- Parent run: one per sweep, its id kept in ``RESULTS/<name>/sweep.json`` so ``--resume``
  reuses it. Child run: one per trial, named by what distinguishes it in the sweep
  (:func:`run_name`: ``block<8> vc seed=1``), tags ``mlflow.parentRunId``, ``trial_id``,
  ``sweep_id``, ``variant``, ``mlflow.source.git.commit``; params = the trial's effective
  configuration only (:func:`trial_params`: no unset keys, no overridden ones); metrics at every
  report's step (so MLflow's charts draw curves) and final; the spec is the parent's
  ``spec.yaml`` artifact and the whole resolved configuration is the trial's row in
  ``trials.parquet``. A retried or resumed trial reopens its child: the id recorded in
  ``RESULTS/<name>/mlflow_runs/<trial_id>`` once the child was made, else (a resumed sweep, a
  retry) the child found by its ``trial_id`` tag; a first attempt of a fresh sweep creates
  its child without searching (a search over every run costs more as the experiment grows).
- A trial's writes go through an :class:`orchestrator.outbox.Outbox`: a server outage never
  stalls a trial; what could not be sent is saved beside the results and caught up later.
- Only ``MlflowClient`` with explicit run ids: no global active-run state in workers.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.naming import FORMAT_KEYS, child_name, run_name, trial_params

__all__ = ["FORMAT_KEYS", "child_name", "run_name", "trial_params"]  # named here before naming.py

T = TypeVar("T")
#: tag keys (besides mlflow.parentRunId)
TAG_TRIAL, TAG_SWEEP, TAG_STATUS, TAG_VARIANT = "trial_id", "sweep_id", "status", "variant"
MAX_TAG = 5000
#: where each trial's child run id is recorded, relative to the sweep directory
RUNS_DIR = "mlflow_runs"
#: the experiment tag MLflow 3.17's UI reads to choose an experiment's landing page, and the
#: value it gives model-training experiments (``ExperimentKind.CUSTOM_MODEL_DEVELOPMENT`` in
#: mlflow/server/js): the runs table ("Machine learning"), not the GenAI "Overview" of traces
EXPERIMENT_KIND_TAG, TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"
#: MLflow's own HTTP retries (default: 7, with minutes of back-off per call) kept short: the
#: outbox retries instead, without stalling the trial
HTTP_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # an int: MLflow 3.17 parses it with int()
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


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


@contextlib.contextmanager
def _first_use_lock(tracking_uri: str) -> Iterator[None]:
    """For a SQLite store, an exclusive ``flock`` on ``.<db>.init-lock`` beside it while a client
    is first made: MLflow creates and migrates the tables then, and two processes doing so at
    once fail ("duplicate column name"). Other stores: nothing."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    db = Path(tracking_uri[len("sqlite:///") :])
    fd = os.open(db.parent / f".{db.name}.init-lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` on ``tracking_uri`` (MLflow imported lazily: it is slow to import).
    MLflow's INFO lines on creating or migrating a SQLite store's tables are not shown (the
    sweep's own lines say where the store is)."""
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)

    if tracking_uri.startswith(("http://", "https://")):
        for key, value in HTTP_ENV.items():
            os.environ.setdefault(key, value)
    if tracking_uri.startswith("sqlite:///"):
        relax_sqlite_sync()
    return MlflowClient(tracking_uri=tracking_uri)


_RELAXED = False


def relax_sqlite_sync() -> None:
    """Every SQLite connection SQLAlchemy opens in this process on a WAL-mode file commits with
    ``PRAGMA synchronous = NORMAL``: in WAL mode a commit then appends to the log without an
    fsync (the log is synced at checkpoints), which is what made each MLflow write of a trial
    wait ~5-10 ms for the disk (bench.scale). A process killed at any point loses nothing
    committed and never corrupts the file; only an operating-system crash or power loss may roll
    back the last commits (SQLite's documented guarantee for WAL + NORMAL). Installed once."""
    global _RELAXED
    if _RELAXED:
        return
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_connect(connection: Any, _record: Any) -> None:
        if isinstance(connection, sqlite3.Connection):
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() == "wal":
                connection.execute("PRAGMA synchronous = NORMAL")

    event.listen(Engine, "connect", on_connect)
    _RELAXED = True


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
    """The id of experiment ``name``, created (with its database) when missing, and tagged as a
    model-training experiment (:data:`EXPERIMENT_KIND_TAG`) whether new or found."""
    prepare_sqlite(tracking_uri)
    with _first_use_lock(tracking_uri):  # two sweeps making one new database: one at a time
        mlflow = client(tracking_uri)
    try:
        experiment = retry(lambda: mlflow.get_experiment_by_name(name), attempts=3)
    except Exception as exc:
        raise TrackingError(
            f"MLflow at {tracking_uri} does not answer ({type(exc).__name__}); start the "
            "tracking server, or pass --mlflow-uri sqlite:///mlflow.db to track in a local file"
        ) from exc
    if experiment is None:
        try:
            experiment_id = mlflow.create_experiment(
                name,
                artifact_location=artifact_location(tracking_uri),
                tags={EXPERIMENT_KIND_TAG: TRAINING_KIND},
            )
        except Exception:  # created meanwhile by someone else
            experiment = mlflow.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment is not None:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            retry(lambda: mlflow.restore_experiment(experiment_id))
        if experiment.tags.get(EXPERIMENT_KIND_TAG) != TRAINING_KIND:
            retry(
                lambda: mlflow.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
            )
    return experiment_id


def experiment_url(
    tracking_uri: str,
    experiment_id: str,
    ui: str | None = None,
    sort: tuple[str, str] | None = None,
    view: str | None = None,
) -> str:
    """The experiment's runs table in the MLflow UI: on the server itself for an ``http(s)``
    URI, else on ``ui`` (where ``mlflow ui`` listens, default ``http://127.0.0.1:5000``).

    MLflow 3.17.2's UI picks an experiment's landing page from its own GenAI / Model training
    switch (kept per browser, GenAI until the user flips it), not from the experiment's kind
    tag, so the URL names the runs tab and ``workflowType=machine_learning``; ``sort`` =
    ``(metric, "min"|"max")`` orders the runs by that metric, which also lists the children
    flat (the UI nests them under their parent, collapsed, only when sorted by date).

    ``view``: the key of a saved view (:func:`view_state`, stored by :func:`share_view_op`):
    the UI then takes its filter, order and columns from it (and ignores ``sort``: a URL that
    names any of the filter or order keys makes MLflow 3.17 skip the saved view)."""
    base = tracking_uri if tracking_uri.startswith(("http://", "https://")) else ui
    query = "workflowType=machine_learning"
    if view is not None:
        query += f"&{VIEW_PARAM}={urllib.parse.quote(view, safe='')}"
    elif sort is not None:
        metric, mode = sort
        key = urllib.parse.quote(f"metrics.`{metric}`", safe="")
        query += f"&orderByKey={key}&orderByAsc={'true' if mode == 'min' else 'false'}"
    root = (base or "http://127.0.0.1:5000").rstrip("/")
    return f"{root}/#/experiments/{experiment_id}/runs?{query}"


#: the URL parameter and the experiment tag prefix of a saved view in MLflow 3.17's UI
#: (mlflow/server/js: ``viewStateShareKey``, ``mlflow.sharedViewState.<key>``): the tag's value
#: is the view as JSON, the runs table's filter and order (``searchFilter``, ``orderByKey``,
#: ``orderByAsc``) and its shown columns (``selectedColumns``); the UI refuses to take the
#: expanded, pinned or hidden runs from a saved view
VIEW_PARAM, VIEW_TAG_PREFIX = "viewStateShareKey", "mlflow.sharedViewState."
#: the tag each child run carries with its configuration's verdict; the parent run's value
#: (``answer: <configuration>``) sorts before every verdict, so ordering by it puts the parent
#: first
TAG_VERDICT = "verdict"


def view_state(sweep_id: str, objectives: Sequence[str]) -> dict[str, Any]:
    """The runs table of one sweep as the URL opens it: its runs only (``tags.sweep_id``),
    ordered by the ``verdict`` tag (the parent's ``answer: ...`` first, then baseline, better,
    equivalent, inconclusive, worse; runs without one last), with the verdict and the
    objectives as columns."""
    columns = [f"tags.`{TAG_VERDICT}`", *(f"metrics.`{m}`" for m in objectives)]
    return {
        "searchFilter": f"tags.{TAG_SWEEP} = '{sweep_id}'",
        "orderByKey": f"tags.`{TAG_VERDICT}`",
        "orderByAsc": True,
        "selectedColumns": columns,
    }


def share_view_op(experiment_id: str, sweep_id: str, objectives: Sequence[str]) -> dict[str, Any]:
    """The outbox operation that stores :func:`view_state` as the experiment's saved view
    ``sweep_id`` (the key :func:`experiment_url` names with ``view=sweep_id``)."""
    import json

    return {
        "op": "experiment_tag",
        "experiment_id": experiment_id,
        "key": f"{VIEW_TAG_PREFIX}{sweep_id}",
        "value": json.dumps(view_state(sweep_id, objectives)),
    }


def ui_command(tracking_uri: str) -> str:
    """The command that opens the MLflow UI on this store (a server URI needs none)."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri} (the tracking server serves the UI)"
    return f"mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1 --port 5000"


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
    return _child_runs(client(tracking_uri), experiment_id, parent_run_id, attempts=8)


def _child_runs(
    mlflow: Any,
    experiment_id: str,
    parent_run_id: str,
    condition: str = "",
    most: int = 10000,
    attempts: int = 3,
) -> list[Any]:
    """The child runs of ``parent_run_id`` that meet ``condition`` (an MLflow filter clause)."""
    where = f"tags.mlflow.parentRunId = '{parent_run_id}'"
    where += f" and {condition}" if condition else ""
    return retry(
        lambda: mlflow.search_runs([experiment_id], filter_string=where, max_results=most),
        attempts=attempts,
    )


def end_trial_run(
    tracking_uri: str,
    experiment_id: str,
    parent_run_id: str,
    trial_id: str,
    status: str,
    tags: Mapping[str, str],
) -> str | None:
    """End the child run of ``trial_id`` (found by its tag) with ``status`` (an MLflow run
    status) after setting ``tags``; returns its run id, None when it has none."""
    mlflow = client(tracking_uri)
    runs = _child_runs(mlflow, experiment_id, parent_run_id, f"tags.{TAG_TRIAL} = '{trial_id}'", 1)
    if not runs:
        return None
    run_id = runs[0].info.run_id
    for key, value in tags.items():
        retry(lambda key=key, value=value: mlflow.set_tag(run_id, key, value), attempts=3)
    retry(lambda: mlflow.set_terminated(run_id, status=status), attempts=3)
    return str(run_id)


def kill_running_children(tracking_uri: str, experiment_id: str, parent_run_id: str) -> int:
    """Mark every child run of the parent still RUNNING as KILLED (an interrupted sweep: Tune
    stopped those trials); a resumed trial finds its child again and sets it RUNNING. Returns
    how many were marked."""
    mlflow = client(tracking_uri)
    runs = _child_runs(mlflow, experiment_id, parent_run_id, "attributes.status = 'RUNNING'")
    for run in runs:
        retry(lambda run=run: mlflow.set_terminated(run.info.run_id, status="KILLED"), attempts=3)
    return len(runs)


def delete_empty_duplicates(
    tracking_uri: str, experiment_id: str, parent_run_id: str, named: Mapping[str, str]
) -> int:
    """Delete (MLflow's soft delete: ``mlflow gc`` purges it) every child run of a trial whose
    row names another run (``named``: trial id -> run id) and that holds no metric. Such a run
    is a late duplicate: a trial whose writer was still creating its run when the trial ended
    (a loaded machine: longer than ``TrialTracker``'s waits) saved its writes for the driver,
    which made the run, and the writer's creation landed afterwards. Returns how many."""
    mlflow = client(tracking_uri)
    deleted = 0
    for run in _child_runs(mlflow, experiment_id, parent_run_id):
        kept = named.get(run.data.tags.get(TAG_TRIAL, ""))
        if kept is None or run.info.run_id == kept or run.data.metrics:
            continue
        retry(lambda run=run: mlflow.delete_run(run.info.run_id), attempts=3)
        deleted += 1
    return deleted


class TrialTracker:
    """The child run of one trial, its writes sent through an :class:`Outbox` (a server outage
    never stalls the trial; see :mod:`orchestrator.outbox`).

    ``store`` (the sweep's :class:`orchestrator.store.ResultsStore`) is where writes still
    unsent when the trial ends are saved (``mlflow_pending/<trial_id>-<attempt key>.json``: one
    file per attempt, so a retried trial never overwrites what an earlier attempt left for the
    driver to send).
    """

    #: seconds ``start`` waits for the child run's id (a server away: the trial goes on and its
    #: row takes the id when it ends); ``finish`` waits for the last writes
    START_WAIT_S = 2.0
    FINISH_WAIT_S = 5.0
    #: what the driver's catching up (``orchestrator.backfill``) waits instead: no trial is
    #: held up there, and a loaded machine's SQLite write can take longer than a trial's waits
    PATIENT_WAIT_S = 60.0

    def __init__(
        self,
        tracking_uri: str,
        experiment_id: str,
        parent_run_id: str,
        trial_id: str,
        sweep_id: str,
        commit: str,
        store: Any = None,
        name_keys: Sequence[str] = (),
        search: bool = True,
        patient: bool = False,
    ):
        from orchestrator.outbox import Outbox

        self.uri, self.experiment_id, self.parent = tracking_uri, experiment_id, parent_run_id
        self.trial_id, self.sweep_id, self.commit = trial_id, sweep_id, commit
        self.store, self.name_keys, self.search = store, tuple(name_keys), search
        self.key = f"{trial_id}-{uuid.uuid4().hex[:8]}"
        self.outbox = Outbox(lambda: client(tracking_uri), on_run_id=self._record_run_id)
        self.last_step = -1
        self.start_wait_s = self.PATIENT_WAIT_S if patient else self.START_WAIT_S
        self.finish_wait_s = self.PATIENT_WAIT_S if patient else self.FINISH_WAIT_S

    def _record_path(self) -> str:
        return f"{RUNS_DIR}/{self.trial_id}"

    def _record_run_id(self, run_id: str) -> None:
        if self.store is not None:
            self.store.write_bytes(self._record_path(), run_id.encode())

    def recorded_run_id(self) -> str | None:
        """The child run an earlier attempt of this trial made (``mlflow_runs/<trial_id>``)."""
        data = None if self.store is None else self.store.read_bytes(self._record_path())
        return data.decode().strip() or None if data else None

    @property
    def run_id(self) -> str | None:
        return self.outbox.run_id

    def start(
        self, config: Mapping[str, Any], spec_text: str | None = None, wait: bool = True
    ) -> str | None:
        """Reopen this trial's child run (recorded, or found when ``search``) or create it;
        log params once. With ``wait``, returns its id, or None when the server did not answer
        within :data:`START_WAIT_S` (``patient``: :data:`PATIENT_WAIT_S`); without, returns at
        once (the run is made while the trial computes, and its id is known by
        :meth:`finish`)."""
        tags = {
            "mlflow.parentRunId": self.parent,
            TAG_TRIAL: self.trial_id,
            TAG_SWEEP: self.sweep_id,
            "mlflow.source.git.commit": self.commit,
            "git_commit": self.commit,
        }
        if config.get("variant"):
            tags[TAG_VARIANT] = str(config["variant"])
        self.outbox.put(
            {
                "op": "start",
                "experiment_id": self.experiment_id,
                "parent": self.parent,
                "trial_id": self.trial_id,
                "name": child_name(config, self.name_keys),
                "tags": tags,
                "spec_text": spec_text,
                "run_id": self.recorded_run_id(),
                "search": self.search,
            }
        )
        params = {k: _param_value(v) for k, v in trial_params(config).items()}
        self.outbox.put({"op": "params", "params": params})
        if wait:
            self.outbox.drain(self.start_wait_s)
        return self.run_id

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log a report: ``step`` (else the report's ``step``/``epoch``, else the next index)."""
        if step is None:
            step = metrics.get("step", metrics.get("epoch"))
            step = int(step) if isinstance(step, int | float) and math.isfinite(step) else None
        if step is None:
            step = self.last_step + 1
        self.last_step = max(self.last_step, step)
        values = numeric_metrics(metrics)
        if values:
            self.outbox.put(
                {
                    "op": "metrics",
                    "metrics": values,
                    "step": step,
                    "timestamp": int(time.time() * 1000),
                }
            )

    def finish(
        self, status: str, metrics: Mapping[str, Any], error: str | None, traceback: str | None
    ) -> bool:
        """Final metrics (at the last step), tags ``status``/``error``, end the run (FAILED for
        status ``failed``, else FINISHED). Returns True when everything reached MLflow; else the
        rest is saved in the sweep's ``mlflow_pending/`` for the driver to catch up."""
        from orchestrator.outbox import save_pending

        self.log_metrics(metrics, step=max(self.last_step, 0))
        tags = {TAG_STATUS: status}
        if error:
            tags["error"] = error[:MAX_TAG]
        self.outbox.put(
            {
                "op": "finish",
                "status": "FAILED" if status == "failed" else "FINISHED",
                "tags": tags,
                "traceback": traceback,
            }
        )
        left = self.outbox.close(self.finish_wait_s)
        if self.store is not None:
            key, run_id = self.key, self.run_id
            save_pending(self.store, key, run_id, left, final=True, trial_id=self.trial_id)
        return not left


def _param_value(value: Any) -> Any:
    """A JSON-able param value (numbers and strings as they are, anything else as text)."""
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)
