"""One small real sweep run as a user runs it, on a pseudo-terminal, shared by the progress test
(its live line) and the MLflow UI test (its SQLite store): run once per test run, by whichever
pytest-xdist worker asks first (the others wait on a file lock, then read what it saved).

The fake workload (tests/orchestrator/fake_workload.py), 4 trials, 2 at a time, each reporting
3 times a second apart: the runs are named by the searched keys (weight format and lr); the
answer compares them with the baseline ``fixed<8,3> lr=0.1``."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.shared_run import once

SPEC = """\
name: ui
workload: fake
objectives: {test_error: min}
search: {max_concurrent: 2}
fixed: {reports: 3, sleep_s: 1.0}
space:
  weight_format: {grid: ['fixed<8,3>', 'fixed<6,3>']}
  lr: {grid: [0.1, 0.2]}
baseline: {weight_format: 'fixed<8,3>', lr: 0.1}
"""
#: the runs' names: the searched keys' values (orchestrator.tracking.run_name)
NAMES = {f"{w} lr={lr}" for w in ("fixed<8,3>", "fixed<6,3>") for lr in (0.1, 0.2)}
COLUMNS, ROWS = 150, 40


@dataclass(frozen=True)
class PtySweep:
    directory: Path
    output: str  # everything the terminal received (escape sequences included)
    returncode: int
    seconds: float

    @property
    def meta(self) -> dict:
        return json.loads((self.directory / "results" / "ui" / "sweep.json").read_text())


def run_on_pty(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[str, int]:
    """Run ``argv`` with a pseudo-terminal (COLUMNS x ROWS) as stdin/stdout/stderr; returns what
    it wrote and its exit status."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
        returncode = proc.wait(timeout=60)
    finally:
        os.close(master)
    return b"".join(chunks).decode(errors="replace"), returncode


def pty_sweep(fake_env: dict[str, str], shared: Path) -> PtySweep:
    """The sweep under ``shared``/ui_sweep (tests.shared_run.shared_dir), run by the first
    caller of the test run; what the terminal received is saved beside it for the others."""

    def run(root: Path) -> dict[str, Any]:
        output, code, seconds = _run(fake_env, root)
        return {"output": output, "returncode": code, "seconds": seconds}

    done = once(shared, "ui_sweep", run)
    return PtySweep(shared / "ui_sweep", done["output"], done["returncode"], done["seconds"])


def _run(fake_env: dict[str, str], root: Path) -> tuple[str, int, float]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ui.yaml").write_text(textwrap.dedent(SPEC))
    env = {
        **fake_env,
        "RAY_AIR_NEW_OUTPUT": "0",
        "TERM": "xterm-256color",
        "COLUMNS": str(COLUMNS),
        "LINES": str(ROWS),
        "LOWPREC_PROGRESS": "",  # the terminal decides
    }
    began = time.monotonic()
    output, code = run_on_pty(
        [sys.executable, "-m", "orchestrator.sweep", "ui.yaml", "--max-concurrent", "2"],
        root,
        env,
        timeout=400,
    )
    return output, code, time.monotonic() - began
