"""Quantizers (ALGORITHMS.md §2, §3): ``quantize`` and the activation/error autograd function.

Rounding, with Δ the grid step of the element and y = x/Δ (exact: Δ is a power of two):

- nearest:    Q(x) = round(y)·Δ, ties to even (as IEEE and the papers' CPU code; their CUDA
  code rounds ties away from zero).
- stochastic: Q(x) = floor(y + u)·Δ, u ~ U[0, 1), i.e. round up with probability
  δ/Δ where δ = x - floor_Δ(x); unbiased inside the range, E[Q(x)] = x, with variance
  δ(Δ - δ) ≤ Δ²/4 (Zhang, Wilson, De Sa, "Low-Precision Stochastic Gradient Langevin Dynamics",
  ICML 2022, eq. 2). Computed as floor_Δ(x) + Δ·[u < δ/Δ] with δ = x mod Δ (exact, fmod),
  which equals floor(y + u)·Δ for every real u in [0, 1) but has no rounding error in the
  float32 sum y + u (that sum rounds up whenever it lands within half an ulp below an integer:
  a bias of up to Δ/2 once |y| ≥ 2^22, e.g. for fixed point with more than 24 bits).
  Dim-0 block formats (wl ≤ 25) compute the same values in units of Δ: floor(y) + [u < y -
  floor(y)], with y = x/Δ clamped to ±(2^(wl-1) - 1) (y - floor(y) = δ/Δ, exact).

Values outside the range are clamped to it before rounding (both range ends lie on the grid, so
the result stays in range); ±inf saturate, NaN stays NaN. Randomness comes only from the
``torch.Generator`` passed in, drawn in one call per tensor.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lowprec.formats import BlockFloat, Format, ScaledFormat, parse_format
from lowprec.kernels import resolve as resolve_kernels
from lowprec.kernels.fused import SERIAL_MAX, has_fused, quantize_fused, quantize_small
from lowprec.precision import ROUNDINGS

__all__ = [
    "ROUNDINGS",
    "Quantizer",
    "block_grid",
    "check_generator",
    "quantize",
    "quantize_act_error",
    "uniform",
]

#: u·Δ is exact for uniforms on a 2^-24 grid when 2^-24·Δ is still a float32 (Δ >= 2^-125)
_UNIFORM_EXACT = 2.0**-125


def _check_rounding(rounding: str) -> None:
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding {rounding!r}: expected one of {', '.join(ROUNDINGS)}")


def uniform(
    like: torch.Tensor, generator: torch.Generator | None, high: float = 1.0
) -> torch.Tensor:
    """u ~ U[0, high) of ``like``'s shape, float32, on its device, from ``generator`` only."""
    check_generator(like, generator)
    if high == 1.0:
        return torch.rand(like.shape, generator=generator, device=like.device, dtype=torch.float32)
    return torch.empty_like(like, dtype=torch.float32).uniform_(0.0, high, generator=generator)


def check_generator(like: torch.Tensor, generator: torch.Generator | None) -> None:
    """Raise ``ValueError`` unless ``generator`` is a generator on ``like``'s device type."""
    if generator is None:
        raise ValueError(
            "stochastic rounding needs an explicit torch.Generator (pass generator=...); "
            "randomness never comes from global state"
        )
    if generator.device.type != like.device.type:
        raise ValueError(
            f"generator is on {generator.device} but the tensor is on {like.device}: "
            f"create the generator with torch.Generator(device={str(like.device)!r})"
        )


