"""The formats of today's hardware (ALGORITHMS.md §11): OCP FP8/FP6/FP4 elements, OCP MX blocks,
NVFP4 and scaled integers. Strings and bits; nearest rounding bit for bit against the reference
implementations (``ml_dtypes`` casts for the elements, torchao 0.18's ``to_mx`` and
``nvfp4_quantize`` for the blocks: both are pinned in the dev extra, so they are imported, not
skipped); stochastic rounding's law at the block's scale; the VC law; LP-SGLD's Gaussian law
with fp8_e4m3 weights."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lowprec import parse_format, quantize, vc_quantize
from lowprec.formats import ELEMENTS, NVFP4, ElementFloat, MXFormat, ScaledFormat, ScaledInt

REPO = Path(__file__).resolve().parents[3]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- strings, bits, refusals -----------------------------------------------------------------

CANONICAL = [
    "fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1",
    "mx<fp8_e4m3>", "mx<fp8_e5m2>", "mx<fp6_e2m3>", "mx<fp6_e3m2>", "mx<fp4_e2m1>", "mx<int8>",
    "mx<fp4_e2m1,16>", "mx<fp8_e4m3,rceil>", "mx<fp6_e2m3,64,even>",
    "nvfp4", "nvfp4<t>", "int<8>", "int<4,g32>", "int<2,g1>",
]  # fmt: skip


@pytest.mark.parametrize("text", CANONICAL)
def test_str_round_trip(text: str) -> None:
    fmt = parse_format(text)
    assert str(fmt) == text
    assert parse_format(str(fmt)) == fmt
    hash(fmt)


def test_spellings_and_classes() -> None:
    assert parse_format(" MX< fp8_e4m3 , 32 >") == MXFormat("fp8_e4m3")
    assert str(parse_format("mx<fp8_e4m3,32,floor>")) == "mx<fp8_e4m3>"
    assert isinstance(parse_format("fp8_e4m3"), ElementFloat)
    assert parse_format("nvfp4<t>") == NVFP4(per_tensor=True)
    assert parse_format("int<4,g32>") == ScaledInt(4, 32)


def test_element_constants_are_ocp() -> None:
    # (emax, max, min subnormal) of OCP MX v1.0 table 1 and OCP FP8
    expected = {
        "fp8_e4m3": (8, 448.0, 2.0**-9),
        "fp8_e5m2": (15, 57344.0, 2.0**-16),
        "fp6_e2m3": (2, 7.5, 2.0**-3),
        "fp6_e3m2": (4, 28.0, 2.0**-4),
        "fp4_e2m1": (2, 6.0, 0.5),
    }
    for name, (emax, top, sub) in expected.items():
        fmt = parse_format(name)
        assert (fmt.emax, fmt.max_value, fmt.min_subnormal) == (emax, top, sub), name
    assert parse_format("fp8_e4m3").max_value == float(torch.finfo(torch.float8_e4m3fn).max)
    # the fp4 grid: ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}
    x = torch.linspace(-7, 7, 2801)
    values = torch.unique(quantize(x, "fp4_e2m1", "nearest")).tolist()
    assert values == [-6, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 6]


def test_bits_count_the_scales() -> None:
    bits = {
        "mx<fp4_e2m1>": 4.25, "mx<fp6_e2m3>": 6.25, "mx<fp6_e3m2>": 6.25,
        "mx<fp8_e4m3>": 8.25, "mx<fp8_e5m2>": 8.25, "mx<int8>": 8.25,
        "nvfp4": 4.5, "nvfp4<t>": 4.5, "int<4,g32>": 5.0, "int<8,g128>": 8.25, "int<8>": 8.0,
        "fp8_e4m3": 8.0, "fp6_e2m3": 6.0, "fp4_e2m1": 4.0,
    }  # fmt: skip
    for text, b in bits.items():
        assert parse_format(text).bits == b, text
    # nvfp4<t> adds one float32 per tensor; int<B> one float32 per row
    assert parse_format("nvfp4<t>").bits_for((64, 64)) == 4.5 + 32 / 4096
    assert parse_format("nvfp4").bits_for((64, 64)) == 4.5
    assert parse_format("int<8>").bits_for((10, 100)) == pytest.approx(8 + 32 / 100)
    # a last dim not a multiple of K: the shorter block has a scale of its own
    assert parse_format("mx<fp8_e4m3>").bits_for((4, 40)) == pytest.approx(8 + 8 * 8 / 160)


BAD = [
    ("mx<fp5_e2m2>", "mx<E>, mx<E,K> or mx<E,K,rule>"),
    ("mx<fp8_e4m3,0>", "K >= 1"),
    ("mx<fp8_e4m3,32,ceil>", "rceil or even"),
    ("mx", "mx<E>"),
    ("nvfp4<x>", "nvfp4<t>"),
    ("int<1>", "int<B,gK>"),
    ("int<4,g0>", "int<B,gK>"),
    ("int<4,32>", "int<B,gK>"),
    ("fp8_e4m3<2>", "no parameters"),
]


@pytest.mark.parametrize(("text", "why"), BAD)
def test_bad_strings_name_the_accepted_forms(text: str, why: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_format(text)
    assert repr(text) in str(err.value) and why in str(err.value)


def test_bad_strings_refused_in_one_line_before_torch() -> None:
    """``python -m orchestrator.trial`` refuses each with exit 2 and one line naming the key
    and the accepted forms; torch is never imported (the parse is plain Python)."""
    code = """
