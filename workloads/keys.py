"""Every config key a trial understands: one name everywhere (YAML, Ray config, MLflow param,
Parquet column). ``COMMON_KEYS`` holds the keys shared by all workloads; a workload module adds
its own in its ``KEYS``. ``resolve_config`` validates a flat dict and fills in the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workloads import WORKLOADS, get_workload


@dataclass(frozen=True)
class Key:
    """One config key: its type, default, allowed values and meaning.

    ``type`` is one of int, float, str, bool. ``default=None`` with ``optional=True`` means
    "not set" (the workload or the precision spec decides). ``choices`` limits a str key;
    ``min``/``max`` bound a number (inclusive).
    """

    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    optional: bool = False

    def check(self, name: str, value: Any) -> Any:
        """``value`` as this key's type; ``ValueError`` naming ``name`` when it can't be."""
        if value is None:
            if self.optional:
                return None
            raise ValueError(f"key {name!r}: a value is required ({self.help})")
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError(f"key {name!r}: expected true or false, got {value!r}")
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"key {name!r}: expected an integer, got {value!r}")
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"key {name!r}: expected a number, got {value!r}")
            value = float(value)
        elif self.type is str and not isinstance(value, str):
            raise ValueError(f"key {name!r}: expected a string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(
                f"key {name!r}: {value!r} is not one of {', '.join(map(str, self.choices))}"
            )
        if self.min is not None and value < self.min:
            raise ValueError(f"key {name!r}: {value!r} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            raise ValueError(f"key {name!r}: {value!r} is above the maximum {self.max}")
        return value


def _fmt(help: str) -> Key:
    return Key(str, None, help, optional=True)


COMMON_KEYS: dict[str, Key] = {
    # what runs
    "workload": Key(str, None, "the workload", choices=tuple(WORKLOADS)),
    "sampler": Key(
        str,
        "sgld",
        "update rule: SG-MCMC samplers or optimisation baselines",
        choices=("sgld", "sghmc", "sgd", "svrg", "halp"),
    ),
    "seed": Key(int, 0, "seed of the trial's one generator", min=0),
    "device": Key(
        str, "auto", "auto (cuda when present), cpu or cuda", choices=("auto", "cpu", "cuda")
    ),
    # precision (lowprec.precision.PrecisionSpec.from_config reads these)
    "format": Key(
        str,
        "fp32",
        "format family (fixed, block, float, fp32) combined with `bits`, or a full format string",
    ),
    "bits": Key(
        int, 8, "word length for `format` (fixed/block: wl; float: 1+exp+man)", min=2, max=32
    ),
    "frac_bits": Key(int, None, "fixed point: fractional bits (default bits - 2)", optional=True),
    "exp_bits": Key(
        int, None, "small float: exponent bits (default from `bits`)", optional=True, min=2, max=8
    ),
    "block_size": Key(
        int,
        None,
        "block fp: values sharing one exponent (default: per row, dim 0)",
        optional=True,
        min=1,
    ),
    "tensors": Key(
        str, "WG", "which tensor kinds `format`+`bits` quantize: letters of W, G, A, E, M"
    ),
    "weight_format": _fmt("format string for weights W (overrides format+bits)"),
    "grad_format": _fmt("format string for gradients G"),
    "act_format": _fmt("format string for activations A (forward)"),
    "error_format": _fmt("format string for errors E (backward)"),
    "momentum_format": _fmt("format string for SGHMC momentum M"),
    "accumulator": Key(
        str,
        "full",
        "full (LP-F), low (naive LP-L) or vc (variance-corrected LP-L)",
        choices=("full", "low", "vc"),
    ),
    "rounding": Key(str, "stochastic", "rounding of quantizers", choices=("stochastic", "nearest")),
    "vc_mode": Key(
        str,
        "joint",
        "SGHMC vc: joint (keeps the stationary law) or independent (the paper's form)",
        choices=("joint", "independent"),
    ),
    "momentum_rescale": Key(
        bool,
        None,
        "SGHMC low/vc: keep momentum rescaled per layer (default: on for deep workloads)",
        optional=True,
    ),
    # step sizes and schedules
    "lr": Key(
        float, 1e-3, "step size on the mean loss (deep convention, ALGORITHMS.md §5)", min=0.0
    ),
    "schedule": Key(
        str, "constant", "step-size schedule", choices=("constant", "decay", "cyclical")
    ),
    "cycles": Key(int, 1, "cyclical schedule: number of cycles M", min=1),
    "explore_fraction": Key(
        float, 0.0, "cyclical schedule: fraction β of each cycle without noise", min=0.0, max=1.0
    ),
    "temperature": Key(float, 1.0, "posterior temperature T", min=0.0),
    "friction": Key(float, 3.0, "SGHMC friction γ", min=0.0),
    "inverse_mass": Key(float, 1.0, "SGHMC inverse mass u", min=0.0),
    "prior_std": Key(
        float,
        None,
        "Gaussian prior std σ (weight decay 1/(Nσ²)); unset = flat",
        optional=True,
        min=0.0,
    ),
    # run length and sample collection
    "steps": Key(int, 10000, "synthetic and logreg workloads: number of steps", min=1),
    "epochs": Key(int, 10, "deep workloads: number of epochs", min=1),
    "batch_size": Key(int, 128, "minibatch size", min=1),
    "burn_in": Key(
        int, 0, "steps (synthetic and logreg) or epochs (deep) before samples are collected", min=0
    ),
    "thin": Key(
        int,
        1,
        "collect one sample every `thin` steps (synthetic and logreg) or epochs (deep)",
        min=1,
    ),
    "num_samples": Key(
        int,
        None,
        "cap on collected samples kept in the ensemble (latest kept)",
        optional=True,
        min=1,
    ),
}


#: the samplers a workload runs unless its module says otherwise (``SAMPLERS``)
DEEP_SAMPLERS: tuple[str, ...] = ("sgld", "sghmc", "sgd")


def keys_for(workload: str) -> dict[str, Key]:
    """The keys ``workload`` understands: the common ones plus its own."""
    return {**COMMON_KEYS, **getattr(get_workload(workload), "KEYS", {})}


def resolve_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` validated against the keys of its workload, with every default filled in.

    Raises ``ValueError`` naming the first offending key: unknown keys, wrong types, values out
    of range, a sampler the workload does not run (its module's ``SAMPLERS``), impossible
    precision combinations (checked by building the PrecisionSpec), and whatever the workload's
    optional ``validate(config)`` rejects.
    """
    if "workload" not in raw:
        raise ValueError(f"key 'workload': missing; choose one of {', '.join(WORKLOADS)}")
    workload = COMMON_KEYS["workload"].check("workload", raw["workload"])
    known = keys_for(workload)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(
            f"key {unknown[0]!r}: unknown for workload {workload!r} "
            f"(known keys: {', '.join(sorted(known))})"
        )
    config = {name: key.check(name, raw.get(name, key.default)) for name, key in known.items()}
    module = get_workload(workload)
    samplers = getattr(module, "SAMPLERS", DEEP_SAMPLERS)
    if config["sampler"] not in samplers:
        raise ValueError(
            f"key 'sampler': {config['sampler']!r} does not run on workload {workload!r} "
            f"(choose one of {', '.join(samplers)})"
        )
    from lowprec.precision import PrecisionSpec  # validates formats and their combinations

    PrecisionSpec.from_config(config)
    validate = getattr(module, "validate", None)
    if validate is not None:
        validate(config)
    return config
