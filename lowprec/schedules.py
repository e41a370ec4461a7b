"""Step-size schedules and sample collection (ALGORITHMS.md §7).

A schedule maps a step index ``k`` (0-based, ``0 <= k < K``) to a step size, says whether
step ``k`` adds noise (``is_sampling``) and whether the weights after step ``k`` are collected
as a sample (``is_sample_step``).

- ``constant``: lr_k = lr0.
- ``decay`` (the LP-SGLD scripts, Zhang, Wilson & De Sa, ICML 2022): with t = k/K (or the epoch
  fraction when ``steps_per_epoch`` is given, so the factor changes once per epoch as in the
  papers' code), factor 1 for t <= 0.5, linearly down to 0.01 at t = 0.9, then 0.01.
- ``cyclical`` cosine (cSG-MCMC, Zhang et al., ICLR 2020): M cycles of C = ceil(K/M) steps,
  lr_k = lr0/2 · (cos(π · (k mod C)/C) + 1); with r = (k mod C)/C, r < β is exploration (no
  noise: an optimiser step), r >= β sampling (noise on, samples collected).

Typed arguments only: the config layer (``workloads.config.runspec.ScheduleSpec.build``) calls the
:class:`Schedule` constructor.
"""

from __future__ import annotations

import enum
import math


class ScheduleKind(enum.StrEnum):
    """The step-size schedules, as the ``schedule`` key names them."""

    CONSTANT = "constant"
    DECAY = "decay"
    CYCLICAL = "cyclical"


#: the ``schedule`` key's choices
SCHEDULES: tuple[str, ...] = tuple(kind.value for kind in ScheduleKind)

#: the decay schedule's final factor (the LP-SGLD scripts' ``lr_ratio``)
DECAY_FINAL = 0.01


