"""orchestrator.fifo.Fifo chooses the trial Ray Tune's FIFOScheduler chooses."""

from __future__ import annotations

import pickle
import random
from types import SimpleNamespace

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler

from orchestrator.fifo import Fifo

STATUSES = (Trial.PENDING, Trial.RUNNING, Trial.PAUSED, Trial.TERMINATED, Trial.ERROR)


class _Controller:
    def __init__(self, statuses: list[str]):
        self.trials = [SimpleNamespace(status=s) for s in statuses]

    def get_trials(self) -> list:
        return self.trials


def test_same_choice_as_tune_as_trials_come_and_end() -> None:
    """A sweep's life: trials added at the end, started, ended (ended ones mostly at the head,
    some later ones ending first); at every step both schedulers pick the same trial."""
    rng = random.Random(0)  # the trial histories are drawn; any seed must agree
    ours, tune = Fifo(), FIFOScheduler()
    controller = _Controller([])
    for _ in range(3000):
        if rng.random() < 0.3 or not controller.trials:
            controller.trials.append(SimpleNamespace(status=Trial.PENDING))
        live = [t for t in controller.trials if t.status not in (Trial.TERMINATED, Trial.ERROR)]
        if live:
            trial = rng.choice(live[:4])  # mostly the oldest: FIFO
            trial.status = rng.choice(STATUSES)
        assert ours.choose_trial_to_run(controller) is tune.choose_trial_to_run(controller)


def test_a_restored_scheduler_scans_from_the_start() -> None:
    """Tune may set an ended trial back to PENDING when a sweep is resumed: the unpickled
    scheduler forgets how many trials had ended and finds it."""
    controller = _Controller([Trial.TERMINATED] * 5 + [Trial.RUNNING])
    ours = Fifo()
    assert ours.choose_trial_to_run(controller) is None and ours.ended_head == 5
    restored = pickle.loads(pickle.dumps(ours))
    controller.trials[2].status = Trial.PENDING
    assert restored.choose_trial_to_run(controller) is controller.trials[2]
