"""Gaussian target (ALGORITHMS.md §10): the reference distribution of low-precision SGLD.

U(θ) = ½ θᵀ Σ⁻¹ θ with the stochastic gradient ∇Ũ(θ) = Σ⁻¹ θ + ``grad_noise``·ξ, N = 1, so at
temperature T the chains target N(0, T Σ).

- ``dim`` 1 (default): Σ = 1, the 1-D N(0, 1) of the LP-SGLD paper with ∇Ũ(θ) = θ + 0.1ξ.
- ``dim`` d > 1: Σ = R diag(σ²) Rᵀ with variances σ_i² spread log-uniformly over
  ``condition`` (default 10: a decade, geometric mean 1) and R a fixed random rotation
  (``rotate``, drawn from seed 0, not from the trial's seed, so every trial has the same target).

Metrics: ``mean`` and ``std`` of every collected sample (pooled over chains; for d > 1 the mean
of the coordinates' means and sqrt of the mean variance, with ``std_ratio`` =
sqrt(mean_i Var_i / Σ_ii)), ``w2`` (1-D: exact, from the kept samples; d-D: the Gaussian closed
form from the collected moments), ``ks`` (1-D; d-D: the largest over coordinates), ``ess`` and
``rhat`` (:func:`workloads.diagnostics.chain_diagnostics` of the kept samples: ArviZ's bulk ESS
over all chains and rank-normalised split R-hat, the worst coordinate; R-hat needs two chains),
``target_std``, ``bits``, ``bits_per_param``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy import stats

from lowprec import metrics as lm
from workloads.base import TrialContext, WorkloadResult
from workloads.config.table import GAUSSIAN as TABLE
from workloads.config.trialspec import TrialSpec
from workloads.diagnostics import chain_diagnostics
from workloads.synthetic import bits_metrics, run_chains
from workloads.synthetic import validate as validate

#: its keys and defaults: the LP-SGLD paper's Gaussian (ALGORITHMS.md §10), lr 1e-3, T = 1
#: (workloads.config.table, where they are read without importing torch)
KEYS, DEFAULTS = TABLE.keys, TABLE.defaults


def target_covariance(dim: int, condition: float = 10.0, rotate: bool = True) -> np.ndarray:
    """Σ: variances log-uniform in [condition^-½, condition^½] (geometric mean 1), rotated by
    a fixed random orthogonal matrix (seed 0) when ``rotate``; 1×1 identity for dim 1."""
    if dim == 1:
        return np.ones((1, 1))
    variances = np.logspace(-0.5, 0.5, dim) ** math.log10(condition)
    if not rotate:
        return np.diag(variances)
    q, r = np.linalg.qr(np.random.default_rng(0).standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))
    return q @ np.diag(variances) @ q.T


def run(config: TrialSpec | dict[str, Any], ctx: TrialContext) -> WorkloadResult:
    """Sample N(0, T Σ) with the config's sampler; see the module docstring."""
    config = TrialSpec.of(config)
    dim, temperature = int(config["dim"]), float(config["temperature"])
    sigma = target_covariance(dim, float(config["condition"]), bool(config["rotate"]))
    precision = torch.from_numpy(np.linalg.inv(sigma)).to(torch.float32).to(ctx.device)
    noise = float(config["grad_noise"])

    def grad_fn(theta: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        # ∇Ũ(θ) = Σ⁻¹ θ + grad_noise · ξ (rows are chains)
        g = theta if dim == 1 else theta @ precision
        if noise:
            g = g + noise * torch.randn(theta.shape, generator=gen, device=theta.device)
        return g

    target_cov = temperature * sigma
    target_sd = np.sqrt(np.diag(target_cov))

    def live(mean: np.ndarray, cov: np.ndarray) -> dict[str, float]:
        return {"w2": lm.w2_gaussian(mean, cov, np.zeros(dim), target_cov)}

    chains = run_chains(config, ctx, grad_fn, dim, live_metrics=live)
    samples, mean, cov = chains.samples, chains.mean, chains.cov
    out: dict[str, Any] = {
        "mean": float(mean.mean()),
        "std": float(math.sqrt(max(np.mean(np.diag(cov)), 0.0))),
        "target_std": float(math.sqrt(np.mean(np.diag(target_cov)))),
        **chain_diagnostics(samples),
        "samples": int(samples.shape[0]),
        "collected": int(chains.collected),
    }
    if temperature > 0:
        out["std_ratio"] = float(math.sqrt(np.mean(np.diag(cov) / np.diag(target_cov))))
    if dim == 1:
        if temperature > 0:
            ref = stats.norm(0.0, math.sqrt(temperature))
            out["w2"] = lm.w2(samples, ref)
            out["ks"] = lm.ks(samples, ref)
        else:  # the target is the point mass at 0: W2 = root mean square, KS undefined
            out["w2"] = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
            out["ks"] = float("nan")
    else:
        out["w2"] = lm.w2_gaussian(mean, cov, np.zeros(dim), target_cov)
        if temperature > 0:
            out["ks"] = max(
                lm.ks(samples[..., i], stats.norm(0.0, target_sd[i])) for i in range(dim)
            )
        else:
            out["ks"] = float("nan")
    out.update(bits_metrics(chains.precision, [tuple(chains.final.shape)]))
    return WorkloadResult(metrics=out, samples=samples.astype(np.float32))
