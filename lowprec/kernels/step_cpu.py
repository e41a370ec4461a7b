"""Fused sampler steps on the CPU (numba): one parallel kernel call per SGLD / SGHMC step over
flat buffers (ALGORITHMS.md §3-§6). The equations are written in lowprec/samplers/sgld.py and
sghmc.py and the accumulators' draws in lowprec/samplers/accumulators.py; this module is their
transcription, held to them by tests/lowprec/test_fused_step.py (nearest rounding without noise:
the same bits; otherwise the same laws).

Work is split into exponent groups (:mod:`lowprec.flat`): a row of a dim-0 block, a run of k
values of a k-block, or a chunk of values for the other formats. Threads take whole groups.
When a format of the step is a block format its exponent needs the group's maximum of a value
the step computes, so the group is walked in passes (each in cache); without block formats
the passes run one after another on each chunk of CHUNK values, while its draws are in scratch:

    SGLD   pass 0 (block G): Δ_G from max|∇| over the group
           pass 1: g = Q_G(∇) + wd·θ; mean = θ - lr·g; x = mean + sd·ξ (full, low), or mean (vc);
                   θ ← x; the group max of |x| (vc: of the reach |x| + 4·sd)
           pass 2: full θ̂ ← Q_W(θ); low θ ← Q_W(θ); vc θ ← Q_vc(θ, var)
    SGHMC  pass 0 as above
           pass 1: mean_v = e·v - a·g, mean_θ = θ + b·v - c·g; v ← mean_v + sd_v·ξ_v (full, low)
                   or mean_v (vc), θ ← mean_θ; M's group max
           pass 2: v' = the draw in M; θ ← mean_θ + (Cov/Var_v)(v'_real - mean_v), plus
                   sqrt(Var_θ|v)·ξ_θ for full and low; W's group max
           pass 3: θ' as SGLD's pass 2, with variance Var_θ|v = Var_θ - Cov²/Var_v
           momentum rescaling (fixed-point M, §6): two calls, phase 1 = pass 1 leaving each
           group's max|x|, phase 2 = passes 2 and 3 with v' stored as Q(x/S') or
           Q_vc(mean_v/S', Var_v/S'²), S' = max|x| over the tensor / max Q_M (the executor
           makes it between the calls: lowprec.samplers.fused)

Random numbers (the building blocks of :mod:`lowprec.kernels.cpu`, bits of
:mod:`lowprec.kernels.rng`), under the key drawn once per step from the trial's generator;
every bit drawn serves one draw of one element. Each
quantity has its own Philox4x32-10 stream (counter word c2) and each call serves consecutive
elements:

    thresholds, stream STREAM + 2 + slot: call q = counter (q, stream, 0) serves elements
        8q .. 8q+7, element 8q + 2k + b takes half b (0 low, 1 high) of word k
        slots: U_G Q_G's rounding; U_TW Q_W's rounding (θ, or θ̂ for full) or θ's VC Cat;
        U_TS θ's VC small-branch rounding; U_VM Q_M's rounding or v's VC Cat; U_VS v's VC
        small-branch rounding
    normals, stream STREAM + n (n = X_T ξ_θ, X_V ξ_v): call q serves elements 4q .. 4q+3,
        Box-Muller of (w0, w1) -> 4q (cos), 4q+1 (sin), of (w2, w3) -> 4q+2, 4q+3

A step draws only the slots its formats, rounding and accumulator use (:func:`sgld_slots`,
:func:`sghmc_slots`) and the normals only with noise: SGLD vc with block G takes 3/8 + 1/4 of
a call per value (one call per value before, 3 of 8 halves and one of two normals used).
Thresholds are the unbiased midpoints (2r + 1)/2^17 of :func:`lowprec.kernels.cpu.threshold16`
(bias at most 2^-17·Δ, docs/numerics.md). The normals come from :func:`box_muller`,
Box-Muller with float32 polynomial logarithm and sine/cosine (absolute errors below 1e-6) that
vectorize without a vector math library; |ξ| <= 5.77 as in rng.py. The Triton kernels
(step_triton.py) draw the same bits.

A format is a kind (0 fp32, 1 fixed, 2 block, 3 float, 4 mx, 5 int, 6 nvfp4) and four float64
constants (``lowprec.samplers.fused.format_params``): fixed (Δ, lo, hi, 0); block (wl,
max_units, 0, 0); float (emin, emax, man, max_value); mx the element's (emin, emax, man,
max_value), a float grid at the group's power-of-two scale X (from the group's maximum, as a
block's Δ); int and nvfp4 the element's float constants, the group's scale s or S from its
maximum, rounding in the element's units (x/s, x·(1/S)) as lowprec.formats computes them.
Accumulators: 0 full, 1 low, 2 vc. Kinds, accumulator and rounding are run-time arguments: one
compiled kernel per rule (cached on disk). Its loops must not branch on them per element, or
LLVM does not vectorize them: the loops are chosen per case outside (the rounding of θ and pass
2 once per accumulator, vc once per kind of W: :func:`_round_theta`, 2-3x faster). A loop never
reads θ through one view and writes it through another (LLVM's run-time overlap check then
falls back to the scalar loop, 5x slower). Specialising every combination at compile time
measured no faster and multiplies the compile time.

Work units: ``tstart`` cuts the groups into tasks of at least 16,384 values (consecutive groups;
``lowprec.flat.FlatLayout.task_start``), the unit of parallelism; each task owns scratch for the
thresholds and normals of one chunk of CHUNK values. ``sgld_step.serial`` /
``sghmc_step.serial``: the same body compiled without the parallel region (small steps).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from lowprec.kernels import cpu as K
from lowprec.kernels.encoding import FULL, LOW, VC

__all__ = ["FULL", "LOW", "STREAM", "VC", "box_muller", "sghmc_step", "sgld_step"]

#: the Philox stream (counter word c2) of the sampler steps
STREAM = 16
_OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}
#: scalar helpers: LLVM inlines them (numba-IR inlining only slows the compile)
_INLINE = {**_OPTS, "inline": "always"}
#: helpers that take arrays (called per chunk or group): inlined in numba IR
_ARRAYS = {**_OPTS, "inline": "always"}
_F = np.float32
_LN2 = _F(math.log(2.0))
_SQRT_HALF_BITS = np.int32(0x3F3504F3)
_I23 = np.int32(23)
_ZERO, _ONE, _FOUR = _F(0.0), _F(1.0), _F(4.0)
_F24 = _F(2.0**-24)
_HALF_PI, _QUARTER_PI = _F(math.pi / 2), _F(math.pi / 4)
_R = _F(math.sqrt(0.5))
_S8, _S9, _S16 = np.uint64(8), np.uint64(9), np.uint64(16)
_MASK16 = np.uint64(0xFFFF)


# -- normals --------------------------------------------------------------------------------
@njit(**_INLINE)
def _log(u):  # type: ignore[no-untyped-def]
    """ln u for a normal float32 u > 0: u = 2^e·m, m in [√½, √2), ln u = e·ln 2 + 2·atanh(s)
    with s = (m - 1)/(m + 1), |s| <= 0.172, by its series to s^9 (error < 1e-6 absolute)."""
    b = K.f32_as_i32(u)
    e = (b - _SQRT_HALF_BITS) >> _I23
    m = K.i32_as_f32(np.int32(b - (e << _I23)))
    s = (m - _ONE) / (m + _ONE)
    s2 = s * s
    p = _F(2.0 / 9.0) * s2 + _F(2.0 / 7.0)
    p = p * s2 + _F(2.0 / 5.0)
    p = p * s2 + _F(2.0 / 3.0)
    p = p * s2 + _F(2.0)
    return _F(e) * _LN2 + s * p


@njit(**_INLINE)
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


@njit(**_INLINE)
def box_muller(wa, wb):  # type: ignore[no-untyped-def]
    """Two independent N(0, 1) float32 from two 32-bit words, the uniforms of
    lowprec.kernels.cpu.box_muller: u1 = (2·(wa >> 9) + 1)·2^-24 in (0, 1), u2 = (wb >> 8)·2^-24;
    sqrt(-2 ln u1)·(cos 2πu2, sin 2πu2)."""
    u1 = _F(np.int32((wa >> _S9) * np.uint64(2) + np.uint64(1))) * _F24
    u2 = _F(np.int32(wb >> _S8)) * _F24
    rad = np.sqrt(_F(-2.0) * _log(u1))
    c, s = _cos_sin_2pi(u2)
    return rad * c, rad * s


# -- formats --------------------------------------------------------------------------------
@njit(**_INLINE)
def _lo16(w):  # type: ignore[no-untyped-def]
    return K.threshold16(w & _MASK16)


@njit(**_INLINE)
def _hi16(w):  # type: ignore[no-untyped-def]
    return K.threshold16((w >> _S16) & _MASK16)


@njit(**_INLINE)
def _grouped(kind):  # type: ignore[no-untyped-def]
    """Whether a format's grid needs its group's maximum: block, mx, int, nvfp4."""
    return kind == 2 or kind >= 4


@njit(**_INLINE)
def _consts(f):  # type: ignore[no-untyped-def]
    """A format's four constants as scalars: loaded once, not from memory in every iteration
    (a store to θ might alias the array, for all LLVM knows, which also stops vectorizing)."""
    return f[0], f[1], f[2], f[3]


@njit(**_INLINE)
def _group_delta(kind, f, maxbits):  # type: ignore[no-untyped-def]
    """Δ of a block group, or an MX group's scale X = 2^s (s = floor(log2 max) - emax clamped
    to [-127, 127]; NaN for a NaN maximum), from the bit pattern of its maximum (0 for other
    formats)."""
    if kind == 2:
        return K.block_delta(maxbits, int(f[0]))
    if kind == 4:
        if maxbits > np.int32(0x7F800000):
            return _F(np.nan)
        e = ((maxbits >> 23) & 0xFF) - 127 - int(f[1])
        return K.pow2(min(max(e, -127), 127))
    if kind == 5:  # scaled integers' s = amax/(2^(B-1) - 1) (lowprec.kernels.cpu.block_scale)
        return K.block_scale(maxbits, K.SCALE_INT, f[3], 0.0)[1]
    if kind == 6:  # NVFP4's E4M3 block scale S (no per-tensor scale)
        return K.block_scale(maxbits, K.SCALE_NVFP4, 0.0, 0.0)[1]
    return _ZERO


@njit(**_INLINE)
def _grid(kind, f, x, gd):  # type: ignore[no-untyped-def]
    """(Δ, lo, hi) of element x: fixed constants, block the group's Δ (range ±max_units·Δ),
    float x's binade (range ±max_value)."""
    if kind == 1:
        return _F(f[0]), _F(f[1]), _F(f[2])
    if kind == 2:
        hi = gd * _F(f[1])
        return gd, -hi, hi
    if kind == 4:  # the element's binade of x/X, times X (powers of two: exact)
        hi = gd * _F(f[3])
        d = K.float_delta(x * (_ONE / gd), int(f[0]), int(f[1]), int(f[2])) * gd
        return d, -hi, hi
    return K.float_delta(x, int(f[0]), int(f[1]), int(f[2])), _F(-f[3]), _F(f[3])


