"""Fused sampler steps on the CPU (numba): one parallel kernel call per SGLD / SGHMC step over
flat buffers (ALGORITHMS.md §3-§6). The equations are written in lowprec/samplers/sgld.py and
sghmc.py and the accumulators' draws in lowprec/samplers/accumulators.py; this module is their
transcription, held to them by tests/lowprec/test_fused_step.py (nearest rounding without noise:
the same bits; otherwise the same laws).

Work is split into exponent groups (:mod:`lowprec.flat`): a row of a dim-0 block, a run of k
values of a k-block, or a chunk of values for the other formats. Threads take whole groups.
When a format of the step is a block format its exponent needs the group's maximum of a value
the step computes, so the group is walked in passes (each in cache); without block formats the
passes run element by element in one loop:

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

Random numbers (the building blocks of :mod:`lowprec.kernels.cpu`, bits of
:mod:`lowprec.kernels.rng`): one Philox4x32-10 call per element i, counter (i, STREAM, 0), under
the key drawn once per step from the trial's generator:

    w0: low 16 bits the rounding of G; high 16 bits W's rounding or θ's VC Cat
    w1: low 16 bits θ's VC small-branch rounding; high 16 bits M's rounding or v's VC Cat
    w2, w3: one Box-Muller pair (ξ_θ, ξ_v)

and, for SGHMC with ``vc`` only, a second call (i, STREAM + 1, 0) whose w0 low bits are v's VC
small-branch rounding. Thresholds are the unbiased midpoints (2r + 1)/2^17 of
:func:`lowprec.kernels.cpu.threshold16`. The normals come from :func:`box_muller`, Box-Muller
with float32 polynomial logarithm and sine/cosine (absolute errors below 1e-6) that vectorize
without a vector math library; |ξ| <= 5.77 as in rng.py.

A format is a kind (0 fp32, 1 fixed, 2 block, 3 float) and four float64 constants
(``lowprec.samplers.fused.format_params``): fixed (Δ, lo, hi, 0); block (wl, max_units, 0, 0);
float (emin, emax, man, max_value). Accumulators: 0 full, 1 low, 2 vc. Kinds, accumulator
and rounding are run-time arguments: one compiled kernel per rule (cached on disk), whose
branches on them are the same for every element (specialising them at compile time measured
no faster here and multiplied the compile time by the number of combinations).

Work units: ``tstart`` cuts the groups into tasks of at least 16,384 values (consecutive groups;
``lowprec.flat.FlatLayout.task_start``), the unit of parallelism; each task owns scratch for the
random words and normals of one chunk of CHUNK values.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from lowprec.kernels import cpu as K

__all__ = ["STREAM", "box_muller", "sghmc_step", "sgld_step"]

FULL, LOW, VC = 0, 1, 2
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
def _group_delta(kind, f, maxbits):  # type: ignore[no-untyped-def]
    """Δ of a block group from the bit pattern of its maximum (0 for other formats)."""
    if kind == 2:
        return K.block_delta(maxbits, int(f[0]))
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
    return K.float_delta(x, int(f[0]), int(f[1]), int(f[2])), _F(-f[3]), _F(f[3])


@njit(**_INLINE)
def _quantize(kind, f, x, gd, u, stochastic):  # type: ignore[no-untyped-def]
    """Q_F(x): clamp, then nearest (ties to even) or [u < y - floor(y)] in units y = x/Δ."""
    if kind == 0:
        return x
    d, lo, hi = _grid(kind, f, x, gd)
    y = K.clamp(x, lo, hi) / d
    if stochastic:
        fl = np.floor(y)
        return (fl + _F(u < y - fl)) * d  # a 0/1 value, no branch
    return np.rint(y) * d


@njit(**_INLINE)
def _vc(kind, f, mu, var, sd, reach, gd, xi, u_cat, u_round):  # type: ignore[no-untyped-def]
    """Q_vc(μ, var) (ALGORITHMS.md §4, lowprec/vc.py) in units of Δ, Δ of the reach
    |μ| + 4·sd: w = var/Δ²; w > 1/4: x = m + sqrt(w - 1/4)·ξ, q = round(x), Cat(x - q, 1/4);
    else q = stochastic(m), Cat(0, max(w - v_s, 0)), v_s = δ(1 - δ); clamp to the range."""
    if kind == 0:
        return mu + sd * xi
    d, lo, hi = _grid(kind, f, reach, gd)
    m = K.clamp(mu, lo, hi) / d
    w = _F(var) / d / d
    if w > _F(0.25):
        x = m + np.sqrt(w - _F(0.25)) * xi
        q = np.rint(x)
        a = x - q
        second = _F(0.25) + a * a
    else:
        fl = np.floor(m)
        frac = m - fl
        q = fl + _F(u_round < frac)
        a = _ZERO
        second = min(max(w - frac * (_ONE - frac), _ZERO), _ONE)
    # Cat(a, c) = [2u < c + a² + a] - [2u >= 2 - (c + a² - a)] (0/1 values, no branches)
    u2 = _F(2.0) * u_cat
    cat = _F(u2 < second + a) - _F(u2 >= _F(2.0) - (second - a))
    out = K.clamp((q + cat) * d, lo, hi)
    if kind == 3:  # left Δ's binade: stochastic rounding onto the float grid (mean kept)
        return _quantize(kind, f, out, _ZERO, u_round, True)
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
    """Δ of the block group x[s:s+n] from max|x| (0 for formats without groups)."""
    if kind != 2:
        return _ZERO
    mb = np.int32(0)
    for i in range(s, s + n):
        mb = _maxbits(mb, x[i])
    return _group_delta(kind, f, mb)


# -- random numbers of a chunk ---------------------------------------------------------------
#: elements per chunk: the random words and normals of a chunk are made in vectorized loops
#: into the task's scratch (80 KB of words, 32 KB of normals), then read by the update
CHUNK = 4096


@njit(**_ARRAYS)
def _fill(ws, ns, start, m, k0, k1, normals, extra):  # type: ignore[no-untyped-def]
    """ws[0..3, j] = Philox words of element start + j (stream STREAM), ws[4, j] = word 0 of
    stream STREAM + 1 when ``extra``; ns[0..1, j] = (ξ_θ, ξ_v) when ``normals``."""
    for j in range(m):
        w0, w1, w2, w3 = K.group_words(start + j, k0, k1, STREAM)
        ws[0, j] = w0
        ws[1, j] = w1
        ws[2, j] = w2
        ws[3, j] = w3
    if extra:
        for j in range(m):
            e0, _, _, _ = K.group_words(start + j, k0, k1, STREAM + 1)
            ws[4, j] = e0
    if normals:
        for j in range(m):
            a, b = box_muller(np.uint64(ws[2, j]), np.uint64(ws[3, j]))
            ns[0, j] = a
            ns[1, j] = b


@njit(**_INLINE)
def _t(w, high):  # type: ignore[no-untyped-def]
    """The threshold of the low or high 16 bits of a 32-bit word (held in a uint32)."""
    w64 = np.uint64(w)
    return _hi16(w64) if high else _lo16(w64)


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


@njit(parallel=True, **_OPTS)
def sgld_step(
    theta, hat, grad, tstart, gstart, glen, kg, f_g, kw, f_w, acc, stochastic, lr, wd, var, k0, k1
):  # type: ignore[no-untyped-def]
    """One SGLD step (module docstring) over the flat buffers (float32 arrays; ``hat`` is
    ``theta`` itself for low and vc). Pass 2 writes θ̂ (full) or θ (low, vc)."""
    lr32, wd32 = _F(lr), _F(wd)
    sd = _F(math.sqrt(var))
    sd4 = sd * _FOUR if acc == VC else _ZERO
    noisy = var > 0.0 and acc != VC
    need = stochastic or noisy or acc == VC
    normals = noisy or (acc == VC and var > 0.0)
    out_w = hat if acc == FULL else theta
    for t in prange(tstart.shape[0] - 1):
        ws = np.zeros((5, CHUNK), np.uint32)
        ns = np.zeros((2, CHUNK), np.float32)
        for gi in range(tstart[t], tstart[t + 1]):
            s, n = gstart[gi], glen[gi]
            gd = _group_max(kg, f_g, grad, s, n)
            mb = np.int32(0)
            for c in range(s, s + n, CHUNK):
                m = min(CHUNK, s + n - c)
                if need:
                    _fill(ws, ns, c, m, k0, k1, normals, False)
                for j in range(m):
                    i = c + j
                    w0 = ws[0, j]
                    x = _sgld_mean(
                        theta[i], grad[i], kg, f_g, gd, stochastic, lr32, wd32, sd, noisy,
                        _t(w0, False), ns[0, j],
                    )  # fmt: skip
                    theta[i] = x
                    if kw == 2:
                        mb = _maxbits(mb, abs(x) + sd4)
                    else:
                        out_w[i] = _draw(
                            kw, f_w, acc, x, var, sd, sd4, _ZERO, ns[0, j], _t(w0, True),
                            _t(ws[1, j], False), stochastic,
                        )  # fmt: skip
            if kw != 2:
                continue
            dw = _group_delta(kw, f_w, mb)
            for c in range(s, s + n, CHUNK):
                m = min(CHUNK, s + n - c)
                if need and n > CHUNK:
                    _fill(ws, ns, c, m, k0, k1, normals, False)
                for j in range(m):
                    i = c + j
                    out_w[i] = _draw(
                        kw, f_w, acc, theta[i], var, sd, sd4, dw, ns[0, j], _t(ws[0, j], True),
                        _t(ws[1, j], False), stochastic,
                    )  # fmt: skip


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
    x, th, km, f_m, dm, acc, stochastic, var_v, sd_v, sd4_v, k, sd_c, noisy, u_m, u_small, xt, xv
):  # type: ignore[no-untyped-def]
    """(stored v', θ given v'): x is the Gaussian draw v' (full, low) or mean_v (vc);
    θ ← mean_θ + (Cov/Var_v)(v'_real - mean_v) (+ sd_c·ξ_θ for full and low)."""
    if acc == VC:
        v_new = _draw(km, f_m, acc, x, var_v, sd_v, sd4_v, dm, xv, u_m, u_small, True)
        return v_new, (th + k * (v_new - x) if noisy else th)
    if noisy:  # v' - mean_v = sd_v·ξ_v, the Gaussian before rounding
        th = th + k * (sd_v * xv) + sd_c * xt
    if acc == LOW:
        return _quantize(km, f_m, x, dm, u_m, stochastic), th
    return x, th


@njit(parallel=True, **_OPTS)
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
):  # type: ignore[no-untyped-def]
    """One exact underdamped SGHMC step (module docstring). ``coef``: float64
    (decay, v_from_g, theta_from_v, theta_from_g, wd, var_v, var_θ, cov); ``mom`` holds v."""
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
    need = stochastic or noisy or vc
    any_block = kg == 2 or kw == 2 or km == 2
    out_w = hat if acc == FULL else theta
    for t in prange(tstart.shape[0] - 1):
        ws = np.zeros((5, CHUNK), np.uint32)
        ns = np.zeros((2, CHUNK), np.float32)
        for gi in range(tstart[t], tstart[t + 1]):
            s, n = gstart[gi], glen[gi]
            gd = _group_max(kg, f_g, grad, s, n)
            refill = any_block and n > CHUNK
            # pass 1 (and, without block formats, passes 2 and 3 element by element)
            mb = np.int32(0)
            for c0 in range(s, s + n, CHUNK):
                m = min(CHUNK, s + n - c0)
                if need:
                    _fill(ws, ns, c0, m, k0, k1, noisy, vc)
                for j in range(m):
                    i = c0 + j
                    x, th = _sghmc_means(
                        theta[i], mom[i], grad[i], kg, f_g, gd, acc, stochastic, c, wd32, sd_v,
                        noisy, _t(ws[0, j], False), ns[1, j],
                    )  # fmt: skip
                    if any_block:
                        mom[i] = x
                        theta[i] = th
                        mb = _maxbits(mb, abs(x) + sd4_v)
                        continue
                    v_out, th = _sghmc_v(
                        x, th, km, f_m, _ZERO, acc, stochastic, var_v, sd_v, sd4_v, k, sd_c,
                        noisy, _t(ws[1, j], True), _t(ws[4, j], False), ns[0, j], ns[1, j],
                    )  # fmt: skip
                    mom[i] = v_out
                    theta[i] = th
                    out_w[i] = _draw(
                        kw, f_w, acc, th, var_c, sd_c, sd4_c, _ZERO, ns[0, j], _t(ws[0, j], True),
                        _t(ws[1, j], False), stochastic,
                    )  # fmt: skip
            if not any_block:
                continue
            dm = _group_delta(km, f_m, mb)
            mb = np.int32(0)
            for c0 in range(s, s + n, CHUNK):
                m = min(CHUNK, s + n - c0)
                if need and refill:
                    _fill(ws, ns, c0, m, k0, k1, noisy, vc)
                for j in range(m):
                    i = c0 + j
                    v_out, th = _sghmc_v(
                        mom[i], theta[i], km, f_m, dm, acc, stochastic, var_v, sd_v, sd4_v, k,
                        sd_c, noisy, _t(ws[1, j], True), _t(ws[4, j], False), ns[0, j], ns[1, j],
                    )  # fmt: skip
                    mom[i] = v_out
                    theta[i] = th
                    mb = _maxbits(mb, abs(th) + sd4_c)
            dw = _group_delta(kw, f_w, mb)
            for c0 in range(s, s + n, CHUNK):
                m = min(CHUNK, s + n - c0)
                if need and refill:
                    _fill(ws, ns, c0, m, k0, k1, noisy, vc)
                for j in range(m):
                    i = c0 + j
                    out_w[i] = _draw(
                        kw, f_w, acc, theta[i], var_c, sd_c, sd4_c, dw, ns[0, j],
                        _t(ws[0, j], True), _t(ws[1, j], False), stochastic,
                    )  # fmt: skip


#: the same kernels without the parallel region, for steps too small to share out (a parallel
#: launch costs tens of microseconds, more when the cores are busy)
sgld_step_serial = njit(**_OPTS)(sgld_step.py_func)
sghmc_step_serial = njit(**_OPTS)(sghmc_step.py_func)
