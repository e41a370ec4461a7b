"""Fixtures of the orchestrator's tests: the fake workload registered in this process and in
every process the tests start (subprocesses and Ray workers, through a ``sitecustomize`` on
``PYTHONPATH``), and search-space files written under ``tmp_path``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SITECUSTOMIZE = """\
try:
    import tests.orchestrator.fake_registry as _fake
    _fake.register()
except Exception as _exc:  # never break an unrelated interpreter
    import sys as _sys
    print(f"sitecustomize: fake workload not registered: {_exc}", file=_sys.stderr)
"""


@pytest.fixture(scope="session")
def fake_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``os.environ`` plus a ``PYTHONPATH`` whose ``sitecustomize`` registers the fake workload
    (and the repository root, so workers import this checkout)."""
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ)
    parts = [str(site), str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.setdefault("RAY_AUTH_MODE", "disabled")
    return env


@pytest.fixture(scope="session")
def fake_registered() -> Iterator[None]:
    """The fake workload in this process's registry for the session, removed afterwards."""
    import workloads
    from tests.orchestrator import fake_workload
    from workloads.config import resolve as keys

    saved = keys.COMMON_KEYS["workload"]
    fake_workload.register()
    yield
    workloads.WORKLOADS.pop(fake_workload.NAME, None)
    keys.COMMON_KEYS["workload"] = dataclasses.replace(saved)


@pytest.fixture(scope="module")
def ray_env(fake_env: dict[str, str]) -> Iterator[None]:
    """This process's environment set so that Ray processes started from it see the fake
    workload; restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_AUTH_MODE")}
    os.environ["PYTHONPATH"] = fake_env["PYTHONPATH"]
    os.environ["RAY_AUTH_MODE"] = fake_env["RAY_AUTH_MODE"]
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def tracker_waits_for_a_loaded_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial's tracker waits 2 s for its run's id and 5 s for its last writes, then goes on
    (the id comes later; the rest is saved for the driver). Tests that read what reached MLflow
    wait for it instead: on a loaded machine a local SQLite write can take longer than that.
    Both waits end when the writes have landed, so a quiet run is not slower. Tests of a server
    that is away set their own short waits."""
    from orchestrator import tracking

    monkeypatch.setattr(tracking.TrialTracker, "START_WAIT_S", 300.0)
    monkeypatch.setattr(tracking.TrialTracker, "FINISH_WAIT_S", 300.0)
