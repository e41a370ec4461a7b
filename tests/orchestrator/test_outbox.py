"""MLflow writes that survive an outage (orchestrator.outbox), against a client that records its
calls: what queued up goes as one batch, a refused batch costs only the bad operation, and a
short trial costs MLflow three writes. The saving and replaying of what could not be sent is
tested against a real SQLite store in test_tracking.py, beside the trial's tracker."""

from __future__ import annotations

from orchestrator.outbox import Outbox


class _Recorder:
    """An MlflowClient stand-in that records its calls; ``refuse`` makes a ``log_batch`` whose
    tags include that key fail the way MLflow refuses a bad value (a 4xx error code)."""

    def __init__(self, refuse: str | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.refuse = refuse

    def log_batch(self, run_id: str, metrics=(), tags=(), params=()) -> None:
        if self.refuse and any(t.key == self.refuse for t in tags):
            error = RuntimeError("bad tag")
            error.error_code = "INVALID_PARAMETER_VALUE"  # type: ignore[attr-defined]
            raise error
        call = {"metrics": list(metrics), "tags": list(tags), "params": list(params)}
        self.calls.append(("log_batch", call))

    def set_terminated(self, run_id: str, status: str) -> None:
        self.calls.append(("set_terminated", {"status": status}))


def _metrics(step: int) -> dict:
    return {"op": "metrics", "metrics": {"loss": 1.0 / step}, "step": step, "timestamp": step}


def test_queued_reports_and_the_end_go_as_one_batch() -> None:
    """What queued up while the thread was busy is sent together: three reports and the end
    of the run are one ``log_batch`` (every value, at its step, and the tags) and one
    ``set_terminated`` -- not four batches and a call per tag."""
    recorder = _Recorder()
    finish = {"op": "finish", "status": "FINISHED", "tags": {"status": "ok"}, "traceback": None}
    outbox = Outbox(lambda: recorder, run_id="r1", ops=[_metrics(1), _metrics(2), _metrics(3)])
    outbox.put(finish)
    assert outbox.close(5.0) == [] and outbox.sent == 4
    assert [name for name, _ in recorder.calls] == ["log_batch", "set_terminated"]
    batch = recorder.calls[0][1]
    assert [(m.step, m.value) for m in batch["metrics"]] == [(1, 1.0), (2, 0.5), (3, 1 / 3)]
    assert [(t.key, t.value) for t in batch["tags"]] == [("status", "ok")]


def test_a_refused_batch_is_sent_again_one_by_one() -> None:
    """MLflow refusing a batch (a bad tag value) costs only the bad operation: the reports
    before it still land, the refusal is counted, and the run is still ended."""
    recorder = _Recorder(refuse="error")
    finish = {"op": "finish", "status": "FAILED", "tags": {"error": "x"}, "traceback": None}
    outbox = Outbox(lambda: recorder, run_id="r1", ops=[_metrics(1), _metrics(2)])
    outbox.put(finish)
    assert outbox.close(5.0) == []
    assert len(outbox.dropped) == 1 and outbox.dropped[0].startswith("finish:")
    sent = [m.step for name, call in recorder.calls if name == "log_batch" for m in call["metrics"]]
    assert sent == [1, 2]


def test_a_short_trial_costs_mlflow_three_writes() -> None:
    """A trial whose params, reports and end queued up behind its start: create the run, one
    ``log_batch`` (params, every report, the tags), ``set_terminated``."""
    recorder = _Recorder()
    finish = {"op": "finish", "status": "FINISHED", "tags": {"status": "ok"}, "traceback": None}
    params = {"op": "params", "params": {"lr": 0.1, "seed": 3}}
    outbox = Outbox(lambda: recorder, run_id="r1", ops=[params, _metrics(1), _metrics(2)])
    outbox.put(finish)
    assert outbox.close(5.0) == [] and outbox.sent == 4
    assert [name for name, _ in recorder.calls] == ["log_batch", "set_terminated"]
    batch = recorder.calls[0][1]
    assert [(p.key, p.value) for p in batch["params"]] == [("lr", "0.1"), ("seed", "3")]
    assert [m.step for m in batch["metrics"]] == [1, 2]
