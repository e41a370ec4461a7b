"""The grids of the formats and the rounding onto them, per element (numba, float32): the one
transcription of ALGORITHMS.md §2 (the quantizers) and §4 (Q_vc) that every numba kernel of this
package calls. The eager reference is lowprec/formats/ and lowprec/vc.py: the same float32
operations in the same order (nearest rounding equal bit for bit).

Rounding onto a lattice Δ·Z clamped to [lo, hi]:

    round_nearest(x, Δ, lo, hi)        rint(clamp(x)/Δ)·Δ, ties to even
    round_stochastic(x, Δ, lo, hi, r)  (floor(y) + [u < y - floor(y)])·Δ, y = clamp(x)/Δ,
                                       u = threshold16(r): up with probability δ/Δ (±2^-17)
    vc_lattice(μ, v, Δ, lo, hi, z, u_small, u_cat)   Q_vc of one element (§4)

Grids: ``float_delta`` (Δ of a float<exp,man> element from x's binade), ``block_delta`` (Δ of a
block from the bit pattern of its max|x|), ``block_scale`` (a scaled format's block scale: MX,
NVFP4, scaled integers). A format as a kind and four constants (lowprec.kernels.encoding):
``group_scale`` (an exponent group's Δ or scales from its maximum), ``grid_of`` (Δ, lo, hi of
an element), ``quantize_value`` and ``vc_value`` (Q_F and Q_vc of one value at its group's
scales), the forms the sampler steps use.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from lowprec.kernels.encoding import (
    BLOCK,
    FIXED,
    FLOAT,
    FP32,
    INT,
    MX,
    MX_EVEN,
    MX_RCEIL,
    NVFP4,
    NVFP4T,
    SCALE_INT,
    SCALE_MX,
    SCALE_MX_EVEN,
    SCALE_MX_RCEIL,
    SCALE_NVFP4,
)
from lowprec.kernels.numba.bits import f32_as_i32, i32_as_f32, threshold16
from lowprec.kernels.numba.jit import INLINE

__all__ = [
    "absbits",
    "block_delta",
    "block_scale",
    "clamp",
    "element_round",
    "element_units",
    "element_value",
    "float_delta",
    "grid_of",
    "group_scale",
    "pow2",
    "quantize_value",
    "round_nearest",
    "round_stochastic",
    "vc_element",
    "vc_lattice",
    "vc_reach",
    "vc_units",
    "vc_value",
]

_F = np.float32
_ZERO, _ONE, _TWO, _FOUR = _F(0.0), _F(1.0), _F(2.0), _F(4.0)
_QUARTER = _F(0.25)
_NAN = _F(np.nan)
_TINY_BITS = 0x00800000  # 2^-126
_MAX_BITS = 0x7F7FFFFF  # float32 max
_INF_BITS = 0x7F800000
_E4M3_EPS = _F(2.0**-6)
_E4M3_MAX = _F(448.0)
_SIX = _F(6.0)


# ---------------------------------------------------------------------------- lattices


@njit(**INLINE)
def clamp(x, lo, hi):  # type: ignore[no-untyped-def]
    """min(max(x, lo), hi) with NaN kept (as torch.clamp)."""
    c = lo if x < lo else x
    return hi if c > hi else c


@njit(**INLINE)
def round_nearest(x, delta, lo, hi):  # type: ignore[no-untyped-def]
    """rint(clamp(x)/Δ)·Δ, ties to even: the eager path's operations one for one."""
    return np.rint(clamp(x, lo, hi) / delta) * delta


@njit(**INLINE)
def round_stochastic(x, delta, lo, hi, r):  # type: ignore[no-untyped-def]
    """(floor(y) + [u < y - floor(y)])·Δ, y = clamp(x)/Δ (exact), u = threshold16(r)."""
    return _up_or_down(clamp(x, lo, hi) / delta, delta, r)


