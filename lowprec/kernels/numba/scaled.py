"""The fused quantizers of the scaled formats in numba: OCP MX, NVFP4 and scaled integers
(lowprec.formats.ScaledFormat; OCP Microscaling Formats v1.0, NVIDIA's NVFP4). Per block a
scale from the block's max|x| (grid.block_scale), then the element rounding of y = x/into (or
x·into) on a float-like element grid (emin, emax, man, maxv; integers are emin = emax = 0 with
man = their fractional bits), times ``up``. Eager: lowprec/formats/, the same float32
operations in the same order (nearest rounding equal bit for bit).

Arguments, grouped: ``f`` the element's constants and ``g`` = (rule, a, b, 0) the scale's
(lowprec.kernels.encoding.scaled_params); ``draw`` = (stochastic, k0, k1, stream); ``layout``
= (length, width, in_tile) as the block quantizer's (lowprec.kernels.numba.quantize): with
``in_tile`` each tile takes its blocks' maxima and scales from the values in cache (one pass
over the tensor), else ``scales`` = (into, up) per block (block_scales over the blocks' maxima).
Blocks of one element (``width`` 1) take their scales from x in the tile.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from lowprec.kernels import rng
from lowprec.kernels.encoding import SCALE_INT, SCALE_MX, SCALE_NVFP4
from lowprec.kernels.numba.bits import fill_bits16
from lowprec.kernels.numba.blocks import regular_max, spread
from lowprec.kernels.numba.grid import absbits, block_scale, element_round
from lowprec.kernels.numba.jit import INLINE, OPTS, parallel_and_serial

__all__ = ["block_scales", "quantize_scaled"]

_T16 = rng.TILE16
#: tiles per parallel task (one scratch allocation per task, not per tile)
_TASK = 8
_F = np.float32
_U = np.uint64


@njit(**OPTS)
def _scaled_sr_run(x, out, buf, into, up, divide, emin, emax, man, maxv):  # type: ignore[no-untyped-def]
    if divide:
        for p in range(x.size):
            q = element_round(x[p] / into[p], emin, emax, man, maxv, buf[p], True)
            out[p] = q * up[p]
    else:
        for p in range(x.size):
            q = element_round(x[p] * into[p], emin, emax, man, maxv, buf[p], True)
            out[p] = q * up[p]


@njit(**OPTS)
def _scaled_nearest_run(x, out, into, up, divide, emin, emax, man, maxv):  # type: ignore[no-untyped-def]
    if divide:
        for p in range(x.size):
            q = element_round(x[p] / into[p], emin, emax, man, maxv, 0, False)
            out[p] = q * up[p]
    else:
        for p in range(x.size):
            q = element_round(x[p] * into[p], emin, emax, man, maxv, 0, False)
            out[p] = q * up[p]


@njit(**OPTS)
def _scales_of_elements(x, g, into, up):  # type: ignore[no-untyped-def]
    """into[p], up[p] = block_scale of a block of the one element x[p]."""
    rule = int(g[0])
    for p in range(x.size):
        into[p], up[p], _ = block_scale(absbits(x[p]), rule, g[1], g[2])


@parallel_and_serial
def block_scales(maxbits, g, into, up):  # type: ignore[no-untyped-def]
    """into[b], up[b] = block_scale of block b, for every block (one pass before the tiles)."""
    rule = int(g[0])
    for b in prange(maxbits.size):
        into[b], up[b], _ = block_scale(maxbits[b], rule, g[1], g[2])


@njit(**OPTS)
def _tile_scales(x, width, g, into, up):  # type: ignore[no-untyped-def]
    """into[k], up[k] = block_scale of the max|x| over x[k·width : (k+1)·width]: the whole
    blocks of a tile, from the values in cache."""
    rule = int(g[0])
    bm = into.view(np.int32)  # the maxima first, then each scale over its maximum in place
    for k in range(into.size):
        bm[k] = regular_max(x, k * width, width)
    # one loop per rule, each over blocks with the rule a constant (vectorizes across blocks)
    if rule == SCALE_MX:
        _scales_rule(bm, SCALE_MX, g[1], g[2], into, up)
    elif rule == SCALE_NVFP4:
        _scales_rule(bm, SCALE_NVFP4, g[1], g[2], into, up)
    else:
        _scales_rule(bm, rule, g[1], g[2], into, up)


@njit(**INLINE)
def _scales_rule(bm, rule, a, b, into, up):  # type: ignore[no-untyped-def]
    """into[k], up[k] = block_scale(bm[k]) (bm may be into's own memory: read before written)."""
    for k in range(_U(into.size)):
        into[k], up[k], _ = block_scale(bm[k], rule, a, b)


@njit(**OPTS)
def _scaled_blocks(x, out, buf, width, into, up, f, divide, stochastic):  # type: ignore[no-untyped-def]
    """The whole blocks of ``width`` of a tile (x, out, buf: the tile's slices), block k with
    its scales as scalars into[k], up[k]: an inner loop of ``width`` over scalars vectorizes
    (no per-element scale arrays to fill). Elements by unsigned offset: a slice per block
    costs reference counting, a signed index a wraparound check per access. The scales are
    found in a loop of their own before (_tile_scales): a block's max and scale inside this
    loop measured 5x slower."""
    emin, emax, man, maxv = int(f[0]), int(f[1]), int(f[2]), _F(f[3])
    w = _U(width)
    for k in range(into.size):
        o = _U(k) * w
        a, b = into[k], up[k]
        if stochastic and divide:
            for j in range(w):
                out[o + j] = (
                    element_round(x[o + j] / a, emin, emax, man, maxv, buf[o + j], True) * b
                )
        elif stochastic:
            for j in range(w):
                out[o + j] = (
                    element_round(x[o + j] * a, emin, emax, man, maxv, buf[o + j], True) * b
                )
        elif divide:
            for j in range(w):
                out[o + j] = element_round(x[o + j] / a, emin, emax, man, maxv, 0, False) * b
        else:
            for j in range(w):
                out[o + j] = element_round(x[o + j] * a, emin, emax, man, maxv, 0, False) * b


@njit(**OPTS)
def _scaled_tile(x, out, t, scales, layout, f, g, draw, scratch):  # type: ignore[no-untyped-def]
    """One tile: whole blocks in cache block by block (_scaled_blocks); otherwise the blocks'
    scales spread over its elements, then one loop over the tile (per-block work inside the
    element loop keeps it from vectorizing)."""
    s = t * _T16
    e = min(x.size, s + _T16)
    m = e - s
    length, width, in_tile = layout
    stochastic, k0, k1, stream = draw
    xt = x[s:e]
    buf, into, up = scratch
    if stochastic:
        fill_bits16(buf, t, k0, k1, stream)
    divide = int(g[0]) == SCALE_INT
    if in_tile and width > 1:  # the tile's whole blocks: maxima and scales from the tile in cache
        binto, bup = into[: m // width], up[: m // width]
        _tile_scales(xt, width, g, binto, bup)
        _scaled_blocks(xt, out[s:e], buf, width, binto, bup, f, divide, stochastic)
        return
    emin, emax, man, maxv = int(f[0]), int(f[1]), int(f[2]), _F(f[3])
    into, up = into[:m], up[:m]
    if width == 1:  # a scale per element, from |x| itself (no block pass before the tiles)
        _scales_of_elements(xt, g, into, up)
    else:
        binto, bup = scales
        spread(into, s, length, width, binto)
        spread(up, s, length, width, bup)
    if stochastic:
        _scaled_sr_run(xt, out[s:e], buf, into, up, divide, emin, emax, man, maxv)
    else:
        _scaled_nearest_run(xt, out[s:e], into, up, divide, emin, emax, man, maxv)


@parallel_and_serial
def quantize_scaled(x, out, scales, layout, f, g, draw):  # type: ignore[no-untyped-def]
    """out = Q(x) for a scaled format (module docstring), tiles of 2048, in tasks of _TASK
    tiles in parallel: a task's scratch (the draws, the scales) allocated once for its tiles."""
    tiles = (x.size + _T16 - 1) // _T16
    for c in prange((tiles + _TASK - 1) // _TASK):
        scratch = (
            np.empty(_T16, np.uint16),
            np.empty(_T16, np.float32),
            np.empty(_T16, np.float32),
        )
        for t in range(c * _TASK, min(tiles, (c + 1) * _TASK)):
            _scaled_tile(x, out, t, scales, layout, f, g, draw, scratch)
