"""A one-line progress report per trial event, in place of Ray Tune's verbose table.

    [bits 00:41] 5/9 ended (ok 4, diverged 1, failed 0) | 2 running | best test_error=0.08 (a_04)

It also records, from the driver, trials that a scheduler (ASHA) stopped early: their workload
never returned, so they wrote no row; the callback writes one from the last reported metrics
(``status`` ok, ``early_stopped`` true) and ends their MLflow child run.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from typing import Any, TextIO

from ray.tune import Callback

from orchestrator.store import ResultsStore, trial_row
from orchestrator.tracking import TAG_TRIAL, client, retry
from orchestrator.trial import TrialConfigError, resolve, weight_bits

#: keys Tune adds to every result; not metrics of ours
TUNE_KEYS = frozenset(
    {
        "done", "training_iteration", "trial_id", "date", "timestamp", "time_this_iter_s",
        "time_total_s", "pid", "hostname", "node_ip", "config", "time_since_restore",
        "iterations_since_restore", "checkpoint_dir_name", "should_checkpoint", "experiment_tag",
    }
)  # fmt: skip


class SweepProgress(Callback):
    """Counts trials by outcome and prints one line on ``stream`` at every start and end."""

    def __init__(
        self,
        name: str,
        total: int,
        metric: str,
        mode: str,
        store: ResultsStore | None = None,
        tracking: tuple[str, str, str] | None = None,
        stream: TextIO | None = None,
    ):
        self.name, self.total, self.metric, self.mode = name, total, metric, mode
        self.store, self.tracking = store, tracking
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.running: set[str] = set()
        self.outcomes: dict[str, str] = {}
        self.best: tuple[float, str] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config (callbacks included) for --resume: leave the stream out."""
        state = dict(self.__dict__)
        state["stream"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.stream = sys.stderr

    # ------------------------------------------------------------------ Tune hooks
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.add(trial.trial_id)
        self.line()

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.discard(trial.trial_id)
        print(f"[{self.name}] trial {trial.trial_id} raised; retrying it", file=self.stream)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.discard(trial.trial_id)
        result = trial.last_result or {}
        status = result.get("status")
        if status not in ("ok", "diverged", "failed"):
            status = self.record_early_stop(trial, result)
        self.outcomes[trial.trial_id] = status
        value = result.get(self.metric)
        if status == "ok" and isinstance(value, int | float) and math.isfinite(value):
            signed = value if self.mode == "min" else -value
            if self.best is None or signed < self.best[0]:
                self.best = (signed, trial.trial_id)
        self.line()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.discard(trial.trial_id)
        self.outcomes[trial.trial_id] = "failed"
        self.line()

    # ------------------------------------------------------------------ helpers
    def record_early_stop(self, trial: Any, result: dict[str, Any]) -> str:
        """A trial stopped by the scheduler: write its row from the last report."""
        if self.store is None or self.store.read_trial_row(trial.trial_id) is not None:
            row = self.store.read_trial_row(trial.trial_id) if self.store else None
            return str(row.get("status")) if row else "ok"
        try:
            config = resolve(trial.config)
        except TrialConfigError:
            config = dict(trial.config)
        metrics = {k: v for k, v in result.items() if k not in TUNE_KEYS and k != "status"}
        with contextlib.suppress(ValueError, TypeError):
            metrics["bits"] = weight_bits(config)
        run_id = None
        if self.tracking is not None:
            uri, experiment_id, parent = self.tracking
            mlflow = client(uri)
            runs = retry(
                lambda: mlflow.search_runs(
                    [experiment_id],
                    filter_string=(
                        f"tags.mlflow.parentRunId = '{parent}' and tags.{TAG_TRIAL} = "
                        f"'{trial.trial_id}'"
                    ),
                    max_results=1,
                )
            )
            if runs:
                run_id = runs[0].info.run_id
                retry(lambda: mlflow.set_tag(run_id, "status", "ok"))
                retry(lambda: mlflow.set_tag(run_id, "early_stopped", "true"))
                retry(lambda: mlflow.set_terminated(run_id, status="FINISHED"))
        row = trial_row(
            config,
            metrics,
            status="ok",
            error=None,
            trial_id=trial.trial_id,
            mlflow_run_id=run_id,
            wall_s=float(result.get("time_total_s", math.nan)),
            early_stopped=True,
            node=None,
        )
        self.store.write_trial_row(row)
        return "ok"

    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "diverged": 0, "failed": 0}
        for status in self.outcomes.values():
            out[status] = out.get(status, 0) + 1
        return out

    def line(self) -> None:
        elapsed = int(time.monotonic() - self.start)
        counts = self.counts()
        best = (
            f" | best {self.metric}={self.best[0] * (1 if self.mode == 'min' else -1):.4g}"
            f" ({self.best[1]})"
            if self.best
            else ""
        )
        print(
            f"[{self.name} {elapsed // 60:02d}:{elapsed % 60:02d}] "
            f"{len(self.outcomes)}/{self.total} ended (ok {counts['ok']}, diverged "
            f"{counts['diverged']}, failed {counts['failed']}) | {len(self.running)} running{best}",
            file=self.stream,
            flush=True,
        )


class InterruptWatch(Callback):
    """Whether the driver got a SIGINT while Tune ran.

    Tune's ``fit`` installs its own SIGINT handler: the first SIGINT stops the trials gracefully
    (they end TERMINATED, as if they had finished), puts back the handler it found and returns
    normally. So: :meth:`install` puts ours in place before ``fit`` (it notes a SIGINT that
    reaches it, and raises ``KeyboardInterrupt`` as Python's default does); at every step the
    callback notes the handler Tune installed; after ``fit``, our handler back in place of Tune's
    means Tune got the SIGINT.
    """

    def __init__(self) -> None:
        self.signalled = False
        self.tune_handler: Any = None
        self.previous: Any = None
        self.installed = False

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config (callbacks included): leave the handlers out."""
        return {"signalled": False, "tune_handler": None, "previous": None, "installed": False}

    def handler(self, signum: int, frame: Any) -> None:
        self.signalled = True
        raise KeyboardInterrupt

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self.handler)
            self.installed = True

    def uninstall(self) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)
            self.installed = False

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self.tune_handler is None and self.installed:
            current = signal.getsignal(signal.SIGINT)
            if current != self.handler:
                self.tune_handler = current

    def interrupted(self) -> bool:
        """True when a SIGINT reached our handler or Tune's (call before :meth:`uninstall`)."""
        if self.signalled:
            return True
        return (
            self.installed
            and self.tune_handler is not None
            and signal.getsignal(signal.SIGINT) == self.handler
        )