@njit(**INLINE)
def _up_or_down(y, delta, r):  # type: ignore[no-untyped-def]
    """(floor(y) + [u < y - floor(y)])·Δ for y in units of Δ, u = threshold16(r)."""
    f = np.floor(y)
    up = _ONE if threshold16(r) < y - f else _ZERO
    return (f + up) * delta


@njit(**INLINE)
def element_units(x, emin, emax, man):  # type: ignore[no-untyped-def]
    """(Δ, 1/Δ) of x on a float element's grid (float_delta) whose Δ >= 2^-126 (the OCP
    elements and integers: lowprec.kernels.encoding.scaled_params checks; the scaled formats'
    elements the steps take are OCP elements): 1/Δ is then a
    float32 power of two, and y·(1/Δ) is y/Δ bit for bit (both round the same real number),
    without a division per element."""
    k = _exponent(x, emin, emax) - man
    return i32_as_f32(np.int32((k + 127) << 23)), i32_as_f32(np.int32((127 - k) << 23))


@njit(**INLINE)
def element_value(y, emin, emax, man, maxv, u, stochastic):  # type: ignore[no-untyped-def]
    """Q of y on a float element's grid (element_units), range ±maxv, t = clamp(y)·(1/Δ):
    nearest rint(t)·Δ, or stochastic (floor(t) + [u < t - floor(t)])·Δ for a threshold u;
    the operations of round_nearest and round_stochastic with y·(1/Δ) for y/Δ."""
    delta, inv = element_units(y, emin, emax, man)
    t = clamp(y, -maxv, maxv) * inv
    if stochastic:
        fl = np.floor(t)
        return (fl + _F(u < t - fl)) * delta  # a 0/1 value, no branch
    return np.rint(t) * delta


@njit(**INLINE)
def element_round(y, emin, emax, man, maxv, r, stochastic):  # type: ignore[no-untyped-def]
    """element_value of y with the threshold u = threshold16(r) of a 16-bit draw r."""
    return element_value(y, emin, emax, man, maxv, threshold16(r), stochastic)


@njit(**INLINE)
def vc_lattice(mu, v, delta, lo, hi, z, u_small, u_cat):  # type: ignore[no-untyped-def]
    """Q_vc(μ, v) of one element on the Δ-lattice (ALGORITHMS.md §4; lowprec/vc.py), in units
    of Δ: m = clamp(μ)/Δ, w = v/Δ², v0 = 1/4.

    w > v0: x = m + sqrt(w - v0)·z, q = rint(x), a = x - q, c = v0 + a²;
    else:   q = floor(m) + [u_small < f] (f = m - floor(m)), a = 0, c = clamp(w - f(1 - f), 0, 1);
    then q + Cat with Cat = [2u < c + a] - [2u >= 2 - (c - a)], u = u_cat (thresholds in
    (0, 1)); returned as clamp((q + Cat)·Δ, lo, hi). Both branches are computed and one is
    selected (no data-dependent branch: loops over it vectorize); ``z`` matters only when
    w > v0, ``u_small`` only when w <= v0."""
    q = vc_units(clamp(mu, lo, hi) / delta, v / delta / delta, z, u_small, u_cat)
    return clamp(q * delta, lo, hi)


@njit(**INLINE)
def vc_units(m, w, z, u_small, u_cat):  # type: ignore[no-untyped-def]
    """q + Cat of vc_lattice for μ and v in units of Δ (m = μ/Δ, w = v/Δ²): the lattice point
    the draw lands on, in units of Δ, before the range clamp."""
    big = w > _QUARTER
    d = w - _QUARTER
    x = m + np.sqrt(d if d > _ZERO else _ZERO) * z
    q1 = np.rint(x)
    a1 = x - q1
    fl = np.floor(m)
    frac = m - fl
    q = q1 if big else fl + (_ONE if u_small < frac else _ZERO)
    a = a1 if big else _ZERO
    second = _QUARTER + a1 * a1 if big else clamp(w - frac * (_ONE - frac), _ZERO, _ONE)
    u2 = _TWO * u_cat
    cat = (_ONE if u2 < second + a else _ZERO) - (_ONE if u2 >= _TWO - (second - a) else _ZERO)
    return q + cat


