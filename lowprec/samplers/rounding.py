"""The quantizers and the Gaussian noise of the eager update, from one generator (ALGORITHMS.md
§2, §4): Q_F(x) with the trial's rounding, Q_vc(mean, var) and ξ ~ N(0, I)."""

from __future__ import annotations

import torch

from lowprec.formats import Format
from lowprec.quantize import quantize
from lowprec.vc import vc_quantize


class Rounding:
    """Q_F with ``rounding`` (stochastic | nearest), Q_vc and ξ, randomness only from
    ``generator``; ``kernels`` (auto | fused | eager) is passed on to the quantizers."""

    def __init__(
        self, rounding: str, generator: torch.Generator | None, kernels: str = "auto"
    ) -> None:
        self.rounding = rounding
        self.generator = generator
        self.kernels = kernels

    def quantize(self, x: torch.Tensor, fmt: Format) -> torch.Tensor:
        """Q_F(x); ``fp32`` is the identity (``x`` itself)."""
        if fmt.is_identity:
            return x
        return quantize(x, fmt, self.rounding, self.generator, kernels=self.kernels)

    def stochastic(self, x: torch.Tensor, fmt: Format) -> torch.Tensor:
        """Stochastic rounding of x whatever the trial's rounding (Q_vc with v = 0)."""
        return quantize(x, fmt, "stochastic", self.generator, kernels=self.kernels)

    def vc(self, mean: torch.Tensor, var: float, fmt: Format) -> torch.Tensor:
        """Q_vc(mean, var) on fmt's grid; var = 0 is stochastic rounding of the mean."""
        if var == 0:
            return self.stochastic(mean, fmt)
        return vc_quantize(mean, var, fmt, generator=self.generator, kernels=self.kernels)

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        """ξ ~ N(0, I) of x's shape, from the generator."""
        return torch.randn(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
