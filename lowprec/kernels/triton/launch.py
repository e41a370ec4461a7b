"""The Triton quantizers' host side: a format made kernel arguments once (:func:`encode`), the
exponent groups' maxima, then one launch of quantize.py's kernels over tiles of 2048.

A format is (KIND, f, ts): the kind of lowprec/kernels/encoding.py, Triton's tuple ``f``
(encoding.triton_format_args; a scaled format's element as a FLOAT tuple) and, for
``nvfp4<t>``, the per-tensor scale (T, 1/T) made on the device from the largest block maximum
(T = amax/(448·6) in float32, 1 for an all-zero tensor: lowprec/formats/scaled.py), with no
host synchronisation. Scaled formats take the rules the numba quantizers take (encoding.
scaled_params: MX with its three scale rules, NVFP4, scaled integers).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import torch

from lowprec.formats import NVFP4, Format, ScaledFormat
from lowprec.kernels import encoding as E
from lowprec.kernels.rng import TILE16
from lowprec.kernels.triton import quantize as K

__all__ = ["Encoded", "block_maxima", "encode", "quantize", "vc_quantize"]

#: the quantizers' Philox stream (the VC kernel's streams: quantize.VC_*)
QUANTIZE_STREAM = 0
#: (rows, length, width): rows of ``length`` values in runs of ``width``, one group a run
Layout = tuple[int, int, int]
#: the kind of a scaled format's rule
_SCALED_KIND = {
    E.SCALE_MX: E.MX,
    E.SCALE_MX_RCEIL: E.MX_RCEIL,
    E.SCALE_MX_EVEN: E.MX_EVEN,
    E.SCALE_INT: E.INT,
    E.SCALE_NVFP4: E.NVFP4,
}


class Encoded(NamedTuple):
    """A format as the kernels take it: ``kind`` (constexpr), ``f`` (three floats, three
    integers), ``per_tensor`` (nvfp4<t>: a per-tensor scale made per call)."""

    kind: int
    f: tuple[float, float, float, int, int, int]
    per_tensor: bool


@functools.lru_cache(maxsize=256)
def encode(fmt: Format) -> Encoded:
    """``fmt`` as (kind, f, per_tensor); ValueError when no Triton quantizer takes it."""
    if isinstance(fmt, ScaledFormat):
        params = E.scaled_params(fmt)
        if params is None:
            raise ValueError(f"no fused kernel for format {fmt}")
        element, scale = params
        kind = _SCALED_KIND[int(scale[0])]
        per_tensor = isinstance(fmt, NVFP4) and fmt.per_tensor
        return Encoded(kind, E.triton_format_args(E.FLOAT, element), per_tensor)
    kind, consts = E.format_params(fmt)
    if kind == E.FP32:
        raise ValueError(f"no fused kernel for format {fmt}")
    return Encoded(kind, E.triton_format_args(kind, consts), False)


@functools.cache
def _no_tensor_scale(device: torch.device) -> torch.Tensor:
    """(T, 1/T) = (0, 0): no per-tensor scale (a placeholder the other kinds do not read)."""
    return torch.zeros(2, dtype=torch.float32, device=device)


def _tensor_scale(maxbits: torch.Tensor, enc: Encoded) -> torch.Tensor:
    """(T, 1/T) of nvfp4<t> from the blocks' maxima (the eager float32 operations)."""
    if not enc.per_tensor:
        return _no_tensor_scale(maxbits.device)
    t = NVFP4.tensor_scale(maxbits.max().view(torch.float32))
    return torch.stack([t, 1.0 / t])


def block_maxima(
    x: torch.Tensor, layout: Layout | None, v: Any = None
) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """(maxbits, (nb, length, width)) over ``x`` in exponent groups ``layout`` (rows, length,
    width: lowprec.kernels.fused.block_layout; None for kinds without groups): the bit pattern
    of each group's max|x| (block_maxbits_kernel) or with ``v`` (the VC variance: values,
    scalar, sd, per) of its max reach; without groups a placeholder."""
    if layout is None:
        return torch.zeros(1, dtype=torch.int32, device=x.device), (1, 1, 1)
    rows, length, width = layout
    width = min(width, length)  # a run longer than the row is the row (the same blocks)
    nb = -(-length // width)
    maxbits = torch.zeros(rows * nb, dtype=torch.int32, device=x.device)
    cw = min(1024, 1 << max(0, (width - 1).bit_length()))
    bb = max(1, 4096 // cw)
    launch = (-(-rows * nb // bb), -(-width // cw))
    sizes = (rows * nb, nb, length, width)
    if v is None:
        K.block_maxbits_kernel[launch](x, maxbits, *sizes, BB=bb, CW=cw)
    else:
        K.vc_block_maxbits_kernel[launch](
            x, v.values, v.scalar, v.sd, maxbits, *sizes, VAR_PER=v.per, BB=bb, CW=cw
        )
    return maxbits, (nb, length, width)


def quantize(
    xf: torch.Tensor, out: torch.Tensor, fmt: Format, stochastic: bool, key: torch.Tensor,
    layout: Layout | None,
) -> None:  # fmt: skip
    """out = Q(xf) (float32 contiguous, on one device; ``key`` the int64 Philox key there;
    ``layout`` the exponent groups of block and scaled formats, as block_maxima)."""
    enc = encode(fmt)
    maxbits, blocks = block_maxima(xf, layout if E.grouped(enc.kind) else None)
    n = xf.numel()
    K.quantize_kernel[(-(-n // TILE16),)](
        xf, out, n, key, QUANTIZE_STREAM, enc.f, maxbits, blocks, _tensor_scale(maxbits, enc),
        KIND=enc.kind, STOCHASTIC=bool(stochastic),
    )  # fmt: skip


def vc_quantize(
    m32: torch.Tensor, v: Any, out: torch.Tensor, fmt: Format, key: torch.Tensor,
    layout: Layout | None,
) -> None:  # fmt: skip
    """out = Q_vc(m32, v) (``v``: values, scalar, sd, per as lowprec.kernels.fused's
    _Variance): the groups' maxima of the reach, then one launch."""
    enc = encode(fmt)
    maxbits, blocks = block_maxima(m32, layout if E.grouped(enc.kind) else None, v)
    n = m32.numel()
    K.vc_quantize_kernel[(-(-n // TILE16),)](
        m32, v.values, v.scalar, v.sd, out, n, key, enc.f, maxbits, blocks,
        _tensor_scale(maxbits, enc), KIND=enc.kind, VAR_PER=v.per,
    )  # fmt: skip
