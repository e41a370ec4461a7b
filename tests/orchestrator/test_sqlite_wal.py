"""The local SQLite tracking store: WAL mode set before MLflow's schema, and writers from several
trials at once all land (none fails with "database is locked")."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from orchestrator import tracking


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
