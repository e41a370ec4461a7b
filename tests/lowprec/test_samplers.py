"""Samplers (ALGORITHMS.md §5, §6): the contract over every sampler × accumulator × format,
the update equations on hand-checkable cases, the SGHMC coefficients against an independent
computation (Van Loan's matrix exponential), checkpoints and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from lowprec import parse_format, quantize
from lowprec import samplers as S
from lowprec.samplers.sghmc import sghmc_coefficients
from workloads.config.precision import precision_from_config

FORMATS = ["fixed<8,3>", "block<8>", "float<4,3>", "fp32"]
SHAPES = [(5, 3), (3,)]


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


COMBOS = [
    (s, a, f)
    for s in ("sgld", "sghmc", "sgd")
    for a in ("full", "low", "vc")
    for f in FORMATS
    if not (a != "full" and f == "fp32")
]


@pytest.mark.parametrize(("sampler", "accumulator", "fmt"), COMBOS)
def test_contract(sampler: str, accumulator: str, fmt: str) -> None:
    config = _config(sampler, accumulator, fmt)
    out, s = _run(config)
    assert [tuple(t.shape) for t in out] == SHAPES
    assert all(t.dtype == torch.float32 for t in out)
    assert all(bool(torch.isfinite(t).all()) for t in out)
    # θ̂ lies on W's grid: nearest rounding leaves it unchanged
    w = parse_format(fmt)
    for t in out:
        assert torch.equal(quantize(t, w, rounding="nearest"), t)
    # the params hold θ̂, and sample() returns copies
    for t, p in zip(out, s.params, strict=True):
        assert torch.equal(t, p.detach())
        assert t.data_ptr() != p.data_ptr()
    # same seed, same result; another seed, another result (noise or stochastic rounding)
    again, _ = _run(config)
    assert all(torch.equal(a, b) for a, b in zip(out, again, strict=True))
    other, _ = _run(config, seed=1)
    if not (sampler == "sgd" and fmt == "fp32"):
        assert not all(torch.equal(a, b) for a, b in zip(out, other, strict=True))


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


def test_prepare_is_idempotent_and_full_keeps_a_master_copy() -> None:
    p = torch.nn.Parameter(torch.linspace(-1, 1, 101))
    gen = torch.Generator().manual_seed(0)
    s = _build(_config("sgld", "full", "fixed<8,3>"), [p], num_data=1, generator=gen)
    s.prepare()
    first = p.detach().clone()
    s.prepare()
    assert torch.equal(first, p.detach())
    assert torch.equal(s.theta[0], torch.linspace(-1, 1, 101))  # the master is untouched
    assert not torch.equal(first, s.theta[0])


@pytest.mark.parametrize("sampler", ["sgld", "sghmc"])
@pytest.mark.parametrize("accumulator", ["full", "low", "vc"])
def test_state_dict_resumes_exactly(sampler: str, accumulator: str) -> None:
    config = _config(sampler, accumulator, "fixed<8,4>", momentum_rescale=True)
    _, s = _run(config, steps=3)
    state, gen_state = s.state_dict(), s.generator.get_state()
    straight, _ = _continue(s, config, 3)
    # a fresh sampler over fresh params, restored
    params = [torch.nn.Parameter(torch.zeros(sh)) for sh in SHAPES]
    gen = torch.Generator()
    fresh = _build(config, params, num_data=10, generator=gen)
    fresh.load_state_dict(state)
    gen.set_state(gen_state)
    resumed, _ = _continue(fresh, config, 3)
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed, strict=True))


def _continue(s: S.Sampler, config: dict, steps: int) -> tuple[list[torch.Tensor], S.Sampler]:
    for _ in range(steps):
        s.prepare()
        for p in s.params:
            p.grad = p.detach().clone()
        s.step(config["lr"])
    return s.sample(), s


def test_load_state_dict_rejects_another_sampler() -> None:
    _, a = _run(_config("sgld", "full", "fp32"), steps=1)
    _, b = _run(_config("sghmc", "full", "fp32"), steps=1)
    with pytest.raises(ValueError, match="checkpoint is for sampler 'sghmc'"):
        a.load_state_dict(b.state_dict())


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


def test_vc_modes_differ() -> None:
    # at the reference setting (η 0.09, u 2, γ 3, N = 1 below via T = 10: T/N = 1) the noise
    # variances exceed Δ²/4, so the conditional draw differs from the independent one
    extra = {"lr": 0.09, "inverse_mass": 2.0, "temperature": 10.0, "prior_std": None}
    a, _ = _run(_config("sghmc", "vc", "fixed<8,4>", vc_mode="joint", **extra))
    b, _ = _run(_config("sghmc", "vc", "fixed<8,4>", vc_mode="independent", **extra))
    assert not all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"sampler": "sghmc", "friction": 0.0}, "friction"),
        ({"sampler": "sghmc", "inverse_mass": 0.0}, "inverse_mass"),
        ({"sampler": "sghmc", "vc_mode": "both"}, "vc_mode"),
        ({"sampler": "sgld", "accumulator": "vc"}, "accumulator"),
        ({"sampler": "sgld", "temperature": -1.0}, "temperature"),
        ({"sampler": "sgld", "prior_std": 0.0}, "prior_std"),
    ],
)
def test_bad_config_names_the_key(config: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _build(config, [torch.zeros(3)])


def test_step_without_grad_says_so() -> None:
    s = _build({"sampler": "sgld"}, [torch.zeros(3)], generator=torch.Generator())
    with pytest.raises(ValueError, match=r"no \.grad"):
        s.step(0.1)


def test_precision_spec_direct() -> None:
    spec = precision_from_config({"format": "fixed", "bits": 8, "accumulator": "low"})
    s = S.SGLD([torch.zeros(4)], spec, generator=torch.Generator().manual_seed(0))
    assert s.accumulator == "low" and s.precision.weight == parse_format("fixed<8,6>")
