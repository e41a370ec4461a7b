"""Low-precision SGHMC (Wang, Chen, Song & Zhang, "Enhancing Low-Precision Sampling via
Stochastic Gradient Hamiltonian Monte Carlo", TMLR 2024), the exact underdamped
discretisation of ALGORITHMS.md §6.

Inverse mass u, friction γ, step η, g = Q_G(∇Ũ(θ̂)), e = e^(-γη):

    v' = e·v - u γ⁻¹ (1 - e) g + ξ_v
    θ' = θ + γ⁻¹ (1 - e) v - u γ⁻² (γη + e - 1) g + ξ_θ

with (ξ_v, ξ_θ) one correlated Gaussian pair, all variances × T/N:

    Var ξ_v = u (1 - e²),  Var ξ_θ = u γ⁻² (2γη + 4e - e² - 3),  Cov = u γ⁻¹ (1 - 2e + e²)

drawn through the 2×2 Cholesky factor L = [[√Var_v, 0], [Cov/√Var_v, √(Var_θ - Cov²/Var_v)]].

Accumulators: ``full`` keeps θ and v in float32; ``low`` rounds v' with Q_M and θ' with Q_W;
``vc`` draws them with Q_vc, either ``joint`` (v' = Q_vc(mean_v, Var_v), then
θ' = Q_vc(mean_θ + (Cov/Var_v)(v' - mean_v), Var_θ - Cov²/Var_v): the conditional law of θ'
given v', so the pair keeps its covariance) or ``independent`` (the paper's literal form,
v' = Q_vc(mean_v, Var_v), θ' = Q_vc(mean_θ, Var_θ), which drops the correlation and shrinks the
sampled law). Q_M is the momentum format, which ``PrecisionSpec`` makes W's format for low
and vc unless ``momentum_format`` says otherwise (the paper stores both in W's format).

Momentum rescaling (``momentum_rescale``; low and vc, fixed-point Q_M): per tensor ("layer"),
S = max|v'| / (largest value of Q_M) (low: of v' before rounding; vc: of mean_v), the stored
momentum is Q(v'/S) and S multiplies it back before use, so v uses all the bits of its format.

Config boundary: the cyclical-SGHMC code's "alpha" is a = 1 - e^(-γη) (momentum 1 - a); this
module keeps γ and η (``friction``, ``lr``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from lowprec import Format, PrecisionSpec
from lowprec.formats import FixedPoint
from lowprec.samplers.base import Sampler

VC_MODES = ("joint", "independent")


def _var_theta_factor(x: float) -> float:
    """2x + 4e^(-x) - e^(-2x) - 3 for x = γη, by its series (2/3)x³ - (1/2)x⁴ + (7/30)x⁵
    below 1e-3, where the closed form loses digits to cancellation."""
    if x < 1e-3:
        return (2.0 / 3.0) * x**3 - 0.5 * x**4 + (7.0 / 30.0) * x**5
    return 2.0 * x + 4.0 * math.exp(-x) - math.exp(-2.0 * x) - 3.0


def sghmc_coefficients(
    lr: float, friction: float, inverse_mass: float, noise_scale: float
) -> dict[str, float]:
    """The coefficients of one exact underdamped step (ALGORITHMS.md §6).

    Returns ``decay`` e, ``v_from_g`` u γ⁻¹ (1 - e), ``theta_from_v`` γ⁻¹ (1 - e),
    ``theta_from_g`` u γ⁻² (γη + e - 1), and the noise ``var_v``, ``var_theta``, ``cov``
    (× ``noise_scale`` = T/N).
    """
    g, u, eta = friction, inverse_mass, lr
    e = math.exp(-g * eta)
    one_minus_e = -math.expm1(-g * eta)
    return {
        "decay": e,
        "v_from_g": u * one_minus_e / g,
        "theta_from_v": one_minus_e / g,
        "theta_from_g": u * (g * eta - one_minus_e) / g**2,
        "var_v": noise_scale * u * (-math.expm1(-2.0 * g * eta)),
        "var_theta": noise_scale * u * _var_theta_factor(g * eta) / g**2,
        "cov": noise_scale * u * one_minus_e**2 / g,
    }


class SGHMC(Sampler):
    """Stochastic gradient HMC with the exact underdamped step, full / low / vc accumulators.

    Extra args: ``friction`` γ > 0, ``inverse_mass`` u > 0, ``vc_mode`` joint | independent,
    ``momentum_rescale`` (low and vc only). The momentum starts at zero.
    """

    name = "sghmc"

    def __init__(
        self,
        params: Any,
        precision: PrecisionSpec,
        *,
        friction: float = 3.0,
        inverse_mass: float = 1.0,
        vc_mode: str = "joint",
        momentum_rescale: bool = False,
        **kwargs: Any,
    ) -> None:
        if not friction > 0:
            raise ValueError(f"key 'friction': SGHMC needs γ > 0, got {friction!r}")
        if not inverse_mass > 0:
            raise ValueError(f"key 'inverse_mass': SGHMC needs u > 0, got {inverse_mass!r}")
        if vc_mode not in VC_MODES:
            raise ValueError(f"key 'vc_mode': {vc_mode!r} is not one of {', '.join(VC_MODES)}")
        super().__init__(params, precision, **kwargs)
        self.friction = float(friction)
        self.inverse_mass = float(inverse_mass)
        self.vc_mode = vc_mode
        self.momentum_rescale = bool(momentum_rescale) and self.accumulator != "full"
        #: the format v is stored in (low, vc); PrecisionSpec gives M W's format by default
        self.momentum_format: Format = precision.momentum
        # stored momentum (scaled by 1/S when rescaling) and the per-tensor scales S
        self.momentum = [torch.zeros_like(t) for t in self.theta]
        self.momentum_scale = [1.0 for _ in self.theta]

    # -- momentum storage ------------------------------------------------------------------
    def _scale_for(self, x: torch.Tensor) -> float:
        """S = max|x| / (largest value of Q_M); 1 when not rescaling, when x is all zero, or
        when Q_M is not fixed point (block and float formats scale themselves)."""
        if not (self.momentum_rescale and isinstance(self.momentum_format, FixedPoint)):
            return 1.0
        top = float(self.momentum_format.max_value)
        peak = float(x.abs().max())
        if not (math.isfinite(top) and top > 0 and peak > 0 and math.isfinite(peak)):
            return 1.0
        return peak / top

    def _q_momentum(self, x: torch.Tensor) -> torch.Tensor:
        return self._q(x, self.momentum_format)

    # -- the update ------------------------------------------------------------------------
    def _update(self, lr: float, grads: list[torch.Tensor], noise: bool) -> None:
        scale = self.temperature / self.num_data if noise else 0.0
        c = sghmc_coefficients(lr, self.friction, self.inverse_mass, scale)
        var_v, var_th, cov = c["var_v"], c["var_theta"], c["cov"]
        noise = noise and var_v > 0
        if noise:  # Cholesky factor of [[Var_v, Cov], [Cov, Var_θ]]
            l11 = math.sqrt(var_v)
            l21 = cov / l11
            l22 = math.sqrt(max(var_th - l21**2, 0.0))
        for i, (th, g) in enumerate(zip(self.theta, grads, strict=True)):
            v = self.momentum[i] * self.momentum_scale[i]  # the momentum in its own units
            mean_v = c["decay"] * v - c["v_from_g"] * g
            mean_th = th + c["theta_from_v"] * v - c["theta_from_g"] * g
            if self.accumulator == "vc":
                th_new, v_stored, s = self._vc_step(mean_th, mean_v, var_v, var_th, cov, noise)
            else:
                if noise:
                    z1, z2 = self.randn_like(th), self.randn_like(th)
                    v_new = mean_v + l11 * z1
                    th_new = mean_th + l21 * z1 + l22 * z2
                else:
                    v_new, th_new = mean_v, mean_th
                if self.accumulator == "full":
                    v_stored, s = v_new, 1.0
                else:  # low: round both with their formats
                    s = self._scale_for(v_new)
                    v_stored = self._q_momentum(v_new / s)
                    th_new = self.q_weight(th_new)
            th.copy_(th_new)
            self.momentum[i].copy_(v_stored)
            self.momentum_scale[i] = s

    def _vc_step(
        self,
        mean_th: torch.Tensor,
        mean_v: torch.Tensor,
        var_v: float,
        var_th: float,
        cov: float,
        noise: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(θ', stored v'/S, S) drawn with Q_vc, jointly or independently."""
        s = self._scale_for(mean_v)
        if not noise:
            v_scaled = self.q_vc(mean_v / s, 0.0, self.momentum_format)
            return self.q_vc(mean_th, 0.0, self.precision.weight), v_scaled, s
        # v' = S · Q_vc(mean_v / S, Var_v / S²)
        v_scaled = self.q_vc(mean_v / s, var_v / s**2, self.momentum_format)
        v_new = v_scaled * s
        if self.vc_mode == "joint":
            # θ' | v' ~ N(mean_θ + (Cov/Var_v)(v' - mean_v), Var_θ - Cov²/Var_v)
            cond_mean = mean_th + (cov / var_v) * (v_new - mean_v)
            cond_var = max(var_th - cov**2 / var_v, 0.0)
            th_new = self.q_vc(cond_mean, cond_var, self.precision.weight)
        else:
            th_new = self.q_vc(mean_th, var_th, self.precision.weight)
        return th_new, v_scaled, s

    # -- checkpoints and samples -----------------------------------------------------------
    def velocity(self) -> list[torch.Tensor]:
        """The momentum v in its own units (stored value × S), copies."""
        return [m * s for m, s in zip(self.momentum, self.momentum_scale, strict=True)]

    def _extra_state(self) -> dict[str, Any]:
        return {
            "momentum": [m.detach().clone() for m in self.momentum],
            "momentum_scale": list(self.momentum_scale),
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        for m, saved in zip(self.momentum, state["momentum"], strict=True):
            m.copy_(saved)
        self.momentum_scale = [float(s) for s in state["momentum_scale"]]
