"""Helpers shared by the orchestrator's tests."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_spec(directory: Path, text: str, name: str = "spec.yaml") -> Path:
    """``text`` (dedented) written to ``directory/name``."""
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path
