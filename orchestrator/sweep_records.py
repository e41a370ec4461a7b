"""What the driver records while Tune runs, beside the rows and runs trials write themselves.

A trial that a scheduler (ASHA) stopped early never returned from its workload, so it wrote no
row and left its MLflow child run open. When Tune reports it complete without a final
``status``, :class:`SweepRecords` writes its row once from its last intermediate report
(``status`` ok, ``early_stopped`` true, the weight format's ``bits``) and ends its child run
FINISHED with the tags ``status=ok`` and ``early_stopped=true``. A trial that has a row already
(a retry, a resumed sweep) keeps it: each trial has exactly one row.

While the sweep runs it also sends, every ``REPLAY_EVERY_S`` seconds on a thread, the MLflow
writes ended trials could not send (:func:`orchestrator.outbox.replay_pending`), so a tracking
server that comes back is caught up before the sweep ends.

It goes before the display (:class:`orchestrator.progress.SweepProgress`) in Tune's callbacks:
Tune calls them in order, and the display reads the row this one wrote for the trial's outcome.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ray.tune import Callback

from orchestrator.naming import configuration_name
from orchestrator.store import ResultsStore, trial_row
from orchestrator.tracking import client, end_trial_run
from orchestrator.trial import TrialConfigError, record_config, trial_spec, weight_bits

#: keys Tune adds to every result; not metrics of ours
TUNE_KEYS = frozenset(
    {
        "done", "training_iteration", "trial_id", "date", "timestamp", "time_this_iter_s",
        "time_total_s", "pid", "hostname", "node_ip", "config", "time_since_restore",
        "iterations_since_restore", "checkpoint_dir_name", "should_checkpoint", "experiment_tag",
    }
)  # fmt: skip
#: the statuses a trial that returned from its workload reports with its final result
ENDED_STATUSES = ("ok", "diverged", "failed")
#: seconds between two attempts to send ended trials' saved MLflow writes
REPLAY_EVERY_S = 5.0
#: the tags an early-stopped trial's child run ends with
EARLY_STOP_TAGS = {"status": "ok", "early_stopped": "true"}


def spec_or_config(config: Mapping[str, Any]) -> Any:
    """A trial's ``TrialSpec`` (its config resolved once), or its raw config as a dict when it
    cannot resolve (the row and the names are then made from the keys as given)."""
    try:
        return trial_spec(dict(config))
    except (TrialConfigError, ValueError, TypeError):
        return dict(config)


def early_stop_row(
    trial_id: str,
    config: Any,
    result: Mapping[str, Any],
    name_keys: Sequence[str],
    run_id: str | None,
) -> dict[str, Any]:
    """The row of a trial stopped early: its last report's metrics (Tune's keys left out), the
    weight format's ``bits`` when its config has one, ``status`` ok, ``early_stopped`` true."""
    metrics = {k: v for k, v in result.items() if k not in TUNE_KEYS and k != "status"}
    with contextlib.suppress(ValueError, TypeError):
        metrics["bits"] = weight_bits(config)
    return trial_row(
        record_config(config),
        metrics,
        status="ok",
        error=None,
        trial_id=trial_id,
        configuration=configuration_name(config, name_keys),
        mlflow_run_id=run_id,
        wall_s=float(result.get("time_total_s", math.nan)),
        early_stopped=True,
        node=None,
    )


class SweepRecords(Callback):
    """Tune callback: early-stopped trials' rows and runs, and the MLflow catch-up."""

    def __init__(
        self,
        name: str,
        store: ResultsStore | None,
        tracking: tuple[str, str, str] | None = None,
        name_keys: Sequence[str] = (),
        say: Callable[[str], None] | None = None,
    ):
        self.name, self.store, self.tracking = name, store, tracking
        self.name_keys = tuple(name_keys)
        self.say = say
        self.last_replay = 0.0
        self.replaying: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config (callbacks included) for --resume: leave the thread and
        the display's line writer out."""
        state = dict(self.__dict__)
        state.update(replaying=None, say=None)
        return state

    def tell(self, text: str) -> None:
        """A line for the person watching: through the display when given (above its live
        line), else on stderr."""
        if self.say is not None:
            self.say(text)
        else:
            print(text, file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ Tune hooks
    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if result.get("status") not in ENDED_STATUSES:
            self.record_early_stop(trial, result)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if now - self.last_replay >= REPLAY_EVERY_S:
            self.last_replay = now
            self.replay_in_background()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Wait for a catch-up of MLflow writes in progress (the driver's own catch-up follows:
        never two at once)."""
        if self.replaying is not None:
            self.replaying.join(timeout=300)

    # ------------------------------------------------------------------ early stops
    def record_early_stop(self, trial: Any, result: Mapping[str, Any]) -> None:
        """A trial stopped by the scheduler: end its child run, then write its row from the last
        report, unless it has a row already."""
        if self.store is None or self.store.read_trial_row(trial.trial_id) is not None:
            return
        config = spec_or_config(trial.config)
        run_id = None
        if self.tracking is not None:
            uri, experiment_id, parent = self.tracking
            try:
                run_id = end_trial_run(
                    uri, experiment_id, parent, trial.trial_id, "FINISHED", EARLY_STOP_TAGS
                )
            except Exception as exc:  # the row matters more than the run; say so once
                self.tell(f"[{self.name}] MLflow: could not end {trial.trial_id}'s run: {exc}")
        self.store.write_trial_row(
            early_stop_row(trial.trial_id, config, result, self.name_keys, run_id)
        )

    # ------------------------------------------------------------------ MLflow catch-up
    def replay_in_background(self) -> None:
        """Send ended trials' saved MLflow writes on a thread (the driver's loop never waits)."""
        if self.store is None or self.tracking is None:
            return
        if self.replaying is not None and self.replaying.is_alive():
            return
        from orchestrator.outbox import pending_keys

        try:
            if not pending_keys(self.store):
                return
        except OSError:
            return
        self.replaying = threading.Thread(
            target=catch_up_quietly, args=(self.store, self.tracking[0]), daemon=True
        )
        self.replaying.start()


def catch_up_quietly(store: ResultsStore, tracking_uri: str) -> None:
    """Replay ended trials' saved MLflow writes; the server still away is not an error here."""
    from orchestrator.outbox import fill_run_ids, replay_pending

    with contextlib.suppress(Exception):
        _, _, created = replay_pending(store, client(tracking_uri))
        fill_run_ids(store, created)
