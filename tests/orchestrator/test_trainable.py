"""What a trial tells Ray Tune at its end (orchestrator.trainable.final_report)."""

from __future__ import annotations

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
