"""quantize(): IEEE equalities, rounding conventions, block layout, stochastic rounding
statistics, reproducibility, the activation/error autograd function (ALGORITHMS.md §1-3)."""

from __future__ import annotations

import math

import pytest
import torch

from lowprec import Quantizer, parse_format, quantize, quantize_act_error

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, cuda])]


def gen(seed: int = 0, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def sampled_floats(n: int, device: str = "cpu") -> torch.Tensor:
    """Finite float32 values across every exponent range: uniformly random bit patterns (each
    binade, the subnormals and both signs equally likely) plus normals scaled by 2^[-40, 20]
    (values near 1, where most of the grid is)."""
    g = gen(1234, "cpu")
    bits = torch.randint(-(2**31), 2**31, (n,), generator=g, dtype=torch.int64).to(torch.int32)
    x = bits.view(torch.float32)
    x = x[torch.isfinite(x)]
    scale = torch.exp2(torch.randint(-40, 21, (n,), generator=g).float())
    x = torch.cat([x, torch.randn(n, generator=g) * scale])
    return x.to(device)


def same_values_and_signs(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a, b) and torch.equal(torch.signbit(a), torch.signbit(b))


# --- nearest rounding equals IEEE conversions ---------------------------------------------

HALF_EDGES = [
    0.0,
    -0.0,
    -(2.0**-30),  # rounds to -0
    1e-40,  # float32 subnormal -> 0
    2.0**-24,  # smallest subnormal
    2.0**-25,  # tie between 0 and 2^-24 -> 0 (even)
    2.0**-25 + 2.0**-40,  # just above the tie -> 2^-24
    3 * 2.0**-25,  # tie between 2^-24 (odd) and 2^-23 (even) -> 2^-23
    2.0**-14,  # smallest normal
    2.0**-14 - 2.0**-24,  # largest subnormal
    2.0**-14 - 2.0**-25,  # tie between the largest subnormal (odd) and 2^-14 -> 2^-14
    1 + 2.0**-11,  # tie -> 1 (even)
    1 + 3 * 2.0**-11,  # tie -> 1 + 2^-9
    2049.0,  # tie (step 2) -> 2048
    2051.0,  # tie -> 2052
    65504.0,  # largest normal
    65519.99,  # still rounds to 65504
]


@pytest.mark.parametrize("device", DEVICES)
def test_float_5_10_nearest_equals_torch_half(device: str) -> None:
    edges = torch.tensor(HALF_EDGES)
    x = torch.cat([edges, -edges, sampled_floats(300_000)]).to(device)
    ours = quantize(x, "float<5,10>", "nearest")
    ref = x.half().float()
    finite = torch.isfinite(ref)
    assert finite[: 2 * len(HALF_EDGES)].all()
    assert same_values_and_signs(ours[finite], ref[finite])
    # where half overflows to inf (|x| >= 65520) float<5,10> saturates at ±65504
    assert torch.equal(ours[~finite], torch.sign(x[~finite]) * 65504)


@pytest.mark.parametrize("device", DEVICES)
def test_float_8_7_nearest_equals_torch_bfloat16(device: str) -> None:
    edges = torch.tensor([0.0, -0.0, 2.0**-149, 2.0**-133, 2.0**-134, 3 * 2.0**-134, 1 + 2.0**-8])
    x = torch.cat([edges, -edges, sampled_floats(300_000)]).to(device)
    ours = quantize(x, "float<8,7>", "nearest")
    ref = x.bfloat16().float()
    finite = torch.isfinite(ref)
    assert same_values_and_signs(ours[finite], ref[finite])
    bf16_max = torch.finfo(torch.bfloat16).max
    assert (~finite).any()  # the sample reaches the overflow region
    assert torch.equal(ours[~finite], torch.sign(x[~finite]) * bf16_max)


@pytest.mark.parametrize(
    ("fmt", "dtype", "limit"),
    [
        # IEEE-like fp8 E5M2: in range below the tie 61440 between 57344 and 65536
        ("float<5,2>", torch.float8_e5m2, 61440.0),
        # E4M3FN uses the all-ones exponent for normals (max 448); our IEEE-like float<4,3>
        # stops at 240, so the two agree below the tie 248 between 240 and 256
        ("float<4,3>", torch.float8_e4m3fn, 248.0),
    ],
)
def test_small_float_nearest_equals_torch_float8(
    fmt: str, dtype: torch.dtype, limit: float
) -> None:
    x = sampled_floats(200_000)
    x = x[x.abs() < limit]
    assert same_values_and_signs(quantize(x, fmt, "nearest"), x.to(dtype).float())


def test_float_saturates_and_keeps_nan() -> None:
    x = torch.tensor([math.inf, -math.inf, 1e30, -70000.0, math.nan])
    q = quantize(x, "float<5,10>", "nearest")
    assert q[:4].tolist() == [65504, -65504, 65504, -65504] and q[4].isnan()
    s = quantize(x, "float<5,10>", "stochastic", gen())
    assert s[:4].tolist() == [65504, -65504, 65504, -65504] and s[4].isnan()


# --- fixed point and rounding conventions ---------------------------------------------------


def test_fixed_point_nearest_ties_to_even_and_clamps() -> None:
    x = torch.tensor([0.0625, 0.1875, -0.0625, -0.1875, 0.3, 15.9, 100.0, -100.0, -16.0625])
    expected = torch.tensor([0.0, 0.25, -0.0, -0.25, 0.25, 15.875, 15.875, -16.0, -16.0])
    assert torch.equal(quantize(x, "fixed<8,3>", "nearest"), expected)


def test_fixed_point_grid_and_range() -> None:
    x = torch.linspace(-3, 3, 10_001)
    for rounding, g in (("nearest", None), ("stochastic", gen())):
        q = quantize(x, "fixed<4,1>", rounding, g)  # grid k/2, k in [-8, 7]: [-4, 3.5]
        assert torch.equal(q * 2, torch.round(q * 2))
        assert q.min() >= -3 and q.max() <= 3
        assert quantize(torch.tensor([9.0, -9.0]), "fixed<4,1>", rounding, g).tolist() == [3.5, -4]


def test_special_values_fixed_point() -> None:
    x = torch.tensor([math.inf, -math.inf, math.nan, -0.0])
    for rounding, g in (("nearest", None), ("stochastic", gen())):
        q = quantize(x, "fixed<8,3>", rounding, g)
        assert q[0] == 15.875 and q[1] == -16 and q[2].isnan() and q[3] == 0


def test_quantized_values_are_fixed_points() -> None:
    """Rounding an on-grid tensor again changes nothing, in every format and rounding."""
    x = torch.randn(64, 50, generator=gen(3)) * torch.logspace(-3, 3, 50)
    for text in ("fixed<8,3>", "block<8>", "block<6,16>", "float<5,2>", "float<4,3>"):
        q = quantize(x, text, "nearest")
        assert torch.equal(quantize(q, text, "nearest"), q), text
        assert torch.equal(quantize(q, text, "stochastic", gen(1)), q), text


def test_shape_dtype_and_identity() -> None:
    for shape in [(), (0,), (7,), (3, 4), (2, 3, 4, 5)]:
        x = torch.randn(shape, generator=gen())
        for text in ("fixed<8,3>", "block<8>", "block<8,4>", "float<5,2>"):
            q = quantize(x, text, "stochastic", gen())
            assert q.shape == x.shape and q.dtype == torch.float32
    x64 = torch.randn(10, dtype=torch.float64, generator=gen())
    q64 = quantize(x64, "fixed<8,3>", "nearest")
    assert q64.dtype == torch.float64 and torch.equal(q64 * 8, torch.round(q64 * 8))
    x = torch.randn(5)
    assert quantize(x, "fp32") is x
    w = torch.randn(5, requires_grad=True)  # e.g. a parameter: the result is detached
    assert not quantize(w, "fixed<8,3>", "stochastic", gen()).requires_grad


def test_errors_are_clear() -> None:
    x = torch.randn(4)
    with pytest.raises(ValueError, match=r"torch\.Generator"):
        quantize(x, "fixed<8,3>", "stochastic")
    with pytest.raises(ValueError, match="'up'"):
        quantize(x, "fixed<8,3>", "up", gen())
    with pytest.raises(ValueError, match="'fixd<8,3>'"):
        quantize(x, "fixd<8,3>", "nearest")
    with pytest.raises(ValueError, match="floating-point"):
        quantize(torch.arange(4), "fixed<8,3>", "nearest")


# --- block floating point layout ------------------------------------------------------------


def block_reference(x: torch.Tensor, wl: int) -> torch.Tensor:
    """Nearest block rounding of one block, from the definition in float64 (ALGORITHMS.md §1)."""
    m = x.abs().max().item()
    if m == 0:
        return torch.zeros_like(x)
    e = math.frexp(m)[1] - 1  # floor(log2 m)
    delta = 2.0 ** (e + 2 - wl)
    hi = (2 ** (wl - 1) - 1) * delta
    return (torch.round(x.double() / delta) * delta).clamp(-hi, hi).float()


def test_block_dim0_each_row_has_its_own_exponent() -> None:
    scales = torch.tensor([1e-30, 1e-3, 1.0, 3e2, 1e30, 0.0])
    x = torch.randn(6, 40, generator=gen(5)) * scales[:, None]
    q = quantize(x, "block<8>", "nearest")
    for row in range(6):
        assert torch.equal(q[row], block_reference(x[row], 8)), row
    assert torch.equal(q[5], torch.zeros(40))  # all-zero block stays zero
    # relative error of each row's largest element is at most half a step of 2^(e+2-8)
    big = x[:5].abs().argmax(dim=1)
    rel = (q[:5].gather(1, big[:, None]) / x[:5].gather(1, big[:, None]) - 1).abs()
    assert (rel <= 2.0**-6).all()


def test_block_dim0_on_4d_and_1d_tensors() -> None:
    act = (
        torch.randn(3, 4, 5, 5, generator=gen(6))
        * torch.tensor([1e-2, 1.0, 1e2])[:, None, None, None]
    )
    q = quantize(act, "block<6>", "nearest")
    for sample in range(3):  # per sample of an activation / per output channel of a conv weight
        assert torch.equal(q[sample], block_reference(act[sample], 6))
    vec = torch.tensor([1e-3, 3.7, -250.0, 0.0])  # 1-D: one exponent per element
    q1 = quantize(vec, "block<8>", "nearest")
    assert torch.equal(q1, torch.stack([block_reference(v[None], 8)[0] for v in vec]))


def test_block_k_runs_along_the_last_dim_with_padding() -> None:
    x = torch.randn(3, 70, generator=gen(7)) * torch.logspace(-4, 4, 70)
    x[1, 32:64] = 0.0  # an all-zero block
    q = quantize(x, "block<8,32>", "nearest")
    for row in range(3):
        for start in (0, 32, 64):  # the last run holds 6 values (padded to 32)
            sl = slice(start, start + 32)
            assert torch.equal(q[row, sl], block_reference(x[row, sl], 8)), (row, start)
    assert torch.equal(q[1, 32:64], torch.zeros(32))


def test_block_nan_and_inf() -> None:
    x = torch.tensor([[math.nan, 1.0, 0.5], [math.inf, 1.0, -2.0], [-math.inf, 0.0, 0.0]])
    for rounding, g in (("nearest", None), ("stochastic", gen())):
        q = quantize(x, "block<8>", rounding, g)
        assert q[0].isnan().all()  # a NaN leaves its block without an exponent
        top = 127 * 2.0 ** (127 + 2 - 8)  # a block holding inf saturates at its range end
        assert q[1].tolist() == [top, 0.0, -0.0] and q[2].tolist() == [-top, 0.0, 0.0]
        assert not q[1:].isnan().any()


# --- stochastic rounding statistics -----------------------------------------------------------

# x values spread over several binades and both signs, none on the grid
X_STAT = torch.tensor([0.3, -0.3, 0.01, 1.23, -7.77, 2.5e-3, 11.1, -0.77, 3.3, 0.049, 100.3, -1e-4])


@pytest.mark.parametrize(
    "text", ["fixed<8,3>", "fixed<6,6>", "block<8>", "block<5,4>", "float<5,2>"]
)
def test_stochastic_rounding_unbiased_with_variance_delta_times_delta_minus_delta(
    text: str,
) -> None:
    """Q(x) is floor_Δ(x) + Δ·B with B ~ Bernoulli(p), p = δ/Δ. Over n draws the fraction p̂ of
    round-ups has standard error sqrt(p(1-p)/n), so the mean Δ(floor + p̂) is within
    5·Δ·sqrt(p(1-p)/n) of x (two-sided normal tail 6e-7 per value). The sample variance
    (ddof 0) is exactly Δ²p̂(1-p̂) = δ(Δ-δ) + Δ²[(p̂-p)(1-2p) - (p̂-p)²], so on that same event
    it is within Δ²[5·sqrt(p(1-p)/n)·|1-2p| + 25·p(1-p)/n] of δ(Δ-δ)."""
    torch.set_num_threads(1)
    n = 100_000
    fmt = parse_format(text)
    # in range of every format tested: fixed<6,6> spans [-0.5, 0.5)
    x = X_STAT if fmt.max_value > 20 or text.startswith("block") else X_STAT.clamp(-0.45, 0.45)
    xs = x.expand(n, -1).contiguous()  # rows are identical, so each row has the same blocks
    q = quantize(xs, fmt, "stochastic", gen(11)).double()
    delta = fmt.spacing(xs)[0].double()
    lower = torch.floor(x.double() / delta) * delta
    p = (x.double() - lower) / delta
    assert ((p > 0) & (p < 1)).all()
    up = q - lower
    assert (torch.isclose(up, torch.zeros_like(up)) | torch.isclose(up, delta.expand_as(up))).all()
    se = torch.sqrt(p * (1 - p) / n)
    assert ((q.mean(0) - x.double()).abs() <= 5 * delta * se).all()
    var_sr = (x.double() - lower) * (lower + delta - x.double())  # δ(Δ - δ)
    tol = delta**2 * (5 * se * (1 - 2 * p).abs() + 25 * p * (1 - p) / n)
    assert ((q.var(0, unbiased=False) - var_sr).abs() <= tol).all()
    assert (var_sr <= delta**2 / 4).all()


def test_stochastic_rounding_stays_exact_for_wide_words() -> None:
    """fixed<32,8> with y = x/Δ = 2^22 + 1/2: round up with probability exactly 1/2. The float32
    sum y + u of the textbook expression has step 1/2 there and rounds up whenever u >= 1/4,
    giving 3/4; the fraction of round-ups over n draws has SE sqrt(1/4/n), so 5 SE separate
    1/2 from 3/4 by far at n = 1e5."""
    n = 100_000
    delta = 2.0**-8
    x = torch.full((n,), (2**22 + 0.5) * delta)
    q = quantize(x, "fixed<32,8>", "stochastic", gen(9))
    up = ((q - 2**22 * delta) / delta).double()
    assert set(up.unique().tolist()) <= {0.0, 1.0}
    assert abs(up.mean().item() - 0.5) <= 5 * (0.25 / n) ** 0.5


@pytest.mark.parametrize("device", DEVICES)
def test_same_generator_seed_same_output(device: str) -> None:
    x = torch.randn(50, 20, generator=gen(0)).to(device)
    for text in ("fixed<8,3>", "block<8>", "block<8,8>", "float<5,2>"):
        a = quantize(x, text, "stochastic", gen(42, device))
        b = quantize(x, text, "stochastic", gen(42, device))
        c = quantize(x, text, "stochastic", gen(43, device))
        assert torch.equal(a, b) and not torch.equal(a, c), text


@pytest.mark.cuda
@cuda
def test_generator_on_the_wrong_device_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="device='cuda"):
        quantize(torch.randn(3, device="cuda"), "fixed<8,3>", "stochastic", gen(0, "cpu"))
    with pytest.raises(ValueError, match="device='cpu'"):
        quantize(torch.randn(3), "fixed<8,3>", "stochastic", gen(0, "cuda"))


