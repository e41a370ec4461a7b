"""Grids and roundings in Triton: every formula the Triton quantizers and steps share, once.

A format is ``KIND`` (a constexpr, the codes of lowprec/kernels/encoding.py) and one tuple ``f``
of three floats and three integers (encoding.triton_format_args): FIXED (Δ, lo, hi, -, -, -),
BLOCK (max_units, -, -, wl, -, -), FLOAT (max_value, -, -, emin, emax, man); the scaled kinds
MX, INT, NVFP4 take their element's FLOAT tuple (ALGORITHMS.md §2, §11)::

    grid(x, KIND, f, mb) -> (Δ, lo, hi)        per element; ``mb`` the bit pattern of the
                                               exponent group's max|x| (block, scaled kinds)
    round_on_grid(x, Δ, lo, hi, u, STOCHASTIC)  rint(clamp(x)/Δ)·Δ, or (floor(y) + [u < y -
                                               floor(y)])·Δ with y = clamp(x)/Δ (§2)
    quantize_value(x, KIND, f, mb, u, STOCHASTIC)  Q_F(x): the element map, grid, rounding
    vc_on_grid(μ, v, Δ, lo, hi, z, u_sr, u_cat)    Q_vc(μ, v) on the Δ-lattice (§4)
    block_scale(mb, KIND, f, ts) -> (into, up)     a scaled block's scales (§11)
    to_element(x, into, KIND)                   y = x/into (INT) or x·into (MX, NVFP4)

Scaled formats (lowprec/formats/scaled.py, the eager reference, with its float32 operations in
its order: nearest rounding equal bit for bit): MX s = clamp(floor(log2 amax) - emax(E), ±127)
from amax's exponent field, y = x·2^-s, value q·2^s (a NaN block is NaN; MX_RCEIL s =
ceil(log2(amax/max(E))) from the quotient's bits, MX_EVEN the floor of amax rounded half up to
E's mantissa bits); NVFP4 S =
E4M3(clamp(amax/6 [/T], 2^-6, 448)) to nearest, y = x·(1/S) or x·((1/T)/S), value q·S or
q·(T·S), T the per-tensor scale (0: none; ``ts`` = (T, 1/T)); INT s = amax/(2^(B-1) - 1) (±inf
count as float32 max; the next float32 down where top·s would overflow), y = x/s (s = 0 gives
s := 1), value q·s. Divisions are tl.math.div_rn (the GPU's default float32 division is not
correctly rounded).
"""

from __future__ import annotations

import triton
import triton.language as tl

from lowprec.kernels import encoding

FIXED: tl.constexpr = tl.constexpr(encoding.FIXED)
BLOCK: tl.constexpr = tl.constexpr(encoding.BLOCK)
FLOAT: tl.constexpr = tl.constexpr(encoding.FLOAT)
MX: tl.constexpr = tl.constexpr(encoding.MX)
INT: tl.constexpr = tl.constexpr(encoding.INT)
NVFP4: tl.constexpr = tl.constexpr(encoding.NVFP4)
NVFP4T: tl.constexpr = tl.constexpr(encoding.NVFP4T)
MX_RCEIL: tl.constexpr = tl.constexpr(encoding.MX_RCEIL)
MX_EVEN: tl.constexpr = tl.constexpr(encoding.MX_EVEN)
INF_BITS: tl.constexpr = tl.constexpr(0x7F800000)
MAX_BITS: tl.constexpr = tl.constexpr(0x7F7FFFFF)
NAN_BITS: tl.constexpr = tl.constexpr(0x7FC00000)


# ---------------------------------------------------------------------------- float32 bits


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
def absbits(x):
    """The bit pattern of |x| (int32): its integer max is max|x|, NaN above +inf."""
    return x.to(tl.int32, bitcast=True) & 0x7FFFFFFF


@triton.jit
def float_delta(x, emin, emax, man):
    """Δ = 2^(clamp(e, emin, emax) - man), e from x's exponent field (SmallFloat._grid)."""
    e = ((x.to(tl.int32, bitcast=True) >> 23) & 0xFF) - 127
    e = tl.minimum(tl.maximum(e, emin), emax)
    return pow2(e - man)


