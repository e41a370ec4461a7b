"""Fault 2: a worker node removed in the middle of a sweep (``ray.cluster_utils.Cluster``: a
head that runs no trials and two one-slot workers; builds on tests/orchestrator/test_multinode).

Once both running trials have saved a checkpoint, and U(0, 1) s later (the recorded RNG), one
worker, drawn by the same RNG, is removed. Its trial restarts on the other node from its last
checkpoint (its row says it started past step 0, on the survivor); nothing is lost or doubled in
trials.parquet, the predictions dataset or MLflow, and no process of the cluster is left."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.sweep import run_sweep
from orchestrator.tune_setup import WORKER_ENV
from tests.faults import harness
from tests.orchestrator.helpers import write_spec

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SPEC = """\
name: removal
workload: fake
objectives: {test_error: min}
search: {max_concurrent: 2}
resources: {cpu: 1, custom: {slot: 1}}   # one slot per worker: two trials can't share a node
max_failures: 3
fixed: {reports: 4, sleep_s: 1.0}
space:
  lr: {grid: [0.1, 0.2, 0.3, 0.4]}
"""


@pytest.fixture
def cluster(
    fault_env: dict[str, str], ray_env: None, fake_registered: None
) -> Iterator[dict[str, Any]]:
    """Head (0 CPUs) + two workers with 1 CPU and 1 ``slot`` each, tagged as this test's."""
    import ray
    from ray.cluster_utils import Cluster

    os.environ.update(WORKER_ENV)
    fast_failure_detection = {"health_check_period_ms": 500, "health_check_failure_threshold": 4}
    made = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "_system_config": fast_failure_detection},
    )
    try:
        workers = [made.add_node(num_cpus=1, resources={"slot": 1}) for _ in range(2)]
        made.wait_for_nodes()
        ray.init(address=made.address, logging_level="WARNING", log_to_driver=False)
        yield {"cluster": made, "workers": workers}
    finally:
        ray.shutdown()
        made.shutdown()


def _checkpointed(sweep: Path) -> set[Path]:
    """The trials (Tune's trial directories) that saved a checkpoint: counted by trial, not by
    checkpoint, since under load one trial can save two before the other saves its first."""
    return {path.parent for path in sweep.glob("tune/*/checkpoint_*")}


def test_worker_node_removed_mid_sweep(
    cluster: dict[str, Any], tmp_path: Path, fault_rng, fault_log
) -> None:
    spec = write_spec(tmp_path, SPEC)
    sweep = tmp_path / "results" / "removal"
    err = io.StringIO()
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["value"] = run_sweep(
            str(spec),
            results=str(tmp_path / "results"),
            mlflow_uri=str(tmp_path / "mlflow.db"),
            out=io.StringIO(),
            err=err,
            analysis_report=False,
        )

    thread = threading.Thread(target=run)
    thread.start()
    harness.wait_for(
        lambda: len(_checkpointed(sweep)) >= 2 or not thread.is_alive(),
        None, 300, "two trials' checkpoints",
    )  # fmt: skip
    assert thread.is_alive(), err.getvalue()
    time.sleep(fault_rng.uniform(0.0, 1.0))
    removed, survivor = cluster["workers"][:: 1 if fault_rng.random() < 0.5 else -1]
    cluster["cluster"].remove_node(removed)
    thread.join(timeout=400)
    assert not thread.is_alive(), "the sweep did not end after the node was removed"
    assert "value" in outcome, err.getvalue()

    audit = harness.audit(sweep, expected=4)
    rows = audit["rows"]
    restarted = [r for r in rows if r["start_step"] > 0]
    fault_log(
        "worker node removed mid-sweep",
        tried=1,
        recorded=audit["recorded"],
        duplicates=audit["duplicates"],
        lost=audit["lost"],
        tracebacks=harness.tracebacks(err.getvalue()),
        outcome=f"{len(restarted)} trial(s) restarted from their checkpoint on the surviving "
        "node; sweep complete",
    )
    assert not audit["problems"], audit["problems"]
    assert (audit["recorded"], audit["duplicates"], audit["lost"]) == (4, 0, 0)
    assert sorted(r["lr"] for r in rows) == [0.1, 0.2, 0.3, 0.4]
    assert all(r["status"] == "ok" for r in rows), rows
    assert "raised; retrying it" in err.getvalue()  # the trial on the removed node, retried
    assert restarted, rows  # ... from its checkpoint, not from step 0
    assert all(r["node"] == survivor.node_id for r in restarted), rows
    assert outcome["value"].complete
