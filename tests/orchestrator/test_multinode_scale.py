"""Multi-node at size: a simulated cluster (``ray.cluster_utils.Cluster``: a
head that runs no trials and four one-CPU worker nodes) runs 500 tiny trials, and one worker
node is removed part-way. Every trial must be recorded exactly once: 500 rows, one per grid
point, all ``ok``, and one finished MLflow child run per trial."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import tracking
from orchestrator.sweep import run_sweep
from tests.orchestrator.helpers import write_spec

pytestmark = [pytest.mark.slow, pytest.mark.alone]

TRIALS = 500
SPEC = f"""\
name: many
workload: fake
objectives: {{test_error: min}}
resources: {{cpu: 1}}
max_failures: 3
fixed: {{reports: 1, sleep_s: 0.0, lr: 0.1}}
space:
  seed: {{grid: [{", ".join(map(str, range(TRIALS)))}]}}
"""


def _add_node(cluster: Any, **kwargs: Any) -> Any:
    """``cluster.add_node``, tried again when the node misses Ray's fixed 30 s start-up window
    (a loaded CI machine): the test is about the sweep, not about how fast raylets start."""
    for attempt in range(3):
        try:
            return cluster.add_node(**kwargs)
        except Exception as exc:
            if "timed out during startup" not in str(exc) or attempt == 2:
                raise
            time.sleep(5.0)
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def cluster(ray_env: None, fake_registered: None) -> Iterator[dict[str, Any]]:
    import ray
    from ray.cluster_utils import Cluster

    from orchestrator.tune_setup import WORKER_ENV

    os.environ.update(WORKER_ENV)
    fast_failure_detection = {"health_check_period_ms": 500, "health_check_failure_threshold": 4}
    cluster = Cluster(initialize_head=False)
    _add_node(cluster, num_cpus=0, _system_config=fast_failure_detection)  # the head
    workers = [_add_node(cluster, num_cpus=1) for _ in range(4)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    yield {"cluster": cluster, "workers": workers}
    ray.shutdown()
    cluster.shutdown()


def test_500_trials_with_a_node_removed_part_way(cluster: dict[str, Any], tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    results = tmp_path / "results"
    outcome: dict[str, Any] = {}

    def sweep() -> None:
        outcome["value"] = run_sweep(
            str(spec),
            results=str(results),
            mlflow_uri=str(tmp_path / "mlflow.db"),
            out=io.StringIO(),
            err=io.StringIO(),
            analysis_report=False,
        )

    thread = threading.Thread(target=sweep)
    thread.start()
    rows = results / "many" / "trials"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and thread.is_alive():
        if rows.exists() and len(list(rows.glob("*.parquet"))) >= TRIALS // 5:
            break
        time.sleep(0.5)
    recorded_before = len(list(rows.glob("*.parquet")))
    assert TRIALS // 5 <= recorded_before < TRIALS, "the removal must come part-way"
    removed = cluster["workers"][3]
    cluster["cluster"].remove_node(removed)
    thread.join(timeout=1800)
    assert not thread.is_alive()

    result = outcome["value"]
    assert result.complete
    table = result.table.to_pylist()
    assert len(table) == TRIALS
    assert len({r["trial_id"] for r in table}) == TRIALS
    assert sorted(r["seed"] for r in table) == list(range(TRIALS))  # each grid point once
    assert all(r["status"] == "ok" for r in table)
    assert {r["node"] for r in table} <= {w.node_id for w in cluster["workers"]}
    on_removed = sum(r["node"] == removed.node_id for r in table)
    assert on_removed <= recorded_before + 1  # after the removal, only the survivors ran trials

    children = tracking.find_child_runs(
        result.tracking_uri, result.experiment_id, result.parent_run_id
    )
    assert len(children) == TRIALS  # a retried trial continued its own child run
    assert sorted(c.data.tags["trial_id"] for c in children) == sorted(r["trial_id"] for r in table)
    assert all(c.info.status == "FINISHED" for c in children)
