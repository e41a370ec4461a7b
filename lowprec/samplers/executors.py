"""Who runs a sampler's step: the eager reference or one fused kernel over flat buffers.

- ``eager``: the rule's per-tensor update (:meth:`Sampler._update`) with torch ops: the readable
  reference that the fused executor is tested against, law for law.
- ``fused``: θ, θ̂, ∇ and the momentum in flat buffers (:mod:`lowprec.flat`; the model's
  tensors become views of them), and one kernel per step that quantizes the gradient, applies
  the update, draws the noise (Box-Muller from counter-based bits) and rounds / VC-rounds the
  result, with the block exponents per exponent group: numba on CPU
  (:mod:`lowprec.kernels.numba.step`), Triton on GPU (:mod:`lowprec.kernels.triton.step`).

``build_executor(sampler, mode)``: mode ``eager``; ``fused`` (ValueError naming the key
``kernels`` when no fused step can run this sampler); ``auto`` (fused when it can, else eager
with one line on stderr saying why, once per reason and process).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lowprec.samplers.base import Sampler

__all__ = ["EagerExecutor", "build_executor", "fused_unsupported"]

_SAID: set[str] = set()


class EagerExecutor:
    """The reference: Q_G per tensor, then the rule's per-tensor update."""

    name = "eager"

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler

    def step(self, lr: float, noise: bool) -> bool:
        """One step; returns whether θ̂ is already in the params (no: prepare() writes it)."""
        s = self.sampler
        s._update(lr, s.gradients(), noise)
        return False


def fused_unsupported(sampler: Sampler) -> str | None:
    """Why the fused step cannot run ``sampler`` (None when it can)."""
    from lowprec.samplers import fused

    return fused.unsupported(sampler)


def build_executor(sampler: Sampler, mode: str) -> object:
    """The executor for ``mode`` (auto | fused | eager); see the module docstring."""
    if mode == "eager":
        return EagerExecutor(sampler)
    why = fused_unsupported(sampler)
    if why is None:
        from lowprec.samplers.fused import FusedExecutor

        return FusedExecutor(sampler)
    if mode == "fused":
        raise ValueError(f"key 'kernels': fused cannot run this sampler: {why}; use auto or eager")
    if why not in _SAID:
        _SAID.add(why)
        print(f"lowprec: sampler step runs eager: {why}", file=sys.stderr)
    return EagerExecutor(sampler)
