"""SGHMC (lowprec/samplers/sghmc.py, ALGORITHMS.md §6): the coefficients against an
independent computation (Van Loan's matrix exponential), the drawn noise's scale and pair
covariance, and the momentum rescaled per layer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from lowprec.samplers.sghmc import sghmc_coefficients
from tests.lowprec.samplers.helpers import _build


def _van_loan(eta: float, gamma: float, u: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact one-step law of dθ = v dt, dv = -γ v dt - u g dt + sqrt(2γu) dW (g fixed):
    X = (v, θ), dX = A X dt + b dt + L dW. Transition e^(Aη), drift ∫_0^η e^(As) ds b, and the
    covariance ∫_0^η e^(As) L Lᵀ e^(Aᵀs) ds by Van Loan's block exponential (1978)."""
    a = np.array([[-gamma, 0.0], [1.0, 0.0]])
    q = np.array([[2 * gamma * u, 0.0], [0.0, 0.0]])
    block = np.zeros((4, 4))
    block[:2, :2], block[:2, 2:], block[2:, 2:] = -a, q, a.T
    e = expm(block * eta)
    phi = e[2:, 2:].T
    cov = phi @ e[:2, 2:]
    aug = np.zeros((3, 3))
    aug[:2, :2], aug[:2, 2] = a, [-u, 0.0]  # b = (-u g, 0) with g = 1
    drift = expm(aug * eta)[:2, 2]
    return phi, drift, cov


@pytest.mark.parametrize(
    ("eta", "gamma", "u"), [(0.09, 3.0, 2.0), (0.1, 3.0, 1.0), (1e-4, 2.0, 1.0)]
)
def test_sghmc_coefficients_match_the_sde(eta: float, gamma: float, u: float) -> None:
    c = sghmc_coefficients(eta, gamma, u, noise_scale=1.0)
    phi, drift, cov = _van_loan(eta, gamma, u)
    # v' = e v - u γ⁻¹(1-e) g; θ' = θ + γ⁻¹(1-e) v - u γ⁻²(γη + e - 1) g (note the minus)
    assert phi[0, 0] == pytest.approx(c["decay"], rel=1e-9)
    assert phi[1, 0] == pytest.approx(c["theta_from_v"], rel=1e-9)
    assert drift[0] == pytest.approx(-c["v_from_g"], rel=1e-9)
    assert drift[1] == pytest.approx(-c["theta_from_g"], rel=1e-6)
    assert cov[0, 0] == pytest.approx(c["var_v"], rel=1e-9)
    assert cov[0, 1] == pytest.approx(c["cov"], rel=1e-6)
    assert cov[1, 1] == pytest.approx(c["var_theta"], rel=1e-5)


def test_sghmc_noise_correlation_and_scale() -> None:
    c = sghmc_coefficients(0.09, 3.0, 2.0, noise_scale=1.0)
    corr = c["cov"] / math.sqrt(c["var_v"] * c["var_theta"])
    assert corr == pytest.approx(0.83, abs=0.01)  # ALGORITHMS.md §6
    half = sghmc_coefficients(0.09, 3.0, 2.0, noise_scale=0.5)
    assert half["var_theta"] == pytest.approx(0.5 * c["var_theta"])


def test_sghmc_drawn_noise_has_the_pair_covariance() -> None:
    # one full-precision step from θ = v = 0 with zero gradient: (v', θ') = (ξ_v, ξ_θ).
    # n = 2·10^5 pairs: relative SE of each second moment ≲ sqrt(2/n) = 0.003; 2% is > 6 SE.
    theta = torch.zeros(200_000)
    gen = torch.Generator().manual_seed(0)
    s = _build(
        {"sampler": "sghmc", "friction": 3.0, "inverse_mass": 2.0},
        [theta],
        num_data=2,
        generator=gen,
    )
    theta.grad = torch.zeros_like(theta)
    s.step(0.09)
    c = sghmc_coefficients(0.09, 3.0, 2.0, noise_scale=0.5)
    v = s.velocity()[0].double()
    th = theta.double()
    assert float(v.var()) == pytest.approx(c["var_v"], rel=0.02)
    assert float(th.var()) == pytest.approx(c["var_theta"], rel=0.02)
    assert float((v * th).mean()) == pytest.approx(c["cov"], rel=0.02)


def test_momentum_rescale_uses_the_whole_range() -> None:
    # low: S = max|v'| / max_value, stored Q(v'/S): the largest stored magnitude is max_value
    theta = torch.nn.Parameter(torch.linspace(-1, 1, 64))
    gen = torch.Generator().manual_seed(0)
    cfg = {
        "sampler": "sghmc",
        "accumulator": "low",
        "format": "fixed",
        "bits": 8,
        "tensors": "W",  # an fp32 gradient, so v' is known exactly
        "momentum_rescale": True,
        "temperature": 0.0,
    }
    s = _build(cfg, [theta], num_data=1000, generator=gen)
    theta.grad = 1e-3 * torch.ones_like(theta)  # a tiny gradient: v' ≈ -1e-3 u γ⁻¹ (1-e)
    s.step(0.01)
    fmt = s.momentum_format
    assert float(s.momentum[0].abs().max()) == pytest.approx(fmt.max_value)
    expected = -sghmc_coefficients(0.01, 3.0, 1.0, 0.0)["v_from_g"] * 1e-3
    assert float(s.velocity()[0].mean()) == pytest.approx(expected, rel=1e-3)
    # without rescaling the same momentum rounds to a few grid points around zero
    theta2 = torch.nn.Parameter(torch.linspace(-1, 1, 64))
    s2 = _build(
        {**cfg, "momentum_rescale": False},
        [theta2],
        num_data=1000,
        generator=torch.Generator().manual_seed(0),
    )
    theta2.grad = 1e-3 * torch.ones_like(theta2)
    s2.step(0.01)
    assert len(torch.unique(s2.momentum[0])) <= 2