@njit(**_INLINE)
def _quantize(kind, f, x, gd, u, stochastic):  # type: ignore[no-untyped-def]
    """Q_F(x): clamp, then nearest (ties to even) or [u < y - floor(y)] in units y = x/Δ;
    int and NVFP4 in the element's units (y = x/s or x·(1/S) on its grid), times the scale."""
    if kind == 0:
        return x
    if kind >= 5:
        return _on_grid(3, f, _into(kind, x, gd), _ZERO, u, stochastic) * gd
    return _on_grid(kind, f, x, gd, u, stochastic)


@njit(**_INLINE)
def _on_grid(kind, f, x, gd, u, stochastic):  # type: ignore[no-untyped-def]
    """Q_F(x) for the kinds with a grid of their own (fixed, block, float, mx)."""
    d, lo, hi = _grid(kind, f, x, gd)
    y = K.clamp(x, lo, hi) / d
    if stochastic:
        fl = np.floor(y)
        return (fl + _F(u < y - fl)) * d  # a 0/1 value, no branch
    return np.rint(y) * d


@njit(**_INLINE)
def _into(kind, x, gd):  # type: ignore[no-untyped-def]
    """x in the element's units at the group's scale gd: x/s for scaled integers (s = 0, a
    zero group: x itself), x·(1/S) for NVFP4, the float32 operations of lowprec.formats."""
    if kind == 5:
        return x / (_ONE if gd == _ZERO else gd)
    return x * (_ONE / gd)


