"""The fused quantizers of the classic formats in numba: out = Q(x) for fixed-point, float and
block formats (ALGORITHMS.md §2), nearest or stochastic, in tiles of 2048 (lowprec.kernels.rng)
run in parallel.

Arguments, grouped: ``f`` the format's four constants (lowprec.kernels.encoding.format_params);
``draw`` = (stochastic, k0, k1, stream): the rounding, the call's key and its Philox stream;
block formats ``layout`` = (length, width, in_tile): rows of ``length`` cut into runs of
``width`` with one exponent each, and ``maxbits`` the bit patterns of the blocks' max|x|
(lowprec.kernels.numba.blocks), or, with ``in_tile`` (a layout whose tiles hold whole blocks),
the maxima taken in each tile from the values in cache (``maxbits`` not read: no pass over the
tensor before the rounding). Each kernel is one body compiled twice (jit.parallel_and_serial):
``kernel`` on numba's thread pool, ``kernel.serial`` on the calling thread (small tensors, one
thread), with the same results bit for bit.

The element loops live in their own (not inlined) functions over slices: LLVM vectorizes them
there, which it does not inside numba's parallel-loop bodies.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from lowprec.kernels import rng
from lowprec.kernels.numba.bits import fill_bits16
from lowprec.kernels.numba.blocks import block_run, spread, tile_maxbits
from lowprec.kernels.numba.grid import (
    absbits,
    block_delta,
    float_delta,
    round_nearest,
    round_stochastic,
)
from lowprec.kernels.numba.jit import INLINE, OPTS, parallel_and_serial

__all__ = ["SPREAD_WIDTH", "quantize_block", "quantize_fixed", "quantize_float"]

_T16 = rng.TILE16
_F = np.float32
#: blocks narrower than this are rounded from a per-element copy of their maxima (one loop
#: over the tile) rather than run by run: a run costs a slice and a call, which for blocks of
#: one element (block<wl> on a 1-D tensor or a column) made the kernel ~100x slower than a copy
SPREAD_WIDTH = 64


@njit(**OPTS)
def _sr_fixed_run(x, out, buf, delta, lo, hi):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        out[p] = round_stochastic(x[p], delta, lo, hi, buf[p])


@njit(**OPTS)
def _nearest_fixed_run(x, out, delta, lo, hi):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        out[p] = round_nearest(x[p], delta, lo, hi)


@njit(**OPTS)
def _sr_float_run(x, out, buf, emin, emax, man, maxv):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        v = x[p]
        out[p] = round_stochastic(v, float_delta(v, emin, emax, man), -maxv, maxv, buf[p])


@njit(**OPTS)
def _nearest_float_run(x, out, emin, emax, man, maxv):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        v = x[p]
        out[p] = round_nearest(v, float_delta(v, emin, emax, man), -maxv, maxv)


@njit(**INLINE)
def _tile_bits(t, draw):  # type: ignore[no-untyped-def]
    """The tile's 16-bit draws (a placeholder of one for nearest rounding)."""
    stochastic, k0, k1, stream = draw
    buf = np.empty(_T16 if stochastic else 1, np.uint16)
    if stochastic:
        fill_bits16(buf, t, k0, k1, stream)
    return buf


@njit(**OPTS)
def _fixed_tile(x, out, t, f, draw):  # type: ignore[no-untyped-def]
    s = t * _T16
    e = min(x.size, s + _T16)
    delta, lo, hi = _F(f[0]), _F(f[1]), _F(f[2])
    if draw[0]:
        _sr_fixed_run(x[s:e], out[s:e], _tile_bits(t, draw), delta, lo, hi)
    else:
        _nearest_fixed_run(x[s:e], out[s:e], delta, lo, hi)


