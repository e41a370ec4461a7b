"""A trial is in Tune's saved experiment state before it runs.

Ray Tune 2.60 saves its experiment state (the trials, the searcher's state) at most every 10 s
(its "auto" period), sooner only once a trial has checkpointed ``num_to_keep`` times. A trial
added after the last save that runs and writes its row before the driver is killed is unknown
to the resumed Tune, whose restored searcher hands the same configuration out again (the trial
list's position, Optuna's sampler): a new trial runs it and the sweep records that configuration
twice. Seen: an Optuna sweep SIGKILLed mid-sweep on a loaded machine and resumed recorded 9
trials of 8, two with one ``lr``.

:func:`save_new_trials_at_once` wraps ``TuneController._maybe_update_trial_queue`` (where each
step asks the searcher for trials, before it requests their actors) so that a step that added
trials saves the state and waits for its upload (``checkpoint(force=True, wait=True)``) before
any of them can start. A killed driver then leaves every trial that may have written a row in
the saved state, and ``--resume`` restores it under its own id (its row is found, it is not
run again). Cost: one save per step that adds trials, not per result.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["save_new_trials_at_once"]


def save_new_trials_at_once(controller_class: Any) -> None:
    """Wrap ``controller_class._maybe_update_trial_queue`` (Tune's TuneController) so that a
    call that added trials saves the experiment state at once; once per class."""
    original = controller_class._maybe_update_trial_queue
    if getattr(original, "saves_new_trials_at_once", False):
        return

    @functools.wraps(original)
    def _maybe_update_trial_queue(self: Any) -> None:
        before = len(self._trials)
        original(self)
        if len(self._trials) > before:
            self.checkpoint(force=True, wait=True)

    _maybe_update_trial_queue.saves_new_trials_at_once = True  # type: ignore[attr-defined]
    controller_class._maybe_update_trial_queue = _maybe_update_trial_queue
