"""The fault and bad-input table of the README's "Reliability" section.

Every test under ``tests/faults`` records what it tried through the ``fault_log`` fixture:

    fault_log("trial raises at a random step", tried=5, recorded=5, duplicates=0, lost=0,
              tracebacks=0, outcome="failed then retried from its checkpoint; sweep complete")

Rows go to the JSON-lines file named by ``$FAULTS_LOG`` (``make faults`` sets it) and, at the end
of the session, into one Markdown table printed by pytest (rows of one name are summed).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

_ROWS: list[dict[str, Any]] = []
COLUMNS = ("tried", "recorded", "duplicates", "lost", "tracebacks")


@pytest.fixture
def fault_log(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``fault_log(name, tried=, recorded=, duplicates=, lost=, tracebacks=, outcome=)``."""

    def record(name: str, *, outcome: str, **counts: int) -> None:
        unknown = set(counts) - set(COLUMNS)
        if unknown:
            raise ValueError(f"fault_log: unknown column(s) {sorted(unknown)}")
        row = {"name": name, "outcome": outcome, "test": request.node.nodeid, **counts}
        _ROWS.append(row)
        path = os.environ.get("FAULTS_LOG")
        if path:
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")

    return record


def table(rows: list[dict[str, Any]]) -> str:
    """Rows summed by name, as a Markdown table."""
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        into = merged.setdefault(row["name"], {"outcome": row["outcome"]})
        for column in COLUMNS:
            if column in row:
                into[column] = into.get(column, 0) + int(row[column])
    lines = [
        "| fault or bad input | " + " | ".join(COLUMNS) + " | outcome |",
        "|---|" + "---|" * (len(COLUMNS) + 1),
    ]
    for name, row in merged.items():
        cells = [str(row.get(c, "-")) for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['outcome']} |")
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _ROWS:
        terminalreporter.write_sep("-", "faults and bad inputs tried")
        terminalreporter.write_line(table(_ROWS))


def main(argv: list[str]) -> int:
    """``python -m tests.faults.conftest FAULTS_LOG``: the table from a JSON-lines log."""
    if len(argv) != 1:
        print("usage: python -m tests.faults.conftest FAULTS_LOG", file=sys.stderr)
        return 2
    try:
        with open(argv[0]) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as err:
        print(f"{argv[0]}: cannot read the faults log ({err}); run `make faults`", file=sys.stderr)
        return 2
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
