"""SVRG, low-precision SVRG and HALP (ALGORITHMS.md §9): the optimisation baselines.

HALP is "High-Accuracy Low-Precision training" (De Sa, Leszczynski, Zhang, Marzoev, Aberger,
Olukotun & Ré, 2018, arXiv:1803.03383): SVRG whose iterate is stored as a full-precision anchor
w̃ plus a b-bit offset z whose grid is re-centred on w̃ and re-scaled every epoch ("bit
centering"). For μ-strongly convex f, ||w̃ - w*|| <= ||∇f(w̃)||/μ, so a grid of scale

    s = ||g|| / (μ (2^(b-1) - 1)),   g = ∇f(w̃)

covers the ball that holds the optimum, and the grid shrinks as g does. One epoch:

    g = ∇f(w̃);  z = 0
    repeat T times:  z ← Q_{s,b}(z - α (∇f_i(w̃ + z) - ∇f_i(w̃) + g))      (stochastic rounding)
    w̃ ← w̃ + z

Q_{s,b}(x) = s · Q_{fixed<b,0>}(x/s): b-bit signed integers times s.

Baselines, same epoch structure (Johnson & Zhang, 2013, option I: the next anchor is the last
iterate):

- ``svrg`` with ``accumulator: full``: w ← w - α (∇f_i(w) - ∇f_i(w̃) + g);
- ``svrg`` with ``accumulator: low`` (LP-SVRG): w ← Q_W(w - α (...)) on W's fixed grid, which
  stalls at the grid's resolution.

The objective enters through ``grad_fn(w, idx)``: the mean gradient of f_i over the indices
``idx`` (a LongTensor; ``None`` for the full gradient), regulariser included.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from lowprec import PrecisionSpec, quantize
from lowprec.formats import FixedPoint
from lowprec.precision import VARIANCE_REDUCED, check_method

#: the methods (svrg, halp); check_method says which precisions each runs with
MODES = VARIANCE_REDUCED

GradFn = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


class VarianceReduced:
    """SVRG / LP-SVRG / HALP on a weight tensor ``w`` (updated in place).

    Args:
        w: the weights (any shape); ``w`` always holds the current iterate (w̃ + z for HALP).
        grad_fn: ``grad_fn(w, idx)`` as in the module docstring.
        num_data: N; inner steps draw ``batch_size`` indices uniformly with replacement.
        precision: W's format and the accumulator (``svrg``: full or low); G's format
            quantizes the variance-reduced direction.
        mode: ``svrg`` or ``halp``.
        inner_steps: T, inner steps per epoch.
        mu: HALP's strong-convexity constant μ (a hyperparameter in practice).
    """

    def __init__(
        self,
        w: torch.Tensor,
        grad_fn: GradFn,
        num_data: int,
        precision: PrecisionSpec,
        *,
        mode: str = "svrg",
        inner_steps: int = 100,
        batch_size: int = 1,
        mu: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        if inner_steps < 1:
            raise ValueError(f"key 'inner_steps': must be >= 1, got {inner_steps!r}")
        if batch_size < 1 or num_data < 1:
            raise ValueError(f"batch_size and num_data must be >= 1, got {batch_size}, {num_data}")
        if mode == "halp" and not mu > 0:
            raise ValueError(f"key 'halp_mu': HALP needs μ > 0, got {mu!r}")
        check_method(mode, precision)
        self.w = w
        self.grad_fn = grad_fn
        self.num_data = int(num_data)
        self.precision = precision
        self.mode = mode
        self.inner_steps = int(inner_steps)
        self.batch_size = int(batch_size)
        self.mu = float(mu)
        self.generator = generator
        self.bits = int(precision.weight.bits)
        #: HALP's offset grid: b-bit signed integers (scaled by s)
        self.offset_format = FixedPoint(self.bits, 0)
        self.epochs_done = 0
        self.last_scale = float("nan")
        if mode == "svrg" and precision.accumulator == "low":
            with torch.no_grad():
                self.w.copy_(self._q_w(self.w))

    def _q_w(self, x: torch.Tensor) -> torch.Tensor:
        return quantize(x, self.precision.weight, self.precision.rounding, self.generator)

    def _q_g(self, x: torch.Tensor) -> torch.Tensor:
        if self.precision.grad.is_identity:
            return x
        return quantize(x, self.precision.grad, self.precision.rounding, self.generator)

    def _indices(self) -> torch.Tensor:
        return torch.randint(
            self.num_data, (self.batch_size,), generator=self.generator, device=self.w.device
        )

    @torch.no_grad()
    def epoch(self, lr: float) -> None:
        """One outer iteration: the full gradient at the anchor, then T inner steps."""
        anchor = self.w.detach().clone()
        g = self.grad_fn(anchor, None)
        if self.mode == "halp":
            self._halp_inner(anchor, g, lr)
        else:
            low = self.precision.accumulator == "low"
            w = anchor.clone()
            for _ in range(self.inner_steps):
                idx = self._indices()
                d = self._q_g(self.grad_fn(w, idx) - self.grad_fn(anchor, idx) + g)
                w = w - lr * d
                if low:
                    w = self._q_w(w)
            self.w.copy_(w)
        self.epochs_done += 1

    def _halp_inner(self, anchor: torch.Tensor, g: torch.Tensor, lr: float) -> None:
        # bit centering: s = ||g|| / (μ (2^(b-1) - 1))
        s = float(torch.linalg.vector_norm(g)) / (self.mu * (2 ** (self.bits - 1) - 1))
        self.last_scale = s
        if not (s > 0 and math.isfinite(s)):
            return  # ∇f(w̃) = 0: the anchor is optimal (or the numbers diverged; caller checks)
        z = torch.zeros_like(anchor)
        for _ in range(self.inner_steps):
            idx = self._indices()
            d = self._q_g(self.grad_fn(anchor + z, idx) - self.grad_fn(anchor, idx) + g)
            # z ← Q_{s,b}(z - α d) = s · Q_fixed<b,0>((z - α d)/s)
            z = s * quantize((z - lr * d) / s, self.offset_format, "stochastic", self.generator)
        self.w.copy_(anchor + z)

    def state_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "w": self.w.detach().clone(), "epochs_done": self.epochs_done}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("mode") != self.mode:
            raise ValueError(f"checkpoint is for {state.get('mode')!r}, not {self.mode!r}")
        self.w.copy_(state["w"])
        self.epochs_done = int(state["epochs_done"])
