"""Run Python code in a fresh process from the repository root (imports counted from nothing:
what a new command-line process would load)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def stdout_lines(code: str, timeout: float = 120) -> list[str]:
    """The lines ``python -c code`` prints, run in the repository root; raises when it fails."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    ).stdout.splitlines()
