"""Counter-based random bits in Triton: Philox4x32-10, the 16-bit thresholds and Box-Muller
normals, in the bit layout of lowprec/kernels/rng.py (the numba kernels use the same layout, so
both backends draw the same bits for the same key; tests/lowprec/kernels/triton/ checks it).

Philox words are uint32 tensors, floats float32 (``@triton.jit`` device functions)::

    philox4x32(c0, c1, c2, c3, k0, k1) -> (w0, w1, w2, w3)   ten rounds (Salmon et al., SC'11)
    group_words(g, k0, k1, stream)       the words of Philox groups g (int64): counter
                                         (g lo, g hi, stream, 0)
    load_key(key_ptr) -> (k0, k1)        the call's key from its int64 tensor
    threshold16(r) = (2r + 1)/2^17       the midpoint of a 16-bit draw's cell (exact)
    box_muller(wa, wb) -> (z_cos, z_sin)

Two layouts. Quantizers (tiles): a tile of 2048 elements is one program, its 256 Philox groups
computed once; element 256·j + p of the tile takes half j % 2 of word j // 2 of group p
(``tile_words``, ``tile_u``), a 32-bit tile of 1024 its normals from words (w0, w1) and
(w2, w3) of group p (``tile_normals``). Steps (windows, as lowprec/kernels/numba/step.py): call
q of a stream serves elements 8q .. 8q + 7 (element 8q + 2k + b: half b of word k;
``window_thresholds``) or 4q .. 4q + 3 for normals (``window_normals``).
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


# ---------------------------------------------------------------------------- tiles


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
def tile_u(words, J: tl.constexpr):
    """The threshold of a 16-bit tile's elements 256·J + p: threshold16 of tile_r16."""
    return threshold16(tile_r16(words, J))


@triton.jit
def tile_normals(tile, k0, k1, stream):
    """N(0, 1) of a 32-bit tile's elements 256·J + p (J = 0..3) as four rows: Box-Muller of
    words (w0, w1) and (w2, w3) of group p."""
    w0, w1, w2, w3 = tile_words(tile, k0, k1, stream)
    z0, z1 = box_muller(w0, w1)
    z2, z3 = box_muller(w2, w3)
    return z0, z1, z2, z3


# ---------------------------------------------------------------------------- windows


@triton.jit
def _u(w, HIGH: tl.constexpr):
    return threshold16(half16(w, HIGH))


@triton.jit
def window_thresholds(base, k0, k1, stream, ON: tl.constexpr, BLOCK_: tl.constexpr):
    """Thresholds of elements base .. base + BLOCK_ - 1 under ``stream`` (base a multiple of 8;
    zeros when not ON): Philox call q serves elements 8q .. 8q+7, element 8q + 2k + b takes
    half b of word k (numba/draws.fill), put in element order with tl.join / tl.reshape."""
    if ON:
        q = (base // 8 + tl.arange(0, BLOCK_ // 8)).to(tl.int64)
        w0, w1, w2, w3 = group_words(q, k0, k1, stream)
        lo = tl.join(tl.join(_u(w0, 0), _u(w2, 0)), tl.join(_u(w1, 0), _u(w3, 0)))
        hi = tl.join(tl.join(_u(w0, 1), _u(w2, 1)), tl.join(_u(w1, 1), _u(w3, 1)))
        return tl.reshape(tl.join(lo, hi), [BLOCK_])
    else:
        return tl.zeros([BLOCK_], tl.float32)


@triton.jit
def window_normals(base, k0, k1, stream, ON: tl.constexpr, BLOCK_: tl.constexpr):
    """N(0, 1) of elements base .. base + BLOCK_ - 1 under ``stream`` (base a multiple of 4;
    zeros when not ON): Philox call q serves elements 4q .. 4q+3, Box-Muller of (w0, w1) ->
    4q (cos), 4q+1 (sin) and of (w2, w3) -> 4q+2, 4q+3."""
    if ON:
        q = (base // 4 + tl.arange(0, BLOCK_ // 4)).to(tl.int64)
        w0, w1, w2, w3 = group_words(q, k0, k1, stream)
        z0, z1 = box_muller(w0, w1)
        z2, z3 = box_muller(w2, w3)
        return tl.reshape(tl.join(tl.join(z0, z2), tl.join(z1, z3)), [BLOCK_])
    else:
        return tl.zeros([BLOCK_], tl.float32)