import sys
from orchestrator.trial import main
for text in sys.argv[1:]:
    rc = main(["workload=gaussian", "accumulator=low", f"weight_format={text}"])
    print(rc, "torch" in sys.modules)
"""
    texts = ["mx<fp5_e2m2>", "mx<fp8_e4m3,0>", "nvfp4<x>", "int<1>", "int<4,g0>"]
    texts.append("mx<fp8_e4m3,32,ceil>")  # an unknown scale rule
    out = subprocess.run(
        [sys.executable, "-c", code, *texts], capture_output=True, text=True, cwd=REPO,
        timeout=120,
    )  # fmt: skip
    assert out.stdout.split("\n")[:-1] == ["2 False"] * len(texts), out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == len(texts), out.stderr
    for line, text in zip(lines, texts, strict=True):
        assert "key 'weight_format'" in line and repr(text) in line and "expected" in line


def test_cli_refusal_exits_2() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator.trial", "workload=gaussian", "grad_format=nvfp4<x>"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "'grad_format'" in lines[0] and "nvfp4<t>" in lines[0]


# --- nearest rounding against the references -------------------------------------------------

ML_DTYPES = {
    "fp8_e4m3": "float8_e4m3fn",
    "fp8_e5m2": "float8_e5m2",
    "fp6_e2m3": "float6_e2m3fn",
    "fp6_e3m2": "float6_e3m2fn",
    "fp4_e2m1": "float4_e2m1fn",
}


def element_grid(name: str) -> np.ndarray:
    """Every non-negative finite value of the element, ascending (float64)."""
    exp, man, emax, top = ELEMENTS[name]
    emin = 2 - 2 ** (exp - 1)
    sub = [k * 2.0 ** (emin - man) for k in range(2**man)]
    normal = [
        (1 + k / 2**man) * 2.0**e for e in range(emin, emax + 1) for k in range(2**man)
    ]  # fmt: skip
    return np.array([v for v in sub + normal if v <= top])


def element_values(name: str, n: int = 1_000_000) -> np.ndarray:
    """≥ n float32 values: random magnitudes over 2^-20..2^20 (random mantissas, both signs),
    every grid point, every midpoint between neighbours (ties) and points a float32 ulp either
    side of each, zeros, float32 subnormals, values beyond the range, ±inf and NaN."""
    rng = np.random.default_rng(19)
    mags = np.exp2(rng.uniform(-20, 20, n)).astype(np.float32)
    random = mags * rng.choice(np.array([-1, 1], np.float32), n)
    grid = element_grid(name)
    mids = ((grid[1:] + grid[:-1]) / 2).astype(np.float32)
    near = np.concatenate([np.nextafter(mids, np.float32(0)), np.nextafter(mids, np.float32(9e9))])
    top = np.float32(ELEMENTS[name][3])
    specials = np.array(
        [0.0, 1e-45, 1e-40, 2.0**-126, top, np.nextafter(top, np.float32(9e9)), top * 1.0625,
         top * 1.125, top * 2, 3e38, np.inf, np.nan], np.float32,
    )  # fmt: skip
    edges = np.concatenate([grid.astype(np.float32), mids, near, specials])
    return np.concatenate([random, edges, -edges]).astype(np.float32)


def ml_dtypes_reference(x: np.ndarray, name: str) -> np.ndarray:
    import ml_dtypes

    top = np.float32(ELEMENTS[name][3])
    saturated = np.clip(x, -top, top)
    out = saturated.astype(getattr(ml_dtypes, ML_DTYPES[name])).astype(np.float32)
    # NaN stays NaN (this project's conversion); the FP6/FP4 elements have no NaN encoding, and
    # ml_dtypes casts NaN to 0 there
    return np.where(np.isnan(x), np.float32(np.nan), out)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bit for bit, signed zeros included; NaN where the other is NaN."""
    nan = torch.isnan(a)
    if not torch.equal(nan, torch.isnan(b)):
        return False
    return torch.equal(a[~nan].view(torch.int32), b[~nan].view(torch.int32))


