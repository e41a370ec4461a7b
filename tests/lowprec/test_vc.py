"""vc_quantize (ALGORITHMS.md §4): mean μ and variance v in both branches, for fixed, block and
float formats; the stochastic-rounding variance reported when v < v_s; grid, range, seeds."""

from __future__ import annotations

import pytest
import torch

from lowprec import parse_format, quantize, vc_quantize

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# (c, w): μ = Δ·(k + c) sits a fraction c of a step above a grid point, v = w·Δ².
# v0 = Δ²/4 is w = 1/4; v_s = δ(Δ - δ) is c(1 - c) in units of Δ².
CASES = [
    (0.3, 1.5),  # v > v0: Gaussian part plus signed Cat
    (0.5, 0.3),  # v just above v0
    (0.9, 2.0),
    (0.1, 0.2),  # v <= v0, v > v_s = 0.09: SR plus Cat(0, v - v_s)
    (0.05, 0.25),  # v = v0 exactly: the second branch
    (0.0, 0.1),  # μ on the grid: v_s = 0, all variance from Cat
    (0.4, 0.1),  # v < v_s = 0.24: SR alone, variance v_s reported
    (0.7, 0.0),  # v = 0: SR alone, variance 0.21
]


def expected_w(c: float, w: float) -> float:
    """Variance delivered, in units of Δ²: v, or v_s when v <= v0 and v < v_s."""
    return w if w > 0.25 else max(w, c * (1 - c))


def case_tensors(k: list[float], delta: list[float]) -> tuple[torch.Tensor, ...]:
    """μ, v, Δ and the expected variance for every (k, Δ) paired with every case (both signs)."""
    mus, vs, ds, exp = [], [], [], []
    for kk, d in zip(k, delta, strict=True):
        for c, w in CASES:
            for sign in (1.0, -1.0):
                mus.append(sign * (kk + c) * d)
                vs.append(w * d * d)
                ds.append(d)
                exp.append(expected_w(c if sign > 0 else (1 - c) % 1.0, w) * d * d)
    return tuple(torch.tensor(t, dtype=torch.float64) for t in (mus, vs, ds, exp))


def check_moments(
    mu: torch.Tensor, v: torch.Tensor, target_var: torch.Tensor, fmt: str, n: int = 100_000
) -> None:
    """Draw n independent Q_vc(μ, v) per column and compare the moments.

    Mean: within 5·sqrt(Var/n) of μ. Variance (ddof 0): its standard error is
    sqrt((μ4 - σ⁴)/n), μ4 the fourth central moment, estimated from the same draws (the plug-in
    estimate is consistent; at n = 1e5 its own error is a few percent of the SE); within 5 SE.
    Five standard errors: two-sided normal tail 6e-7 per statistic.
    """
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(2024)
    mus = mu.float().expand(n, -1).contiguous()  # identical rows: identical blocks
    out = vc_quantize(mus, v.float(), fmt, generator=g).double()
    assert torch.equal(quantize(out.float(), fmt, "nearest").double(), out)  # on the grid
    mean = out.mean(0)
    centred = out - mean
    var = (centred**2).mean(0)
    m4 = (centred**4).mean(0)
    se_mean = torch.sqrt(target_var / n)
    se_var = torch.sqrt((m4 - var**2).clamp(min=0) / n)
    assert ((mean - mu.double()).abs() <= 5 * se_mean).all(), (mean - mu) / se_mean
    assert ((var - target_var).abs() <= 5 * se_var).all(), (var - target_var) / se_var


def test_cases_cover_both_branches_and_the_inflated_case() -> None:
    ws = [w for _, w in CASES]
    assert any(w > 0.25 for w in ws) and any(w <= 0.25 for w in ws)
    assert any(w < c * (1 - c) for c, w in CASES) and any(0 < w <= 0.25 for w in ws)


def test_fixed_point_mean_and_variance() -> None:
    delta = 0.125
    mu, v, _, target = case_tensors([0, 3, 17], [delta] * 3)
    check_moments(mu, v, target, "fixed<8,3>")