class Schedule:
    """One run's step sizes and stages.

    Args:
        lr: the base step size lr0.
        total_steps: K, the number of steps of the whole run.
        kind: ``constant``, ``decay`` or ``cyclical``.
        cycles: M (cyclical only).
        explore_fraction: β, the fraction of each cycle without noise (cyclical only).
        steps_per_epoch: when given, ``decay`` changes once per epoch and cyclical sample points
            are the ends of epochs (see :meth:`is_cycle_sample_point`).
        samples_per_cycle: cyclical: how many sample points at the end of each cycle's
            sampling stage (the cSG-MCMC CIFAR runs collected 3).
    """

    def __init__(
        self,
        lr: float,
        total_steps: int,
        kind: str = "constant",
        cycles: int = 1,
        explore_fraction: float = 0.0,
        steps_per_epoch: int | None = None,
        samples_per_cycle: int = 1,
    ) -> None:
        if kind not in SCHEDULES:
            raise ValueError(f"key 'schedule': {kind!r} is not one of {', '.join(SCHEDULES)}")
        if not (isinstance(total_steps, int) and total_steps >= 1):
            raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
        if not lr >= 0.0:
            raise ValueError(f"key 'lr': must be >= 0, got {lr!r}")
        if cycles < 1 or cycles > total_steps:
            raise ValueError(
                f"key 'cycles': must be between 1 and the number of steps {total_steps}, "
                f"got {cycles!r}"
            )
        if not 0.0 <= explore_fraction <= 1.0:
            raise ValueError(f"key 'explore_fraction': must be in [0, 1], got {explore_fraction!r}")
        if steps_per_epoch is not None and steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch!r}")
        if samples_per_cycle < 1:
            raise ValueError(f"samples_per_cycle must be >= 1, got {samples_per_cycle!r}")
        self.lr0 = float(lr)
        self.total_steps = total_steps
        self.kind = kind
        self.cycles = cycles
        self.explore_fraction = float(explore_fraction)
        self.steps_per_epoch = steps_per_epoch
        self.samples_per_cycle = samples_per_cycle
        #: C = ceil(K / M), the length of one cycle
        self.cycle_length = math.ceil(total_steps / cycles)

    # -- step sizes ----------------------------------------------------------------------
    def _check(self, k: int) -> None:
        if not 0 <= k < self.total_steps:
            raise ValueError(f"step {k} is outside [0, {self.total_steps})")

    def cycle_position(self, k: int) -> float:
        """r = (k mod C) / C, in [0, 1); 0 for the non-cyclical schedules' single 'cycle' start."""
        return (k % self.cycle_length) / self.cycle_length

    def factor(self, k: int) -> float:
        """lr_k / lr0."""
        self._check(k)
        if self.kind == "constant":
            return 1.0
        if self.kind == "decay":
            if self.steps_per_epoch is None:
                t = k / self.total_steps
            else:
                epochs = self.total_steps / self.steps_per_epoch
                t = (k // self.steps_per_epoch) / epochs
            if t <= 0.5:
                return 1.0
            if t <= 0.9:
                return 1.0 - (1.0 - DECAY_FINAL) * (t - 0.5) / 0.4
            return DECAY_FINAL
        # cyclical cosine: lr0/2 (cos(π r) + 1)
        return 0.5 * (math.cos(math.pi * self.cycle_position(k)) + 1.0)

    def lr(self, k: int) -> float:
        """The step size lr_k of step ``k``."""
        return self.lr0 * self.factor(k)

    # -- stages and sample collection ----------------------------------------------------
    def is_sampling(self, k: int) -> bool:
        """Whether step ``k`` adds noise: False in the exploration stage r < β of a cycle."""
        self._check(k)
        if self.kind != "cyclical":
            return True
        return self.cycle_position(k) >= self.explore_fraction

    def _cycle_end(self, k: int) -> int:
        """The last step of the cycle holding ``k`` (the last cycle may be shorter)."""
        start = k - k % self.cycle_length
        return min(start + self.cycle_length, self.total_steps) - 1

    def is_cycle_sample_point(self, k: int) -> bool:
        """Cyclical: whether the weights after step ``k`` are one of the cycle's samples.

        The sample points are the last ``samples_per_cycle`` ends of epochs (or, without
        ``steps_per_epoch``, the last ``samples_per_cycle`` steps) of each cycle, counted back
        from the cycle's last step, and only those inside the sampling stage.
        """
        self._check(k)
        if not self.is_sampling(k):
            return False
        spacing = self.steps_per_epoch or 1
        back = self._cycle_end(k) - k
        return back % spacing == 0 and back // spacing < self.samples_per_cycle

    def is_sample_step(self, k: int, burn_in: int = 0, thin: int = 1) -> bool:
        """Whether the weights after step ``k`` are collected.

        cyclical: :meth:`is_cycle_sample_point` (burn-in and thin do not apply). Otherwise:
        after ``burn_in`` steps, one sample every ``thin`` steps, i.e. when
        ``k + 1 > burn_in`` and ``(k + 1 - burn_in) % thin == 0``.
        """
        if self.kind == "cyclical":
            return self.is_cycle_sample_point(k)
        self._check(k)
        if burn_in < 0 or thin < 1:
            raise ValueError(f"burn_in must be >= 0 and thin >= 1, got {burn_in}, {thin}")
        done = k + 1
        return done > burn_in and (done - burn_in) % thin == 0

    def collects_any(self, burn_in: int = 0, thin: int = 1) -> bool:
        """Whether any step of the run is a sample step (:meth:`is_sample_step`), in O(cycles).

        Not cyclical: the first sample step is k = burn_in + thin - 1, so iff that is < K.
        Cyclical: a cycle's last step has its largest position r, so a cycle holds a sample
        point iff its last step is in the sampling stage.
        """
        if self.kind != "cyclical":
            return burn_in + thin - 1 < self.total_steps
        ends = range(
            self.cycle_length - 1, self.total_steps + self.cycle_length - 1, self.cycle_length
        )
        return any(self.is_sample_step(min(end, self.total_steps - 1)) for end in ends)

    def __repr__(self) -> str:
        extra = (
            f", cycles={self.cycles}, explore_fraction={self.explore_fraction}"
            if self.kind == "cyclical"
            else ""
        )
        return f"Schedule({self.kind}, lr={self.lr0}, total_steps={self.total_steps}{extra})"
