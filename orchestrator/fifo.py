"""First-in, first-out trial order without a scan of every trial ever made.

Ray Tune's ``FIFOScheduler.choose_trial_to_run`` looks for the first PENDING (then PAUSED)
trial from the start of the experiment's trial list at every step of its loop. The list grows
with every trial, finished ones first, so the scan cost grows with the sweep: in bench.scale
it was the largest part of the driver's cost per trial that grew between 1,000 and 10,000
trials (5.3 s of the driver's CPU for 3,000 trials, ~9,000 calls).

:class:`Fifo` chooses the same trial: it remembers how many trials at the head of the list
have ended (TERMINATED or ERROR, which a trial never leaves within one run) and scans from
there. The position is not pickled: a restored sweep (``--resume``, where Tune may set ended
trials back to PENDING) scans from the start once.
"""

from __future__ import annotations

from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler

ENDED = (Trial.TERMINATED, Trial.ERROR)


class Fifo(FIFOScheduler):
    """Tune's FIFO order (the first PENDING trial, else the first PAUSED one), in time
    proportional to the trials not yet ended."""

    def __init__(self) -> None:
        super().__init__()
        self.ended_head = 0

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        trials = tune_controller.get_trials()
        while self.ended_head < len(trials) and trials[self.ended_head].status in ENDED:
            self.ended_head += 1
        for wanted in (Trial.PENDING, Trial.PAUSED):
            for index in range(self.ended_head, len(trials)):
                if trials[index].status == wanted:
                    return trials[index]
        return None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "ended_head": 0}
