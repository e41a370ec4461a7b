"""SIGINT to a sweep's driver alone (``kill -INT <pid>``, not its process group) is an
interruption: exit 130, the parent run KILLED, and ``--resume`` runs the stopped trials to the end.

Ctrl-C and SIGKILL to the driver's process group at every moment (mid-trials, a row's write,
consolidation, the report), each followed by ``--resume``:
tests/faults/test_fault_driver_stopped.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from orchestrator import tracking
from tests.orchestrator.helpers import write_spec

pytestmark = pytest.mark.slow

SPEC = """\
name: resumable
workload: fake
objectives: {test_error: min}
search: {max_concurrent: 2}
fixed: {reports: 3, sleep_s: 1.0}
space:
  lr: {grid: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}
"""
TRIALS = 6


def _start(spec: Path, cwd: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.sweep", str(spec), *extra],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group, like a shell job
    )  # fmt: skip


def _rows(cwd: Path) -> list[str]:
    directory = cwd / "results" / "resumable" / "trials"
    return sorted(p.stem for p in directory.glob("*.parquet")) if directory.exists() else []


def _wait_for_rows(proc: subprocess.Popen, cwd: Path, at_least: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(_rows(cwd)) < at_least and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.2)
    assert len(_rows(cwd)) >= at_least


def test_sigint_to_the_driver_alone_is_an_interruption(
    fake_env: dict[str, str], tmp_path: Path
) -> None:
    """``kill -INT <driver>`` (not its group): Tune stops the trials gracefully, so they end
    TERMINATED; the driver must still report an interruption, not a finished sweep."""
    # every trial running at once, so that none is left PENDING when Tune stops
    spec = write_spec(tmp_path, SPEC.replace("reports: 3", "reports: 5").replace(
        "[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]", "[0.1, 0.2]"
    ))  # fmt: skip
    # not on a terminal the sweep prints a line per ended trial, and a heartbeat (every 1 s here)
    heartbeat = {"LOWPREC_HEARTBEAT_S": "1"}
    proc = _start(spec, tmp_path, {**fake_env, "RAY_AIR_NEW_OUTPUT": "0", **heartbeat})
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # wait for both trials to run
        seen.append(line)
        if "| 2 running" in line:
            break
    os.kill(proc.pid, signal.SIGINT)
    rest, _ = proc.communicate(timeout=180)
    output = "".join(seen) + rest
    assert proc.returncode == 130, output
    assert "sweep resumable interrupted" in output and "--resume" in output, output
    assert "interrupted (SIGINT)" in output, output  # seen as such, not only by missing rows
    assert "analysis report skipped" not in output, output
    assert len(_rows(tmp_path)) < 2
    meta = json.loads((tmp_path / "results" / "resumable" / "sweep.json").read_text())
    parent = tracking.client(meta["tracking_uri"]).get_run(meta["parent_run_id"])
    assert parent.info.status == "KILLED"
    # Tune saved the stopped trials as unfinished: --resume runs them to the end
    output, _ = _start(spec, tmp_path, fake_env, "--resume").communicate(timeout=240)
    assert "sweep resumable finished: 2/2 trials recorded (ok 2," in output, output


KILLED = """\
name: resumable
workload: fake
objectives: {test_error: min}
search: SEARCH
fixed: {reports: 1, sleep_s: 0.2}
space:
  lr: SPACE
"""
KILLED_TRIALS = 6


@pytest.mark.parametrize(
    "search, space",
    [
        ("{max_concurrent: 1}", "{grid: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}"),
        (f"{{algorithm: optuna, num_samples: {KILLED_TRIALS}, max_concurrent: 1, seed: 5}}",
         "{uniform: [0.01, 1.0]}"),
    ],
    ids=["grid", "optuna"],
)  # fmt: skip
def test_killed_driver_resumed_runs_each_configuration_once(
    fake_env: dict[str, str], tmp_path: Path, search: str, space: str
) -> None:
    """Tune saves its state at most every 10 s: trials of 0.2 s, one at a time, mean that the
    trials after the first few ran and wrote their rows after its last save when the driver is
    killed at the third row. The resumed sweep must count them, not run their configurations
    again under new ids (before the journal of handed-out trials: 7 or 8 rows of 6)."""
    spec = write_spec(tmp_path, KILLED.replace("SEARCH", search).replace("SPACE", space))
    env = {**fake_env, "RAY_AIR_NEW_OUTPUT": "0"}
    env.pop("LOWPREC_OPTUNA_STORAGE", None)
    first = _start(spec, tmp_path, env)
    _wait_for_rows(first, tmp_path, 3, timeout=300)
    os.killpg(first.pid, signal.SIGKILL)  # the driver and its Ray, as a lost machine would
    first.communicate(timeout=60)
    assert len(_rows(tmp_path)) < KILLED_TRIALS, "the sweep ended before it could be killed"

    output, _ = (resumed := _start(spec, tmp_path, env, "--resume")).communicate(timeout=400)
    assert resumed.returncode == 0, output
    expected = f"sweep resumable finished: {KILLED_TRIALS}/{KILLED_TRIALS} trials recorded"
    assert expected in output, output
    table = pq.read_table(tmp_path / "results" / "resumable" / "trials.parquet").to_pylist()
    assert len(table) == KILLED_TRIALS and all(r["status"] == "ok" for r in table), table
    assert len({r["lr"] for r in table}) == KILLED_TRIALS, table  # no configuration twice
