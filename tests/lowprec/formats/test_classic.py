"""Known answers for the number formats (ALGORITHMS.md §1): strings, bits, ranges, grids."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from lowprec import FP32, BlockFloat, FixedPoint, SmallFloat, parse_format
from lowprec.formats import exponent_of, pow2
from tests.pyrun import stdout_lines

REPO = Path(__file__).resolve().parents[3]

CANONICAL = [
    "fixed<8,3>",
    "fixed<8,8>",
    "fixed<2,0>",
    "fixed<32,30>",
    "block<8>",
    "block<8,32>",
    "block<4,1>",
    "float<5,2>",
    "float<5,10>",
    "float<8,7>",
    "float<8,23>",
    "float<2,0>",
    "fp32",
]


@pytest.mark.parametrize("text", CANONICAL)
def test_str_round_trip(text: str) -> None:
    fmt = parse_format(text)
    assert str(fmt) == text
    assert parse_format(str(fmt)) == fmt
    assert parse_format(fmt) is fmt
    hash(fmt)  # frozen: usable as a dict key


def test_parse_builds_the_right_classes() -> None:
    assert parse_format("fixed<8,3>") == FixedPoint(8, 3)
    assert parse_format("block<8>") == BlockFloat(8)
    assert parse_format("block<8,32>") == BlockFloat(8, 32)
    assert parse_format("float<5,2>") == SmallFloat(5, 2)
    assert parse_format("fp32") == FP32()
    assert parse_format(" Fixed< 8, 3 >") == FixedPoint(8, 3)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("fixed<8>", "two parameters"),
        ("float<9,30>", "exponent bits"),
        ("float<8,24>", "mantissa bits"),
        ("float<1,3>", "exponent bits"),
        ("fixed<0,3>", "word length"),
        ("fixed<33,3>", "word length"),
        ("fixed<8,-1>", "fractional bits"),
        ("fixed<8,150>", "2^-149"),
        ("fixd<8,3>", "unknown family 'fixd'"),
        ("block<8,0>", "block size"),
        ("block<8,4,2>", "block<wl>"),
        ("float<5>", "two parameters"),
        ("fixed<8,a>", "integers"),
        ("fp32<8>", "no parameters"),
        ("fixed<8,3", "does not parse"),
        ("", "does not parse"),
    ],
)
def test_parse_errors_name_the_string_and_the_problem(text: str, why: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_format(text)
    assert repr(text) in str(err.value)
    assert why in str(err.value)


def test_bits() -> None:
    assert parse_format("fixed<8,3>").bits == 8
    assert parse_format("float<5,2>").bits == 8
    assert parse_format("float<8,7>").bits == 16
    assert parse_format("block<8,32>").bits == 8.25
    assert parse_format("block<8>").bits == 8
    assert parse_format("fp32").bits == 32
    # dim-0 blocks: one 8-bit exponent per row
    assert parse_format("block<8>").bits_for((10, 100)) == pytest.approx(8 + 8 / 100)
    assert parse_format("block<8>").bits_for((64, 3, 3, 3)) == pytest.approx(8 + 8 / 27)
    assert parse_format("block<8>").bits_for((5,)) == 16  # 1-D: one exponent per element
    # k-blocks: the last run is padded, so (4, 40) with k = 32 holds 4·2 blocks for 160 values
    assert parse_format("block<8,32>").bits_for((4, 40)) == pytest.approx(8 + 8 * 8 / 160)
    assert parse_format("block<8,32>").bits_for((4, 64)) == 8.25
    assert parse_format("fixed<8,3>").bits_for((4, 40)) == 8


def test_fixed_point_range_and_grid() -> None:
    fmt = parse_format("fixed<8,3>")
    assert fmt.delta == 0.125
    assert fmt.max_value == 16 - 0.125
    assert fmt.min_value == -16
    half = parse_format("fixed<8,8>")  # [-0.5, 0.5)
    assert (half.min_value, half.max_value) == (-0.5, 0.5 - 2**-8)
    x = torch.linspace(-20, 20, 1001)
    assert torch.equal(fmt.spacing(x), torch.full_like(x, 0.125))
    lo, hi = fmt.bounds(x)
    assert torch.equal(lo, torch.full_like(x, -16.0)) and torch.equal(
        hi, torch.full_like(x, 15.875)
    )
    # wide words: the range end is the float32 at or below 2^(wl-fl-1) - Δ, still on the grid
    wide = parse_format("fixed<32,30>")
    assert wide.max_value == 2 - 2**-23
    assert wide.max_value <= 2 - 2**-30


def test_small_float_constants_match_torch() -> None:
    half, bf16, e5m2 = (parse_format(s) for s in ("float<5,10>", "float<8,7>", "float<5,2>"))
    assert half.max_value == torch.finfo(torch.float16).max == 65504
    assert half.min_subnormal == 2**-24
    assert (half.emin, half.emax, half.bias) == (-14, 15, 15)
    assert bf16.max_value == torch.finfo(torch.bfloat16).max
    assert e5m2.max_value == torch.finfo(torch.float8_e5m2).max == 57344
    x = torch.tensor([1.0, 1.5, 2.0, -3.0, 2**-14, 2**-20, 0.0, 65504.0, 1e9])
    expected = torch.tensor([2**-10, 2**-10, 2**-9, 2**-9, 2**-24, 2**-24, 2**-24, 32, 32])
    assert torch.equal(half.spacing(x), expected)


def test_block_spacing_per_row_and_per_k_values() -> None:
    x = torch.tensor([[0.3, -1.5, 0.1], [100.0, 3.0, -7.0], [0.0, 0.0, 0.0]])
    fmt = parse_format("block<8>")
    # row maxima 1.5, 100, 0 -> e = 0, 6; Δ = 2^(e + 2 - 8)
    delta = fmt.spacing(x)
    assert torch.equal(delta[0], torch.full((3,), 2.0**-6))
    assert torch.equal(delta[1], torch.full((3,), 2.0**0))
    assert fmt.max_value == 2 - 2**-6  # relative: a block with exponent 0
    _, hi = fmt.bounds(x)
    assert hi[1, 0] == 127.0 and hi[0, 0] == 127 * 2**-6
    kfmt = parse_format("block<4,2>")
    y = torch.tensor([[1.0, 0.25, 8.0, 0.5, 0.1]])  # blocks [1, .25], [8, .5], [.1 + pad]
    assert torch.equal(kfmt.spacing(y), torch.tensor([[0.25, 0.25, 2.0, 2.0, 2.0**-6]]))
    assert torch.equal(kfmt.block_max(y), torch.tensor([[1.0, 1.0, 8.0, 8.0, 0.1]]))
    # float32 limit: block exponents stop at -126 (documented), so a block of 2^-130 uses
    # Δ = 2^(-126+2-8); the 2^-149 floor on Δ only matters for words over 25 bits
    assert fmt.spacing(torch.tensor([[2.0**-130]])).item() == 2.0**-132
    assert parse_format("block<30>").spacing(torch.tensor([2.0**-130])).item() == 2.0**-149


def test_fp32_is_identity() -> None:
    fmt = parse_format("fp32")
    assert fmt.is_identity and not parse_format("fixed<8,3>").is_identity
    assert fmt.max_value == torch.finfo(torch.float32).max


def test_pow2_is_exact_over_the_float32_range() -> None:
    k = torch.arange(-149, 128)
    expected = torch.tensor([math.ldexp(1.0, int(i)) for i in k], dtype=torch.float64)
    assert torch.equal(pow2(k).double(), expected)


def test_exponent_of_normal_numbers() -> None:
    x = torch.tensor([1.0, 1.99, 2.0, 0.75, -3.0, 2**-126, 2**127])
    assert exponent_of(x).tolist() == [0, 0, 1, -1, 1, -126, 127]


@pytest.mark.parametrize("text", ["fixed<26,0>", "fixed<32,0>", "fixed<32,5>", "block<32>"])
def test_wide_range_ends_are_the_float32_at_or_below_the_exact_value(text: str) -> None:
    """Above 24 significant bits the range end 2^(wl-fl-1) - Δ (block: 2^(wl-1) - 1 units) is
    not a float32: the end is the float32 just below it (computed without numpy or torch)."""
    fmt = parse_format(text)
    exact = (
        math.ldexp(1.0, fmt.wl - fmt.fl - 1) - fmt.delta
        if isinstance(fmt, FixedPoint)
        else math.ldexp(1.0, fmt.wl - 1) - 1.0
    )
    end = fmt.max_value if isinstance(fmt, FixedPoint) else fmt.max_units
    as32 = torch.tensor(end, dtype=torch.float32)
    assert as32.item() == end < exact  # a float32, below the exact value
    assert torch.nextafter(as32, torch.tensor(math.inf)).item() > exact  # and the nearest one


def test_formats_and_precision_import_no_torch() -> None:
    """``lowprec.formats`` and ``lowprec.precision`` parse formats and check a precision
    combination in a process without torch (or numpy); the lazy package still gives every
    exported name, and ``lowprec.quantize`` stays the function even when the submodule of the
    same name is imported first."""
    code = """
