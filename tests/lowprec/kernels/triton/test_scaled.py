"""The Triton quantizers on the scaled formats (OCP MX, NVFP4, scaled integers; ALGORITHMS.md
§11), run by Triton's interpreter (TRITON_INTERPRET=1) on small CPU tensors.

Known answers and laws, not seeds: nearest rounding equals the eager reference
(lowprec/formats/scaled.py) bit for bit on magnitudes 2^-20..2^20 with zeros, float32
subnormals, saturation, NaN and ±inf, on shapes whose last dim is not a multiple of K; the
stochastic results equal the numba kernels' bit for bit (the same Philox tile layout); the
stochastic rounding is unbiased with variance δ(Δ - δ) (tolerances from the Monte Carlo
standard error); Q_vc has mean μ and variance v (§4).
"""

from __future__ import annotations

import math

import pytest
import torch

from lowprec import quantize
from lowprec.formats import parse_format
from lowprec.kernels.fused import has_fused, quantize_fused, vc_quantize_fused

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN arithmetic, on purpose

#: every scaled format the Triton quantizers take (encoding.scaled_params)
FORMATS = [
    "mx<fp8_e4m3>", "mx<fp8_e5m2>", "mx<fp6_e2m3>", "mx<fp6_e3m2>", "mx<fp4_e2m1>",
    "mx<int8>", "mx<fp8_e4m3,8>", "mx<fp8_e4m3,rceil>", "mx<fp4_e2m1,even>", "mx<int8,even>",
    "nvfp4", "nvfp4<t>", "int<8>", "int<4>", "int<8,g16>", "int<3,g32>",
]  # fmt: skip
#: MCSE multiples for the law tests (a two-sided 5σ miss: about 6e-7 per statistic)
Z = 5.0


