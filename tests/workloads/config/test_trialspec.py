"""TrialSpec: the resolved config turned once into typed values (workloads/config/trialspec.py)."""

from __future__ import annotations

import pytest
import torch

from lowprec.formats import FixedPoint
from lowprec.samplers import SGD, SGHMC, SGLD
from workloads.config.resolve import resolve_config
from workloads.config.runspec import SamplerName, ScheduleKind
from workloads.config.trialspec import TrialSpec, build_sampler


def test_typed_parts_of_a_deep_trial() -> None:
    trial = TrialSpec.from_config(
        {"workload": "mnist_mlp", "sampler": "sghmc", "format": "fixed", "bits": 8,
         "accumulator": "vc", "schedule": "cyclical", "cycles": 2, "epochs": 4, "burn_in": 0}
    )  # fmt: skip
    assert trial.workload == "mnist_mlp" and trial.seed == 0
    assert trial.precision.weight == FixedPoint(8, 6) and trial.precision.accumulator == "vc"
    assert trial.precision.act.is_identity  # tensors WG: activations stay fp32
    s = trial.sampler
    assert s.name is SamplerName.SGHMC and s.temperature == 0.01 and s.prior_std == 1.0
    assert s.momentum_rescale is True  # the deep workloads' default
    assert trial.schedule.kind is ScheduleKind.CYCLICAL and trial.schedule.cycles == 2
    assert trial.schedule.samples_per_cycle == 3
    assert (trial.run.epochs, trial.run.steps, trial.run.batch_size) == (4, None, 64)
    assert trial["hidden"] == "100"  # a workload key through the mapping


def test_irrelevant_keys_are_at_their_defaults_in_the_typed_parts() -> None:
    trial = TrialSpec.from_config({"workload": "logreg", "sampler": "sgd", "friction": 9.0})
    assert trial.sampler.is_optimiser and trial.sampler.temperature == 1.0
    assert trial.sampler.friction == 3.0  # no effect on sgd: the default stands in
    assert trial.resolved["friction"] is None and trial.resolved["temperature"] is None
    assert (trial.run.steps, trial.run.epochs) == (10_000, None)


def test_from_config_of_raw_and_resolved_agree() -> None:
    raw = {"workload": "gaussian", "format": "block", "bits": 6, "accumulator": "low"}
    assert TrialSpec.from_config(raw) == TrialSpec.from_config(resolve_config(raw))
    trial = TrialSpec.from_config(raw)
    assert TrialSpec.of(trial) is trial
    with pytest.raises(ValueError, match="key 'bits'"):
        TrialSpec.from_config({**raw, "bits": 99})


def test_schedule_spec_builds_the_lowprec_schedule() -> None:
    trial = TrialSpec.from_config(
        {"workload": "gaussian", "lr": 0.2, "schedule": "cyclical", "cycles": 2,
         "explore_fraction": 0.5, "steps": 40}
    )  # fmt: skip
    s = trial.schedule.build(40)
    assert (s.kind, s.cycles, s.cycle_length, s.explore_fraction) == ("cyclical", 2, 20, 0.5)
    assert s.lr(10) == pytest.approx(0.1)  # lr0/2 (cos(π/2) + 1)


@pytest.mark.parametrize(("sampler", "cls"), [("sgld", SGLD), ("sgd", SGD), ("sghmc", SGHMC)])
def test_build_sampler_passes_the_typed_fields(sampler: str, cls: type) -> None:
    trial = TrialSpec.from_config(
        {"workload": "gaussian", "sampler": sampler, "temperature": 0.5, "friction": 2.0,
         "inverse_mass": 4.0, "format": "fixed", "accumulator": "low", "kernels": "eager"}
    )  # fmt: skip
    s = build_sampler(trial, [torch.zeros(3)], num_data=7, generator=torch.Generator())
    assert type(s) is cls and s.precision == trial.precision and s.executor_name == "eager"
    if sampler == "sghmc":
        assert (s.friction, s.inverse_mass) == (2.0, 4.0)


def test_build_sampler_refuses_the_variance_reduced_methods() -> None:
    trial = TrialSpec.from_config({"workload": "logreg", "sampler": "svrg", "prior_std": 1.0})
    with pytest.raises(ValueError, match="gradient oracle"):
        build_sampler(trial, [torch.zeros(3)], num_data=7, generator=torch.Generator())
