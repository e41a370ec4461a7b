"""Low-precision SGHMC (Wang, Chen, Song & Zhang, "Enhancing Low-Precision Sampling via
Stochastic Gradient Hamiltonian Monte Carlo", TMLR 2024), the exact underdamped
discretisation of ALGORITHMS.md §6.

Inverse mass u, friction γ, step η, g = Q_G(∇Ũ(θ̂)), e = e^(-γη):

    v' = e·v - u γ⁻¹ (1 - e) g + ξ_v
    θ' = θ + γ⁻¹ (1 - e) v - u γ⁻² (γη + e - 1) g + ξ_θ

with (ξ_v, ξ_θ) one correlated Gaussian pair, all variances × T/N:

    Var ξ_v = u (1 - e²),  Var ξ_θ = u γ⁻² (2γη + 4e - e² - 3),  Cov = u γ⁻¹ (1 - 2e + e²)

drawn through the 2×2 Cholesky factor L = [[√Var_v, 0], [Cov/√Var_v, √(Var_θ - Cov²/Var_v)]].

The rule hands (mean_v, Var_v, mean_θ, Var_θ, Cov) to the accumulator's ``draw_pair``
(:mod:`lowprec.samplers.accumulators`), which draws v' and then θ' given v'.
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
from typing import Any, NamedTuple

import torch

from lowprec import Format, PrecisionSpec
from lowprec.precision import VC_MODES
from lowprec.samplers.accumulators import Accumulator, make_accumulator
from lowprec.samplers.base import Sampler


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


class SGHMCCoefficients(NamedTuple):
    """One exact underdamped step (ALGORITHMS.md §6): the drift coefficients of
    :func:`sghmc_coefficients`, the weight decay, and the noise law (var_v, var_θ, cov; all 0
    without noise)."""

    decay: float
    v_from_g: float
    theta_from_v: float
    theta_from_g: float
    weight_decay: float
    var_v: float
    var_theta: float
    cov: float


class SGHMC(Sampler):
    """Stochastic gradient HMC with the exact underdamped step, full / low / vc accumulators.

    Extra args: ``friction`` γ > 0, ``inverse_mass`` u > 0, ``vc_mode`` joint | independent,
    ``momentum_rescale`` (low and vc only). The momentum starts at zero.
    """

    fused_rule = "sghmc"

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
        self.friction = float(friction)
        self.inverse_mass = float(inverse_mass)
        self.vc_mode = vc_mode
        self.momentum_rescale = bool(momentum_rescale) and precision.accumulator != "full"
        #: the format v is stored in (low, vc); PrecisionSpec gives M W's format by default
        self.momentum_format: Format = precision.momentum
        super().__init__(params, precision, **kwargs)

    def _make_accumulator(self) -> Accumulator:
        return make_accumulator(self.accumulator, self.q, joint=self.vc_mode == "joint")

    def _init_state(self) -> None:
        # stored momentum (scaled by 1/S when rescaling) and the per-tensor scales S
        self.momentum = [torch.zeros_like(t) for t in self.theta]
        self.momentum_scale = [1.0 for _ in self.theta]

    # -- the update ------------------------------------------------------------------------
    def coefficients(self, lr: float, noise: bool) -> SGHMCCoefficients:
        scale = self.temperature / self.num_data if noise else 0.0
        c = sghmc_coefficients(lr, self.friction, self.inverse_mass, scale)
        return SGHMCCoefficients(
            c["decay"],
            c["v_from_g"],
            c["theta_from_v"],
            c["theta_from_g"],
            self.weight_decay,
            c["var_v"],
            c["var_theta"],
            c["cov"],
        )

    def _update(self, lr: float, grads: list[torch.Tensor], noise: bool) -> None:
        c = self.coefficients(lr, noise)
        for i, (th, g) in enumerate(zip(self.theta, grads, strict=True)):
            v = self.momentum[i] * self.momentum_scale[i]  # the momentum in its own units
            # v' = e·v - u γ⁻¹ (1 - e) g + ξ_v;  θ' = θ + γ⁻¹ (1 - e) v - u γ⁻² (γη + e - 1) g + ξ_θ
            mean_v = c.decay * v - c.v_from_g * g
            mean_th = th + c.theta_from_v * v - c.theta_from_g * g
            v_new, th_new = self.acc.draw_pair(
                mean_v,
                c.var_v,
                mean_th,
                c.var_theta,
                c.cov,
                self.momentum_format,
                self.precision.weight,
                rescale_v=self.momentum_rescale,
            )
            th.copy_(th_new.stored)
            self.momentum[i].copy_(v_new.stored)
            self.momentum_scale[i] = v_new.scale

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
