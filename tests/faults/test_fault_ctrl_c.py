"""Ctrl-C under load: a CPU burner per core and a second, unrelated sweep run beside the sweep
(:mod:`tests.faults.load`).

1. Ctrl-C (SIGINT to the driver's process group, as a terminal sends it) once a trial has ended:
   the driver and every process of its Ray are gone within ``STOP_S`` seconds; exit 130; the rows
   written are intact; no MLflow child run is left RUNNING (unless its end is queued).
2. ``--resume``, then Ctrl-C and, once the driver said it is stopping, Ctrl-C again: it stops at
   once (within ``AGAIN_S`` seconds of the second), Ray's processes gone with it.
3. ``--resume`` to the end: every trial exactly once in trials.parquet, the predictions and
   MLflow; no trial whose row said ok ran again; the unrelated sweep's processes and files
   untouched throughout (it keeps writing rows).

Every wait is on an event (a row file, a line, a process ending), bounded generously; the bounds
under test are the times from a signal to the last process gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.faults import harness
from tests.faults.load import machine_load
from tests.faults.test_fault_driver_stopped import _ok_rows, _running_children
from tests.orchestrator.helpers import write_spec

pytestmark = [pytest.mark.faults, pytest.mark.slow]

#: from Ctrl-C to the driver and its Ray gone, under the load (30 s; 10 s on a quiet machine)
STOP_S = 30.0
#: from the second Ctrl-C to the driver and its Ray gone, under the load
AGAIN_S = 15.0
TRIALS = 6
SPEC = """\
name: ctrlc
workload: fake
objectives: {test_error: min}
search: {max_concurrent: 2}
resources: {cpu: 0.5}
fixed: {reports: 4, sleep_s: 0.5}
space:
  lr: {grid: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}
"""


def _gone_within(proc: subprocess.Popen, tag: str, limit: float, since: float) -> float:
    """Seconds from ``since`` until ``proc`` and every process tagged ``tag`` ended (waiting up to
    ``limit`` × 4, so that a slow stop is measured, not only failed)."""
    deadline = since + 4 * limit
    while proc.poll() is None or harness.tagged_pids(tag):
        if time.monotonic() > deadline:
            left = [harness.describe(p) for p in harness.tagged_pids(tag)]
            raise AssertionError(f"still running {4 * limit:g} s after Ctrl-C: {left}")
        time.sleep(0.1)
    return time.monotonic() - since


def test_ctrl_c_under_load_then_again_then_resumed(
    fault_env: dict[str, str], tmp_path: Path, fault_log
) -> None:
    spec = write_spec(tmp_path, SPEC)
    sweep = tmp_path / "results" / "ctrlc"
    tag = fault_env[harness.TAG]
    tracebacks = 0
    with machine_load(tmp_path / "load", fault_env) as load:
        harness.wait_for(lambda: load.rows() >= 1, load.sweep, 300, "the unrelated sweep's row")

        # 1. Ctrl-C once a trial has ended
        log = tmp_path / "first"
        proc = harness.start([str(spec)], tmp_path, fault_env, log=log)
        harness.wait_for(lambda: harness.row_files(sweep), proc, 300, "the first row", log)
        before = _ok_rows(sweep)
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        first_s = _gone_within(proc, tag, STOP_S, t0)
        out, err = harness.output(log)
        tracebacks += harness.tracebacks(out + err)
        assert proc.returncode == 130, (proc.returncode, out, err)
        assert "--resume" in out + err, (out, err)
        assert not _running_children(sweep), "a child run left RUNNING after Ctrl-C"
        finished = _ok_rows(sweep)
        # the rows written before: the same results (a row is rewritten only to add its run id)
        assert {t: finished.get(t) for t in before} == before
        assert len(finished) < TRIALS, "the sweep ended before Ctrl-C"

        # 2. --resume; Ctrl-C; once the driver says it is stopping, Ctrl-C again
        log = tmp_path / "again"
        proc = harness.start([str(spec), "--resume"], tmp_path, fault_env, log=log)
        harness.wait_for(
            lambda: len(harness.row_files(sweep)) > len(finished), proc, 300, "a new row", log
        )
        os.killpg(proc.pid, signal.SIGINT)
        said = "Ctrl-C again stops at once"
        harness.wait_for(lambda: said in harness.output(log)[1], proc, 60, repr(said), log)
        t1 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        again_s = _gone_within(proc, tag, AGAIN_S, t1)
        out, err = harness.output(log)
        tracebacks += harness.tracebacks(out + err)
        assert proc.returncode == 130, (proc.returncode, out, err)
        assert not _running_children(sweep), "a child run left RUNNING after Ctrl-C twice"
        rows = _ok_rows(sweep)
        assert not [t for t, v in finished.items() if rows.get(t) != v], "a finished trial reran"
        finished = rows

        # 3. --resume to the end, the load still running
        log = tmp_path / "final"
        proc = harness.start([str(spec), "--resume"], tmp_path, fault_env, log=log)
        proc.wait(timeout=600)
        out, err = harness.output(log)
        tracebacks += harness.tracebacks(out + err)
        assert proc.returncode == 0, (out, err)
        beside_rows = load.rows()
        beside_rc = load.sweep.poll()  # None: still running; 0: it finished meanwhile
    rows = _ok_rows(sweep)
    assert not [t for t, v in finished.items() if rows.get(t) != v], "a finished trial reran"
    audit = harness.audit(sweep, expected=TRIALS)
    fault_log(
        "Ctrl-C under load (a CPU burner per core, a second sweep), Ctrl-C twice, --resume",
        tried=2,
        recorded=audit["recorded"],
        duplicates=audit["duplicates"],
        lost=audit["lost"],
        tracebacks=tracebacks,
        outcome=f"driver and its Ray gone {first_s:.1f} s after Ctrl-C (bound {STOP_S:g}), "
        f"{again_s:.1f} s after a second (bound {AGAIN_S:g}); --resume: each trial once; "
        f"the other sweep ran on ({beside_rows} rows)",
    )
    assert first_s <= STOP_S, f"{first_s:.1f} s from Ctrl-C to the driver and its Ray gone"
    assert again_s <= AGAIN_S, f"{again_s:.1f} s from the second Ctrl-C to all gone"
    assert not audit["problems"], audit["problems"]
    assert (audit["recorded"], audit["duplicates"], audit["lost"]) == (TRIALS, 0, 0)
    assert audit["parent_status"] == "FINISHED"
    assert beside_rc in (None, 0), f"the unrelated sweep ended with {beside_rc}"
    assert beside_rows >= 1
    assert tracebacks == 0
