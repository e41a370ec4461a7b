"""The formats of the low-precision SGLD/SGHMC papers: fixed point ``fixed<wl,fl>``, block
floating point ``block<wl>``/``block<wl,k>``, small floats ``float<exp,man>`` and ``fp32``
(the table in :mod:`lowprec.formats`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lowprec.formats.base import (
    _FLOAT32_MAX,
    _POW2_MAX,
    _POW2_MIN,
    _TINY,
    SHARED_EXPONENT_BITS,
    Format,
    _float32_toward_zero,
    exponent_of,
    pow2,
)

if TYPE_CHECKING:
    import torch


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