@parallel_and_serial
def quantize_fixed(x, out, f, draw):  # type: ignore[no-untyped-def]
    """out = Q(x) on the fixed grid f = (Δ, lo, hi, 0); one pass, tiles of 2048 in parallel."""
    for t in prange((x.size + _T16 - 1) // _T16):
        _fixed_tile(x, out, t, f, draw)


@njit(**OPTS)
def _float_tile(x, out, t, f, draw):  # type: ignore[no-untyped-def]
    s = t * _T16
    e = min(x.size, s + _T16)
    emin, emax, man, maxv = int(f[0]), int(f[1]), int(f[2]), _F(f[3])
    if draw[0]:
        _sr_float_run(x[s:e], out[s:e], _tile_bits(t, draw), emin, emax, man, maxv)
    else:
        _nearest_float_run(x[s:e], out[s:e], emin, emax, man, maxv)


@parallel_and_serial
def quantize_float(x, out, f, draw):  # type: ignore[no-untyped-def]
    """out = Q(x) for float<exp,man>, f = (emin, emax, man, max_value): Δ per element from
    x's exponent, range ±max_value."""
    for t in prange((x.size + _T16 - 1) // _T16):
        _float_tile(x, out, t, f, draw)


@njit(**OPTS)
def _block_runs(x, out, buf, s, maxbits, length, width, wl, maxu, stochastic):  # type: ignore[no-untyped-def]
    """The elements of one tile (x, out: the tile's slices, starting at flat index s), cut into
    runs inside one block each, a call per run."""
    nb = (length + width - 1) // width
    i = 0
    m = x.size
    while i < m:
        b, end = block_run(s, i, m, length, width, nb)
        delta = block_delta(maxbits[b], wl)
        hi = delta * maxu
        if stochastic:
            _sr_fixed_run(x[i:end], out[i:end], buf[i:end], delta, -hi, hi)
        else:
            _nearest_fixed_run(x[i:end], out[i:end], delta, -hi, hi)
        i = end


@njit(**OPTS)
def _block_elem_sr_run(x, out, buf, mb, wl, maxu):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        delta = block_delta(mb[p], wl)
        hi = delta * maxu
        out[p] = round_stochastic(x[p], delta, -hi, hi, buf[p])


@njit(**OPTS)
def _block_elem_nearest_run(x, out, mb, wl, maxu):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        delta = block_delta(mb[p], wl)
        hi = delta * maxu
        out[p] = round_nearest(x[p], delta, -hi, hi)


@njit(**OPTS)
def _absbits_run(x, mb):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        mb[p] = absbits(x[p])


@njit(**OPTS)
def _block_tile(x, out, t, maxbits, layout, f, draw):  # type: ignore[no-untyped-def]
    s = t * _T16
    e = min(x.size, s + _T16)
    m = e - s
    length, width, in_tile = layout
    wl, maxu = int(f[0]), _F(f[1])
    stochastic = draw[0]
    buf = _tile_bits(t, draw)
    xt, ot = x[s:e], out[s:e]
    if in_tile and width > 1:
        # the tile's whole blocks, as one row of m values: their maxima from the tile in cache
        bm = np.empty(m // width, np.int32)
        tile_maxbits(xt, width, bm)
        maxbits, s, length = bm, 0, m
    if width >= SPREAD_WIDTH:
        _block_runs(xt, ot, buf, s, maxbits, length, width, wl, maxu, stochastic)
        return
    # narrow blocks: each element's block maximum, then one loop (the same operations)
    mb = np.empty(m, np.int32)
    if width == 1:  # a block per element: its maximum is |x| itself
        _absbits_run(xt, mb)
    else:
        spread(mb, s, length, width, maxbits)
    if stochastic:
        _block_elem_sr_run(xt, ot, buf, mb, wl, maxu)
    else:
        _block_elem_nearest_run(xt, ot, mb, wl, maxu)


@parallel_and_serial
def quantize_block(x, out, maxbits, layout, f, draw):  # type: ignore[no-untyped-def]
    """out = Q(x) for block formats, f = (wl, max_units, 0, 0): Δ per block from its maximum
    (module docstring: ``maxbits``, ``layout``), range ±max_units·Δ; tiles of 2048 in
    parallel, each cut into runs of one block."""
    for t in prange((x.size + _T16 - 1) // _T16):
        _block_tile(x, out, t, maxbits, layout, f, draw)
