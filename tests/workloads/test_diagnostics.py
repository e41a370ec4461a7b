"""ESS and R-hat (workloads.diagnostics, ArviZ) on chains whose answer is known: AR(1) chains,
whose effective sample size is n(1 - ρ)/(1 + ρ) per chain, and chains started apart that have
not mixed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from workloads import gaussian, mixture
from workloads.base import TrialContext
from workloads.config.resolve import resolve_config
from workloads.diagnostics import chain_diagnostics


def ar1(rng: np.random.Generator, rho: float, n: int, *lead: int) -> np.ndarray:
    """Stationary AR(1) chains x_t = ρ x_{t-1} + sqrt(1 - ρ²) ε_t, N(0, 1) marginals,
    shape [n, *lead] (time first)."""
    x = np.empty((n, *lead))
    x[0] = rng.standard_normal(lead)
    eps = rng.standard_normal((n, *lead)) * math.sqrt(1.0 - rho * rho)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + eps[t]
    return x


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_ess_of_ar1_chains_is_n_times_one_minus_rho_over_one_plus_rho_summed_over_chains(rho):
    """C chains of n draws: ESS = C·n(1 - ρ)/(1 + ρ) (ArviZ pools the chains). The mean of R
    independent replicates must lie within 4 Monte Carlo standard errors (their sd / √R) of it:
    per-chain ESS (a factor C) or ignoring the autocorrelation (a factor (1 + ρ)/(1 - ρ)) are
    dozens of standard errors away."""
    chains, n, reps = 4, 2000, 30
    truth = chains * n * (1.0 - rho) / (1.0 + rho)
    x = ar1(np.random.default_rng(0), rho, n, reps, chains)
    est = np.array([chain_diagnostics(x[:, r, :])["ess"] for r in range(reps)])
    se = est.std(ddof=1) / math.sqrt(reps)
    assert abs(est.mean() - truth) < 4 * se, (est.mean(), truth, se)
    assert se < 0.05 * truth  # the check has power: the MC error is a few percent at most


def test_ess_is_the_worst_coordinate():
    """Coordinates with ρ = 0 and ρ = 0.9: ess is the smaller, the ρ = 0.9 one's alone."""
    rng = np.random.default_rng(1)
    x = np.stack([ar1(rng, 0.0, 2000, 4), ar1(rng, 0.9, 2000, 4)], axis=-1)
    both = chain_diagnostics(x)["ess"]
    slow = chain_diagnostics(x[..., 1])["ess"]
    assert both == pytest.approx(slow)
    assert both < 0.2 * chain_diagnostics(x[..., 0])["ess"]


def test_rhat_of_chains_started_apart_that_have_not_mixed_is_well_above_1_01():
    """Four slow AR(1) chains (ρ = 0.99, 200 draws) started 3, 1, -1 and -3 away from
    stationarity: chain c is a stationary chain plus s_c ρ^t, which has decayed only to
    0.99^200 ≈ 0.13 of s_c by the end. R-hat far above 1.01."""
    x = ar1(np.random.default_rng(2), 0.99, 200, 4)
    x += np.array([3.0, 1.0, -1.0, -3.0]) * 0.99 ** np.arange(200)[:, None]
    assert chain_diagnostics(x)["rhat"] > 1.5


def test_rhat_of_mixed_chains_is_below_1_01():
    """Independent N(0, 1) draws in four chains of 4,000: R-hat within 1.01 (its sampling
    error here is about 1e-3)."""
    x = np.random.default_rng(3).standard_normal((4000, 4, 3))
    d = chain_diagnostics(x)
    assert 0.99 < d["rhat"] < 1.01
    assert d["ess"] == pytest.approx(16000, rel=0.1)


def test_one_chain_has_ess_and_no_rhat_and_too_few_draws_give_none():
    x = np.random.default_rng(4).standard_normal((1000, 1))
    d = chain_diagnostics(x)
    assert d["rhat"] is None and d["ess"] == pytest.approx(1000, rel=0.15)
    assert chain_diagnostics(np.zeros((3, 4))) == {"ess": None, "rhat": None}
    assert chain_diagnostics(np.full((100, 4), np.nan)) == {"ess": None, "rhat": None}


@pytest.mark.parametrize("module", [gaussian, mixture])
def test_synthetic_workloads_report_ess_and_rhat_of_their_kept_draws(module):
    """With several chains the workloads report ``ess`` and ``rhat`` (one definition, from
    workloads.diagnostics); ``ess`` is at most the draws kept over all chains, with some slack
    for ArviZ's antithetic estimates."""
    name = "gaussian" if module is gaussian else "mixture"
    config = resolve_config(
        {"workload": name, "chains": 4, "steps": 3000, "burn_in": 500, "thin": 5, "lr": 0.05}
    )
    ctx = TrialContext(generator=torch.Generator().manual_seed(0))
    out = module.run(config, ctx)
    kept = out.samples.shape[0] * out.samples.shape[1]
    expected = chain_diagnostics(out.samples)
    assert out.metrics["ess"] == pytest.approx(expected["ess"])
    assert out.metrics["rhat"] == pytest.approx(expected["rhat"])
    assert 0 < out.metrics["ess"] < 2 * kept
