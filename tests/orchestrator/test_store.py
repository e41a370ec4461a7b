"""Results on disk (orchestrator.store) and MLflow's URI handling (orchestrator.tracking)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from orchestrator import tracking
from orchestrator.store import (
    ResultsStore,
    predictions_table,
    rows_to_table,
    samples_table,
    trial_row,
)


def test_trial_rows_are_atomic_and_consolidated_once_per_trial(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path, "sweep")
    config = {"workload": "fake", "lr": 0.1, "bits": 8, "prior_std": None}
    store.write_trial_row(
        trial_row(config, {"bits": 32}, status="failed", error="boom", trial_id="a", attempt=1)
    )
    store.write_trial_row(
        trial_row(
            config,
            {"bits": 32, "test_error": 0.2},
            status="ok",
            error=None,
            trial_id="a",
            attempt=2,
        )
    )
    store.write_trial_row(
        trial_row(
            {**config, "prior_std": 1.0}, {"bits": 4}, status="diverged", error="inf", trial_id="b"
        )
    )
    table = store.consolidate()
    rows = {r["trial_id"]: r for r in table.to_pylist()}
    assert sorted(rows) == ["a", "b"]  # one row per trial: the last attempt wins
    assert rows["a"]["status"] == "ok" and rows["a"]["attempt"] == 2 and rows["a"]["error"] is None
    assert rows["a"]["bits"] == 32  # the metric overrides the config key
    assert rows["b"]["test_error"] is None and rows["b"]["prior_std"] == 1.0
    assert rows["a"]["prior_std"] is None  # optional key unset: null
    assert pq.read_table(tmp_path / "sweep" / "trials.parquet").num_rows == 2
    # nothing but final names left behind: every write went through a temporary + rename
    leftovers = [p for p in (tmp_path / "sweep").rglob("*") if p.name.startswith(".")]
    assert leftovers == []
    # consolidating again neither loses nor duplicates a row
    assert store.consolidate().num_rows == 2


def test_rows_promote_ints_to_floats_and_keep_column_order() -> None:
    table = rows_to_table([{"trial_id": "a", "x": 1, "status": "ok"}, {"trial_id": "b", "x": 0.5}])
    assert table.column_names[:2] == ["trial_id", "status"]
    assert table.column("x").to_pylist() == [1.0, 0.5]


def test_predictions_schema_round_trip(tmp_path: Path) -> None:
    labels = np.array([0, 2, 1])
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]], dtype=np.float32)
    store = ResultsStore(tmp_path, "s")
    store.write_predictions("t1", labels, probs)
    store.write_predictions("t2", labels, probs)
    table = pq.read_table(tmp_path / "s" / "predictions" / "trial_id=t1" / "part-0.parquet")
    assert str(table.schema.field("example").type) == "int32"
    assert str(table.schema.field("label").type) == "int32"
    assert str(table.schema.field("probs").type) == "list<element: float>"
    assert np.array(table.column("probs").to_pylist(), dtype=np.float32).tolist() == probs.tolist()
    # the directory is a hive-partitioned dataset
    dataset = ds.dataset(tmp_path / "s" / "predictions", partitioning="hive").to_table()
    assert sorted(set(dataset.column("trial_id").to_pylist())) == ["t1", "t2"]
    with pytest.raises(ValueError, match="predictions"):
        predictions_table(labels[:2], probs)


def test_samples_one_row_per_sample_per_chain() -> None:
    samples = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    table = samples_table(samples)
    assert table.num_rows == 12
    rows = table.to_pylist()
    assert rows[5] == {"sample": 1, "chain": 2, "x": samples[1, 2].tolist()}
    assert samples_table(samples[..., 0]).column("x").to_pylist()[4] == [samples[1, 1, 0]]


def test_store_over_a_uri(tmp_path: Path) -> None:
    store = ResultsStore(f"file://{tmp_path}", "s")
    store.write_spec("name: s\n")
    assert (tmp_path / "s" / "spec.yaml").read_text() == "name: s\n"
    assert store.tune_uri() == f"file://{tmp_path}/s/tune"


def test_tracking_uri_resolution(tmp_path: Path) -> None:
    assert tracking.resolve_tracking_uri(None, tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    assert tracking.resolve_tracking_uri("sqlite:///x.db", tmp_path) == f"sqlite:///{tmp_path}/x.db"
    assert tracking.resolve_tracking_uri("runs/x.db", tmp_path) == f"sqlite:///{tmp_path}/runs/x.db"
    assert tracking.resolve_tracking_uri("http://head:5000") == "http://head:5000"
    for directory in ("mlruns", "file:///tmp/mlruns"):
        with pytest.raises(tracking.TrackingError, match="sqlite"):
            tracking.resolve_tracking_uri(directory, tmp_path)
    assert (
        tracking.artifact_location(f"sqlite:///{tmp_path}/x.db")
        == (tmp_path / "mlartifacts").as_uri()
    )


def test_tracking_child_run_is_reused(tmp_path: Path) -> None:
    uri = tracking.resolve_tracking_uri(None, tmp_path)
    experiment = tracking.ensure_experiment(uri, "exp")
    assert tracking.ensure_experiment(uri, "exp") == experiment
    parent = tracking.start_parent_run(uri, experiment, "exp", "sw", "abc", "name: exp\n")
    first = tracking.TrialTracker(uri, experiment, parent, "t1", "sw", "abc")
    run_id = first.start({"lr": 0.1, "workload": "fake"}, "name: exp\n")
    first.log_metrics({"step": 3, "train_loss": 0.5})
    first.finish("failed", {"wall_s": 1.0}, "RuntimeError: x", "Traceback ...")
    again = tracking.TrialTracker(uri, experiment, parent, "t1", "sw", "abc")
    assert again.start({"lr": 0.1, "workload": "fake"}) == run_id  # a retry continues the run
    again.finish("ok", {"test_error": 0.25, "diverged": False}, None, None)
    (child,) = tracking.find_child_runs(uri, experiment, parent)
    assert child.info.status == "FINISHED" and child.data.tags["status"] == "ok"
    assert child.data.params["lr"] == "0.1" and child.data.metrics["test_error"] == 0.25
    assert child.data.tags["mlflow.parentRunId"] == parent
    artifacts = {a.path for a in tracking.client(uri).list_artifacts(run_id)}
    assert {"spec.yaml", "traceback.txt"} <= artifacts
    assert os.path.exists(tmp_path / "mlartifacts")
