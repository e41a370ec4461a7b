"""What every benchmark's test reads: the JSON object on the last line of its output."""

from __future__ import annotations

import json

import pytest


def last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    """The last line of the captured output as JSON; a table comes before it."""
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) > 1, "a table comes before the JSON line"
    return json.loads(lines[-1])
