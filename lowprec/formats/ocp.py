"""OCP element formats (ALGORITHMS.md §11): the FP8/FP6/FP4 elements (:data:`ELEMENTS`,
:class:`ElementFloat`) and the integer elements of MXINT8 and ``int<B>`` (:class:`IntElement`),
the grids the scaled formats round on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lowprec.formats.base import Format
from lowprec.formats.classic import SmallFloat

if TYPE_CHECKING:
    import torch


#: OCP element formats: name -> (exponent bits, mantissa bits, emax, largest value). E4M3 (the
#: FN variant) spends its all-ones exponent on normal values and has no inf, so its emax is
#: bias + 1 and its top code S.1111.111 is NaN (largest 1.75·2^8); the FP6/FP4 elements have no
#: special values at all (largest (2 - 2^-man)·2^(bias+1)); E5M2 is IEEE-like (emax = bias).
ELEMENTS: dict[str, tuple[int, int, int, float]] = {
    "fp8_e4m3": (4, 3, 8, 448.0),
    "fp8_e5m2": (5, 2, 15, 57344.0),
    "fp6_e2m3": (2, 3, 2, 7.5),
    "fp6_e3m2": (3, 2, 4, 28.0),
    "fp4_e2m1": (2, 1, 2, 6.0),
}
_ELEMENT_OF = {(e, m): name for name, (e, m, _, _) in ELEMENTS.items()}


@dataclass(frozen=True)
class ElementFloat(SmallFloat):
    """An OCP element format (OCP Microscaling v1.0, §5.3; OCP 8-bit FP): ``fp8_e4m3``,
    ``fp8_e5m2``, ``fp6_e2m3``, ``fp6_e3m2``, ``fp4_e2m1``.

    A :class:`SmallFloat` (bias 2^(exp-1) - 1, emin = 1 - bias, subnormals on 2^(emin-man)) whose
    emax and largest value are OCP's (:data:`ELEMENTS`). Conversion saturates: finite values and
    ±inf beyond the range go to ±max_value, NaN stays NaN (the quantizers clamp before rounding).
    Every quantizer, fused kernel and step that takes a ``float<exp,man>`` takes these too: the
    grid is the same function of (emin, emax, man, max_value).
    """

    def __post_init__(self) -> None:
        if (self.exp, self.man) not in _ELEMENT_OF:
            raise ValueError(
                f"format e{self.exp}m{self.man}: not an OCP element; expected one of "
                f"{', '.join(ELEMENTS)}"
            )

    def __str__(self) -> str:
        return _ELEMENT_OF[(self.exp, self.man)]

    @property
    def emax(self) -> int:
        return ELEMENTS[str(self)][2]

    @property
    def max_value(self) -> float:
        return ELEMENTS[str(self)][3]


def element(name: str) -> ElementFloat:
    """The :class:`ElementFloat` called ``name`` (a key of :data:`ELEMENTS`)."""
    exp, man, _, _ = ELEMENTS[name]
    return ElementFloat(exp, man)


@dataclass(frozen=True)
class IntElement(Format):
    """Symmetric integers ``q·Δ``, |q| <= 2^(bits-1) - 1, Δ = 2^-frac: the element of MXINT8
    (bits 8, frac 6: int8·2^-6, kept symmetric at ±127) and of ``int<B>`` (frac 0). Not a
    format string of its own: it lives inside a scaled format."""

    nbits: int
    frac: int = 0

    def __str__(self) -> str:
        return "int8" if (self.nbits, self.frac) == (8, 6) else f"int{self.nbits}"

    @property
    def bits(self) -> float:
        return float(self.nbits)

    @property
    def emax(self) -> int:
        """The exponent of the largest power of two on the grid below max: 0 for MXINT8."""
        return self.nbits - 2 - self.frac

    @property
    def max_units(self) -> float:
        return float(2 ** (self.nbits - 1) - 1)

    @property
    def delta(self) -> float:
        return math.ldexp(1.0, -self.frac)

    @property
    def max_value(self) -> float:
        return self.max_units * self.delta

    def _grid(self, x: torch.Tensor) -> tuple[float, float, float]:
        return self.delta, -self.max_value, self.max_value


MXINT8 = IntElement(8, 6)
