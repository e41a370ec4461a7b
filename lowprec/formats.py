"""Number formats (ALGORITHMS.md §1): immutable values with a canonical string form.

==================  ===============  ========================================================
string              class            grid and range
==================  ===============  ========================================================
``fixed<wl,fl>``    FixedPoint       Δ = 2^-fl; range [-2^(wl-fl-1), 2^(wl-fl-1) - Δ]
``block<wl>``       BlockFloat       one exponent per slice along dim 0;
``block<wl,k>``                      or per run of k values along the last dim (last run padded);
                                     e = floor(log2 max|x|) over the block, Δ = 2^(e+2-wl),
                                     range ±(2^(wl-1) - 1)·Δ; an all-zero block stays zero
``float<exp,man>``  SmallFloat       IEEE-like: bias 2^(exp-1) - 1, subnormals on 2^(emin-man),
                                     saturation at the largest normal (no inf)
``fp32``            FP32             identity
``fp8_e4m3`` ...    ElementFloat     an OCP element (E4M3FN, E5M2, FP6 E2M3/E3M2, FP4 E2M1):
                                     a SmallFloat with OCP's emax and largest value
``mx<E>``           MXFormat         OCP microscaling: K (default 32) values along the last dim
``mx<E,K>``                          share a power-of-two scale 2^s, s = floor(log2 amax) -
                                     emax(E) clamped to [-127, 127]; elements E or int8
``nvfp4``           NVFP4            16 fp4_e2m1 values share an E4M3 scale (``nvfp4<t>``: and
``nvfp4<t>``                         a float32 scale per tensor)
``int<B>``          ScaledInt        symmetric integers, float32 scale amax/(2^(B-1) - 1) per
``int<B,gK>``                        row (dim 0) or per group of K along the last dim
==================  ===============  ========================================================

The last three are scaled formats (:class:`ScaledFormat`): a tensor is mapped onto an element
format by a scale per block (``to_element``), rounded there, and multiplied back.

Every format exposes what the quantizers need: ``spacing(x)`` (the grid step Δ of every element
of ``x``), ``bounds(x)`` (the range, element-wise), ``max_value``, ``bits`` and ``bits_for``.
The papers are low-precision SGLD (Zhang, Wilson, De Sa, ICML 2022) and low-precision SGHMC
(Wang, Chen, Song, Zhang, TMLR 2024), whose formats follow qtorch.

This module imports no torch (and no numpy) at its top: parsing a format string and its range
checks are plain Python, so that a bad format is refused before torch loads; the
methods that compute on tensors import torch when they run.
"""

from __future__ import annotations

import functools
import math
import re
import struct
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "ELEMENTS",
    "FP32",
    "NVFP4",
    "BlockFloat",
    "ElementFloat",
    "FixedPoint",
    "Format",
    "MXFormat",
    "ScaledFormat",
    "ScaledInt",
    "SmallFloat",
    "exponent_of",
    "parse_format",
    "pow2",
]

#: float32 limits: 2^-149 is the smallest positive (subnormal) float32, 2^127 the largest power.
_POW2_MIN = -149
_POW2_MAX = 127
_FLOAT32_MAX = math.ldexp(2.0 - math.ldexp(1.0, -23), 127)  # (2 - 2^-23)·2^127
_TINY = math.ldexp(1.0, -126)  # the smallest normal float32
#: bits of one shared exponent (a float32 exponent, as in the OCP microscaling layout)
SHARED_EXPONENT_BITS = 8


def _float32_toward_zero(value: float) -> float:
    """The float32 nearest to ``value`` that is not larger in magnitude (exact when it fits).

    ``struct`` rounds to the nearest float32; when that is larger in magnitude, one less in the
    bit pattern (sign and magnitude) is the next float32 toward zero."""
    (bits,) = struct.unpack("<I", struct.pack("<f", value))
    if abs(struct.unpack("<f", struct.pack("<I", bits))[0]) > abs(value):
        bits -= 1
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def pow2(k: torch.Tensor) -> torch.Tensor:
    """2^k as float32, exact, for an integer tensor ``k`` (clamped to [-149, 127]).

    Built from the bit pattern: a normal power (k ≥ -126) has biased exponent k + 127 and a zero
    mantissa; a subnormal one (k < -126) is the single mantissa bit k + 149.
    """
    import torch

    k = k.to(torch.int32).clamp(_POW2_MIN, _POW2_MAX)
    normal = (k + 127).clamp(min=1) << 23
    subnormal = torch.ones_like(k) << (k + 149).clamp(0, 22)
    return torch.where(k >= -126, normal, subnormal).view(torch.float32)


def exponent_of(x: torch.Tensor) -> torch.Tensor:
    """floor(log2 |x|) of float32 ``x`` from its exponent field, as int32.

    Exact for normal numbers; subnormals and zero give -127, inf and NaN give 128 (callers clamp
    to their own exponent range, which is all they need).
    """
    import torch

    return ((x.view(torch.int32) >> 23) & 0xFF) - 127