@pytest.mark.parametrize("name", list(ELEMENTS))
@pytest.mark.parametrize("kernels", ["eager", "fused"])
def test_elements_nearest_equal_ml_dtypes_casts(name: str, kernels: str) -> None:
    x = element_values(name)
    assert x.size >= 10**6
    expected = torch.from_numpy(ml_dtypes_reference(x, name))
    got = quantize(torch.from_numpy(x), name, "nearest", kernels=kernels)
    bad = ~((got == expected) | (torch.isnan(got) & torch.isnan(expected)))
    assert not bad.any(), (x[bad.numpy()][:5], got[bad][:5], expected[bad][:5])
    assert same_bits(got, expected)


TORCHAO_ELEMENTS = {
    "fp8_e4m3": torch.float8_e4m3fn,
    "fp8_e5m2": torch.float8_e5m2,
    "fp6_e2m3": "fp6_e2m3",
    "fp6_e3m2": "fp6_e3m2",
    "fp4_e2m1": torch.float4_e2m1fn_x2,
}


def block_values(name: str, rows: int, k: int = 32) -> torch.Tensor:
    """(rows, 4k) float32: blocks whose largest magnitude spans 2^-20..2^20, every element a
    random magnitude below it; a quarter of the blocks hold exact ties of the element grid at
    the block's scale (the block's amax a power of two times 2^emax); some blocks all zero,
    some with ±inf, some with NaN, some with values in the element's subnormal range."""
    rng = np.random.default_rng(23)
    emax = ELEMENTS[name][2] if name in ELEMENTS else 0
    nb = rows * 4
    top = np.exp2(rng.uniform(-20, 20, nb))
    x = top[:, None] * rng.uniform(-1, 1, (nb, k)) * np.exp2(-rng.integers(0, 12, (nb, k)))
    if name in ELEMENTS:
        grid = element_grid(name)
        mids = (grid[1:] + grid[:-1]) / 2
        ties = nb // 4
        s = rng.integers(-20 - emax, 20 - emax, ties)
        picked = rng.choice(mids, (ties, k)) * rng.choice([-1, 1], (ties, k))
        picked[:, 0] = 2.0**emax  # the block's amax: floor(log2) = s + emax exactly
        x[:ties] = picked * np.exp2(s)[:, None]
    x[-8:] = 0.0
    x[-16:-8, 3] = np.inf
    x[-20:-16, 5] = -np.inf
    x[-24:-20, 7] = np.nan
    return torch.from_numpy(x.astype(np.float32).reshape(rows, 4 * k))


@pytest.mark.parametrize("name", list(ELEMENTS))
def test_mx_nearest_equals_torchao_to_mx(name: str) -> None:
    from torchao.prototype.mx_formats.mx_tensor import to_dtype, to_mx

    x = block_values(name, rows=8192)  # 32768 blocks, 1,048,576 values
    elem = TORCHAO_ELEMENTS[name]
    scale, data = to_mx(x, elem, 32)
    expected = to_dtype(data, scale, elem, 32, torch.float32).reshape(x.shape)
    # torchao's floor rule divides by max(2^s, 2^-126) but multiplies back by 2^s: the blocks
    # whose amax is below 2^(emax-126) (s = -127) are off by a factor 2 there; here only the
    # all-zero blocks have s = -127 (zeros either way)
    zero = x.reshape((*scale.shape, 32)).abs().amax(-1) == 0
    assert ((scale.view(torch.uint8) > 0) | zero).all()
    for kernels in ("eager", "fused"):
        got = quantize(x, f"mx<{name}>", "nearest", kernels=kernels)
        assert same_bits(got, expected), kernels


@pytest.mark.parametrize("per_tensor", [False, True])
def test_nvfp4_nearest_equals_torchao_nvfp4_quantize(per_tensor: bool) -> None:
    from torchao.prototype.mx_formats.kernels import f4_unpacked_to_f32, unpack_uint4
    from torchao.prototype.mx_formats.nvfp4_tensor import nvfp4_quantize, per_tensor_amax_to_scale

    x = block_values("fp4_e2m1", rows=4096, k=64)[:, :256].contiguous()  # 1,048,576 values
    x = x[:, :].clone()
    finite = x.clone()
    finite[~torch.isfinite(finite)] = 1.0  # NaN or inf anywhere makes the two-level scale NaN
    for data in (x, finite) if not per_tensor else (finite,):
        t = per_tensor_amax_to_scale(data.abs().amax()) if per_tensor else None
        scales, packed = nvfp4_quantize(data, 16, per_tensor_scale=t)
        q = f4_unpacked_to_f32(unpack_uint4(packed.view(torch.uint8))).reshape(-1, 16)
        s = scales.to(torch.float32).reshape(-1, 1)
        expected = (q * (t * s if per_tensor else s)).reshape(data.shape)
        got = quantize(data, "nvfp4<t>" if per_tensor else "nvfp4", "nearest")
        assert same_bits(got, expected)


