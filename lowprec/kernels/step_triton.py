"""Fused sampler steps on the GPU (Triton): one kernel launch per SGLD / SGHMC step over flat
buffers, the transcription of lowprec/kernels/step_cpu.py (read its docstring for the passes,
the streams and the format constants): one program per exponent group, walking the group in
blocks of BLOCK values, pass by pass when a format of the step is a block format.

The random bits are the CPU's (step_cpu's docstring: one stream per threshold slot, a call per
8 elements; one per normal, a call per 4 elements), made here per window of BLOCK elements
aligned to 8 and put in element order with tl.join / tl.reshape, so the roundings draw the
same thresholds on both backends
(tests/lowprec/test_fused_step.py runs this kernel under TRITON_INTERPRET=1 against the numba
one). The normals use Triton's log/cos/sin (lowprec.kernels.gpu.box_muller) where the CPU uses
polynomials: the same law, values equal to about 1e-6.

Untested on a real GPU in this repository's CI (no GPU there); the interpreter runs it on CPU
tensors.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from lowprec.kernels import gpu as G

__all__ = ["BLOCK", "sghmc_step", "sgld_step"]

STREAM: tl.constexpr = tl.constexpr(16)
BLOCK = 1024


@triton.jit
def _quantize(x, KIND: tl.constexpr, f, gd, u, STOCHASTIC: tl.constexpr):
    """Q_F(x), F = (KIND, f) (lowprec.kernels.gpu.grid; gd the group's Δ for block formats),
    with threshold u (float32) for stochastic rounding."""
    if KIND == 0:
        return x
    else:
        d, lo, hi = G.grid(x, KIND, f, gd)
        y = tl.math.div_rn(G.clamp(x, lo, hi), d)
        if STOCHASTIC:
            fl = tl.floor(y)
            return (fl + tl.where(u < y - fl, 1.0, 0.0)) * d
        else:
            return G.rint(y) * d


@triton.jit
def _vc(mu, var, sd, reach, KIND: tl.constexpr, f, gd, xi, u_cat, u_rnd):
    """Q_vc(μ, var) element-wise (step_cpu._vc)."""
    if KIND == 0:
        return mu + sd * xi
    else:
        d, lo, hi = G.grid(reach, KIND, f, gd)
        m = tl.math.div_rn(G.clamp(mu, lo, hi), d)
        w = tl.math.div_rn(tl.math.div_rn(tl.zeros_like(mu) + var, d), d)
        big = w > 0.25
        x = m + tl.sqrt(tl.maximum(w - 0.25, 0.0)) * xi
        q1 = G.rint(x)
        a1 = x - q1
        fl = tl.floor(m)
        frac = m - fl
        q2 = fl + tl.where(u_rnd < frac, 1.0, 0.0)
        c2 = G.clamp(w - frac * (1.0 - frac), 0.0, 1.0)
        q = tl.where(big, q1, q2)
        a = tl.where(big, a1, 0.0)
        second = tl.where(big, 0.25 + a1 * a1, c2)
        u2 = 2.0 * u_cat
        up = tl.where(u2 < second + a, 1.0, 0.0)
        down = tl.where(u2 >= 2.0 - (second - a), 1.0, 0.0)
        out = G.clamp((q + up - down) * d, lo, hi)
        if KIND == 3:
            return _quantize(out, KIND, f, 0.0, u_rnd, True)
        else:
            return out


@triton.jit
def _draw(x, var, sd, sd4, KIND: tl.constexpr, f, gd, xi, u, u_rnd, ACC: tl.constexpr,
          STOCHASTIC: tl.constexpr):  # fmt: skip
    """full, low: Q_F(x); vc: Q_vc(x, var) (Δ of the reach |x| + 4·sd)."""
    if ACC == 2:
        return _vc(x, var, sd, tl.abs(x) + sd4, KIND, f, gd, xi, u, u_rnd)
    else:
        return _quantize(x, KIND, f, gd, u, STOCHASTIC)


@triton.jit
def _u(w, HIGH: tl.constexpr):
    return G.threshold16(G.half16(w, HIGH))


@triton.jit
def _thresholds(base, k0, k1, SLOT: tl.constexpr, ON: tl.constexpr, BLOCK_: tl.constexpr):
    """Threshold SLOT of elements base .. base + BLOCK_ - 1 (base a multiple of 8; zeros when
    not ON): Philox call q of stream STREAM + 2 + SLOT serves elements 8q .. 8q+7, element
    8q + 2k + b takes half b of word k (step_cpu._fill): one call per 8 elements."""
    if ON:
        q = (base // 8 + tl.arange(0, BLOCK_ // 8)).to(tl.int64)
        w0, w1, w2, w3 = G.group_words(q, k0, k1, STREAM + 2 + SLOT)
        lo = tl.join(tl.join(_u(w0, 0), _u(w2, 0)), tl.join(_u(w1, 0), _u(w3, 0)))
        hi = tl.join(tl.join(_u(w0, 1), _u(w2, 1)), tl.join(_u(w1, 1), _u(w3, 1)))
        return tl.reshape(tl.join(lo, hi), [BLOCK_])
    else:
        return tl.zeros([BLOCK_], tl.float32)


@triton.jit
def _normals(base, k0, k1, N: tl.constexpr, ON: tl.constexpr, BLOCK_: tl.constexpr):
    """Normal N of elements base .. base + BLOCK_ - 1 (base a multiple of 4; zeros when not
    ON): Philox call q of stream STREAM + N serves elements 4q .. 4q+3, Box-Muller of
    (w0, w1) -> 4q (cos), 4q+1 (sin) and of (w2, w3) -> 4q+2, 4q+3."""
    if ON:
        q = (base // 4 + tl.arange(0, BLOCK_ // 4)).to(tl.int64)
        w0, w1, w2, w3 = G.group_words(q, k0, k1, STREAM + N)
        z0, z1 = G.box_muller(w0, w1)
        z2, z3 = G.box_muller(w2, w3)
        return tl.reshape(tl.join(tl.join(z0, z2), tl.join(z1, z3)), [BLOCK_])
    else:
        return tl.zeros([BLOCK_], tl.float32)


@triton.jit
def _group_delta(ptr, s, n, KIND: tl.constexpr, f, BLOCK_: tl.constexpr):
    """Δ of a block group from max|x| over ptr[s:s+n] (0 for other formats)."""
    if KIND == 2:
        mb = tl.zeros((), tl.int32)
        for c in range(0, n, BLOCK_):
            j = c + tl.arange(0, BLOCK_)
            x = tl.load(ptr + s + j, mask=j < n, other=0.0)
            mb = tl.maximum(mb, tl.max(G.absbits(x), axis=0))
        return G.block_delta(mb, f[3])
    else:
        return 0.0


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
def _theta_pass(theta_ptr, hat_ptr, group, key, noise, KW: tl.constexpr, fw, dw,
                ACC: tl.constexpr, STOCHASTIC: tl.constexpr, NORMALS: tl.constexpr,
                U_TW: tl.constexpr, U_TS: tl.constexpr, BLOCK_: tl.constexpr):  # fmt: skip
    """The last pass over a group: θ (θ̂ for full) ← the accumulator's draw of θ in W
    (_draw; noise = (var, sd, sd4) of the draw, dw the group's Δ for a block W)."""
    s, n, a0 = group
    k0, k1 = key
    var, sd, sd4 = noise
    for c in range(0, n + (s - a0), BLOCK_):
        base, i, mask = _window(a0, c, s, n, BLOCK_)
        xt = _normals(base, k0, k1, 0, NORMALS, BLOCK_)
        x = tl.load(theta_ptr + i, mask=mask, other=0.0)
        out = _draw(x, var, sd, sd4, KW, fw, dw, xt,
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
    theta_ptr, hat_ptr, grad_ptr, gstart_ptr, glen_ptr, key_ptr, lr, wd, var, sd, sd4, fg, fw,
    KG: tl.constexpr, KW: tl.constexpr, ACC: tl.constexpr, STOCHASTIC: tl.constexpr,
    NOISY: tl.constexpr, NORMALS: tl.constexpr, BLOCK_: tl.constexpr,
):  # fmt: skip
    """One SGLD step on one exponent group (step_cpu.sgld_step), in windows of BLOCK_
    elements aligned to 8 (the random calls' boundaries). Formats: G (KG, fg) of the
    gradient, W (KW, fw) of the weights (lowprec.kernels.gpu.format_args)."""
    U_G: tl.constexpr = STOCHASTIC and KG != 0
    U_TW: tl.constexpr = (ACC == 2 and NORMALS) or (ACC != 2 and STOCHASTIC and KW != 0)
    U_TS: tl.constexpr = ACC == 2
    s, n, a0 = _group(gstart_ptr, glen_ptr)
    k0, k1 = G.load_key(key_ptr)
    gd = _group_delta(grad_ptr, s, n, KG, fg, BLOCK_)
    mb = tl.zeros((), tl.int32)
    # pass 1: θ ← θ - lr·(Q_G(∇) + wd·θ) (+ sd·ξ); without a block W, θ's rounding too
    for c in range(0, n + (s - a0), BLOCK_):
        base, i, mask = _window(a0, c, s, n, BLOCK_)
        xt = _normals(base, k0, k1, 0, NORMALS, BLOCK_)
        th = tl.load(theta_ptr + i, mask=mask, other=0.0)
        g = _quantize(tl.load(grad_ptr + i, mask=mask, other=0.0), KG, fg, gd,
                      _thresholds(base, k0, k1, 0, U_G, BLOCK_), STOCHASTIC)  # fmt: skip
        if wd != 0.0:
            g = g + wd * th
        x = th - lr * g
        if NOISY:
            x = x + sd * xt
        if KW == 2:
            tl.store(theta_ptr + i, x, mask=mask)
            r = tl.where(mask, G.absbits(tl.abs(x) + sd4), 0)
            mb = tl.maximum(mb, tl.max(r, axis=0))
        else:
            out = _draw(x, var, sd, sd4, KW, fw, 0.0, xt,
                        _thresholds(base, k0, k1, 1, U_TW, BLOCK_),
                        _thresholds(base, k0, k1, 2, U_TS, BLOCK_), ACC, STOCHASTIC)  # fmt: skip
            if ACC == 0:
                tl.store(theta_ptr + i, x, mask=mask)
            _store_draw(theta_ptr, hat_ptr, i, out, mask, ACC)
    if KW == 2:  # pass 2 (block W): θ's rounding with the group's Δ
        dw = G.block_delta(mb, fw[3])
        _theta_pass(theta_ptr, hat_ptr, (s, n, a0), (k0, k1), (var, sd, sd4), KW, fw, dw, ACC,
                    STOCHASTIC, NORMALS, U_TW, U_TS, BLOCK_)  # fmt: skip


@triton.jit
def _sghmc_kernel(
    theta_ptr, hat_ptr, mom_ptr, grad_ptr, gstart_ptr, glen_ptr, key_ptr, scale_ptr, gmax_ptr,
    e, a, b, cc, wd, var_v, sd_v, sd4_v, k, var_c, sd_c, sd4_c, fg, fw, fm,
    KG: tl.constexpr, KW: tl.constexpr, KM: tl.constexpr, ACC: tl.constexpr,
    STOCHASTIC: tl.constexpr, NOISY: tl.constexpr, PHASE: tl.constexpr, BLOCK_: tl.constexpr,
):  # fmt: skip
    """One exact underdamped SGHMC step on one exponent group (step_cpu.sghmc_step): pass 1
    the means (and the Gaussian v' for full and low), pass 2 v' in M and θ given v', pass 3
    θ' in W. PHASE 0: all; with momentum rescaling 1 (pass 1, the group's max|x| to gmax)
    then 2 (passes 2 and 3 with the scales of ``scale``: S, S', Var_v/S'² per group).
    Formats: G (KG, fg), W (KW, fw), M (KM, fm) (lowprec.kernels.gpu.format_args)."""
    U_G: tl.constexpr = STOCHASTIC and KG != 0
    U_TW: tl.constexpr = (ACC == 2 and NOISY) or (ACC != 2 and STOCHASTIC and KW != 0)
    U_TS: tl.constexpr = ACC == 2
    U_VM: tl.constexpr = (ACC == 2 and NOISY) or (ACC == 1 and STOCHASTIC and KM != 0)
    U_VS: tl.constexpr = ACC == 2
    RESCALE: tl.constexpr = PHASE != 0
    s, n, a0 = _group(gstart_ptr, glen_ptr)
    g_id = tl.program_id(0)
    k0, k1 = G.load_key(key_ptr)
    dm = 0.0
    if PHASE != 2:
        gd = _group_delta(grad_ptr, s, n, KG, fg, BLOCK_)
        sv = 1.0
        if RESCALE:
            sv = tl.load(scale_ptr + 3 * g_id).to(tl.float32)
        reach_v = 0.0 if RESCALE else sd4_v  # rescaling: S from max|x| itself
        # pass 1: mean_v, mean_θ; v ← mean_v (+ sd_v·ξ_v for full and low)
        mbits = tl.zeros((), tl.int32)
        for c in range(0, n + (s - a0), BLOCK_):
            base, i, mask = _window(a0, c, s, n, BLOCK_)
            xv = _normals(base, k0, k1, 1, NOISY, BLOCK_)
            th = tl.load(theta_ptr + i, mask=mask, other=0.0)
            v = tl.load(mom_ptr + i, mask=mask, other=0.0) * sv
            g = _quantize(tl.load(grad_ptr + i, mask=mask, other=0.0), KG, fg, gd,
                          _thresholds(base, k0, k1, 0, U_G, BLOCK_), STOCHASTIC)  # fmt: skip
            if wd != 0.0:
                g = g + wd * th
            mean_v = e * v - a * g
            x = mean_v
            if NOISY and ACC != 2:
                x = mean_v + sd_v * xv
            tl.store(theta_ptr + i, th + b * v - cc * g, mask=mask)
            tl.store(mom_ptr + i, x, mask=mask)
            r = G.absbits(tl.abs(x) + reach_v)
            mbits = tl.maximum(mbits, tl.max(tl.where(mask, r, 0), 0))
        if PHASE == 1:
            tl.store(gmax_ptr + g_id, mbits)
        if KM == 2:
            dm = G.block_delta(mbits, fm[3])
    if PHASE != 1:
        # pass 2: v' in M (divided by its new scale when rescaled), then θ given v'
        sv2 = 1.0
        vs = var_v
        sds = sd_v
        sd4s = sd4_v
        if RESCALE:
            sv2 = tl.load(scale_ptr + 3 * g_id + 1).to(tl.float32)
            vs64 = tl.load(scale_ptr + 3 * g_id + 2)
            vs = vs64.to(tl.float32)
            sds = tl.sqrt(vs64).to(tl.float32)
            sd4s = 4.0 * sds if ACC == 2 else 0.0
        mbits = tl.zeros((), tl.int32)
        for c in range(0, n + (s - a0), BLOCK_):
            base, i, mask = _window(a0, c, s, n, BLOCK_)
            xt = _normals(base, k0, k1, 0, NOISY, BLOCK_)
            xv = _normals(base, k0, k1, 1, NOISY, BLOCK_)
            x = tl.load(mom_ptr + i, mask=mask, other=0.0)
            th = tl.load(theta_ptr + i, mask=mask, other=0.0)
            u_vs = _thresholds(base, k0, k1, 4, U_VS, BLOCK_)
            if ACC == 2:
                if NOISY:
                    v_new = _vc(x / sv2, vs, sds, tl.abs(x / sv2) + sd4s, KM, fm, dm, xv,
                                _thresholds(base, k0, k1, 3, U_VM, BLOCK_), u_vs)  # fmt: skip
                    th = th + k * (v_new * sv2 - x)
                else:  # Q_vc(mean_v, 0): stochastic rounding with the small branch's threshold
                    v_new = _quantize(x / sv2, KM, fm, dm, u_vs, True)
                tl.store(mom_ptr + i, v_new, mask=mask)
            else:
                if NOISY:
                    th = th + k * (sd_v * xv) + sd_c * xt
                if ACC == 1:
                    v_new = _quantize(x / sv2, KM, fm, dm,
                                      _thresholds(base, k0, k1, 3, U_VM, BLOCK_),
                                      STOCHASTIC)  # fmt: skip
                    tl.store(mom_ptr + i, v_new, mask=mask)
            tl.store(theta_ptr + i, th, mask=mask)
            r = tl.where(mask, G.absbits(tl.abs(th) + sd4_c), 0)
            mbits = tl.maximum(mbits, tl.max(r, 0))
        dw = G.block_delta(mbits, fw[3]) if KW == 2 else 0.0
        # pass 3: θ' in W
        _theta_pass(theta_ptr, hat_ptr, (s, n, a0), (k0, k1), (var_c, sd_c, sd4_c), KW, fw, dw,
                    ACC, STOCHASTIC, NOISY, U_TW, U_TS, BLOCK_)  # fmt: skip


def sgld_step(
    theta: torch.Tensor, hat: torch.Tensor, grad: torch.Tensor, gstart: torch.Tensor,
    glen: torch.Tensor, formats: list[Any], acc: int, stochastic: bool, coef: Any,
    key: torch.Tensor,
) -> None:  # fmt: skip
    """Launch one SGLD step: one program per exponent group. ``formats``: the (kind,
    constants) pairs of G and W (lowprec.kernels.fused.format_params)."""
    import math

    (kg, _), (kw, _) = formats
    fg, fw = (G.format_args(*f) for f in formats)
    var = float(coef.var)
    sd = float(torch.tensor(math.sqrt(var), dtype=torch.float32))
    sd4 = 4.0 * sd if acc == 2 else 0.0
    noisy = var > 0.0 and acc != 2
    _sgld_kernel[(gstart.numel(),)](
        theta, hat, grad, gstart, glen, key, float(coef.lr), float(coef.weight_decay), var, sd,
        sd4, fg, fw, KG=kg, KW=kw, ACC=acc, STOCHASTIC=bool(stochastic), NOISY=noisy,
        NORMALS=var > 0.0, BLOCK_=BLOCK,
    )  # fmt: skip


def sghmc_step(
    theta: torch.Tensor, hat: torch.Tensor, mom: torch.Tensor, grad: torch.Tensor,
    gstart: torch.Tensor, glen: torch.Tensor, formats: list[Any], acc: int, stochastic: bool,
    coef: Any, key: torch.Tensor, phase: int = 0, scale: torch.Tensor | None = None,
    gmax: torch.Tensor | None = None,
) -> None:  # fmt: skip
    """Launch one SGHMC step (``phase`` 0), or its phase 1 or 2 with momentum rescaling
    (``scale`` float64 [groups, 3], ``gmax`` int32 [groups]: step_cpu.sghmc_step): one
    program per exponent group. ``formats``: the (kind, constants) pairs of G, W and M."""
    import math

    (kg, _), (kw, _), (km, _) = formats
    fg, fw, fm = (G.format_args(*f) for f in formats)
    var_v, var_th, cov = float(coef.var_v), float(coef.var_theta), float(coef.cov)
    noisy = var_v > 0.0
    k = cov / var_v if noisy else 0.0
    var_c = max(var_th - cov * cov / var_v, 0.0) if noisy else 0.0
    sd_v, sd_c = math.sqrt(var_v), math.sqrt(var_c)
    vc = acc == 2
    if scale is None or gmax is None:
        scale = torch.ones(3, dtype=torch.float64, device=theta.device)
        gmax = torch.zeros(1, dtype=torch.int32, device=theta.device)
    _sghmc_kernel[(gstart.numel(),)](
        theta, hat, mom, grad, gstart, glen, key, scale, gmax, float(coef.decay),
        float(coef.v_from_g), float(coef.theta_from_v), float(coef.theta_from_g),
        float(coef.weight_decay), var_v, sd_v, 4.0 * sd_v if vc else 0.0, k, var_c, sd_c,
        4.0 * sd_c if vc else 0.0, fg, fw, fm, KG=kg, KW=kw, KM=km, ACC=acc,
        STOCHASTIC=bool(stochastic), NOISY=noisy, PHASE=phase, BLOCK_=BLOCK,
    )  # fmt: skip
