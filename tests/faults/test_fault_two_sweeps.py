"""Fault 6: two sweeps started at once on the same results directory and MLflow store.

Three drivers start together: two of the same sweep (same name, so the same directory) and one
of another sweep. The second driver of the same sweep is refused at once with one line naming
the directory and the holder (``orchestrator.sweeplock``); the two others both run to the end
without touching each other's rows or runs: each trial recorded exactly once, in trials.parquet,
the predictions dataset and MLflow (one finished child run per trial, under its own parent).
While they run, the stray-process check is shown to see Ray's own processes."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest

from tests.faults import harness
from tests.faults.load import machine_load
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
LRS = "[0.1, 0.2, 0.3, 0.4]"


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
        time.sleep(0.2)  # a scan of /proc per 0.2 s, not a core spinning beside the sweeps
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


def _sockets(tag: str) -> tuple[set[int], set[int]]:
    """Loopback ports the processes tagged ``tag`` listen on, and the loopback ports they are
    connected to (TCP)."""
    import psutil

    listening, connected = set(), set()
    for pid in harness.tagged_pids(tag):
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:  # ended meanwhile
            continue
        for conn in conns:
            if conn.status == psutil.CONN_LISTEN:
                listening.add(conn.laddr.port)
            elif conn.raddr and conn.raddr.ip.startswith("127."):
                connected.add(conn.raddr.port)
    return listening, connected


def _sessions(tag: str) -> set[str]:
    """Ray session directories named on the command lines of the processes tagged ``tag``."""
    found = set()
    for pid in harness.tagged_pids(tag):
        found.update(re.findall(r"/session_[0-9_-]+", harness.command_line(pid)))
    return found


def test_two_sweeps_side_by_side_under_load(
    fault_env: dict[str, str], tmp_path: Path, fault_log
) -> None:
    """Two sweeps of the same name in two results directories (each its own MLflow store and
    local Ray), started at once beside a CPU burner per core and a third sweep: both complete,
    each trial once; while they run, neither sweep's processes listen on or connect to a port
    of the other's, nor share its Ray session; each writes only under its own directory."""
    spec = write_spec(tmp_path, SPEC.replace("NAME", "same").replace("[0.1, 0.2]", LRS), "s.yaml")
    tags = [fault_env[harness.TAG], uuid.uuid4().hex]  # the second also checked for strays
    procs, logs = [], []
    with machine_load(tmp_path / "load", fault_env):
        for i, tag in enumerate(tags):
            env = {**fault_env, harness.TAG: tag}
            results, store = tmp_path / f"r{i}", tmp_path / f"m{i}.db"
            args = ["--results", str(results), "--mlflow-uri", str(store)]
            logs.append(tmp_path / f"sweep{i}")
            procs.append(harness.start([str(spec), *args], tmp_path, env, log=logs[-1]))
        # both running trials: every Ray process of both is up
        for i, proc in enumerate(procs):
            rows = lambda i=i: harness.row_files(tmp_path / f"r{i}" / "same")  # noqa: E731
            harness.wait_for(rows, proc, 400, f"sweep {i}'s first row", logs[i])
        samples = 0
        while all(p.poll() is None for p in procs):
            (listen0, conn0), (listen1, conn1) = _sockets(tags[0]), _sockets(tags[1])
            assert not listen0 & listen1, listen0 & listen1
            assert not conn0 & listen1, f"sweep 0 connected to sweep 1's ports {conn0 & listen1}"
            assert not conn1 & listen0, f"sweep 1 connected to sweep 0's ports {conn1 & listen0}"
            sessions = [_sessions(t) for t in tags]
            assert not sessions[0] & sessions[1], sessions
            assert len(sessions[0]) <= 1 and len(sessions[1]) <= 1, sessions
            samples += bool(listen0 and listen1 and all(sessions))
        for proc in procs:
            proc.wait(timeout=600)
    outputs = [harness.output(log) for log in logs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert samples >= 1, "no sample of both sweeps' sockets while both ran"
    recorded = duplicates = lost = 0
    for i in (0, 1):
        sweep = tmp_path / f"r{i}" / "same"
        audit = harness.audit(sweep, expected=len(LRS.split(",")))
        assert not audit["problems"], audit["problems"]
        assert all(r["status"] == "ok" and r["attempt"] == 1 for r in audit["rows"])
        assert audit["parent_status"] == "FINISHED"
        meta = json.loads((sweep / "sweep.json").read_text())
        assert meta["tune_path"].startswith(str(tmp_path / f"r{i}")), meta
        assert meta["tracking_uri"].endswith(f"m{i}.db"), meta
        recorded += audit["recorded"]
        duplicates += audit["duplicates"]
        lost += audit["lost"]
    strays = harness.strays_after(tags[1])
    assert not strays, strays
    fault_log(
        "two sweeps side by side under load, separate results dirs, MLflow stores and Rays",
        tried=2,
        recorded=recorded,
        duplicates=duplicates,
        lost=lost,
        tracebacks=sum(harness.tracebacks(o + e) for o, e in outputs),
        outcome=f"both complete; disjoint listening ports and Ray sessions, no connection to "
        f"the other's ports ({samples} samples while both ran)",
    )
    assert (recorded, duplicates, lost) == (2 * len(LRS.split(",")), 0, 0)