@njit(**_INLINE)
def _vc(kind, f, mu, var, sd, reach, gd, xi, u_cat, u_round):  # type: ignore[no-untyped-def]
    """Q_vc(μ, var) (ALGORITHMS.md §4, lowprec/vc.py) in units of Δ, Δ of the reach
    |μ| + 4·sd: w = var/Δ²; w > 1/4: x = m + sqrt(w - 1/4)·ξ, q = round(x), Cat(x - q, 1/4);
    else q = stochastic(m), Cat(0, max(w - v_s, 0)), v_s = δ(1 - δ); clamp to the range."""
    if kind == 0:
        return mu + sd * xi
    if kind >= 5:  # Q_vc in the element's units (μ·into, var·into²), times the scale
        one = _into(kind, _ONE, gd)
        m_e, r_e = _into(kind, mu, gd), _into(kind, reach, gd)
        return _vc_grid(3, f, m_e, _F(var) * one * one, r_e, _ZERO, xi, u_cat, u_round) * gd
    return _vc_grid(kind, f, mu, var, reach, gd, xi, u_cat, u_round)


@njit(**_INLINE)
def _vc_grid(kind, f, mu, var, reach, gd, xi, u_cat, u_round):  # type: ignore[no-untyped-def]
    """Q_vc for the kinds with a grid of their own (fixed, block, float, mx)."""
    d, lo, hi = _grid(kind, f, reach, gd)
    m = K.clamp(mu, lo, hi) / d
    w = _F(var) / d / d
    # both branches, then a select (no data-dependent branch: the loops vectorize)
    big = w > _F(0.25)
    x = m + np.sqrt(max(w - _F(0.25), _ZERO)) * xi
    q1 = np.rint(x)
    a1 = x - q1
    fl = np.floor(m)
    frac = m - fl
    q = q1 if big else fl + _F(u_round < frac)
    a = a1 if big else _ZERO
    second = _F(0.25) + a1 * a1 if big else min(max(w - frac * (_ONE - frac), _ZERO), _ONE)
    # Cat(a, c) = [2u < c + a² + a] - [2u >= 2 - (c + a² - a)] (0/1 values, no branches)
    u2 = _F(2.0) * u_cat
    cat = _F(u2 < second + a) - _F(u2 >= _F(2.0) - (second - a))
    out = K.clamp((q + cat) * d, lo, hi)
    if kind == 3 or kind == 4:  # left Δ's binade: stochastic rounding onto the grid (mean kept)
        return _on_grid(kind, f, out, gd, u_round, True)
    return out


