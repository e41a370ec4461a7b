"""CPU kernels in numba: the counter-based bits and the fused quantizers.

Device-level building blocks (``@njit(inline="always")``; call them from your own ``@njit``
kernels; every float is float32, every Philox word a uint64 holding 32 bits):

    philox4x32(c0, c1, c2, c3, k0, k1) -> (w0, w1, w2, w3)    ten rounds (lowprec.kernels.rng)
    group_words(g, k0, k1, stream) -> (w0, w1, w2, w3)         counter (g lo, g hi, stream, 0)
    fill_bits16(buf, tile, k0, k1, stream)                     buf: uint16[2048], r16 of tile
    fill_normals(buf, tile, k0, k1, stream)                    buf: float32[1024], N(0, 1)
    bits16_at(i, k0, k1, stream) -> r                          r16 of element i (scalar path)
    threshold16(r) -> (2r + 1)/2^17                            the unbiased midpoint threshold
    box_muller(wa, wb) -> (z_cos, z_sin)
    clamp(x, lo, hi)                                           NaN stays NaN
    round_nearest(x, delta, lo, hi)                            ties to even
    round_stochastic(x, delta, lo, hi, r)                      up with probability δ/Δ (±2^-17)
    float_delta(x, emin, emax, man) -> Δ of a float<exp,man> element
    block_delta(maxbits, wl) -> Δ of a block whose max|x| has the bit pattern maxbits
    absbits(x) -> bit pattern of |x| (int32; integer max over it is max|x|, NaN-propagating)
    block_run(s, i, m, length, width, nb) -> (block, end)       a tile's run inside one block
    vc_element(mu, w_units, ...)                               Q_vc of one element (§4)

The tile layout (rng.py) is what makes the loops vectorize: a tile's 256 Philox groups are
computed in one loop (LLVM turns it into AVX-512 multiplies), their halves land in a 4 KB
buffer, and the rounding loop then streams through contiguous elements. Kernels take
``k0``, ``k1`` (the key) and ``stream`` as Python ints. Each kernel is one body compiled twice
(:func:`parallel_and_serial`): ``kernel`` on numba's thread pool, ``kernel.serial`` on the
calling thread (small tensors, one thread), with the same results bit for bit. A kernel
takes a format as one value ``f``, its four constants (FIXED, BLOCK, FLOAT below), and turns
them into float32 scalars in each tile, outside the element loops.
"""

from __future__ import annotations

import math
import types as pytypes
from collections.abc import Callable

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

from lowprec.kernels import rng
from lowprec.kernels.encoding import BLOCK, FIXED, FLOAT, SCALE_INT, SCALE_MX, SCALE_NVFP4

_OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}
#: a kernel takes a format as ``kind`` and ``f``, four float64 constants
#: (lowprec.kernels.encoding.format_params)
__all__ = ["BLOCK", "FIXED", "FLOAT", "SCALE_INT", "SCALE_MX", "SCALE_NVFP4"]
_INLINE = {**_OPTS, "inline": "always"}


def parallel_and_serial(body: Callable) -> numba.core.dispatcher.Dispatcher:
    """One Python body compiled twice: ``njit(parallel=True)`` (returned; its ``prange`` loops
    run on numba's thread pool) and ``njit(parallel=False)`` as its ``.serial`` attribute
    (``prange`` is ``range``: the calling thread, no pool launch; for small tensors).

    numba's on-disk cache names its index file after the function's qualified name and keys
    the entries by signature and bytecode, not by the compile flags: two dispatchers of one
    function share one entry, and whichever compiles first is loaded by both (a serial twin
    would start the thread pool). The serial dispatcher therefore compiles a copy of the
    function named ``<name>_serial``: two cache files, both loaded by later processes."""
    twin = pytypes.FunctionType(
        body.__code__,
        body.__globals__,
        f"{body.__name__}_serial",
        body.__defaults__,
        body.__closure__,
    )
    twin.__qualname__ = f"{body.__qualname__}_serial"
    twin.__doc__ = f"{body.__name__} on the calling thread (``prange`` runs as ``range``)."
    parallel = njit(parallel=True, **_OPTS)(body)
    parallel.serial = njit(**_OPTS)(twin)
    return parallel


_M0 = np.uint64(rng.M0)
_M1 = np.uint64(rng.M1)
_W0 = np.uint64(rng.W0)
_W1 = np.uint64(rng.W1)
_MASK32 = np.uint64(0xFFFFFFFF)
_MASK16 = np.uint64(0xFFFF)
_S8 = np.uint64(8)
_S9 = np.uint64(9)
_S16 = np.uint64(16)
_S32 = np.uint64(32)
_G = rng.GROUPS_PER_TILE
_T16 = rng.TILE16
_T32 = rng.TILE32
_F17 = np.float32(2.0**-17)
_F24 = np.float32(2.0**-24)
_TWO_PI = np.float32(2.0 * math.pi)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_F = np.float32
_TINY_BITS = 0x00800000  # 2^-126
_MAX_BITS = 0x7F7FFFFF  # float32 max
_INF_BITS = 0x7F800000


