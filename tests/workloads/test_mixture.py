"""The mixture workload: its gradient, its contract, and (slow) both modes with the right
weights by SGLD and SGHMC in full precision and with 8-bit variance-corrected accumulators."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workloads import mixture
from workloads.base import TrialContext
from workloads.config.resolve import resolve_config


def _run(raw: dict):
    cfg = resolve_config({"workload": "mixture", **raw})
    gen = torch.Generator().manual_seed(cfg["seed"])
    return mixture.run(cfg, TrialContext(generator=gen))


def test_gradient_is_minus_the_log_density_derivative() -> None:
    ref = mixture.target()
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)
    h = 1e-6
    numeric = -(np.log(ref.pdf(x.numpy() + h)) - np.log(ref.pdf(x.numpy() - h))) / (2 * h)
    assert mixture.grad_potential(x).numpy() == pytest.approx(numeric, abs=1e-6)


def test_contract_and_weight_metric() -> None:
    res = _run({"chains": 8, "steps": 300, "lr": 0.05, "burn_in": 100, "dim": 2})
    assert res.samples.shape[1:] == (8, 2)
    for key in ("mean", "std", "w2", "ks", "ess", "weight_right", "bits", "bits_per_param"):
        assert isinstance(res.metrics[key], float | int)
    assert res.metrics["weight_right"] == pytest.approx(float(np.mean(res.samples > 0)))
    assert res.metrics["target_weight_right"] == pytest.approx(2 / 3, abs=1e-3)


# Mode weights. The slow part of the chain is the switching between modes: the barrier at 0 is
# ~4.5 nats above the right mode and ~3.8 above the left, Kramers' rates (U'' ≈ 4 at the
# modes) ~0.007 and ~0.014 per unit time, a relaxation time of ~50 time units: ~1000 steps
# at lr 0.05 (SGLD), ~500 at lr 0.1 (SGHMC). The mode indicator then has an integrated
# autocorrelation time ~2·1000 steps, so 1000 chains × 8000 post-burn-in steps give ESS
# ≳ 4000 and SE(weight) = sqrt(p(1-p)/ESS) ≲ 0.0075: the tolerance 0.05 is > 6 SE. Burn-in
# 4000 steps (≥ 4 relaxation times) leaves < 0.02 · 0.3 of the start's bias (all from 0).
CASES = [
    ("sgld", "full", {"lr": 0.05}),
    ("sgld", "vc", {"lr": 0.05}),
    ("sghmc", "full", {"lr": 0.1, "inverse_mass": 1.0, "friction": 3.0}),
    ("sghmc", "vc", {"lr": 0.1, "inverse_mass": 1.0, "friction": 3.0}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("sampler", "accumulator", "extra"), CASES)
def test_both_modes_with_the_right_weights(sampler: str, accumulator: str, extra: dict) -> None:
    fmt = {"format": "fixed", "bits": 8, "frac_bits": 4} if accumulator == "vc" else {}
    res = _run(
        {
            "sampler": sampler,
            "accumulator": accumulator,
            "chains": 1000,
            "steps": 12000,
            "burn_in": 4000,
            "thin": 20,
            **fmt,
            **extra,
        }
    )
    m = res.metrics
    assert m["weight_right"] == pytest.approx(m["target_weight_right"], abs=0.05)
    left = res.samples[res.samples < 0]
    right = res.samples[res.samples > 0]
    # each mode is found where it is: its mean within 0.1 of ±1.5 (the in-mode std is 0.5,
    # tens of thousands of effective samples per mode)
    assert float(left.mean()) == pytest.approx(-1.5, abs=0.1)
    assert float(right.mean()) == pytest.approx(1.5, abs=0.1)
    assert m["std"] == pytest.approx(mixture.target().std(), rel=0.05)