@njit(**_INLINE)
def _draw(kind, f, acc, x, var, sd, sd4, gd, xi, u, u_round, stochastic):  # type: ignore[no-untyped-def]
    """The accumulator's rounding of x (the Gaussian draw for full and low, the mean for vc):
    full and low Q_F(x); vc Q_vc(x, var)."""
    if acc == VC:
        return _vc(kind, f, x, var, sd, abs(x) + sd4, gd, xi, u, u_round)
    return _quantize(kind, f, x, gd, u, stochastic)


@njit(**_INLINE)
def _maxbits(m, x):  # type: ignore[no-untyped-def]
    """Running max of bit patterns of |x| (NaN above inf, so a NaN propagates)."""
    b = K.absbits(x)
    return b if b > m else m


@njit(**_ARRAYS)
def _group_max(kind, f, x, s, n):  # type: ignore[no-untyped-def]
    """Δ (block) or scale (mx) of the group x[s:s+n] from max|x| (0 for formats without
    groups)."""
    if not _grouped(kind):
        return _ZERO
    mb = np.int32(0)
    v = x[s : s + n]  # indexed by the loop counter: no wraparound check, vectorizes
    for j in range(n):
        mb = _maxbits(mb, v[j])
    return _group_delta(kind, f, mb)


# -- random numbers of a chunk ---------------------------------------------------------------
#: elements per chunk: the thresholds and normals of a chunk are made in vectorized loops into
#: the task's scratch (80 KB of thresholds, 33 KB of normals), then read by the update
CHUNK = 4096
#: the 16-bit thresholds an element may draw (module docstring), one Philox stream each
U_G, U_TW, U_TS, U_VM, U_VS = 0, 1, 2, 3, 4
SLOTS = 5
#: the normals (ξ_θ, ξ_v), one Philox stream each
X_T, X_V = 0, 1
#: scratch beyond CHUNK: a chunk's first call may start up to 7 elements before it
_PAD = 16


@njit(**_ARRAYS)
def _fill(us, ns, c, m, k0, k1, slots, normals):  # type: ignore[no-untyped-def]
    """The draws of elements c .. c+m-1: us[h, (c & 7) + j] = threshold h of element c + j
    for each slot h in the bit mask ``slots``; ns[n, (c & 3) + j] = normal n of element c + j
    for n < ``normals``. Each Philox call is made once and all its bits land in the scratch:
    threshold call q of slot h serves elements 8q .. 8q+7, normal call q elements 4q .. 4q+3."""
    q0 = c >> 3
    nq = ((c + m + 7) >> 3) - q0
    for h in range(SLOTS):
        if (slots >> h) & 1:
            st = STREAM + 2 + h
            for q in range(nq):
                w0, w1, w2, w3 = K.group_words(q0 + q, k0, k1, st)
                b = 8 * q
                us[h, b] = _lo16(w0)
                us[h, b + 1] = _hi16(w0)
                us[h, b + 2] = _lo16(w1)
                us[h, b + 3] = _hi16(w1)
                us[h, b + 4] = _lo16(w2)
                us[h, b + 5] = _hi16(w2)
                us[h, b + 6] = _lo16(w3)
                us[h, b + 7] = _hi16(w3)
    q0 = c >> 2
    nq = ((c + m + 3) >> 2) - q0
    for n in range(normals):
        for q in range(nq):
            w0, w1, w2, w3 = K.group_words(q0 + q, k0, k1, STREAM + n)
            z0, z1 = box_muller(w0, w1)
            z2, z3 = box_muller(w2, w3)
            b = 4 * q
            ns[n, b] = z0
            ns[n, b + 1] = z1
            ns[n, b + 2] = z2
            ns[n, b + 3] = z3


@njit(**_ARRAYS)
def _scratch(slots, normals):  # type: ignore[no-untyped-def]
    """A task's scratch (thresholds [SLOTS, CHUNK + _PAD], normals [2, CHUNK + _PAD]),
    uninitialised but for the rows a step reads without drawing them, which are zeroed: a
    threshold of 0 keeps the VC Cat of a zero variance at 0; a normal of 0 times a zero sd."""
    us = np.empty((SLOTS, CHUNK + _PAD), np.float32)
    ns = np.empty((2, CHUNK + _PAD), np.float32)
    for h in range(SLOTS):
        if not (slots >> h) & 1:
            us[h, :] = _ZERO
    for n in range(normals, 2):
        ns[n, :] = _ZERO
    return us, ns


