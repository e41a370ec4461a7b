"""What a trial tells Ray Tune at its end (orchestrator.trainable.final_report), and that a
trial resolves its config once (the trainable and the trial command)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator.trainable import final_report

ROW = {
    "trial_id": "t1",
    "attempt": 1,
    "status": "ok",
    "node": "n1",
    "lr": 0.01,
    "seed": 3,
    "bits": 8,
    "w2": 0.25,
    "ks": 0.1,
    "ess": 120.0,
}


def test_final_report_holds_the_metrics_not_the_config() -> None:
    out = final_report(ROW, config_keys=("lr", "seed", "bits"))
    assert out == {"bits": 8.0, "w2": 0.25, "ks": 0.1, "ess": 120.0, "status": "ok", "node": "n1"}


def test_final_report_keeps_only_the_report_keys_when_given() -> None:
    """Without a scheduler the sweep tells Tune its objectives only: Tune keeps statistics of
    every number it is told in the state it rewrites at each snapshot."""
    out = final_report(ROW, config_keys=("lr", "seed", "bits"), keep=("w2", "bits", "epoch"))
    assert out == {"bits": 8.0, "w2": 0.25, "status": "ok", "node": "n1"}


# ----------------------------------------------------------------------------------------------
# a trial resolves its config once: the tracker, the run, the row and the names read its
# TrialSpec (its resolved config and cached record), never resolving the raw dict again
# ----------------------------------------------------------------------------------------------

RAW = {
    "workload": "gaussian", "sampler": "sgld", "format": "fixed", "bits": 8,
    "accumulator": "low", "steps": 40, "seed": 1, "kernels": "eager", "device": "cpu",
}  # fmt: skip


@pytest.fixture
def resolutions(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every call of ``resolve_config`` from here on, wherever a module holds it by name."""
    from workloads.config import resolve

    original = resolve.resolve_config
    calls: list[dict] = []

    def counted(raw: Any) -> dict[str, Any]:
        calls.append(dict(raw))
        return original(raw)

    for module in list(sys.modules.values()):
        if module is not None and getattr(module, "resolve_config", None) is original:
            monkeypatch.setattr(module, "resolve_config", counted)
    return calls


class _Outbox:
    """The tracker's queue of MLflow writes, kept here: no server."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.run_id, self.ops = None, []

    def put(self, op: dict[str, Any]) -> None:
        self.ops.append(dict(op))

    def drain(self, timeout: float) -> None:
        pass

    def close(self, timeout: float) -> list:
        return []


def test_a_tune_trial_resolves_its_config_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resolutions: list[dict]
) -> None:
    import ray
    from ray import tune

    from orchestrator import outbox, trainable
    from orchestrator.naming import child_name, configuration_name
    from orchestrator.store import ResultsStore
    from workloads.config import effective_params, resolve_config

    reports: list[dict] = []
    monkeypatch.setattr(outbox, "Outbox", _Outbox)
    monkeypatch.setattr(tune, "get_context", lambda: SimpleNamespace(get_trial_id=lambda: "t1"))
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint=None: reports.append(metrics))
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(
        ray, "get_runtime_context", lambda: SimpleNamespace(get_node_id=lambda: "n1")
    )
    sweep = trainable.SweepContext(
        name="s", sweep_id="sid", results_root=str(tmp_path), tracking_uri="unused",
        experiment_id="e", parent_run_id="p", git_commit="c", spec_text="",
        name_keys=("format", "bits", "seed"),
    )  # fmt: skip
    trainable.tune_trainable(dict(RAW), sweep)
    assert reports[-1]["status"] == "ok"
    assert len(resolutions) == 1, [sorted(c) for c in resolutions]

    # what the row and names hold is what resolving the raw config gives (behaviour unchanged)
    row = ResultsStore(str(tmp_path), "s").read_trial_row("t1")
    resolved = resolve_config(RAW)
    for key, value in {**resolved, **effective_params(RAW)}.items():
        assert row[key] == value or (value is None and row[key] is None), key
    assert row["configuration"] == configuration_name(resolved, sweep.name_keys) == "fixed<8,6>"
    assert child_name(resolved, sweep.name_keys) == "fixed<8,6> seed=1"


def test_the_trial_command_resolves_its_config_once(
    capsys: pytest.CaptureFixture[str], resolutions: list[dict]
) -> None:
    from orchestrator.trial import main

    args = [f"{k}={v}" for k, v in RAW.items()] + ["friction=2.0"]  # friction: no effect
    assert main(args) == 0
    out = capsys.readouterr()
    assert json.loads(out.out.strip().splitlines()[-1])["status"] == "ok"
    assert "note: key 'friction' has no effect" in out.err
    assert len(resolutions) == 1, [sorted(c) for c in resolutions]
