"""Fused sampler steps in numba: one parallel kernel call per SGLD / SGHMC step over
flat buffers (ALGORITHMS.md §3-§6). The equations are written in lowprec/samplers/sgld.py and
sghmc.py and the accumulators' draws in lowprec/samplers/accumulators.py; this module is their
transcription, held to them by tests/lowprec/samplers/test_fused.py (nearest rounding without noise:
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
           momentum rescaling (fixed-point M, §6): two calls, the first pass 1 leaving each
           group's max|x|, the second passes 2 and 3 with v' stored as Q(x/S') or
           Q_vc(mean_v/S', Var_v/S'²), S' = max|x| over the tensor / max Q_M (the executor
           makes it between the calls: lowprec.samplers.fused)

A step runs its passes ``first`` to ``last`` (``split``): all of them in one call, or in calls
cut where a scale needs a maximum over a whole tensor. The call that ends before the last pass
leaves each group's maximum of that pass in ``gmax``, the next call starts from it. Besides
momentum rescaling (cut after pass 1), ``nvfp4<t>`` cuts: its float32 per-tensor scale
T = max over the tensor / (448·6) (1 for an all-zero tensor) of the value it rounds (W: after
pass 1 of SGLD, pass 2 of SGHMC; M: after SGHMC's pass 1; G: none, the gradient is known before
the step) is made by the executor between the calls and read per group from ``scale``.

A format is a kind and four float64 constants (lowprec.kernels.encoding.format_params): fixed
(Δ, lo, hi, 0); block (wl, max_units, 0, 0); float (emin, emax, man, max_value); mx the
element's (emin, emax, man, max_value), a float grid at the group's power-of-two scale X
(from the group's maximum, as a block's Δ); int and nvfp4 the element's float constants, the
group's scale s or S from its maximum, rounding in the element's units (x/s, x·(1/S)) as
lowprec.formats computes them (lowprec.kernels.numba.grid); nvfp4<t> (NVFP4T) is nvfp4
with its tensor's T. Accumulators FULL, LOW, VC
(encoding). Kinds, accumulator and rounding are run-time arguments: one
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

Arguments, grouped: ``bufs`` the flat float32 buffers, ``tasks`` = (tstart, gstart, glen),
``formats`` ((kind, f) per tensor kind: G, W and for SGHMC M), ``rule`` = (accumulator,
stochastic), ``key`` = (k0, k1); the coefficients (below); ``split`` = (first, last, ...,
scale, gmax): the passes, the per-group scales float64 [groups, SCALES] (encoding's columns
S_OLD, S_NEW, VAR_NEW of momentum rescaling, T_G, T_W, T_M of nvfp4<t>; read only where a
rescaling or an NVFP4T kind asks: otherwise a [1, SCALES] placeholder) and the groups' maxima
int32 [groups]. The random numbers: draws.py.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from lowprec.kernels.encoding import (
    BLOCK,
    FIXED,
    FLOAT,
    FP32,
    FULL,
    INT,
    LOW,
    MX,
    MX_EVEN,
    MX_RCEIL,
    NVFP4,
    NVFP4T,
    S_NEW,
    S_OLD,
    T_G,
    T_M,
    T_W,
    VAR_NEW,
    VC,
)
from lowprec.kernels.numba.draws import (
    CHUNK,
    U_G,
    U_TS,
    U_TW,
    U_VM,
    U_VS,
    X_T,
    X_V,
    fill,
    scratch,
    sghmc_slots,
    sgld_slots,
)
from lowprec.kernels.numba.grid import absbits, group_scale, quantize_value, vc_value
from lowprec.kernels.numba.jit import INLINE, OPTS, parallel_and_serial

__all__ = ["sghmc_step", "sgld_step"]

_F = np.float32
_U = np.uint64  # loop counters and scratch offsets: unsigned indices skip the wraparound check
_ZERO, _ONE, _FOUR = _F(0.0), _F(1.0), _F(4.0)


@njit(**INLINE)
def _grouped(kind):  # type: ignore[no-untyped-def]
    """Whether a format's grid needs its group's maximum: block, mx, int, nvfp4."""
    return kind == BLOCK or kind >= MX


@njit(**INLINE)
def _consts(f):  # type: ignore[no-untyped-def]
    """A format's four constants as scalars: loaded once, not from memory in every iteration
    (a store to θ might alias the array, for all LLVM knows, which also stops vectorizing)."""
    return f[0], f[1], f[2], f[3]


@njit(**INLINE)
def _tensor_scale(kind, scale, gi, column):  # type: ignore[no-untyped-def]
    """The per-tensor scale T of group ``gi``'s tensor for an nvfp4<t> format (its ``scale``
    column), 0 (none) for the other kinds, whose ``scale`` may be a placeholder."""
    return _F(scale[gi, column]) if kind == NVFP4T else _ZERO


@njit(**INLINE)
def _draw(kind, f, acc, x, var, sd, sd4, gs, xi, u, u_round, stochastic):  # type: ignore[no-untyped-def]
    """The accumulator's rounding of x (the Gaussian draw for full and low, the mean for vc):
    full and low Q_F(x); vc Q_vc(x, var). ``gs``: the group's scales (grid.group_scale)."""
    if acc == VC:
        return vc_value(kind, f, x, var, sd, abs(x) + sd4, gs, xi, u, u_round)
    return quantize_value(kind, f, x, gs, u, stochastic)