@pytest.fixture(scope="module", autouse=True)
def _interpreted() -> None:
    triton = pytest.importorskip("triton")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the cuda-marked tests run the Triton kernels there")
    assert triton.knobs.runtime.interpret, "TRITON_INTERPRET=1 must be set before importing triton"


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit, any NaN equal to any NaN."""
    bits = a.view(torch.int32) == b.view(torch.int32)
    return bool((bits | (a.isnan() & b.isnan())).all())


def _values(rows: int, cols: int, specials: bool) -> torch.Tensor:
    """Signed magnitudes 2^-20..2^20 (uniform in the exponent) in a (rows, cols) tensor; with
    ``specials`` a row of zeros, float32 subnormals, values saturating beside small ones,
    ±inf and a NaN, each in a block of its own row."""
    g = torch.Generator().manual_seed(1)
    e = torch.rand(rows, cols, generator=g) * 40.0 - 20.0
    sign = torch.where(torch.rand(rows, cols, generator=g) < 0.5, -1.0, 1.0)
    x = sign * torch.exp2(e)
    if specials:
        x[0] = 0.0
        x[1, :5] = torch.tensor([1e-45, -3e-42, 1e-39, 1.1754942e-38, 0.0])
        x[2, 0], x[2, 1] = 3.0e38, 1e-30  # the block's scale from a huge value
        x[3, 0], x[3, 3], x[4, 2] = math.inf, -math.inf, math.nan
        x[5, 7] = -0.0
    return x


@pytest.mark.parametrize("fmt", FORMATS)
def test_nearest_equals_eager_bit_for_bit(fmt: str) -> None:
    f = parse_format(fmt)
    # 50 columns: blocks of 32 and 16 end short; nvfp4<t>'s tensor scale is NaN with a NaN
    for x in (_values(7, 50, specials="<t>" not in fmt), _values(3, 40, specials=False)):
        eager = quantize(x, f, "nearest", kernels="eager")
        assert _same(quantize_fused(x, f, "nearest", None, "triton"), eager), fmt
    one_d = _values(1, 37, specials=False).reshape(37)  # int<B>: a scale per element
    eager = quantize(one_d, f, "nearest", kernels="eager")
    assert _same(quantize_fused(one_d, f, "nearest", None, "triton"), eager), fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_stochastic_equals_numba_bit_for_bit(fmt: str) -> None:
    f = parse_format(fmt)
    x = _values(9, 300, specials="<t>" not in fmt)  # two tiles of 2048
    a = quantize_fused(x, f, "stochastic", torch.Generator().manual_seed(3), "numba")
    b = quantize_fused(x, f, "stochastic", torch.Generator().manual_seed(3), "triton")
    assert _same(a, b), fmt


def _repeated(cols: int, rows: int = 64) -> torch.Tensor:
    """One row of magnitudes 2^-6..2^3 repeated ``rows`` times: every row has the same
    blocks and scales, so each column is ``rows`` draws of one value per call."""
    g = torch.Generator().manual_seed(2)
    row = torch.exp2(torch.rand(cols, generator=g) * 9.0 - 6.0)
    row = row * torch.where(torch.rand(cols, generator=g) < 0.5, -1.0, 1.0)
    return row.expand(rows, cols).contiguous()


def _floor_and_step(x: torch.Tensor, fmt) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    """(down, up, p) per element: the two grid points around x as the kernels compute them
    (floor(y/Δ)·Δ·up in the element's units y, eager scales) and P(up) = frac(y/Δ)."""
    y, _, scale, restore = fmt.to_element(x)
    delta, lo, hi = fmt.element._grid(y)
    units = torch.clamp(y, lo, hi) / delta
    fl = torch.floor(units)
    down = restore(fl * delta * scale)
    up = restore((fl + 1) * delta * scale)
    return down, up, restore((units - fl).double())


@pytest.mark.parametrize("fmt", ["mx<fp8_e4m3>", "mx<fp4_e2m1,16>", "nvfp4", "int<4,g32>"])
def test_stochastic_rounding_unbiased_with_variance_delta(fmt: str) -> None:
    f = parse_format(fmt)
    x = _repeated(40)  # blocks of 32 (16) and a short one of 8
    down, up, p = _floor_and_step(x, f)
    gen = torch.Generator().manual_seed(4)
    draws = torch.stack([quantize_fused(x, f, "stochastic", gen, "triton") for _ in range(30)])
    assert bool(((draws == down) | (draws == up)).all()), "a draw off the two grid points"
    n = draws.shape[0] * draws.shape[1]
    step = (up - down)[0].double()
    q = draws.double().reshape(n, -1)
    mean_law = down[0].double() + p[0] * step
    var_law = p[0] * (1 - p[0]) * step**2  # δ(Δ - δ)
    se_mean = torch.sqrt(var_law / n)
    assert bool(((q.mean(0) - mean_law).abs() <= Z * se_mean + 1e-12).all())
    # the sample variance of a two-point law: its MCSE from the fourth central moment
    m4 = var_law * step**2 * (1 - 3 * p[0] + 3 * p[0] ** 2)
    se_var = torch.sqrt((m4 - var_law**2).clamp(min=0) / n)
    assert bool(((q.var(0) - var_law).abs() <= Z * se_var + 1e-12).all())


def _vc_variance(mu: torch.Tensor, var: float, fmt):  # type: ignore[no-untyped-def]
    """(the variance Q_vc delivers, where it is the law): in the element's units (scale from
    the block's max |μ| + 4·sqrt(v)) with Δ the element's grid step at |m| + 4·sqrt(w), w =
    v·into²: w when w > Δ²/4, else max(w, δ(Δ - δ)); times the scale squared. The law holds
    where the reach |m| + 4·sqrt(w) is in the element's range (MX's floor rule lets a block's
    largest μ saturate: its mean is then the clamped value)."""
    sd = math.sqrt(var)
    m, into, scale, restore = fmt.to_element(mu, reach=mu.abs() + 4 * sd)
    w = fmt.variance_into_element(torch.tensor(var), into).double()
    delta = fmt.element._grid(m.abs() + 4 * w.float().sqrt())[0]
    delta = torch.as_tensor(delta, dtype=torch.float64)
    frac = m.double() / delta - torch.floor(m.double() / delta)
    v_s = frac * (1 - frac) * delta**2
    law = torch.where(w > delta**2 / 4, w, torch.maximum(w, v_s))
    inside = m.abs() + 4 * w.float().sqrt() <= fmt.element.max_value
    return restore((law * scale.double() ** 2).expand(m.shape)), restore(inside)


@pytest.mark.parametrize(
    ("fmt", "var"), [("mx<fp8_e4m3>", 1e-3), ("nvfp4", 4e-3), ("int<6,g16>", 2e-3),
                     ("mx<int8>", 1e-4)],
)  # fmt: skip
def test_vc_mean_and_variance(fmt: str, var: float) -> None:
    f = parse_format(fmt)
    mu = _repeated(24).mul_(0.25)
    law, inside = (t[0] for t in _vc_variance(mu, var, f))
    assert int(inside.sum()) >= mu.shape[1] // 2
    gen = torch.Generator().manual_seed(5)
    draws = torch.stack([vc_quantize_fused(mu, var, f, gen, "triton") for _ in range(30)])
    q = draws.double().reshape(-1, mu.shape[1])
    n = q.shape[0]
    dev = q - mu[0].double()
    assert bool((dev.mean(0).abs() <= Z * torch.sqrt(law / n))[inside].all())
    s2 = dev.var(0)
    m4 = ((dev - dev.mean(0)) ** 4).mean(0)
    se_var = torch.sqrt((m4 - s2**2).clamp(min=0) / n)
    assert bool(((s2 - law).abs() <= Z * se_var + 1e-6 * law)[inside].all())


def test_has_fused_on_cuda() -> None:
    for fmt in FORMATS:
        assert has_fused(parse_format(fmt), "cuda"), fmt
        assert has_fused(parse_format(fmt), "cuda", "vc"), fmt