@njit(**INLINE)
def vc_reach(mu, v, sd, per_element_var):  # type: ignore[no-untyped-def]
    """|μ| + 4·sqrt(v): the magnitude whose grid the draw lands on (sd: the scalar sqrt(v))."""
    if per_element_var:
        sd = np.sqrt(v if v > _ZERO else _ZERO)
    return np.abs(mu) + sd * _FOUR


# ---------------------------------------------------------------------------- grids


@njit(**INLINE)
def pow2(k):  # type: ignore[no-untyped-def]
    """2^k as float32 for an integer k in [-149, 127], from its bit pattern."""
    if k >= -126:
        return i32_as_f32(np.int32((k + 127) << 23))
    return i32_as_f32(np.int32(1 << (k + 149)))


@njit(**INLINE)
def float_delta(x, emin, emax, man):  # type: ignore[no-untyped-def]
    """Δ = 2^(clamp(e, emin, emax) - man), e = floor(log2|x|) from x's exponent field (subnormal
    x and zero give e = -127, NaN and inf 128: both clamped), as SmallFloat._grid."""
    return pow2(_exponent(x, emin, emax) - man)


@njit(**INLINE)
def _exponent(x, emin, emax):  # type: ignore[no-untyped-def]
    """floor(log2|x|) from x's exponent field, clamped to [emin, emax]."""
    e = ((f32_as_i32(x) >> 23) & 0xFF) - 127
    e = emin if e < emin else e
    return emax if e > emax else e


@njit(**INLINE)
def absbits(x):  # type: ignore[no-untyped-def]
    """The bit pattern of |x|: ordered as |x| for non-NaN, NaN above +inf (an integer max over
    it is max|x|, NaN-propagating)."""
    return f32_as_i32(x) & np.int32(0x7FFFFFFF)


@njit(**INLINE)
def block_delta(maxbits, wl):  # type: ignore[no-untyped-def]
    """Δ = 2^(e + 2 - wl) of a block whose max|x| has bit pattern ``maxbits`` (BlockFloat._delta):
    e from max|x| clamped to [2^-126, float32 max]; Δ >= 2^-149; a NaN maximum gives Δ = inf."""
    if maxbits > _INF_BITS:
        return _F(np.inf)
    m = _TINY_BITS if maxbits < _TINY_BITS else maxbits
    m = _MAX_BITS if m > _MAX_BITS else m
    k = ((m >> 23) & 0xFF) - 127 + 2 - wl
    return pow2(-149 if k < -149 else k)


@njit(**INLINE)
def block_scale(maxbits, rule, a, b):  # type: ignore[no-untyped-def]
    """(into, up, divide) of a scaled format's block whose max|x| has bit pattern ``maxbits``
    (lowprec/formats/scaled.py): y = x/into when ``divide`` (scaled integers) else x·into; the
    value is q·up. The scale constants (rule, a, b) as lowprec.kernels.encoding.scaled_params:
    MX 2^-s, 2^s with s = floor(log2 max) - emax clamped to [-127, 127] (the rules: rceil
    s = ceil(log2(max / max(E))) from the bits of the quotient (b = max(E)); even the floor of
    max rounded half up to E's b mantissa bits); NVFP4 the E4M3 rounding of max/6 (/T);
    integers max/(2^(B-1) - 1) (±inf as float32 max)."""
    if rule in (SCALE_MX, SCALE_MX_RCEIL, SCALE_MX_EVEN):
        if maxbits > _INF_BITS:
            return _NAN, _NAN, False
        if rule == SCALE_MX_RCEIL:
            s = _ceil_log2(i32_as_f32(np.int32(maxbits)) / _F(b))
        elif rule == SCALE_MX_EVEN:
            rounded = (maxbits + np.int32(1 << (22 - int(b)))) & np.int32(_INF_BITS)
            s = ((rounded >> 23) & 0xFF) - 127 - int(a)
        else:
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
    if rule != SCALE_INT:
        return _NAN, _NAN, False
    if maxbits == _INF_BITS:
        amax = i32_as_f32(np.int32(_MAX_BITS))
    top = _F(a)
    s = amax / top
    if np.isinf(s * top):
        s = i32_as_f32(np.int32(f32_as_i32(s) - np.int32(1)))
    return (_ONE if s == _ZERO else s), s, True