@njit(**INLINE)
def _maxabs(m, x):  # type: ignore[no-untyped-def]
    """Running max of bit patterns of |x| (NaN above inf, so a NaN propagates)."""
    return max(m, absbits(x))  # the builtin: a max LLVM vectorizes (the select form: 2x slower)


@njit(**INLINE)
def _group_max(kind, f, x, s, n, t):  # type: ignore[no-untyped-def]
    """The scales (grid.group_scale) of the group x[s:s+n] from max|x| ((0, 0) for formats
    without groups); ``t`` the per-tensor scale of nvfp4<t> (0: none)."""
    if not _grouped(kind):
        return _ZERO, _ZERO
    mb = np.int32(0)
    v = x[s : s + n]  # indexed by an unsigned counter: no wraparound check, vectorizes
    for j in range(_U(n)):
        mb = _maxabs(mb, v[j])
    return group_scale(kind, f, mb, t)


# -- SGLD -----------------------------------------------------------------------------------
# The helpers take and return scalars: the loops below read and write the arrays themselves
# (an array passed to a helper costs reference counting per element).
@njit(**INLINE)
def _sgld_mean(th, gr, kg, f_g, gs, stochastic, lr, wd, sd, noisy, u_g, xi):  # type: ignore[no-untyped-def]
    """g = Q_G(∇) + wd·θ; x = θ - lr·g (+ sd·ξ for full and low)."""
    g = quantize_value(kg, f_g, gr, gs, u_g, stochastic)
    if wd != _ZERO:
        g = g + wd * th
    x = th - lr * g
    if noisy:
        x = x + sd * xi
    return x


@njit(**INLINE)
def _mean_run(tv, gv, us, ns, u8, u4, kg, f_g, gs, stochastic, coef, mb):  # type: ignore[no-untyped-def]
    """tv[j] ← _sgld_mean of the run (its U_G and ξ_θ draws at scratch offsets u8, u4); returns
    the running max of |x| + sd4 from ``mb``. ``coef`` = (lr, wd, sd, noisy, sd4)."""
    lr32, wd32, sd, noisy, sd4 = coef
    for j in range(_U(tv.shape[0])):
        x = _sgld_mean(
            tv[j], gv[j], kg, f_g, gs, stochastic, lr32, wd32, sd, noisy, us[U_G, u8 + j],
            ns[X_T, u4 + j],
        )  # fmt: skip
        tv[j] = x
        mb = _maxabs(mb, abs(x) + sd4)
    return mb


