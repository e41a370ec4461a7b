"""GPU kernels in Triton: the counter-based bits and the fused quantizers (issue 13, items 1-2).

The same functions, names and bit layout as lowprec/kernels/cpu.py (see lowprec/kernels/rng.py),
so the numba and Triton kernels give the same bits for the same key; under
``TRITON_INTERPRET=1`` these kernels run on the CPU (that is how CI exercises them).

Device-level building blocks (``@triton.jit``; call them from your own Triton kernels; Philox
words are uint32 tensors, floats float32):

    philox4x32(c0, c1, c2, c3, k0, k1) -> (w0, w1, w2, w3)
    group_words(g, k0, k1, stream) -> (w0, w1, w2, w3)     g: int64 tensor of group indices
    load_key(key_ptr) -> (k0, k1)                           the call's key from its int64 tensor
    half16(w, HIGH: constexpr) -> r16                       low (HIGH=0) or high 16 bits of w
    threshold16(r) -> (2r + 1)/2^17
    box_muller(wa, wb) -> (z_cos, z_sin)
    rint(y)                                                 round half to even, exact
    clamp(x, lo, hi), round_nearest(x, delta, lo, hi), round_stochastic(x, delta, lo, hi, r)
    pow2(k), pow2_bits(k), float_delta(x, emin, emax, man), absbits(x), block_delta(maxbits, wl)

A tile of 2048 elements is one program: its 256 Philox groups are computed once (registers
only), and element 256·j + p of the tile takes half j of group p, as on the CPU.
"""

from __future__ import annotations

import triton
import triton.language as tl

from lowprec.kernels import rng

M0: tl.constexpr = tl.constexpr(rng.M0)
M1: tl.constexpr = tl.constexpr(rng.M1)
W0: tl.constexpr = tl.constexpr(rng.W0)
W1: tl.constexpr = tl.constexpr(rng.W1)
ROUNDS: tl.constexpr = tl.constexpr(rng.ROUNDS)
G: tl.constexpr = tl.constexpr(rng.GROUPS_PER_TILE)
TILE16: tl.constexpr = tl.constexpr(rng.TILE16)
TILE32: tl.constexpr = tl.constexpr(rng.TILE32)


# ---------------------------------------------------------------------------- random bits


@triton.jit
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 (uint32 tensors): rng.py's rounds, word for word."""
    for _ in tl.static_range(ROUNDS):
        a0 = c0
        a2 = c2
        c0 = tl.umulhi(a2, M1) ^ c1 ^ k0
        c2 = tl.umulhi(a0, M0) ^ c3 ^ k1
        c1 = a2 * M1
        c3 = a0 * M0
        k0 = k0 + W0
        k1 = k1 + W1
    return c0, c1, c2, c3


@triton.jit
def load_key(key_ptr):
    """(k0, k1) as uint32 scalars from the call's key tensor (int64, two words)."""
    k0 = tl.load(key_ptr).to(tl.uint32)
    k1 = tl.load(key_ptr + 1).to(tl.uint32)
    return k0, k1


@triton.jit
def group_words(g, k0, k1, stream):
    """The four words of Philox groups ``g`` (int64 tensor) under ``stream``."""
    c0 = (g & 0xFFFFFFFF).to(tl.uint32)
    c1 = (g >> 32).to(tl.uint32)
    c2 = tl.zeros_like(c0) + stream
    c3 = tl.zeros_like(c0)
    return philox4x32(c0, c1, c2, c3, k0 + tl.zeros_like(c0), k1 + tl.zeros_like(c0))


@triton.jit
def half16(w, HIGH: tl.constexpr):
    """The low (HIGH=0) or high (HIGH=1) 16 bits of uint32 words."""
    if HIGH:
        return w >> 16
    else:
        return w & 0xFFFF


@triton.jit
def threshold16(r):
    """u = (2r + 1)/2^17, exact in float32."""
    return (r * 2 + 1).to(tl.int32).to(tl.float32) * 7.62939453125e-06


@triton.jit
def box_muller(wa, wb):
    """N(0, 1) pair: u1 = (2·(wa >> 9) + 1)·2^-24, u2 = (wb >> 8)·2^-24 (rng.py)."""
    u1 = ((wa >> 9) * 2 + 1).to(tl.int32).to(tl.float32) * 5.9604644775390625e-08
    u2 = (wb >> 8).to(tl.int32).to(tl.float32) * 5.9604644775390625e-08
    rad = tl.sqrt(-2.0 * tl.log(u1))
    theta = 6.2831854820251465 * u2
    return rad * tl.cos(theta), rad * tl.sin(theta)


