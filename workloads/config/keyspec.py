"""One config key as a value: :class:`Key` (type, default, choices, bounds, meaning, relevance)
and its check, with the precision keys' vocabulary (format families, tensor kinds).

Imports nothing heavy (no torch, numpy, Ray or MLflow): ``python -m orchestrator.trial`` and the
spec loader refuse a bad key or value with this and ``workloads.config.table`` before torch loads
(each input is refused in well under a second). ``workloads.config.resolve`` re-exports
:class:`Key`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: format families that ``format`` combines with ``bits`` (workloads.config.precision derives them)
FAMILIES = ("fixed", "block", "float", "mx", "int", "fp32")
#: letter of ``tensors`` -> (PrecisionSpec field, its override key)
TENSOR_KINDS = {
    "W": ("weight", "weight_format"),
    "G": ("grad", "grad_format"),
    "A": ("act", "act_format"),
    "E": ("error", "error_format"),
    "M": ("momentum", "momentum_format"),
}

#: a relevance rule: the (filled) config -> None when the key has an effect, else why not
Rule = Callable[[Mapping[str, Any]], str | None]

#: longest string a str key takes (format strings, hidden widths, paths)
MAX_STR_LEN = 4096


def _show(value: Any) -> str:
    """A short, safe rendering of a user's value for a one-line message."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Key:
    """One config key: its type, default, allowed values, bounds, meaning and relevance.

    ``type`` is one of int, float, str, bool. ``default=None`` with ``optional=True`` means
    "not set" (the workload or the precision derivation decides). ``choices`` limits a str key;
    ``min``/``max`` bound a number (inclusive; ``min_open``: strictly above ``min``); floats
    must be finite. ``applies`` is the key's relevance rule (None: always has an effect).
    """

    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    optional: bool = False
    applies: Rule | None = None
    min_open: bool = False

    def check(self, name: str, value: Any) -> Any:
        """``value`` as this key's type; ``ValueError`` naming ``name`` when it can't be."""
        if value is None:
            if self.optional:
                return None
            raise ValueError(f"key {name!r}: a value is required ({self.help})")
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError(f"key {name!r}: expected true or false, got {_show(value)}")
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"key {name!r}: expected an integer, got {_show(value)}")
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"key {name!r}: expected a number, got {_show(value)}")
            try:
                value = float(value)
            except OverflowError:
                raise ValueError(f"key {name!r}: {_show(value)} is not a usable number") from None
            if not math.isfinite(value):
                raise ValueError(f"key {name!r}: expected a finite number, got {value!r}")
        elif self.type is str:
            if not isinstance(value, str):
                raise ValueError(f"key {name!r}: expected a string, got {_show(value)}")
            if len(value) > MAX_STR_LEN:
                raise ValueError(f"key {name!r}: longer than {MAX_STR_LEN} characters")
        if self.choices is not None and value not in self.choices:
            raise ValueError(
                f"key {name!r}: {_show(value)} is not one of {', '.join(map(str, self.choices))}"
            )
        if self.min is not None and (value <= self.min if self.min_open else value < self.min):
            below = "not above" if self.min_open else "below"
            raise ValueError(f"key {name!r}: {_show(value)} is {below} the minimum {self.min:g}")
        if self.max is not None and value > self.max:
            raise ValueError(f"key {name!r}: {_show(value)} is above the maximum {self.max:g}")
        return value

    @property
    def numeric(self) -> bool:
        return self.type in (int, float)
