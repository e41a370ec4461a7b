"""Block layouts in numba: the maxima of blocks, and the walk that maps a tile's elements to
their blocks (one walk, for the block formats' exponents, the scaled formats' scales and VC).

A tensor is ``rows`` rows of ``length`` values, each row cut into runs of ``width`` (the last
one shorter): block b = row·nb + run, nb = ceil(length/width) (lowprec.kernels.fused
``block_layout``). ``maxbits[b]`` is the bit pattern of the block's max|x| (grid.absbits; an
integer max over bit patterns is max|x|, NaN-propagating). Tiles are the 2048 elements of
lowprec.kernels.rng's layout; a tile may start inside a block.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from lowprec.kernels.numba.grid import absbits
from lowprec.kernels.numba.jit import INLINE, OPTS, parallel_and_serial

__all__ = [
    "block_maxbits",
    "block_maxbits_chunked",
    "block_maxbits_regular",
    "block_run",
    "block_span",
    "maxbits_run",
    "regular_max",
    "spread",
    "tile_maxbits",
]


@njit(**OPTS)
def maxbits_run(x):  # type: ignore[no-untyped-def]
    """The bit pattern of max|x| over the array x (0 for an empty one)."""
    acc = np.int32(0)
    for i in range(x.size):
        a = absbits(x[i])
        acc = max(acc, a)  # the builtin: LLVM vectorizes it (the select form: 2x slower)
    return acc


@njit(**INLINE)
def block_span(b, length, width, nb):  # type: ignore[no-untyped-def]
    """(start, end) of block b's values in the flat tensor."""
    r = b // nb
    j = b - r * nb
    s = r * length + j * width
    return s, s + min(width, length - j * width)


@parallel_and_serial
def block_maxbits(x, layout, maxbits):  # type: ignore[no-untyped-def]
    """maxbits[b] = bit pattern of max|x| over block b, ``layout`` = (rows, length, width)
    (``maxbits`` holds rows·nb)."""
    rows, length, width = layout
    nb = (length + width - 1) // width
    for b in prange(rows * nb):
        s, e = block_span(b, length, width, nb)
        maxbits[b] = maxbits_run(x[s:e])


@parallel_and_serial
def block_maxbits_regular(x, width, maxbits):  # type: ignore[no-untyped-def]
    """block_maxbits where every block is a whole run of ``width`` (the last dim a multiple of
    it): block b is x[b·width : (b+1)·width], a short loop per block that vectorizes (2-3x
    faster for runs of 16 or 32 than slicing per block). The same values."""
    for b in prange(maxbits.size):
        maxbits[b] = regular_max(x, b * width, width)


@njit(**INLINE)
def regular_max(x, o, width):  # type: ignore[no-untyped-def]
    """The bit pattern of max|x| over x[o : o + width] (by offset: no slice per block)."""
    acc = np.int32(0)
    u = np.uint64(o)  # unsigned: no wraparound check per access
    for k in range(np.uint64(width)):
        a = absbits(x[u + k])
        acc = max(acc, a)  # the builtin: LLVM vectorizes it (the select form: 2x slower)
    return acc


@njit(**OPTS)
def tile_maxbits(x, width, maxbits):  # type: ignore[no-untyped-def]
    """maxbits[k] = the max over x[k·width : (k+1)·width] for the whole runs of a tile x (in
    cache: the maxima of a tile's blocks just before its rounding, no pass over the tensor)."""
    for k in range(x.size // width):
        maxbits[k] = regular_max(x, k * width, width)


@parallel_and_serial
def block_maxbits_chunked(x, layout, chunk, partial):  # type: ignore[no-untyped-def]
    """partial[c] = the bit pattern of max|x| over chunk c: block b (as block_maxbits) cut into
    cpb = ceil(width/chunk) chunks, c = b·cpb + k (0 for a chunk past a short last run). The
    block's maximum is the max over its chunks: a parallel reduction when the blocks are few
    and long (one block per row of a 1-D tensor's single row) and a loop per block would run
    on one thread."""
    rows, length, width = layout
    nb = (length + width - 1) // width
    cpb = (width + chunk - 1) // chunk
    for c in prange(rows * nb * cpb):
        b = c // cpb
        s, e = block_span(b, length, width, nb)
        cs = s + (c - b * cpb) * chunk
        ce = min(e, cs + chunk)
        partial[c] = maxbits_run(x[cs:ce]) if cs < ce else np.int32(0)


@njit(**INLINE)
def block_run(s, i, m, length, width, nb):  # type: ignore[no-untyped-def]
    """(b, end): the block b of element i of a tile of m elements starting at flat index s,
    and the tile index where that block's run ends in the tile."""
    r = (s + i) // length
    j = (s + i - r * length) // width
    return r * nb + j, min(m, r * length + min((j + 1) * width, length) - s)


@njit(**OPTS)
def spread(dst, s, length, width, src):  # type: ignore[no-untyped-def]
    """dst[p] = src[block of element s + p] for a tile of dst.size elements starting at flat
    index s: the tile's first block by division, the next ones by stepping (no division per
    run); whole runs of a regular layout by an inner loop of ``width`` stores (vectorizes)."""
    m = dst.size
    if length % width == 0 and s % width == 0 and m % width == 0:
        b0 = s // width
        for k in range(m // width):
            v = src[b0 + k]
            o = k * width
            for p in range(width):
                dst[o + p] = v
        return
    nb = (length + width - 1) // width
    r = s // length
    j = (s - r * length) // width
    i = 0
    while i < m:
        end = min(m, r * length + min((j + 1) * width, length) - s)
        v = src[r * nb + j]
        for p in range(i, end):
            dst[p] = v
        i = end
        j += 1
        if j == nb:
            j = 0
            r += 1
