"""MLflow as a comparison tool (orchestrator.tracking, orchestrator.outbox): the experiment kind
that makes MLflow 3.17's UI open on the runs table, child runs named by what distinguishes them,
params without unset keys, metrics at their steps, and writes that outlive an unreachable
server (queued, saved, replayed), all against real SQLite stores.

The local SQLite tracking store: WAL mode set before MLflow's schema, and writers from several
trials at once all land (none fails with "database is locked").
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from orchestrator import tracking
from orchestrator.outbox import load_pending, pending_keys, replay_pending
from orchestrator.store import ResultsStore
from workloads.config.resolve import resolve_config

SEARCHED = ["format", "bits", "accumulator", "seed"]


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module (creating one takes seconds); tests use own names."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    return tracking.resolve_tracking_uri(str(path))


def _mlp(**keys: object) -> dict:
    return resolve_config({"workload": "mnist_mlp", **keys})


def test_experiment_kind_is_training_new_and_on_resume(uri: str) -> None:
    experiment_id = tracking.ensure_experiment(uri, "bits")
    mlflow = tracking.client(uri)
    tags = mlflow.get_experiment(experiment_id).tags
    assert tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    # an experiment made before the tag existed (or by hand) gets it when the sweep resumes
    other = mlflow.create_experiment("older")
    assert tracking.EXPERIMENT_KIND_TAG not in mlflow.get_experiment(other).tags
    assert tracking.ensure_experiment(uri, "older") == other
    assert mlflow.get_experiment(other).tags[tracking.EXPERIMENT_KIND_TAG] == (
        "custom_model_development"
    )


def test_the_kind_is_the_one_mlflow_ui_knows_as_machine_learning() -> None:
    """The value is read from the installed UI bundle, not assumed."""
    import mlflow

    js = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    bundle = "".join(p.read_text(errors="ignore") for p in js.glob("main.*.js"))
    assert 'CUSTOM_MODEL_DEVELOPMENT="custom_model_development"' in bundle


def test_child_run_name_params_and_metric_steps(uri: str, tmp_path: Path) -> None:
    experiment_id = tracking.ensure_experiment(uri, "steps")
    parent = tracking.start_parent_run(uri, experiment_id, "x", "s1", "abc", "name: x\n")
    store = ResultsStore(tmp_path / "results", "x")
    tracker = tracking.TrialTracker(
        uri, experiment_id, parent, "t_00001", "s1", "abc", store=store, name_keys=SEARCHED
    )
    config = _mlp(format="block", bits=8, accumulator="vc", seed=1)
    run_id = tracker.start(config, "name: x\n")
    for epoch in (1, 2, 3):
        tracker.log_metrics({"epoch": epoch, "test_error": 0.5 / epoch, "note": "text"})
    assert tracker.finish("ok", {"test_error": 0.1, "bits_per_param": 8.0}, None, None)
    mlflow = tracking.client(uri)
    run = mlflow.get_run(run_id)
    assert run.info.run_name == "block<8> vc seed=1" and run.info.status == "FINISHED"
    assert run.data.tags["trial_id"] == "t_00001"
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert "None" not in run.data.params.values()
    assert run.data.params["accumulator"] == "vc"
    history = mlflow.get_metric_history(run_id, "test_error")
    assert sorted((m.step, m.value) for m in history) == [
        (1, 0.5),
        (2, 0.25),
        (3, 0.1),
        (3, 0.5 / 3),
    ]
    assert not pending_keys(store)  # nothing left to send


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_never_stalls_the_trial_and_its_writes_are_saved(
    uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes to a server that does not answer are queued (each call returns at once), saved
    beside the results when the trial ends, and replayed in order once a store answers."""
    monkeypatch.setattr(tracking.TrialTracker, "START_WAIT_S", 0.5)
    monkeypatch.setattr(tracking.TrialTracker, "FINISH_WAIT_S", 0.5)
    down = f"http://127.0.0.1:{_closed_port()}"
    store = ResultsStore(tmp_path / "results", "x")
    # the real store the writes end up in, and its parent run
    experiment_id = tracking.ensure_experiment(uri, "outage")
    parent = tracking.start_parent_run(uri, experiment_id, "x", "s1", "abc", "name: x\n")
    tracker = tracking.TrialTracker(
        down, experiment_id, parent, "t_00002", "s1", "abc", store=store, name_keys=SEARCHED
    )
    config = _mlp(format="fixed", bits=6, accumulator="low", seed=0)
    assert tracker.start(config) is None  # no run id: the server is away
    began = time.monotonic()
    for epoch in range(1, 21):
        tracker.log_metrics({"epoch": epoch, "train_loss": 1.0 / epoch})
    assert time.monotonic() - began < 0.5  # queued, not sent: the trial goes on
    assert not tracker.finish("ok", {"test_error": 0.2}, None, None)
    (key,) = pending_keys(store)  # one file per attempt, named after the trial
    assert key.startswith("t_00002-")
    saved = load_pending(store, key)
    assert saved is not None and saved["final"] and saved["run_id"] is None
    assert [op["op"] for op in saved["ops"]] == ["start", "params", *["metrics"] * 21, "finish"]
    # the server back (here: the SQLite store): everything lands, in order, and the file goes
    done, left, created = replay_pending(store, tracking.client(uri))
    assert (done, left) == (1, 0) and set(created) == {"t_00002"}
    mlflow = tracking.client(uri)
    run = mlflow.get_run(created["t_00002"])
    assert run.info.run_name == "fixed<6,4> low seed=0" and run.info.status == "FINISHED"
    steps = [m.step for m in mlflow.get_metric_history(run.info.run_id, "train_loss")]
    assert steps == list(range(1, 21))
    assert not pending_keys(store)