import sys
import lowprec.formats, lowprec.precision
from lowprec import FP32, PrecisionSpec, parse_format
assert str(parse_format("Fixed<8, 3>")) == "fixed<8,3>"
for text in ("fixed<99,3>", "float<9,2>", "blok<8>"):
    try:
        parse_format(text)
    except ValueError:
        pass
    else:
        raise AssertionError(text)
try:
    PrecisionSpec(weight=FP32(), accumulator="vc")
except ValueError as err:
    print(err)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "numpy")))
from lowprec.quantize import block_grid
import lowprec
from lowprec import quantize
module = sys.modules["lowprec.quantize"]
print(callable(quantize) and lowprec.quantize is quantize is module.quantize)
print(sorted(lowprec.__all__) == sorted(lowprec._EXPORTS))
print(all(getattr(lowprec, name) is not None for name in lowprec.__all__))
"""
    out = stdout_lines(code)
    assert out == [
        "key 'accumulator': 'vc' keeps the weights in low precision, but the weight format is "
        "fp32; choose a low-precision `format` with W in `tensors` (or `weight_format`), or "
        "accumulator 'full'",
        "[]",
        "True",
        "True",
        "True",
    ]


@pytest.mark.parametrize(
    ("text", "word_bits"),
    [
        ("fp32", 32), ("fixed<8,3>", 8), ("block<6>", 6), ("block<8,32>", 8), ("float<4,3>", 8),
        ("fp8_e5m2", 8), ("fp6_e3m2", 6), ("mx<fp4_e2m1>", 4), ("mx<fp6_e2m3,16>", 6),
        ("mx<int8>", 8), ("nvfp4", 4), ("nvfp4<t>", 4), ("int<4,g32>", 4), ("int<3>", 3),
    ],
)  # fmt: skip
def test_word_bits_count_one_stored_value_without_its_scales(text: str, word_bits: int) -> None:
    """The metric ``bits`` (a trial's weight format's word length): shared scales are counted
    by ``bits``/``bits_for``, never here."""
    assert parse_format(text).word_bits == word_bits
