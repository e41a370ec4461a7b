"""orchestrator.backfill._end_from_row: a child left RUNNING or KILLED is ended from its row,
its missing metrics in batches MLflow accepts, its status tags sent once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from orchestrator import tracking
from orchestrator.backfill import _end_from_row


class _Client:
    def __init__(self) -> None:
        self.batches: list[tuple[list[Any], list[Any]]] = []
        self.ended: list[str] = []

    def log_batch(self, run_id: str, metrics: list[Any], tags: list[Any]) -> None:
        assert run_id == "r1"
        self.batches.append((metrics, tags))

    def set_terminated(self, run_id: str, status: str) -> None:
        self.ended.append(status)


def test_row_of_many_metrics_is_sent_in_batches_tags_once() -> None:
    row = {"workload": "fake", "error": "boom"} | {f"m{i}": float(i) for i in range(1200)}
    run = SimpleNamespace(
        info=SimpleNamespace(run_id="r1"), data=SimpleNamespace(metrics={"m0": 0.0})
    )
    client = _Client()
    _end_from_row(client, run, row, "failed", "FAILED")
    assert [len(m) for m, _ in client.batches] == [500, 500, 199]
    sent = [metric.key for m, _ in client.batches for metric in m]
    assert sorted(sent) == sorted(f"m{i}" for i in range(1, 1200))  # m0 was logged already
    tags = [{t.key: t.value for t in tags} for _, tags in client.batches]
    assert tags[0] == {tracking.TAG_STATUS: "failed", "error": "boom"}
    assert tags[1:] == [{}, {}]
    assert client.ended == ["FAILED"]


def test_row_without_missing_metrics_still_sends_its_tags() -> None:
    run = SimpleNamespace(info=SimpleNamespace(run_id="r1"), data=SimpleNamespace(metrics={}))
    client = _Client()
    _end_from_row(client, run, {"workload": "fake"}, "ok", "FINISHED")
    [(metrics, tags)] = client.batches
    assert metrics == [] and {t.key: t.value for t in tags} == {tracking.TAG_STATUS: "ok"}
    assert client.ended == ["FINISHED"]
