"""One typed trial: the resolved config turned, once, into frozen values that are passed down.

    trial = TrialSpec.from_config(resolve_config(raw))
    trial.precision   # lowprec.PrecisionSpec: the format of W, G, A, E, M; accumulator; rounding
    trial.sampler     # SamplerSpec: the update rule and its hyperparameters
    trial.schedule    # ScheduleSpec: lr0, kind, cycles, β  -> .build(K) a lowprec Schedule
    trial.run         # RunLength: steps or epochs, batch size, burn-in, thinning, sample cap
    trial["dim"]      # any key (the workload's own keys), irrelevant ones at their defaults

``lowprec`` takes typed arguments only: :func:`build_sampler` calls the sampler constructors
(``SGLD``/``SGD``/``SGHMC``) with the spec's fields, :meth:`ScheduleSpec.build` the
``Schedule`` constructor. A ``TrialSpec`` is also a read-only mapping of the trial's keys
(with the irrelevant keys back at their defaults: code may read them without effect), so a
workload reads its own keys as ``trial["dim"]``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lowprec import PrecisionSpec
from lowprec.schedules import Schedule
from workloads.keys import precision_of, resolve_config, run_length_key, with_defaults

if TYPE_CHECKING:  # torch only in annotations: this module loads without it
    import torch


class SamplerName(enum.StrEnum):
    """The update rules: SG-MCMC samplers and the optimisation baselines."""

    SGLD = "sgld"
    SGHMC = "sghmc"
    SGD = "sgd"
    SVRG = "svrg"
    HALP = "halp"


class ScheduleKind(enum.StrEnum):
    """Step-size schedules (ALGORITHMS.md §7)."""

    CONSTANT = "constant"
    DECAY = "decay"
    CYCLICAL = "cyclical"


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
        return self.name in (SamplerName.SGD, SamplerName.SVRG, SamplerName.HALP)


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


@dataclass(frozen=True)
class TrialSpec(Mapping[str, Any]):
    """Everything one trial runs with, built once from its resolved config
    (:meth:`from_config`); see the module docstring."""

    workload: str
    seed: int
    device: str
    precision: PrecisionSpec
    sampler: SamplerSpec
    schedule: ScheduleSpec
    run: RunLength
    variant: str | None = None
    #: the resolved config (irrelevant keys None): what the trial's record is made of
    resolved: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: every key with a value (irrelevant keys at their defaults): what ``trial[key]`` reads
    values: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrialSpec:
        """The trial of a config (raw or resolved: it is resolved here, which changes nothing
        in a resolved one). Raises ``ValueError`` naming the key, as ``resolve_config``."""
        resolved = resolve_config(config)
        c = with_defaults(resolved)
        counted = run_length_key(c["workload"])
        return cls(
            workload=c["workload"],
            seed=int(c["seed"]),
            device=c["device"],
            variant=c["variant"],
            precision=precision_of(resolved),
            sampler=SamplerSpec(
                name=SamplerName(c["sampler"]),
                temperature=float(c["temperature"]) if resolved["temperature"] is not None else 1.0,
                prior_std=resolved["prior_std"],
                friction=float(c["friction"]),
                inverse_mass=float(c["inverse_mass"]),
                vc_mode=str(c["vc_mode"]),
                momentum_rescale=bool(c["momentum_rescale"]),
                kernels=c["kernels"],
            ),
            schedule=ScheduleSpec.from_values(c),
            run=RunLength(
                steps=int(c["steps"]) if counted == "steps" else None,
                epochs=int(c["epochs"]) if counted == "epochs" else None,
                batch_size=int(c["batch_size"]) if resolved["batch_size"] is not None else None,
                burn_in=int(c["burn_in"]),
                thin=int(c["thin"]),
                num_samples=resolved["num_samples"],
            ),
            resolved=MappingProxyType(dict(resolved)),
            values=MappingProxyType(c),
        )

    @classmethod
    def of(cls, config: TrialSpec | Mapping[str, Any]) -> TrialSpec:
        """``config`` itself when it is a TrialSpec, else :meth:`from_config`."""
        return config if isinstance(config, TrialSpec) else cls.from_config(config)

    # a read-only mapping of the trial's keys
    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __hash__(self) -> int:
        return hash((self.workload, self.seed, self.precision, self.sampler, self.schedule))


def build_sampler(
    trial: TrialSpec,
    params: Iterable[torch.Tensor],
    *,
    num_data: int,
    generator: torch.Generator,
) -> Any:
    """The step-based sampler (sgld, sghmc, sgd) of ``trial`` over ``params``, through the
    typed constructors of ``lowprec.samplers``. svrg and halp need a gradient oracle instead
    (``lowprec.samplers.VarianceReduced``, built by the logreg workload)."""
    from lowprec.samplers import SGD, SGHMC, SGLD

    s = trial.sampler
    common: dict[str, Any] = {
        "num_data": num_data,
        "temperature": s.temperature,
        "prior_std": s.prior_std,
        "generator": generator,
        "executor": s.kernels,
    }
    if s.name is SamplerName.SGHMC:
        return SGHMC(
            params,
            trial.precision,
            friction=s.friction,
            inverse_mass=s.inverse_mass,
            vc_mode=s.vc_mode,
            momentum_rescale=s.momentum_rescale,
            **common,
        )
    if s.name is SamplerName.SGLD:
        return SGLD(params, trial.precision, **common)
    if s.name is SamplerName.SGD:
        return SGD(params, trial.precision, **common)
    raise ValueError(
        f"key 'sampler': {s.name.value!r} needs a gradient oracle, not .grad: use "
        "lowprec.samplers.VarianceReduced (workload logreg)"
    )