def test_mx_partial_block_zero_block_and_int8() -> None:
    fmt = parse_format("mx<fp8_e4m3,4>")
    x = torch.tensor([[1.0, 3.0, -0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 300.0, 0.5]])
    # blocks [1, 3, -.1, 0] (amax 3: s = 1 - 8), [0]*4, [300, .5] (a shorter block: s = 0)
    expected = torch.tensor([[1.0, 3.0, -0.1015625, 0.0, 0, 0, 0, 0, 288.0, 0.5]])
    assert torch.equal(quantize(x, fmt, "nearest"), expected)
    # MXINT8: int8·2^-6 at the block's scale, symmetric ±127: amax 3 -> s = 1, step 2^-5
    # (ties to even: 1/64 is half a step -> 0, 3/64 one and a half -> 2 steps)
    q = quantize(torch.tensor([3.0, -3.99, 0.01, 1 / 64, 3 / 64]), "mx<int8>", "nearest")
    assert q.tolist() == [3.0, -127 / 32, 0.0, 0.0, 0.0625]
    # all-zero block, NaN block
    assert quantize(torch.zeros(5, 32), "mx<fp4_e2m1>", "nearest").eq(0).all()
    y = torch.ones(2, 32)
    y[0, 3] = math.nan
    out = quantize(y, "mx<fp4_e2m1>", "nearest")
    assert out[0].isnan().all() and out[1].eq(1).all()


def test_scaled_int_known_answers() -> None:
    x = torch.tensor([[1.0, -0.5, 0.26, 0.0], [0.0, 0.0, 0.0, 0.0], [2.0, 1.0, 3.0, -7.0]])
    # int<4>: per row s = amax/7; q = round(x/s)
    q = quantize(x, "int<4>", "nearest")
    s = x.abs().amax(1, keepdim=True) / 7
    expected = torch.where(s > 0, torch.round(x / torch.where(s > 0, s, 1)) * s, 0.0)
    assert torch.equal(q, expected)
    assert q[1].eq(0).all()
    # groups of 2 along the last dim; a 5-wide row ends in a group of one
    y = torch.tensor([[1.0, 0.4, -3.0, 1.0, 0.3]])
    g = quantize(y, "int<2,g2>", "nearest")  # ±1·s: s = amax of each pair
    assert torch.equal(g, torch.tensor([[1.0, 0.0, -3.0, 0.0, 0.3]]))
    # ±inf saturate to the row's largest value, finite results
    z = quantize(torch.tensor([[1.0, math.inf, -math.inf]]), "int<8>", "nearest")
    assert torch.isfinite(z).all() and z[0, 1] == -z[0, 2] > 3e38


# --- stochastic rounding at the block's scale ------------------------------------------------

STOCHASTIC = [
    "fp8_e4m3", "fp6_e3m2", "fp4_e2m1", "mx<fp8_e4m3>", "mx<fp4_e2m1>", "mx<fp6_e2m3,16>",
    "mx<int8>", "nvfp4", "nvfp4<t>", "int<8>", "int<4,g32>",
]  # fmt: skip


def stat_values() -> torch.Tensor:
    """(1, 96) values off the grids: three blocks of 32 with amax 3.7, 0.011 and 170."""
    g = gen(5)
    x = torch.rand(3, 32, generator=g) * 2 - 1
    x[:, 0] = 1.0
    return (x * torch.tensor([[3.7], [0.011], [170.0]])).reshape(1, 96)


