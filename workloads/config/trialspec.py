"""One typed trial: the resolved config turned, once, into frozen values that are passed down.

    trial = TrialSpec.from_config(resolve_config(raw))
    trial.precision   # lowprec.PrecisionSpec: the format of W, G, A, E, M; accumulator; rounding
    trial.sampler     # SamplerSpec: the update rule and its hyperparameters
    trial.schedule    # ScheduleSpec: lr0, kind, cycles, β  -> .build(K) a lowprec Schedule
    trial.run         # RunLength: steps or epochs, batch size, burn-in, thinning, sample cap
    trial["dim"]      # any key (the workload's own keys), irrelevant ones at their defaults
    trial.resolved    # the resolved config (irrelevant keys None)
    trial.record      # what its row and MLflow params record (``effective_params``)

``lowprec`` takes typed arguments only: :func:`build_sampler` calls the sampler constructors
(``SGLD``/``SGD``/``SGHMC``) with the spec's fields, :meth:`ScheduleSpec.build` the
``Schedule`` constructor. A ``TrialSpec`` is also a read-only mapping of the trial's keys
(with the irrelevant keys back at their defaults: code may read them without effect), so a
workload reads its own keys as ``trial["dim"]``.

The config is resolved once, here: the trainable, the tracker, the record and the workload take
the ``TrialSpec`` (or its ``resolved`` / ``record``), never resolving the raw dict again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lowprec import PrecisionSpec
from workloads.config.precision import precision_of
from workloads.config.resolve import record_of, resolve_config, run_length_key, with_defaults
from workloads.config.runspec import (
    RunLength,
    SamplerName,
    SamplerSpec,
    ScheduleSpec,
)

if TYPE_CHECKING:  # torch only in annotations: this module loads without it
    import torch


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
    #: the trial's record (``effective_params``: relevant keys, effective formats,
    #: ``bits_per_param``): its row's config columns and its MLflow params
    record: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrialSpec:
        """The trial of a config (raw or resolved: it is resolved here, which changes nothing
        in a resolved one). Raises ``ValueError`` naming the key, as ``resolve_config``."""
        resolved = resolve_config(config)
        c = with_defaults(resolved)
        counted = run_length_key(c["workload"])
        precision = precision_of(resolved)
        return cls(
            workload=c["workload"],
            seed=int(c["seed"]),
            device=c["device"],
            variant=c["variant"],
            precision=precision,
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
            record=MappingProxyType(record_of(resolved, precision)),
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