# --- activation / error quantizer -----------------------------------------------------------


def test_quantizer_forward_on_act_grid_backward_on_error_grid() -> None:
    layer = Quantizer("fixed<8,3>", "block<6>", generator=gen(2))
    x = torch.randn(16, 30, generator=gen(3), requires_grad=True)
    out = layer(x)
    assert torch.equal(out * 8, torch.round(out * 8))  # on the act grid
    assert (out - x).abs().max() < 0.125  # one step at most (stochastic)
    upstream = torch.randn(16, 30, generator=gen(4)) * torch.logspace(-3, 3, 16)[:, None]
    out.backward(upstream)
    delta = parse_format("block<6>").spacing(upstream)
    assert torch.equal(x.grad / delta, torch.round(x.grad / delta))  # on the error grid
    assert ((x.grad - upstream).abs() < delta).all()
    assert "fixed<8,3>" in repr(layer)


# (forward format, backward format): fused, scaled fused, scaled fused by another scale rule
# (rceil), one-sided
PLANNED = [
    ("block<8>", "block<8>"),
    ("fixed<8,3>", "float<4,3>"),
    ("mx<fp4_e2m1>", "nvfp4"),
    ("int<4,g32>", "mx<fp8_e4m3,32,rceil>"),
    ("fp32", "block<6>"),
    ("fp8_e5m2", "fp32"),
]