@pytest.mark.parametrize("text", STOCHASTIC)
@pytest.mark.parametrize("kernels", ["eager", "fused"])
def test_stochastic_rounding_is_unbiased_on_the_element_grid(text: str, kernels: str) -> None:
    """Per element, Q(x) is floor_Δ(x) + Δ·B, B ~ Bernoulli(δ/Δ), Δ the element's grid step at
    its block's scale (from the unrounded block): the fraction of round-ups p̂ over n draws
    has standard error sqrt(p(1-p)/n), so the mean is within 5·Δ·SE of x and the variance
    (ddof 0, exactly Δ²p̂(1-p̂)) within Δ²(5·SE·|1-2p| + 25p(1-p)/n) of δ(Δ-δ)."""
    torch.set_num_threads(1)
    n = 40_000
    fmt = parse_format(text)
    x = stat_values()
    xs = x.expand(n, -1).contiguous()
    q = quantize(xs, fmt, "stochastic", gen(11), kernels=kernels).double()
    delta = fmt.spacing(x)[0].double()
    x64 = x[0].double()
    lower = torch.floor(x64 / delta) * delta
    p = (x64 - lower) / delta
    # (values on the grid do not move; values beyond the block's range saturate: MX's floor
    # rule leaves amax/2^s in [2^emax, 2^(emax+1)), above E's largest value for E4M3 and E2M1)
    _, hi = fmt.bounds(x)
    inside = (p > 1e-6) & (p < 1 - 1e-6) & (x64.abs() < hi[0].double())
    assert inside.sum() >= 48
    x64, lower, p, delta, q = x64[inside], lower[inside], p[inside], delta[inside], q[:, inside]
    up = (q - lower) / delta
    zero_or_one = torch.isclose(up, torch.zeros_like(up), atol=1e-5) | torch.isclose(
        up, torch.ones_like(up)
    )
    assert zero_or_one.all()
    se = torch.sqrt(p * (1 - p) / n)
    assert ((q.mean(0) - x64).abs() <= 5 * delta * se + 1e-6 * x64.abs()).all()
    var_sr = (x64 - lower) * (lower + delta - x64)
    tol = delta**2 * (5 * se * (1 - 2 * p).abs() + 25 * p * (1 - p) / n) + 1e-6 * x64**2
    assert ((q.var(0, unbiased=False) - var_sr).abs() <= tol).all()


@pytest.mark.parametrize("text", STOCHASTIC)
def test_finite_input_never_becomes_inf_or_nan(text: str) -> None:
    big = torch.tensor([[3.4e38, -3.4e38, 1e38, 2.0] * 8, [1e-44, 0.0, -1e-40, 3e-39] * 8])
    for rounding in ("nearest", "stochastic"):
        out = quantize(big, text, rounding, gen(1), kernels="eager")
        assert torch.isfinite(out).all(), (text, rounding, out)


# --- VC on the element grid ------------------------------------------------------------------


@pytest.mark.parametrize("kernels", ["eager", "auto"])
@pytest.mark.parametrize(
    "text", ["fp8_e4m3", "mx<fp8_e4m3>", "mx<fp4_e2m1>", "mx<int8>", "nvfp4", "int<4,g32>"]
)
def test_vc_keeps_mean_and_variance(text: str, kernels: str) -> None:
    """Q_vc(μ, v) on a scaled format: the scale from the block's reach |μ| + 4·sqrt(v), held
    fixed; on the element grid Δ of the reach (absolute: Δ = fmt.spacing(reach)), mean μ and
    variance v, or v_s = δ(Δ-δ) where v < v_s <= Δ²/4 (the documented fallback). 5 SE."""
    torch.set_num_threads(1)
    n = 100_000
    fmt = parse_format(text)
    g = gen(3)
    base = (torch.rand(32, generator=g) * 2 - 1) * torch.exp2(-torch.randint(0, 5, (32,)).float())
    base[0] = 1.0
    mu = (base * 2.5).double()
    # variances across both branches, relative to the step at |μ|
    d0 = fmt.spacing(mu.float()[None])[0].double()
    w = torch.tensor([0.05, 0.15, 0.3, 1.0, 3.0, 0.0, 0.6, 0.2] * 4, dtype=torch.float64)
    v = w * d0**2
    reach = (mu.abs() + 4 * v.sqrt()).float()
    delta = fmt.spacing(reach[None])[0].double()
    c = mu / delta - torch.floor(mu / delta)
    small = v <= delta**2 / 4
    target = torch.where(small, torch.maximum(v, c * (1 - c) * delta**2), v)
    assert small.any() and (~small).any()
    mus = mu.float().expand(n, -1).contiguous()
    out = vc_quantize(mus, v.float().expand(n, -1), fmt, generator=gen(2024), kernels=kernels)
    # on the element grid at the reach's scale (for power-of-two scales that is the grid a
    # requantization finds; int and NVFP4 scales follow the block's amax continuously)
    if isinstance(fmt, ScaledFormat):
        y, _, up, restore = fmt.to_element(mus, reach=reach.expand(n, -1).contiguous())
        units = out / restore(up.expand(y.shape))
        assert torch.allclose(quantize(units, fmt.element, "nearest"), units, rtol=1e-6, atol=0)
    else:
        assert torch.equal(quantize(out, fmt, "nearest"), out)
    out = out.double()
    mean = out.mean(0)
    centred = out - mean
    var = (centred**2).mean(0)
    m4 = (centred**4).mean(0)
    se_mean = torch.sqrt(target / n) + 1e-7 * mu.abs()
    se_var = torch.sqrt((m4 - var**2).clamp(min=0) / n) + 1e-6 * target
    assert ((mean - mu).abs() <= 5 * se_mean).all(), (mean - mu) / se_mean
    assert ((var - target).abs() <= 5 * se_var).all(), (var - target) / se_var