@njit(**_OPTS)
def draws(start, m, k0, k1, slots, normals):  # type: ignore[no-untyped-def]
    """(thresholds [SLOTS, m], normals [2, m]) of elements start .. start+m-1 as the step
    kernels see them (chunk by chunk, as they read them); slots not drawn are 0. For tests."""
    us = np.zeros((SLOTS, CHUNK + _PAD), np.float32)
    ns = np.zeros((2, CHUNK + _PAD), np.float32)
    out_u = np.zeros((SLOTS, m), np.float32)
    out_n = np.zeros((2, m), np.float32)
    for c in range(start, start + m, CHUNK):
        mm = min(CHUNK, start + m - c)
        _fill(us, ns, c, mm, k0, k1, slots, normals)
        o8, o4 = c & 7, c & 3
        for j in range(mm):
            for h in range(SLOTS):
                out_u[h, c - start + j] = us[h, o8 + j] if (slots >> h) & 1 else _ZERO
            for n in range(normals):
                out_n[n, c - start + j] = ns[n, o4 + j]
    return out_u, out_n


# -- SGLD -----------------------------------------------------------------------------------
# The helpers take and return scalars: the loops below read and write the arrays themselves
# (an array passed to a helper costs reference counting per element).
@njit(**_INLINE)
def _sgld_mean(th, gr, kg, f_g, gd, stochastic, lr, wd, sd, noisy, u_g, xi):  # type: ignore[no-untyped-def]
    """g = Q_G(∇) + wd·θ; x = θ - lr·g (+ sd·ξ for full and low)."""
    g = _quantize(kg, f_g, gr, gd, u_g, stochastic)
    if wd != _ZERO:
        g = g + wd * th
    x = th - lr * g
    if noisy:
        x = x + sd * xi
    return x


@njit(**_OPTS)  # not inlined: compiled once for its call sites
def _round_theta(theta, hat, c, m, us, ns, kw, f_w, acc, var, sd, sd4, dw, stochastic):  # type: ignore[no-untyped-def]
    """The accumulator's rounding of θ[c:c+m] (:func:`_draw`; Δ_W of the group ``dw``): into θ̂
    for full, into θ itself for low and vc.

    One loop per accumulator, each given ``acc`` as a constant: a loop that still branches on
    it does not vectorize (2-3x slower). In place the loop reads and writes one array, which
    LLVM vectorizes; given two views of the same memory (θ as source and as destination) it
    checks at run time whether they overlap, finds that they do, and runs the scalar loop
    (5x slower: bench.step)."""
    tv = theta[c : c + m]
    o8, o4 = c & 7, c & 3
    if acc == FULL:
        hv = hat[c : c + m]
        _round_run(hv, tv, us, ns, o8, o4, kw, f_w, FULL, var, sd, sd4, dw, stochastic)
    elif acc == LOW:
        _round_run(tv, tv, us, ns, o8, o4, kw, f_w, LOW, var, sd, sd4, dw, stochastic)
    elif kw == 1:  # vc: its loop is longer, and branches on the kind stop it vectorizing too
        _round_run(tv, tv, us, ns, o8, o4, 1, f_w, VC, var, sd, sd4, dw, stochastic)
    elif kw == 2:
        _round_run(tv, tv, us, ns, o8, o4, 2, f_w, VC, var, sd, sd4, dw, stochastic)
    elif kw == 4:
        _round_run(tv, tv, us, ns, o8, o4, 4, f_w, VC, var, sd, sd4, dw, stochastic)
    elif kw == 5:
        _round_run(tv, tv, us, ns, o8, o4, 5, f_w, VC, var, sd, sd4, dw, stochastic)
    elif kw == 6:
        _round_run(tv, tv, us, ns, o8, o4, 6, f_w, VC, var, sd, sd4, dw, stochastic)
    else:  # float (vc has a low-precision W: PrecisionSpec refuses fp32 with vc)
        _round_run(tv, tv, us, ns, o8, o4, 3, f_w, VC, var, sd, sd4, dw, stochastic)


@njit(**_ARRAYS)
def _round_run(dst, src, us, ns, o8, o4, kw, f_w, acc, var, sd, sd4, dw, stochastic):  # type: ignore[no-untyped-def]
    """dst[j] ← _draw(src[j]) with the run's ξ_θ, U_TW and U_TS draws (scratch offsets o4, o8)."""
    for j in range(dst.shape[0]):
        dst[j] = _draw(
            kw, f_w, acc, src[j], var, sd, sd4, dw, ns[X_T, o4 + j], us[U_TW, o8 + j],
            us[U_TS, o8 + j], stochastic,
        )  # fmt: skip


