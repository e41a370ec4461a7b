"""Fault 1: a trial raises at a random step (drawn from the recorded RNG).

Three trials run side by side: one that raises once, after its checkpoint of step K, one that
raises on every attempt, and one that never raises. With ``max_failures: 2``: the first is
retried from its checkpoint (it resumes at step K + 1, attempt 2) and ends ok; the second is
tried three times and recorded ``failed`` with its error; the third is untouched; the sweep
finishes. Each trial exactly once in trials.parquet, the predictions and MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import harness
from tests.orchestrator.helpers import write_spec

pytestmark = [pytest.mark.faults, pytest.mark.slow]

REPORTS = 4
MAX_FAILURES = 2
SPEC = """\
name: raising
workload: fake
objectives: {test_error: min}
search: {max_concurrent: 3}
resources: {cpu: 0.5}
max_failures: MAX_FAILURES
fixed: {reports: REPORTS, sleep_s: 0.0, marker_dir: MARKERS, raise_step: STEP}
space:
  behaviour: {grid: [ok, raise_once, raise]}
"""


def test_trial_raising_at_a_random_step(
    fault_env: dict[str, str], tmp_path: Path, fault_rng, fault_log
) -> None:
    step = fault_rng.randrange(0, REPORTS - 1)  # a step with a later one to resume at
    markers = tmp_path / "markers"
    markers.mkdir()
    text = SPEC.replace("MAX_FAILURES", str(MAX_FAILURES)).replace("REPORTS", str(REPORTS))
    spec = write_spec(tmp_path, text.replace("MARKERS", str(markers)).replace("STEP", str(step)))
    proc = harness.start([str(spec)], tmp_path, fault_env)
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, out + err
    assert "3/3 trials recorded (ok 2, diverged 0, failed 1)" in out, out + err
    assert "raised; retrying it" in err, err  # the failed attempt, said as it happened

    audit = harness.audit(tmp_path / "results" / "raising", expected=3)
    rows = {r["behaviour"]: r for r in audit["rows"]}
    once, always, fine = rows["raise_once"], rows["raise"], rows["ok"]
    assert once["status"] == "ok" and once["attempt"] == 2, once
    assert once["start_step"] == step + 1, (step, once)  # resumed from its checkpoint
    assert always["status"] == "failed" and always["attempt"] == MAX_FAILURES + 1, always
    assert "fake failure: this trial always raises" in always["error"], always
    assert fine["status"] == "ok" and fine["attempt"] == 1 and fine["start_step"] == 0, fine
    fault_log(
        "trial raises at a random step",
        tried=3,
        recorded=audit["recorded"],
        duplicates=audit["duplicates"],
        lost=audit["lost"],
        tracebacks=harness.tracebacks(out + err),
        outcome=f"raised after step {step}: retried from its checkpoint, ok; always raising: "
        f"failed after {MAX_FAILURES + 1} attempts with its error; sweep finished",
    )
    assert not audit["problems"], audit["problems"]
    assert (audit["recorded"], audit["duplicates"], audit["lost"]) == (3, 0, 0)
    assert audit["parent_status"] == "FINISHED"