@triton.jit
def block_delta(maxbits, wl):
    """Δ = 2^(e + 2 - wl) from a block's max|x| bit pattern (BlockFloat._delta); NaN -> inf."""
    m = tl.minimum(tl.maximum(maxbits, 0x00800000), MAX_BITS)
    k = ((m >> 23) & 0xFF) - 125 - wl
    bits = tl.where(maxbits > INF_BITS, INF_BITS, pow2_bits(tl.maximum(k, -149)))
    return bits.to(tl.float32, bitcast=True)


# ---------------------------------------------------------------------------- grids


@triton.jit
def grid(x, KIND: tl.constexpr, f, mb):
    """(Δ, lo, hi) of each element of x: fixed f's constants; block Δ from the group's max
    bits ``mb``, range ±max_units·Δ; float (and a scaled kind's element, x in its units) Δ
    from x's binade, range ±max_value."""
    z = tl.zeros_like(x)
    if KIND == FIXED:
        return z + f[0], z + f[1], z + f[2]
    elif KIND == BLOCK:
        d = z + block_delta(mb, f[3])
        return d, -(d * f[0]), d * f[0]
    else:
        return float_delta(x, f[3], f[4], f[5]), z - f[0], z + f[0]


@triton.jit
def round_on_grid(x, delta, lo, hi, u, STOCHASTIC: tl.constexpr):
    """Nearest: rint(clamp(x)/Δ)·Δ; stochastic: (floor(y) + [u < y - floor(y)])·Δ, y =
    clamp(x)/Δ, u the threshold (Δ a power of two: the division is exact)."""
    y = tl.math.div_rn(clamp(x, lo, hi), delta)
    if STOCHASTIC:
        f = tl.floor(y)
        return (f + tl.where(u < y - f, 1.0, 0.0)) * delta
    else:
        return rint(y) * delta


@triton.jit
def quantize_value(x, KIND: tl.constexpr, f, mb, u, STOCHASTIC: tl.constexpr, ts):
    """Q_F(x), F = (KIND, f): KIND 0 the identity; a scaled kind the block's scales (``mb``,
    per-tensor ``ts``), the element's rounding of y = to_element(x), times ``up``."""
    if KIND == 0:
        return x
    elif KIND >= MX:  # a scaled kind (MX, INT, NVFP4)
        into, up = block_scale(mb, KIND, f, ts)
        y = to_element(x, into, KIND)
        d, lo, hi = grid(y, FLOAT, f, mb)
        return round_on_grid(y, d, lo, hi, u, STOCHASTIC) * up
    else:
        d, lo, hi = grid(x, KIND, f, mb)
        return round_on_grid(x, d, lo, hi, u, STOCHASTIC)


# ---------------------------------------------------------------------------- scaled blocks


