"""SGLD and SGD (lowprec/samplers/sgld.py, ALGORITHMS.md §5): the update equations on
hand-checkable cases, the noise variance 2·lr·T/N, no noise at T = 0."""

from __future__ import annotations

import pytest
import torch

from tests.lowprec.samplers.helpers import SHAPES, _build, _config, _run


def test_sgd_full_precision_is_the_equation() -> None:
    # θ' = θ - lr (∇L̄ + θ/(N σ²)) with ∇L̄ = θ (loss θ²/2), N = 10, σ = 1
    config = _config("sgd", "full", "fp32")
    out, _ = _run(config, steps=1)
    init = torch.Generator().manual_seed(123)
    for t, shape in zip(out, SHAPES, strict=True):
        th = torch.randn(shape, generator=init)
        assert torch.allclose(t, th - 0.01 * (th + th / 10.0), atol=1e-7)


def test_sgld_noise_variance_is_2_lr_T_over_N() -> None:
    # one step from θ = 0 with zero gradient: θ' = sqrt(2 lr T / N) ξ. With n = 10^5 values the
    # sample variance has relative SE sqrt(2/n) = 0.0045: 3% is ~7 SE.
    theta = torch.zeros(100_000)
    gen = torch.Generator().manual_seed(0)
    cfg = {"sampler": "sgld", "temperature": 0.5}
    s = _build(cfg, [theta], num_data=4, generator=gen)
    theta.grad = torch.zeros_like(theta)
    s.step(0.2)
    assert float(theta.var()) == pytest.approx(2 * 0.2 * 0.5 / 4, rel=0.03)


def test_noise_off_and_zero_temperature() -> None:
    base = _config("sgld", "full", "fp32")
    a, _ = _run({**base, "temperature": 0.0})
    b, _ = _run({**base, "sampler": "sgd"})
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