@njit(**INLINE)
def _ceil_log2(r):  # type: ignore[no-untyped-def]
    """ceil(log2 r) of a float32 r >= 0 (non-NaN) from its bits, as lowprec.formats.scaled's
    _ceil_log2: a normal r's exponent, plus 1 when its mantissa is not zero; inf 128; a
    subnormal r -126 above 2^-127, else -127 (0 too: the callers clamp to [-127, 127])."""
    bits = f32_as_i32(r)
    e = (bits >> 23) & 0xFF
    if e > 0:
        return e - 127 + (1 if bits & 0x7FFFFF else 0)
    return -126 if bits > 0x400000 else -127


# ---------------------------------------------------------------------------- a format's value
# A format as a kind and four constants f (lowprec.kernels.encoding.format_params); ``gs`` =
# (into, up) are its exponent group's scales (group_scale): Δ and Δ (block), or a scaled
# group's map into the element's units and its scale back (mx, int, nvfp4).


@njit(**INLINE)
def group_scale(kind, f, maxbits, t):  # type: ignore[no-untyped-def]
    """(into, up) of a group from the bit pattern of its maximum ((0, 0) for formats without
    groups): block (Δ, Δ); mx (2^-s, 2^s) (NaN for a NaN maximum; its three scale rules);
    int (s, s) with
    s = amax/(2^(B-1) - 1) (``into`` 1 where s = 0: the element is x/into); nvfp4 ((1/T)/S, T·S)
    for the float32 per-tensor scale ``t`` = T of the group's tensor (nvfp4<t>), (1/S, S) for
    t = 0 (nvfp4): block_scale's, the operations of lowprec.formats."""
    if kind == BLOCK:
        d = block_delta(maxbits, int(f[0]))
        return d, d
    if kind == MX:
        into, up, _ = block_scale(maxbits, SCALE_MX, f[1], 0.0)
        return into, up
    if kind == MX_RCEIL:  # the rule reads max(E)
        into, up, _ = block_scale(maxbits, SCALE_MX_RCEIL, f[1], f[3])
        return into, up
    if kind == MX_EVEN:  # the rule reads E's mantissa bits
        into, up, _ = block_scale(maxbits, SCALE_MX_EVEN, f[1], f[2])
        return into, up
    if kind == INT:
        into, up, _ = block_scale(maxbits, SCALE_INT, f[3], 0.0)
        return into, up
    if kind in (NVFP4, NVFP4T):
        t32 = _F(t)
        t_inv = _ONE / t32 if t32 != _ZERO else _ZERO  # 1/T in float32, as the eager format
        into, up, _ = block_scale(maxbits, SCALE_NVFP4, t32, t_inv)
        return into, up
    return _ZERO, _ZERO


@njit(**INLINE)
def grid_of(kind, f, x, gs):  # type: ignore[no-untyped-def]
    """(Δ, lo, hi) of element x: fixed f's constants; block the group's Δ (range
    ±max_units·Δ); float x's binade (range ±max_value). The scaled kinds (mx, int, nvfp4)
    round in their element's units (element_value)."""
    if kind == FIXED:
        return _F(f[0]), _F(f[1]), _F(f[2])
    if kind == BLOCK:
        d = gs[1]
        hi = d * _F(f[1])
        return d, -hi, hi
    return float_delta(x, int(f[0]), int(f[1]), int(f[2])), _F(-f[3]), _F(f[3])


