"""Fault 6: two sweeps started at once on the same results directory and MLflow store.

Three drivers start together: two of the same sweep (same name, so the same directory) and one
of another sweep. The second driver of the same sweep is refused at once with one line naming
the directory and the holder (``orchestrator.sweeplock``); the two others both run to the end
without touching each other's rows or runs: each trial recorded exactly once, in trials.parquet,
the predictions dataset and MLflow (one finished child run per trial, under its own parent).
While they run, the stray-process check is shown to see Ray's own processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import harness
from tests.orchestrator.helpers import write_spec

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SPEC = """\
name: NAME
workload: fake
objectives: {test_error: min}
search: {max_concurrent: 1}
resources: {cpu: 0.5}
fixed: {reports: 2, sleep_s: 0.2}
space:
  lr: {grid: [0.1, 0.2]}
"""


def test_two_sweeps_at_once(fault_env: dict[str, str], tmp_path: Path, fault_log) -> None:
    first = write_spec(tmp_path, SPEC.replace("NAME", "shared"), "shared.yaml")
    other = write_spec(tmp_path, SPEC.replace("NAME", "other"), "other.yaml")
    env = {**fault_env, "LOWPREC_MLFLOW_WAIT_S": "5"}
    args = ["--results", str(tmp_path / "results"), "--mlflow-uri", str(tmp_path / "mlflow.db")]
    procs = [
        harness.start([str(first), *args], tmp_path, env),
        harness.start([str(first), *args], tmp_path, env),
        harness.start([str(other), *args], tmp_path, env),
    ]
    saw_ray = False
    while any(p.poll() is None for p in procs) and not saw_ray:
        commands = [harness.describe(pid) for pid in harness.tagged_pids(env[harness.TAG])]
        saw_ray = any("raylet" in c or "gcs_server" in c for c in commands)
    outputs = [p.communicate(timeout=400) for p in procs]
    codes = [p.returncode for p in procs]
    refused = [i for i in (0, 1) if codes[i] == 1]
    assert sorted(codes[:2]) == [0, 1], (codes, outputs)
    assert codes[2] == 0, outputs[2]
    refusal = [line for line in outputs[refused[0]][1].splitlines() if line.strip()]
    assert len(refusal) == 1 and "is in use by another sweep (pid" in refusal[0], refusal
    assert str(tmp_path / "results" / "shared") in refusal[0]
    assert saw_ray, "the stray-process check saw no Ray process while the sweeps ran"

    recorded = duplicates = lost = 0
    for name in ("shared", "other"):
        audit = harness.audit(tmp_path / "results" / name, expected=2)
        assert not audit["problems"], audit["problems"]
        assert sorted(r["lr"] for r in audit["rows"]) == [0.1, 0.2]
        assert all(r["status"] == "ok" and r["attempt"] == 1 for r in audit["rows"])
        assert audit["parent_status"] == "FINISHED"
        recorded += audit["recorded"]
        duplicates += audit["duplicates"]
        lost += audit["lost"]
    fault_log(
        "two sweeps at once, same results dir and MLflow store",
        tried=3,
        recorded=recorded,
        duplicates=duplicates,
        lost=lost,
        tracebacks=sum(harness.tracebacks(o + e) for o, e in outputs),
        outcome="same sweep: the second refused in one line (lock); another sweep: both complete",
    )
    assert (recorded, duplicates, lost) == (4, 0, 0)
