"""Gaussian mixture target (ALGORITHMS.md §10): 1/3·N(-1.5, 0.5²) + 2/3·N(1.5, 0.5²), the
bimodal test of low-precision SGHMC (Wang, Chen, Song & Zhang, TMLR 2024).

U(θ) = -log p(θ) per coordinate (``dim`` > 1 gives independent copies), with the stochastic
gradient ∇Ũ(θ) = -p'(θ)/p(θ) + ``grad_noise``·ξ, N = 1; at temperature T the chains target
p(θ)^(1/T) (the reference metrics assume T = 1 and are skipped otherwise).

Metrics: ``mean``, ``std`` (of every collected sample, pooled), ``w2`` and ``ks`` (exact, from
the kept samples), ``ess`` and ``rhat`` (:func:`workloads.diagnostics.chain_diagnostics`:
ArviZ's bulk ESS over all chains and rank-normalised split R-hat, worst coordinate; R-hat needs
two chains), ``weight_right`` (fraction of kept samples above 0; the target's is 2/3 up to the
negligible mass of the other component across 0, ≈ 2/3 - 0.0009),
``target_weight_right``, ``bits``, ``bits_per_param``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lowprec import metrics as lm
from workloads.base import TrialContext, WorkloadResult
from workloads.config.table import MIXTURE as TABLE
from workloads.config.trialspec import TrialSpec
from workloads.diagnostics import chain_diagnostics
from workloads.synthetic import bits_metrics, run_chains
from workloads.synthetic import validate as validate

WEIGHTS = (1.0 / 3.0, 2.0 / 3.0)
MEANS = (-1.5, 1.5)
STDS = (0.5, 0.5)

#: its keys and defaults: one chain long enough to cross between the modes many times
#: (workloads.config.table, where they are read without importing torch)
KEYS, DEFAULTS = TABLE.keys, TABLE.defaults


def target() -> lm.NormalMixture:
    """The 1-D target law, with cdf, ppf and the partial expectation for the exact W2."""
    return lm.NormalMixture(WEIGHTS, MEANS, STDS)


def grad_potential(theta: torch.Tensor) -> torch.Tensor:
    """∇U(θ) = Σ_j r_j(θ) (θ - m_j)/s_j², r_j the responsibilities (softmax of the log terms)."""
    means = torch.tensor(MEANS, dtype=theta.dtype, device=theta.device)
    stds = torch.tensor(STDS, dtype=theta.dtype, device=theta.device)
    logw = torch.log(torch.tensor(WEIGHTS, dtype=theta.dtype, device=theta.device))
    z = (theta.unsqueeze(-1) - means) / stds
    resp = torch.softmax(logw - torch.log(stds) - 0.5 * z * z, dim=-1)
    return (resp * z / stds).sum(-1)


def run(config: TrialSpec | dict[str, Any], ctx: TrialContext) -> WorkloadResult:
    """Sample the mixture with the config's sampler; see the module docstring."""
    config = TrialSpec.of(config)
    dim = int(config["dim"])
    noise = float(config["grad_noise"])

    def grad_fn(theta: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        g = grad_potential(theta)
        if noise:
            g = g + noise * torch.randn(theta.shape, generator=gen, device=theta.device)
        return g

    chains = run_chains(config, ctx, grad_fn, dim)
    samples, mean, cov = chains.samples, chains.mean, chains.cov
    ref = target()
    out: dict[str, Any] = {
        "mean": float(mean.mean()),
        "std": float(np.sqrt(max(np.mean(np.diag(cov)), 0.0))),
        "target_std": ref.std(),
        **chain_diagnostics(samples),
        "weight_right": float(np.mean(samples > 0)),
        "target_weight_right": float(1.0 - ref.cdf(0.0)),
        "samples": int(samples.shape[0]),
        "collected": int(chains.collected),
    }
    if float(config["temperature"]) == 1.0:
        out["w2"] = lm.w2(samples, ref)
        out["ks"] = lm.ks(samples, ref)
    out.update(bits_metrics(chains.precision, [tuple(chains.final.shape)]))
    return WorkloadResult(metrics=out, samples=samples.astype(np.float32))
