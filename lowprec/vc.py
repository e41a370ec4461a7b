"""Variance-corrected quantization Q_vc(μ, v, Δ) (ALGORITHMS.md §4).

Zhang, Wilson, De Sa, "Low-Precision Stochastic Gradient Langevin Dynamics" (ICML 2022),
Algorithm 2: return a value on the grid whose mean is μ and whose variance is exactly v, so that
the quantization noise replaces part of the Langevin noise instead of adding to it.
"""

from __future__ import annotations

import math

import torch

from lowprec.formats import FixedPoint, Format, SmallFloat, parse_format
from lowprec.quantize import quantize, uniform

__all__ = ["vc_quantize"]

#: Δ for block and float formats is taken at |μ| + _REACH_SDS·sqrt(v) (see vc_quantize)
_REACH_SDS = 4.0


def _cat(mean: torch.Tensor | float, var: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Cat(m, w) in units of Δ: a value in {-1, 0, +1} with mean m and variance w, from u ~ U[0,1).

    P(+1) = (w + m² + m)/2, P(-1) = (w + m² - m)/2, P(0) = 1 - w - m²; then
    E = P(+1) - P(-1) = m and E[C²] = P(+1) + P(-1) = w + m², so Var = w. The callers keep
    |m| ≤ 1/2, w ≤ 1/4 (branch 1: w = 1/4 gives P(±1) = (1/2 ± m)²/2 ≥ 0) and w + m² ≤ 1/2, so the
    probabilities are valid and the events u < P(+1) and u ≥ 1 - P(-1) are disjoint.
    """
    second = var + mean * mean
    p_up = 0.5 * (second + mean)
    p_down = 0.5 * (second - mean)
    return (u < p_up).float() - (u >= 1.0 - p_down).float()


@torch.no_grad()
def vc_quantize(
    mu: torch.Tensor,
    var: torch.Tensor | float,
    fmt: Format | str,
    generator: torch.Generator | None = None,
    return_variance: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Q_vc(μ, v): a value on ``fmt``'s grid with mean μ and variance v (ALGORITHMS.md §4).

    Let Δ be the grid step of the draw: fixed point 2^-fl; block and float formats
    ``fmt.spacing(|μ| + 4·sqrt(v))``, i.e. the block exponent of max(|μ| + 4·sqrt(v)) over the
    block, or the element's binade of |μ| + 4·sqrt(v) for floats. (With μ's own exponent a block
    of zeros, such as a zero-initialised bias under ``block<8>``, would have a range near 1e-38
    and v/Δ² would overflow; the draw stays inside |μ| + 4 sd with probability 1 - 6e-5.)
    v0 = Δ²/4 and Cat(m, w) as in :func:`_cat` (scaled by Δ). Element-wise:

    - v > v0: x = μ + sqrt(v - v0)·ξ, ξ ~ N(0, 1); q = nearest(x), r = x - q;
      return q + s·Cat(|r|, v0) with s = sign(r) and s = +1 when r = 0.
      Given x: mean q + s|r| = x and variance s²·v0 = v0. So E = E[x] = μ and, by the law of
      total variance, Var = Var[x] + v0 = (v - v0) + v0 = v. The literal sign(0) = 0 would drop
      the v0 term whenever x lands on the grid (it can in float32), hence s = +1 there.
    - v ≤ v0: q = stochastic(μ), δ = μ - floor_Δ(μ), v_s = δ(Δ - δ). If v > v_s return
      q + Cat(0, v - v_s): mean μ + 0 and, independent, variance v_s + (v - v_s) = v. Else return
      q: mean μ, variance v_s ≥ v (the only case where the variance is not v; with
      ``return_variance`` it is reported).

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
    """
    fmt = parse_format(fmt)
    if not isinstance(mu, torch.Tensor) or not mu.is_floating_point():
        raise ValueError(f"vc_quantize: mu must be a floating-point torch.Tensor, got {type(mu)}")
    if not isinstance(var, torch.Tensor) and (not math.isfinite(var) or var < 0):
        raise ValueError(f"vc_quantize: var must be a finite number >= 0, got {var!r}")
    mu32 = mu if mu.dtype == torch.float32 else mu.float()
    v = torch.as_tensor(var, dtype=torch.float32, device=mu.device).expand(mu.shape)
    u_cat = uniform(mu32, generator)  # also checks the generator
    xi = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=torch.float32)
    if fmt.is_identity:
        out = mu32 + v.clamp(min=0).sqrt() * xi
        return (out.to(mu.dtype), v.clone()) if return_variance else out.to(mu.dtype)

    sd = v.clamp(min=0).sqrt()
    # the grid the draw lands on: Δ (and for blocks the range) from |μ| + 4·sqrt(v), which the
    # draw stays below with probability ~1 - 6e-5 (fixed point: Δ does not depend on it)
    reach = mu32 if isinstance(fmt, FixedPoint) else mu32.abs() + _REACH_SDS * sd
    delta, lo, hi = fmt._grid(reach)
    delta = torch.as_tensor(delta, dtype=torch.float32, device=mu.device)
    m = torch.clamp(mu32, lo, hi) / delta  # μ in units of Δ (exact: Δ is a power of two)
    w = v / delta / delta  # v in units of Δ²
    v0 = 0.25  # Δ²/4 in units of Δ²

    # branch v > v0: nearest(μ + sqrt(v - v0) ξ) plus a signed Cat(|r|, v0)
    x = m + (w - v0).clamp(min=0).sqrt() * xi
    q1 = torch.round(x)
    r1 = x - q1
    sign = torch.where(r1 >= 0, 1.0, -1.0)
    z1 = q1 + sign * _cat(r1.abs(), torch.full_like(r1, v0), u_cat)

    # branch v <= v0: stochastic(μ) plus Cat(0, v - v_s) when v > v_s
    floor = torch.floor(m)
    frac = m - floor  # δ/Δ
    q2 = floor + (uniform(mu32, generator) < frac).float()
    v_s = frac * (1.0 - frac)  # δ(Δ - δ) in units of Δ²
    z2 = q2 + _cat(0.0, (w - v_s).clamp(min=0), u_cat)

    big = w > v0
    out = torch.where(big, z1, z2).mul_(delta)
    out = torch.clamp(out, lo, hi)
    if isinstance(fmt, SmallFloat):
        out = quantize(out, fmt, "stochastic", generator)  # identity on values already on grid
    out = out.to(mu.dtype)
    if not return_variance:
        return out
    delivered = torch.where(big, v, torch.maximum(v, v_s * delta * delta))
    return out, delivered
