"""A step that adds trials saves Tune's experiment state before their actors are requested
(orchestrator/trial_snapshots.py), so that a killed driver's resumed sweep knows every trial that
may have written a row."""

from __future__ import annotations

from orchestrator.trial_snapshots import save_new_trials_at_once


class Controller:
    """Tune's controller as far as the wrapper sees it: the trials, the step's request for more
    (``new`` of them this call) and the state's save."""

    def __init__(self) -> None:
        self._trials: list[str] = []
        self.new = 0
        self.saves: list[tuple[bool, bool, int]] = []

    def _maybe_update_trial_queue(self) -> None:
        self._trials += [f"t{len(self._trials) + i}" for i in range(self.new)]

    def checkpoint(self, force: bool = False, wait: bool = False) -> None:
        self.saves.append((force, wait, len(self._trials)))


def test_a_step_that_adds_trials_saves_and_waits_one_that_adds_none_does_not() -> None:
    save_new_trials_at_once(Controller)
    controller = Controller()
    controller._maybe_update_trial_queue()  # the searcher had nothing: no save
    assert controller.saves == []
    controller.new = 3
    controller._maybe_update_trial_queue()
    assert controller.saves == [(True, True, 3)]  # forced, upload waited for, all three in it
    controller.new = 0
    controller._maybe_update_trial_queue()
    assert controller.saves == [(True, True, 3)]


def test_installed_once_on_tunes_own_controller() -> None:
    from ray.tune.execution.tune_controller import TuneController

    save_new_trials_at_once(TuneController)
    wrapped = TuneController._maybe_update_trial_queue
    assert wrapped.saves_new_trials_at_once
    save_new_trials_at_once(TuneController)
    assert TuneController._maybe_update_trial_queue is wrapped
    # the step asks for trials before it requests actors: the save comes first
    import inspect

    step = inspect.getsource(TuneController.step)
    assert step.index("_maybe_update_trial_queue") < step.index("_maybe_add_actors")