def test_a_start_still_in_flight_when_the_trial_ends_leaves_no_duplicate(
    uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loaded machine: the trial's writer is still creating the run when the trial ends and
    its waits are over. The writes are saved (the start among them), the driver makes the run
    from them, and the writer's creation lands afterwards: a second, empty run of the trial.
    The driver deletes it (``delete_empty_duplicates``), and the late run's id does not replace
    the recorded one. The creation is held on an event here, in place of the load."""
    monkeypatch.setattr(tracking.TrialTracker, "START_WAIT_S", 0.1)
    monkeypatch.setattr(tracking.TrialTracker, "FINISH_WAIT_S", 0.1)
    from orchestrator.outbox import Outbox

    monkeypatch.setattr(Outbox, "JOIN_S", 0.1)
    experiment_id = tracking.ensure_experiment(uri, "late")
    parent = tracking.start_parent_run(uri, experiment_id, "x", "s1", "abc", "name: x\n")
    store = ResultsStore(tmp_path / "results", "x")
    release, creating = threading.Event(), threading.Event()

    class HeldClient:  # the writer's client: it has searched, and its creation waits
        def __init__(self) -> None:
            self.real = tracking.client(uri)

        def __getattr__(self, name: str) -> object:
            return getattr(self.real, name)

        def create_run(self, *args: object, **kwargs: object) -> object:
            creating.set()
            assert release.wait(300)
            return self.real.create_run(*args, **kwargs)

    tracker = tracking.TrialTracker(uri, experiment_id, parent, "t_late", "s1", "abc", store=store)
    tracker.outbox.make_client = HeldClient
    assert tracker.start({"workload": "gaussian", "seed": 0}) is None
    assert creating.wait(300)
    assert not tracker.finish("ok", {"w2": 0.1}, None, None)  # saved, the start among them
    (key,) = pending_keys(store)
    assert load_pending(store, key)["ops"][0]["op"] == "start"
    _, _, created = replay_pending(store, tracking.client(uri))  # the driver's catch-up
    made = created["t_late"]
    store.write_bytes("mlflow_runs/t_late", made.encode())  # as the driver's record would be
    release.set()
    tracker.outbox.thread.join(300)  # the late creation lands
    children = tracking.find_child_runs(uri, experiment_id, parent)
    assert len(children) == 2  # the duplicate, before the driver's check
    assert tracker.recorded_run_id() == made  # not replaced by the late run's id
    assert tracking.delete_empty_duplicates(uri, experiment_id, parent, {"t_late": made}) == 1
    (child,) = tracking.find_child_runs(uri, experiment_id, parent)
    assert child.info.run_id == made and child.info.status == "FINISHED"
    assert child.data.metrics["w2"] == 0.1
    # a run with metrics is never deleted, nor one of a trial no row names
    assert tracking.delete_empty_duplicates(uri, experiment_id, parent, {"t_late": "other"}) == 0
    assert tracking.delete_empty_duplicates(uri, experiment_id, parent, {}) == 0


def test_kill_running_children(uri: str) -> None:
    experiment_id = tracking.ensure_experiment(uri, "killed")
    parent = tracking.start_parent_run(uri, experiment_id, "x", "s1", "abc", "")
    ids = []
    for trial in ("a", "b"):
        tracker = tracking.TrialTracker(uri, experiment_id, parent, trial, "s1", "abc")
        ids.append(tracker.start({"workload": "gaussian", "seed": 0}))
    tracker.finish("ok", {}, None, None)  # b finished, a still RUNNING (its trial stopped)
    assert tracking.kill_running_children(uri, experiment_id, parent) == 1
    mlflow = tracking.client(uri)
    assert [mlflow.get_run(i).info.status for i in ids] == ["KILLED", "FINISHED"]


def test_experiment_url_and_ui_command() -> None:
    uri = "sqlite:////tmp/m.db"
    assert tracking.ui_command(uri) == (
        "mlflow ui --backend-store-uri sqlite:////tmp/m.db --host 127.0.0.1 --port 5000"
    )
    runs = "#/experiments/3/runs?workflowType=machine_learning"
    assert tracking.experiment_url(uri, "3") == f"http://127.0.0.1:5000/{runs}"
    assert tracking.experiment_url("http://head:5000/", "3") == f"http://head:5000/{runs}"
    assert tracking.experiment_url(uri, "3", sort=("test_error", "min")).endswith(
        f"{runs}&orderByKey=metrics.%60test_error%60&orderByAsc=true"
    )


def test_a_retry_reopens_the_recorded_child_without_a_search(
    uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first attempt creates its child without searching the experiment; the run id is
    recorded under the sweep directory, and a later attempt reopens that child (one child per
    trial) without searching either."""
    experiment_id = tracking.ensure_experiment(uri, "recorded")
    parent = tracking.start_parent_run(uri, experiment_id, "x", "s1", "abc", "")
    store = ResultsStore(tmp_path / "results", "x")
    import mlflow.tracking.client as mlflow_client

    def no_search(*args: object, **kwargs: object) -> None:
        raise AssertionError("search_runs called")

    monkeypatch.setattr(mlflow_client.MlflowClient, "search_runs", no_search)
    first = tracking.TrialTracker(uri, experiment_id, parent, "t9", "s1", "abc", store=store,
                                  search=False)  # fmt: skip
    run_id = first.start({"workload": "gaussian", "seed": 0})
    assert run_id is not None and first.recorded_run_id() == run_id
    first.finish("failed", {"wall_s": 1.0}, "RuntimeError: x", None)
    again = tracking.TrialTracker(uri, experiment_id, parent, "t9", "s1", "abc", store=store,
                                  search=True)  # fmt: skip
    assert again.start({"workload": "gaussian", "seed": 0}) == run_id
    assert again.finish("ok", {"w2": 0.1}, None, None)
    monkeypatch.undo()
    (child,) = tracking.find_child_runs(uri, experiment_id, parent)
    assert child.info.run_id == run_id and child.info.status == "FINISHED"
    assert child.data.tags["status"] == "ok" and child.data.metrics["w2"] == 0.1


def test_sqlite_store_is_in_wal_mode_and_takes_concurrent_writers(tmp_path: Path) -> None:
    uri = tracking.resolve_tracking_uri(str(tmp_path / "nested" / "mlflow.db"))
    experiment_id = tracking.ensure_experiment(uri, "wal")
    with sqlite3.connect(tmp_path / "nested" / "mlflow.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    parent = tracking.start_parent_run(uri, experiment_id, "wal", "s", "c", "name: wal\n")
    writers, reports, errors = 4, 25, []

    def trial(index: int) -> None:
        try:
            tracker = tracking.TrialTracker(uri, experiment_id, parent, f"t{index}", "s", "c")
            tracker.start({"lr": 0.1 * index, "seed": index})
            for step in range(reports):
                tracker.log_metrics({"loss": 1.0 / (step + 1), "step": step})
            tracker.finish("ok", {"test_error": 0.01 * index}, None, None)
        except Exception as exc:  # collected: an assertion inside a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=trial, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    children = tracking.find_child_runs(uri, experiment_id, parent)
    assert len(children) == writers
    mlflow = tracking.client(uri)
    for child in children:
        assert child.info.status == "FINISHED"
        history = mlflow.get_metric_history(child.info.run_id, "loss")
        assert sorted(m.step for m in history) == list(range(reports))


def test_other_uris_are_left_alone(tmp_path: Path) -> None:
    tracking.prepare_sqlite("http://127.0.0.1:1/")  # no file, no connection attempted
    assert list(tmp_path.iterdir()) == []


def test_mlflow_commits_to_a_wal_store_without_an_fsync_each(tmp_path: Path) -> None:
    """MLflow's own connections to the WAL-mode store commit with ``synchronous = NORMAL``
    (no fsync per commit); a connection to a file in rollback-journal mode keeps SQLite's
    default FULL (NORMAL is only crash-safe with WAL)."""
    import sqlalchemy

    uri = tracking.resolve_tracking_uri(str(tmp_path / "mlflow.db"))
    tracking.ensure_experiment(uri, "sync")
    engine = tracking.client(uri)._tracking_client.store.engine
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    other = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    with other.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_children_found_ended_and_killed_by_their_parent(uri: str) -> None:
    """A sweep's children: found by their parent, one ended by its trial's tag, those still
    RUNNING marked KILLED; another parent's child is never touched."""
    experiment_id = tracking.ensure_experiment(uri, "children")
    mlflow = tracking.client(uri)
    parent, other = (mlflow.create_run(experiment_id).info.run_id for _ in range(2))

    def child(of: str, trial_id: str) -> str:
        tags = {"mlflow.parentRunId": of, tracking.TAG_TRIAL: trial_id}
        return str(mlflow.create_run(experiment_id, tags=tags).info.run_id)

    ids = [child(parent, f"t{i}") for i in range(3)]
    stranger = child(other, "t0")
    assert sorted(r.info.run_id for r in tracking.find_child_runs(uri, experiment_id, parent)) == (
        sorted(ids)
    )
    ended = tracking.end_trial_run(uri, experiment_id, parent, "t1", "FAILED", {"status": "failed"})
    assert ended == ids[1] and mlflow.get_run(ids[1]).data.tags["status"] == "failed"
    assert tracking.end_trial_run(uri, experiment_id, parent, "t9", "FAILED", {}) is None
    assert tracking.kill_running_children(uri, experiment_id, parent) == 2
    statuses = [mlflow.get_run(run_id).info.status for run_id in [*ids, stranger]]
    assert statuses == ["KILLED", "FAILED", "KILLED", "RUNNING"]