@triton.jit
def tile_word(w0, w1, w2, w3, J: tl.constexpr):
    """Word J >> 1 of a tile's groups (J = 0..7, the tile's 16-bit half index)."""
    if J // 2 == 0:
        return w0
    elif J // 2 == 1:
        return w1
    elif J // 2 == 2:
        return w2
    else:
        return w3


# ---------------------------------------------------------------------------- rounding


@triton.jit
def rint(y):
    """Round half to even, exact: (|y| + 2^23) - 2^23 for |y| < 2^23 (float32 addition rounds
    to nearest even), y itself beyond (already an integer); the sign of y kept (-0.0 too)."""
    a = tl.abs(y)
    r = (a + 8388608.0) - 8388608.0
    r = tl.where(a < 8388608.0, r, a)
    sign = y.to(tl.int32, bitcast=True) & -2147483648
    return (r.to(tl.int32, bitcast=True) | sign).to(tl.float32, bitcast=True)


@triton.jit
def clamp(x, lo, hi):
    """min(max(x, lo), hi) with NaN kept."""
    c = tl.where(x < lo, lo, x)
    return tl.where(c > hi, hi, c)


@triton.jit
def round_nearest(x, delta, lo, hi):
    """rint(clamp(x)/Δ)·Δ (Δ a power of two: the division is exact)."""
    return rint(tl.math.div_rn(clamp(x, lo, hi), delta)) * delta


@triton.jit
def round_stochastic(x, delta, lo, hi, r):
    """(floor(y) + [u < y - floor(y)])·Δ, y = clamp(x)/Δ, u = threshold16(r)."""
    y = tl.math.div_rn(clamp(x, lo, hi), delta)
    f = tl.floor(y)
    up = tl.where(threshold16(r) < y - f, 1.0, 0.0)
    return (f + up) * delta


@triton.jit
def pow2_bits(k):
    """The bit pattern of 2^k (int32) for int32 k in [-149, 127]."""
    normal = (tl.maximum(k, -126) + 127) << 23
    sub = 1 << tl.minimum(tl.maximum(k + 149, 0), 22)
    return tl.where(k >= -126, normal, sub)


@triton.jit
def pow2(k):
    """2^k as float32 for int32 k in [-149, 127]."""
    return pow2_bits(k).to(tl.float32, bitcast=True)


@triton.jit
def float_delta(x, emin, emax, man):
    """Δ = 2^(clamp(e, emin, emax) - man), e from x's exponent field (SmallFloat._grid)."""
    e = ((x.to(tl.int32, bitcast=True) >> 23) & 0xFF) - 127
    e = tl.minimum(tl.maximum(e, emin), emax)
    return pow2(e - man)


@triton.jit
def absbits(x):
    """The bit pattern of |x| (int32): its integer max is max|x|, NaN above +inf."""
    return x.to(tl.int32, bitcast=True) & 0x7FFFFFFF


@triton.jit
def block_delta(maxbits, wl):
    """Δ = 2^(e + 2 - wl) from a block's max|x| bit pattern (BlockFloat._delta); NaN -> inf."""
    m = tl.minimum(tl.maximum(maxbits, 0x00800000), 0x7F7FFFFF)
    k = ((m >> 23) & 0xFF) - 125 - wl
    bits = tl.where(maxbits > 0x7F800000, 0x7F800000, pow2_bits(tl.maximum(k, -149)))
    return bits.to(tl.float32, bitcast=True)


# ---------------------------------------------------------------------------- quantize kernels


@triton.jit
def quantize_fixed_kernel(
    x_ptr, out_ptr, n, key_ptr, stream, delta, lo, hi, STOCHASTIC: tl.constexpr
):
    """One tile of 2048 elements: Q(x) on a fixed grid (Δ, lo, hi scalars)."""
    tile = tl.program_id(0).to(tl.int64)
    gl = tl.arange(0, G)
    base = tile * TILE16
    if STOCHASTIC:
        k0, k1 = load_key(key_ptr)
        w0, w1, w2, w3 = group_words(tile * G + gl, k0, k1, stream)
    for j in tl.static_range(8):
        offs = base + j * G + gl
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        if STOCHASTIC:
            r = half16(tile_word(w0, w1, w2, w3, j), j % 2)
            q = round_stochastic(x, delta, lo, hi, r)
        else:
            q = round_nearest(x, delta, lo, hi)
        tl.store(out_ptr + offs, q, mask=mask)


