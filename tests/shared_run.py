"""Expensive set-ups run once per test run and read by tests in several files: whichever
pytest-xdist worker asks first runs it, under a file lock; the others wait on that lock, then read
what it saved (a JSON file beside the set-up's directory).

    smoke_sweep(shared)   ``python -m orchestrator.sweep search_spaces/smoke.yaml`` (local Ray,
                          MLflow in a SQLite file): its results directory, stdout, stderr, status

Tests that change what such a set-up wrote work on a copy of it.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SMOKE_SPEC = REPO / "search_spaces" / "smoke.yaml"


def shared_dir(tmp_path_factory: Any) -> Path:
    """A directory every pytest-xdist worker of this test run sees (the parent of each worker's
    base temporary directory), or this process's own base temporary directory without xdist
    (whose parent holds earlier runs' directories too)."""
    base = Path(tmp_path_factory.getbasetemp())
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(shared: Path, name: str, run: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """``run(shared/name)`` the first time any worker of this test run asks for ``name``; its
    JSON-able result, saved as ``shared/name.json``, for every caller."""
    saved = shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not saved.exists():
            directory = shared / name
            directory.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(run(directory)))
    return json.loads(saved.read_text())


@dataclass(frozen=True)
class SweepRun:
    root: Path  # holds results/ and mlflow.db
    name: str
    stdout: str
    stderr: str
    returncode: int

    @property
    def directory(self) -> Path:
        """The sweep's results directory."""
        return self.root / "results" / self.name

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"


def run_sweep_cli(
    spec_file: Path, root: Path, name: str, env: dict[str, str] | None = None
) -> SweepRun:
    """``python -m orchestrator.sweep SPEC`` into ``root``/results, MLflow in ``root``/mlflow.db,
    two trials at a time."""
    result = subprocess.run(
        [
            sys.executable, "-m", "orchestrator.sweep", str(spec_file),
            "--results", str(root / "results"),
            "--mlflow-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--max-concurrent", "2",
        ],
        cwd=root, capture_output=True, text=True, timeout=600,
        env=env if env is not None else {**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    return SweepRun(root, name, result.stdout, result.stderr, result.returncode)


def smoke_sweep(shared: Path) -> SweepRun:
    """search_spaces/smoke.yaml run once per test run (module docstring)."""

    def run(root: Path) -> dict[str, Any]:
        done = run_sweep_cli(SMOKE_SPEC, root, "smoke")
        return {"stdout": done.stdout, "stderr": done.stderr, "returncode": done.returncode}

    saved = once(shared, "smoke_sweep", run)
    return SweepRun(shared / "smoke_sweep", "smoke", **saved)
