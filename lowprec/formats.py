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
==================  ===============  ========================================================

Every format exposes what the quantizers need: ``spacing(x)`` (the grid step Δ of every element
of ``x``), ``bounds(x)`` (the range, element-wise), ``max_value``, ``bits`` and ``bits_for``.
The papers are low-precision SGLD (Zhang, Wilson, De Sa, ICML 2022) and low-precision SGHMC
(Wang, Chen, Song, Zhang, TMLR 2024), whose formats follow qtorch.

This module imports no torch (and no numpy) at its top: parsing a format string and its range
checks are plain Python, so that a bad format is refused before torch loads (issue 10); the
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
    "FP32",
    "BlockFloat",
    "FixedPoint",
    "Format",
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


_SPELLINGS = "fixed<wl,fl>, block<wl>, block<wl,k>, float<exp,man> or fp32"
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
