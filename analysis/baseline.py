"""Which configuration is the baseline, what a cost is, and how close is close enough.

- :func:`select_baseline`: the one rule that picks the baseline configuration from a spec's
  ``baseline:`` (a variant name or a mapping of config keys to values), or by default the one
  configuration whose recorded formats are all fp32; ``orchestrator`` calls it at ``--dry-run``.
- :data:`DEFAULT_TOLERANCE`: the tolerance τ per metric when the spec gives none.
- :func:`is_cost`: cost objectives are compared by value, never for equivalence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from analysis.load import NOT_CONFIGURATION

#: tolerance τ per metric, in the metric's own units, when the spec gives none (an error of
#: 0.005 is half a point: five images of a 1,000-image test set)
DEFAULT_TOLERANCE: dict[str, float] = {
    "test_error": 0.005,
    "last_test_error": 0.005,
    "test_nll": 0.02,
    "test_ece": 0.01,
    "test_brier": 0.005,
    "ood_auroc": 0.01,
}

#: metrics that cannot be negative: their intervals are clipped at 0 (error-like ones and ECE,

#: cost objectives: compared by value, never for equivalence (a name or a name prefix)
COST_NAMES: tuple[str, ...] = ("bits_per_param", "ensemble_bits", "state_bytes", "bits")
COST_PREFIXES: tuple[str, ...] = ("bops_", "energy_")

#: the format keys whose values decide the default baseline (all fp32), besides ``format``
FORMAT_KEYS: tuple[str, ...] = (
    "weight_format",
    "grad_format",
    "act_format",
    "error_format",
    "momentum_format",
)
FP32_NAMES = frozenset({"fp32", "float32"})


def is_cost(metric: str) -> bool:
    """Whether ``metric`` is a cost (compared by value, never tested for equivalence)."""
    return metric in COST_NAMES or metric.startswith(COST_PREFIXES)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(a: Any, b: Any) -> bool:
    """Spec value against recorded value: numbers by value (32 == 32.0), else as strings."""
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return str(a).lower() == str(b).lower()
    if isinstance(a, int | float | np.number) and isinstance(b, int | float | np.number):
        return float(a) == float(b)
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a).strip() == str(b).strip()


def _all_fp32(config: Mapping[str, Any]) -> bool:
    values = [config.get(k) for k in ("format", *FORMAT_KEYS)]
    return all(_missing(v) or str(v).strip().lower() in FP32_NAMES for v in values)


def select_baseline(baseline_spec: Any, configs: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indices of the configurations ``baseline_spec`` selects (one per configuration).

    ``configs``: one dict ``{key: value}`` per configuration (incl. ``variant``); entries that
    differ only in ``seed`` or ``device`` count as one configuration, and only the first index
    of each is returned. ``baseline_spec``:

    - a string: the configurations whose ``variant`` is that name (when no configuration has
      that variant, those whose ``configuration`` name is that string);
    - a mapping ``{key: value}``: the configurations whose every named key has that value
      (numbers compare by value; a key the configuration lacks does not match);
    - None (the default): the configurations whose recorded formats (``format`` and
      weight/grad/act/error/momentum_format, those present and set) are all ``fp32``, but only
      when exactly one configuration is: otherwise ``[]``.

    The caller refuses 0 or more than 1 match for an explicit baseline.
    """
    seen: dict[tuple, int] = {}
    for i, config in enumerate(configs):
        key = tuple(sorted((k, str(v)) for k, v in config.items() if k not in NOT_CONFIGURATION))
        seen.setdefault(key, i)
    distinct = sorted(seen.values())
    if baseline_spec is None:
        found = [i for i in distinct if _all_fp32(configs[i])]
        return found if len(found) == 1 else []
    if isinstance(baseline_spec, str):
        found = [i for i in distinct if _same(configs[i].get("variant"), baseline_spec)]
        if not found:
            found = [i for i in distinct if _same(configs[i].get("configuration"), baseline_spec)]
        return found
    if isinstance(baseline_spec, Mapping):
        if not baseline_spec:
            raise ValueError("spec key 'baseline': an empty mapping selects nothing")
        return [
            i
            for i in distinct
            if all(k in configs[i] and _same(configs[i][k], v) for k, v in baseline_spec.items())
        ]
    raise ValueError(
        f"spec key 'baseline': expected a variant name or a mapping of config keys to values, "
        f"got {baseline_spec!r}"
    )
