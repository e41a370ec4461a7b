"""workloads/train.py, the loop both deep workloads share: which epochs are collected, how the
schedules drive the sampler, and the generator-only initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lowprec import samplers, schedules
from workloads import mlp
from workloads.base import TrialContext
from workloads.config import trialspec
from workloads.config.resolve import resolve_config
from workloads.train import collection_epochs, init_parameters


def _schedule(kind: str, epochs: int, spe: int, **extra) -> schedules.Schedule:
    return schedules.Schedule(0.1, epochs * spe, kind, steps_per_epoch=spe, **extra)


@pytest.mark.parametrize("kind", ["constant", "decay"])
def test_collection_after_burn_in_every_thin_epochs(kind: str):
    s = _schedule(kind, 10, 7)
    assert collection_epochs(s, 10, 7, burn_in=3, thin=2, num_samples=None) == [5, 7, 9]
    assert collection_epochs(s, 10, 7, burn_in=0, thin=1, num_samples=None) == list(range(1, 11))
    # num_samples keeps the latest
    assert collection_epochs(s, 10, 7, burn_in=3, thin=2, num_samples=2) == [7, 9]
    assert collection_epochs(s, 10, 7, burn_in=9, thin=1, num_samples=5) == [10]
    with pytest.raises(ValueError, match="key 'burn_in'"):
        collection_epochs(s, 10, 7, burn_in=10, thin=1, num_samples=None)


def test_cyclical_collection_at_the_end_of_each_sampling_stage():
    # 8 epochs, 2 cycles of 4 epochs; β = 0.5: epochs 3-4 and 7-8 sample
    s = _schedule("cyclical", 8, 5, cycles=2, explore_fraction=0.5, samples_per_cycle=2)
    assert collection_epochs(s, 8, 5, burn_in=0, thin=1, num_samples=None) == [3, 4, 7, 8]
    # β = 0.9 (the cSG-MCMC setting): only each cycle's last epoch end is in the sampling stage
    s = _schedule("cyclical", 8, 5, cycles=2, explore_fraction=0.9, samples_per_cycle=3)
    assert collection_epochs(s, 8, 5, burn_in=0, thin=1, num_samples=None) == [4, 8]
    s = _schedule("cyclical", 8, 5, cycles=2, explore_fraction=1.0)
    with pytest.raises(ValueError, match="key 'explore_fraction'"):
        collection_epochs(s, 8, 5, burn_in=0, thin=1, num_samples=None)


def test_init_parameters_draws_pytorch_default_from_the_generator():
    """Weights ~ U(-b, b), b = 1/sqrt(fan_in), drawn from the trial's generator only. For
    n = 78,400 weights, mean(w²) estimates b²/3 with standard error
    sqrt(Var w²/n) = sqrt((b⁴/5 - b⁴/9)/n) = 0.298 b²/sqrt(n) = 1.07e-3 b²; tolerance 5 of them."""
    model = nn.Sequential(nn.Linear(784, 100), nn.BatchNorm1d(100), nn.Conv2d(3, 8, 3))
    with torch.no_grad():
        model[1].weight.fill_(7.0)
        model[1].running_mean.fill_(3.0)
    global_state = torch.get_rng_state()
    init_parameters(model, torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), global_state)
    w, b = model[0].weight.detach(), 1 / math.sqrt(784)
    assert float(w.abs().max()) <= b and float(model[0].bias.detach().abs().max()) <= b
    se = math.sqrt(1 / 5 - 1 / 9) / math.sqrt(w.numel()) * b**2
    assert abs(float(w.pow(2).mean()) - b**2 / 3) < 5 * se
    assert float(model[2].weight.detach().abs().max()) <= 1 / math.sqrt(27)
    assert torch.equal(model[1].weight, torch.ones(100))
    assert torch.equal(model[1].running_mean, torch.zeros(100))
    again = nn.Sequential(nn.Linear(784, 100), nn.BatchNorm1d(100), nn.Conv2d(3, 8, 3))
    init_parameters(again, torch.Generator().manual_seed(0))
    assert all(
        torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters(), strict=True)
    )


class _Spy:
    """Records every ``step``'s step size and noise flag of the sampler the loop builds."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[float, bool]] = []
        real = trialspec.build_sampler

        def build(*args, **kwargs):
            sampler = real(*args, **kwargs)
            step = sampler.step

            def spy_step(lr, noise=True):
                self.calls.append((lr, noise))
                return step(lr, noise=noise)

            sampler.step = spy_step
            return sampler

        monkeypatch.setattr(trialspec, "build_sampler", build)


def _run(monkeypatch, **extra):
    spy = _Spy(monkeypatch)
    config = resolve_config(
        {
            "workload": "mnist_mlp",
            "burn_in": 0,
            "train_size": 100,
            "test_size": 50,
            "batch_size": 25,
            "lr": 0.1,
            "temperature": 1e-2,
            **extra,
        }
    )
    reports = []
    ctx = TrialContext(
        generator=torch.Generator().manual_seed(0),
        report=lambda metrics, state=None: reports.append(metrics),
    )
    result = mlp.run(config, ctx)
    return spy.calls, reports, result


def test_cyclical_schedule_drives_the_sampler(monkeypatch):
    """4 epochs of 4 steps, 2 cycles (C = 8 steps), β = 0.5: lr_k = lr0/2 (cos(π (k mod 8)/8)
    + 1), no noise in the first half of each cycle, one sample at each cycle's end."""
    calls, reports, result = _run(
        monkeypatch,
        epochs=4,
        schedule="cyclical",
        cycles=2,
        explore_fraction=0.5,
        samples_per_cycle=1,
    )
    assert len(calls) == 16
    for k, (lr, noise) in enumerate(calls):
        r = (k % 8) / 8
        assert lr == pytest.approx(0.05 * (math.cos(math.pi * r) + 1))
        assert noise == (r >= 0.5)
    assert [m["samples"] for m in reports] == [0, 1, 1, 2]
    assert result.metrics["samples"] == 2


def test_decay_schedule_drives_the_sampler(monkeypatch):
    """10 epochs: factor 1 up to half the run, linear to 0.01 at 90%, then 0.01 (per epoch)."""
    calls, reports, _ = _run(monkeypatch, epochs=10, schedule="decay", burn_in=8)
    per_epoch = [calls[4 * e][0] for e in range(10)]
    expected = [1, 1, 1, 1, 1, 1, 1 - 0.99 * 0.25, 1 - 0.99 * 0.5, 1 - 0.99 * 0.75, 0.01]
    assert per_epoch == pytest.approx([0.1 * f for f in expected])
    assert all(noise for _, noise in calls)
    assert [m["samples"] for m in reports] == [0] * 8 + [1, 2]


def test_sgd_baseline_adds_no_noise(monkeypatch):
    """sampler: sgd asks for noise like any sampler; the update rule ignores it (adds_noise)."""
    calls, _, result = _run(monkeypatch, epochs=1, sampler="sgd")
    assert all(noise for _, noise in calls)
    assert result.metrics["test_error"] < 0.9
    assert samplers.SGD.adds_noise is False