# ---------------------------------------------------------------------------- bit casts


def _bitcast(name: str, src: types.Type, dst: types.Type, doc: str):  # type: ignore[no-untyped-def]
    """A numba intrinsic ``name(x)``: the ``dst`` value with the bit pattern of the ``src``
    value x (a free register reinterpretation)."""

    def cast(typingctx, x):  # type: ignore[no-untyped-def]
        if x != src:
            return None

        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            return builder.bitcast(args[0], context.get_value_type(dst))

        return dst(src), codegen

    cast.__name__ = cast.__qualname__ = name
    cast.__doc__ = doc
    return intrinsic(cast)


f32_as_i32 = _bitcast("f32_as_i32", types.float32, types.int32, "The bit pattern of a float32.")
i32_as_f32 = _bitcast("i32_as_f32", types.int32, types.float32, "The float32 of an int32's bits.")


# ---------------------------------------------------------------------------- random bits


@njit(**_INLINE)
def philox4x32(c0, c1, c2, c3, k0, k1):  # type: ignore[no-untyped-def]
    """Philox4x32-10 of counter (c0..c3) and key (k0, k1): uint64 values holding 32 bits."""
    for _ in range(rng.ROUNDS):
        p0 = _M0 * c0
        p1 = _M1 * c2
        n0 = (p1 >> _S32) ^ c1 ^ k0
        n2 = (p0 >> _S32) ^ c3 ^ k1
        c1 = p1 & _MASK32
        c3 = p0 & _MASK32
        c0 = n0
        c2 = n2
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


@njit(**_INLINE)
def group_words(g, k0, k1, stream):  # type: ignore[no-untyped-def]
    """The four words of Philox group ``g`` (int) under ``stream``: counter (g lo, g hi, s, 0)."""
    gg = np.uint64(g)
    return philox4x32(
        gg & _MASK32, gg >> _S32, np.uint64(stream), np.uint64(0), np.uint64(k0), np.uint64(k1)
    )


@njit(**_OPTS)
def fill_bits16(buf, tile, k0, k1, stream):  # type: ignore[no-untyped-def]
    """buf[p] = r16 of element 2048·tile + p, p < 2048 (``buf`` uint16[2048])."""
    base = tile * _G
    for gl in range(_G):
        w0, w1, w2, w3 = group_words(base + gl, k0, k1, stream)
        buf[gl] = w0 & _MASK16
        buf[_G + gl] = w0 >> _S16
        buf[2 * _G + gl] = w1 & _MASK16
        buf[3 * _G + gl] = w1 >> _S16
        buf[4 * _G + gl] = w2 & _MASK16
        buf[5 * _G + gl] = w2 >> _S16
        buf[6 * _G + gl] = w3 & _MASK16
        buf[7 * _G + gl] = w3 >> _S16


@njit(**_OPTS)
def fill_words(buf, tile, k0, k1, stream):  # type: ignore[no-untyped-def]
    """buf[p] = 32-bit word of element 1024·tile + p, p < 1024 (``buf`` uint32[1024])."""
    base = tile * _G
    for gl in range(_G):
        w0, w1, w2, w3 = group_words(base + gl, k0, k1, stream)
        buf[gl] = w0
        buf[_G + gl] = w1
        buf[2 * _G + gl] = w2
        buf[3 * _G + gl] = w3


@njit(**_INLINE)
def box_muller(wa, wb):  # type: ignore[no-untyped-def]
    """Two independent N(0, 1) float32 from two words: u1 = (2·(wa >> 9) + 1)·2^-24 in (0, 1),
    u2 = (wb >> 8)·2^-24; sqrt(-2 ln u1)·(cos 2πu2, sin 2πu2)."""
    u1 = np.float32(np.int32((wa >> _S9) * np.uint64(2) + np.uint64(1))) * _F24
    u2 = np.float32(np.int32(wb >> _S8)) * _F24
    rad = np.sqrt(np.float32(-2.0) * np.log(u1))
    theta = _TWO_PI * u2
    return rad * np.cos(theta), rad * np.sin(theta)


@njit(**_OPTS)
def fill_normals(buf, tile, k0, k1, stream):  # type: ignore[no-untyped-def]
    """buf[p] = N(0, 1) of element 1024·tile + p, p < 1024 (``buf`` float32[1024])."""
    base = tile * _G
    for gl in range(_G):
        w0, w1, w2, w3 = group_words(base + gl, k0, k1, stream)
        z0, z1 = box_muller(w0, w1)
        z2, z3 = box_muller(w2, w3)
        buf[gl] = z0
        buf[_G + gl] = z1
        buf[2 * _G + gl] = z2
        buf[3 * _G + gl] = z3


