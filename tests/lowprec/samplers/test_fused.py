"""The fused executor held to the eager one (ALGORITHMS.md §3-§6): nearest rounding without
noise gives the same bits; with noise and stochastic rounding, the same laws (one-step moments
with tolerances from the Monte Carlo standard error); checkpoints, seeds and the executor
choice. The long-run laws (naive inflation 1.285, full / vc at 1, SGHMC joint vc) are in
tests/workloads/test_gaussian_stats.py, on both executors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lowprec import PrecisionSpec, parse_format
from lowprec.samplers import SGD, SGHMC, SGLD, sghmc_coefficients

SHAPES = [(6, 5), (6,), (3, 2, 2), ()]


def _spec(fmt: str, accumulator: str, rounding: str = "stochastic", grad: str | None = None):
    f = parse_format(fmt)
    g = parse_format(grad) if grad is not None else f
    m = f if accumulator != "full" else parse_format("fp32")
    return PrecisionSpec(weight=f, grad=g, momentum=m, accumulator=accumulator, rounding=rounding)


def _params(seed: int = 123) -> list[torch.nn.Parameter]:
    init = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=init) * 1.5) for s in SHAPES]


def _make(cls, spec, executor, seed=0, **kw):
    params = _params()
    gen = torch.Generator().manual_seed(seed)
    extra = {"friction": 3.0, "inverse_mass": 2.0} if cls is SGHMC else {}
    s = cls(params, spec, num_data=10, generator=gen, executor=executor, **extra, **kw)
    return s, params


def _run(s, params, steps: int, lr: float = 0.05, noise: bool = True):
    """Quadratic loss Σ p²/2 plus a fixed tilt: ∇ = θ̂ - 0.3 (deterministic given θ̂)."""
    for _ in range(steps):
        s.prepare()
        for p in params:
            p.grad = p.detach() - 0.3
        s.step(lr, noise=noise)
    return [p.detach().clone() for p in params]


NEAREST = [
    (cls, acc, fmt)
    for cls in (SGD, SGLD, SGHMC)
    for acc in ("full", "low")
    for fmt in (
        "fixed<8,3>",
        "block<8>",
        "block<6,4>",
        "float<4,3>",
        "fp32",
        "fp8_e4m3",
        "mx<fp8_e4m3,4>",
        "mx<fp4_e2m1>",
        "mx<int8,4>",
        "mx<fp8_e4m3,4,rceil>",
        "mx<fp4_e2m1,even>",
        "nvfp4",
        "nvfp4<t>",
        "int<8>",
        "int<4,g4>",
    )
    if not (acc == "low" and fmt == "fp32")
]


def _assert_same_bits(eager, fused, a, b) -> None:
    """The eager and the fused sampler ran the same steps to the same bits: their params ``a``
    and ``b``, their θ and, for SGHMC, their momentum."""
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    for x, y in zip(eager.theta, fused.theta, strict=True):
        assert torch.equal(x, y)
    if isinstance(eager, SGHMC):
        for x, y in zip(eager.momentum, fused.momentum, strict=True):
            assert torch.equal(x, y)


@pytest.mark.parametrize(("cls", "accumulator", "fmt"), NEAREST)
def test_nearest_without_noise_is_the_eager_step_bit_for_bit(cls, accumulator, fmt) -> None:
    spec = _spec(fmt, accumulator, rounding="nearest")
    kw = {"prior_std": 2.0, "temperature": 0.0 if cls is not SGD else 1.0}
    eager, pe = _make(cls, spec, "eager", **kw)
    fused, pf = _make(cls, spec, "fused", **kw)
    assert (eager.executor_name, fused.executor_name) == ("eager", "fused")
    a, b = _run(eager, pe, 6), _run(fused, pf, 6)
    _assert_same_bits(eager, fused, a, b)
    # the steps moved the weights (the check is not vacuous)
    assert not all(torch.equal(x, y) for x, y in zip(a, _params(), strict=True))


# -- nvfp4<t>: a per-tensor scale T over each parameter tensor (ALGORITHMS.md §11) -------------
#: tensors of different magnitudes (so their T differ), rows longer than a block of 16 with a
#: shorter last block, and an all-zero tensor (T = 0 taken as 1) whose gradient is zero too
T_SHAPES = [(6, 20), (40,), (3, 2, 17), (), (5, 16)]
T_SIZES = [1.5, 1e-3, 40.0, 2.0, 0.0]


def _t_params() -> list[torch.nn.Parameter]:
    init = torch.Generator().manual_seed(123)
    return [
        torch.nn.Parameter(torch.randn(shape, generator=init) * size)
        for shape, size in zip(T_SHAPES, T_SIZES, strict=True)
    ]


def _t_run(cls, spec, executor: str, steps: int = 5, noise: bool = False, **kw):
    """``steps`` steps on the T_SHAPES tensors, ∇ = 1.1·θ̂ - 0.3·(the tensor's size): each
    tensor's gradient keeps its own magnitude, the zero tensor's stays 0."""
    params = _t_params()
    gen = torch.Generator().manual_seed(0)
    extra = {"friction": 3.0, "inverse_mass": 2.0} if cls is SGHMC else {}
    s = cls(params, spec, num_data=10, generator=gen, executor=executor, **extra, **kw)
    for _ in range(steps):
        s.prepare()
        for p, size in zip(params, T_SIZES, strict=True):
            p.grad = 1.1 * p.detach() - 0.3 * size
        s.step(0.05, noise=noise)
    return s, [p.detach().clone() for p in params]


#: nvfp4<t> as W, as G, as M (SGHMC low: full keeps v in float32), and as all three
T_ROLES = {
    "W": ("nvfp4<t>", "fp32", "fixed<8,4>"),
    "G": ("fixed<8,4>", "nvfp4<t>", "fixed<8,4>"),
    "M": ("fixed<8,4>", "fp32", "nvfp4<t>"),
    "WGM": ("nvfp4<t>", "nvfp4<t>", "nvfp4<t>"),
    "W with mx G, nvfp4 M": ("nvfp4<t>", "mx<fp8_e4m3,16>", "nvfp4"),
}
T_NEAREST = [
    (cls, acc, role)
    for cls in (SGD, SGLD, SGHMC)
    for acc in ("full", "low")
    for role in T_ROLES
    if not (role == "M" and (cls is not SGHMC or acc == "full"))
]


def _t_spec(role: str, accumulator: str, rounding: str) -> PrecisionSpec:
    w, g, m = (parse_format(f) for f in T_ROLES[role])
    m = m if accumulator != "full" else parse_format("fp32")
    return PrecisionSpec(weight=w, grad=g, momentum=m, accumulator=accumulator, rounding=rounding)


@pytest.mark.parametrize(("cls", "accumulator", "role"), T_NEAREST)
def test_nvfp4_per_tensor_nearest_is_the_eager_step_bit_for_bit(cls, accumulator, role) -> None:
    # T of W (of the θ the step computes), of G (of the gradient) and of M (of v's draw) per
    # parameter tensor: the fused launches with T made between them give the eager bits
    spec = _t_spec(role, accumulator, "nearest")
    kw = {"prior_std": 2.0, "temperature": 0.0 if cls is not SGD else 1.0}
    eager, a = _t_run(cls, spec, "eager", **kw)
    fused, b = _t_run(cls, spec, "fused", **kw)
    assert (eager.executor_name, fused.executor_name) == ("eager", "fused")
    _assert_same_bits(eager, fused, a, b)
    assert not torch.equal(a[0], _t_params()[0])  # the steps moved the weights
    assert torch.count_nonzero(a[-1]) == 0  # the zero tensor stayed zero


def _columns_match(x: torch.Tensor, y: torch.Tensor) -> None:
    """x and y (rows of 16, one law per column) have the same mean and variance per column,
    within 6 standard errors of the difference of two independent samples."""
    x, y = x.double(), y.double()
    n = x.shape[0]
    se_m = ((x.var(0) + y.var(0)) / n).sqrt()
    assert torch.all((x.mean(0) - y.mean(0)).abs() <= 6 * se_m + 1e-12), (x.mean(0), y.mean(0))
    m4 = ((x - x.mean(0)) ** 4).mean(0) + ((y - y.mean(0)) ** 4).mean(0)
    se_v = ((m4 - x.var(0) ** 2 - y.var(0) ** 2).clamp(min=0) / n).sqrt()
    assert torch.all((x.var(0) - y.var(0)).abs() <= 6 * se_v + 1e-12), (x.var(0), y.var(0))


#: one law-bearing tensor: rows of the pattern below, and a first row holding the tensor's
#: largest gradient (so T is not the blocks' own: their E4M3 scales round (amax/6)/T)
T_ROWS = 12_500
T_LAW = [
    (SGD, "full", "G", "stochastic", False),
    (SGLD, "low", "W", "stochastic", True),
    (SGLD, "vc", "W", "stochastic", True),
    (SGLD, "vc", "WGM", "stochastic", False),
    (SGHMC, "low", "M", "stochastic", True),
    (SGHMC, "vc", "WGM", "stochastic", True),
]


@pytest.mark.parametrize(("cls", "accumulator", "role", "rounding", "noise"), T_LAW)
def test_nvfp4_per_tensor_step_has_the_eager_law(cls, accumulator, role, rounding, noise):
    # one step from the same state on both executors: per column of the rows (one law each),
    # the same mean and variance of θ' (and v'); without noise the same values too (each
    # column rounds one number up or down: the grid of its block, T·S, is the eager one)
    pattern = 0.2 + 0.0137 * torch.arange(16)
    grad = pattern.repeat(T_ROWS, 1)
    grad[0, 0] = 10.0
    spec = _t_spec(role, accumulator, rounding)
    extra = {"friction": 3.0, "inverse_mass": 2.0} if cls is SGHMC else {}
    out = []
    for executor in ("eager", "fused"):
        theta = torch.full((T_ROWS, 16), 0.25) if cls is not SGD else torch.zeros(T_ROWS, 16)
        gen = torch.Generator().manual_seed(0)
        s = cls([theta], spec, num_data=1, temperature=0.01, generator=gen, executor=executor,
                **extra)  # fmt: skip
        assert s.executor_name == executor
        s.params[0].grad = grad.clone()
        s.step(0.05, noise=noise)
        v = s.velocity()[0][1:] if cls is SGHMC else None
        out.append((s.theta[0].detach()[1:].clone(), v))
    (te, ve), (tf, vf) = out
    _columns_match(te, tf)
    if cls is SGHMC:
        _columns_match(ve, vf)
    if not noise:
        for j in range(16):
            assert torch.equal(te[:, j].unique(), tf[:, j].unique()), j
    assert not torch.equal(te, tf)  # random: the check compares laws, not one draw


@pytest.mark.parametrize("cls", [SGLD, SGHMC])
@pytest.mark.parametrize("accumulator", ["full", "low", "vc"])
def test_state_dict_round_trip(cls, accumulator: str) -> None:
    spec = _spec("block<8>", accumulator)
    s, params = _make(cls, spec, "fused", temperature=0.5)
    _run(s, params, 3)
    state, gen_state = s.state_dict(), s.generator.get_state()
    straight = _run(s, params, 3)
    fresh, fp = _make(cls, spec, "fused", seed=7, temperature=0.5)
    fresh.load_state_dict(state)
    fresh.generator.set_state(gen_state)
    resumed = _run(fresh, fp, 3)
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed, strict=True))
    # the checkpoint's layout is the executors' common one: the eager sampler takes it
    eager, _ = _make(cls, spec, "eager", temperature=0.5)
    eager.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(eager.theta, state["theta"], strict=True))


@pytest.mark.parametrize("cls", [SGLD, SGHMC])
def test_reproducible_from_the_seed(cls) -> None:
    spec = _spec("fixed<8,4>", "vc")
    a = _run(*_make(cls, spec, "fused", temperature=0.5), 5)
    b = _run(*_make(cls, spec, "fused", temperature=0.5), 5)
    c = _run(*_make(cls, spec, "fused", seed=1, temperature=0.5), 5)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


# -- one-step laws on the fused path ---------------------------------------------------------
N = 200_000


def _one_step(cls, spec, theta0: float, grad: float, lr: float, temperature: float, **kw):
    """(θ', v' or None) of n independent coordinates after one fused step from θ0."""
    theta = torch.full((N,), theta0)
    gen = torch.Generator().manual_seed(0)
    s = cls([theta], spec, num_data=1, temperature=temperature, generator=gen, **kw)
    assert s.executor_name == "fused"
    theta = s.params[0]
    theta.grad = torch.full((N,), grad)
    s.step(lr)
    v = s.velocity()[0].double() if cls is SGHMC else None
    return theta.detach().double(), v


def _assert_moments(x: torch.Tensor, mean: float, var: float) -> None:
    """Sample mean and variance within 6 standard errors (the variance's SE from the sample's
    own fourth central moment)."""
    m, v = float(x.mean()), float(x.var())
    m4 = float(((x - m) ** 4).mean())
    assert abs(m - mean) < 6 * math.sqrt(var / x.numel()) + 1e-12
    assert abs(v - var) < 6 * math.sqrt(max(m4 - v * v, 0.0) / x.numel()) + 1e-12


def test_sgld_noise_is_gaussian_with_variance_2_lr_T_over_N() -> None:
    from scipy import stats

    x, _ = _one_step(SGLD, _spec("fp32", "full"), 0.0, 0.0, lr=0.2, temperature=0.5)
    sd = math.sqrt(2 * 0.2 * 0.5)
    _assert_moments(x, 0.0, sd**2)
    # the Box-Muller normals: Kolmogorov-Smirnov against N(0, 1) (a fixed seed, one test)
    assert stats.kstest((x / sd).numpy(), "norm").pvalue > 1e-3


@pytest.mark.parametrize("grad_format", ["fixed<8,3>", "block<8>", "float<4,3>"])
def test_gradient_rounding_is_unbiased_with_variance_delta_times_rest(grad_format: str) -> None:
    # SGD, full fp32 weights, θ0 = 0: θ' = -lr·Q_G(g); Q_G(g) has mean g and variance δ(Δ - δ)
    g, lr = 0.3, 0.5
    spec = _spec("fp32", "full", grad=grad_format)
    x, _ = _one_step(SGD, spec, 0.0, g, lr=lr, temperature=1.0)
    f = parse_format(grad_format)
    delta = float(f.spacing(torch.tensor([g]))[0]) if grad_format != "block<8>" else None
    if delta is None:  # a 1-D tensor: each element its own block, Δ = 2^(e + 2 - wl)
        delta = 2.0 ** (math.floor(math.log2(g)) + 2 - 8)
    d = g - math.floor(g / delta) * delta
    _assert_moments(x, -lr * g, lr**2 * d * (delta - d))
    assert torch.all(x / lr / delta == torch.round(x / lr / delta))  # on the grid


@pytest.mark.parametrize(
    "fmt", ["fixed<8,4>", "block<8>", "float<4,3>", "mx<fp8_e4m3>", "int<8,g32>"]
)
@pytest.mark.parametrize("temperature", [1.0, 0.04])  # Var above and below Δ²/4
def test_vc_step_has_mean_and_variance_of_the_update(fmt: str, temperature: float) -> None:
    # θ0 = 0.25 (on every grid here), fp32 G: mean = 0.25 - lr·1.3, Var = 2·lr·T/N (N = 1)
    lr = 0.01
    spec = PrecisionSpec(weight=parse_format(fmt), accumulator="vc")
    x, _ = _one_step(SGLD, spec, 0.25, 1.3, lr=lr, temperature=temperature)
    var = 2 * lr * temperature
    mean = np.float32(0.25) - np.float32(lr) * np.float32(1.3)
    _assert_moments(x, float(mean), var)


@pytest.mark.parametrize("vc_mode", ["joint", "independent"])
def test_sghmc_vc_pair_keeps_or_drops_the_covariance(vc_mode: str) -> None:
    # θ = v = 0, zero gradient, T/N = 10: (v', θ') = draws with Var_v, Var_θ and, jointly,
    # Cov(v', θ') = (Cov/Var_v)·Var(v') = Cov; independently 0.
    spec = _spec("fixed<8,4>", "vc")
    theta, v = _one_step(
        SGHMC, spec, 0.0, 0.0, lr=0.09, temperature=10.0, friction=3.0, inverse_mass=2.0,
        vc_mode=vc_mode,
    )  # fmt: skip
    c = sghmc_coefficients(0.09, 3.0, 2.0, noise_scale=10.0)
    _assert_moments(v, 0.0, c["var_v"])
    _assert_moments(theta, 0.0, c["var_theta"])
    cov = float((v * theta).mean())
    se = math.sqrt(float(((v * theta - cov) ** 2).mean()) / N)
    expected = c["cov"] if vc_mode == "joint" else 0.0
    assert abs(cov - expected) < 6 * se


def test_sghmc_full_noise_has_the_pair_covariance() -> None:
    theta, v = _one_step(
        SGHMC, _spec("fp32", "full"), 0.0, 0.0, lr=0.09, temperature=1.0, friction=3.0,
        inverse_mass=2.0,
    )  # fmt: skip
    c = sghmc_coefficients(0.09, 3.0, 2.0, noise_scale=1.0)
    _assert_moments(v, 0.0, c["var_v"])
    _assert_moments(theta, 0.0, c["var_theta"])
    cov = float((v * theta).mean())
    assert abs(cov - c["cov"]) < 6 * math.sqrt(float(((v * theta - cov) ** 2).mean()) / N)


# -- momentum rescaling (ALGORITHMS.md §6) -----------------------------------------------------
@pytest.mark.parametrize("fmt", ["fixed<8,4>", "fixed<6,2>"])
def test_momentum_rescale_nearest_is_the_eager_step_bit_for_bit(fmt: str) -> None:
    # S = max|v'| / max Q_M per tensor, v stored as Q(v'/S): the same bits on both executors,
    # step after step (the next step reads v = S·stored)
    spec = _spec(fmt, "low", rounding="nearest")
    kw = {"prior_std": 2.0, "temperature": 0.0, "momentum_rescale": True}
    eager, pe = _make(SGHMC, spec, "eager", **kw)
    fused, pf = _make(SGHMC, spec, "fused", **kw)
    a, b = _run(eager, pe, 6), _run(fused, pf, 6)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(eager.momentum, fused.momentum, strict=True))
    assert eager.momentum_scale == fused.momentum_scale
    assert len(set(fused.momentum_scale)) > 1 and 1.0 not in fused.momentum_scale  # rescaled
    # the checkpoint carries the scales: the eager sampler resumes the fused one
    eager2, pe2 = _make(SGHMC, spec, "eager", **kw)
    eager2.load_state_dict(fused.state_dict())
    c, d = _run(eager2, pe2, 2), _run(fused, pf, 2)
    assert all(torch.equal(x, y) for x, y in zip(c, d, strict=True))


@pytest.mark.parametrize("executor", ["eager", "fused"])
def test_momentum_rescale_vc_pair_has_the_law_of_the_update(executor: str) -> None:
    # θ = v = 0; one coordinate's gradient sets S (|mean_v| = a·g0 = S·max Q_M, ten standard
    # deviations of v'), the others have zero gradient: v' = S·Q_vc(0, Var_v/S²) has mean 0
    # and variance Var_v, θ' given v' keeps Cov (joint), on a grid of spacing S·Δ_M
    lr, fr, u, temp = 0.09, 3.0, 2.0, 10.0  # Var_θ|v above Δ_W²/4: VC's variance is exact
    theta = torch.zeros(N)
    gen = torch.Generator().manual_seed(0)
    spec = _spec("fixed<8,4>", "vc", grad="fp32")
    s = SGHMC([theta], spec, temperature=temp, generator=gen, executor=executor,
              friction=fr, inverse_mass=u, momentum_rescale=True)  # fmt: skip
    grad = torch.zeros(N)
    grad[0] = -200.0
    s.params[0].grad = grad
    s.step(lr)
    c = sghmc_coefficients(lr, fr, u, noise_scale=temp)
    scale = s.momentum_scale[0]
    assert scale == pytest.approx(200.0 * c["v_from_g"] / spec.momentum.max_value, rel=1e-6)
    v, th = s.velocity()[0][1:].double(), s.params[0].detach()[1:].double()
    step = spec.momentum.delta * scale
    assert torch.allclose(v / step, torch.round(v / step), atol=1e-3)  # on the scaled grid
    _assert_moments(v, 0.0, c["var_v"])
    _assert_moments(th, 0.0, c["var_theta"])
    cov = float((v * th).mean())
    assert abs(cov - c["cov"]) < 6 * math.sqrt(float(((v * th - cov) ** 2).mean()) / v.numel())


# -- every random bit used once -----------------------------------------------------------------
def test_draws_are_uniform_and_uncorrelated_across_slots_and_neighbours() -> None:
    """The step kernels' thresholds (five slots) and normals (two), as they read them: each
    threshold uniform on the midpoints (2r+1)/2^17, each normal N(0, 1), and no two of them
    correlated, neither across slots of one element nor across neighbouring elements (lags
    1..16 cover the 8 elements of a threshold call and the 4 of a normal call): a half or a
    word serving two roles would show a correlation of order 1, far above 6/sqrt(n)."""
    from lowprec.kernels.numba import draws

    n = 1 << 16
    key = (0x12345678, 0x9ABCDEF0)
    u, z = draws.draws(3, n, key, 0b11111, 2)  # an odd start
    u, z = u.astype(np.float64), z.astype(np.float64)
    assert np.all(np.round(u * 2**17) % 2 == 1)  # the midpoints
    assert np.abs(u.mean(axis=1) - 0.5).max() < 6 * math.sqrt(1 / 12 / n)
    assert np.abs(z.mean(axis=1)).max() < 6 / math.sqrt(n)
    assert np.abs(z.var(axis=1) - 1).max() < 6 * math.sqrt(2 / n)
    series = np.vstack([(u - 0.5) * math.sqrt(12), z])  # 7 standardised series
    tol = 6 / math.sqrt(n)
    for lag in range(17):
        a, b = series[:, : n - lag], series[:, lag:]
        corr = a @ b.T / (n - lag)
        if lag == 0:
            corr = corr - np.diag(np.diag(corr))  # a series with itself is 1
        assert np.abs(corr).max() < tol, (lag, np.abs(corr).max())
    # the same elements drawn in one piece or from another start: the same draws
    u2, z2 = draws.draws(0, n + 3, key, 0b11111, 2)
    assert np.array_equal(u2[:, 3:], u) and np.array_equal(z2[:, 3:], z)


def test_gradient_and_weight_roundings_use_distinct_bits() -> None:
    # SGLD low without noise: Q_G(1/16) on grid 1/8 is 0 or 1/8 (½ each); lr ½ puts
    # θ0 - lr·Q_G(g) at ±1/32, each rounded by Q_W (grid 1/16) up or down with ½. With
    # independent thresholds θ' is -1/16, 0, 1/16 with ¼, ½, ¼ (variance 1/512); one threshold
    # for both would make θ' always 0.
    spec = _spec("fixed<8,4>", "low", grad="fixed<8,3>")
    x, _ = _one_step(SGLD, spec, 1 / 32, 1 / 16, lr=0.5, temperature=0.0)
    _assert_moments(x, 0.0, 1 / 512)
    # neighbours are independent too
    y = x.numpy() * 16
    assert abs(float(np.mean(y[1:] * y[:-1]))) < 6 * 0.5 / math.sqrt(N)


@pytest.mark.parametrize("acc", ["low", "vc"])
def test_sghmc_neighbours_are_independent(acc: str) -> None:
    # one noisy stochastic step of independent coordinates from one state: θ'_i and v'_j
    # (i ≠ j, and within the 8-element calls) are uncorrelated
    theta, v = _one_step(
        SGHMC, _spec("fixed<8,4>", acc), 0.3, 0.7, lr=0.09, temperature=1.0, friction=3.0,
        inverse_mass=2.0,
    )  # fmt: skip
    a = torch.stack([theta, v]).numpy()
    a = (a - a.mean(axis=1, keepdims=True)) / a.std(axis=1, keepdims=True)
    for lag in range(1, 17):
        corr = a[:, :-lag] @ a[:, lag:].T / (N - lag)
        assert np.abs(corr).max() < 6 / math.sqrt(N), (lag, corr)


# -- choosing the executor -------------------------------------------------------------------
def test_executor_choice(capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec("fixed<8,4>", "low")
    p = [torch.zeros(4)]
    gen = torch.Generator()
    assert SGLD(p, spec, generator=gen).executor_name == "fused"  # auto on CPU
    assert SGLD([torch.zeros(4)], spec, generator=gen, executor="eager").executor_name == "eager"
    with pytest.raises(ValueError, match="kernels"):
        SGLD([torch.zeros(4)], spec, generator=gen, executor="numba")
    # momentum rescaling runs fused
    kw = {"generator": gen, "momentum_rescale": True}
    assert SGHMC([torch.zeros(4)], spec, executor="fused", **kw).executor_name == "fused"
    # nvfp4<t> as W, G and M runs fused (its per-tensor scales made between launches), with
    # no line on stderr
    capsys.readouterr()
    t = _spec("nvfp4<t>", "low")
    assert SGHMC([torch.zeros(4, 16)], t, generator=gen).executor_name == "fused"
    assert SGLD([torch.zeros(4, 16)], _spec("nvfp4<t>", "vc"), generator=gen).executor_name == (
        "fused"
    )
    assert "runs eager" not in capsys.readouterr().err
    # tied parameters cannot become two views of one flat buffer: fused refuses, auto says
    # why once and runs eager
    t = torch.zeros(4)
    with pytest.raises(ValueError, match=r"key .kernels.*share storage"):
        SGLD([t, t], spec, generator=gen, executor="fused")
    capsys.readouterr()
    a = SGLD([t, t], spec, generator=gen)
    b = SGLD([t, t], spec, generator=gen)
    assert (a.executor_name, b.executor_name) == ("eager", "eager")
    assert capsys.readouterr().err.count("share storage") <= 1  # once per process


def test_fused_params_are_views_of_one_buffer() -> None:
    spec = _spec("block<8>", "vc")
    s, params = _make(SGLD, spec, "fused")
    base = params[0].untyped_storage().data_ptr()
    assert all(p.untyped_storage().data_ptr() == base for p in params)
    assert all(t.untyped_storage().data_ptr() == base for t in s.theta)  # θ̂ = θ
    full, pf = _make(SGLD, _spec("block<8>", "full"), "fused")
    assert full.theta[0].untyped_storage().data_ptr() != pf[0].untyped_storage().data_ptr()


# -- the Triton step kernels (interpreted on the CPU) --------------------------------------
@pytest.fixture(scope="module")
def triton_step():
    """lowprec.kernels.triton's kernels imported afresh with TRITON_INTERPRET=1 (their
    kernels then run on CPU tensors); the previous modules are put back afterwards."""
    import importlib
    import sys

    import lowprec.kernels.triton

    pytest.importorskip("triton")
    names = (
        "lowprec.kernels.triton.bits",
        "lowprec.kernels.triton.grid",
        "lowprec.kernels.triton.step",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRITON_INTERPRET", "1")
        for name in names:
            mp.delitem(sys.modules, name, raising=False)
            mp.delattr(lowprec.kernels.triton, name.rsplit(".", 1)[1], raising=False)
        module = importlib.import_module(names[-1])
        try:
            yield module
        finally:
            for name in names:
                sys.modules.pop(name, None)


def _both_backends(triton_step, rule: str, spec, acc: str, lr: float, noise: bool, **kw):
    """One step from the same state, grads and key on numba and on (interpreted) Triton, each
    backend's launches run by the executor's own sequence (``_run_passes``: momentum
    rescaling's S' and nvfp4<t>'s per-tensor T made between launches from that backend's
    group maxima): returns ((θ, θ̂, v) numba, (θ, θ̂, v) triton)."""
    from lowprec.kernels.numba import step as numba_step
    from lowprec.samplers.fused import format_params

    cls = SGHMC if rule == "sghmc" else SGLD
    # nvfp4<t>: the tensors of several magnitudes (T_SHAPES), so that their T differ
    params = _t_params() if str(spec.weight) == "nvfp4<t>" else _params()
    gen = torch.Generator().manual_seed(0)
    extra = {"friction": 3.0, "inverse_mass": 2.0} if cls is SGHMC else {}
    s = cls(params, spec, num_data=10, generator=gen, executor="fused", temperature=0.7,
            prior_std=2.0, **extra, **kw)  # fmt: skip
    _run(s, params, 2)  # a state with momentum and off-grid masters
    ex = s._executor
    for p in params:
        p.grad = torch.sin(3 * p.detach()) + 0.1
    ex.layout.gather(s.check_grads(), ex.grad)
    coef = s.coefficients(lr, noise)
    key = torch.tensor([0x12345678, 0x9ABCDEF0], dtype=torch.int64)
    fmts = [
        format_params(f) for f in ([spec.grad, spec.weight] + ([spec.momentum] * (cls is SGHMC)))
    ]
    a = _ACC[acc]
    sto = spec.rounding == "stochastic"
    gs = torch.as_tensor(ex.layout.group_start)
    gl = torch.as_tensor(ex.layout.group_len)
    tasks = (ex.layout.task_start, ex.layout.group_start, ex.layout.group_len)
    rule_codes = (a, sto)
    key_words = (0x12345678, 0x9ABCDEF0)
    c = (coef.lr, coef.weight_decay, coef.var) if cls is SGLD else np.asarray(coef, np.float64)
    momentum_scale = list(s.momentum_scale) if cls is SGHMC else None
    results, maxima = [], []
    for backend in ("numba", "triton"):
        theta = ex.theta.clone()
        hat = ex.hat.clone() if acc == "full" else theta
        mom = ex.mom.clone() if cls is SGHMC else None
        seen: list[np.ndarray] = []
        # the groups' maxima a launch leaves for the next one (on the kernels' device)
        gmax_t = torch.zeros(ex._gmax.shape, dtype=torch.int32)

        def run(first: int, last: int, backend=backend, theta=theta, hat=hat, mom=mom, seen=seen,
                gmax_t=gmax_t):  # type: ignore[no-untyped-def]  # fmt: skip
            if backend == "numba":
                gmax = ex._gmax
                bufs = [theta.numpy(), hat.numpy(), ex.grad.numpy()]
                if cls is SGLD:
                    split = (first, last, ex._scale, gmax)
                    numba_step.sgld_step(tuple(bufs), tasks, tuple(fmts), rule_codes, c,
                                         key_words, split)  # fmt: skip
                else:
                    bufs.insert(2, mom.numpy())
                    split = (first, last, ex.rescale, ex._scale, gmax)
                    numba_step.sghmc_step(tuple(bufs), tasks, tuple(fmts), rule_codes, c,
                                          key_words, split)  # fmt: skip
                gmax = gmax.copy()
            else:
                scale = torch.from_numpy(ex._scale.copy())
                if cls is SGLD:
                    triton_step.sgld_step(theta, hat, ex.grad, gs, gl, fmts, a, sto, coef, key,
                                          (first, last), scale, gmax_t)  # fmt: skip
                else:
                    triton_step.sghmc_step(theta, hat, mom, ex.grad, gs, gl, fmts, a, sto, coef,
                                           key, (first, last), ex.rescale, scale,
                                           gmax_t)  # fmt: skip
                gmax = gmax_t.numpy().copy()
            if last != ex._last:
                seen.append(gmax)
            return gmax

        if momentum_scale is not None:  # both backends start from the same scales
            s.momentum_scale = list(momentum_scale)
        ex._run_passes(run, coef)
        results.append((theta, hat, mom))
        maxima.append(seen)
    if not noise:  # the groups' maxima between launches: the same bits
        assert len(maxima[0]) == len(maxima[1])
        assert all(np.array_equal(x, y) for x, y in zip(*maxima, strict=True))
    return results[0], results[1]


_ACC = {"full": 0, "low": 1, "vc": 2}
_SLOW = pytest.mark.slow  # the interpreter takes ~10 s a case: two run in the quick suite
TRITON_CASES = [
    pytest.param("sgld", "fixed<8,3>", "low", marks=_SLOW),
    pytest.param("sgld", "block<8>", "full", marks=_SLOW),
    pytest.param("sgld", "float<4,3>", "vc", marks=_SLOW),
    ("sgld", "block<8>", "vc"),
    pytest.param("sghmc", "block<8>", "low", marks=_SLOW),
    ("sghmc", "fixed<8,4>", "vc"),
    pytest.param("sghmc", "fixed<8,4>", "vc", True, marks=_SLOW),
    pytest.param("sghmc", "fixed<6,3>", "low", True, marks=_SLOW),
]
#: nvfp4<t> steps on tensors of several magnitudes (T_SHAPES): the Triton launches with the
#: per-tensor T made between them, against numba's
T_TRITON_CASES = [
    ("sgld", "nvfp4<t>", "low"),
    pytest.param("sgld", "nvfp4<t>", "vc", marks=_SLOW),
    pytest.param("sghmc", "nvfp4<t>", "low", marks=_SLOW),
    ("sghmc", "nvfp4<t>", "vc"),
    pytest.param("sghmc", "nvfp4<t>", "full", marks=_SLOW),
]


def _case(c):
    values, marks = (c.values, c.marks) if hasattr(c, "values") else (c, ())
    values = (*values, False) if len(values) == 3 else values
    return pytest.param(*values, marks=marks)


@pytest.mark.parametrize(
    ("rule", "fmt", "acc", "rescale"),
    [_case(c) for c in TRITON_CASES] + [_case(c) for c in T_TRITON_CASES],
)
def test_triton_step_matches_numba(triton_step, rule: str, fmt: str, acc: str, rescale) -> None:
    # without noise, both draw the same Philox thresholds: the same bits for every rounding
    kw = {"momentum_rescale": True} if rescale else {}
    for rounding in ("nearest", "stochastic"):
        spec = _spec(fmt, acc, rounding=rounding)
        cpu, gpu = _both_backends(triton_step, rule, spec, acc, 0.05, noise=False, **kw)
        for x, y in zip(cpu, gpu, strict=True):
            if x is not None:
                assert torch.equal(x, y), (rounding, (x - y).abs().max())
    # with noise the normals differ by ~1e-6 (polynomials vs libm): the values agree to
    # ~1e-6, except where a rounding lands on the other side of its threshold (rare)
    spec = _spec(fmt, acc)
    cpu, gpu = _both_backends(triton_step, rule, spec, acc, 0.05, noise=True, **kw)
    for x, y in zip(cpu, gpu, strict=True):
        if x is not None:
            close = (x - y).abs() <= 1e-5 * (1 + x.abs())
            assert float(close.float().mean()) > 0.9
            assert torch.allclose(x, y, atol=0.5)