@pytest.mark.parametrize(("fwd", "bwd"), PLANNED)
@pytest.mark.parametrize("kernels", ["auto", "eager"])
def test_quantizer_equals_quantize_bit_for_bit(fwd: str, bwd: str, kernels: str) -> None:
    """The module decides its code path once (its plans) and skips the autograd Function when
    no gradient flows: every value, forward and backward, is still quantize()'s with the same
    generator state, call after call, on contiguous, strided and float64 inputs."""
    layer = Quantizer(fwd, bwd, "stochastic", gen(7), kernels)
    reference = gen(7)
    for x0 in (
        torch.randn(64, 40, generator=gen(1)),
        torch.randn(40, 64, generator=gen(2)).t(),  # strided
        torch.randn(3, 50, generator=gen(3), dtype=torch.float64),
        torch.randn(5, generator=gen(4)),
    ):
        for _ in range(2):  # the second call runs on the plans the first one made
            x = x0.clone().requires_grad_()
            upstream = torch.randn(x.shape, generator=gen(5), dtype=x.dtype)
            out = layer(x)
            out.backward(upstream)
            want = quantize(x0, fwd, "stochastic", reference, kernels)
            assert torch.equal(out.detach(), want) and out.dtype == x0.dtype
            assert torch.equal(x.grad, quantize(upstream, bwd, "stochastic", reference, kernels))
        with torch.no_grad():
            out = layer(x0.clone().requires_grad_())
        assert out.grad_fn is None
        assert torch.equal(out, quantize(x0, fwd, "stochastic", reference, kernels))
        assert torch.equal(layer(x0), quantize(x0, fwd, "stochastic", reference, kernels))