@njit(**OPTS)  # not inlined: compiled once for its call sites
def _round_theta(theta, hat, c, m, us, ns, o8, o4, kw, f_w, acc, var, sd, sd4, dw, stochastic):  # type: ignore[no-untyped-def]
    """The accumulator's rounding of θ[c:c+m] (:func:`_draw`; W's group scales ``dw``): into θ̂
    for full, into θ itself for low and vc; element c's draws at scratch columns o8 (thresholds)
    and o4 (normals).

    One loop per accumulator, each given ``acc`` as a constant: a loop that still branches on
    it does not vectorize (2-3x slower). In place the loop reads and writes one array, which
    LLVM vectorizes; given two views of the same memory (θ as source and as destination) it
    checks at run time whether they overlap, finds that they do, and runs the scalar loop
    (5x slower: bench.step)."""
    tv = theta[c : c + m]
    if acc == FULL:
        hv = hat[c : c + m]
        _round_run(hv, tv, us, ns, o8, o4, kw, f_w, FULL, var, sd, sd4, dw, stochastic)
    elif acc == LOW:
        _round_run(tv, tv, us, ns, o8, o4, kw, f_w, LOW, var, sd, sd4, dw, stochastic)
    elif kw == FIXED:  # vc: its loop is longer, and branches on the kind stop it vectorizing too
        _round_run(tv, tv, us, ns, o8, o4, FIXED, f_w, VC, var, sd, sd4, dw, stochastic)
    elif kw == BLOCK:
        _round_run(tv, tv, us, ns, o8, o4, BLOCK, f_w, VC, var, sd, sd4, dw, stochastic)
    elif kw in (MX, MX_RCEIL, MX_EVEN):  # the group's scales hold the rule: one element loop
        _round_run(tv, tv, us, ns, o8, o4, MX, f_w, VC, var, sd, sd4, dw, stochastic)
    elif kw == INT:
        _round_run(tv, tv, us, ns, o8, o4, INT, f_w, VC, var, sd, sd4, dw, stochastic)
    elif kw in (NVFP4, NVFP4T):  # the group's scales hold T: one element loop for both
        _round_run(tv, tv, us, ns, o8, o4, NVFP4, f_w, VC, var, sd, sd4, dw, stochastic)
    else:  # float (vc has a low-precision W: PrecisionSpec refuses fp32 with vc)
        _round_run(tv, tv, us, ns, o8, o4, FLOAT, f_w, VC, var, sd, sd4, dw, stochastic)


@njit(**INLINE)
def _round_run(dst, src, us, ns, o8, o4, kw, f_w, acc, var, sd, sd4, dw, stochastic):  # type: ignore[no-untyped-def]
    """dst[j] ← _draw(src[j]) with the run's ξ_θ, U_TW and U_TS draws (scratch offsets o4, o8).
    Unsigned indices: a signed one is checked for wraparound at every access (3x slower)."""
    u8, u4 = _U(o8), _U(o4)
    for j in range(_U(dst.shape[0])):
        dst[j] = _draw(
            kw, f_w, acc, src[j], var, sd, sd4, dw, ns[X_T, u4 + j], us[U_TW, u8 + j],
            us[U_TS, u8 + j], stochastic,
        )  # fmt: skip


