"""Counter-based random bits in numba: Philox4x32-10, the 16-bit draws and their thresholds,
and Box-Muller normals, in the bit layout of :mod:`lowprec.kernels.rng` (its docstring cites
the generator; Salmon et al., SC'11).

Device-level building blocks (call them from your own ``@njit`` kernels; every Philox word is
a uint64 holding 32 bits, every float a float32):

    philox4x32(c0, c1, c2, c3, k0, k1) -> (w0, w1, w2, w3)    ten rounds
    group_words(g, k0, k1, stream) -> (w0, w1, w2, w3)         counter (g lo, g hi, stream, 0)
    fill_bits16(buf, tile, k0, k1, stream)                     buf: uint16[2048], r16 of tile
    fill_words(buf, tile, k0, k1, stream)                      buf: uint32[1024]
    fill_normals(buf, tile, k0, k1, stream)                    buf: float32[1024], N(0, 1)
    bits16_at(i, k0, k1, stream) -> r                          r16 of element i (scalar path)
    threshold16(r) -> (2r + 1)/2^17                            the unbiased midpoint threshold
    lo16(w), hi16(w)                                           threshold16 of a word's halves
    box_muller(wa, wb) -> (z_cos, z_sin)

The tile layout is what makes the loops vectorize: a tile's 256 Philox groups are computed in
one loop (LLVM turns it into vector multiplies), their halves land in a 4 KB buffer, and the
rounding loop then streams through contiguous elements.

Box-Muller (the one the quantizers' VC draws and the sampler steps share): the uniforms of
rng.py, u1 = (2·(wa >> 9) + 1)·2^-24 in (0, 1), u2 = (wb >> 8)·2^-24, and
z = sqrt(-2 ln u1)·(cos 2πu2, sin 2πu2) with a float32 polynomial logarithm (absolute error
< 1e-6) and sine/cosine (< 4e-7): loops over it vectorize without a vector math library. Against
the exact transform of the same bits (rng.py's law) |Δz| < 2e-6·(1 + |z|) (tested); |z| <= 5.77.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from lowprec.kernels import rng
from lowprec.kernels.numba.jit import INLINE, OPTS

__all__ = [
    "bits16_at",
    "box_muller",
    "f32_as_i32",
    "fill_bits16",
    "fill_normals",
    "fill_words",
    "group_words",
    "hi16",
    "i32_as_f32",
    "lo16",
    "philox4x32",
    "threshold16",
]

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
_F = np.float32
_F17 = _F(2.0**-17)
_F24 = _F(2.0**-24)
_ZERO, _ONE, _FOUR = _F(0.0), _F(1.0), _F(4.0)
_LN2 = _F(math.log(2.0))
_SQRT_HALF_BITS = np.int32(0x3F3504F3)
_I23 = np.int32(23)
_HALF_PI, _QUARTER_PI = _F(math.pi / 2), _F(math.pi / 4)
_R = _F(math.sqrt(0.5))


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


# ---------------------------------------------------------------------------- Philox


@njit(**INLINE)
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


@njit(**INLINE)
def group_words(g, k0, k1, stream):  # type: ignore[no-untyped-def]
    """The four words of Philox group ``g`` (int) under ``stream``: counter (g lo, g hi, s, 0)."""
    gg = np.uint64(g)
    return philox4x32(
        gg & _MASK32, gg >> _S32, np.uint64(stream), np.uint64(0), np.uint64(k0), np.uint64(k1)
    )


@njit(**OPTS)
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


@njit(**OPTS)
def fill_words(buf, tile, k0, k1, stream):  # type: ignore[no-untyped-def]
    """buf[p] = 32-bit word of element 1024·tile + p, p < 1024 (``buf`` uint32[1024])."""
    base = tile * _G
    for gl in range(_G):
        w0, w1, w2, w3 = group_words(base + gl, k0, k1, stream)
        buf[gl] = w0
        buf[_G + gl] = w1
        buf[2 * _G + gl] = w2
        buf[3 * _G + gl] = w3


@njit(**INLINE)
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


@njit(**INLINE)
def threshold16(r):  # type: ignore[no-untyped-def]
    """u = (2r + 1)/2^17 for a 16-bit draw r: exact in float32, the midpoint of r's cell."""
    return _F(np.int32(r) * np.int32(2) + np.int32(1)) * _F17


@njit(**INLINE)
def lo16(w):  # type: ignore[no-untyped-def]
    """threshold16 of the low half of word w."""
    return threshold16(w & _MASK16)


@njit(**INLINE)
def hi16(w):  # type: ignore[no-untyped-def]
    """threshold16 of the high half of word w."""
    return threshold16((w >> _S16) & _MASK16)


# ---------------------------------------------------------------------------- normals


@njit(**INLINE)
def _log(u):  # type: ignore[no-untyped-def]
    """ln u for a normal float32 u > 0: u = 2^e·m, m in [√½, √2), ln u = e·ln 2 + 2·atanh(s)
    with s = (m - 1)/(m + 1), |s| <= 0.172, by its series to s^9 (error < 1e-6 absolute)."""
    b = f32_as_i32(u)
    e = (b - _SQRT_HALF_BITS) >> _I23
    m = i32_as_f32(np.int32(b - (e << _I23)))
    s = (m - _ONE) / (m + _ONE)
    s2 = s * s
    p = _F(2.0 / 9.0) * s2 + _F(2.0 / 7.0)
    p = p * s2 + _F(2.0 / 5.0)
    p = p * s2 + _F(2.0 / 3.0)
    p = p * s2 + _F(2.0)
    return _F(e) * _LN2 + s * p


@njit(**INLINE)
def _cos_sin_2pi(u):  # type: ignore[no-untyped-def]
    """(cos 2πu, sin 2πu) for u in [0, 1): quadrant q = floor(4u), angle q·π/2 + π/4 + φ with
    φ in [-π/4, π/4) by Taylor polynomials (error < 4e-7), rotated into place."""
    t = u * _FOUR
    q = np.int32(t)
    f = (t - _F(q)) * _HALF_PI - _QUARTER_PI
    f2 = f * f
    s = f * (_ONE + f2 * (_F(-1 / 6) + f2 * (_F(1 / 120) + f2 * _F(-1 / 5040))))
    c = _ONE + f2 * (_F(-0.5) + f2 * (_F(1 / 24) + f2 * (_F(-1 / 720) + f2 * _F(1 / 40320))))
    c1 = (c - s) * _R  # rotate by π/4
    s1 = (s + c) * _R
    odd = (q & 1) == 1  # rotate by q·π/2
    c2 = -s1 if odd else c1
    s2 = c1 if odd else s1
    if (q & 2) == 2:
        return -c2, -s2
    return c2, s2


@njit(**INLINE)
def box_muller(wa, wb):  # type: ignore[no-untyped-def]
    """Two independent N(0, 1) float32 from two 32-bit words (module docstring)."""
    u1 = _F(np.int32((wa >> _S9) * np.uint64(2) + np.uint64(1))) * _F24
    u2 = _F(np.int32(wb >> _S8)) * _F24
    rad = np.sqrt(_F(-2.0) * _log(u1))
    c, s = _cos_sin_2pi(u2)
    return rad * c, rad * s


@njit(**OPTS)
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
