"""The precision of one trial (ALGORITHMS.md §3): the format of each tensor kind (W weights,
G gradients, A activations, E errors, M momentum), the accumulator mode and the rounding, as one
typed value. The config layer derives it from the flat keys (``workloads.config.precision``).

Imports no torch (only ``lowprec.formats``): building a ``PrecisionSpec`` is the check of an
impossible combination, and the command line makes it before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lowprec.formats import FP32, Format

__all__ = [
    "ACCUMULATORS",
    "ACCUMULATOR_CODES",
    "KERNEL_MODES",
    "ROUNDINGS",
    "VARIANCE_REDUCED",
    "PrecisionSpec",
    "check_method",
]

#: the accumulators (ALGORITHMS.md §5): every layer takes the words from here
ACCUMULATORS = ("full", "low", "vc")
#: the accumulators' integer codes in the fused kernels (numba and Triton take no strings)
ACCUMULATOR_CODES = {name: code for code, name in enumerate(ACCUMULATORS)}
#: which code path runs a trial's quantizers and steps: fused kernels where the device has them
KERNEL_MODES = ("auto", "fused", "eager")
#: the quantizers' roundings (``lowprec.quantize`` re-exports it)
ROUNDINGS = ("stochastic", "nearest")
#: SGHMC's ``vc`` pairs: (v', θ') from their joint law, or each on its own (the paper's form)
VC_MODES = ("joint", "independent")


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


#: the variance-reduced optimisers (lowprec.samplers.halp)
VARIANCE_REDUCED = ("svrg", "halp")


def check_method(mode: str, precision: PrecisionSpec) -> None:
    """``ValueError`` naming the key when ``mode`` (svrg | halp) cannot run with ``precision``.

    HALP keeps a float32 anchor plus offsets in the weight format's bits: that is
    ``accumulator: low`` with a low-precision weight format (its full-precision limit is SVRG).
    SVRG takes ``full`` (SVRG) or ``low`` (LP-SVRG, which needs a low-precision weight format).
    """
    if mode not in VARIANCE_REDUCED:
        raise ValueError(f"key 'sampler': {mode!r} is not one of {', '.join(VARIANCE_REDUCED)}")
    if mode == "halp":
        if precision.weight.is_identity:
            raise ValueError(
                "key 'sampler': halp stores its offsets in the weight format's bits: set a "
                "low-precision weight format (e.g. format: fixed, bits: 8)"
            )
        if precision.accumulator != "low":
            raise ValueError(
                f"key 'accumulator': halp stores its iterate as a float32 anchor plus offsets in "
                f"the weight format's bits, which is accumulator: low (got "
                f"{precision.accumulator!r}); the full-precision method is sampler: svrg"
            )
    if mode == "svrg" and precision.accumulator == "vc":
        raise ValueError("key 'accumulator': svrg supports full (SVRG) and low (LP-SVRG), not vc")
    if mode == "svrg" and precision.accumulator == "low" and precision.weight.is_identity:
        raise ValueError(
            "key 'accumulator': LP-SVRG (low) needs a low-precision weight format (e.g. "
            "format: fixed, bits: 8), or accumulator full for SVRG"
        )
