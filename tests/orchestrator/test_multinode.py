"""A simulated multi-node cluster on one machine (``ray.cluster_utils.Cluster``: a head that runs
no trials and two one-CPU workers): trials spread over both workers, and removing a worker in the
middle of a sweep still ends with every trial recorded exactly once."""

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
from tests.orchestrator.helpers import write_spec

pytestmark = [pytest.mark.slow, pytest.mark.alone]

SPREAD = """\
name: NAME
workload: fake
objectives: {test_error: min}
search: {max_concurrent: 2}
resources: {cpu: 1, custom: {slot: 1}}   # one slot per worker: two trials can't share a node
max_failures: 3
fixed: {reports: REPORTS, sleep_s: SLEEP}
space:
  lr: {grid: [0.1, 0.2, 0.3, 0.4]}
"""


@pytest.fixture(scope="module")
def cluster(ray_env: None, fake_registered: None) -> Iterator[dict[str, Any]]:
    """Head (0 CPUs, so trials go to workers) + two workers with 1 CPU and 1 ``slot`` each."""
    import ray
    from ray.cluster_utils import Cluster

    from orchestrator.tune_setup import WORKER_ENV

    os.environ.update(WORKER_ENV)
    fast_failure_detection = {"health_check_period_ms": 500, "health_check_failure_threshold": 4}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "_system_config": fast_failure_detection},
    )
    workers = [cluster.add_node(num_cpus=1, resources={"slot": 1}) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    yield {"cluster": cluster, "workers": workers}
    ray.shutdown()
    cluster.shutdown()


def _spec(tmp_path: Path, name: str, reports: int, sleep: float) -> Path:
    text = SPREAD.replace("NAME", name).replace("REPORTS", str(reports))
    return write_spec(tmp_path, text.replace("SLEEP", str(sleep)))


def test_trials_land_on_both_workers(cluster: dict[str, Any], tmp_path: Path) -> None:
    outcome = run_sweep(
        str(_spec(tmp_path, "spread", reports=2, sleep=1.0)),
        results=str(tmp_path / "results"),
        mlflow_uri=str(tmp_path / "mlflow.db"),
        out=io.StringIO(),
        err=io.StringIO(),
        analysis_report=False,
    )
    rows = outcome.table.to_pylist()
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    worker_ids = {w.node_id for w in cluster["workers"]}
    assert {r["node"] for r in rows} == worker_ids  # the column `node`: the Ray node id


def test_worker_removed_mid_sweep_loses_nothing(
    cluster: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOWPREC_HEARTBEAT_S", "1")  # "| 2 running" in a heartbeat line
    err = io.StringIO()
    outcome: dict[str, Any] = {}

    def sweep() -> None:
        outcome["value"] = run_sweep(
            str(_spec(tmp_path, "removal", reports=4, sleep=1.0)),
            results=str(tmp_path / "results"),
            mlflow_uri=str(tmp_path / "mlflow.db"),
            out=io.StringIO(),
            err=err,
            analysis_report=False,
        )

    thread = threading.Thread(target=sweep)
    thread.start()
    deadline = time.monotonic() + 240
    while "| 2 running" not in err.getvalue() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "| 2 running" in err.getvalue(), err.getvalue()
    # both trials inside the workload: each has reported (and checkpointed) a step
    tune_dir = tmp_path / "results" / "removal" / "tune"
    while len({p.parent for p in tune_dir.glob("*/checkpoint_*")}) < 2:
        assert time.monotonic() < deadline, "the two trials did not both report a step"
        assert thread.is_alive(), err.getvalue()
        time.sleep(0.2)
    removed = cluster["workers"][1]
    cluster["cluster"].remove_node(removed)
    thread.join(timeout=400)
    assert not thread.is_alive()
    rows = outcome["value"].table.to_pylist()
    assert sorted(r["lr"] for r in rows) == [0.1, 0.2, 0.3, 0.4]  # each trial exactly once
    assert len({r["trial_id"] for r in rows}) == 4
    assert all(r["status"] == "ok" for r in rows), rows
    assert "raised; retrying it" in err.getvalue()  # the trial on the removed node was retried
    survivor = cluster["workers"][0].node_id
    assert sum(r["node"] == survivor for r in rows) >= 3  # the rest ran on the survivor
