"""GPU kernels in Triton: the counter-based bits and the fused quantizers.

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
    tile_words(tile, k0, k1, stream) -> words, tile_r16(words, J), tile_normals(...) -> 4 rows
    grid(x, KIND, f, gd) -> (Δ, lo, hi)                     a format's grid per element

A tile of 2048 elements is one program: its 256 Philox groups are computed once (registers
only), and element 256·j + p of the tile takes half j of group p, as on the CPU. A format is
one value: ``KIND`` (constexpr, as lowprec.kernels.fused.format_params) and the tuple ``f`` of
:func:`format_args`.
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
def tile_words(tile, k0, k1, stream):
    """The four words of the 256 Philox groups of ``tile`` (a tile of 2048 16-bit draws or
    1024 32-bit ones) under ``stream``."""
    return group_words(tile * G + tl.arange(0, G), k0, k1, stream)


@triton.jit
def tile_r16(words, J: tl.constexpr):
    """r16 of a 16-bit tile's elements 256·J + p (J = 0..7): half J % 2 of word J // 2."""
    return half16(words[J // 2], J % 2)


@triton.jit
def tile_normals(tile, k0, k1, stream):
    """N(0, 1) of a 32-bit tile's elements 256·J + p (J = 0..3) as four rows: Box-Muller of
    words (w0, w1) and (w2, w3) of group p."""
    w0, w1, w2, w3 = tile_words(tile, k0, k1, stream)
    z0, z1 = box_muller(w0, w1)
    z2, z3 = box_muller(w2, w3)
    return z0, z1, z2, z3


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
    sub = (k * 0 + 1) << tl.minimum(tl.maximum(k + 149, 0), 22)  # a tensor 1, shifted
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


# ---------------------------------------------------------------------------- formats
# A kernel takes a format as ``KIND`` (constexpr; lowprec.kernels.fused.format_params) and one
# tuple ``f`` of three floats and three integers (format_args): FIXED (Δ, lo, hi, -, -, -),
# BLOCK (max_units, -, -, wl, -, -), FLOAT (max_value, -, -, emin, emax, man).
FIXED: tl.constexpr = tl.constexpr(1)
BLOCK: tl.constexpr = tl.constexpr(2)
FLOAT: tl.constexpr = tl.constexpr(3)


def format_args(kind: int, consts: tuple[float, ...]) -> tuple[float, float, float, int, int, int]:
    """The tuple ``f`` of a (kind, constants) pair of format_params."""
    c = consts
    if kind == 1:
        return float(c[0]), float(c[1]), float(c[2]), 0, 0, 0
    if kind == 2:
        return float(c[1]), 0.0, 0.0, int(c[0]), 0, 0
    if kind == 3:
        return float(c[3]), 0.0, 0.0, int(c[0]), int(c[1]), int(c[2])
    return 0.0, 0.0, 0.0, 0, 0, 0


@triton.jit
def grid(x, KIND: tl.constexpr, f, gd):
    """(Δ, lo, hi) of each element of x: fixed f's constants; block the block's Δ ``gd``,
    range ±max_units·gd; float Δ from x's binade, range ±max_value."""
    z = tl.zeros_like(x)
    if KIND == FIXED:
        return z + f[0], z + f[1], z + f[2]
    elif KIND == BLOCK:
        hi = gd * f[0]
        return gd, -hi, hi
    else:
        return float_delta(x, f[3], f[4], f[5]), z - f[0], z + f[0]


@triton.jit
def block_delta_at(maxbits_ptr, offs, mask, KIND: tl.constexpr, f, blocks):
    """Δ of the block of each flat index ``offs`` (block formats; 0 otherwise): the tensor is
    rows of ``length`` values in runs of ``width``, blocks = (nb, length, width)."""
    if KIND == BLOCK:
        nb, length, width = blocks
        r = offs // length
        c = offs - r * length
        return block_delta(tl.load(maxbits_ptr + r * nb + c // width, mask=mask, other=0), f[3])
    else:
        return 0.0


# ---------------------------------------------------------------------------- quantize kernels


@triton.jit
def quantize_kernel(
    x_ptr, out_ptr, n, key_ptr, stream, f, maxbits_ptr, blocks,
    KIND: tl.constexpr, STOCHASTIC: tl.constexpr,
):  # fmt: skip
    """One tile of 2048 elements: out = Q_F(x), F = (KIND, f); block formats read each
    element's Δ from ``maxbits`` (block_maxbits_kernel; ``blocks`` = (nb, length, width))."""
    tile = tl.program_id(0).to(tl.int64)
    if STOCHASTIC:
        k0, k1 = load_key(key_ptr)
        words = tile_words(tile, k0, k1, stream)
    for j in tl.static_range(8):
        offs = tile * TILE16 + j * G + tl.arange(0, G)
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        d, lo, hi = grid(x, KIND, f, block_delta_at(maxbits_ptr, offs, mask, KIND, f, blocks))
        if STOCHASTIC:
            q = round_stochastic(x, d, lo, hi, tile_r16(words, j))
        else:
            q = round_nearest(x, d, lo, hi)
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
def bits16_kernel(out_ptr, n, key_ptr, stream):
    """out[i] = r16 of element i (int32): the bits themselves, for tests against numba."""
    tile = tl.program_id(0).to(tl.int64)
    k0, k1 = load_key(key_ptr)
    words = tile_words(tile, k0, k1, stream)
    for j in tl.static_range(8):
        offs = tile * TILE16 + j * G + tl.arange(0, G)
        tl.store(out_ptr + offs, tile_r16(words, j).to(tl.int32), mask=offs < n)


# ---------------------------------------------------------------------------- VC quantizer
# Streams under one call's key (as cpu.py): Cat, rounding of μ, normals, float re-rounding.
VC_CAT: tl.constexpr = tl.constexpr(0)
VC_SR: tl.constexpr = tl.constexpr(1)
VC_NORMAL: tl.constexpr = tl.constexpr(2)
VC_REROUND: tl.constexpr = tl.constexpr(3)


@triton.jit
def vc_element(mu, v, delta, lo, hi, z, r_sr, r_cat):
    """Q_vc(μ, v) on the Δ-lattice, element-wise (cpu.vc_element; ALGORITHMS.md §4)."""
    m = tl.math.div_rn(clamp(mu, lo, hi), delta)
    w = tl.math.div_rn(tl.math.div_rn(v, delta), delta)
    big = w > 0.25
    x = m + tl.sqrt_rn(tl.maximum(w - 0.25, 0.0)) * z
    q_big = rint(x)
    a_big = x - q_big
    fl = tl.floor(m)
    f = m - fl
    q_small = fl + tl.where(threshold16(r_sr) < f, 1.0, 0.0)
    c_small = clamp(w - f * (1.0 - f), 0.0, 1.0)
    q = tl.where(big, q_big, q_small)
    a = tl.where(big, a_big, 0.0)
    second = tl.where(big, 0.25 + a_big * a_big, c_small)
    u2 = 2.0 * threshold16(r_cat)
    cat = tl.where(u2 < second + a, 1.0, 0.0) - tl.where(u2 >= 2.0 - (second - a), 1.0, 0.0)
    return clamp((q + cat) * delta, lo, hi)


@triton.jit
def vc_reach(mu, v, sd, VAR_PER: tl.constexpr):
    """|μ| + 4·sqrt(v) (sd: the scalar sqrt(v) when v is one number)."""
    if VAR_PER:
        return tl.abs(mu) + tl.sqrt_rn(tl.maximum(v, 0.0)) * 4.0
    else:
        return tl.abs(mu) + sd * 4.0


@triton.jit
def vc_block_maxbits_kernel(
    mu_ptr,
    var_ptr,
    vscalar,
    sd,
    maxbits_ptr,
    nblocks,
    nb,
    length,
    width,
    VAR_PER: tl.constexpr,
    BB: tl.constexpr,
    CW: tl.constexpr,
):
    """maxbits[b] = max over block b of absbits(vc_reach) (as block_maxbits_kernel)."""
    vscalar, sd = tl.cast(vscalar, tl.float32), tl.cast(sd, tl.float32)
    b = tl.program_id(0).to(tl.int64) * BB + tl.arange(0, BB)
    cols = tl.program_id(1).to(tl.int64) * CW + tl.arange(0, CW)
    r = b // nb
    j = b - r * nb
    offs = (r * length + j * width)[:, None] + cols[None, :]
    valid = b < nblocks
    mask = valid[:, None] & (cols[None, :] < tl.minimum(width, length - j * width)[:, None])
    mu = tl.load(mu_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if VAR_PER:  # noqa: SIM108 (a constexpr branch)
        v = tl.load(var_ptr + offs, mask=mask, other=0.0)
    else:
        v = tl.zeros_like(mu) + vscalar
    reach = tl.where(mask, vc_reach(mu, v, sd, VAR_PER), 0.0)
    tl.atomic_max(maxbits_ptr + b, tl.max(absbits(reach), axis=1), mask=valid)


@triton.jit
def vc_quantize_kernel(
    mu_ptr, var_ptr, vscalar, sd, out_ptr, n, key_ptr, f, maxbits_ptr, blocks,
    KIND: tl.constexpr, VAR_PER: tl.constexpr,
):  # fmt: skip
    """One tile of 2048 elements of Q_vc(mu, var) (vc_element), format F = (KIND, f) as in
    quantize_kernel; float formats: Δ from the binade of vc_reach, then the result rounded
    stochastically onto the grid of its own binade."""
    vscalar, sd = tl.cast(vscalar, tl.float32), tl.cast(sd, tl.float32)
    tile = tl.program_id(0).to(tl.int64)
    k0, k1 = load_key(key_ptr)
    cat = tile_words(tile, k0, k1, VC_CAT)
    sr = tile_words(tile, k0, k1, VC_SR)
    if KIND == FLOAT:
        rr = tile_words(tile, k0, k1, VC_REROUND)
    za = tile_normals(2 * tile, k0, k1, VC_NORMAL)
    zb = tile_normals(2 * tile + 1, k0, k1, VC_NORMAL)
    for j in tl.static_range(8):
        offs = tile * TILE16 + j * G + tl.arange(0, G)
        mask = offs < n
        mu = tl.load(mu_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        if VAR_PER:
            v = tl.load(var_ptr + offs, mask=mask, other=0.0)
        else:
            v = tl.zeros_like(mu) + vscalar
        gd = block_delta_at(maxbits_ptr, offs, mask, KIND, f, blocks)
        if KIND == FLOAT:
            d, lo, hi = grid(vc_reach(mu, v, sd, VAR_PER), KIND, f, gd)
        else:
            d, lo, hi = grid(mu, KIND, f, gd)
        if j < 4:  # noqa: SIM108 (a constexpr branch)
            z = za[j]
        else:
            z = zb[j - 4]
        q = vc_element(mu, v, d, lo, hi, z, tile_r16(sr, j), tile_r16(cat, j))
        if KIND == FLOAT:
            q = round_stochastic(q, float_delta(q, f[3], f[4], f[5]), lo, hi, tile_r16(rr, j))
        tl.store(out_ptr + offs, q, mask=mask)
