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
import random
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults import harness
from tests.orchestrator.conftest import (  # noqa: F401 (fixtures the fault tests use)
    fake_env,
    fake_registered,
    ray_env,
)

SITECUSTOMIZE = """\
# The fake workload and the injection points, set up only in the processes that import what they
# change (a trial imports workloads; a writer, orchestrator.store): Ray's own helper processes
# stay light and start fast, even on a loaded machine.
import importlib.abc
import sys


def _fake():
    import tests.orchestrator.fake_registry as fake

    fake.register()


def _pause():
    import tests.faults.pause as pause

    pause.install_from_env()


class _AfterImport(importlib.abc.MetaPathFinder):
    hooks = {"workloads": _fake, "orchestrator.store": _pause}

    def find_spec(self, name, path=None, target=None):
        hook = self.hooks.get(name)
        if hook is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            try:
                hook()
            except Exception as exc:  # never break an unrelated interpreter
                print(f"sitecustomize: fault set-up failed: {exc}", file=sys.stderr)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AfterImport())
"""

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


@pytest.fixture(scope="session")
def fault_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose ``sitecustomize`` registers the fake workload and the injection
    points (:mod:`tests.faults.pause`) in every Python process started from the tests."""
    site = tmp_path_factory.mktemp("fault-site")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return site


@pytest.fixture
def fault_env(fault_site: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of the processes a fault test starts, tagged (``LOWPREC_FAULT_TAG``)
    so that whatever they leave running is found afterwards: the test fails, naming it, when
    a tagged process outlives it by 30 s (it is killed then). This process's environment
    carries the tag too while the test runs (Ray started in-process inherits it)."""
    tag = uuid.uuid4().hex
    pause_dir = tmp_path / "fault-points"
    pause_dir.mkdir()
    env = dict(os.environ)
    parts = [str(fault_site), str(harness.REPO)]
    parts += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        PYTHONPATH=os.pathsep.join(parts),
        RAY_AUTH_MODE="disabled",
        RAY_AIR_NEW_OUTPUT="0",
        LOWPREC_FAULT_DIR=str(pause_dir),
        LOWPREC_MLFLOW_WAIT_S="5",
        **{harness.TAG: tag},
    )
    env.pop("LOWPREC_FAULT_PAUSE", None)
    saved = os.environ.get(harness.TAG)
    os.environ[harness.TAG] = tag
    try:
        yield env
    finally:
        if saved is None:
            os.environ.pop(harness.TAG, None)
        else:
            os.environ[harness.TAG] = saved
    strays = harness.strays_after(tag)
    assert not strays, f"processes left running after the test (now killed): {strays}"


@pytest.fixture
def fault_rng(request: pytest.FixtureRequest) -> random.Random:
    """The RNG of this test's injection points: the recorded seed (``FAULTS_SEED``, default
    in :mod:`tests.faults.harness`) and the test's id; never tuned to pass."""
    return harness.rng_for(request.node.nodeid)


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
