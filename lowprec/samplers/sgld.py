"""Low-precision SGLD (Zhang, Wilson & De Sa, "Low-Precision Stochastic Gradient Langevin
Dynamics", ICML 2022), and SGD as its noiseless special case (ALGORITHMS.md §5).

With g = Q_G(∇L̄(θ̂)) + θ/(N σ²) (the prior's weight decay) and ξ ~ N(0, I), one step is

    θ ← draw(θ - lr·g, 2·lr·T/N)

where ``draw(mean, var)`` is the accumulator's (:mod:`lowprec.samplers.accumulators`):

- full (SGLDLP-F):    θ ← θ - lr·g + sqrt(2·lr·T/N)·ξ,          θ̂ = Q_W(θ)
- low (SGLDLP-L):     θ ← Q_W(θ - lr·g + sqrt(2·lr·T/N)·ξ),     θ̂ = θ
- vc (VC SGLDLP-L):   θ ← Q_vc(θ - lr·g, 2·lr·T/N, Δ_W),        θ̂ = θ

For synthetic targets N = 1 and this is the textbook θ ← θ - α∇U + sqrt(2α)ξ. Without noise
(``sgd``, or the exploration stage of a cyclical schedule) the variance is 0 and the same three
accumulators give SGD, SGD with a full-precision master copy, and naive low-precision SGD
(SGDLP-L), where the ``vc`` draw degenerates to stochastic rounding of the mean.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from lowprec.samplers.base import Sampler


class SGLDCoefficients(NamedTuple):
    """One SGLD step: mean θ - lr·(Q_G(∇) + wd·θ), variance ``var`` = 2·lr·T/N (0: no noise)."""

    lr: float
    weight_decay: float
    var: float


class SGLD(Sampler):
    """Stochastic gradient Langevin dynamics with full / low / vc accumulators."""

    name = "sgld"
    fused_rule = "sgld"

    def coefficients(self, lr: float, noise: bool) -> SGLDCoefficients:
        # Var of the Langevin noise per step, deep-learning convention: 2·lr·T/N
        var = 2.0 * lr * self.temperature / self.num_data if noise else 0.0
        return SGLDCoefficients(lr, self.weight_decay, var)

    def _update(self, lr: float, grads: list[torch.Tensor], noise: bool) -> None:
        c = self.coefficients(lr, noise)
        for th, g in zip(self.theta, grads, strict=True):
            th.copy_(self.acc.draw(th - c.lr * g, c.var, self.precision.weight).stored)


class SGD(SGLD):
    """SGD / low-precision SGD: the SGLD update without noise (ALGORITHMS.md §5, §9)."""

    name = "sgd"
    adds_noise = False