@njit(**_INLINE)
def sgld_slots(kg, kw, acc, stochastic, var):  # type: ignore[no-untyped-def]
    """The thresholds an SGLD step draws (a bit mask over U_G, U_TW, U_TS)."""
    s = (1 << U_G) if stochastic and kg != 0 else 0
    if acc == VC:
        s |= 1 << U_TS
        if var > 0.0:
            s |= 1 << U_TW
    elif stochastic and kw != 0:
        s |= 1 << U_TW
    return s


@K.parallel_and_serial
def sgld_step(
    theta, hat, grad, tstart, gstart, glen, kg, f_g, kw, f_w, acc, stochastic, lr, wd, var, k0, k1
):  # type: ignore[no-untyped-def]
    """One SGLD step (module docstring) over the flat buffers (float32 arrays; ``hat`` is
    ``theta`` itself for low and vc). Pass 2 writes θ̂ (full) or θ (low, vc)."""
    f_g, f_w = _consts(f_g), _consts(f_w)
    lr32, wd32 = _F(lr), _F(wd)
    sd = _F(math.sqrt(var))
    sd4 = sd * _FOUR if acc == VC else _ZERO
    noisy = var > 0.0 and acc != VC
    slots = sgld_slots(kg, kw, acc, stochastic, var)
    normals = 1 if var > 0.0 else 0
    need = slots != 0 or normals != 0
    for t in prange(tstart.shape[0] - 1):
        us, ns = _scratch(slots, normals)
        for gi in range(tstart[t], tstart[t + 1]):
            s, n = gstart[gi], glen[gi]
            gd = _group_max(kg, f_g, grad, s, n)
            mb = np.int32(0)
            for c in range(s, s + n, CHUNK):
                m = min(CHUNK, s + n - c)
                if need:
                    _fill(us, ns, c, m, k0, k1, slots, normals)
                o8, o4 = c & 7, c & 3
                # slices indexed by the loop counter: indices LLVM knows are >= 0 (no
                # negative-index wraparound per access), so the loops vectorize
                tv, gv = theta[c : c + m], grad[c : c + m]
                # one loop per case, no store under a branch: each vectorizes (a branch on a
                # run-time kind inside a vectorized loop computes every kind's arithmetic)
                if kg == 0 and kw == 0:  # float32 G and W (so accumulator full): θ̂ = θ
                    hv = hat[c : c + m]
                    for j in range(m):
                        x = _sgld_mean(
                            tv[j], gv[j], 0, f_g, gd, False, lr32, wd32, sd, noisy, _ZERO,
                            ns[X_T, o4 + j],
                        )  # fmt: skip
                        tv[j] = x
                        hv[j] = x
                    continue
                for j in range(m):
                    x = _sgld_mean(
                        tv[j], gv[j], kg, f_g, gd, stochastic, lr32, wd32, sd, noisy,
                        us[U_G, o8 + j], ns[X_T, o4 + j],
                    )  # fmt: skip
                    tv[j] = x
                    mb = _maxbits(mb, abs(x) + sd4)
                if not _grouped(kw):  # no group maximum: round the run, its draws at hand
                    _round_theta(
                        theta, hat, c, m, us, ns, kw, f_w, acc, var, sd, sd4, _ZERO, stochastic
                    )
            if not _grouped(kw):
                continue
            dw = _group_delta(kw, f_w, mb)
            for c in range(s, s + n, CHUNK):
                m = min(CHUNK, s + n - c)
                if need and n > CHUNK:
                    _fill(us, ns, c, m, k0, k1, slots, normals)
                _round_theta(theta, hat, c, m, us, ns, kw, f_w, acc, var, sd, sd4, dw, stochastic)


# -- SGHMC ----------------------------------------------------------------------------------
@njit(**_INLINE)
def _sghmc_means(th, v, gr, kg, f_g, gd, acc, stochastic, c, wd, sd_v, noisy, u_g, xv):  # type: ignore[no-untyped-def]
    """(x_v, mean_θ): mean_v = e·v - a·g, mean_θ = θ + b·v - c·g; x_v = mean_v (+ sd_v·ξ_v
    for full and low)."""
    g = _quantize(kg, f_g, gr, gd, u_g, stochastic)
    if wd != _ZERO:
        g = g + wd * th
    mean_v = c[0] * v - c[1] * g
    mean_th = th + c[2] * v - c[3] * g
    if noisy and acc != VC:
        return mean_v + sd_v * xv, mean_th
    return mean_v, mean_th


