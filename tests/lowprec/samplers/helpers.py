"""The samplers' tests' shorthand: a sampler from a dict of keys, through the typed
constructors, and a few steps of it on a quadratic loss."""

from __future__ import annotations

import torch

from lowprec import samplers as S
from workloads.config.precision import precision_from_config

FORMATS = ["fixed<8,3>", "block<8>", "float<4,3>", "fp32"]
SHAPES = [(5, 3), (3,)]

COMBOS = [
    (s, a, f)
    for s in ("sgld", "sghmc", "sgd")
    for a in ("full", "low", "vc")
    for f in FORMATS
    if not (a != "full" and f == "fp32")
]


def _build(
    config: dict, params: list, num_data: int = 1, generator: torch.Generator | None = None
) -> S.Sampler:
    """The sampler a test's dict shorthand names, through the typed constructors."""
    common = {
        "num_data": num_data,
        "temperature": config.get("temperature", 1.0),
        "prior_std": config.get("prior_std"),
        "generator": generator,
    }
    precision = precision_from_config(config)
    if config["sampler"] == "sghmc":
        return S.SGHMC(
            params,
            precision,
            friction=config.get("friction", 3.0),
            inverse_mass=config.get("inverse_mass", 1.0),
            vc_mode=config.get("vc_mode", "joint"),
            momentum_rescale=config.get("momentum_rescale", False),
            **common,
        )
    return S.SAMPLERS[config["sampler"]](params, precision, **common)


def _config(sampler: str, accumulator: str, fmt: str, **extra) -> dict:
    return {
        "sampler": sampler,
        "accumulator": accumulator,
        "weight_format": fmt,
        "grad_format": fmt,
        "lr": 0.01,
        "temperature": 1.0,
        "prior_std": 1.0,
        "friction": 3.0,
        "inverse_mass": 1.0,
        **extra,
    }


def _run(config: dict, seed: int = 0, steps: int = 4) -> tuple[list[torch.Tensor], S.Sampler]:
    """A tiny 'model': params filled with a fixed start, gradient = θ̂ (a quadratic loss)."""
    init = torch.Generator().manual_seed(123)
    params = [torch.nn.Parameter(torch.randn(s, generator=init)) for s in SHAPES]
    gen = torch.Generator().manual_seed(seed)
    sampler = _build(config, params, num_data=10, generator=gen)
    for _ in range(steps):
        sampler.prepare()
        loss = sum((p**2).sum() / 2 for p in params)
        for p in params:
            p.grad = None
        loss.backward()
        sampler.step(config["lr"])
    return sampler.sample(), sampler
