"""Fault 3 (and 4 inside a sweep): the driver stopped by SIGINT, and its process group killed by
SIGKILL, at several moments, each followed by ``--resume``, until the sweep ends.

One sweep of 6 trials goes through seven stops, in this order:

====================  ========  ===========================================================
moment                signal    how the moment is reached
====================  ========  ===========================================================
mid-trials            SIGINT    after 1 or 2 more rows landed, then U(0, 0.8) s
mid-trials            SIGKILL   after 1 more row landed, then U(0, 0.8) s
a trial's row write   SIGKILL   the trials pause with their row file half written
consolidation         SIGINT    the driver pauses with trials.parquet half written
consolidation         SIGKILL   the same
the report            SIGINT    the driver pauses inside the analysis report
the report            SIGKILL   the same
====================  ========  ===========================================================

(random draws: the recorded RNG). After each: the exit status is 130 (SIGINT) or the kill; a
SIGINT leaves no MLflow child run RUNNING (except one whose end is queued in the outbox, sent by
the next run); no trial whose row said ``ok`` ran again (its wall time, attempt and result
never change); a half-written file is never read and the next run says it removed it. At the
end: every trial exactly once in trials.parquet, the predictions dataset and MLflow (one
FINISHED child run per trial), the parent run FINISHED, no process left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator import tracking
from tests.faults import harness
from tests.orchestrator.helpers import write_spec

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TRIALS = 6
SPEC = """\
name: stopped
workload: fake
objectives: {test_error: min}
search: {max_concurrent: 2}
resources: {cpu: 0.5}
fixed: {reports: 3, sleep_s: 0.4}
space:
  lr: {grid: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}