@triton.jit
def block_scale(mb, KIND: tl.constexpr, f, ts):
    """(into, up) of blocks whose max|x| has the bit pattern ``mb`` (module docstring): the
    element is to_element(x, into), the value q·up. ``ts`` = (T, 1/T) for NVFP4 (T = 0: no
    per-tensor scale; the steps' NVFP4T, nvfp4<t>, is NVFP4 with its tensor's T)."""
    if KIND == MX or KIND == MX_RCEIL or KIND == MX_EVEN:  # noqa: SIM109 (constexprs)
        if KIND == MX_RCEIL:  # f[0] = max(E)
            r = tl.math.div_rn(mb.to(tl.float32, bitcast=True), f[0]).to(tl.int32, bitcast=True)
            e = (r >> 23) & 0xFF
            up1 = tl.where((r & 0x7FFFFF) != 0, 1, 0)
            s = tl.where(e > 0, e - 127 + up1, tl.where(r > 0x400000, -126, -127))
        elif KIND == MX_EVEN:  # f[5] = E's mantissa bits
            rounded = (mb + (1 << (22 - f[5]))) & INF_BITS
            s = ((rounded >> 23) & 0xFF) - 127 - f[4]
        else:
            s = ((mb >> 23) & 0xFF) - 127 - f[4]
        s = tl.minimum(tl.maximum(s, -127), 127)
        nan = (mb * 0 + NAN_BITS).to(tl.float32, bitcast=True)
        # x·2^-s is x/2^s exactly (both powers of two are float32 for |s| <= 127)
        into = tl.where(mb > INF_BITS, nan, pow2(-s))
        return into, tl.where(mb > INF_BITS, nan, pow2(s))
    elif KIND == NVFP4 or KIND == NVFP4T:  # noqa: SIM109 (constexprs)
        t, tinv = ts
        tensor = t != 0.0
        bs = tl.math.div_rn(mb.to(tl.float32, bitcast=True), 6.0)
        bs = tl.where(tensor, tl.math.div_rn(bs, tl.where(tensor, t, 1.0)), bs)
        c = clamp(bs, 0.015625, 448.0)
        s = round_on_grid(c, float_delta(c, -6, 8, 3), -448.0, 448.0, 0.0, False)
        into = tl.math.div_rn(tl.where(tensor, tinv, 1.0) + tl.zeros_like(s), s)
        return into, tl.where(tensor, t * s, s)
    else:  # INT: ±inf count as float32 max (NaN stays)
        amax = tl.where(mb == INF_BITS, MAX_BITS, mb).to(tl.float32, bitcast=True)
        s = tl.math.div_rn(amax, f[0])
        over = absbits(s * f[0]) == INF_BITS
        s = tl.where(over, (s.to(tl.int32, bitcast=True) - 1).to(tl.float32, bitcast=True), s)
        return tl.where(s == 0.0, 1.0, s), s


@triton.jit
def to_element(x, into, KIND: tl.constexpr):
    """x in the element's units: x/into for INT, x·into for MX and NVFP4 (as the eager
    formats: MX divides by 2^s, the same value)."""
    if KIND == INT:
        return tl.math.div_rn(x, into)
    else:
        return x * into


# ---------------------------------------------------------------------------- VC


@triton.jit
def vc_on_grid(mu, v, delta, lo, hi, z, u_sr, u_cat):
    """Q_vc(μ, v) on the Δ-lattice, element-wise (ALGORITHMS.md §4; lowprec/vc.py), in units of
    Δ: m = clamp(μ)/Δ, w = v/Δ², v0 = 1/4.

    w > v0: x = m + sqrt(w - v0)·z, q = rint(x), a = x - q, c = v0;
    else:   q = floor(m) + [u_sr < f] (f = m - floor(m)), a = 0, c = clamp(w - f(1 - f), 0, 1);
    then q + Cat(a, c), Cat = [2u < c + a² + a] - [2u >= 2 - (c + a² - a)] (u = u_cat),
    returned as clamp((q + Cat)·Δ, lo, hi)."""
    m = tl.math.div_rn(clamp(mu, lo, hi), delta)
    w = tl.math.div_rn(tl.math.div_rn(v, delta), delta)
    big = w > 0.25
    x = m + tl.sqrt_rn(tl.maximum(w - 0.25, 0.0)) * z
    q_big = rint(x)
    a_big = x - q_big
    fl = tl.floor(m)
    frac = m - fl
    q_small = fl + tl.where(u_sr < frac, 1.0, 0.0)
    c_small = clamp(w - frac * (1.0 - frac), 0.0, 1.0)
    q = tl.where(big, q_big, q_small)
    a = tl.where(big, a_big, 0.0)
    second = tl.where(big, 0.25 + a_big * a_big, c_small)
    u2 = 2.0 * u_cat
    cat = tl.where(u2 < second + a, 1.0, 0.0) - tl.where(u2 >= 2.0 - (second - a), 1.0, 0.0)
    return clamp((q + cat) * delta, lo, hi)


@triton.jit
def vc_reach(mu, v, sd, VAR_PER: tl.constexpr):
    """|μ| + 4·sqrt(v) (sd: the scalar sqrt(v) when v is one number)."""
    if VAR_PER:
        return tl.abs(mu) + tl.sqrt_rn(tl.maximum(v, 0.0)) * 4.0
    else:
        return tl.abs(mu) + sd * 4.0