@pytest.mark.parametrize(("fmt", "ks"), [("block<8>", [3, 11, 100]), ("block<6,16>", [16, 18, 22])])
def test_block_mean_and_variance(fmt: str, ks: list[int]) -> None:
    # Δ = 2^(e+2-wl): with e = -3 the block's largest |μ|, (k_max + 0.9)·Δ, lies in
    # [2^(wl-2)Δ, 2^(wl-1)Δ) = [1/8, 1/4), and 7Δ below the range end (2^(wl-1) - 1)·Δ, so
    # clamping never touches the ±5 sd of the noise. block<8>: one row of 48 values, one
    # exponent; block<6,16>: each run of 16 holds one k, its max (k + 0.9)Δ in [16Δ, 24Δ).
    wl = parse_format(fmt).wl
    delta = 2.0 ** (-3 + 2 - wl)
    mu, v, d, target = case_tensors(ks, [delta] * 3)
    assert torch.equal(parse_format(fmt).spacing(mu.float()[None])[0].double(), d)
    check_moments(mu, v, target, fmt)


def test_float_mean_and_variance() -> None:
    # μ near 1.5·2^j: 8 steps from the top of its binade, so x = μ + sd·ξ (sd <= 1.5Δ) stays
    # in it (or moves into finer binades, whose grid contains μ's lattice)
    fmt = parse_format("float<5,4>")
    mu, v, d, target = case_tensors([24, 24, 24, 16], [2.0**-4, 2.0**3, 2.0**-18, 2.0**-4])
    assert torch.equal(fmt.spacing(mu.float()).double(), d)  # the last k is in [1, 2): Δ 2^-4
    check_moments(mu, v, target, "float<5,4>")


@pytest.mark.parametrize(
    ("fmt", "mu", "var"),
    [
        ("block<8>", 0.0, 0.01),  # a block of zeros: its own exponent would give a ~1e-38 range
        ("block<8,4>", 0.0, 1e-6),
        ("float<8,7>", 0.0, 1e-4),  # zero: its own step would be the smallest subnormal
        ("float<5,2>", 1.9, 0.5),  # the draw crosses binades: Δ from 1.9 + 4·0.71 is 1
        ("float<5,2>", -3e-5, 1e-10),  # subnormal range of float<5,2> (step 2^-16, v > v0)
    ],
)
def test_the_grid_covers_the_draw(fmt: str, mu: float, var: float) -> None:
    """Δ comes from |μ| + 4·sqrt(v), so zero means and draws crossing binades keep mean μ and
    variance exactly v (check_moments also checks the values lie on the grid)."""
    mus = torch.full((4,), mu, dtype=torch.float64)
    vs = torch.full((4,), var, dtype=torch.float64)
    check_moments(mus, vs, vs, fmt)


def test_per_element_blocks_of_a_zero_vector() -> None:
    """block<8> on a 1-D tensor: one exponent per element (a zero-initialised bias)."""
    n = 200_000
    out = vc_quantize(torch.zeros(n), 0.01, "block<8>", generator=torch.Generator().manual_seed(5))
    out = out.double()
    assert out.isfinite().all() and out.std() > 0
    # mean SE sqrt(v/n); the variance's SE is below sqrt(3v²·2/n) (the law is near-Gaussian,
    # its fourth moment at most twice the Gaussian 3v²: a generous bound)
    assert abs(out.mean().item()) <= 5 * (0.01 / n) ** 0.5
    assert abs(out.var().item() - 0.01) <= 5 * (6 * 0.01**2 / n) ** 0.5


def test_fp32_is_gaussian() -> None:
    mu = torch.tensor([0.0, 1.5, -3.0])
    v = torch.tensor([1.0, 0.01, 4.0])
    check_moments(mu.double(), v.double(), v.double(), "fp32")


def test_reports_the_stochastic_rounding_variance_when_v_is_below_it() -> None:
    delta = 0.125
    mu, v, _, target = case_tensors([0, 5], [delta] * 2)
    g = torch.Generator().manual_seed(0)
    out, delivered = vc_quantize(mu.float(), v.float(), "fixed<8,3>", g, return_variance=True)
    assert out.shape == mu.shape
    assert torch.allclose(delivered.double(), target, rtol=1e-5, atol=0)
    inflated = delivered.double() > v * (1 + 1e-5)
    assert inflated.any() and not inflated.all()