@parallel_and_serial
def sgld_step(bufs, tasks, formats, rule, coef, key, split):  # type: ignore[no-untyped-def]
    """One SGLD step (module docstring) over the flat buffers ``bufs`` = (θ, θ̂, ∇) (float32
    arrays; θ̂ is θ itself for low and vc); ``formats`` = (G, W); ``coef`` = (lr,
    weight_decay, var) (floats). Pass 2 writes θ̂ (full) or θ (low, vc).

    ``split`` = (first, last, scale, gmax): passes first..last (1..2: the whole step); (1, 1)
    leaves each group's max of the reach |x| + 4·sd in ``gmax`` (int32 bit patterns), (2, 2)
    rounds θ with W's scales from it and the tensor's T (``scale`` column T_W): nvfp4<t> W."""
    theta, hat, grad = bufs
    tstart, gstart, glen = tasks
    (kg, f_g), (kw, f_w) = formats
    acc, stochastic = rule
    lr, wd, var = coef
    first, last, scale, gmax = split
    f_g, f_w = _consts(f_g), _consts(f_w)
    lr32, wd32 = _F(lr), _F(wd)
    sd = _F(math.sqrt(var))
    sd4 = sd * _FOUR if acc == VC else _ZERO
    noisy = var > 0.0 and acc != VC
    slots = sgld_slots(kg, kw, acc, stochastic, var)
    normals = 1 if var > 0.0 else 0
    need = slots != 0 or normals != 0
    for t in prange(tstart.shape[0] - 1):
        us, ns = scratch(slots, normals)
        # the draws in scratch are those of elements [fs, fe): filled for up to CHUNK elements
        # at once, across groups (small groups, as MX's 32, share one fill: a fill per group
        # runs Philox in loops too short to vectorize); element c's at column (fs & 7) + c - fs
        last_group = tstart[t + 1] - 1
        tend = gstart[last_group] + glen[last_group]
        fs, fe = 0, 0
        for gi in range(tstart[t], tstart[t + 1]):
            s, n = gstart[gi], glen[gi]
            mb = np.int32(0)
            if first == 1:
                gd = _group_max(kg, f_g, grad, s, n, _tensor_scale(kg, scale, gi, T_G))
                for c in range(s, s + n, CHUNK):
                    m = min(CHUNK, s + n - c)
                    if need and (c < fs or c + m > fe):
                        fs, fe = c, max(c + m, min(c + CHUNK, tend))
                        fill(us, ns, fs, fe - fs, key, slots, normals)
                    o8, o4 = (fs & 7) + (c - fs), (fs & 3) + (c - fs)
                    u8, u4 = _U(o8), _U(o4)
                    # slices indexed by an unsigned loop counter (and unsigned scratch offsets):
                    # no negative-index wraparound per access, so the loops vectorize
                    tv, gv = theta[c : c + m], grad[c : c + m]
                    # one loop per case, no store under a branch: each vectorizes (a branch on
                    # a run-time kind inside a vectorized loop computes every kind's arithmetic)
                    if kg == FP32 and kw == FP32:  # float32 G and W (so accumulator full): θ̂ = θ
                        hv = hat[c : c + m]
                        for j in range(_U(m)):
                            x = _sgld_mean(
                                tv[j], gv[j], FP32, f_g, gd, False, lr32, wd32, sd, noisy,
                                _ZERO, ns[X_T, u4 + j],
                            )  # fmt: skip
                            tv[j] = x
                            hv[j] = x
                        continue
                    # the loop once per kind of G among the steps' common ones, the kind a
                    # constant in each: a run-time kind computes every kind's rounding per element
                    coef = (lr32, wd32, sd, noisy, sd4)
                    if kg == BLOCK:
                        mb = _mean_run(tv, gv, us, ns, u8, u4, BLOCK, f_g, gd, stochastic, coef, mb)
                    elif kg in (MX, MX_RCEIL, MX_EVEN):
                        mb = _mean_run(tv, gv, us, ns, u8, u4, MX, f_g, gd, stochastic, coef, mb)
                    else:
                        mb = _mean_run(tv, gv, us, ns, u8, u4, kg, f_g, gd, stochastic, coef, mb)
                    if not _grouped(kw):  # no group maximum: round the run, its draws at hand
                        _round_theta(
                            theta, hat, c, m, us, ns, o8, o4, kw, f_w, acc, var, sd, sd4,
                            (_ZERO, _ZERO), stochastic,
                        )  # fmt: skip
                if not _grouped(kw):
                    continue
                if last == 1:  # the tensor's T of W is made from these before pass 2
                    gmax[gi] = mb
                    continue
            else:
                mb = gmax[gi]
            # pass 2: θ's rounding in the group (block, scaled W)
            dw = group_scale(kw, f_w, mb, _tensor_scale(kw, scale, gi, T_W))
            for c in range(s, s + n, CHUNK):
                m = min(CHUNK, s + n - c)
                if need and (c < fs or c + m > fe):  # a group longer than CHUNK, or pass 2 alone
                    fs, fe = c, max(c + m, min(c + CHUNK, tend))
                    fill(us, ns, fs, fe - fs, key, slots, normals)
                o8, o4 = (fs & 7) + (c - fs), (fs & 3) + (c - fs)
                _round_theta(
                    theta, hat, c, m, us, ns, o8, o4, kw, f_w, acc, var, sd, sd4, dw, stochastic
                )


