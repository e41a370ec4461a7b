"""Stopping the local Ray a sweep started (orchestrator/raystop.py): when :func:`stop` returns,
every process of the node is gone, the workers and what they started included; a Ray this
process did not start is left alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import json, subprocess, sys
import psutil, ray
from orchestrator import raystop
from orchestrator.tune_setup import init_ray

raystop.stop()  # not started here: nothing to stop
init_ray(None)

@ray.remote
class Holder:
    def start(self):  # a worker with a child of its own, which outlives ray.shutdown() alone
        self.child = subprocess.Popen(["sleep", "300"])
        return [psutil.Process().pid, self.child.pid]

pids = ray.get(Holder.remote().start.remote())
node = [info.process.pid for infos in ray._private.worker._global_node.all_processes.values()
        for info in infos]
raystop.stop(grace_s=float(sys.argv[1]))
left = [p for p in pids + node if psutil.pid_exists(p)
        and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
print(json.dumps({"workers": pids, "node": len(node), "left": left,
                  "initialized": ray.is_initialized()}))
"""


def test_stop_returns_once_every_process_of_the_local_ray_is_gone() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, "2"], capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "RAY_AUTH_MODE": "disabled"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["node"] >= 2  # GCS and raylet at least
    assert result["left"] == [], result
    assert not result["initialized"]


def test_a_ray_this_process_did_not_start_is_left_alone() -> None:
    from orchestrator import raystop

    assert not raystop._owned
    raystop.stop()  # a no-op: nothing was started here (and Ray is not imported for it)


def _sweep_with_ray_and_tune_replaced(
    tmp_path, monkeypatch: pytest.MonkeyPatch, complete: bool, watched: str, label: str
) -> tuple[bool, list[str]]:
    """A sweep whose Ray and Tune are replaced by their effects (a fit that ends ``complete``
    or not), so that only the order of the driver's steps is under test; returns whether it
    completed and, in order, "ray stopped" and ``label`` each time ``driver.<watched>`` ran."""
    from orchestrator import driver, raystop
    from tests.orchestrator.helpers import write_spec

    calls: list[str] = []
    monkeypatch.setattr(driver, "init_ray", lambda address: False)
    monkeypatch.setattr(driver, "_fit", lambda *a, **k: complete)
    monkeypatch.setattr(raystop, "stop", lambda *a, **k: calls.append("ray stopped"))
    monkeypatch.setattr(driver, watched, lambda *a, **k: calls.append(label))
    spec = write_spec(tmp_path, """\
        name: replaced
        workload: fake
        objectives: {test_error: min}
        space:
          lr: {grid: [0.1, 0.2]}
        """)  # fmt: skip
    outcome = driver.run_sweep(
        str(spec), results=str(tmp_path / "results"), mlflow_uri=str(tmp_path / "mlflow.db"),
        analysis_report=False,
    )  # fmt: skip
    return outcome.complete, calls


def test_an_interrupted_sweep_stops_its_ray_before_marking_the_stopped_runs_killed(
    fake_registered: None, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stopped trial's actor may still create or end its MLflow run until Ray is down (seen:
    a run created 6 ms after the driver had marked the stopped runs KILLED): the driver stops
    its Ray first."""
    complete, calls = _sweep_with_ray_and_tune_replaced(
        tmp_path, monkeypatch, False, "_kill_running_children", "runs marked KILLED"
    )  # Ctrl-C: not every trial ended
    assert not complete
    assert calls == ["ray stopped", "runs marked KILLED"]


def test_a_finished_sweep_stops_its_ray_before_checking_every_trial_has_one_run(
    fake_registered: None, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial's writer still creating its run when the trial ended (a loaded machine) can land
    it after the sweep finished: the driver stops its Ray before it checks that every trial has
    its one run (and deletes an empty duplicate), so that nothing is written after the check."""
    complete, calls = _sweep_with_ray_and_tune_replaced(
        tmp_path, monkeypatch, True, "_children_from_rows", "checked"
    )
    assert complete
    assert calls[-2:] == ["ray stopped", "checked"]