# --- LP-SGLD on N(0, 1) with fp8_e4m3 weights ------------------------------------------------


def e4m3_rounding_variance(sigma2: float) -> float:
    """E[Δ(θ)²]/6 for θ ~ N(0, σ²) on the fp8_e4m3 grid (Δ = 2^(max(e, -6) - 3), e the binade
    of |θ|): the mean variance δ(Δ-δ) stochastic rounding adds when δ is uniform over Δ."""
    sd = math.sqrt(sigma2)

    def mass(a: float, b: float) -> float:  # P(a <= |θ| < b)
        return math.erf(b / (sd * math.sqrt(2))) - math.erf(a / (sd * math.sqrt(2)))

    total = mass(0.0, 2.0**-6) * (2.0**-9) ** 2
    for e in range(-6, 9):
        total += mass(2.0**e, 2.0 ** (e + 1)) * (2.0 ** (e - 3)) ** 2
    return total / 6


@pytest.mark.slow
def test_lp_sgld_gaussian_law_with_fp8_e4m3_weights() -> None:
    """ALGORITHMS.md §10 with θ stored in fp8_e4m3: N(0, 1), ∇U(θ) = θ + 0.1ξ, α = 0.01,
    10^5 chains from 0 for 600 steps (the variance within 1 - (1-α)^1200 ≈ 1 - 6e-6 of its
    limit).

    Naive (low): θ' = Q_sr(θ - α∇U + sqrt(2α)ξ) adds E[δ(Δ-δ)] ≈ E[Δ(θ)²]/6 per step on the
    element grid, so σ² solves σ²(2α - α²) = 2α + 0.01α² + E_{N(0,σ²)}[Δ²]/6 (fixed point;
    std about 1.035 here). VC: θ' = Q_vc(θ - α∇U, 2α): variance (2α + 0.01α²)/(2α - α²)
    exactly where 2α exceeds Δ²/4 (|θ| < 4 at this α; below ~α = 0.008 the binade [2, 4)
    falls back to stochastic rounding's variance, the documented fallback, and VC inflates
    too). Full: a float32 θ updated with the gradient at Q_sr(θ): the same std up to
    α²·Var(Q)/(2α) ~ 1e-5. Final states of independent chains: std SE σ/sqrt(2n); 5 SE, plus
    0.004 for the uniform-δ approximation of the naive prediction."""
    torch.set_num_threads(1)
    g = gen(7)
    alpha, n, steps, fmt = 0.01, 100_000, 600, "fp8_e4m3"
    naive, vc, full = torch.zeros(n), torch.zeros(n), torch.zeros(n)
    sd = (2 * alpha) ** 0.5
    for _ in range(steps):
        grad = naive + 0.1 * torch.randn(n, generator=g)
        step = naive - alpha * grad + sd * torch.randn(n, generator=g)
        naive = quantize(step, fmt, "stochastic", g)
        grad = vc + 0.1 * torch.randn(n, generator=g)
        vc = vc_quantize(vc - alpha * grad, 2 * alpha, fmt, generator=g)
        grad = quantize(full, fmt, "stochastic", g) + 0.1 * torch.randn(n, generator=g)
        full = full - alpha * grad + sd * torch.randn(n, generator=g)
    exact = ((2 * alpha + 0.01 * alpha**2) / (2 * alpha - alpha**2)) ** 0.5
    se = 5 / (2 * n) ** 0.5
    assert abs(vc.std().item() - exact) <= se * exact
    assert abs(full.std().item() - exact) <= se * exact + 0.005
    sigma2 = 1.0
    for _ in range(50):
        sigma2 = (2 * alpha + 0.01 * alpha**2 + e4m3_rounding_variance(sigma2)) / (
            2 * alpha - alpha**2
        )
    predicted = math.sqrt(sigma2)
    assert predicted - exact > 2 * se * exact  # the inflation is 10 SE: real at this step size
    assert abs(naive.std().item() - predicted) <= se * predicted + 0.004


# --- samplers: weights, gradients and momentum in the new formats -----------------------------

SAMPLER_FORMATS = ["fp8_e4m3", "fp4_e2m1", "mx<fp4_e2m1>", "mx<int8>", "nvfp4", "int<4,g32>"]