@njit(**_INLINE)
def _sghmc_v(
    x,
    th,
    km,
    f_m,
    dm,
    acc,
    stochastic,
    var_v,
    sd_v,
    sd4_v,
    k,
    sd_c,
    noisy,
    u_m,
    u_small,
    xt,
    xv,
    sv,
):  # type: ignore[no-untyped-def]
    """(stored v', θ given v'): x is the Gaussian draw v' (full, low) or mean_v (vc);
    θ ← mean_θ + (Cov/Var_v)(v'_real - mean_v) (+ sd_c·ξ_θ for full and low). ``sv``: the
    momentum's scale S (1 without rescaling): v' is stored as Q(x/S) (low) or
    Q_vc(mean_v/S, Var_v/S²) (vc), and v'_real = S·stored for vc (``var_v``, ``sd_v`` are
    then already divided by S², S)."""
    if acc == VC:
        v_new = _draw(km, f_m, acc, x / sv, var_v, sd_v, sd4_v, dm, xv, u_m, u_small, True)
        return v_new, (th + k * (v_new * sv - x) if noisy else th)
    if noisy:  # v' - mean_v = sd_v·ξ_v, the Gaussian before rounding
        th = th + k * (sd_v * xv) + sd_c * xt
    if acc == LOW:
        return _quantize(km, f_m, x / sv, dm, u_m, stochastic), th
    return x, th


@njit(**_OPTS)  # not inlined: compiled once for its call sites
def _momentum_theta(mom, theta, c, m, us, ns, km, f_m, dm, acc, stochastic, noise):  # type: ignore[no-untyped-def]
    """SGHMC's pass 2 on elements c .. c+m-1 (module docstring, :func:`_sghmc_v`): v ← v' in M
    (Δ_M of the group ``dm``), θ ← θ given v'; returns the bit pattern of max(|θ| + sd4_c)
    over them. ``noise`` = (Var_v, sd_v, 4·sd_v for vc, Cov/Var_v, sd of θ given v', 4·that
    for vc, noisy, S). One loop per accumulator, as :func:`_round_theta`."""
    mv, tv = mom[c : c + m], theta[c : c + m]
    o8, o4 = c & 7, c & 3
    if acc == FULL:
        return _momentum_run(mv, tv, us, ns, o8, o4, km, f_m, dm, FULL, stochastic, noise)
    if acc == LOW:
        return _momentum_run(mv, tv, us, ns, o8, o4, km, f_m, dm, LOW, stochastic, noise)
    return _momentum_run(mv, tv, us, ns, o8, o4, km, f_m, dm, VC, stochastic, noise)


@njit(**_ARRAYS)
def _momentum_run(mv, tv, us, ns, o8, o4, km, f_m, dm, acc, stochastic, noise):  # type: ignore[no-untyped-def]
    """The loop of :func:`_momentum_theta` (scratch offsets o8, o4)."""
    var_v, sd_v, sd4_v, k, sd_c, sd4_c, noisy, sv = noise
    mb = np.int32(0)
    for j in range(mv.shape[0]):
        v_out, th = _sghmc_v(
            mv[j], tv[j], km, f_m, dm, acc, stochastic, var_v, sd_v, sd4_v, k, sd_c, noisy,
            us[U_VM, o8 + j], us[U_VS, o8 + j], ns[X_T, o4 + j], ns[X_V, o4 + j], sv,
        )  # fmt: skip
        mv[j] = v_out
        tv[j] = th
        mb = _maxbits(mb, abs(th) + sd4_c)
    return mb


@njit(**_INLINE)
def sghmc_slots(kg, kw, km, acc, stochastic, noisy):  # type: ignore[no-untyped-def]
    """The thresholds an SGHMC step draws (a bit mask over the five slots)."""
    s = (1 << U_G) if stochastic and kg != 0 else 0
    if acc == VC:
        s |= (1 << U_TS) | (1 << U_VS)
        if noisy:
            s |= (1 << U_TW) | (1 << U_VM)
    else:
        if stochastic and kw != 0:
            s |= 1 << U_TW
        if acc == LOW and stochastic and km != 0:
            s |= 1 << U_VM
    return s


