"""Fault: a trial's worker process is lost (it ends with ``os._exit``, as a worker on a removed
node or one killed for memory does) and Tune, its retries spent, ends the trial ERROR.

The trial wrote no row, and nothing in the worker is left to write one: the driver records it
``failed``, with Tune's reason, and ends its MLflow child run FAILED, so that trials.parquet and
the closing counts hold every trial. ``--resume`` then runs it again (Tune resumes errored
trials) and its own ``ok`` row replaces the ``failed`` one: each trial exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import harness
from tests.orchestrator.helpers import write_spec

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SPEC = """\
name: lost
workload: fake
objectives: {test_error: min}
search: {max_concurrent: 2}
resources: {cpu: 0.5}
max_failures: 0
fixed: {reports: 2, sleep_s: 0.0, marker_dir: MARKERS, raise_step: 0}
space:
  behaviour: {grid: [ok, die_once]}
"""


def test_a_lost_worker_is_recorded_failed_then_resumed(
    fault_env: dict[str, str], tmp_path: Path, fault_log
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    spec = write_spec(tmp_path, SPEC.replace("MARKERS", str(markers)))
    sweep = tmp_path / "results" / "lost"

    proc = harness.start([str(spec)], tmp_path, fault_env)
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, out + err
    assert "2/2 trials recorded (ok 1, diverged 0, failed 1)" in out, out + err
    audit = harness.audit(sweep, expected=2)
    assert not audit["problems"], audit["problems"]
    rows = {r["behaviour"]: r for r in audit["rows"]}
    lost = rows["die_once"]
    assert lost["status"] == "failed" and lost["attempt"] == 1, lost
    assert "Ray Tune ended the trial after 1 failure(s)" in lost["error"], lost
    assert rows["ok"]["status"] == "ok"

    proc = harness.start([str(spec), "--resume"], tmp_path, fault_env)
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, out + err
    assert "2/2 trials recorded (ok 2, diverged 0, failed 0)" in out, out + err
    audit = harness.audit(sweep, expected=2)
    rows = {r["behaviour"]: r for r in audit["rows"]}
    assert rows["die_once"]["status"] == "ok" and rows["die_once"]["attempt"] == 2, rows
    fault_log(
        "trial's worker process lost",
        tried=2,
        recorded=audit["recorded"],
        duplicates=audit["duplicates"],
        lost=audit["lost"],
        tracebacks=harness.tracebacks(out + err),
        outcome="recorded failed with Ray's reason, run FAILED; --resume: ok, exactly once",
    )
    assert not audit["problems"], audit["problems"]
    assert (audit["recorded"], audit["duplicates"], audit["lost"]) == (2, 0, 0)
    assert audit["parent_status"] == "FINISHED"
