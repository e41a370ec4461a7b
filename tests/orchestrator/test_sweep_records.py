"""What the driver records while Tune runs (orchestrator.sweep_records): a trial a scheduler
stopped early gets exactly one row from its last report and its MLflow child run ended
FINISHED with the tags ``status=ok`` and ``early_stopped=true``; a trial with a row keeps it;
the display (orchestrator.progress) reads the outcome from the row and writes nothing. Against
a real local results directory and a real SQLite MLflow store."""

from __future__ import annotations

import io
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator import sweep_records, tracking
from orchestrator.progress import SweepProgress
from orchestrator.store import ResultsStore, trial_row
from orchestrator.sweep_records import SweepRecords

CONFIG = {"workload": "gaussian", "lr": 0.1, "steps": 50}
#: the last intermediate report of a trial ASHA stopped: no ``status`` (its workload never
#: returned), a metric of ours and Tune's own keys
LAST_REPORT = {
    "train_loss": 0.25, "step": 20, "time_total_s": 12.5, "training_iteration": 4,
    "trial_id": "t0", "done": False, "pid": 123,
}  # fmt: skip


def _trial(name: str, **result: object) -> SimpleNamespace:
    return SimpleNamespace(trial_id=name, config=dict(CONFIG), last_result=result)


@pytest.fixture(scope="module")
def mlflow_parent(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """One SQLite store with a sweep's parent run (creating a store takes seconds)."""
    uri = tracking.resolve_tracking_uri(str(tmp_path_factory.mktemp("mlflow") / "mlflow.db"))
    experiment_id = tracking.ensure_experiment(uri, "early")
    parent = tracking.client(uri).create_run(experiment_id, run_name="parent").info.run_id
    return uri, experiment_id, parent


def _child(tracked: tuple[str, str, str], trial_id: str) -> str:
    uri, experiment_id, parent = tracked
    run = tracking.client(uri).create_run(
        experiment_id,
        run_name=trial_id,
        tags={"mlflow.parentRunId": parent, tracking.TAG_TRIAL: trial_id},
    )
    return str(run.info.run_id)


def test_an_early_stopped_trial_gets_one_row_and_its_run_ended(
    tmp_path: Path, mlflow_parent: tuple[str, str, str]
) -> None:
    store = ResultsStore(tmp_path, "early")
    run_id = _child(mlflow_parent, "t0")
    records = SweepRecords("early", store, mlflow_parent, name_keys=["lr"])
    progress = SweepProgress(
        "early", 1, "train_loss", "min", store=store, stream=io.StringIO(), live=False
    )
    trial = _trial("t0", **LAST_REPORT)
    for callback in (records, progress):  # Tune's order: the records first
        callback.on_trial_complete(0, [], trial)
    assert store.trial_row_ids() == ["t0"]
    row = store.read_trial_row("t0")
    assert row is not None
    assert (row["status"], row["early_stopped"], row["error"]) == ("ok", True, None)
    assert (row["train_loss"], row["step"], row["wall_s"]) == (0.25, 20, 12.5)
    assert row["bits"] == 32 and row["lr"] == 0.1 and row["configuration"] == "lr=0.1"
    assert row["mlflow_run_id"] == run_id
    assert not {"training_iteration", "pid", "done", "time_total_s"} & set(row)
    run = tracking.client(mlflow_parent[0]).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert (run.data.tags["status"], run.data.tags["early_stopped"]) == ("ok", "true")
    assert progress.outcomes == {"t0": "ok"}

    # told again (a resumed sweep, a retried callback): the row is the same one
    written = store.read_trial_row("t0")
    records.on_trial_complete(0, [], _trial("t0", train_loss=9.0))
    assert store.trial_row_ids() == ["t0"] and store.read_trial_row("t0") == written


def test_a_trial_with_a_row_keeps_it_and_the_display_shows_its_status(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path, "early")
    diverged = trial_row(CONFIG, {"train_loss": math.inf}, status="diverged", error=None,
                         trial_id="t1")  # fmt: skip
    store.write_trial_row(diverged)
    records = SweepRecords("early", store)
    out = io.StringIO()
    progress = SweepProgress("early", 2, "train_loss", "min", store=store, stream=out, live=False)
    for callback in (records, progress):
        callback.on_trial_complete(0, [], _trial("t1", train_loss=0.5))
    row = store.read_trial_row("t1")
    assert row is not None and row["status"] == "diverged" and row["train_loss"] == math.inf
    assert progress.outcomes == {"t1": "diverged"} and "t1: diverged" in out.getvalue()


def test_a_trial_that_returned_writes_nothing_here(tmp_path: Path) -> None:
    """A trial with a final status wrote its own row; the records callback leaves it."""
    store = ResultsStore(tmp_path, "early")
    records = SweepRecords("early", store)
    for status in ("ok", "diverged", "failed"):
        records.on_trial_complete(0, [], _trial(f"t_{status}", status=status))
    assert store.trial_row_ids() == []


def test_without_a_run_or_a_server_the_row_is_still_written(
    tmp_path: Path, mlflow_parent: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultsStore(tmp_path, "early")
    said: list[str] = []
    records = SweepRecords("early", store, mlflow_parent, say=said.append)
    records.on_trial_complete(0, [], _trial("no_run", **LAST_REPORT))  # no child run: no id
    row = store.read_trial_row("no_run")
    assert row is not None and row["mlflow_run_id"] is None and said == []

    def unreachable(*args: object) -> None:
        raise ConnectionError("the server is away")

    monkeypatch.setattr(sweep_records, "end_trial_run", unreachable)
    records.on_trial_complete(0, [], _trial("away", **LAST_REPORT))
    row = store.read_trial_row("away")
    assert row is not None and row["status"] == "ok" and row["mlflow_run_id"] is None
    assert len(said) == 1 and said[0].startswith("[early] MLflow: could not end away's run")


def test_the_records_callback_pickles_without_its_thread_and_writer(tmp_path: Path) -> None:
    import pickle

    records = SweepRecords("early", ResultsStore(tmp_path, "early"), say=print)
    clone = pickle.loads(pickle.dumps(records))
    assert clone.say is None and clone.replaying is None and clone.name == "early"