@K.parallel_and_serial
def sghmc_step(
    theta,
    hat,
    mom,
    grad,
    tstart,
    gstart,
    glen,
    kg,
    f_g,
    kw,
    f_w,
    km,
    f_m,
    acc,
    stochastic,
    coef,
    k0,
    k1,
    phase,
    scale,
    gmax,
):  # type: ignore[no-untyped-def]
    """One exact underdamped SGHMC step (module docstring). ``coef``: float64
    (decay, v_from_g, theta_from_v, theta_from_g, wd, var_v, var_θ, cov); ``mom`` holds v
    (divided by its scale when rescaled).

    Momentum rescaling (``phase`` 1 then 2; 0: no rescaling, the whole step): ``scale``
    float64 [groups, 3] holds, per group, its tensor's old scale S (v = S·mom), new scale S'
    and Var_v/S'².
    Phase 1 runs pass 1 (mom ← x, θ ← mean_θ) and writes the bit pattern of the group's
    max|x| to ``gmax`` (int32 [groups]); the caller makes S' = max|x| over the tensor / max Q_M;
    phase 2 runs passes 2 and 3 with v' stored as Q(x/S') (low) or Q_vc(mean_v/S', Var_v/S'²)
    (vc)."""
    f_g, f_w, f_m = _consts(f_g), _consts(f_w), _consts(f_m)
    c = (_F(coef[0]), _F(coef[1]), _F(coef[2]), _F(coef[3]))
    wd32 = _F(coef[4])
    var_v, var_th, cov = coef[5], coef[6], coef[7]
    noisy = var_v > 0.0
    k = _F(cov / var_v) if noisy else _ZERO
    var_c = max(var_th - cov * cov / var_v, 0.0) if noisy else 0.0
    sd_v, sd_c = _F(math.sqrt(var_v)), _F(math.sqrt(var_c))
    vc = acc == VC
    sd4_v = sd_v * _FOUR if vc else _ZERO
    sd4_c = sd_c * _FOUR if vc else _ZERO
    slots = sghmc_slots(kg, kw, km, acc, stochastic, noisy)
    normals = 2 if noisy else 0
    need = slots != 0 or normals != 0
    rescale = phase != 0
    split = _grouped(kg) or _grouped(kw) or _grouped(km) or rescale
    reach_v = _ZERO if rescale else sd4_v  # rescaling: S from max|x| itself (§6)
    for t in prange(tstart.shape[0] - 1):
        us, ns = _scratch(slots, normals)
        for gi in range(tstart[t], tstart[t + 1]):
            s, n = gstart[gi], glen[gi]
            refill = split and n > CHUNK
            # pass 1 (and, without block formats or rescaling, passes 2 and 3 element by
            # element)
            if phase != 2:
                gd = _group_max(kg, f_g, grad, s, n)
                sv = _F(scale[gi, 0]) if rescale else _ONE
                mb = np.int32(0)
                for c0 in range(s, s + n, CHUNK):
                    m = min(CHUNK, s + n - c0)
                    if need:
                        _fill(us, ns, c0, m, k0, k1, slots, normals)
                    o8, o4 = c0 & 7, c0 & 3
                    tv, mv, gv = theta[c0 : c0 + m], mom[c0 : c0 + m], grad[c0 : c0 + m]
                    for j in range(m):
                        x, th = _sghmc_means(
                            tv[j], mv[j] * sv, gv[j], kg, f_g, gd, acc, stochastic, c, wd32,
                            sd_v, noisy, us[U_G, o8 + j], ns[X_V, o4 + j],
                        )  # fmt: skip
                        mv[j] = x
                        tv[j] = th
                        mb = _maxbits(mb, abs(x) + reach_v)
                    if not split:  # no group maxima: passes 2 and 3 on the run, draws at hand
                        noise = (var_v, sd_v, sd4_v, k, sd_c, sd4_c, noisy, _ONE)
                        _momentum_theta(
                            mom, theta, c0, m, us, ns, km, f_m, _ZERO, acc, stochastic, noise
                        )
                        _round_theta(
                            theta, hat, c0, m, us, ns, kw, f_w, acc, var_c, sd_c, sd4_c, _ZERO,
                            stochastic,
                        )  # fmt: skip
                if phase == 1:
                    gmax[gi] = mb
                if not split or phase == 1:
                    continue
                dm = _group_delta(km, f_m, mb)
            else:
                dm = _ZERO  # rescaling: M is fixed point
            # pass 2: v' in M (divided by its new scale when rescaled), θ given v'
            sv = _ONE
            var_s, sd_s, sd4_s = var_v, sd_v, sd4_v
            if rescale:
                sv = _F(scale[gi, 1])
                var_s = scale[gi, 2]
                sd_s = _F(math.sqrt(var_s))
                sd4_s = sd_s * _FOUR if vc else _ZERO
            mb = np.int32(0)
            for c0 in range(s, s + n, CHUNK):
                m = min(CHUNK, s + n - c0)
                if need and (refill or phase == 2):
                    _fill(us, ns, c0, m, k0, k1, slots, normals)
                noise = (var_s, sd_s, sd4_s, k, sd_c, sd4_c, noisy, sv)
                mc = _momentum_theta(mom, theta, c0, m, us, ns, km, f_m, dm, acc, stochastic, noise)
                mb = max(mb, mc)
            # pass 3: θ' in W
            dw = _group_delta(kw, f_w, mb)
            for c0 in range(s, s + n, CHUNK):
                m = min(CHUNK, s + n - c0)
                if need and refill:
                    _fill(us, ns, c0, m, k0, k1, slots, normals)
                _round_theta(
                    theta, hat, c0, m, us, ns, kw, f_w, acc, var_c, sd_c, sd4_c, dw, stochastic
                )


sgld_step_serial = sgld_step.serial
sghmc_step_serial = sghmc_step.serial
