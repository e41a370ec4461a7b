"""Variance-corrected quantization Q_vc(μ, v, Δ) (ALGORITHMS.md §4).

Zhang, Wilson, De Sa, "Low-Precision Stochastic Gradient Langevin Dynamics" (ICML 2022),
Algorithm 2: return a value on the grid whose mean is μ and whose variance is exactly v, so that
the quantization noise replaces part of the Langevin noise instead of adding to it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lowprec.formats import (
    BlockFloat,
    FixedPoint,
    Format,
    ScaledFormat,
    SmallFloat,
    parse_format,
)
from lowprec.kernels import resolve as resolve_kernels
from lowprec.kernels.fused import has_fused, vc_quantize_fused
from lowprec.quantize import block_grid, check_generator, quantize, uniform

__all__ = ["vc_quantize"]

#: Δ for block and float formats is taken at |μ| + _REACH_SDS·sqrt(v) (see vc_quantize)
_REACH_SDS = 4.0


# Cat(m, w), in units of Δ: a value in {-1, 0, +1} with mean m and variance w. With
#   P(+1) = (w + m² + m)/2,  P(-1) = (w + m² - m)/2,  P(0) = 1 - w - m²,
# E = P(+1) - P(-1) = m and E[C²] = P(+1) + P(-1) = w + m², so Var = w. Drawn from u ~ U[0, 1) as
# [u < P(+1)] - [u >= 1 - P(-1)]. vc_quantize keeps |m| <= 1/2, w <= 1/4 (branch 1: w = 1/4 gives
# P(±1) = (1/2 ± m)²/2 >= 0) and w + m² <= 1/2, so the probabilities are valid and the two events
# are disjoint.


@torch.no_grad()
def vc_quantize(
    mu: torch.Tensor,
    var: torch.Tensor | float,
    fmt: Format | str,
    generator: torch.Generator | None = None,
    return_variance: bool = False,
    kernels: str = "auto",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Q_vc(μ, v): a value on ``fmt``'s grid with mean μ and variance v (ALGORITHMS.md §4).

    Let Δ be the grid step of the draw: fixed point 2^-fl; block and float formats
    ``fmt.spacing(|μ| + 4·sqrt(v))``, i.e. the block exponent of max(|μ| + 4·sqrt(v)) over the
    block, or the element's binade of |μ| + 4·sqrt(v) for floats. (With μ's own exponent a block
    of zeros, such as a zero-initialised bias under ``block<8>``, would have a range near 1e-38
    and v/Δ² would overflow; the draw stays inside |μ| + 4 sd with probability 1 - 6e-5.)
    v0 = Δ²/4 and Cat(m, w) as defined above vc_quantize (scaled by Δ). Element-wise:

    - v > v0: x = μ + sqrt(v - v0)·ξ, ξ ~ N(0, 1); q = nearest(x), r = x - q;
      return q + s·Cat(|r|, v0) with s = sign(r) and s = +1 when r = 0.
      Given x: mean q + s|r| = x and variance s²·v0 = v0. So E = E[x] = μ and, by the law of
      total variance, Var = Var[x] + v0 = (v - v0) + v0 = v. The literal sign(0) = 0 would drop
      the v0 term whenever x lands on the grid (it can in float32), hence s = +1 there.
      Computed as q + Cat(r, v0), which has the same law: -Cat(a, w) and Cat(-a, w) have the same
      law (P(±1) swap), so s·Cat(|r|, v0) ~ Cat(s|r|, v0) = Cat(r, v0), and at r = 0 it is
      Cat(0, v0), the s = +1 case (variance v0, never dropped).
    - v ≤ v0: q = stochastic(μ), δ = μ - floor_Δ(μ), v_s = δ(Δ - δ). If v > v_s return
      q + Cat(0, v - v_s): mean μ + 0 and, independent, variance v_s + (v - v_s) = v. Else return
      q: mean μ, variance v_s ≥ v (the only case where the variance is not v; with
      ``return_variance`` it is reported).

    Both branches share one Cat draw: q + Cat(a, c) with (q, a, c) = (nearest(x), r, v0) or
    (stochastic(μ), 0, max(v - v_s, 0)) chosen per element (Cat(0, 0) = 0). Randomness per call:
    one uniform draw (per element the Cat's u and, for the v ≤ v0 branch, the rounding's u) and
    one normal draw (ξ), plus, for floats, the final stochastic rounding below. On the CPU, when
    every element falls in the same branch, the other branch and its variates are skipped.

    The result is clamped to the range (μ is clamped first, so out-of-range means saturate).
    Δ depends on μ and v only (not on the draw), so both moments above hold exactly. All values
    lie on the Δ-lattice: for fixed and block formats that is the grid (block outputs are clamped
    to that block's range, so their own block exponent can only shrink and
    ``quantize(out, fmt)`` returns them unchanged). For floats, results that land in a coarser
    binade than Δ's (probability below 6e-5) are stochastically rounded onto the float grid,
    which keeps the mean and adds at most Δ_coarse²/4 of variance there. ``fp32`` returns
    μ + sqrt(v)·ξ.

    ``var``: a float or a tensor broadcastable to ``mu``; negative values act as 0.
    ``generator`` (on ``mu``'s device) is required. With ``return_variance`` returns
    (value, variance delivered before clamping: v, or v_s where v < v_s).

    ``kernels`` (auto | fused | eager, :func:`lowprec.kernels.resolve`): the fused kernels
    (lowprec/kernels/numba/vc.py, triton/: ``vc_lattice``) compute this same law in one pass (two
    for block formats) from counter-based bits keyed by one draw from ``generator``; ``fp32``
    and ``return_variance`` always run the eager code below, the readable reference.
    """
    fmt = parse_format(fmt)
    if not isinstance(mu, torch.Tensor) or not mu.is_floating_point():
        raise ValueError(f"vc_quantize: mu must be a floating-point torch.Tensor, got {type(mu)}")
    if not isinstance(var, torch.Tensor) and (not math.isfinite(var) or var < 0):
        raise ValueError(f"vc_quantize: var must be a finite number >= 0, got {var!r}")
    mu32 = mu if mu.dtype == torch.float32 else mu.float()
    check_generator(mu32, generator)
    path = resolve_kernels(kernels, mu.device)
    fused = path == "fused" and has_fused(fmt, mu.device, "vc")
    if fused and not fmt.is_identity and not return_variance and mu.numel():
        if isinstance(var, torch.Tensor):
            var.expand(mu.shape)  # raises unless var broadcasts to mu
        return vc_quantize_fused(mu, var, fmt, generator)
    # v stays in its own (broadcastable) shape: with a scalar v and per-block or fixed Δ the
    # per-Δ quantities below (w, the branch, the Gaussian scale) are computed once per block
    v = _scalar_tensor(var, mu.device)
    if isinstance(var, torch.Tensor):
        v.expand(mu.shape)  # raises unless v broadcasts to mu
        sd: torch.Tensor | float = v.clamp(min=0).sqrt()
    else:  # the float32 sqrt(v), on the host (the square root of a float32 rounds the same)
        sd = float(np.float32(math.sqrt(float(np.float32(var)))))
    if fmt.is_identity:
        out = _randn(mu32, generator).mul_(sd).add_(mu32).to(mu.dtype)
        return (out, v.expand(mu.shape).clone()) if return_variance else out
    if isinstance(fmt, ScaledFormat):
        return _vc_scaled(mu32, v, sd, fmt, generator, return_variance, mu.dtype, path)

    # the grid the draw lands on: Δ (and for blocks the range) from |μ| + 4·sqrt(v), which the
    # draw stays below with probability ~1 - 6e-5 (fixed point: Δ does not depend on it)
    if isinstance(fmt, FixedPoint):
        delta, lo, hi = fmt._grid(mu32)
    else:
        reach = mu32.abs().add_(sd * _REACH_SDS)
        delta, lo, hi = block_grid(fmt, reach, absolute=False) or fmt._grid(reach)
    delta = _scalar_tensor(delta, mu.device)
    # block ranges are ±max_units·Δ: clamp in units of Δ against scalars (the same values: Δ is
    # a power of two and max_units·Δ exact for wl <= 25, where Δ is never clamped)
    units = isinstance(fmt, BlockFloat) and fmt.wl <= 25
    if units:
        m = torch.div(mu32, delta).clamp_(-fmt.max_units, fmt.max_units)
    else:
        m = torch.clamp(mu32, lo, hi).div_(delta)  # μ in units of Δ (exact: Δ a power of two)
    w = v / delta / delta  # v in units of Δ² (in the broadcast shape of v and Δ)
    v0 = 0.25  # Δ²/4 in units of Δ²
    big = torch.gt(w, v0)  # branch v > v0
    # on the CPU, when every element takes the same branch, skip the other one and its draw
    # (a host-side test; on an accelerator it would cost a synchronisation)
    both, all_big = True, False
    if big.device.type == "cpu":
        all_big = bool(big.all())
        both = not all_big and bool(big.any())
    # uniforms on [0, 2), i.e. 2u with u ~ U[0, 1) (exact scaling; compared with doubled
    # thresholds): the Cat draw, then (for the v <= v0 branch) the stochastic rounding of μ
    n_uniform = 2 if both or not all_big else 1
    u2 = uniform(mu32.expand(n_uniform, *mu.shape), generator, high=2.0)
    u = u2[0]

    if both or all_big:
        # v > v0: x = μ + sqrt(v - v0) ξ, q1 = nearest(x), r = x - q1; Cat(r, v0) below
        x = _randn(mu32, generator).mul_((w - v0).clamp_(min=0).sqrt_()).add_(m)
        q1 = torch.round(x)
        r = x.sub_(q1)
    if both or not all_big:
        # v <= v0: q2 = stochastic(μ); Cat(0, max(v - v_s, 0)) below
        floor = torch.floor(m)
        frac = m.sub_(floor)  # δ/Δ
        up = torch.lt(u2[1], frac * 2.0, out=torch.empty_like(frac))  # [u < δ/Δ] as 0/1
        q2 = floor.add_(up)
        v_s = frac * (1.0 - frac)  # δ(Δ - δ) in units of Δ²
        # w - v_s <= v0 on this branch; the cap keeps the other branch's entries finite
        w2 = torch.sub(w, v_s, out=up).clamp_(0.0, 1.0)

    # q + Cat(a, c) with (q, a, c) = (q1, r, v0) or (q2, 0, w2) per element; products with the
    # 0/1 masks are exact (one of the two terms is 0)
    if both:
        bigf = big.to(torch.float32)
        smallf = 1.0 - bigf
        q = q1.mul_(bigf).addcmul_(q2, smallf)
        a = r.mul_(bigf)
        second = w2.mul_(smallf).add_(bigf, alpha=v0).addcmul_(a, a)  # c + a²
    elif all_big:
        q, a = q1, r
        second = torch.mul(a, a).add_(v0)  # v0 + a²
    else:
        q, a, second = q2, None, w2  # w2 + 0²
    # Cat(a, c): P(+1) = (c + a² + a)/2, P(-1) = (c + a² - a)/2,
    # Cat = [u < P(+1)] - [u ≥ 1 - P(-1)], here doubled:
    # [2u < c + a² + a] - [2u ≥ 2 - (c + a² - a)] (scalings by 2 are exact)
    if a is None:
        t_down2 = torch.rsub(second, 2.0)
        p_up2 = second
    else:
        p_up2 = torch.add(second, a)
        t_down2 = torch.rsub(second.sub_(a), 2.0)  # 2(1 - P(-1))
    cat = torch.lt(u, p_up2, out=p_up2).sub_(torch.ge(u, t_down2, out=t_down2))
    out = q.add_(cat)
    if units:
        out = out.clamp_(-fmt.max_units, fmt.max_units).mul_(delta)
    else:
        out = torch.clamp(out.mul_(delta), lo, hi)
    if isinstance(fmt, SmallFloat):
        out = quantize(out, fmt, "stochastic", generator)  # identity on values already on grid
    out = out.to(mu.dtype)
    if not return_variance:
        return out
    if not (both or not all_big):
        return out, v.expand(mu.shape).clone()
    delivered = torch.where(big, v, torch.maximum(v, v_s * delta * delta))
    return out, delivered.expand(mu.shape).contiguous()