def test_clamped_to_the_range() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([15.8, -15.9, 100.0, -100.0]).expand(10_000, -1)
    out = vc_quantize(mu, 1.0, "fixed<8,3>", generator=g)
    assert out.max() <= 15.875 and out.min() >= -16
    # out-of-range means saturate: μ is clamped to the range end before the noise is drawn
    assert out[:, 2].max() == 15.875 and out[:, 3].min() == -16
    blk = vc_quantize(torch.tensor([[1.0, -0.5]]).expand(1000, -1), 0.5, "block<8>", generator=g)
    # the block's exponent comes from max(|μ| + 4·sqrt(v)) = 1 + 4·0.707 = 3.83: e = 1,
    # Δ = 2^(1+2-8), range 127·Δ
    assert blk.abs().max() <= 127 * 2.0**-5
    assert torch.equal(quantize(blk, "block<8>", "nearest"), blk)


def test_same_seed_same_output_and_errors() -> None:
    mu = torch.randn(100)
    a = vc_quantize(mu, 0.01, "block<8>", generator=torch.Generator().manual_seed(3))
    b = vc_quantize(mu, 0.01, "block<8>", generator=torch.Generator().manual_seed(3))
    c = vc_quantize(mu, 0.01, "block<8>", generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="var"):
        vc_quantize(mu, -1.0, "fixed<8,3>", generator=torch.Generator())
    with pytest.raises(ValueError, match=r"torch\.Generator"):
        vc_quantize(mu, 0.1, "fixed<8,3>")


@pytest.mark.cuda
@cuda
def test_cuda_matches_moments() -> None:
    g = torch.Generator(device="cuda").manual_seed(0)
    n = 200_000
    mu = torch.full((n,), 0.3, device="cuda")
    out = vc_quantize(mu, 0.05, "fixed<8,3>", generator=g).double()
    assert out.device.type == "cuda"
    # Var = 0.05, mean SE sqrt(0.05/n); variance SE <= sqrt(E[(X-μ)^4]/n) with the fourth
    # moment of the (near-Gaussian) output below 3·(0.05 + Δ²/4)² + slack
    assert abs(out.mean().item() - 0.3) <= 5 * (0.05 / n) ** 0.5
    assert abs(out.var().item() - 0.05) <= 5 * (4 * 0.06**2 / n) ** 0.5


@pytest.mark.slow
def test_langevin_chain_keeps_the_variance_where_naive_rounding_inflates_it() -> None:
    """ALGORITHMS.md §10 at the quantizer level: N(0, 1), ∇U(θ) = θ + 0.1ξ, fixed<8,3>,
    α = 2e-3, 10^4 independent chains from θ0 = 0 for 3000 steps (the variance has reached
    1 - (1-α)^6000 ≈ 1 - 6e-6 of its limit).

    VC: θ' = Q_vc(θ - α∇U, 2α) has E[θ'|θ] = (1-α)θ - 0.1αξ and Var[θ'|θ] = 2α (+0.01α²), so
    the stationary variance is (2α + 0.01α²)/(1 - (1-α)²) ≈ 1.0010 (std 1.0005) exactly, grid or
    not. Naive: θ' = Q_sr(θ - α∇U + sqrt(2α)ξ) adds about Δ²/6 per step: std ≈
    sqrt((2α + Δ²/6)/(2α - α²)) ≈ 1.28 (Δ²/6 is E[δ(Δ-δ)] for δ uniform over the step, an
    approximation: 0.02 of slack on top). The final states of independent chains give a std
    estimate with standard error about σ/sqrt(2n) (near-Gaussian law): 5 SE tolerances."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(7)
    alpha, n, steps, delta = 2e-3, 10_000, 3000, 0.125
    vc = torch.zeros(n)
    naive = torch.zeros(n)
    for _ in range(steps):
        grad = vc + 0.1 * torch.randn(n, generator=g)
        vc = vc_quantize(vc - alpha * grad, 2 * alpha, "fixed<8,3>", generator=g)
        grad = naive + 0.1 * torch.randn(n, generator=g)
        step = naive - alpha * grad + (2 * alpha) ** 0.5 * torch.randn(n, generator=g)
        naive = quantize(step, "fixed<8,3>", "stochastic", g)
    vc_std = ((2 * alpha + 0.01 * alpha**2) / (1 - (1 - alpha) ** 2)) ** 0.5
    assert abs(vc.std().item() - vc_std) <= 5 * vc_std / (2 * n) ** 0.5
    naive_std = ((2 * alpha + delta**2 / 6) / (2 * alpha - alpha**2)) ** 0.5
    assert abs(naive.std().item() - naive_std) <= 5 * naive_std / (2 * n) ** 0.5 + 0.02
    assert naive.std().item() > 1.2
