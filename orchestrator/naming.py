"""How a sweep's child runs and its configurations are named: by the values of the keys that
vary within the sweep.

A *configuration* is the set of trials that differ only in ``seed``; its name is the child
runs' name without the seed (:func:`configuration_name`), and a child run's name is its
configuration's name followed by ``seed=N`` when the seed varies (:func:`child_name`). One
function names both, so the ``configuration`` column of trials.parquet, the MLflow child runs
and the answer's lines agree.

Each function takes a trial's ``TrialSpec`` (whose record was made from its one resolution) or
a plain config (resolved here, for callers without a trial: the driver's display, backfill)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workloads.config import TrialSpec, effective_params
from workloads.config.precision import precision_of

if TYPE_CHECKING:
    from orchestrator.spec import Spec

#: the key whose values repeat a configuration (never part of its name)
SEED_KEY = "seed"
#: the precision keys a run name shows as one effective weight format (``block<8>``)
FORMAT_KEYS = ("format", "bits", "frac_bits", "exp_bits", "block_size")


def name_keys(spec: Spec) -> tuple[str, ...]:
    """The keys that vary within the sweep: a child run is named by their values."""
    if hasattr(spec, "searched_keys"):
        return tuple(spec.searched_keys())
    return tuple(axis.key for axis in spec.space.values())


def configuration_name(config: Mapping[str, Any], keys: Sequence[str] = ()) -> str:
    """The configuration's name: the variant, then the value of every varying key but
    ``seed`` (``block<5> vc``); ``trial`` when nothing else varies."""
    return run_name(config, [k for k in keys if k != SEED_KEY])


def child_name(config: Mapping[str, Any], keys: Sequence[str] = ()) -> str:
    """The MLflow child run's name: :func:`configuration_name`, then ``seed=N`` when the seed
    varies (``block<5> vc seed=1``)."""
    name = configuration_name(config, keys)
    seed = config.get(SEED_KEY)
    if SEED_KEY not in keys or seed is None:
        return name
    shown = run_name({SEED_KEY: seed}, [SEED_KEY])
    return shown if name == "trial" else f"{name} {shown}"


def _record(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The record of a ``TrialSpec`` (made from its one resolution), or of a plain config
    resolved here; None when it cannot resolve (a failed trial's raw config)."""
    if isinstance(config, TrialSpec):
        return config.record
    try:
        return effective_params(config)
    except (ValueError, KeyError, TypeError):
        return None


def trial_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's effective configuration: its record (``workloads.config.effective_params``:
    the relevant keys, the effective per-tensor formats, ``bits_per_param``), never a ``None``."""
    record = _record(config)
    params = config if record is None else record
    return {k: v for k, v in params.items() if v is not None}


def _weight_format(config: Mapping[str, Any]) -> str | None:
    record = _record(config)
    if record is not None and record.get("weight_format") is not None:
        return str(record["weight_format"])
    try:
        return str(precision_of(dict(config)).weight)
    except Exception:
        return None


def _name_part(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"{key}={str(value).lower()}"
    if isinstance(value, float):
        return f"{key}={value:.4g}"
    if isinstance(value, int):
        return f"{key}={value}"
    return str(value)  # choices and format strings say what they are: sgld, vc, fixed<8,3>


def run_name(config: Mapping[str, Any], keys: Sequence[str] = ()) -> str:
    """What distinguishes a trial within its sweep: its variant, then the value of every
    searched key that applies to it (``None`` ones skipped), the precision keys
    (``format``, ``bits`` ...) shown as the one weight format they make:

        run_name({"format": "block", "bits": 8, "accumulator": "vc", "seed": 1, ...},
                 ["format", "bits", "accumulator", "seed"]) == "block<8> vc seed=1"

    ``seed`` comes last whatever its place in ``keys``: the name is the configuration's
    (:func:`configuration_name`) followed by the seed, wherever it is shown.
    """
    trial = config
    if isinstance(config, TrialSpec):  # its resolved config: irrelevant keys None, not shown
        config = config.resolved
    parts: list[str] = []
    if config.get("variant"):
        parts.append(str(config["variant"]))
    shown_format = False
    keys = [*(k for k in keys if k != SEED_KEY), *(k for k in keys if k == SEED_KEY)]
    for key in keys:
        value = config.get(key)
        if key == "variant" or value is None:
            continue
        if key in FORMAT_KEYS:
            if shown_format:
                continue
            shown_format = True
            weight = _weight_format(trial)
            if weight is not None:
                if weight != config.get("variant"):  # variant fp32 with format fp32: "fp32"
                    parts.append(weight)
                continue
        parts.append(_name_part(key, value))
    return " ".join(parts) or "trial"
