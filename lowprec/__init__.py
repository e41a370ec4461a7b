"""lowprec: the numerics of low-precision Bayesian deep learning, in plain torch.

Number formats (``parse_format``), quantizers (``quantize``, the autograd ``Quantizer``), the
variance-corrected quantizer (``vc_quantize``) and the per-trial ``PrecisionSpec``; see
docs/numerics.md and ALGORITHMS.md §1-4.

The package imports lazily (PEP 562): each name below is imported from its module on first
use, so that ``lowprec.formats`` and ``lowprec.precision``, which import no torch, parse a
format and check a precision combination before torch loads. ``from lowprec import
X`` works as it always did.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

#: exported name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "FP32": "lowprec.formats",
    "BlockFloat": "lowprec.formats",
    "FixedPoint": "lowprec.formats",
    "Format": "lowprec.formats",
    "SmallFloat": "lowprec.formats",
    "parse_format": "lowprec.formats",
    "PrecisionSpec": "lowprec.precision",
    "Quantizer": "lowprec.quantize",
    "quantize": "lowprec.quantize",
    "quantize_act_error": "lowprec.quantize",
    "vc_quantize": "lowprec.vc",
}

__all__ = [
    "FP32",
    "BlockFloat",
    "FixedPoint",
    "Format",
    "PrecisionSpec",
    "Quantizer",
    "SmallFloat",
    "parse_format",
    "quantize",
    "quantize_act_error",
    "vc_quantize",
]


def __getattr__(name: str) -> Any:
    """An exported name, imported from its module on first use (then kept as an attribute)."""
    module = _EXPORTS.get(name)
    if module is None:  # `from lowprec import samplers` then imports the submodule
        raise AttributeError(f"module 'lowprec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(types.ModuleType):
    """``lowprec.quantize`` is the function, as it was when this package imported eagerly.

    The submodule ``lowprec.quantize`` has the same name, and the import system binds a
    submodule to its parent's attribute when it first loads it (after any ``from lowprec
    import quantize`` may have bound the function): that binding keeps the function instead.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "quantize" and isinstance(value, types.ModuleType):
            value = value.quantize
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