def quantize(
    x: torch.Tensor,
    fmt: Format | str,
    rounding: str = "stochastic",
    generator: torch.Generator | None = None,
    kernels: str = "auto",
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Q(x): ``x`` rounded onto ``fmt``'s grid, clamped to its range (module docstring).

    Any shape, CPU or CUDA; keeps shape and dtype (computed in float32). ``fmt`` may be a
    format string. ``fp32`` returns ``x`` itself (no copy). ``generator`` (on ``x``'s device)
    is required for stochastic rounding; the same generator state gives the same output.
    The result carries no autograd history (rounding has no useful derivative); for a
    straight-through gradient use :func:`quantize_act_error` / :class:`Quantizer`.

    ``kernels`` (auto | fused | eager, :func:`lowprec.kernels.resolve`): the code path. The
    fused kernels (numba on the CPU, Triton on CUDA) give the same nearest results bit for bit
    and the same stochastic laws, from counter-based bits keyed by one draw from ``generator``
    (lowprec/kernels/rng.py); the eager code below is the readable reference.

    ``out``: a tensor of ``x``'s shape to write the result into, and return (the fused path
    writes a float32 contiguous ``out`` directly, with no new allocation; ``fp32`` copies x).
    """
    fmt = parse_format(fmt)
    _check_rounding(rounding)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"quantize: expected a floating-point torch.Tensor, got {type(x)}")
    path = resolve_kernels(kernels, x.device)
    element_path = path
    if path == "fused" and not has_fused(fmt, x.device):
        # a scaled format without a kernel of its own on this device: its scaling runs in
        # torch, its element rounding fused (other formats without a fused kernel: eager)
        path = "eager"
    if out is not None and (out.shape != x.shape or not out.is_floating_point()):
        raise ValueError(f"quantize: out must be a floating-point tensor of shape {x.shape}")
    if fmt.is_identity:
        return x if out is None else out.copy_(x)
    if x.numel() == 0:
        return x.detach().clone() if out is None else out
    with torch.no_grad():
        if path == "fused":
            if rounding == "stochastic":
                check_generator(x, generator)
            return quantize_fused(x, fmt, rounding, generator, out=out)
        result = _round(x, fmt, rounding, generator, element_path)
        return result if out is None else out.copy_(result)


def _round(
    x: torch.Tensor,
    fmt: Format,
    rounding: str,
    generator: torch.Generator | None,
    element_kernels: str = "eager",
) -> torch.Tensor:
    xf = x if x.dtype == torch.float32 else x.float()
    if isinstance(fmt, ScaledFormat):
        # the scale from the unrounded block, held fixed; the rounding acts on the element grid
        y, _, up, restore = fmt.to_element(xf)
        if element_kernels == "eager":
            q = _round(y, fmt.element, rounding, generator)
        else:
            q = quantize(y, fmt.element, rounding, generator, kernels=element_kernels)
        return _restore(q.mul_(up), restore, x.dtype)
    grid = block_grid(fmt, xf)
    if grid is not None:
        delta, lo, hi, restore = (*grid, None)
        if rounding == "stochastic" and isinstance(fmt, BlockFloat) and fmt.wl <= 25:
            return _restore(_round_block_units(xf, fmt, delta, generator), None, x.dtype)
    else:
        xf, delta, lo, hi, restore = fmt._prepare(xf)
    xc = torch.clamp(xf, lo, hi)
    if rounding == "nearest":
        out = xc.div_(delta).round_().mul_(delta)  # exact scalings; round half to even
        return _restore(out, restore, x.dtype)
    # stochastic: δ = x - floor_Δ(x) in [0, Δ), round up with probability δ/Δ
    rem = torch.remainder(xc, delta)  # δ, exact (fmod)
    out = xc.sub_(rem)  # floor_Δ(x), exact: a grid point
    if isinstance(delta, float) and delta >= _UNIFORM_EXACT:
        # u·Δ drawn directly (exact: a power-of-two scaling of u that stays normal)
        u = uniform(rem, generator, high=delta)
        out.add_(u.lt_(rem), alpha=delta)  # + Δ·[u·Δ < δ]
    else:
        u = uniform(rem, generator)
        up = u.lt_(rem.div_(delta))  # [u < δ/Δ]
        out = out.add_(up, alpha=delta) if isinstance(delta, float) else out.addcmul_(up, delta)
    return _restore(out, restore, x.dtype)


def _round_block_units(
    x: torch.Tensor, fmt: Any, delta: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Stochastic rounding for dim-0 blocks (wl <= 25), in units of Δ: y = x/Δ clamped to
    ±max_units (the range ±max_units·Δ; Δ a power of two, so these are the values of
    clamp(x)/Δ), then (floor(y) + [u < y - floor(y)])·Δ; y - floor(y) = δ/Δ exactly."""
    y = torch.div(x, delta).clamp_(-fmt.max_units, fmt.max_units)
    out = torch.floor(y)
    frac = y.sub_(out)  # δ/Δ
    up = torch.lt(uniform(frac, generator), frac, out=frac)  # [u < δ/Δ]
    return out.add_(up).mul_(delta)


def block_grid(
    fmt: Format, x: torch.Tensor, absolute: bool = True
) -> tuple[torch.Tensor, ...] | None:
    """``fmt._grid(x)`` (Δ, lo, hi) for dim-0 block formats and a non-empty ``x`` with at least one
    dim, else None: the block maximum max|x| as ``amax`` of ``|x|`` (the same value as the
    format's inf-norm, NaN included, in cheaper passes); Δ and the range as the format's.
    ``absolute=False`` when ``x`` is known to be >= 0 (or NaN): |x| is not taken."""
    if not (isinstance(fmt, BlockFloat) and fmt.block_size is None and x.dim() and x.numel()):
        return None
    top = (x.abs() if absolute else x).reshape(x.shape[0], -1).amax(dim=1)
    delta = fmt._delta(top).reshape((x.shape[0],) + (1,) * (x.dim() - 1))
    hi = delta * fmt.max_units
    return delta, -hi, hi


def _restore(out: torch.Tensor, restore: Any, dtype: torch.dtype) -> torch.Tensor:
    if restore is not None:
        out = restore(out)
    return out if dtype == torch.float32 else out.to(dtype)


class _Plan:
    """One direction of a :class:`Quantizer` on one device: its format, rounding and code path,
    decided once instead of at every call. A Quantizer runs on every forward and backward of a
    layer, on tensors small enough (a batch of activations) that the per-call Python work of
    :func:`quantize` (parsing, checking the rounding, resolving the code path, asking for a
    fused kernel) cost as much as the kernel; :meth:`run` does only what depends on ``x`` and
    calls the same kernel with the same draws from the generator, so the results are those of
    :func:`quantize`, bit for bit."""

    __slots__ = ("cpu", "fmt", "fused", "kernels", "rounding", "stochastic")

    def __init__(self, fmt: Format, rounding: str, kernels: str, device: torch.device):
        self.fmt = fmt
        self.rounding = rounding
        self.kernels = kernels
        self.stochastic = rounding == "stochastic"
        # the fused kernel of the format itself (quantize's path "fused"); a scaled format
        # without one takes quantize's general path (its scaling in torch)
        self.fused = (
            not fmt.is_identity
            and resolve_kernels(kernels, device) == "fused"
            and has_fused(fmt, device)
        )
        self.cpu = torch.device(device).type == "cpu"  # the numba kernels

    def run(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """:func:`quantize` (x, fmt, rounding, generator, kernels)."""
        if not self.fused or x.numel() == 0 or not x.is_floating_point():
            return quantize(x, self.fmt, self.rounding, generator, self.kernels)
        if self.cpu and x.numel() <= SERIAL_MAX and x.dtype == torch.float32 and x.is_contiguous():
            if self.stochastic and (generator is None or generator.device.type != "cpu"):
                check_generator(x, generator)  # raises (x is on the plan's device, the CPU)
            # quantize_fused's kernel and key, without its per-call checks and conversions
            return quantize_small(x, self.fmt, self.stochastic, generator)
        if self.stochastic:
            check_generator(x, generator)
        return quantize_fused(x, self.fmt, self.rounding, generator)


class _QuantizeActError(torch.autograd.Function):
    """Forward: Q_A(x). Backward: Q_E(grad_output) (straight through the rounding)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        forward_plan: _Plan,
        backward_plan: _Plan,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        ctx.backward_plan = backward_plan
        ctx.generator = generator
        out = forward_plan.run(x, generator)
        return out.view_as(out) if out is x else out

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return ctx.backward_plan.run(grad_output, ctx.generator), None, None, None


def quantize_act_error(
    x: torch.Tensor,
    fwd_fmt: Format | str,
    bwd_fmt: Format | str,
    rounding: str = "stochastic",
    generator: torch.Generator | None = None,
    kernels: str = "auto",
) -> torch.Tensor:
    """Q_A(x) in the forward pass; the gradient flowing back through it is Q_E(∂L/∂out)
    (ALGORITHMS.md §3: activations A forward, errors E backward, as qtorch's ``quantizer``).

    The rounding itself is passed straight through: ∂Q_A(x)/∂x is taken as the identity.
    ``kernels`` (auto | fused | eager) as in :func:`quantize`, both directions.
    """
    fwd, bwd = parse_format(fwd_fmt), parse_format(bwd_fmt)
    _check_rounding(rounding)
    if fwd.is_identity and bwd.is_identity:
        return x
    return _apply(x, _plans(fwd, bwd, rounding, kernels, x.device), generator)


def _plans(
    fwd: Format, bwd: Format, rounding: str, kernels: str, device: torch.device
) -> tuple[_Plan, _Plan]:
    return _Plan(fwd, rounding, kernels, device), _Plan(bwd, rounding, kernels, device)


def _apply(
    x: torch.Tensor, plans: tuple[_Plan, _Plan], generator: torch.Generator | None
) -> torch.Tensor:
    """Q_A(x) with Q_E on the way back; without the autograd Function when no gradient will
    flow through x (evaluation, torch.no_grad): the same forward, less work per call."""
    if not (x.requires_grad and torch.is_grad_enabled()):
        return plans[0].run(x, generator)
    return _QuantizeActError.apply(x, plans[0], plans[1], generator)


class Quantizer(nn.Module):
    """Module form of :func:`quantize_act_error`: place it after conv/linear layers and after
    BN+ReLU (ALGORITHMS.md §3). Either format may be ``fp32`` (identity in that direction).

    ``generator`` is read at every call (set the attribute to change it); it must live on the
    activations' device. Stochastic rounding without a generator raises ``ValueError``.
    The code path of each direction is decided once per device (:class:`_Plan`); set
    ``forward_format``, ``backward_format``, ``rounding`` or ``kernels`` and the next call
    decides it again.
    """

    def __init__(
        self,
        forward_format: Format | str,
        backward_format: Format | str,
        rounding: str = "stochastic",
        generator: torch.Generator | None = None,
        kernels: str = "auto",
    ):
        super().__init__()
        _check_rounding(rounding)
        self.forward_format = parse_format(forward_format)
        self.backward_format = parse_format(backward_format)
        self.rounding = rounding
        self.generator = generator
        self.kernels = kernels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fwd, bwd = self.forward_format, self.backward_format
        if fwd.is_identity and bwd.is_identity:
            return x
        kernels = getattr(self, "kernels", "auto")  # modules pickled before the attribute
        # the plans of the settings they were made for (a changed attribute makes new ones)
        made_for = (fwd, bwd, self.rounding, kernels, x.device)
        cached = self.__dict__.get("_plans_for")
        if cached is None or cached[0] != made_for:
            _check_rounding(self.rounding)
            cached = (made_for, _plans(fwd, bwd, self.rounding, kernels, x.device))
            self.__dict__["_plans_for"] = cached
        return _apply(x, cached[1], self.generator)

    def extra_repr(self) -> str:
        return f"forward={self.forward_format}, backward={self.backward_format}, {self.rounding}"