@pytest.mark.parametrize("fmt", SAMPLER_FORMATS)
@pytest.mark.parametrize("accumulator", ["full", "low", "vc"])
@pytest.mark.parametrize("sampler", ["sgld", "sghmc"])
def test_samplers_take_the_new_formats(sampler: str, accumulator: str, fmt: str) -> None:
    """W, G (and under low/vc the momentum M, which follows W) in the format: finite, the same
    for the same seed, θ̂ on W's grid (for the power-of-two scales, where requantizing finds
    the same grid), and the executor that ran: the fused step (nvfp4<t>, whose per-tensor
    scale a group-parallel step cannot make, and the MX rules other than floor run eager)."""
    from tests.lowprec.samplers.helpers import _config, _run

    config = _config(sampler, accumulator, fmt)
    out, s = _run(config)
    assert all(bool(torch.isfinite(t).all()) for t in out)
    again, _ = _run(config)
    assert all(torch.equal(a, b) for a, b in zip(out, again, strict=True))
    w = parse_format(fmt)
    if not isinstance(w, ScaledFormat) or isinstance(w, MXFormat):
        for t in out:
            assert torch.equal(quantize(t, w, rounding="nearest"), t)
    assert s.executor_name == "fused"


def test_activation_and_error_quantizers_take_the_new_formats() -> None:
    from lowprec import Quantizer

    layer = Quantizer("mx<fp8_e4m3>", "nvfp4", generator=gen(0))
    x = torch.randn(8, 64, requires_grad=True)
    y = layer(x)
    assert torch.equal(quantize(y.detach(), "mx<fp8_e4m3>", "nearest"), y.detach())
    (y * torch.randn(8, 64, generator=gen(1))).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.ne(0).any()


# --- the fused (numba) quantizers against the eager reference ---------------------------------

SCALED = [
    "mx<fp8_e4m3>", "mx<fp8_e5m2>", "mx<fp6_e2m3>", "mx<fp6_e3m2,16>", "mx<fp4_e2m1>", "mx<int8>",
    "nvfp4", "nvfp4<t>", "int<8>", "int<4,g32>", "int<4,g7>", "mx<fp8_e4m3,rceil>",
    "mx<fp6_e3m2,16,rceil>", "mx<fp4_e2m1,even>", "mx<int8,even>", "mx<int8,rceil>",
]  # fmt: skip


@pytest.mark.parametrize("text", SCALED)
def test_fused_nearest_equals_eager_bit_for_bit(text: str) -> None:
    """Every shape the layouts cut differently: rows with a last dim a multiple of K, one that
    is not (a shorter last block), 1-D and 0-d; with and without NaN/inf blocks."""
    x = block_values("fp8_e4m3", rows=1024)
    finite = x.clone()
    finite[~torch.isfinite(finite)] = 1.0
    for data in (x, finite):
        for xx in (data, data[:, :100].contiguous(), data[3], data[0, 0], data.reshape(4, 8, -1)):
            eager = quantize(xx, text, "nearest", kernels="eager")
            fused = quantize(xx, text, "nearest", kernels="fused")
            assert same_bits(fused, eager), (text, tuple(xx.shape))


def test_every_mx_rule_runs_fused_and_vc_scales_in_torch() -> None:
    from lowprec.kernels.fused import has_fused

    for rule in ("", ",rceil", ",even"):
        assert has_fused(parse_format(f"mx<fp8_e4m3,32{rule}>"), "cpu")
        assert has_fused(parse_format(f"mx<fp8_e4m3,32{rule}>"), "cpu", "step")
    assert not has_fused(parse_format("nvfp4"), "cpu", "vc")
    x = torch.randn(4, 64)
    fmt = "mx<fp8_e4m3,rceil>"
    assert torch.equal(quantize(x, fmt, "nearest"), quantize(x, fmt, "nearest", kernels="eager"))


@pytest.mark.parametrize("element", ["fp8_e4m3", "fp4_e2m1", "int8"])
def test_rceil_is_the_exact_ceiling_at_and_beside_powers_of_two(element: str) -> None:
    # r = amax/max(E) at 2^k and one float32 step either side: s = ceil(log2 r) is k, k + 1
    # and k exactly (the hardware's round-up to E8M0), on the eager and the fused path; a
    # float32 log2 may round log2 of the r above 2^k down to k
    fmt = parse_format(f"mx<{element},4,rceil>")
    top = np.float32(fmt.element.max_value)
    blocks = []
    for k in range(-130, 128, 7):
        r = np.float32(2.0**k) if k >= -149 else np.float32(0.0)
        for q in (r, np.nextafter(r, np.float32(np.inf)), np.nextafter(r, np.float32(0.0))):
            with np.errstate(over="ignore"):  # beyond float32: skipped below
                amax = np.float32(q * top)
            if not np.isfinite(amax) or np.float32(amax / top) != q:
                continue  # r not reachable as a quotient: no block to test
            blocks.append([amax, amax * np.float32(0.3), -amax * np.float32(0.7), 0.0])
    x = torch.from_numpy(np.asarray(blocks, dtype=np.float32))
    r = (x.abs().amax(dim=1) / float(top)).double()
    m, e = np.frexp(r.numpy())
    exact = np.clip(np.where(m > 0.5, e, e - 1), -127, 127)
    exact[r.numpy() == 0] = -127
    amax = x.abs().amax(dim=1, keepdim=True)
    scale = fmt.scales(amax)[1].reshape(-1).double()
    assert np.array_equal(np.log2(scale.numpy()), exact.astype(np.float64))
    eager = quantize(x, fmt, "nearest", kernels="eager")
    assert same_bits(quantize(x, fmt, "nearest", kernels="fused"), eager)


