"""One lost trial actor counts as one failure of its trial.

Ray Tune 2.60 reports a trial actor's death once per task it had in flight (``train``, ``save``,
``reset``: each future's ``on_error`` is ``TuneController._trial_task_failure``). The first
report counts a failure and, retries left, sets the trial PENDING to restart it; the second
report of the same death counts another failure and, finding the trial PENDING rather than
RUNNING, ends it ERROR (``_process_trial_failure``), its retries unspent. Seen with a worker
node removed mid-sweep: a trial recorded ``failed`` "after 2 failure(s)" with ``max_failures:
3``. :func:`count_each_death_once` lets the first report of an actor's death through and drops
the others (same trial, same actor id); failures without an actor id (the trial's own
exception) pass as before.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["actor_id_of", "count_each_death_once"]


def actor_id_of(exception: BaseException) -> str | None:
    """The id of the dead actor an actor error (or a task error caused by one) reports."""
    from ray.exceptions import RayActorError, RayTaskError

    if isinstance(exception, RayTaskError):
        try:
            exception = exception.as_instanceof_cause()
        except Exception:  # a cause that cannot be rebuilt: no actor to name
            return None
    if not isinstance(exception, RayActorError):
        return None
    actor_id = getattr(exception, "actor_id", None)
    return str(actor_id) if actor_id else None


def count_each_death_once(controller_class: Any) -> None:
    """Wrap ``controller_class._trial_task_failure`` (Tune's TuneController) so that the reports
    of one actor's death after the first are dropped; once per class."""
    original = controller_class._trial_task_failure
    if getattr(original, "counts_each_death_once", False):
        return

    @functools.wraps(original)
    def _trial_task_failure(self: Any, trial: Any, exception: Exception) -> None:
        actor_id = actor_id_of(exception)
        if actor_id is not None:
            seen = self.__dict__.setdefault("_lowprec_dead_actors", set())
            if (trial.trial_id, actor_id) in seen:
                return
            seen.add((trial.trial_id, actor_id))
        original(self, trial, exception)

    _trial_task_failure.counts_each_death_once = True  # type: ignore[attr-defined]
    controller_class._trial_task_failure = _trial_task_failure
