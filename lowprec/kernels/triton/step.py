"""Fused sampler steps on the GPU (Triton): one kernel launch per SGLD / SGHMC step over flat
buffers, the transcription of lowprec/kernels/numba/step.py (read its docstring for the passes,
the streams and the format constants): one program per exponent group, walking the group in
blocks of BLOCK values, pass by pass when a format of the step is a block format.

The random bits are the CPU's (see lowprec/kernels/numba/draws.py: one stream per threshold
slot, a call per 8 elements; one per normal, a call per 4 elements), made per window of BLOCK
elements aligned to 8 (bits.window_thresholds, bits.window_normals), so the roundings draw the
same thresholds on both backends (tests/lowprec/kernels/triton/test_step.py runs these kernels
under TRITON_INTERPRET=1 against the numba ones). The normals use Triton's log/cos/sin
(bits.box_muller) where the CPU uses polynomials: the same law, values equal to about 1e-6. The
roundings and Q_vc are grid.py's, shared with the quantizers. Formats: fp32, fixed, block,
float and the scaled kinds MX (its three scale rules), INT, NVFP4 and NVFP4T (nvfp4<t>),
whose scales come from the group's maximum (grid.block_scale) as in the numba step; NVFP4T's
per-tensor T from
the step's per-group scales (column T_G, T_W or T_M), made by the executor between launches
that each run some of the passes (FIRST..LAST), as numba's ``split``.

Untested on a real GPU in this repository's CI (no GPU there); the interpreter runs it on CPU
tensors.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import triton
import triton.language as tl

from lowprec.kernels import encoding as E
from lowprec.kernels.encoding import FLOAT, MX, triton_format_args
from lowprec.kernels.triton import bits as B
from lowprec.kernels.triton import grid as Q

__all__ = ["BLOCK", "sghmc_step", "sgld_step"]

STREAM: tl.constexpr = tl.constexpr(16)
BLOCK = 1024
#: the per-group scales' row length and columns (lowprec.kernels.encoding)
SCALES: tl.constexpr = tl.constexpr(E.SCALES)
S_OLD: tl.constexpr = tl.constexpr(E.S_OLD)
S_NEW: tl.constexpr = tl.constexpr(E.S_NEW)
VAR_NEW: tl.constexpr = tl.constexpr(E.VAR_NEW)
T_G: tl.constexpr = tl.constexpr(E.T_G)
T_W: tl.constexpr = tl.constexpr(E.T_W)
T_M: tl.constexpr = tl.constexpr(E.T_M)


@triton.jit
def _tensor_scale(scale_ptr, g_id, COLUMN: tl.constexpr, KIND: tl.constexpr):
    """(T, 1/T) of the program's group's tensor for an NVFP4T format (its scales' COLUMN; 1/T
    correctly rounded, as the eager float32 division), (0, 0) for the other kinds (none)."""
    if KIND == Q.NVFP4T:
        t = tl.load(scale_ptr + SCALES * g_id + COLUMN).to(tl.float32)
        return t, tl.math.div_rn(tl.zeros_like(t) + 1.0, t)
    else:
        return 0.0, 0.0


@triton.jit
def _vc(mu, var, sd, reach, KIND: tl.constexpr, f, mb, ts, xi, u_cat, u_rnd):
    """Q_vc(μ, var) element-wise on the grid of the reach (the numba step's): grid.vc_on_grid
    with ``u_rnd`` the small branch's threshold and, for float grids, the re-rounding's. Scaled
    kinds: in the element's units at the group's scales (μ, the reach and sqrt(var) mapped by
    to_element; ``ts`` the per-tensor (T, 1/T)), times the scale back."""
    if KIND == 0:
        return mu + sd * xi
    elif KIND >= Q.MX:
        into, up = Q.block_scale(mb, KIND, f, ts)
        one = Q.to_element(tl.zeros_like(mu) + 1.0, into, KIND)
        m = Q.to_element(mu, into, KIND)
        out = _vc_on(m, var * one * one, Q.to_element(reach, into, KIND), Q.FLOAT, f, mb, xi,
                     u_cat, u_rnd)  # fmt: skip
        return out * up
    else:
        return _vc_on(mu, tl.zeros_like(mu) + var, reach, KIND, f, mb, xi, u_cat, u_rnd)


@triton.jit
def _vc_on(mu, var, reach, KIND: tl.constexpr, f, mb, xi, u_cat, u_rnd):
    """Q_vc on the grid of ``reach`` (fixed, block, float); a float result re-rounded onto the
    grid of its own binade."""
    d, lo, hi = Q.grid(reach, KIND, f, mb)
    out = Q.vc_on_grid(mu, var, d, lo, hi, xi, u_rnd, u_cat)
    if KIND == Q.FLOAT:
        out = Q.round_on_grid(out, Q.float_delta(out, f[3], f[4], f[5]), lo, hi, u_rnd, True)
    return out


@triton.jit
def _draw(x, var, sd, sd4, KIND: tl.constexpr, f, mb, ts, xi, u, u_rnd, ACC: tl.constexpr,
          STOCHASTIC: tl.constexpr):  # fmt: skip
    """full, low: Q_F(x); vc: Q_vc(x, var) (Δ of the reach |x| + 4·sd)."""
    if ACC == 2:
        return _vc(x, var, sd, tl.abs(x) + sd4, KIND, f, mb, ts, xi, u, u_rnd)
    else:
        return Q.quantize_value(x, KIND, f, mb, u, STOCHASTIC, ts)


@triton.jit
def _thresholds(base, k0, k1, SLOT: tl.constexpr, ON: tl.constexpr, BLOCK_: tl.constexpr):
    """Threshold SLOT of a window: stream STREAM + 2 + SLOT (bits.window_thresholds)."""
    return B.window_thresholds(base, k0, k1, STREAM + 2 + SLOT, ON, BLOCK_)


@triton.jit
def _normals(base, k0, k1, N: tl.constexpr, ON: tl.constexpr, BLOCK_: tl.constexpr):
    """Normal N of a window: stream STREAM + N (bits.window_normals)."""
    return B.window_normals(base, k0, k1, STREAM + N, ON, BLOCK_)


@triton.jit
def _group_bits(ptr, s, n, KIND: tl.constexpr, BLOCK_: tl.constexpr):
    """The bit pattern of max|x| over ptr[s:s+n] for a block or scaled group (0 for other
    formats)."""
    mb = tl.zeros((), tl.int32)
    if KIND == Q.BLOCK or KIND >= Q.MX:
        for c in range(0, n, BLOCK_):
            j = c + tl.arange(0, BLOCK_)
            x = tl.load(ptr + s + j, mask=j < n, other=0.0)
            mb = tl.maximum(mb, tl.max(Q.absbits(x), axis=0))
    return mb


@triton.jit
def _gradient(grad_ptr, th, i, mask, wd, KG: tl.constexpr, fg, mg, ts, u,
              STOCHASTIC: tl.constexpr):  # fmt: skip
    """Q_G(∇) + wd·θ of a window (mg: the gradient group's max bits for a block or scaled G,
    ``ts`` its tensor's (T, 1/T))."""
    g = Q.quantize_value(tl.load(grad_ptr + i, mask=mask, other=0.0), KG, fg, mg, u, STOCHASTIC,
                         ts)  # fmt: skip
    if wd != 0.0:
        g = g + wd * th
    return g


@triton.jit
def _group(gstart_ptr, glen_ptr):
    """(s, n, a0) of this program's exponent group: its start, its length, and the start
    rounded down to a multiple of 8 (the random calls' boundary), where its windows begin."""
    g_id = tl.program_id(0)
    s = tl.load(gstart_ptr + g_id)
    n = tl.load(glen_ptr + g_id)
    return s, n, s - s % 8


@triton.jit
def _window(a0, c, s, n, BLOCK_: tl.constexpr):
    """(base, i, mask) of the window at offset c: its first index a0 + c, its indices, and
    which of them lie in the group s .. s + n - 1."""
    base = a0 + c
    i = base + tl.arange(0, BLOCK_)
    return base, i, (i >= s) & (i < s + n)


@triton.jit
def _theta_pass(theta_ptr, hat_ptr, group, key, noise, KW: tl.constexpr, fw, mw, tw,
                ACC: tl.constexpr, STOCHASTIC: tl.constexpr, NORMALS: tl.constexpr,
                U_TW: tl.constexpr, U_TS: tl.constexpr, BLOCK_: tl.constexpr):  # fmt: skip
    """The last pass over a group: θ (θ̂ for full) ← the accumulator's draw of θ in W
    (_draw; noise = (var, sd, sd4) of the draw, mw the group's max bits for a block or scaled
    W, ``tw`` its tensor's (T, 1/T))."""
    s, n, a0 = group
    k0, k1 = key
    var, sd, sd4 = noise
    for c in range(0, n + (s - a0), BLOCK_):
        base, i, mask = _window(a0, c, s, n, BLOCK_)
        xt = _normals(base, k0, k1, 0, NORMALS, BLOCK_)
        x = tl.load(theta_ptr + i, mask=mask, other=0.0)
        out = _draw(x, var, sd, sd4, KW, fw, mw, tw, xt,
                    _thresholds(base, k0, k1, 1, U_TW, BLOCK_),
                    _thresholds(base, k0, k1, 2, U_TS, BLOCK_), ACC, STOCHASTIC)  # fmt: skip
        _store_draw(theta_ptr, hat_ptr, i, out, mask, ACC)


@triton.jit
def _store_draw(theta_ptr, hat_ptr, i, out, mask, ACC: tl.constexpr):
    """The accumulator's result: θ̂ for full (θ keeps the full-precision value), else θ."""
    if ACC == 0:
        tl.store(hat_ptr + i, out, mask=mask)
    else:
        tl.store(theta_ptr + i, out, mask=mask)


@triton.jit
def _sgld_kernel(
    theta_ptr, hat_ptr, grad_ptr, gstart_ptr, glen_ptr, key_ptr, scale_ptr, gmax_ptr, coef, fg,
    fw, KG: tl.constexpr, KW: tl.constexpr, ACC: tl.constexpr, STOCHASTIC: tl.constexpr,
    NOISY: tl.constexpr, NORMALS: tl.constexpr, FIRST: tl.constexpr, LAST: tl.constexpr,
    BLOCK_: tl.constexpr,
):  # fmt: skip
    """One SGLD step on one exponent group (numba/step.py sgld_step), in windows of BLOCK_
    elements aligned to 8 (the random calls' boundaries). Formats: G (KG, fg) of the
    gradient, W (KW, fw) of the weights (encoding.triton_format_args); ``coef`` = (lr, wd,
    var, sd, sd4) (sgld_step). Passes FIRST..LAST (1..2: all); LAST 1 leaves the group's
    max bits of the reach in gmax, FIRST 2 starts from them (an nvfp4<t> W: its T between)."""
    lr, wd, var, sd, sd4 = coef
    U_G: tl.constexpr = STOCHASTIC and KG != 0
    U_TW: tl.constexpr = (ACC == 2 and NORMALS) or (ACC != 2 and STOCHASTIC and KW != 0)
    U_TS: tl.constexpr = ACC == 2
    s, n, a0 = _group(gstart_ptr, glen_ptr)
    g_id = tl.program_id(0)
    k0, k1 = B.load_key(key_ptr)
    mb = tl.zeros((), tl.int32)
    if FIRST == 1:
        mg = _group_bits(grad_ptr, s, n, KG, BLOCK_)
        tg = _tensor_scale(scale_ptr, g_id, T_G, KG)
        # pass 1: θ ← θ - lr·(Q_G(∇) + wd·θ) (+ sd·ξ); without a block W, θ's rounding too
        for c in range(0, n + (s - a0), BLOCK_):
            base, i, mask = _window(a0, c, s, n, BLOCK_)
            xt = _normals(base, k0, k1, 0, NORMALS, BLOCK_)
            th = tl.load(theta_ptr + i, mask=mask, other=0.0)
            g = _gradient(grad_ptr, th, i, mask, wd, KG, fg, mg, tg,
                          _thresholds(base, k0, k1, 0, U_G, BLOCK_), STOCHASTIC)  # fmt: skip
            x = th - lr * g
            if NOISY:
                x = x + sd * xt
            if KW == Q.BLOCK or KW >= Q.MX:
                tl.store(theta_ptr + i, x, mask=mask)
                r = tl.where(mask, Q.absbits(tl.abs(x) + sd4), 0)
                mb = tl.maximum(mb, tl.max(r, axis=0))
            else:
                out = _draw(x, var, sd, sd4, KW, fw, 0, (0.0, 0.0), xt,
                            _thresholds(base, k0, k1, 1, U_TW, BLOCK_),
                            _thresholds(base, k0, k1, 2, U_TS, BLOCK_), ACC,
                            STOCHASTIC)  # fmt: skip
                if ACC == 0:
                    tl.store(theta_ptr + i, x, mask=mask)
                _store_draw(theta_ptr, hat_ptr, i, out, mask, ACC)
        if LAST == 1:
            tl.store(gmax_ptr + g_id, mb)
    else:
        mb = tl.load(gmax_ptr + g_id)
    if LAST == 2 and (KW == Q.BLOCK or KW >= Q.MX):  # pass 2 (block, scaled W): θ's rounding
        tw = _tensor_scale(scale_ptr, g_id, T_W, KW)
        _theta_pass(theta_ptr, hat_ptr, (s, n, a0), (k0, k1), (var, sd, sd4), KW, fw, mb, tw,
                    ACC, STOCHASTIC, NORMALS, U_TW, U_TS, BLOCK_)  # fmt: skip


@triton.jit
def _sghmc_kernel(
    theta_ptr, hat_ptr, mom_ptr, grad_ptr, gstart_ptr, glen_ptr, key_ptr, scale_ptr, gmax_ptr,
    coef, fg, fw, fm, KG: tl.constexpr, KW: tl.constexpr, KM: tl.constexpr, ACC: tl.constexpr,
    STOCHASTIC: tl.constexpr, NOISY: tl.constexpr, FIRST: tl.constexpr, LAST: tl.constexpr,
    RESCALE: tl.constexpr, BLOCK_: tl.constexpr,
):  # fmt: skip
    """One exact underdamped SGHMC step on one exponent group (numba/step.py sghmc_step): pass 1
    the means (and the Gaussian v' for full and low), pass 2 v' in M and θ given v', pass 3
    θ' in W. Passes FIRST..LAST (1..3: all): a launch that ends before pass 3 leaves the
    group's max bits of its last pass in gmax, the next starts from them (numba's ``split``).
    RESCALE: momentum rescaling, with the scales S, S', Var_v/S'² per group in ``scale``;
    NVFP4T formats read their tensor's T there. Formats: G (KG, fg), W (KW, fw), M (KM, fm)
    (encoding.triton_format_args); ``coef`` = (e, a, b, c, wd, var_v, sd_v, sd4_v, k, var_c,
    sd_c, sd4_c) (sghmc_step)."""
    e, a, b, cc, wd, var_v, sd_v, sd4_v, k, var_c, sd_c, sd4_c = coef
    U_G: tl.constexpr = STOCHASTIC and KG != 0
    U_TW: tl.constexpr = (ACC == 2 and NOISY) or (ACC != 2 and STOCHASTIC and KW != 0)
    U_TS: tl.constexpr = ACC == 2
    U_VM: tl.constexpr = (ACC == 2 and NOISY) or (ACC == 1 and STOCHASTIC and KM != 0)
    U_VS: tl.constexpr = ACC == 2
    GROUPED_M: tl.constexpr = KM == Q.BLOCK or KM >= Q.MX
    s, n, a0 = _group(gstart_ptr, glen_ptr)
    g_id = tl.program_id(0)
    k0, k1 = B.load_key(key_ptr)
    mm = tl.zeros((), tl.int32)
    if FIRST == 1:
        mg = _group_bits(grad_ptr, s, n, KG, BLOCK_)
        tg = _tensor_scale(scale_ptr, g_id, T_G, KG)
        sv = 1.0
        if RESCALE:
            sv = tl.load(scale_ptr + SCALES * g_id + S_OLD).to(tl.float32)
        # the max pass 1 leaves: v's draw with its reach for a grouped M (its scales), x
        # itself for rescaling (S from max|x|)
        reach_v = sd4_v if GROUPED_M else 0.0
        # pass 1: mean_v, mean_θ; v ← mean_v (+ sd_v·ξ_v for full and low)
        mbits = tl.zeros((), tl.int32)
        for c in range(0, n + (s - a0), BLOCK_):
            base, i, mask = _window(a0, c, s, n, BLOCK_)
            xv = _normals(base, k0, k1, 1, NOISY, BLOCK_)
            th = tl.load(theta_ptr + i, mask=mask, other=0.0)
            v = tl.load(mom_ptr + i, mask=mask, other=0.0) * sv
            g = _gradient(grad_ptr, th, i, mask, wd, KG, fg, mg, tg,
                          _thresholds(base, k0, k1, 0, U_G, BLOCK_), STOCHASTIC)  # fmt: skip
            mean_v = e * v - a * g
            x = mean_v
            if NOISY and ACC != 2:
                x = mean_v + sd_v * xv
            tl.store(theta_ptr + i, th + b * v - cc * g, mask=mask)
            tl.store(mom_ptr + i, x, mask=mask)
            r = Q.absbits(tl.abs(x) + reach_v)
            mbits = tl.maximum(mbits, tl.max(tl.where(mask, r, 0), 0))
        if LAST == 1:
            tl.store(gmax_ptr + g_id, mbits)
        if GROUPED_M:
            mm = mbits
    elif FIRST == 2 and GROUPED_M:
        mm = tl.load(gmax_ptr + g_id)
    mbits = tl.zeros((), tl.int32)
    if FIRST <= 2 and LAST >= 2:
        # pass 2: v' in M (divided by its new scale when rescaled), then θ given v'
        tm = _tensor_scale(scale_ptr, g_id, T_M, KM)
        sv2 = 1.0
        vs = var_v
        sds = sd_v
        sd4s = sd4_v
        if RESCALE:
            sv2 = tl.load(scale_ptr + SCALES * g_id + S_NEW).to(tl.float32)
            vs64 = tl.load(scale_ptr + SCALES * g_id + VAR_NEW)
            vs = vs64.to(tl.float32)
            sds = tl.sqrt(vs64).to(tl.float32)
            sd4s = 4.0 * sds if ACC == 2 else 0.0
        for c in range(0, n + (s - a0), BLOCK_):
            base, i, mask = _window(a0, c, s, n, BLOCK_)
            xt = _normals(base, k0, k1, 0, NOISY, BLOCK_)
            xv = _normals(base, k0, k1, 1, NOISY, BLOCK_)
            x = tl.load(mom_ptr + i, mask=mask, other=0.0)
            th = tl.load(theta_ptr + i, mask=mask, other=0.0)
            u_vs = _thresholds(base, k0, k1, 4, U_VS, BLOCK_)
            if ACC == 2:
                if NOISY:
                    v_new = _vc(x / sv2, vs, sds, tl.abs(x / sv2) + sd4s, KM, fm, mm, tm, xv,
                                _thresholds(base, k0, k1, 3, U_VM, BLOCK_), u_vs)  # fmt: skip
                    th = th + k * (v_new * sv2 - x)
                else:  # Q_vc(mean_v, 0): stochastic rounding with the small branch's threshold
                    v_new = Q.quantize_value(x / sv2, KM, fm, mm, u_vs, True, tm)
                tl.store(mom_ptr + i, v_new, mask=mask)
            else:
                if NOISY:
                    th = th + k * (sd_v * xv) + sd_c * xt
                if ACC == 1:
                    v_new = Q.quantize_value(x / sv2, KM, fm, mm,
                                             _thresholds(base, k0, k1, 3, U_VM, BLOCK_),
                                             STOCHASTIC, tm)  # fmt: skip
                    tl.store(mom_ptr + i, v_new, mask=mask)
            tl.store(theta_ptr + i, th, mask=mask)
            r = tl.where(mask, Q.absbits(tl.abs(th) + sd4_c), 0)
            mbits = tl.maximum(mbits, tl.max(r, 0))
        if LAST == 2:
            tl.store(gmax_ptr + g_id, mbits)
    elif FIRST == 3:
        mbits = tl.load(gmax_ptr + g_id)
    if LAST == 3:
        # pass 3: θ' in W (a block or scaled W: its scales from the group's max bits)
        tw = _tensor_scale(scale_ptr, g_id, T_W, KW)
        _theta_pass(theta_ptr, hat_ptr, (s, n, a0), (k0, k1), (var_c, sd_c, sd4_c), KW, fw, mbits,
                    tw, ACC, STOCHASTIC, NOISY, U_TW, U_TS, BLOCK_)  # fmt: skip


def _format_args(kind: int, consts: Any) -> tuple[float, float, float, int, int, int]:
    """Triton's tuple of a (kind, constants) pair: a scaled kind's its element's FLOAT one."""
    return triton_format_args(FLOAT if kind >= MX else kind, consts)


@functools.cache
def _placeholder(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A scales row and a maxima slot that a whole step without rescaling or NVFP4T neither
    reads nor writes (made once per device: no allocation per step)."""
    return (
        torch.ones(E.SCALES, dtype=torch.float64, device=device),
        torch.zeros(1, dtype=torch.int32, device=device),
    )


def _placeholders(
    theta: torch.Tensor, scale: torch.Tensor | None, gmax: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``scale`` and ``gmax``, or the placeholders."""
    spare_scale, spare_gmax = _placeholder(theta.device)
    return (spare_scale if scale is None else scale), (spare_gmax if gmax is None else gmax)


def sgld_step(
    theta: torch.Tensor, hat: torch.Tensor, grad: torch.Tensor, gstart: torch.Tensor,
    glen: torch.Tensor, formats: list[Any], acc: int, stochastic: bool, coef: Any,
    key: torch.Tensor, passes: tuple[int, int] = (1, 2), scale: torch.Tensor | None = None,
    gmax: torch.Tensor | None = None,
) -> None:  # fmt: skip
    """Launch one SGLD step, or its ``passes`` (first, last) of 1..2 (``scale`` float64
    [groups, SCALES], ``gmax`` int32 [groups]: numba/step.py sgld_step's ``split``): one
    program per exponent group. ``formats``: the (kind, constants) pairs of G and W
    (lowprec.kernels.fused.format_params)."""
    import math

    (kg, _), (kw, _) = formats
    fg, fw = (_format_args(*f) for f in formats)
    var = float(coef.var)
    sd = float(torch.tensor(math.sqrt(var), dtype=torch.float32))
    sd4 = 4.0 * sd if acc == 2 else 0.0
    noisy = var > 0.0 and acc != 2
    scale, gmax = _placeholders(theta, scale, gmax)
    _sgld_kernel[(gstart.numel(),)](
        theta, hat, grad, gstart, glen, key, scale, gmax,
        (float(coef.lr), float(coef.weight_decay), var, sd, sd4), fg, fw, KG=kg, KW=kw,
        ACC=acc, STOCHASTIC=bool(stochastic), NOISY=noisy, NORMALS=var > 0.0, FIRST=passes[0],
        LAST=passes[1], BLOCK_=BLOCK,
    )  # fmt: skip


def sghmc_step(
    theta: torch.Tensor, hat: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor,
    gstart: torch.Tensor, glen: torch.Tensor, formats: list[Any], acc: int, stochastic: bool,
    coef: Any, key: torch.Tensor, passes: tuple[int, int] = (1, 3), rescale: bool = False,
    scale: torch.Tensor | None = None, gmax: torch.Tensor | None = None,
) -> None:  # fmt: skip
    """Launch one SGHMC step, or its ``passes`` (first, last) of 1..3, with momentum
    rescaling when ``rescale`` (``scale`` float64 [groups, SCALES], ``gmax`` int32 [groups]:
    numba/step.py sghmc_step's ``split``): one program per exponent group. ``formats``: the
    (kind, constants) pairs of G, W and M."""
    import math

    (kg, _), (kw, _), (km, _) = formats
    fg, fw, fm = (_format_args(*f) for f in formats)
    var_v, var_th, cov = float(coef.var_v), float(coef.var_theta), float(coef.cov)
    noisy = var_v > 0.0
    k = cov / var_v if noisy else 0.0
    var_c = max(var_th - cov * cov / var_v, 0.0) if noisy else 0.0
    sd_v, sd_c = math.sqrt(var_v), math.sqrt(var_c)
    vc = acc == 2
    scale, gmax = _placeholders(theta, scale, gmax)
    _sghmc_kernel[(gstart.numel(),)](
        theta, hat, mom, grad, gstart, glen, key, scale, gmax,
        (float(coef.decay), float(coef.v_from_g), float(coef.theta_from_v),
         float(coef.theta_from_g), float(coef.weight_decay), var_v, sd_v,
         4.0 * sd_v if vc else 0.0, k, var_c, sd_c, 4.0 * sd_c if vc else 0.0),
        fg, fw, fm, KG=kg, KW=kw, KM=km, ACC=acc, STOCHASTIC=bool(stochastic), NOISY=noisy,
        FIRST=passes[0], LAST=passes[1], RESCALE=bool(rescale), BLOCK_=BLOCK,
    )  # fmt: skip