@pytest.mark.parametrize("text", [*ELEMENTS, "mx<int8>", "int<4,g32>"])
def test_triton_element_kernels_under_the_interpreter(text: str) -> None:
    """The elements (and the integer elements of MXINT8 and int<B>) in the Triton quantizer
    and VC kernels, run by Triton's interpreter on CPU tensors (tests/conftest.py sets
    TRITON_INTERPRET=1 without a GPU): nearest equal to eager bit for bit, stochastic and VC
    on the grid. On CUDA the scaled formats scale in torch and round their elements there."""
    pytest.importorskip("triton")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the cuda-marked tests run the Triton kernels there")
    from lowprec.kernels.fused import quantize_fused, vc_quantize_fused

    fmt = parse_format(text)
    elem = fmt.element if isinstance(fmt, ScaledFormat) else fmt
    x = torch.from_numpy(element_values("fp8_e4m3", n=3000))
    eager = quantize(x, elem, "nearest", kernels="eager")
    assert same_bits(quantize_fused(x, elem, "nearest", None, "triton"), eager)
    finite = x[torch.isfinite(x)].clamp(-elem.max_value, elem.max_value)
    sr = quantize_fused(finite, elem, "stochastic", gen(3), "triton")
    assert torch.equal(quantize(sr, elem, "nearest", kernels="eager"), sr)
    vc = vc_quantize_fused(finite * 0.5, 0.01, elem, gen(4), "triton")
    assert torch.isfinite(vc).all()
    assert torch.equal(quantize(vc, elem, "nearest", kernels="eager"), vc)


def test_format_families_mx_and_int() -> None:
    """``format: mx`` / ``int`` with ``bits`` (workloads.config.precision): MXFP4/6/8 and int<B>."""
    from workloads.config.precision import precision_from_config

    def weight(**config: object) -> str:
        return str(precision_from_config(config).weight)

    assert weight(format="mx", bits=4) == "mx<fp4_e2m1>"
    assert weight(format="mx", bits=6) == "mx<fp6_e2m3>"
    assert weight(format="mx", bits=8) == "mx<fp8_e4m3>"
    assert weight(format="int", bits=4) == "int<4>"
    assert weight(format="nvfp4") == "nvfp4"
    assert weight(format="int<4,g32>") == "int<4,g32>"
    with pytest.raises(ValueError, match="key 'bits': 5 makes no mx format"):
        weight(format="mx", bits=5)
    with pytest.raises(ValueError, match="key 'bits': 30 makes no int format"):
        weight(format="int", bits=30)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("text", [*ELEMENTS, *SCALED])
def test_cuda_nearest_equals_the_cpu_reference(text: str) -> None:
    """On CUDA the elements run the Triton float kernels and the scaled formats scale in torch
    and round their elements there: nearest equal bit for bit to the CPU's eager result;
    stochastic rounding and VC on the grid."""
    x = block_values("fp8_e4m3", rows=256)
    expected = quantize(x, text, "nearest", kernels="eager")
    got = quantize(x.cuda(), text, "nearest", kernels="auto").cpu()
    assert same_bits(got, expected)
    fmt = parse_format(text)
    finite = x.clone()
    finite[~torch.isfinite(finite)] = 1.0
    g = torch.Generator(device="cuda").manual_seed(0)
    sr = quantize(finite.cuda(), fmt, "stochastic", g)
    assert torch.isfinite(sr).all()
    if not isinstance(fmt, ScaledFormat) or isinstance(fmt, MXFormat):
        assert torch.equal(quantize(sr, fmt, "nearest", kernels="eager"), sr)
        vc = vc_quantize(finite.cuda(), 1e-4, fmt, generator=g)
        assert torch.equal(quantize(vc, fmt, "nearest", kernels="eager"), vc)
