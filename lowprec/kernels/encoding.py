"""The fused kernels' encoding: the integer codes of format kinds, scale rules and accumulators,
and the packing of a :class:`~lowprec.formats.Format` into the constants a kernel takes.

Kernels (numba and Triton) take no strings or objects: a format is a kind and four float64
constants, ``format_params(fmt) = (kind, (c0, c1, c2, c3))`` (ALGORITHMS.md §2 for the grids):

    FP32   0  (-)                              the identity
    FIXED  1  (Δ, lo, hi, 0)                   Δ = 2^-fl, range [lo, hi]
    BLOCK  2  (wl, max_units, 0, 0)            Δ = 2^(e + 2 - wl) from the block's max|x|
    FLOAT  3  (emin, emax, man, max_value)     Δ = 2^(clamp(e, emin, emax) - man); integer
                                               elements are emin = emax = 0, man = frac
    MX     4  the element's FLOAT constants    scale 2^(e - emax) per exponent group (the
                                               floor rule)
    INT    5  the element's FLOAT constants    scale amax/(2^(B-1) - 1) per group (steps)
    NVFP4  6  the element's FLOAT constants    an E4M3 scale per group, no per-tensor scale
                                               (steps)
    NVFP4T 7  the element's FLOAT constants    an E4M3 scale per group against the float32
                                               scale T of the group's tensor (steps: T per
                                               group in the step's scales array)
    MX_RCEIL 8  as MX                          the rule rceil: 2^ceil(log2(amax/max(E)))
    MX_EVEN  9  as MX                          the rule even: amax rounded to E's mantissa
                                               bits, then the floor rule

The quantizers take a scaled format as ``scaled_params(fmt) = (element, scale)``: the element's
FLOAT constants and (rule, a, b, 0) with the scale rule SCALE_MX (a = the element's emax),
SCALE_MX_RCEIL (b = max(E)), SCALE_MX_EVEN (a = emax, b = E's mantissa bits, 6 for int8),
SCALE_NVFP4 (a = the per-tensor scale T, 0 for none; b = 1/T, filled in per call) or
SCALE_INT (a = 2^(B-1) - 1). Triton takes the constants as three floats and three integers
(:func:`triton_format_args`). Accumulators (ALGORITHMS.md §5) are FULL, LOW, VC, the codes of
``lowprec.precision.ACCUMULATOR_CODES`` (which stays torch-free for the command line).

The steps' per-group scales (a float64 [groups, SCALES] array, lowprec/kernels/numba/step.py):
columns S_OLD, S_NEW, VAR_NEW (momentum rescaling: the old scale S, the new S', Var_v/S'²)
and T_G, T_W, T_M (the per-tensor scale T of an nvfp4<t> G, W or M, 0 for other formats).

Every kernel module and launcher reads these codes from here; nothing else spells them.
"""

from __future__ import annotations

import functools

from lowprec import formats
from lowprec.formats import (
    BlockFloat,
    FixedPoint,
    Format,
    IntElement,
    MXFormat,
    ScaledFormat,
    ScaledInt,
    SmallFloat,
)
from lowprec.precision import ACCUMULATOR_CODES

__all__ = [
    "ACCUMULATOR_CODES",
    "BLOCK",
    "FIXED",
    "FLOAT",
    "FP32",
    "FULL",
    "INT",
    "LOW",
    "MX",
    "MX_EVEN",
    "MX_RCEIL",
    "NVFP4",
    "NVFP4T",
    "SCALES",
    "SCALE_INT",
    "SCALE_MX",
    "SCALE_MX_EVEN",
    "SCALE_MX_RCEIL",
    "SCALE_NVFP4",
    "S_NEW",
    "S_OLD",
    "T_G",
    "T_M",
    "T_W",
    "VAR_NEW",
    "VC",
    "Consts",
    "element_params",
    "format_params",
    "grouped",
    "scaled_params",
    "triton_format_args",
]

#: format kinds (module docstring)
FP32, FIXED, BLOCK, FLOAT, MX, INT, NVFP4, NVFP4T = 0, 1, 2, 3, 4, 5, 6, 7
MX_RCEIL, MX_EVEN = 8, 9
#: the quantizers' scale rules of scaled formats
SCALE_MX, SCALE_NVFP4, SCALE_INT, SCALE_MX_RCEIL, SCALE_MX_EVEN = 1, 2, 3, 4, 5
#: an MX format's kind and scale rule by its rule's name
_MX_RULES = {
    "floor": (MX, SCALE_MX),
    "rceil": (MX_RCEIL, SCALE_MX_RCEIL),
    "even": (MX_EVEN, SCALE_MX_EVEN),
}
#: accumulators
FULL, LOW, VC = ACCUMULATOR_CODES["full"], ACCUMULATOR_CODES["low"], ACCUMULATOR_CODES["vc"]
#: the columns of the steps' per-group scales (module docstring), and their number
S_OLD, S_NEW, VAR_NEW, T_G, T_W, T_M = 0, 1, 2, 3, 4, 5
SCALES = 6

