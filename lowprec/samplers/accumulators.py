"""How the accumulator θ is stored and rounded (ALGORITHMS.md §3, §4): a small strategy the update
rules call, so that no rule ever asks which accumulator it runs with.

Every update rule ends in "draw x ~ N(mean, var) and keep it in format F". The accumulator says
what that means:

- ``full`` (LP-F):   x = mean + sqrt(var)·ξ, kept in float32; the network computes with
  θ̂ = Q_W(θ);
- ``low`` (naive LP-L): x = Q_F(mean + sqrt(var)·ξ) (the whole update, noise included, then
  rounded); θ̂ = θ;
- ``vc`` (VC LP-L):  x = Q_vc(mean, var) on F's grid (mean and variance exact, §4); θ̂ = θ.

A draw returns the value that is stored (divided by a scale S when the momentum is rescaled,
§6) and the realised value in its own units, which SGHMC's conditional draw of θ' given v'
uses: for ``low`` that is the Gaussian before rounding (the pair's correlation is the one of the
Gaussian pair), for ``vc`` the drawn grid value.

A pair (v, θ) with covariance ``cov`` (SGHMC) is drawn jointly by default:
v' = draw(mean_v, Var_v), then θ' = draw(mean_θ + (Cov/Var_v)(v' - mean_v), Var_θ - Cov²/Var_v),
the conditional law of θ' given v'. For ``full`` and ``low`` this is the Cholesky draw of the
2×2 Gaussian (l21·z1 = (Cov/Var_v)(v' - mean_v)); for ``vc`` it keeps the pair's covariance.
``VC(joint=False)`` is the SGHMC paper's literal form, θ' = Q_vc(mean_θ, Var_θ) independently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lowprec.formats import FixedPoint, Format
from lowprec.precision import ACCUMULATORS
from lowprec.samplers.rounding import Rounding

__all__ = ["ACCUMULATORS", "VC", "Accumulator", "Draw", "Full", "Low", "make_accumulator"]


@dataclass
class Draw:
    """One draw: ``stored`` (in units of ``scale``), ``value`` (realised, own units)."""

    stored: torch.Tensor
    value: torch.Tensor
    scale: float = 1.0


def rescale_factor(x: torch.Tensor, fmt: Format) -> float:
    """S = max|x| / (largest value of fmt) for fixed-point ``fmt`` (§6, momentum rescaling);
    1 when x is all zero or not finite, or when ``fmt`` is not fixed point (block and float
    formats scale themselves)."""
    if not isinstance(fmt, FixedPoint):
        return 1.0
    top = float(fmt.max_value)
    peak = float(x.abs().max())
    if not (math.isfinite(top) and top > 0 and peak > 0 and math.isfinite(peak)):
        return 1.0
    return peak / top


class Accumulator:
    """The storage of θ (and of SGHMC's v); subclasses define :meth:`store`, :meth:`hat` and
    :meth:`draw`. ``rounding`` holds the quantizers (rounding mode, generator, kernels)."""

    name = "base"
    #: SGHMC's pair (v', θ') drawn from its 2×2 law, θ' given v' (True), or each on its own
    joint = True

    def __init__(self, rounding: Rounding) -> None:
        self.q = rounding

    def store(self, x: torch.Tensor, fmt: Format) -> torch.Tensor:
        """The initial stored value of the parameters ``x``."""
        raise NotImplementedError

    def hat(self, theta: torch.Tensor, fmt: Format) -> torch.Tensor:
        """θ̂, the weights the network computes with."""
        raise NotImplementedError

    def draw(self, mean: torch.Tensor, var: float, fmt: Format, rescale: bool = False) -> Draw:
        """x ~ N(mean, var) kept in ``fmt``; var = 0 is the noiseless update."""
        raise NotImplementedError

    def draw_pair(
        self,
        mean_v: torch.Tensor,
        var_v: float,
        mean_th: torch.Tensor,
        var_th: float,
        cov: float,
        fmt_v: Format,
        fmt_th: Format,
        rescale_v: bool = False,
    ) -> tuple[Draw, Draw]:
        """(v', θ') from the 2×2 Gaussian law, θ' drawn given v' (module docstring); without
        :attr:`joint`, each from its own law (the SGHMC paper's literal VC form)."""
        if not self.joint:  # v' = Q_vc(mean_v, Var_v), θ' = Q_vc(mean_θ, Var_θ)
            return self.draw(mean_v, var_v, fmt_v, rescale_v), self.draw(mean_th, var_th, fmt_th)
        v = self.draw(mean_v, var_v, fmt_v, rescale_v)
        if var_v <= 0:  # noiseless: both are their means
            return v, self.draw(mean_th, 0.0, fmt_th)
        # θ' | v' ~ N(mean_θ + (Cov/Var_v)(v' - mean_v), Var_θ - Cov²/Var_v)
        cond_mean = mean_th + (cov / var_v) * (v.value - mean_v)
        cond_var = max(var_th - cov**2 / var_v, 0.0)
        return v, self.draw(cond_mean, cond_var, fmt_th)


class Full(Accumulator):
    """LP-F: a float32 master copy; θ̂ = Q_W(θ)."""

    name = "full"

    def store(self, x: torch.Tensor, fmt: Format) -> torch.Tensor:
        return x.clone()

    def hat(self, theta: torch.Tensor, fmt: Format) -> torch.Tensor:
        return self.q.quantize(theta, fmt)

    def draw(self, mean: torch.Tensor, var: float, fmt: Format, rescale: bool = False) -> Draw:
        x = mean + math.sqrt(var) * self.q.randn_like(mean) if var > 0 else mean
        return Draw(x, x)


class Low(Accumulator):
    """Naive LP-L: the whole update, noise included, rounded with Q_F; θ̂ = θ."""

    name = "low"

    def store(self, x: torch.Tensor, fmt: Format) -> torch.Tensor:
        return self.q.quantize(x, fmt)

    def hat(self, theta: torch.Tensor, fmt: Format) -> torch.Tensor:
        return theta

    def draw(self, mean: torch.Tensor, var: float, fmt: Format, rescale: bool = False) -> Draw:
        x = mean + math.sqrt(var) * self.q.randn_like(mean) if var > 0 else mean
        s = rescale_factor(x, fmt) if rescale else 1.0
        return Draw(self.q.quantize(x / s if s != 1.0 else x, fmt), x, s)


class VC(Low):
    """VC LP-L: x = Q_vc(mean, var) (§4), S·Q_vc(mean/S, var/S²) when rescaled; θ̂ = θ.
    ``joint=False``: pairs are drawn independently (the SGHMC paper's literal form)."""

    name = "vc"

    def __init__(self, rounding: Rounding, joint: bool = True) -> None:
        super().__init__(rounding)
        self.joint = joint

    def draw(self, mean: torch.Tensor, var: float, fmt: Format, rescale: bool = False) -> Draw:
        s = rescale_factor(mean, fmt) if rescale else 1.0
        stored = self.q.vc(mean / s if s != 1.0 else mean, var / s**2, fmt)
        return Draw(stored, stored * s if s != 1.0 else stored, s)


def make_accumulator(name: str, rounding: Rounding, joint: bool = True) -> Accumulator:
    """The accumulator called ``name`` (full | low | vc); ``joint`` for vc pairs."""
    if name == "full":
        return Full(rounding)
    if name == "low":
        return Low(rounding)
    if name == "vc":
        return VC(rounding, joint=joint)
    raise ValueError(f"key 'accumulator': {name!r} is not one of {', '.join(ACCUMULATORS)}")