def test_quantizer_follows_a_changed_setting() -> None:
    layer = Quantizer("block<8>", "block<8>", "nearest")
    x = torch.randn(16, 30, generator=gen(3)) * 3
    assert torch.equal(layer(x), quantize(x, "block<8>", "nearest"))
    layer.forward_format = parse_format("fixed<6,2>")
    assert torch.equal(layer(x), quantize(x, "fixed<6,2>", "nearest"))
    layer.rounding = "stochastic"
    with pytest.raises(ValueError, match=r"torch\.Generator"):
        layer(x)
    layer.rounding = "up"
    with pytest.raises(ValueError, match="rounding 'up'"):
        layer(x)


def test_quantizer_identity_when_fp32() -> None:
    x = torch.randn(5, 4, requires_grad=True)
    upstream = torch.randn(5, 4)
    out = Quantizer("fp32", "fp32")(x)
    out.backward(upstream)
    assert torch.equal(out, x) and torch.equal(x.grad, upstream)
    # only the backward quantized: forward exact, gradient on the grid
    x.grad = None
    out = quantize_act_error(x, "fp32", "fixed<8,4>", "nearest")
    out.backward(upstream)
    assert torch.equal(out, x)
    assert torch.equal(x.grad, quantize(upstream, "fixed<8,4>", "nearest"))


def test_quantizer_in_a_network_trains_and_needs_a_generator() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), Quantizer("block<8>", "block<8>", "nearest"))
    net(torch.randn(2, 4)).sum().backward()
    assert net[0].weight.grad is not None
    with pytest.raises(ValueError, match=r"torch\.Generator"):
        Quantizer("fixed<8,3>", "fp32")(torch.randn(2))


@pytest.mark.cuda
@cuda
def test_cuda_nearest_equals_cpu_and_stochastic_stays_on_grid() -> None:
    x = torch.randn(64, 100, generator=gen(8)) * torch.logspace(-6, 6, 100)
    x[3] = 0.0
    x[5, 7] = math.inf
    for text in (
        "fixed<8,3>",
        "fixed<16,8>",
        "block<8>",
        "block<6,32>",
        "float<5,2>",
        "float<8,7>",
    ):
        on_gpu = quantize(x.cuda(), text, "nearest")
        assert on_gpu.device.type == "cuda"
        assert torch.equal(on_gpu.cpu(), quantize(x, text, "nearest")), text
        sr = quantize(x.cuda(), text, "stochastic", gen(1, "cuda")).cpu()
        assert torch.equal(quantize(sr, text, "nearest"), sr), text