# -- SGHMC ----------------------------------------------------------------------------------
@njit(**INLINE)
def _sghmc_means(th, v, gr, kg, f_g, gd, acc, stochastic, c, wd, sd_v, noisy, u_g, xv):  # type: ignore[no-untyped-def]
    """(x_v, mean_θ): mean_v = e·v - a·g, mean_θ = θ + b·v - c·g; x_v = mean_v (+ sd_v·ξ_v
    for full and low)."""
    g = quantize_value(kg, f_g, gr, gd, u_g, stochastic)
    if wd != _ZERO:
        g = g + wd * th
    mean_v = c[0] * v - c[1] * g
    mean_th = th + c[2] * v - c[3] * g
    if noisy and acc != VC:
        return mean_v + sd_v * xv, mean_th
    return mean_v, mean_th


@njit(**INLINE)
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
        return quantize_value(km, f_m, x / sv, dm, u_m, stochastic), th
    return x, th


@njit(**OPTS)  # not inlined: compiled once for its call sites
def _momentum_theta(mom, theta, c, m, us, ns, km, f_m, dm, acc, stochastic, noise):  # type: ignore[no-untyped-def]
    """SGHMC's pass 2 on elements c .. c+m-1 (module docstring, :func:`_sghmc_v`): v ← v' in M
    (M's group scales ``dm``), θ ← θ given v'; returns the bit pattern of max(|θ| + sd4_c)
    over them. ``noise`` = (Var_v, sd_v, 4·sd_v for vc, Cov/Var_v, sd of θ given v', 4·that
    for vc, noisy, S). One loop per accumulator, as :func:`_round_theta`."""
    mv, tv = mom[c : c + m], theta[c : c + m]
    o8, o4 = c & 7, c & 3
    if acc == FULL:
        return _momentum_run(mv, tv, us, ns, o8, o4, km, f_m, dm, FULL, stochastic, noise)
    if acc == LOW:
        return _momentum_run(mv, tv, us, ns, o8, o4, km, f_m, dm, LOW, stochastic, noise)
    return _momentum_run(mv, tv, us, ns, o8, o4, km, f_m, dm, VC, stochastic, noise)


@njit(**INLINE)
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
        mb = _maxabs(mb, abs(th) + sd4_c)
    return mb


