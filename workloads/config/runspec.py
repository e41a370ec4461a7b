"""The value types a trial is made of, below the key machinery: the update rule and its
hyperparameters, the step-size schedule and the run length. ``workloads.config.trialspec`` assembles
them into a ``TrialSpec``; the torch-free checks (``workloads.config.checks``) build a schedule from
them without importing the key resolution."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lowprec.schedules import Schedule, ScheduleKind


class SamplerName(enum.StrEnum):
    """The update rules: SG-MCMC samplers and the optimisation baselines."""

    SGLD = "sgld"
    SGHMC = "sghmc"
    SGD = "sgd"
    SVRG = "svrg"
    HALP = "halp"


#: the update rules' names, as the ``sampler`` key lists them
SAMPLERS: tuple[str, ...] = tuple(name.value for name in SamplerName)
#: the rules that optimise: they add no noise and their ensemble is the final iterate
OPTIMISERS: tuple[str, ...] = (SamplerName.SGD, SamplerName.SVRG, SamplerName.HALP)


@dataclass(frozen=True)
class SamplerSpec:
    """The update rule and its hyperparameters (ALGORITHMS.md §5-6).

    temperature T (1 for the optimisers, which add no noise); prior_std σ (None: flat);
    friction γ, inverse_mass u, vc_mode and momentum_rescale for SGHMC only (their defaults
    otherwise); kernels: the requested executor (auto | fused | eager).
    """

    name: SamplerName
    temperature: float = 1.0
    prior_std: float | None = None
    friction: float = 3.0
    inverse_mass: float = 1.0
    vc_mode: str = "joint"
    momentum_rescale: bool = False
    kernels: str = "auto"

    @property
    def is_optimiser(self) -> bool:
        return self.name in OPTIMISERS


@dataclass(frozen=True)
class ScheduleSpec:
    """lr_k of ALGORITHMS.md §7: ``kind`` with base step size ``lr``; cyclical: ``cycles`` M,
    ``explore_fraction`` β and ``samples_per_cycle``."""

    lr: float
    kind: ScheduleKind = ScheduleKind.CONSTANT
    cycles: int = 1
    explore_fraction: float = 0.0
    samples_per_cycle: int = 1

    @classmethod
    def from_values(cls, c: Mapping[str, Any]) -> ScheduleSpec:
        """The schedule of a config whose keys all have values (``with_defaults``; a
        workload's ``validate`` gets one)."""
        return cls(
            lr=float(c["lr"]),
            kind=ScheduleKind(c["schedule"]),
            cycles=int(c["cycles"]),
            explore_fraction=float(c["explore_fraction"]),
            samples_per_cycle=int(c.get("samples_per_cycle") or 1),
        )

    def build(self, total_steps: int, steps_per_epoch: int | None = None) -> Schedule:
        """The ``lowprec.schedules.Schedule`` of a run of ``total_steps`` steps."""
        return Schedule(
            lr=self.lr,
            total_steps=total_steps,
            kind=self.kind.value,
            cycles=self.cycles,
            explore_fraction=self.explore_fraction,
            steps_per_epoch=steps_per_epoch,
            samples_per_cycle=self.samples_per_cycle,
        )


@dataclass(frozen=True)
class RunLength:
    """How long the run is and which states are kept: ``steps`` (step-based workloads) or
    ``epochs`` (deep), the other None; ``batch_size`` (None without minibatches); samples after
    ``burn_in`` every ``thin`` steps or epochs, the latest ``num_samples`` kept (None: all)."""

    steps: int | None
    epochs: int | None
    batch_size: int | None
    burn_in: int = 0
    thin: int = 1
    num_samples: int | None = None