@njit(**INLINE)
def _on_grid(kind, f, x, gs, u, stochastic):  # type: ignore[no-untyped-def]
    """Q_F(x) for the kinds with a grid of their own (fixed, block, float): u a threshold."""
    d, lo, hi = grid_of(kind, f, x, gs)
    y = clamp(x, lo, hi) / d
    if stochastic:
        fl = np.floor(y)
        return (fl + _F(u < y - fl)) * d  # a 0/1 value, no branch
    return np.rint(y) * d


@njit(**INLINE)
def _into(kind, x, into):  # type: ignore[no-untyped-def]
    """x in the element's units by the group's ``into``: x/s for scaled integers, x·into for
    MX (2^-s) and NVFP4 (1/S, (1/T)/S), the float32 operations of lowprec.formats."""
    if kind == INT:
        return x / into
    return x * into


@njit(**INLINE)
def quantize_value(kind, f, x, gs, u, stochastic):  # type: ignore[no-untyped-def]
    """Q_F(x): clamp, then nearest (ties to even) or [u < y - floor(y)] in units y = x/Δ;
    mx, int and NVFP4 in the element's units (x·2^-s, x/s, x·(1/S) or x·((1/T)/S):
    element_value), times the scale back."""
    if kind == FP32:
        return x
    if kind >= MX:
        emin, emax, man, maxv = _element(f)
        into, up = gs
        return element_value(_into(kind, x, into), emin, emax, man, maxv, u, stochastic) * up
    return _on_grid(kind, f, x, gs, u, stochastic)


@njit(**INLINE)
def _element(f):  # type: ignore[no-untyped-def]
    """(emin, emax, man, max_value) of a scaled kind's element from its constants f."""
    return int(f[0]), int(f[1]), int(f[2]), _F(f[3])


@njit(**INLINE)
def vc_value(kind, f, mu, var, sd, reach, gs, xi, u_cat, u_round):  # type: ignore[no-untyped-def]
    """Q_vc(μ, var) of one value, Δ of the reach |μ| + 4·sd (vc_lattice); fp32 μ + sd·ξ;
    mx, int and NVFP4 in the element's units (μ·into, var·into², vc_element; the group's
    scales ``gs`` = (into, up)), times the scale;
    float results that left Δ's binade rounded stochastically onto their grid with
    ``u_round``."""
    if kind == FP32:
        return mu + sd * xi
    if kind >= MX:
        into, up = gs
        one = _into(kind, _ONE, into)
        m_e, r_e = _into(kind, mu, into), _into(kind, reach, into)
        emin, emax, man, maxv = _element(f)
        v_e = _F(var) * one * one
        return vc_element(m_e, v_e, r_e, emin, emax, man, maxv, xi, u_cat, u_round) * up
    d, lo, hi = grid_of(kind, f, reach, gs)
    out = vc_lattice(mu, _F(var), d, lo, hi, xi, u_round, u_cat)
    if kind == FLOAT:  # left Δ's binade: stochastic rounding (mean kept)
        return _on_grid(FLOAT, f, out, gs, u_round, True)
    return out


@njit(**INLINE)
def vc_element(m, v, reach, emin, emax, man, maxv, xi, u_cat, u_round):  # type: ignore[no-untyped-def]
    """Q_vc(m, v) on a float element's grid (vc_lattice, range ±maxv) with Δ of the reach, then
    the result stochastically onto the grid of its own binade (element_value, ``u_round``):
    in units of Δ by y·(1/Δ) (element_units), the same numbers as y/Δ without a division."""
    delta, inv = element_units(reach, emin, emax, man)
    q = vc_units(clamp(m, -maxv, maxv) * inv, v * inv * inv, xi, u_round, u_cat)
    out = clamp(q * delta, -maxv, maxv)
    return element_value(out, emin, emax, man, maxv, u_round, True)
