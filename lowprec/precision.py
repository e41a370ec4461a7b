"""The precision of one trial (ALGORITHMS.md §3): the format of each tensor kind (W weights,
G gradients, A activations, E errors, M momentum), the accumulator mode and the rounding, as one
typed value. The config layer derives it from the flat keys (``workloads.precision``).

Imports no torch (only ``lowprec.formats``): building a ``PrecisionSpec`` is the check of an
impossible combination, and the command line makes it before torch loads (issue 10).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lowprec.formats import FP32, Format

__all__ = ["ACCUMULATORS", "ROUNDINGS", "PrecisionSpec"]

ACCUMULATORS = ("full", "low", "vc")
#: the quantizers' roundings (``lowprec.quantize`` re-exports it)
ROUNDINGS = ("stochastic", "nearest")


@dataclass(frozen=True)
class PrecisionSpec:
    """Formats of weights W, gradients G, activations A, errors E and momentum M, and the
    accumulator: ``full`` (LP-F, float32 master weights), ``low`` (naive LP-L) or ``vc``
    (variance-corrected LP-L); ``rounding`` of the quantizers (stochastic or nearest)."""

    weight: Format = field(default_factory=FP32)
    grad: Format = field(default_factory=FP32)
    act: Format = field(default_factory=FP32)
    error: Format = field(default_factory=FP32)
    momentum: Format = field(default_factory=FP32)
    accumulator: str = "full"
    rounding: str = "stochastic"

    def __post_init__(self) -> None:
        if self.accumulator not in ACCUMULATORS:
            raise ValueError(
                f"key 'accumulator': {self.accumulator!r} is not one of {', '.join(ACCUMULATORS)}"
            )
        if self.rounding not in ROUNDINGS:
            raise ValueError(
                f"key 'rounding': {self.rounding!r} is not one of {', '.join(ROUNDINGS)}"
            )
        if self.accumulator != "full" and self.weight.is_identity:
            raise ValueError(
                f"key 'accumulator': {self.accumulator!r} keeps the weights in low precision, "
                "but the weight format is fp32; choose a low-precision `format` with W in "
                "`tensors` (or `weight_format`), or accumulator 'full'"
            )

    @property
    def bits_per_param(self) -> float:
        """Storage bits per stored weight (``weight.bits``; 32 for ``full``, whose master copy is
        float32)."""
        return 32.0 if self.accumulator == "full" else self.weight.bits
