"""Scaled formats (ALGORITHMS.md §11): an element format times a scale per block. OCP
microscaling ``mx<E>`` (:class:`MXFormat`), ``nvfp4`` (:class:`NVFP4`) and scaled integers
``int<B>``/``int<B,gK>`` (:class:`ScaledInt`), all of the :class:`ScaledFormat` interface.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lowprec.formats.base import (
    _FLOAT32_MAX,
    Format,
    _blocks_for,
    _blocks_of,
    _rows_of,
    pow2,
)
from lowprec.formats.classic import SmallFloat
from lowprec.formats.ocp import ELEMENTS, MXINT8, IntElement, element

if TYPE_CHECKING:
    import torch

#: MX scales and float32 per-tensor/per-group scales: bits counted per block
SCALE_BITS_E8M0 = 8
SCALE_BITS_E4M3 = 8
SCALE_BITS_FP32 = 32
#: the MX scale rules (torchao's names): floor (OCP's), rceil, even (MXFormat's docstring)
SCALE_RULES = ("floor", "rceil", "even")


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

    ``rceil`` takes the ceiling exactly, from the float32 bits of r = amax / max(E) (its
    exponent, plus 1 when its mantissa is not zero): the round-up conversion to E8M0 that the
    hardware performs (``cvt.rp.satfinite.ue8m0x2.f32``, which torchao uses on sm_100). The
    float32 ``ceil(log2(r))`` of torchao's fallback can round log2 of an r just above a power
    of two down onto the integer and take the power itself; the bits cannot, and the fused
    kernels compute the same integers.
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
        if self.scale_rule not in SCALE_RULES:
            raise ValueError(
                f"scale rule {self.scale_rule!r} is not one of {', '.join(SCALE_RULES)}"
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
            s = _ceil_log2(amax / self.element.max_value).clamp(-127, 127)
        else:
            bits = amax.view(torch.int32)
            if self.scale_rule == "even":
                # amax rounded to E's mantissa bits (half up on the magnitude) before its floor
                man = self.element.man if isinstance(self.element, SmallFloat) else 6
                bits = (bits + (1 << (23 - man - 1))) & 0x7F800000
            s = (((bits >> 23) & 0xFF) - 127 - self.emax).clamp(-127, 127)
        scale = torch.where(nan, torch.full_like(amax, math.nan), pow2(s))
        return scale, scale


def _ceil_log2(r: torch.Tensor) -> torch.Tensor:
    """ceil(log2 r) (int32) of float32 r >= 0 (non-NaN) from its bits, exactly: a normal r's
    exponent, plus 1 when its mantissa is not zero; inf gives 128; a subnormal r = m·2^-149
    gives -126 above 2^-127 (m > 2^22), else -127 (its ceiling, or below it: every caller
    clamps to [-127, 127]); 0 gives -127."""
    import torch

    bits = r.view(torch.int32)
    exponent = (bits >> 23) & 0xFF
    normal = exponent - 127 + ((bits & 0x7FFFFF) != 0).to(torch.int32)
    small = torch.where(bits > 0x400000, -126, -127).to(torch.int32)
    return torch.where(exponent > 0, normal, small)


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

    @staticmethod
    def tensor_scale(tensor_amax: torch.Tensor) -> torch.Tensor:
        """T = amax_tensor/(448·6) in float32, 1 where that is 0 (element-wise: the fused
        steps make the T of many tensors at once, on the tensors' device, with these same
        operations)."""
        import torch

        t = tensor_amax.to(torch.float32) / (448.0 * 6.0)
        return torch.where(t == 0, torch.ones_like(t), t)

    def scales(
        self, amax: torch.Tensor, tensor_amax: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        block_scale = amax / 6.0
        if tensor_amax is None:
            s = _e4m3_nearest(block_scale.clamp(2.0**-6, 448.0))
            return 1.0 / s, s
        t = self.tensor_scale(tensor_amax)
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