@parallel_and_serial
def sghmc_step(bufs, tasks, formats, rule, coef, key, split):  # type: ignore[no-untyped-def]
    """One exact underdamped SGHMC step (module docstring). ``coef``: float64
    (decay, v_from_g, theta_from_v, theta_from_g, wd, var_v, var_θ, cov); ``bufs`` = (θ, θ̂,
    v, ∇), v divided by its scale when rescaled; ``formats`` = (G, W, M); ``split`` =
    (first, last, rescale, scale, gmax): passes first..last (1..3: the whole step).

    A call that stops before pass 3 leaves in ``gmax`` (int32 [groups]) the bit pattern of
    each group's maximum of its last pass (pass 1: max|x| of v's draw, with the reach 4·sd_v
    for a grouped vc M; pass 2: the reach of θ given v'), from which the executor makes the
    per-tensor scales; the next call starts from it. Momentum rescaling (``rescale``: passes
    1, then 2..3): ``scale`` holds, per group, its tensor's old scale S (v = S·mom, column
    S_OLD), new scale S' = max|x| over the tensor / max Q_M (S_NEW) and Var_v/S'² (VAR_NEW),
    and v' is stored as Q(x/S') (low) or Q_vc(mean_v/S', Var_v/S'²) (vc). nvfp4<t> M and W
    cut after pass 1 and pass 2, their T in columns T_M and T_W; T_G of an nvfp4<t> G in
    T_G."""
    theta, hat, mom, grad = bufs
    tstart, gstart, glen = tasks
    (kg, f_g), (kw, f_w), (km, f_m) = formats
    acc, stochastic = rule
    first, last, rescale, scale, gmax = split
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
    whole = first == 1 and last == 3
    split_groups = _grouped(kg) or _grouped(kw) or _grouped(km) or not whole
    # the maximum pass 1 leaves: of v's draw with its reach for a grouped M (its scales),
    # of x itself for rescaling (S from max|x|, §6)
    reach_v = sd4_v if _grouped(km) else _ZERO
    for t in prange(tstart.shape[0] - 1):
        us, ns = scratch(slots, normals)
        for gi in range(tstart[t], tstart[t + 1]):
            s, n = gstart[gi], glen[gi]
            refill = split_groups and n > CHUNK
            # pass 1 (and, without block formats or cuts, passes 2 and 3 element by element)
            if first == 1:
                gd = _group_max(kg, f_g, grad, s, n, _tensor_scale(kg, scale, gi, T_G))
                sv = _F(scale[gi, S_OLD]) if rescale else _ONE
                mb = np.int32(0)
                for c0 in range(s, s + n, CHUNK):
                    m = min(CHUNK, s + n - c0)
                    if need:
                        fill(us, ns, c0, m, key, slots, normals)
                    o8, o4 = c0 & 7, c0 & 3
                    tv, mv, gv = theta[c0 : c0 + m], mom[c0 : c0 + m], grad[c0 : c0 + m]
                    for j in range(m):
                        x, th = _sghmc_means(
                            tv[j], mv[j] * sv, gv[j], kg, f_g, gd, acc, stochastic, c, wd32,
                            sd_v, noisy, us[U_G, o8 + j], ns[X_V, o4 + j],
                        )  # fmt: skip
                        mv[j] = x
                        tv[j] = th
                        mb = _maxabs(mb, abs(x) + reach_v)
                    if not split_groups:  # no group maxima: passes 2 and 3 on the run
                        noise = (var_v, sd_v, sd4_v, k, sd_c, sd4_c, noisy, _ONE)
                        _momentum_theta(
                            mom, theta, c0, m, us, ns, km, f_m, (_ZERO, _ZERO), acc, stochastic,
                            noise,
                        )  # fmt: skip
                        _round_theta(
                            theta, hat, c0, m, us, ns, c0 & 7, c0 & 3, kw, f_w, acc, var_c, sd_c,
                            sd4_c, (_ZERO, _ZERO), stochastic,
                        )  # fmt: skip
                if not split_groups:
                    continue
                if last == 1:
                    gmax[gi] = mb
                    continue
            else:
                mb = gmax[gi]
            if first <= 2:
                # pass 2: v' in M (divided by its new scale when rescaled), θ given v'
                dm = group_scale(km, f_m, mb, _tensor_scale(km, scale, gi, T_M))
                sv = _ONE
                var_s, sd_s, sd4_s = var_v, sd_v, sd4_v
                if rescale:
                    sv = _F(scale[gi, S_NEW])
                    var_s = scale[gi, VAR_NEW]
                    sd_s = _F(math.sqrt(var_s))
                    sd4_s = sd_s * _FOUR if vc else _ZERO
                mb = np.int32(0)
                for c0 in range(s, s + n, CHUNK):
                    m = min(CHUNK, s + n - c0)
                    if need and (refill or first == 2):
                        fill(us, ns, c0, m, key, slots, normals)
                    noise = (var_s, sd_s, sd4_s, k, sd_c, sd4_c, noisy, sv)
                    mc = _momentum_theta(
                        mom, theta, c0, m, us, ns, km, f_m, dm, acc, stochastic, noise
                    )
                    mb = max(mb, mc)
                if last == 2:
                    gmax[gi] = mb
                    continue
            else:
                mb = gmax[gi]
            # pass 3: θ' in W
            dw = group_scale(kw, f_w, mb, _tensor_scale(kw, scale, gi, T_W))
            for c0 in range(s, s + n, CHUNK):
                m = min(CHUNK, s + n - c0)
                if need and (refill or first == 3):
                    fill(us, ns, c0, m, key, slots, normals)
                _round_theta(
                    theta, hat, c0, m, us, ns, c0 & 7, c0 & 3, kw, f_w, acc, var_c, sd_c, sd4_c,
                    dw, stochastic,
                )  # fmt: skip