class Format(ABC):
    """A number format: a grid of representable values and a range.

    Subclasses are frozen dataclasses; ``str(fmt)`` is the canonical string that
    :func:`parse_format` inverts.
    """

    @property
    @abstractmethod
    def bits(self) -> float:
        """Storage bits per value, a shared exponent amortised over its block (ALGORITHMS.md §1)."""

    @property
    def word_bits(self) -> int:
        """Bits of one stored value, shared scales not counted (the metric ``bits``): fixed and
        block ``wl``, float ``1 + exp + man``, a scaled format its element's, fp32 32."""
        return int(self.bits)

    @property
    def is_identity(self) -> bool:
        """True for ``fp32``: quantizing is the identity."""
        return False

    @property
    @abstractmethod
    def max_value(self) -> float:
        """The largest representable magnitude (for block formats relative to the block)."""

    def bits_for(self, shape: Sequence[int] | torch.Size) -> float:
        """Storage bits per value of a tensor of ``shape`` (differs from ``bits`` for blocks)."""
        return self.bits

    @abstractmethod
    def _grid(self, x: torch.Tensor) -> tuple[torch.Tensor | float, ...]:
        """(Δ, lo, hi) for float32 ``x``, each a float or a tensor broadcastable to ``x``."""

    def _prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, Any, Any, Any, Any]:
        """(x laid out for rounding, Δ, lo, hi, restore): Δ, lo and hi broadcast against the
        laid-out x; ``restore`` (None for the identity) takes a laid-out result back to ``x``'s
        shape. Block formats lay k-blocks out as (..., blocks, k) so Δ stays one per block."""
        return (x, *self._grid(x), None)

    def spacing(self, x: torch.Tensor) -> torch.Tensor:
        """Δ, the grid step at every element of ``x`` (a float32 tensor of ``x``'s shape).

        Nearest and stochastic rounding of that element move it to a multiple of this Δ
        (fixed: 2^-fl; block: from the block's exponent; float: from the element's binade,
        max(e, emin) - man; below a power of two the float grid is twice as fine, and those
        points are multiples of Δ too). ``fp32`` gives 0.
        """
        delta = self._grid(_as_float32(x))[0]
        return _full(delta, x)

    def bounds(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(lo, hi): the smallest and largest representable value for every element of ``x``."""
        _, lo, hi = self._grid(_as_float32(x))
        return _full(lo, x), _full(hi, x)


def _as_float32(x: torch.Tensor) -> torch.Tensor:
    import torch

    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"expected a floating-point torch.Tensor, got {type(x).__name__}")
    return x if x.dtype == torch.float32 else x.float()


def _full(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(torch.float32).expand(like.shape)
    return torch.full((), value, dtype=torch.float32, device=like.device).expand(like.shape)


@dataclass(frozen=True)
class FixedPoint(Format):
    """Signed fixed point ``fixed<wl,fl>``: word length ``wl``, ``fl`` fractional bits.

    Grid k·Δ with Δ = 2^-fl and integer k in [-2^(wl-1), 2^(wl-1) - 1], i.e. the range
    [-2^(wl-fl-1), 2^(wl-fl-1) - Δ]. ``fl`` may reach or pass ``wl`` (``fixed<8,8>`` spans
    [-0.5, 0.5)).
    """

    wl: int
    fl: int

    def __post_init__(self) -> None:
        if not 2 <= self.wl <= 32:
            raise ValueError(f"format {self}: word length must be in 2..32, got {self.wl}")
        if self.fl < 0:
            raise ValueError(f"format {self}: fractional bits must be >= 0, got {self.fl}")
        if self.fl > -_POW2_MIN:
            raise ValueError(
                f"format {self}: step 2^-{self.fl} is below float32's smallest value 2^-149; "
                f"use at most {-_POW2_MIN} fractional bits"
            )
        if self.wl - self.fl - 1 > _POW2_MAX:
            raise ValueError(f"format {self}: range 2^{self.wl - self.fl - 1} overflows float32")

    def __str__(self) -> str:
        return f"fixed<{self.wl},{self.fl}>"

    @property
    def bits(self) -> float:
        return float(self.wl)

    @property
    def delta(self) -> float:
        """Δ = 2^-fl."""
        return math.ldexp(1.0, -self.fl)

    @property
    def max_value(self) -> float:
        """2^(wl-fl-1) - Δ (the float32 at or below it when wl > 25)."""
        return _float32_toward_zero(math.ldexp(1.0, self.wl - self.fl - 1) - self.delta)

    @property
    def min_value(self) -> float:
        """-2^(wl-fl-1)."""
        return -math.ldexp(1.0, self.wl - self.fl - 1)

    def _grid(self, x: torch.Tensor) -> tuple[float, float, float]:
        return self.delta, self.min_value, self.max_value


@dataclass(frozen=True)
class BlockFloat(Format):
    """Block floating point ``block<wl>`` (one exponent per slice along dim 0) or
    ``block<wl,k>`` (one exponent per run of ``k`` consecutive values along the last dim).

    Per block: e = floor(log2 max|x|), Δ = 2^(e+2-wl), range ±(2^(wl-1) - 1)·Δ, so the block's
    largest magnitude keeps wl - 1 significant bits. Dim-0 blocks are rows of a matrix, output
    channels of a conv weight, samples of an activation batch and single elements of a 1-D
    tensor; a 0-d tensor is one block. An all-zero block stays zero. Two float32 limits: a
    block's exponent is at least -126 (float32's smallest normal exponent; a block whose
    largest magnitude is below 2^-126 ≈ 1.2e-38 uses e = -126, a coarser grid), and a NaN in a
    block makes the whole block NaN (its shared exponent is undefined); ±inf saturate.

    ``max_value`` is relative to the block: the largest magnitude of a block with exponent
    e = 0, (2^(wl-1) - 1)·2^(2-wl) = 2 - 2^(2-wl); a block with exponent e reaches
    ``max_value``·2^e.
    """

    wl: int
    block_size: int | None = None

    def __post_init__(self) -> None:
        if not 2 <= self.wl <= 32:
            raise ValueError(f"format {self}: word length must be in 2..32, got {self.wl}")
        if self.block_size is not None and self.block_size < 1:
            raise ValueError(f"format {self}: block size must be >= 1, got {self.block_size}")

    def __str__(self) -> str:
        if self.block_size is None:
            return f"block<{self.wl}>"
        return f"block<{self.wl},{self.block_size}>"

    @property
    def word_bits(self) -> int:
        return int(self.wl)

    @property
    def bits(self) -> float:
        """wl + 8/k for k-blocks; wl for dim-0 blocks (their exponent amortisation depends on the
        shape: see :meth:`bits_for`)."""
        if self.block_size is None:
            return float(self.wl)
        return self.wl + SHARED_EXPONENT_BITS / self.block_size

    def bits_for(self, shape: Sequence[int] | torch.Size) -> float:
        """wl + 8·(number of blocks)/(number of values) for a tensor of ``shape``."""
        shape = tuple(int(s) for s in shape)
        n = math.prod(shape)
        if n == 0:
            return float(self.wl)
        if self.block_size is None:
            blocks = shape[0] if shape else 1
        else:
            last = shape[-1] if shape else 1
            blocks = (n // last) * math.ceil(last / self.block_size)
        return self.wl + SHARED_EXPONENT_BITS * blocks / n

    @property
    def max_units(self) -> float:
        """2^(wl-1) - 1, the largest grid index (the float32 at or below it when wl > 25)."""
        return _float32_toward_zero(math.ldexp(1.0, self.wl - 1) - 1.0)

    @property
    def max_value(self) -> float:
        return self.max_units * math.ldexp(1.0, 2 - self.wl)

    def block_max(self, x: torch.Tensor) -> torch.Tensor:
        """max|x| over each block, for every element of ``x``."""
        m, blocked = self._block_max(x)
        return self._spread(m, x) if blocked else m.expand(x.shape)

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        """k-blocks laid out as (..., nb, k), the last run zero-padded (a view when k divides
        the last dim)."""
        import torch

        k, last = self.block_size, x.shape[-1]
        nb = -(-last // k)
        if nb * k != last:
            x = torch.nn.functional.pad(x, (0, nb * k - last))
        return x.reshape(*x.shape[:-1], nb, k)

    def _block_max(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """(per-block max|x|, blocked): shape (rows, 1, ..., 1) for dim-0 blocks, (..., nb, 1)
        for k-blocks (``blocked``; :meth:`_spread` takes it back to ``x``'s shape)."""
        import torch

        if x.dim() == 0:
            return x.abs(), False
        if self.block_size is None:
            m = torch.linalg.vector_norm(x.reshape(x.shape[0], -1), ord=math.inf, dim=1)
            return m.reshape((x.shape[0],) + (1,) * (x.dim() - 1)), False
        return torch.linalg.vector_norm(self._blocks(x), ord=math.inf, dim=-1, keepdim=True), True

    def _spread(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-k-block values (..., nb, 1) repeated over their block: ``x``'s shape."""
        k, last, nb = self.block_size, x.shape[-1], t.shape[-2]
        return t.expand(*x.shape[:-1], nb, k).reshape(*x.shape[:-1], nb * k)[..., :last]

    def _delta(self, m: torch.Tensor) -> torch.Tensor:
        """Δ = 2^(e+2-wl) with e = floor(log2 m), from the block maxima ``m``.

        2^e is m's exponent field with the mantissa cleared (m clamped to [2^-126, float32
        max] first, so e >= -126 and inf saturates); the product with 2^(2-wl) is exact.
        A NaN maximum gives Δ = inf, which makes its whole block NaN.
        """
        import torch

        top = m.clamp(_TINY, _FLOAT32_MAX).view(torch.int32) & 0x7F800000
        delta = top.view(torch.float32) * math.ldexp(1.0, 2 - self.wl)
        return delta.clamp_(min=math.ldexp(1.0, _POW2_MIN)) if self.wl > 25 else delta

    def _prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, Any, Any, Any, Any]:
        import torch

        if self.block_size is None or x.dim() == 0:
            return (x, *self._grid(x), None)
        shape, blocks = x.shape, self._blocks(x)
        delta = self._delta(torch.linalg.vector_norm(blocks, ord=math.inf, dim=-1, keepdim=True))
        hi = delta * self.max_units

        def restore(t: torch.Tensor) -> torch.Tensor:
            t = t.reshape(*shape[:-1], blocks.shape[-2] * blocks.shape[-1])
            return t if t.shape == shape else t[..., : shape[-1]].contiguous()

        return blocks, delta, -hi, hi, restore

    def _grid(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m, blocked = self._block_max(x)
        delta = self._delta(m)
        if blocked:
            delta = self._spread(delta, x)
        hi = delta * self.max_units
        return delta, -hi, hi


@dataclass(frozen=True)
class SmallFloat(Format):
    """IEEE-like small float ``float<exp,man>``: 1 sign, ``exp`` exponent, ``man`` mantissa bits.

    bias = 2^(exp-1) - 1, emin = 1 - bias, emax = bias (the all-ones exponent is not used: values
    saturate at the largest normal (2 - 2^-man)·2^emax instead of overflowing to inf).
    An element x with floor(log2|x|) = e has Δ = 2^(max(e, emin) - man); below 2^emin the grid is
    the subnormal one, 2^(emin-man). ``float<5,10>`` is IEEE half, ``float<8,7>`` bfloat16.
    """

    exp: int
    man: int

    def __post_init__(self) -> None:
        if not 2 <= self.exp <= 8:
            raise ValueError(
                f"format {self}: exponent bits must be in 2..8 (float32 has 8), got {self.exp}"
            )
        if not 0 <= self.man <= 23:
            raise ValueError(
                f"format {self}: mantissa bits must be in 0..23 (float32 has 23), got {self.man}"
            )

    def __str__(self) -> str:
        return f"float<{self.exp},{self.man}>"

    @property
    def bits(self) -> float:
        return float(1 + self.exp + self.man)

    @property
    def bias(self) -> int:
        return 2 ** (self.exp - 1) - 1

    @property
    def emin(self) -> int:
        return 1 - self.bias

    @property
    def emax(self) -> int:
        return self.bias

    @property
    def max_value(self) -> float:
        """(2 - 2^-man)·2^emax, the largest normal."""
        return math.ldexp(2.0 - math.ldexp(1.0, -self.man), self.emax)

    @property
    def min_subnormal(self) -> float:
        """2^(emin-man), the smallest positive value."""
        return math.ldexp(1.0, self.emin - self.man)

    def _grid(self, x: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        import torch

        # the exponent field of x itself; subnormal inputs (-127) and NaN (128) are clamped,
        # inf is clamped to emax (it saturates to max_value anyway)
        if self.emin - self.man >= -126:
            # every Δ is a normal float32: clamp x's exponent field to [emin, emax] and lower
            # it by man, all on the bit pattern (three elementwise kernels)
            field = x.view(torch.int32) & 0x7F800000
            field.clamp_((self.emin + 127) << 23, (self.emax + 127) << 23)
            delta = field.sub_(self.man << 23).view(torch.float32)
        else:  # subnormal steps (exp = 8): the general exact power of two
            delta = pow2(exponent_of(x).clamp(self.emin, self.emax) - self.man)
        return delta, -self.max_value, self.max_value


@dataclass(frozen=True)
class FP32(Format):
    """Full precision ``fp32``: quantization is the identity (Δ = 0, range ±float32 max)."""

    def __str__(self) -> str:
        return "fp32"

    @property
    def bits(self) -> float:
        return 32.0

    @property
    def is_identity(self) -> bool:
        return True

    @property
    def max_value(self) -> float:
        return _FLOAT32_MAX

    def _grid(self, x: torch.Tensor) -> tuple[float, float, float]:
        return 0.0, -_FLOAT32_MAX, _FLOAT32_MAX


# ------------------------------------------------------------------------------ formats of today's
# hardware (ALGORITHMS.md §11): OCP FP8/FP6/FP4 elements, OCP MX blocks, NVFP4, scaled integers

#: OCP element formats: name -> (exponent bits, mantissa bits, emax, largest value). E4M3 (the
#: FN variant) spends its all-ones exponent on normal values and has no inf, so its emax is
#: bias + 1 and its top code S.1111.111 is NaN (largest 1.75·2^8); the FP6/FP4 elements have no
#: special values at all (largest (2 - 2^-man)·2^(bias+1)); E5M2 is IEEE-like (emax = bias).
ELEMENTS: dict[str, tuple[int, int, int, float]] = {
    "fp8_e4m3": (4, 3, 8, 448.0),
    "fp8_e5m2": (5, 2, 15, 57344.0),
    "fp6_e2m3": (2, 3, 2, 7.5),
    "fp6_e3m2": (3, 2, 4, 28.0),
    "fp4_e2m1": (2, 1, 2, 6.0),
}
_ELEMENT_OF = {(e, m): name for name, (e, m, _, _) in ELEMENTS.items()}
#: MX scales and float32 per-tensor/per-group scales: bits counted per block
SCALE_BITS_E8M0 = 8
SCALE_BITS_E4M3 = 8
SCALE_BITS_FP32 = 32
_SCALE_RULES = ("floor", "rceil", "even")


@dataclass(frozen=True)
class ElementFloat(SmallFloat):
    """An OCP element format (OCP Microscaling v1.0, §5.3; OCP 8-bit FP): ``fp8_e4m3``,
    ``fp8_e5m2``, ``fp6_e2m3``, ``fp6_e3m2``, ``fp4_e2m1``.

    A :class:`SmallFloat` (bias 2^(exp-1) - 1, emin = 1 - bias, subnormals on 2^(emin-man)) whose
    emax and largest value are OCP's (:data:`ELEMENTS`). Conversion saturates: finite values and
    ±inf beyond the range go to ±max_value, NaN stays NaN (the quantizers clamp before rounding).
    Every quantizer, fused kernel and step that takes a ``float<exp,man>`` takes these too: the
    grid is the same function of (emin, emax, man, max_value).
    """

    def __post_init__(self) -> None:
        if (self.exp, self.man) not in _ELEMENT_OF:
            raise ValueError(
                f"format e{self.exp}m{self.man}: not an OCP element; expected one of "
                f"{', '.join(ELEMENTS)}"
            )

    def __str__(self) -> str:
        return _ELEMENT_OF[(self.exp, self.man)]

    @property
    def emax(self) -> int:
        return ELEMENTS[str(self)][2]

    @property
    def max_value(self) -> float:
        return ELEMENTS[str(self)][3]


def element(name: str) -> ElementFloat:
    """The :class:`ElementFloat` called ``name`` (a key of :data:`ELEMENTS`)."""
    exp, man, _, _ = ELEMENTS[name]
    return ElementFloat(exp, man)


@dataclass(frozen=True)
class IntElement(Format):
    """Symmetric integers ``q·Δ``, |q| <= 2^(bits-1) - 1, Δ = 2^-frac: the element of MXINT8
    (bits 8, frac 6: int8·2^-6, kept symmetric at ±127) and of ``int<B>`` (frac 0). Not a
    format string of its own: it lives inside a scaled format."""

    nbits: int
    frac: int = 0

    def __str__(self) -> str:
        return "int8" if (self.nbits, self.frac) == (8, 6) else f"int{self.nbits}"

    @property
    def bits(self) -> float:
        return float(self.nbits)

    @property
    def emax(self) -> int:
        """The exponent of the largest power of two on the grid below max: 0 for MXINT8."""
        return self.nbits - 2 - self.frac

    @property
    def max_units(self) -> float:
        return float(2 ** (self.nbits - 1) - 1)

    @property
    def delta(self) -> float:
        return math.ldexp(1.0, -self.frac)

    @property
    def max_value(self) -> float:
        return self.max_units * self.delta

    def _grid(self, x: torch.Tensor) -> tuple[float, float, float]:
        return self.delta, -self.max_value, self.max_value


MXINT8 = IntElement(8, 6)


def _blocks_of(x: torch.Tensor, k: int) -> tuple[torch.Tensor, Any]:
    """``x`` as (..., nb, k) runs along the last dim, the last run zero-padded, and the function
    that takes such a tensor back to ``x``'s shape (a 0-d ``x`` is one run of one value)."""
    import torch

    shape = x.shape
    if x.dim() == 0:
        return x.reshape(1, 1), lambda t: t.reshape(shape)
    last = shape[-1]
    nb = -(-last // k)
    if nb * k != last:
        x = torch.nn.functional.pad(x, (0, nb * k - last))
    blocks = x.reshape(*shape[:-1], nb, k)

    def restore(t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(*shape[:-1], nb * k)
        return t if t.shape == shape else t[..., :last].contiguous()

    return blocks, restore


def _rows_of(x: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """``x`` as (rows, 1, row length): one block per slice along dim 0 (0-d: one block)."""
    shape = x.shape
    rows = shape[0] if x.dim() else 1
    return x.reshape(rows, 1, -1), lambda t: t.reshape(shape)


def _blocks_for(shape: Sequence[int], k: int | None) -> tuple[int, int]:
    """(number of blocks, number of values) of a tensor of ``shape`` cut as the scaled formats
    cut it: runs of k along the last dim (the last shorter), or rows along dim 0 (k None)."""
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    if k is None:
        return (shape[0] if shape else 1), n
    last = shape[-1] if shape else 1
    return (n // last if last else 0) * math.ceil(last / k), n


class ScaledFormat(Format):
    """A format whose values are an element format times a scale per block (OCP MX, NVFP4,
    scaled integers): ``to_element(x)`` gives y (x laid out in blocks and divided by, or
    multiplied by the reciprocal of, its block's scale, as the reference implementation
    computes it), the scale to multiply the rounded elements by, and the layout's inverse.

    The quantizers round y on ``element``'s grid (nearest, stochastic or VC: the scale is
    computed from the unrounded block and then held fixed) and multiply back. ``max_value`` is
    the element's, i.e. relative to the scale; ``spacing(x)``/``bounds(x)`` are absolute.
    """

    #: the element format (the grid the rounding acts on)
    element: Format
    #: values per block along the last dim (None: one block per slice along dim 0)
    block_size: int | None
    #: bits of one stored scale
    scale_bits: int

    @property
    def word_bits(self) -> int:
        return self.element.word_bits

    @property
    def bits(self) -> float:
        """Element bits + scale bits / block size (per-row blocks: see :meth:`bits_for`)."""
        k = self.block_size
        return self.element.bits + (0.0 if k is None else self.scale_bits / k)

    def bits_for(self, shape: Sequence[int] | torch.Size) -> float:
        blocks, n = _blocks_for(shape, self.block_size)
        if n == 0:
            return float(self.element.bits)
        return self.element.bits + (self.scale_bits * blocks + self._tensor_bits()) / n

    def _tensor_bits(self) -> int:
        """Bits of scales stored once per tensor."""
        return 0

    @property
    def max_value(self) -> float:
        return self.element.max_value

    def layout(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """(blocks (..., nb, k), restore)."""
        if self.block_size is None:
            return _rows_of(x)
        return _blocks_of(x, self.block_size)

    @abstractmethod
    def scales(
        self, amax: torch.Tensor, tensor_amax: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(into, up) per block from its max|x| (shape (..., nb, 1)): y = ``into_element``(x,
        into) and the dequantized value is q·up."""

    def into_element(self, x: torch.Tensor, into: torch.Tensor) -> torch.Tensor:
        """x mapped onto the element scale: x / into (exact for power-of-two scales)."""
        return x / into

    def variance_into_element(self, v: torch.Tensor, into: torch.Tensor) -> torch.Tensor:
        """A variance in x's units mapped to the element's units (the square of the map)."""
        return v / into / into

    def block_amax(self, blocks: torch.Tensor) -> torch.Tensor:
        """max|x| per block (NaN-propagating), (..., nb, 1)."""
        return blocks.abs().amax(dim=-1, keepdim=True)

    def tensor_amax(self, x: torch.Tensor) -> torch.Tensor | None:
        """max|x| over the whole tensor when the format has a per-tensor scale, else None."""
        return None

    def to_element(
        self, x: torch.Tensor, reach: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
        """(y, into, up, restore) for float32 ``x``: the scales from the blocks of ``reach``
        (default ``x``; the VC quantizer passes |μ| + 4·sqrt(v)), y = ``into_element``(x)."""
        blocks, restore = self.layout(x)
        source = blocks if reach is None else self.layout(reach)[0]
        into, up = self.scales(self.block_amax(source), self.tensor_amax(source))
        return self.into_element(blocks, into), into, up, restore

    def _grid(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        import torch

        y, _, up, restore = self.to_element(x)
        delta, _, hi = self.element._grid(y)
        delta = torch.as_tensor(delta, dtype=torch.float32) * up
        hi = torch.as_tensor(hi, dtype=torch.float32) * up
        return (
            restore(delta.expand(y.shape)),
            restore(-hi.expand(y.shape)),
            restore(hi.expand(y.shape)),
        )


def _mx_element(name: str) -> Format:
    if name == "int8":
        return MXINT8
    return element(name)


@dataclass(frozen=True)
class MXFormat(ScaledFormat):
    """OCP Microscaling ``mx<E>`` / ``mx<E,K>`` (OCP MX v1.0; ALGORITHMS.md §11): K (default 32)
    consecutive values along the last dim share a scale X = 2^s stored as E8M0,
    s = floor(log2 amax) - emax(E) clamped to [-127, 127]; element i = E(x_i / X) (saturating).

    ``E`` is an OCP element or ``int8`` (MXINT8: int8·2^-6, symmetric ±127). floor(log2 amax) is
    read from amax's float32 exponent field, as torchao does (a float32-subnormal amax counts
    as -127). A block holding NaN is NaN (its scale is the E8M0 NaN); an all-zero block gives
    zeros; a last dim not a multiple of K ends in a shorter block. ``scale_rule`` (``floor``,
    the OCP rule; torchao's ``rceil``: s = ceil(log2(amax / max(E))); ``even``: amax rounded to
    E's mantissa bits first) chooses s.
    """

    element_name: str
    k: int = 32
    scale_rule: str = "floor"

    def __post_init__(self) -> None:
        if self.element_name not in (*ELEMENTS, "int8"):
            raise ValueError(
                f"format mx<{self.element_name}>: unknown element {self.element_name!r}; "
                f"expected one of {', '.join((*ELEMENTS, 'int8'))}"
            )
        if self.k < 1:
            raise ValueError(f"format {self}: block size K must be >= 1, got {self.k}")
        if self.scale_rule not in _SCALE_RULES:
            raise ValueError(
                f"scale rule {self.scale_rule!r} is not one of {', '.join(_SCALE_RULES)}"
            )

    def __str__(self) -> str:
        parts = [self.element_name]
        if self.k != 32:
            parts.append(str(self.k))
        if self.scale_rule != "floor":
            parts.append(self.scale_rule)
        return f"mx<{','.join(parts)}>"

    @property
    def element(self) -> Format:  # type: ignore[override]
        return _mx_element(self.element_name)

    @property
    def block_size(self) -> int:  # type: ignore[override]
        return self.k

    @property
    def scale_bits(self) -> int:  # type: ignore[override]
        return SCALE_BITS_E8M0

    @property
    def emax(self) -> int:
        return int(self.element.emax)

    def scales(
        self, amax: torch.Tensor, tensor_amax: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        nan = torch.isnan(amax)
        if self.scale_rule == "rceil":
            # torchao's RCEIL: X = 2^ceil(log2(amax / max(E))), clamped to E8M0
            s = torch.ceil(torch.log2(amax / self.element.max_value))
            s = torch.nan_to_num(s, nan=0.0, posinf=127.0, neginf=-127.0)
            s = s.clamp(-127, 127).to(torch.int32)
        else:
            bits = amax.view(torch.int32)
            if self.scale_rule == "even":
                # amax rounded to E's mantissa bits (half up on the magnitude) before its floor
                man = self.element.man if isinstance(self.element, SmallFloat) else 6
                bits = (bits + (1 << (23 - man - 1))) & 0x7F800000
            s = (((bits >> 23) & 0xFF) - 127 - self.emax).clamp(-127, 127)
        scale = torch.where(nan, torch.full_like(amax, math.nan), pow2(s))
        return scale, scale


def _e4m3_nearest(c: torch.Tensor) -> torch.Tensor:
    """E4M3 nearest (ties to even) of ``c`` in [2^-6, 448]: round(c/Δ)·Δ on its binade's grid,
    the operations of the eager nearest quantizer."""
    delta = element("fp8_e4m3")._grid(c)[0]
    return c.div(delta).round_().mul_(delta)


@dataclass(frozen=True)
class NVFP4(ScaledFormat):
    """NVFP4 ``nvfp4`` / ``nvfp4<t>`` (ALGORITHMS.md §11), as torchao 0.18's ``nvfp4_quantize``:
    blocks of 16 along the last dim, block scale S = E4M3(clamp(amax/6, 2^-6, 448)) (nearest,
    ties to even), element i = fp4_e2m1(x_i · (1/S)) with 1/S in float32, value q·S.

    ``nvfp4<t>`` (two-level): a float32 per-tensor scale T = amax_tensor/(448·6); block scales
    S = E4M3(clamp((amax/6)/T, 2^-6, 448)), element i = fp4_e2m1(x_i · ((1/T)/S)), value
    q·(T·S). An all-zero tensor (T = 0) takes T = 1 (its blocks are zeros either way).
    """

    per_tensor: bool = False

    def __str__(self) -> str:
        return "nvfp4<t>" if self.per_tensor else "nvfp4"

    @property
    def element(self) -> Format:  # type: ignore[override]
        return element("fp4_e2m1")

    @property
    def block_size(self) -> int:  # type: ignore[override]
        return 16

    @property
    def scale_bits(self) -> int:  # type: ignore[override]
        return SCALE_BITS_E4M3

    def _tensor_bits(self) -> int:
        return SCALE_BITS_FP32 if self.per_tensor else 0

    def tensor_amax(self, x: torch.Tensor) -> torch.Tensor | None:
        return x.abs().amax() if self.per_tensor else None

    def scales(
        self, amax: torch.Tensor, tensor_amax: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        block_scale = amax / 6.0
        if tensor_amax is None:
            s = _e4m3_nearest(block_scale.clamp(2.0**-6, 448.0))
            return 1.0 / s, s
        t = tensor_amax.to(torch.float32) / (448.0 * 6.0)
        t = torch.where(t == 0, torch.ones_like(t), t)
        s = _e4m3_nearest((block_scale / t).clamp(2.0**-6, 448.0))
        return (1.0 / t) / s, t * s

    def into_element(self, x: torch.Tensor, into: torch.Tensor) -> torch.Tensor:
        return x * into

    def variance_into_element(self, v: torch.Tensor, into: torch.Tensor) -> torch.Tensor:
        return v * into * into


@dataclass(frozen=True)
class ScaledInt(ScaledFormat):
    """Symmetric scaled integers ``int<B>`` (per row: one scale per slice along dim 0) and
    ``int<B,gK>`` (per group of K along the last dim): s = amax/(2^(B-1) - 1) in float32,
    q = clamp(round(x/s), ±(2^(B-1) - 1)), value q·s (ALGORITHMS.md §11).

    ±inf count as ±float32 max in amax (so they saturate to the row's largest value); a block
    whose s is 0 (all zeros, or amax below 2^(B-1)·2^-150) gives zeros. The scale is counted as
    a float32: ``bits`` is B + 32/K.
    """

    nbits: int
    group: int | None = None

    def __post_init__(self) -> None:
        if not 2 <= self.nbits <= 24:
            raise ValueError(
                f"format {self}: integer bits must be in 2..24 (int<1> has no nonzero value; "
                f"float32 holds integers exactly up to 24 bits), got {self.nbits}"
            )
        if self.group is not None and self.group < 1:
            raise ValueError(f"format {self}: group size K must be >= 1, got g{self.group}")

    def __str__(self) -> str:
        if self.group is None:
            return f"int<{self.nbits}>"
        return f"int<{self.nbits},g{self.group}>"

    @property
    def element(self) -> Format:  # type: ignore[override]
        return IntElement(self.nbits, 0)

    @property
    def block_size(self) -> int | None:  # type: ignore[override]
        return self.group

    @property
    def scale_bits(self) -> int:  # type: ignore[override]
        return SCALE_BITS_FP32

    def block_amax(self, blocks: torch.Tensor) -> torch.Tensor:
        return blocks.abs().clamp_(max=_FLOAT32_MAX).amax(dim=-1, keepdim=True)

    def scales(
        self, amax: torch.Tensor, tensor_amax: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        top = float(2 ** (self.nbits - 1) - 1)
        s = amax / top
        # near float32's max, top·s may round up to inf: the next float32 toward zero then
        s = torch.where(torch.isinf(s * top), torch.nextafter(s, torch.zeros_like(s)), s)
        return torch.where(s == 0, torch.ones_like(s), s), s


_SPELLINGS = (
    "fixed<wl,fl>, block<wl>, block<wl,k>, float<exp,man>, fp32, an OCP element "
    "(fp8_e4m3, fp8_e5m2, fp6_e2m3, fp6_e3m2, fp4_e2m1), mx<E> or mx<E,K> (E an element or int8), "
    "nvfp4, nvfp4<t>, int<B> or int<B,gK>"
)
_MX_FORMS = (
    "mx<E>, mx<E,K> or mx<E,K,rule> with E one of fp8_e4m3, fp8_e5m2, fp6_e2m3, fp6_e3m2, "
    "fp4_e2m1, int8, K >= 1 (default 32) and rule floor (default), rceil or even"
)
_INT_FORMS = "int<B> (per row) or int<B,gK> (groups of K along the last dim), 2 <= B <= 24, K >= 1"
_PATTERN = re.compile(r"^([a-z0-9_]+)(?:<([^<>]*)>)?$")


def parse_format(spec: str | Format) -> Format:
    """The :class:`Format` a string names (a Format is returned as it is).

    Canonical strings round-trip: ``str(parse_format(s)) == s`` for ``fixed<8,3>``, ``block<8>``,
    ``block<8,32>``, ``float<5,2>`` and ``fp32``. Spaces and upper case are tolerated.
    Raises ``ValueError`` naming the string and what is wrong.
    """
    if isinstance(spec, Format):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"format {spec!r}: expected a string such as {_SPELLINGS}")
    return _parse(spec)


@functools.lru_cache(maxsize=256)
def _parse(spec: str) -> Format:
    text = spec.replace(" ", "").lower()
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"format {spec!r} does not parse; expected {_SPELLINGS}")
    family, args = match.group(1), match.group(2)
    if family in ELEMENTS:
        if args is not None:
            raise ValueError(f"format {spec!r}: {family} takes no parameters; write {family}")
        return element(family)
    if family in ("mx", "nvfp4", "int"):
        return _parse_scaled(spec, family, args)
    params: list[int] = []
    if args is not None:
        try:
            params = [int(a) for a in args.split(",")]
        except ValueError:
            raise ValueError(
                f"format {spec!r}: parameters must be integers, got <{args}>; expected {_SPELLINGS}"
            ) from None
    try:
        if family in ("fp32", "float32"):
            if args is not None:
                raise ValueError(f"format {spec!r}: fp32 takes no parameters; write fp32")
            return FP32()
        if family == "fixed":
            if len(params) != 2:
                raise ValueError(
                    f"format {spec!r}: fixed point needs two parameters fixed<wl,fl> "
                    "(word length, fractional bits), e.g. fixed<8,3>"
                )
            return FixedPoint(params[0], params[1])
        if family == "block":
            if len(params) not in (1, 2):
                raise ValueError(
                    f"format {spec!r}: block floating point is block<wl> (one exponent per "
                    "slice along dim 0) or block<wl,k> (per k values), e.g. block<8,32>"
                )
            return BlockFloat(*params)
        if family == "float":
            if len(params) != 2:
                raise ValueError(
                    f"format {spec!r}: a small float needs two parameters float<exp,man> "
                    "(exponent bits, mantissa bits), e.g. float<5,10>"
                )
            return SmallFloat(params[0], params[1])
    except ValueError as err:
        if str(err).startswith(f"format {spec!r}"):
            raise
        raise ValueError(f"format {spec!r}: {str(err).split(': ', 1)[-1]}") from None
    raise ValueError(f"format {spec!r}: unknown family {family!r}; expected {_SPELLINGS}")


def _parse_scaled(spec: str, family: str, args: str | None) -> Format:
    """``mx<...>``, ``nvfp4[<t>]`` and ``int<...>``; ``ValueError`` naming the accepted forms."""
    parts = [] if args is None else args.split(",")
    if family == "nvfp4":
        if args is None or parts == ["t"]:
            return NVFP4(per_tensor=args is not None)
        raise ValueError(
            f"format {spec!r}: expected nvfp4 (block scales only) or nvfp4<t> (with a float32 "
            "scale per tensor)"
        )
    if family == "mx":
        if not 1 <= len(parts) <= 3 or parts[0] not in (*ELEMENTS, "int8"):
            raise ValueError(f"format {spec!r}: expected {_MX_FORMS}")
        k, rule = 32, "floor"
        for part in parts[1:]:
            if part.isdigit() and k == 32 and rule == "floor":
                k = int(part)
            elif part in _SCALE_RULES and rule == "floor":
                rule = part
            else:
                raise ValueError(f"format {spec!r}: expected {_MX_FORMS}")
        if k < 1:
            raise ValueError(f"format {spec!r}: block size K must be >= 1; expected {_MX_FORMS}")
        return MXFormat(parts[0], k, rule)
    # int
    if not 1 <= len(parts) <= 2 or not parts[0].isdigit():
        raise ValueError(f"format {spec!r}: expected {_INT_FORMS}")
    group = None
    if len(parts) == 2:
        if not (parts[1].startswith("g") and parts[1][1:].isdigit()):
            raise ValueError(f"format {spec!r}: expected {_INT_FORMS}")
        group = int(parts[1][1:])
    bits = int(parts[0])
    if not 2 <= bits <= 24:
        raise ValueError(f"format {spec!r}: integer bits B must be in 2..24; expected {_INT_FORMS}")
    if group is not None and group < 1:
        raise ValueError(f"format {spec!r}: group size K must be >= 1; expected {_INT_FORMS}")
    return ScaledInt(bits, group)
