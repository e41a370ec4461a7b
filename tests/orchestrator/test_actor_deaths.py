"""One lost trial actor counts as one failure of its trial (orchestrator/actor_deaths.py): Tune
reports an actor's death once per task it had in flight; the reports after the first are
dropped, and every other failure passes as before."""

from __future__ import annotations

from types import SimpleNamespace

from ray.exceptions import RayActorError, RayTaskError

from orchestrator.actor_deaths import actor_id_of, count_each_death_once


class Controller:
    """Tune's controller as far as the wrapper sees it: the failure handler it wraps."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, BaseException]] = []

    def _trial_task_failure(self, trial, exception) -> None:  # type: ignore[no-untyped-def]
        self.failures.append((trial.trial_id, exception))


def test_a_death_reported_per_task_counts_once_per_trial_and_actor() -> None:
    count_each_death_once(Controller)
    controller = Controller()
    trial, other = SimpleNamespace(trial_id="t1"), SimpleNamespace(trial_id="t2")
    death = RayActorError(actor_id="a1")
    controller._trial_task_failure(trial, death)  # the train task's report
    controller._trial_task_failure(trial, RayActorError(actor_id="a1"))  # the save task's
    assert controller.failures == [("t1", death)]
    # the restarted trial's new actor dying is a new failure; another trial's too
    controller._trial_task_failure(trial, RayActorError(actor_id="a2"))
    controller._trial_task_failure(other, RayActorError(actor_id="a1"))
    assert [(t, actor_id_of(e)) for t, e in controller.failures] == [
        ("t1", "a1"), ("t1", "a2"), ("t2", "a1"),
    ]  # fmt: skip


def test_failures_without_an_actor_id_all_pass() -> None:
    count_each_death_once(Controller)
    controller = Controller()
    trial = SimpleNamespace(trial_id="t1")
    raised = RuntimeError("the trainable raised")
    for _ in range(3):
        controller._trial_task_failure(trial, raised)
        controller._trial_task_failure(trial, RayActorError())  # no id: cannot be matched
    assert len(controller.failures) == 6


def test_actor_id_read_through_a_task_error() -> None:
    cause = RayActorError(actor_id="a9")
    wrapped = RayTaskError("train", "traceback", cause)
    assert actor_id_of(wrapped) == "a9"
    assert actor_id_of(RayTaskError("train", "traceback", ValueError("x"))) is None
    assert actor_id_of(ValueError("x")) is None


def test_installed_once_on_tunes_controller() -> None:
    from ray.tune.execution.tune_controller import TuneController

    count_each_death_once(TuneController)
    wrapped = TuneController._trial_task_failure
    count_each_death_once(TuneController)
    assert TuneController._trial_task_failure is wrapped
    assert wrapped.counts_each_death_once
    assert wrapped.__wrapped__.__qualname__ == "TuneController._trial_task_failure"