@njit(**_INLINE)
def bits16_at(i, k0, k1, stream):  # type: ignore[no-untyped-def]
    """r16 of element ``i`` alone (one Philox call; for scalar paths and rare branches)."""
    p = i & (_T16 - 1)
    j = p >> 8
    w0, w1, w2, w3 = group_words((i >> 11) * _G + (p & (_G - 1)), k0, k1, stream)
    w = w0
    if j >= 6:
        w = w3
    elif j >= 4:
        w = w2
    elif j >= 2:
        w = w1
    return (w >> np.uint64(16 * (j & 1))) & _MASK16


@njit(**_INLINE)
def threshold16(r):  # type: ignore[no-untyped-def]
    """u = (2r + 1)/2^17 for a 16-bit draw r: exact in float32, the midpoint of r's cell."""
    return np.float32(np.int32(r) * np.int32(2) + np.int32(1)) * _F17


# ---------------------------------------------------------------------------- rounding


@njit(**_INLINE)
def clamp(x, lo, hi):  # type: ignore[no-untyped-def]
    """min(max(x, lo), hi) with NaN kept (as torch.clamp)."""
    c = lo if x < lo else x
    return hi if c > hi else c


@njit(**_INLINE)
def round_nearest(x, delta, lo, hi):  # type: ignore[no-untyped-def]
    """rint(clamp(x)/Δ)·Δ, ties to even: the eager path's operations one for one."""
    return np.rint(clamp(x, lo, hi) / delta) * delta


@njit(**_INLINE)
def round_stochastic(x, delta, lo, hi, r):  # type: ignore[no-untyped-def]
    """(floor(y) + [u < y - floor(y)])·Δ, y = clamp(x)/Δ (exact), u = threshold16(r)."""
    y = clamp(x, lo, hi) / delta
    f = np.floor(y)
    up = _ONE if threshold16(r) < y - f else _ZERO
    return (f + up) * delta


@njit(**_INLINE)
def pow2(k):  # type: ignore[no-untyped-def]
    """2^k as float32 for an integer k in [-149, 127], from its bit pattern."""
    if k >= -126:
        return i32_as_f32(np.int32((k + 127) << 23))
    return i32_as_f32(np.int32(1 << (k + 149)))


@njit(**_INLINE)
def float_delta(x, emin, emax, man):  # type: ignore[no-untyped-def]
    """Δ = 2^(clamp(e, emin, emax) - man), e = floor(log2|x|) from x's exponent field (subnormal
    x and zero give e = -127, NaN and inf 128: both clamped), as SmallFloat._grid."""
    e = ((f32_as_i32(x) >> 23) & 0xFF) - 127
    e = emin if e < emin else e
    e = emax if e > emax else e
    return pow2(e - man)


@njit(**_INLINE)
def absbits(x):  # type: ignore[no-untyped-def]
    """The bit pattern of |x|: ordered as |x| for non-NaN, NaN above +inf."""
    return f32_as_i32(x) & np.int32(0x7FFFFFFF)


@njit(**_INLINE)
def block_delta(maxbits, wl):  # type: ignore[no-untyped-def]
    """Δ = 2^(e + 2 - wl) of a block whose max|x| has bit pattern ``maxbits`` (BlockFloat._delta):
    e from max|x| clamped to [2^-126, float32 max]; Δ >= 2^-149; a NaN maximum gives Δ = inf."""
    if maxbits > _INF_BITS:
        return np.float32(np.inf)
    m = _TINY_BITS if maxbits < _TINY_BITS else maxbits
    m = _MAX_BITS if m > _MAX_BITS else m
    k = ((m >> 23) & 0xFF) - 127 + 2 - wl
    return pow2(-149 if k < -149 else k)


# ---------------------------------------------------------------------------- quantize kernels
# The element loops live in their own (not inlined) functions over slices: LLVM vectorizes them
# there, which it does not inside numba's parallel-loop bodies.


@njit(**_OPTS)
def _sr_fixed_run(x, out, buf, delta, lo, hi):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        out[p] = round_stochastic(x[p], delta, lo, hi, buf[p])


@njit(**_OPTS)
def _nearest_fixed_run(x, out, delta, lo, hi):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        out[p] = round_nearest(x[p], delta, lo, hi)


@njit(**_OPTS)
def _sr_float_run(x, out, buf, emin, emax, man, maxv):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        v = x[p]
        out[p] = round_stochastic(v, float_delta(v, emin, emax, man), -maxv, maxv, buf[p])


@njit(**_OPTS)
def _nearest_float_run(x, out, emin, emax, man, maxv):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        v = x[p]
        out[p] = round_nearest(v, float_delta(v, emin, emax, man), -maxv, maxv)


