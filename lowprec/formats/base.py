"""The format interface (:class:`Format`) and what every format shares: float32 limits, exact
powers of two from the bit pattern (``pow2``, ``exponent_of``) and the block layouts of the
scaled formats (runs of k along the last dim, or rows along dim 0).

Imports no torch at its top (see :mod:`lowprec.formats`): the methods that compute on tensors
import it when they run.
"""

from __future__ import annotations

import math
import struct
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

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