@triton.jit
def quantize_float_kernel(
    x_ptr, out_ptr, n, key_ptr, stream, emin, emax, man, maxv, STOCHASTIC: tl.constexpr
):
    """One tile of 2048 elements: Q(x) for float<exp,man> (Δ per element, range ±maxv)."""
    tile = tl.program_id(0).to(tl.int64)
    gl = tl.arange(0, G)
    base = tile * TILE16
    if STOCHASTIC:
        k0, k1 = load_key(key_ptr)
        w0, w1, w2, w3 = group_words(tile * G + gl, k0, k1, stream)
    for j in tl.static_range(8):
        offs = base + j * G + gl
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        d = float_delta(x, emin, emax, man)
        if STOCHASTIC:
            r = half16(tile_word(w0, w1, w2, w3, j), j % 2)
            q = round_stochastic(x, d, -maxv, maxv, r)
        else:
            q = round_nearest(x, d, -maxv, maxv)
        tl.store(out_ptr + offs, q, mask=mask)


@triton.jit
def block_maxbits_kernel(
    x_ptr, maxbits_ptr, nblocks, nb, length, width, BB: tl.constexpr, CW: tl.constexpr
):
    """maxbits[b] = max over block b of absbits(x) (atomic max into a zeroed int32 tensor):
    program (i, c) covers blocks BB·i .. BB·i + BB - 1, columns CW·c .. CW·c + CW - 1."""
    b = tl.program_id(0).to(tl.int64) * BB + tl.arange(0, BB)
    cols = tl.program_id(1).to(tl.int64) * CW + tl.arange(0, CW)
    r = b // nb
    j = b - r * nb
    start = r * length + j * width
    blen = tl.minimum(width, length - j * width)
    valid = b < nblocks
    mask = valid[:, None] & (cols[None, :] < blen[:, None])
    x = tl.load(x_ptr + start[:, None] + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    m = tl.max(absbits(x), axis=1)
    tl.atomic_max(maxbits_ptr + b, m, mask=valid)


@triton.jit
def quantize_block_kernel(
    x_ptr,
    out_ptr,
    n,
    maxbits_ptr,
    nb,
    length,
    width,
    wl,
    maxu,
    key_ptr,
    stream,
    STOCHASTIC: tl.constexpr,
):
    """One tile of 2048 elements: Q(x) for block formats, Δ per element's block."""
    tile = tl.program_id(0).to(tl.int64)
    gl = tl.arange(0, G)
    base = tile * TILE16
    if STOCHASTIC:
        k0, k1 = load_key(key_ptr)
        w0, w1, w2, w3 = group_words(tile * G + gl, k0, k1, stream)
    for j in tl.static_range(8):
        offs = base + j * G + gl
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        r = offs // length
        c = offs - r * length
        mb = tl.load(maxbits_ptr + r * nb + c // width, mask=mask, other=0)
        d = block_delta(mb, wl)
        hi = d * maxu
        if STOCHASTIC:
            q = round_stochastic(x, d, -hi, hi, half16(tile_word(w0, w1, w2, w3, j), j % 2))
        else:
            q = round_nearest(x, d, -hi, hi)
        tl.store(out_ptr + offs, q, mask=mask)


@triton.jit
def bits16_kernel(out_ptr, n, key_ptr, stream):
    """out[i] = r16 of element i (int32): the bits themselves, for tests against numba."""
    tile = tl.program_id(0).to(tl.int64)
    gl = tl.arange(0, G)
    k0, k1 = load_key(key_ptr)
    w0, w1, w2, w3 = group_words(tile * G + gl, k0, k1, stream)
    for j in tl.static_range(8):
        offs = tile * TILE16 + j * G + gl
        r = half16(tile_word(w0, w1, w2, w3, j), j % 2)
        tl.store(out_ptr + offs, r.to(tl.int32), mask=offs < n)