def _vc_scaled(
    mu32: torch.Tensor,
    v: torch.Tensor,
    sd: torch.Tensor | float,
    fmt: ScaledFormat,
    generator: torch.Generator | None,
    return_variance: bool,
    dtype: torch.dtype,
    element_kernels: str = "eager",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Q_vc on a scaled format: the scale per block from max(|μ| + 4·sqrt(v)) over the block
    (the reach, as for block formats), held fixed; μ and v mapped onto the element's units
    (μ·into, v·into²); Q_vc on the element's grid (this same law: fixed grid for integer
    elements, the element's binade of the reach for floats); the result times the scale.
    ``element_kernels``: the path of the element's Q_vc (the fused kernels where the scaled
    format has none of its own: the scaling in torch, the draw fused)."""
    reach = mu32.abs().add_(sd * _REACH_SDS)
    m, into, up, restore = fmt.to_element(mu32, reach=reach)
    if v.dim() == 0:
        ve = fmt.variance_into_element(v, into)
    else:
        ve = fmt.variance_into_element(fmt.layout(v.expand(mu32.shape).contiguous())[0], into)
    out = vc_quantize(m, ve, fmt.element, generator, return_variance, kernels=element_kernels)
    if return_variance:
        q, delivered = out
        delivered = restore((delivered * up * up).expand(q.shape).contiguous())
        return restore(q.mul_(up)).to(dtype), delivered
    return restore(out.mul_(up)).to(dtype)


def _randn(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=torch.float32)


def _scalar_tensor(x: torch.Tensor | float, device: torch.device) -> torch.Tensor:
    """``x`` as a float32 tensor on ``device``; a Python number is filled in on the device (no
    blocking host-to-device copy)."""
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=torch.float32)
    return torch.full((), x, dtype=torch.float32, device=device)