#: a kind's four constants, float64 (one numba signature for every format)
Consts = tuple[float, float, float, float]
_NONE: Consts = (0.0, 0.0, 0.0, 0.0)


def grouped(kind: int) -> bool:
    """Whether a kind's grid needs its exponent group's maximum: block, mx, int, nvfp4 (one-
    and two-level)."""
    return kind == BLOCK or kind >= MX


@functools.lru_cache(maxsize=256)
def format_params(fmt: Format) -> tuple[int, Consts]:
    """(kind, constants) of ``fmt`` (module docstring), kept per format: a call per quantized
    tensor, and the constants cost more Python time (float32 conversions) than a small
    tensor's kernel. ``ValueError`` for a format no kernel takes this way."""
    if isinstance(fmt, formats.FP32) or fmt.is_identity:
        return FP32, _NONE
    if isinstance(fmt, FixedPoint):
        return FIXED, (float(fmt.delta), float(fmt.min_value), float(fmt.max_value), 0.0)
    if isinstance(fmt, BlockFloat):
        return BLOCK, (float(fmt.wl), float(fmt.max_units), 0.0, 0.0)
    if isinstance(fmt, SmallFloat | IntElement):  # an integer: one binade, Δ = 2^-frac
        return FLOAT, element_params(fmt)
    if isinstance(fmt, MXFormat):
        # the element as a float grid, the scale per exponent group (the rule's kind: the
        # rules read max(E), emax and E's mantissa bits from these constants); the quantizers
        # take scaled formats by scaled_params
        return _MX_RULES[fmt.scale_rule][0], element_params(fmt.element)
    if isinstance(fmt, ScaledInt):  # scales per group, not powers of 2
        return INT, element_params(fmt.element)
    if isinstance(fmt, formats.NVFP4):
        # nvfp4<t>: the per-tensor scale T is the step's to make (from the tensor's values)
        return (NVFP4T if fmt.per_tensor else NVFP4), element_params(fmt.element)
    raise ValueError(f"no fused kernel for format {fmt}")


def element_params(fmt: Format) -> Consts:
    """(emin, emax, man, max_value) of a float element; an integer element with Δ = 2^-frac is
    emin = emax = 0, man = frac."""
    if isinstance(fmt, SmallFloat):
        return float(fmt.emin), float(fmt.emax), float(fmt.man), float(fmt.max_value)
    if isinstance(fmt, IntElement):
        return 0.0, 0.0, float(fmt.frac), float(fmt.max_value)
    raise ValueError(f"no fused kernel for element {fmt}")


def scaled_params(fmt: ScaledFormat) -> tuple[Consts, Consts] | None:
    """(element constants, scale constants) of a scaled format for the fused quantizers, or
    None when it has none. The per-tensor scale of ``nvfp4<t>`` is filled in per call."""
    elem = element_params(fmt.element)
    if elem[0] - elem[2] < -126:  # the kernels take 1/Δ of the element as a float32
        return None
    if isinstance(fmt, MXFormat):
        rule = _MX_RULES[fmt.scale_rule][1]
        if rule == SCALE_MX_RCEIL:
            return elem, (float(rule), float(fmt.emax), float(fmt.element.max_value), 0.0)
        # even: E's mantissa bits (MXINT8's element: 6, as the eager rule)
        return elem, (float(rule), float(fmt.emax), elem[2], 0.0)
    if isinstance(fmt, formats.NVFP4):
        return elem, (float(SCALE_NVFP4), 0.0, 0.0, 0.0)
    if isinstance(fmt, ScaledInt):
        return elem, (float(SCALE_INT), float(2 ** (fmt.nbits - 1) - 1), 0.0, 0.0)
    return None


def triton_format_args(kind: int, consts: Consts) -> tuple[float, float, float, int, int, int]:
    """Triton's tuple ``f`` of a (kind, constants) pair: three float32 values and three int32
    ones: FIXED (Δ, lo, hi, -, -, -), BLOCK (max_units, -, -, wl, -, -), FLOAT (max_value,
    -, -, emin, emax, man); zeros for the others (no Triton kernel reads them)."""
    c = consts
    if kind == FIXED:
        return float(c[0]), float(c[1]), float(c[2]), 0, 0, 0
    if kind == BLOCK:
        return float(c[1]), 0.0, 0.0, int(c[0]), 0, 0
    if kind == FLOAT:
        return float(c[3]), 0.0, 0.0, int(c[0]), int(c[1]), int(c[2])
    return 0.0, 0.0, 0.0, 0, 0, 0