"""
STAGES = [
    ("mid-trials", signal.SIGINT),
    ("mid-trials", signal.SIGKILL),
    ("row", signal.SIGKILL),
    ("consolidate", signal.SIGINT),
    ("consolidate", signal.SIGKILL),
    ("report", signal.SIGINT),
    ("report", signal.SIGKILL),
]


def _running_children(sweep: Path) -> list[str]:
    """Trials whose MLflow child run is RUNNING with no end queued for it: a trial whose end
    is queued (``mlflow_pending/<trial>.json`` holding its ``finish``, orchestrator.outbox) is
    sent on the next run; a stopped one must be KILLED at once."""
    import json

    meta = json.loads((sweep / "sweep.json").read_text())
    children = tracking.find_child_runs(
        meta["tracking_uri"], meta["experiment_id"], meta["parent_run_id"]
    )
    queued = set()
    for path in (sweep / "mlflow_pending").glob("*.json"):
        pending = json.loads(path.read_text())
        if any(op.get("op") in ("finish", "terminate") for op in pending.get("ops", [])):
            queued.add(pending.get("trial_id", path.stem))
    return [
        c.data.tags.get("trial_id", c.info.run_name)
        for c in children
        if c.info.status == "RUNNING" and c.data.tags.get("trial_id") not in queued
    ]


def _ok_rows(sweep: Path) -> dict[str, tuple[object, ...]]:
    """What a rerun would change in the row of each trial whose row says ok: its wall time,
    attempt, first step and result (the row may be rewritten only to fill in its MLflow run id,
    when the sweep makes a lost child run from it)."""
    import pyarrow.parquet as pq

    rows = {}
    for trial_id in harness.row_files(sweep):
        row = pq.read_table(sweep / "trials" / f"{trial_id}.parquet").to_pylist()[0]
        if row["status"] == "ok":
            keys = ("wall_s", "attempt", "start_step", "test_error")
            rows[trial_id] = tuple(row[k] for k in keys)
    return rows


def test_driver_stopped_at_random_moments_then_resumed(
    fault_env: dict[str, str], tmp_path: Path, fault_rng, fault_log
) -> None:
    spec = write_spec(tmp_path, SPEC)
    sweep = tmp_path / "results" / "stopped"
    paused = Path(fault_env["LOWPREC_FAULT_DIR"]) / "paused"
    finished: dict[str, tuple[object, ...]] = {}  # ok rows so far: never run again
    said_removed = tracebacks = 0
    notes = []
    for index, (moment, sig) in enumerate(STAGES):
        env = dict(fault_env)
        if moment != "mid-trials":
            env["LOWPREC_FAULT_PAUSE"] = moment
        paused.unlink(missing_ok=True)
        log = tmp_path / f"run{index}"
        args = [str(spec), *(["--resume"] if index else [])]
        proc = harness.start(args, tmp_path, env, driver=True, log=log)
        before = len(harness.row_files(sweep))
        if moment == "mid-trials":
            more = fault_rng.randint(1, 2) if sig == signal.SIGINT else 1
            harness.wait_for(
                lambda b=before, m=more: len(harness.row_files(sweep)) >= b + m,
                proc, 300, f"{more} more row(s)", log,
            )  # fmt: skip
            time.sleep(fault_rng.uniform(0.0, 0.8))
        else:
            harness.wait_for(paused.exists, proc, 300, f"the pause at {moment}", log)
        assert proc.poll() is None, harness.output(log)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=180)
        out, err = harness.output(log)
        tracebacks += harness.tracebacks(out + err)
        said_removed += "unfinished write" in err
        expected = 130 if sig == signal.SIGINT else -signal.SIGKILL
        assert proc.returncode == expected, (moment, sig, proc.returncode, out, err)
        if sig == signal.SIGINT:
            assert "--resume" in out + err, (moment, out, err)
            assert not _running_children(sweep), f"RUNNING after SIGINT at {moment}"
        if moment in ("row", "consolidate") and sig == signal.SIGKILL:
            half = list(sweep.rglob(".*.tmp"))
            assert half, f"no half-written file left by the kill at {moment}"
        rows = _ok_rows(sweep)
        rewritten = [t for t, v in finished.items() if rows.get(t) != v]
        assert not rewritten, f"finished trials ran again after stop {index}: {rewritten}"
        finished = rows
        notes.append(f"{moment}/{signal.Signals(sig).name}: {len(rows)} ok")
        if moment == "mid-trials":
            assert len(rows) < TRIALS, "the sweep ended before it could be stopped"

    log = tmp_path / "final"
    proc = harness.start([str(spec), "--resume"], tmp_path, fault_env, log=log)
    proc.wait(timeout=400)
    out, err = harness.output(log)
    tracebacks += harness.tracebacks(out + err)
    assert proc.returncode == 0, (out, err)
    assert f"{TRIALS}/{TRIALS} trials recorded (ok {TRIALS}," in out, out
    rows = _ok_rows(sweep)
    assert not [t for t, v in finished.items() if rows.get(t) != v], "a finished trial reran"
    audit = harness.audit(sweep, expected=TRIALS)
    fault_log(
        "driver SIGINT / SIGKILL (mid-trials, row write, consolidation, report), then --resume",
        tried=len(STAGES),
        recorded=audit["recorded"],
        duplicates=audit["duplicates"],
        lost=audit["lost"],
        tracebacks=tracebacks,
        outcome="no finished trial rerun; each trial once in trials.parquet, predictions and "
        "MLflow; no child RUNNING after a SIGINT; half-written files removed and said",
    )
    assert not audit["problems"], audit["problems"]
    assert (audit["recorded"], audit["duplicates"], audit["lost"]) == (TRIALS, 0, 0)
    assert sorted(r["lr"] for r in audit["rows"]) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    # a stopped driver is no failed attempt: every trial ended ok on its first
    assert all(r["status"] == "ok" and r["attempt"] == 1 for r in audit["rows"]), audit["rows"]
    assert audit["parent_status"] == "FINISHED"
    assert said_removed >= 1, "no run said it removed the half-written files"
    assert tracebacks == 0


def test_sigint_stops_a_driver_started_with_sigint_ignored(
    fault_env: dict[str, str], tmp_path: Path, fault_log
) -> None:
    """The cause of a resumed driver that ran on, with its Ray, 180 s after a SIGINT in
    consolidation or the report: the test process had been started as a shell script's
    background job (``make test > log &``), which ignores SIGINT, and every process it starts
    inherits that. Tune's ``fit`` handles SIGINT regardless, so the SIGINTs that came while trials
    ran stopped the driver; the ones that came after ``fit`` (consolidation, the report) were
    ignored. The driver now stops on SIGINT at every moment: here, paused in consolidation."""
    spec = write_spec(tmp_path, SPEC.replace("0.3, 0.4, 0.5, 0.6", "0.3"))
    paused = Path(fault_env["LOWPREC_FAULT_DIR"]) / "paused"
    env = {**fault_env, "LOWPREC_FAULT_PAUSE": "consolidate"}
    log = tmp_path / "ignored"
    proc = harness.start([str(spec)], tmp_path, env, driver=True, log=log, sigint_ignored=True)
    harness.wait_for(paused.exists, proc, 300, "the pause in consolidation", log)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError("the driver ran on 120 s after SIGINT in consolidation") from None
    out, err = harness.output(log)
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert "--resume" in out + err, (out, err)
    fault_log(
        "driver started with SIGINT ignored (a script's background job), SIGINT in consolidation",
        tried=1,
        tracebacks=harness.tracebacks(out + err),
        outcome="exit 130 and its Ray gone (Tune alone stopped on SIGINT during the trials)",
    )
    assert harness.tracebacks(out + err) == 0