@njit(**_OPTS)
def _fixed_tile(x, out, t, f, stochastic, k0, k1, stream):  # type: ignore[no-untyped-def]
    s = t * _T16
    e = min(x.size, s + _T16)
    delta, lo, hi = _F(f[0]), _F(f[1]), _F(f[2])
    if stochastic:
        buf = np.empty(_T16, np.uint16)
        fill_bits16(buf, t, k0, k1, stream)
        _sr_fixed_run(x[s:e], out[s:e], buf, delta, lo, hi)
    else:
        _nearest_fixed_run(x[s:e], out[s:e], delta, lo, hi)


@parallel_and_serial
def quantize_fixed(x, out, f, stochastic, k0, k1, stream):  # type: ignore[no-untyped-def]
    """out = Q(x) on the fixed grid f = (Δ, lo, hi, 0); one pass, tiles of 2048 in parallel."""
    for t in prange((x.size + _T16 - 1) // _T16):
        _fixed_tile(x, out, t, f, stochastic, k0, k1, stream)


@njit(**_OPTS)
def _float_tile(x, out, t, f, stochastic, k0, k1, stream):  # type: ignore[no-untyped-def]
    s = t * _T16
    e = min(x.size, s + _T16)
    emin, emax, man, maxv = int(f[0]), int(f[1]), int(f[2]), _F(f[3])
    if stochastic:
        buf = np.empty(_T16, np.uint16)
        fill_bits16(buf, t, k0, k1, stream)
        _sr_float_run(x[s:e], out[s:e], buf, emin, emax, man, maxv)
    else:
        _nearest_float_run(x[s:e], out[s:e], emin, emax, man, maxv)


@parallel_and_serial
def quantize_float(x, out, f, stochastic, k0, k1, stream):  # type: ignore[no-untyped-def]
    """out = Q(x) for float<exp,man>, f = (emin, emax, man, max_value): Δ per element from
    x's exponent, range ±max_value."""
    for t in prange((x.size + _T16 - 1) // _T16):
        _float_tile(x, out, t, f, stochastic, k0, k1, stream)


@njit(**_OPTS)
def _maxbits_run(x):  # type: ignore[no-untyped-def]
    acc = np.int32(0)
    for i in range(x.size):
        a = absbits(x[i])
        acc = a if a > acc else acc
    return acc


@njit(**_OPTS)
def _block_max(x, b, length, width, nb):  # type: ignore[no-untyped-def]
    r = b // nb
    j = b - r * nb
    s = r * length + j * width
    return _maxbits_run(x[s : s + min(width, length - j * width)])


@parallel_and_serial
def block_maxbits(x, rows, length, width, maxbits):  # type: ignore[no-untyped-def]
    """maxbits[b] = bit pattern of max|x| over block b (NaN-propagating integer max).

    x is ``rows`` rows of ``length`` values; each row is cut into runs of ``width`` (the last
    one shorter); block b = row·nb + run, nb = ceil(length/width) (``maxbits`` holds rows·nb)."""
    nb = (length + width - 1) // width
    for b in prange(rows * nb):
        maxbits[b] = _block_max(x, b, length, width, nb)


@parallel_and_serial
def block_maxbits_regular(x, width, maxbits):  # type: ignore[no-untyped-def]
    """block_maxbits where every block is a whole run of ``width`` (the last dim a multiple of
    it): block b is x[b·width : (b+1)·width], a short loop per block that vectorizes (2-3x
    faster for runs of 16 or 32 than slicing per block). The same values."""
    for b in prange(maxbits.size):
        acc = np.int32(0)
        o = b * width
        for k in range(width):
            a = absbits(x[o + k])
            acc = a if a > acc else acc
        maxbits[b] = acc


@parallel_and_serial
def block_maxbits_chunked(x, rows, length, width, chunk, partial):  # type: ignore[no-untyped-def]
    """partial[c] = the bit pattern of max|x| over chunk c: block b (as block_maxbits) cut into
    cpb = ceil(width/chunk) chunks, c = b·cpb + k (0 for a chunk past a short last run). The
    block's maximum is the max over its chunks: a parallel reduction when the blocks are few
    and long (one block per row of a 1-D tensor's single row) and a loop per block would run
    on one thread."""
    nb = (length + width - 1) // width
    cpb = (width + chunk - 1) // chunk
    for c in prange(rows * nb * cpb):
        b = c // cpb
        k = c - b * cpb
        r = b // nb
        j = b - r * nb
        s = r * length + j * width
        e = s + min(width, length - j * width)
        cs = s + k * chunk
        ce = min(e, cs + chunk)
        partial[c] = _maxbits_run(x[cs:ce]) if cs < ce else np.int32(0)


@njit(**_INLINE)
def block_run(s, i, m, length, width, nb):  # type: ignore[no-untyped-def]
    """(b, end): the block b of element i of a tile of m elements starting at flat index s
    (rows of ``length`` cut into runs of ``width``, nb runs a row), and the tile index where
    that block's run ends in the tile."""
    r = (s + i) // length
    j = (s + i - r * length) // width
    return r * nb + j, min(m, r * length + min((j + 1) * width, length) - s)


@njit(**_OPTS)
def _block_tile(x, out, buf, s, maxbits, length, width, nb, wl, maxu, stochastic):  # type: ignore[no-untyped-def]
    """The elements of one tile (x, out: the tile's slices, starting at flat index s), cut into
    runs inside one block each."""
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


#: blocks narrower than this are rounded from a per-element copy of their maxima (one loop
#: over the tile) rather than run by run: a run costs a slice and a call, which for blocks of
#: one element (block<wl> on a 1-D tensor or a column) made the kernel ~100x slower than a copy
SPREAD_WIDTH = 64


@njit(**_OPTS)
def _spread_bits(mb, s, length, width, nb, maxbits):  # type: ignore[no-untyped-def]
    """mb[p] = maxbits of the block of element s + p (rows of ``length`` in runs of ``width``)."""
    m = mb.size
    r = s // length
    j = (s - r * length) // width
    i = 0
    while i < m:
        end = min(m, r * length + min((j + 1) * width, length) - s)
        v = maxbits[r * nb + j]
        for p in range(i, end):
            mb[p] = v
        i = end
        j += 1
        if j == nb:
            j = 0
            r += 1


@njit(**_OPTS)
def _block_elem_sr_run(x, out, buf, mb, wl, maxu):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        delta = block_delta(mb[p], wl)
        hi = delta * maxu
        out[p] = round_stochastic(x[p], delta, -hi, hi, buf[p])


@njit(**_OPTS)
def _block_elem_nearest_run(x, out, mb, wl, maxu):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        delta = block_delta(mb[p], wl)
        hi = delta * maxu
        out[p] = round_nearest(x[p], delta, -hi, hi)


@njit(**_OPTS)
def _absbits_run(x, mb):  # type: ignore[no-untyped-def]
    for p in range(x.size):
        mb[p] = absbits(x[p])


@njit(**_OPTS)
def _block_tile_of(x, out, t, maxbits, length, width, f, stochastic, k0, k1, stream):  # type: ignore[no-untyped-def]
    s = t * _T16
    e = min(x.size, s + _T16)
    nb = (length + width - 1) // width
    wl, maxu = int(f[0]), _F(f[1])
    buf = np.empty(_T16 if stochastic else 1, np.uint16)
    if stochastic:
        fill_bits16(buf, t, k0, k1, stream)
    if width >= SPREAD_WIDTH:
        _block_tile(x[s:e], out[s:e], buf, s, maxbits, length, width, nb, wl, maxu, stochastic)
        return
    # narrow blocks: each element's block maximum, then one loop (the same operations)
    mb = np.empty(e - s, np.int32)
    if width == 1:  # a block per element: its maximum is |x| itself
        _absbits_run(x[s:e], mb)
    else:
        _spread_bits(mb, s, length, width, nb, maxbits)
    if stochastic:
        _block_elem_sr_run(x[s:e], out[s:e], buf, mb, wl, maxu)
    else:
        _block_elem_nearest_run(x[s:e], out[s:e], mb, wl, maxu)


@parallel_and_serial
def quantize_block(x, out, maxbits, length, width, f, stochastic, k0, k1, stream):  # type: ignore[no-untyped-def]
    """out = Q(x) for block formats, f = (wl, max_units, 0, 0): Δ per block from ``maxbits``
    (block_maxbits over rows of ``length`` cut into runs of ``width``), range ±max_units·Δ;
    tiles of 2048 in parallel, each cut into runs of one block."""
    for t in prange((x.size + _T16 - 1) // _T16):
        _block_tile_of(x, out, t, maxbits, length, width, f, stochastic, k0, k1, stream)


# ---------------------------------------------------------------------------- scaled formats
# OCP MX, NVFP4 and scaled integers (lowprec.formats.ScaledFormat): per block a scale from the
# block's max|x| (``maxbits``, as for block formats), then the element rounding of y = x/into
# (or x·into) on a float-like element grid (emin, emax, man, maxv; integers are emin = emax = 0
# with man = their fractional bits), times ``up``. ``g`` = (rule, a, b, 0): the scale rule
# SCALE_MX (a = emax of the element), SCALE_NVFP4 (a = T, the per-tensor scale, 0 for none;
# b = float32 1/T) or SCALE_INT (a = 2^(B-1) - 1). Eager: lowprec/formats/, the same float32
# operations in the same order (nearest rounding equal bit for bit).
_E4M3_EPS = np.float32(2.0**-6)
_E4M3_MAX = np.float32(448.0)
_SIX = np.float32(6.0)
_NAN = np.float32(np.nan)


@njit(**_INLINE)
def block_scale(maxbits, rule, a, b):  # type: ignore[no-untyped-def]
    """(into, up, divide) of a block whose max|x| has bit pattern ``maxbits``: y = x/into when
    ``divide`` (scaled integers) else x·into; the value is q·up. ``divide`` depends on the
    rule only."""
    if rule == SCALE_MX:
        if maxbits > _INF_BITS:
            return _NAN, _NAN, True
        s = ((maxbits >> 23) & 0xFF) - 127 - int(a)
        s = -127 if s < -127 else s
        s = 127 if s > 127 else s
        # x·2^-s is x/2^s exactly (both powers of two are float32 for |s| <= 127)
        return pow2(-s), pow2(s), False
    amax = i32_as_f32(np.int32(maxbits))
    if rule == SCALE_NVFP4:
        t = _F(a)
        bs = amax / _SIX
        if t != _ZERO:
            bs = bs / t
        c = clamp(bs, _E4M3_EPS, _E4M3_MAX)
        s = round_nearest(c, float_delta(c, -6, 8, 3), -_E4M3_MAX, _E4M3_MAX)
        if t == _ZERO:
            return _ONE / s, s, False
        return _F(b) / s, t * s, False
    # SCALE_INT: ±inf count as float32 max (NaN stays)
    if maxbits == _INF_BITS:
        amax = i32_as_f32(np.int32(_MAX_BITS))
    top = _F(a)
    s = amax / top
    if np.isinf(s * top):
        s = i32_as_f32(np.int32(f32_as_i32(s) - np.int32(1)))
    return (_ONE if s == _ZERO else s), s, True


@njit(**_OPTS)
def _scaled_sr_run(x, out, buf, into, up, divide, emin, emax, man, maxv):  # type: ignore[no-untyped-def]
    if divide:
        for p in range(x.size):
            y = x[p] / into[p]
            q = round_stochastic(y, float_delta(y, emin, emax, man), -maxv, maxv, buf[p])
            out[p] = q * up[p]
    else:
        for p in range(x.size):
            y = x[p] * into[p]
            q = round_stochastic(y, float_delta(y, emin, emax, man), -maxv, maxv, buf[p])
            out[p] = q * up[p]


@njit(**_OPTS)
def _scaled_nearest_run(x, out, into, up, divide, emin, emax, man, maxv):  # type: ignore[no-untyped-def]
    if divide:
        for p in range(x.size):
            y = x[p] / into[p]
            out[p] = round_nearest(y, float_delta(y, emin, emax, man), -maxv, maxv) * up[p]
    else:
        for p in range(x.size):
            y = x[p] * into[p]
            out[p] = round_nearest(y, float_delta(y, emin, emax, man), -maxv, maxv) * up[p]


@parallel_and_serial
def block_scales(maxbits, g, into, up):  # type: ignore[no-untyped-def]
    """into[b], up[b] = block_scale of block b, for every block (one pass before the tiles)."""
    rule = int(g[0])
    for b in prange(maxbits.size):
        into[b], up[b], _ = block_scale(maxbits[b], rule, g[1], g[2])


@njit(**_OPTS)
def _spread_regular(into, up, b0, width, binto, bup):  # type: ignore[no-untyped-def]
    """The per-block scales over a tile that starts at block b0 and holds whole blocks of
    ``width`` (an inner loop of ``width`` stores: it vectorizes)."""
    for blk in range(into.size // width):
        v = binto[b0 + blk]
        w = bup[b0 + blk]
        o = blk * width
        for k in range(width):
            into[o + k] = v
            up[o + k] = w


@njit(**_OPTS)
def _spread_runs(into, up, s, length, width, nb, binto, bup):  # type: ignore[no-untyped-def]
    """The same for any layout (rows of ``length`` in runs of ``width``, the last shorter):
    the tile's first block by division, the next ones by stepping."""
    m = into.size
    r = s // length
    j = (s - r * length) // width
    i = 0
    while i < m:
        end = min(m, r * length + min((j + 1) * width, length) - s)
        b = r * nb + j
        for p in range(i, end):
            into[p] = binto[b]
            up[p] = bup[b]
        i = end
        j += 1
        if j == nb:
            j = 0
            r += 1


@njit(**_OPTS)
def _scaled_tile_of(x, out, t, binto, bup, divide, length, width, f, g, stochastic, k0, k1, stream):  # type: ignore[no-untyped-def]
    """One tile: the blocks' scales spread over its elements, then one loop over the tile
    (per-block work inside the element loop keeps it from vectorizing)."""
    s = t * _T16
    e = min(x.size, s + _T16)
    m = e - s
    emin, emax, man, maxv = int(f[0]), int(f[1]), int(f[2]), _F(f[3])
    into = np.empty(m, np.float32)
    up = np.empty(m, np.float32)
    if width == 1:  # a scale per element, from |x| itself (no block pass before the tiles)
        _scales_of_elements(x[s:e], into, up, g)
    elif length % width == 0 and _T16 % width == 0:
        _spread_regular(into, up, s // width, width, binto, bup)
    else:
        _spread_runs(into, up, s, length, width, (length + width - 1) // width, binto, bup)
    if stochastic:
        buf = np.empty(_T16, np.uint16)
        fill_bits16(buf, t, k0, k1, stream)
        _scaled_sr_run(x[s:e], out[s:e], buf, into, up, divide, emin, emax, man, maxv)
    else:
        _scaled_nearest_run(x[s:e], out[s:e], into, up, divide, emin, emax, man, maxv)


@njit(**_OPTS)
def _scales_of_elements(x, into, up, g):  # type: ignore[no-untyped-def]
    """into[p], up[p] = block_scale of a block of the one element x[p]."""
    rule = int(g[0])
    for p in range(x.size):
        into[p], up[p], _ = block_scale(absbits(x[p]), rule, g[1], g[2])


@parallel_and_serial
def quantize_scaled(x, out, binto, bup, divide, length, width, f, g, stochastic, k0, k1, stream):  # type: ignore[no-untyped-def]
    """out = Q(x) for a scaled format: the element f = (emin, emax, man, max_value); the
    blocks' scales ``binto``/``bup`` (block_scales over block_maxbits of rows of ``length``
    in runs of ``width``), y = x/into when ``divide`` else x·into, value q·up; tiles of 2048
    in parallel. Blocks of one element (``width`` 1) take their scales from x and ``g`` (the
    scale constants, as block_scales) in the tile: ``binto``/``bup`` are not read."""
    for t in prange((x.size + _T16 - 1) // _T16):
        _scaled_tile_of(
            x, out, t, binto, bup, divide, length, width, f, g, stochastic, k0, k1, stream
        )  # fmt: skip


def set_threads(n: int) -> None:
    """numba's thread count for the next kernels (capped at its pool size)."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


# ---------------------------------------------------------------------------- VC quantizer
# Streams under one call's key: Cat draw, stochastic rounding of μ, normals, float re-rounding.
VC_CAT, VC_SR, VC_NORMAL, VC_REROUND = 0, 1, 2, 3
_QUARTER = np.float32(0.25)
_TWO = np.float32(2.0)
_FOUR = np.float32(4.0)


@njit(**_INLINE)
def vc_element(mu, v, delta, lo, hi, z, r_sr, r_cat):  # type: ignore[no-untyped-def]
    """Q_vc(μ, v) of one element on the Δ-lattice (ALGORITHMS.md §4; lowprec/vc.py), in units
    of Δ: m = clamp(μ)/Δ, w = v/Δ², v0 = 1/4.

    w > v0: x = m + sqrt(w - v0)·z, q = rint(x), a = x - q, c = v0;
    else:   q = floor(m) + [u_sr < f] (f = m - floor(m)), a = 0, c = clamp(w - f(1 - f), 0, 1);
    then q + Cat(a, c) with Cat = [2u < c + a² + a] - [2u >= 2 - (c + a² - a)], u = u_cat;
    returned as clamp((q + Cat)·Δ, lo, hi). ``z`` is used only when w > v0, ``r_sr`` only
    when w <= v0."""
    m = clamp(mu, lo, hi) / delta
    w = v / delta / delta
    if w > _QUARTER:
        d = w - _QUARTER
        x = m + np.sqrt(d if d > _ZERO else _ZERO) * z
        q = np.rint(x)
        a = x - q
        second = _QUARTER + a * a
    else:
        fl = np.floor(m)
        f = m - fl
        q = fl + (_ONE if threshold16(r_sr) < f else _ZERO)
        a = _ZERO
        second = clamp(w - f * (_ONE - f), _ZERO, _ONE)
    u2 = _TWO * threshold16(r_cat)
    cat = (_ONE if u2 < second + a else _ZERO) - (_ONE if u2 >= _TWO - (second - a) else _ZERO)
    return clamp((q + cat) * delta, lo, hi)


@njit(**_INLINE)
def vc_reach(mu, v, sd, per_element_var):  # type: ignore[no-untyped-def]
    """|μ| + 4·sqrt(v): the magnitude whose grid the draw lands on (sd: the scalar sqrt(v))."""
    if per_element_var:
        sd = np.sqrt(v if v > _ZERO else _ZERO)
    return np.abs(mu) + sd * _FOUR


@njit(**_OPTS)
def _vc_block_max(mu, var, vmask, sd, b, length, width, nb):  # type: ignore[no-untyped-def]
    r = b // nb
    j = b - r * nb
    s = r * length + j * width
    per = vmask != 0
    acc = np.int32(0)
    for i in range(s, s + min(width, length - j * width)):
        a = absbits(vc_reach(mu[i], var[i & vmask], sd, per))
        acc = a if a > acc else acc
    return acc


@parallel_and_serial
def vc_block_maxbits(mu, var, vmask, sd, rows, length, width, maxbits):  # type: ignore[no-untyped-def]
    """maxbits[b] = bit pattern of max over block b of vc_reach (as block_maxbits)."""
    nb = (length + width - 1) // width
    for b in prange(rows * nb):
        maxbits[b] = _vc_block_max(mu, var, vmask, sd, b, length, width, nb)


@njit(**_OPTS)
def _vc_tile(mu, var, vmask, sd, out, s, kind, f, maxbits, length, width, k0, k1):  # type: ignore[no-untyped-def]
    """One tile (mu, out: its slices, flat start s) of vc_quantize_kernel: the grid of each
    element, then the bits of the branches some element takes, then vc_element (and for
    float formats the stochastic re-rounding onto the grid of the result's binade). One
    function: a helper of its own for the grid cost 0.2-0.5 s more cold compile."""
    m = mu.size
    t = s // _T16
    # the grid of each element, (Δ, lo, hi): fixed f's constants; float Δ from the binade of
    # the reach, range ±max_value; block Δ per block (runs as in quantize_block), ±max_units·Δ
    delta = np.empty(m, np.float32)
    lo = np.empty(m, np.float32)
    hi = np.empty(m, np.float32)
    if kind == FIXED:
        for p in range(m):
            delta[p], lo[p], hi[p] = _F(f[0]), _F(f[1]), _F(f[2])
    elif kind == FLOAT:
        emin, emax, man, maxv = int(f[0]), int(f[1]), int(f[2]), _F(f[3])
        per = vmask != 0
        for p in range(m):
            reach = vc_reach(mu[p], var[(s + p) & vmask], sd, per)
            delta[p], lo[p], hi[p] = float_delta(reach, emin, emax, man), -maxv, maxv
    else:
        wl, maxu = int(f[0]), _F(f[1])
        nb = (length + width - 1) // width
        i = 0
        while i < m:
            b, end = block_run(s, i, m, length, width, nb)
            d = block_delta(maxbits[b], wl)
            h = d * maxu
            for p in range(i, end):
                delta[p], lo[p], hi[p] = d, -h, h
            i = end
    any_big = False
    any_small = False
    for p in range(m):
        big = var[(s + p) & vmask] / delta[p] / delta[p] > _QUARTER
        any_big |= big
        any_small |= not big
    cat = np.empty(_T16, np.uint16)
    fill_bits16(cat, t, k0, k1, VC_CAT)
    sr = np.zeros(_T16, np.uint16)
    if any_small:
        fill_bits16(sr, t, k0, k1, VC_SR)
    z = np.zeros(_T16, np.float32)
    if any_big:
        fill_normals(z[:_T32], 2 * t, k0, k1, VC_NORMAL)
        fill_normals(z[_T32:], 2 * t + 1, k0, k1, VC_NORMAL)
    for p in range(m):
        v = var[(s + p) & vmask]
        out[p] = vc_element(mu[p], v, delta[p], lo[p], hi[p], z[p], sr[p], cat[p])
    if kind == FLOAT:  # results in a coarser binade than Δ's: stochastic rounding onto the grid
        emin, emax, man = int(f[0]), int(f[1]), int(f[2])
        rr = np.empty(_T16, np.uint16)
        fill_bits16(rr, t, k0, k1, VC_REROUND)
        for p in range(m):
            o = out[p]
            out[p] = round_stochastic(o, float_delta(o, emin, emax, man), lo[p], hi[p], rr[p])


@parallel_and_serial
def vc_quantize_kernel(mu, var, vmask, sd, out, kind, f, maxbits, length, width, k0, k1):  # type: ignore[no-untyped-def]
    """out = Q_vc(mu, var) (vc_element per element), tiles of 2048 in parallel.

    ``var``: float32 array, read at index i & vmask (vmask 0: one scalar, -1: per element);
    ``sd``: sqrt of the scalar var. The format: ``kind`` and ``f`` as ``format_params``
    (FIXED (Δ, lo, hi, 0), FLOAT (emin, emax, man, max_value), BLOCK (wl, max_units, 0, 0)
    with ``maxbits`` from vc_block_maxbits over rows of ``length`` in runs of ``width``)."""
    n = mu.size
    for t in prange((n + _T16 - 1) // _T16):
        s = t * _T16
        e = min(n, s + _T16)
        _vc_tile(mu[s:e], var, vmask, sd, out[s:e], s, kind, f, maxbits, length, width, k0, k1)
