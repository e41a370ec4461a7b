"""Every config key a trial understands: the one table of names, types, defaults, choices,
bounds and relevance (one name everywhere: YAML, Ray config, MLflow param, Parquet column).

``COMMON_KEYS`` holds the keys shared by all workloads; a workload's table
(``workloads.config.table``) adds its own keys and overrides defaults (``keys_for``). Each key
states once, in its ``applies`` rule, when it has an effect on a trial; the rule returns None
when the key applies and otherwise a one-line reason (``"sampler sgld has no friction"``).

- :func:`resolve_config`: a raw flat config validated, every (per-workload) default filled in,
  and every key that has no effect on the trial set to None.
- :func:`irrelevant_keys`: key -> the reason it has no effect on a (filled) config.
- :func:`effective_params`: the record of one trial: the relevant keys, the effective format
  string of every tensor kind the trial has, and ``bits_per_param`` (:func:`record_of` for a
  config already resolved).
- :func:`check_keys`: the part of :func:`resolve_config` that reads no workload module (names,
  types, bounds, choices, the sampler, ``tensors``, the formats and their combination): it
  imports no torch (``lowprec.formats`` and ``lowprec.precision`` are torch-free), so that the
  command line refuses a bad key, value, format or combination before torch loads.

What a workload's trials have (read by the rules) is its
:class:`workloads.config.table.WorkloadKeys`: ``workloads.config.table`` holds the project's
workloads' tables; a workload registered at run time states them as module attributes (``KEYS``,
``DEFAULTS``, ``SAMPLERS``, ``OPTIMISERS``, ``RUN_LENGTH``, ``TENSORS``, ``MINIBATCHES``,
``HAS_PRIOR``).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

from lowprec.formats import SCALE_RULES, MXFormat
from lowprec.precision import ACCUMULATORS, KERNEL_MODES, ROUNDINGS, VC_MODES
from lowprec.schedules import SCHEDULES
from workloads import WORKLOADS, get_workload
from workloads.config.checks import BUILTIN as BUILTIN_CHECKS
from workloads.config.keyspec import FAMILIES, TENSOR_KINDS, Key, Rule
from workloads.config.keyspec import MAX_STR_LEN as MAX_STR_LEN
from workloads.config.precision import precision_of
from workloads.config.runspec import OPTIMISERS, SAMPLERS
from workloads.config.table import BUILTIN, WorkloadKeys
from workloads.config.table import DEEP_SAMPLERS as DEEP_SAMPLERS

# ----------------------------------------------------------------------------------------------
# what a workload's trials have (its table: workloads.config.table, or its module's attributes)
# ----------------------------------------------------------------------------------------------


def workload_keys(workload: str) -> WorkloadKeys:
    """The key table of ``workload``: ``workloads.config.table``'s for the project's workloads
    (torch not imported), else read from its module; ``ValueError`` naming the choices when
    ``workload`` is unknown."""
    if workload not in WORKLOADS:
        return WorkloadKeys.of_module(get_workload(workload))  # raises the registry's error
    module = WORKLOADS[workload]
    table = BUILTIN.get(module)
    return table if table is not None else WorkloadKeys.of_module(importlib.import_module(module))


def _table(config: Mapping[str, Any]) -> WorkloadKeys:
    return workload_keys(config["workload"])


def run_length_key(workload: str) -> str:
    """``steps`` or ``epochs``: how ``workload`` counts its run length."""
    return workload_keys(workload).run_length


def tensor_kinds(config: Mapping[str, Any]) -> str:
    """The tensor kinds this trial has, in the order W G A E M: weights and gradients always,
    activations and errors for networks (the workload's ``TENSORS``), momentum for sghmc."""
    kinds = _table(config).tensors
    if config.get("sampler") == "sghmc":
        kinds += "M"
    return "".join(k for k in "WGAEM" if k in kinds)


def _collects_samples(config: Mapping[str, Any]) -> bool:
    return config.get("sampler") not in _table(config).optimisers


# ----------------------------------------------------------------------------------------------
# relevance rules (each key's rule is stated once, in the table below)
# ----------------------------------------------------------------------------------------------


def _sghmc(what: str) -> Rule:
    def rule(c: Mapping[str, Any]) -> str | None:
        return None if c["sampler"] == "sghmc" else f"sampler {c['sampler']} has no {what}"

    rule.__doc__ = "Has an effect with: sampler sghmc."
    return rule


def _vc_mode(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: sampler sghmc with accumulator vc."""
    if c["sampler"] != "sghmc":
        return f"sampler {c['sampler']} has no momentum"
    return None if c["accumulator"] == "vc" else f"accumulator is {c['accumulator']}, not vc"


def _momentum_rescale(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: sampler sghmc with accumulator low or vc."""
    if c["sampler"] != "sghmc":
        return f"sampler {c['sampler']} has no momentum"
    if c["accumulator"] == "full":
        return "accumulator is full: the momentum is float32"
    return None


def _temperature(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: samplers that add noise (not sgd, svrg, halp)."""
    if c["sampler"] in OPTIMISERS:
        return f"sampler {c['sampler']} is an optimiser: it adds no noise"
    return None


def _prior(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: workloads with a prior (not the synthetic targets)."""
    if _table(c).has_prior:
        return None
    return f"workload {c['workload']} defines the whole potential U (no prior)"


def _cyclical(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: schedule cyclical."""
    return None if c["schedule"] == "cyclical" else f"schedule is {c['schedule']}, not cyclical"


def _collection(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: samplers that collect samples (not logreg's optimisers)."""
    if not _collects_samples(c):
        return f"sampler {c['sampler']} is an optimiser: its ensemble is its final iterate"
    return None


def _burn_in_thin(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: schedules other than cyclical, samplers that collect samples."""
    if c["schedule"] == "cyclical":
        return "schedule cyclical collects at its cycles' sample points"
    return _collection(c)


def _run_length(name: str) -> Rule:
    def rule(c: Mapping[str, Any]) -> str | None:
        counted = run_length_key(c["workload"])
        return None if counted == name else f"workload {c['workload']} counts {counted}"

    rule.__doc__ = f"Has an effect with: workloads that count {name}."
    return rule


def _minibatches(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: workloads that draw minibatches."""
    if _table(c).minibatches:
        return None
    return f"workload {c['workload']} draws no minibatches"


def _has_kind(letter: str, what: str) -> Rule:
    def rule(c: Mapping[str, Any]) -> str | None:
        if letter in tensor_kinds(c):
            return None
        if letter == "M":
            return f"sampler {c['sampler']} has no momentum"
        return f"workload {c['workload']} has no {what}"

    rule.__doc__ = (
        "Has an effect with: sampler sghmc."
        if letter == "M"
        else f"Has an effect with: workloads with {what} (networks)."
    )
    return rule


#: tensor kind letter -> its override key
KIND_KEYS: dict[str, str] = {letter: key for letter, (_, key) in TENSOR_KINDS.items()}
#: the family key that only that family reads
FAMILY_KEYS: dict[str, str] = {"frac_bits": "fixed", "exp_bits": "float", "block_size": "block"}


def format_takers(c: Mapping[str, Any]) -> str:
    """The kinds that take ``format`` (+ ``bits``): those in ``tensors`` that this trial has
    and that no ``*_format`` key overrides."""
    tensors = c.get("tensors") or ""
    return "".join(k for k in tensor_kinds(c) if k in tensors and c.get(KIND_KEYS[k]) is None)


def family(c: Mapping[str, Any]) -> str | None:
    """``format``'s family when it is one (fixed, block, float, fp32), else None (a full
    format string)."""
    value = c.get("format")
    if not isinstance(value, str):
        return None
    name = value.strip().lower()
    return name if name in FAMILIES else None


def _format(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: a kind in tensors that the trial has and no *_format overrides."""
    if format_takers(c):
        return None
    tensors = "".join(k for k in tensor_kinds(c) if k in (c.get("tensors") or ""))
    if not tensors:
        return f"tensors names no tensor kind this trial has ({tensor_kinds(c)})"
    return f"every kind in tensors ({tensors}) is overridden by its *_format key"


def _bits(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: format is a family fixed, block or float (and has an effect)."""
    why = _format(c)
    if why is not None:
        return f"format has no effect: {why}"
    fam = family(c)
    if fam is None:
        return f"format {c.get('format')!r} is a full format string"
    if fam == "fp32":
        return "format is fp32"
    return None


def _family_key(name: str) -> Rule:
    def rule(c: Mapping[str, Any]) -> str | None:
        why = _bits(c)
        if why is not None:
            return why
        fam = family(c)
        return None if fam == FAMILY_KEYS[name] else f"format is {fam}, not {FAMILY_KEYS[name]}"

    rule.__doc__ = f"Has an effect with: format family {FAMILY_KEYS[name]}."
    return rule


def _tensors(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: format has an effect and is not fp32 (or M follows low weights)."""
    if all(c.get(KIND_KEYS[k]) is not None for k in tensor_kinds(c)):
        return "every tensor kind is overridden by its *_format key"
    if not format_takers(c):  # tensors itself leaves format without effect: it decides
        return None
    if family(c) != "fp32":
        return None
    # fp32 for the kinds in tensors; but momentum not in tensors takes the low-precision
    # weight format under low/vc, so then tensors still decides M
    if "M" in tensor_kinds(c) and c["accumulator"] != "full" and c.get("momentum_format") is None:
        return None
    return "format is fp32: every kind it names stays fp32"


def _rounding(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: some tensor kind is not fp32."""
    if any(not f.is_identity for f in _formats(c).values()):
        return None
    return "every tensor kind is fp32: nothing is rounded"


def _scale_rule(c: Mapping[str, Any]) -> str | None:
    """Has an effect with: a tensor kind in an mx format that names no scale rule of its own."""
    mx = [f for f in _formats(c).values() if isinstance(f, MXFormat)]
    if not mx:
        return "no tensor kind of this trial is in an mx format"
    if all(f.scale_rule != (c.get("scale_rule") or "floor") for f in mx):
        return "every mx format of this trial names its own scale rule"
    return None


def _formats(c: Mapping[str, Any]) -> dict[str, Any]:
    """kind letter -> the effective Format, for the kinds this trial has."""
    spec = precision_of(c)
    return {k: getattr(spec, TENSOR_KINDS[k][0]) for k in tensor_kinds(c)}


# ----------------------------------------------------------------------------------------------
# the table
# ----------------------------------------------------------------------------------------------


def _fmt(help: str, applies: Rule | None = None) -> Key:
    return Key(str, None, help, optional=True, applies=applies)


COMMON_KEYS: dict[str, Key] = {
    # what runs
    "workload": Key(str, None, "the workload", choices=tuple(WORKLOADS)),
    "sampler": Key(
        str,
        "sgld",
        "update rule: SG-MCMC samplers or optimisation baselines",
        choices=SAMPLERS,
    ),
    "seed": Key(int, 0, "seed of the trial's one generator", min=0, max=2**32 - 1),
    "device": Key(
        str, "auto", "auto (cuda when present), cpu or cuda", choices=("auto", "cpu", "cuda")
    ),
    "kernels": Key(
        str,
        "auto",
        "code path of the quantizers and sampler steps: auto (fused when the device has one), "
        "fused or eager",
        choices=KERNEL_MODES,
    ),
    "variant": Key(
        str, None, "name of the spec's variant this trial belongs to (set by sweeps)", optional=True
    ),
    # precision (workloads.config.trialspec derives the PrecisionSpec from these)
    "format": Key(
        str,
        "fp32",
        "format family combined with `bits` (fixed, block, float; mx: 4/6/8 bits -> mx<fp4_e2m1>, "
        "mx<fp6_e2m3>, mx<fp8_e4m3>; int: int<bits> per row; fp32), or a full format string "
        "(fp8_e4m3, mx<fp8_e5m2,16>, nvfp4, int<4,g32>, ...: docs/numerics.md)",
        applies=_format,
    ),
    "bits": Key(
        int,
        8,
        "word length for `format` (fixed/block: wl; float: 1+exp+man; mx, int: the element's bits)",
        min=2,
        max=32,
        applies=_bits,
    ),
    "frac_bits": Key(
        int,
        None,
        "fixed point: fractional bits (default bits - 2)",
        optional=True,
        min=0,
        max=64,
        applies=_family_key("frac_bits"),
    ),
    "exp_bits": Key(
        int,
        None,
        "small float: exponent bits (default from `bits`)",
        optional=True,
        min=2,
        max=8,
        applies=_family_key("exp_bits"),
    ),
    "block_size": Key(
        int,
        None,
        "block fp: values sharing one exponent (default: per row, dim 0)",
        optional=True,
        min=1,
        max=2**30,
        applies=_family_key("block_size"),
    ),
    "tensors": Key(
        str,
        "WG",
        "which tensor kinds `format`+`bits` quantize: letters of W, G, A, E, M",
        applies=_tensors,
    ),
    "weight_format": _fmt("format string for weights W (overrides format+bits)"),
    "grad_format": _fmt("format string for gradients G"),
    "act_format": _fmt(
        "format string for activations A (forward)", _has_kind("A", "activations")
    ),
    "error_format": _fmt("format string for errors E (backward)", _has_kind("E", "activations")),
    "momentum_format": _fmt("format string for SGHMC momentum M", _has_kind("M", "momentum")),
    "accumulator": Key(
        str,
        "full",
        "full (LP-F), low (naive LP-L) or vc (variance-corrected LP-L)",
        choices=ACCUMULATORS,
    ),
    "rounding": Key(
        str,
        "stochastic",
        "rounding of quantizers",
        choices=ROUNDINGS,
        applies=_rounding,
    ),
    "scale_rule": Key(
        str,
        "floor",
        "mx formats: how a block's power-of-two scale 2^s is chosen, as torchao names the rules: "
        "floor (OCP: s = floor(log2 amax) - emax), rceil (s = ceil(log2(amax / max))) or even "
        "(amax rounded to the element's mantissa first); a rule in the string (mx<E,K,rule>) "
        "stands",
        choices=SCALE_RULES,
        applies=_scale_rule,
    ),
    "vc_mode": Key(
        str,
        "joint",
        "SGHMC vc: joint (keeps the stationary law) or independent (the paper's form)",
        choices=VC_MODES,
        applies=_vc_mode,
    ),
    "momentum_rescale": Key(
        bool,
        False,
        "SGHMC low/vc: keep momentum rescaled per layer (the deep workloads default to true)",
        applies=_momentum_rescale,
    ),
    # step sizes and schedules
    "lr": Key(
        float,
        1e-3,
        "step size on the mean loss (deep convention, ALGORITHMS.md §5)",
        min=0.0,
        max=1e3,
    ),
    "schedule": Key(
        str, "constant", "step-size schedule", choices=SCHEDULES
    ),
    "cycles": Key(
        int, 1, "cyclical schedule: number of cycles M", min=1, max=10_000, applies=_cyclical
    ),
    "explore_fraction": Key(
        float,
        0.0,
        "cyclical schedule: fraction β of each cycle without noise",
        min=0.0,
        max=1.0,
        applies=_cyclical,
    ),
    "temperature": Key(
        float, 1.0, "posterior temperature T", min=0.0, max=1e6, applies=_temperature
    ),
    "friction": Key(
        float,
        3.0,
        "SGHMC friction γ",
        min=0.0,
        max=1e6,
        min_open=True,
        applies=_sghmc("friction"),
    ),
    "inverse_mass": Key(
        float,
        1.0,
        "SGHMC inverse mass u",
        min=0.0,
        max=1e6,
        min_open=True,
        applies=_sghmc("momentum"),
    ),
    "prior_std": Key(
        float,
        None,
        "Gaussian prior std σ (weight decay 1/(Nσ²)); unset = flat",
        optional=True,
        min=0.0,
        max=1e6,
        min_open=True,
        applies=_prior,
    ),
    # run length and sample collection
    "steps": Key(
        int, 10000, "number of steps (step-based workloads)", min=1, max=10**9,
        applies=_run_length("steps"),
    ),
    "epochs": Key(
        int, 10, "number of epochs (deep workloads)", min=1, max=10_000,
        applies=_run_length("epochs"),
    ),
    "batch_size": Key(
        int, 128, "minibatch size", min=1, max=2**16, applies=_minibatches
    ),
    "burn_in": Key(
        int,
        0,
        "steps (step-based workloads) or epochs (deep) before samples are collected; when "
        "not set and the default leaves no step or epoch to sample (it is >= steps or "
        "epochs), half the run length, rounded down",
        min=0,
        max=10**9,
        applies=_burn_in_thin,
    ),
    "thin": Key(
        int,
        1,
        "collect one sample every `thin` steps (step-based workloads) or epochs (deep)",
        min=1,
        max=10**9,
        applies=_burn_in_thin,
    ),
    "num_samples": Key(
        int,
        None,
        "cap on collected samples kept in the ensemble (latest kept)",
        optional=True,
        min=1,
        max=10**6,
        applies=_collection,
    ),
}  # fmt: skip


def keys_for(workload: str) -> dict[str, Key]:
    """The keys ``workload`` understands: the common ones plus its own (``KEYS``), with the
    workload's defaults (``DEFAULTS``) in place of the common ones."""
    table = workload_keys(workload)
    keys = {**COMMON_KEYS, **table.keys}
    for name, value in table.defaults.items():
        keys[name] = dataclasses.replace(keys[name], default=value)
    return keys


def defaults_for(workload: str) -> dict[str, Any]:
    """Every key of ``workload`` with its default (``workload`` itself set)."""
    out = {name: key.default for name, key in keys_for(workload).items()}
    out["workload"] = workload
    return out


def _fill(raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Key]]:
    """``raw`` type-checked with every default filled in. A None for a key that is not
    optional means "not set" (so a resolved config resolves to itself)."""
    if "workload" not in raw or raw["workload"] is None:
        raise ValueError(f"key 'workload': missing; choose one of {', '.join(WORKLOADS)}")
    workload = COMMON_KEYS["workload"].check("workload", raw["workload"])
    known = keys_for(workload)
    unknown = sorted(set(raw) - set(known), key=str)
    if unknown:
        raise ValueError(
            f"key {str(unknown[0])!r:.80}: unknown for workload {workload!r} "
            f"(known keys: {', '.join(sorted(known))})"
        )
    config: dict[str, Any] = {}
    for name, key in known.items():
        value = raw.get(name)
        if value is None and not (key.optional and name in raw):
            value = key.default
        config[name] = key.check(name, value)
    _derive_burn_in(raw, config, workload)
    return config, known


def _derive_burn_in(raw: Mapping[str, Any], config: dict[str, Any], workload: str) -> None:
    """A default that would refuse the user's own settings gives way: ``burn_in`` not set,
    and its default at least the run length (``epochs=3`` against mnist_mlp's ``burn_in: 5``
    would leave no sample to collect), becomes half the run length, rounded down."""
    if raw.get("burn_in") is not None or "burn_in" not in config:
        return
    length = config.get(workload_keys(workload).run_length)
    if isinstance(length, int) and config["burn_in"] >= length:
        config["burn_in"] = length // 2


def _normalise_tensors(config: dict[str, Any]) -> None:
    """``tensors`` validated and written as the kinds it names that this trial has, in the
    order W G A E M (``WGAE`` on a Gaussian is ``WG``: the same trial)."""
    tensors = config.get("tensors")
    bad = sorted(set(tensors) - set(KIND_KEYS))
    if bad:
        raise ValueError(
            f"key 'tensors': {tensors!r:.80} has unknown letter(s) {', '.join(bad)[:40]}; use W "
            "(weights), G (gradients), A (activations), E (errors), M (momentum), e.g. 'WG'"
        )
    config["tensors"] = "".join(k for k in tensor_kinds(config) if k in tensors)


def irrelevant_keys(config: Mapping[str, Any]) -> dict[str, str]:
    """key -> the one-line reason it has no effect on the trial ``config`` (defaults filled,
    e.g. ``resolve_config``'s output), for every key of the workload whose rule says so."""
    out: dict[str, str] = {}
    for name, key in keys_for(config["workload"]).items():
        if key.applies is not None:
            why = key.applies(config)
            if why is not None:
                out[name] = why
    return out


def check_keys(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` type-checked with every default filled in, the sampler checked against the
    workload's, ``tensors`` normalised, and the formats parsed and combined into the trial's
    ``PrecisionSpec`` (its checks), and a project workload's own checks
    (:mod:`workloads.config.checks`): the steps of :func:`resolve_config` that import no workload
    module and no torch for the project's workloads. Raises ``ValueError`` naming the first
    offending key, as :func:`resolve_config` does."""
    config, _ = _fill(raw)
    workload = config["workload"]
    samplers = workload_keys(workload).samplers
    if config["sampler"] not in samplers:
        raise ValueError(
            f"key 'sampler': {config['sampler']!r} does not run on workload {workload!r} "
            f"(choose one of {', '.join(samplers)})"
        )
    _normalise_tensors(config)
    _formats(config)  # validates formats and their combinations (lowprec, no torch)
    check = _builtin_check(workload)
    if check is not None:  # a project workload's own checks (workloads.config.checks, no torch)
        check(config)
    return config


def _builtin_check(workload: str) -> Any:
    """The torch-free check of a project workload (:data:`workloads.config.checks.BUILTIN`), or
    None (a registered workload's module has its own ``validate``, run by
    :func:`resolve_config`)."""
    return BUILTIN_CHECKS.get(WORKLOADS.get(workload, ""))


def resolve_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` validated against the keys of its workload, every default filled in, and every
    key that has no effect on this trial (:func:`irrelevant_keys`) set to None.

    Raises ``ValueError`` naming the first offending key: unknown keys, wrong types, values out
    of bounds, a sampler the workload does not run (its ``SAMPLERS``) (all :func:`check_keys`),
    then impossible precision combinations, and whatever the workload module's optional
    ``validate(config)`` rejects. Resolving a resolved config gives it back unchanged.
    """
    config = check_keys(raw)  # with the formats, their combinations, the project's checks
    if _builtin_check(config["workload"]) is None:
        validate = getattr(get_workload(config["workload"]), "validate", None)
        if validate is not None:
            validate(dict(config))
    for name in irrelevant_keys(config):
        config[name] = None
    return config


def with_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved ``config`` with its irrelevant keys (None) back at their defaults: the values
    code that runs the trial may read without effect (optional keys stay None)."""
    keys = keys_for(config["workload"])
    return {
        name: key.default if config.get(name) is None and not key.optional else config.get(name)
        for name, key in keys.items()
    }


def effective_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The record of one trial (Parquet columns, MLflow params): the keys that have an effect
    on it (no None values), the effective format string of each tensor kind it has
    (``weight_format``, ``grad_format``, and ``act_format``/``error_format`` for networks,
    ``momentum_format`` for sghmc), and ``bits_per_param`` (the stored weights' bits: the
    weight format's, 32 for the float32 master copy of ``full``). ``format``, ``bits``,
    ``frac_bits``, ``exp_bits`` and ``block_size`` appear only where they applied.

    ``config`` is resolved here; a trial that has its ``TrialSpec`` reads ``trial.record``,
    made once from its one resolution (:func:`record_of`)."""
    return record_of(resolve_config(config))


def record_of(resolved: Mapping[str, Any], precision: Any = None) -> dict[str, Any]:
    """:func:`effective_params` of a config that :func:`resolve_config` already resolved (not
    resolved again); ``precision``: its ``PrecisionSpec`` when the caller has it."""
    out = {k: v for k, v in resolved.items() if v is not None and k not in KIND_KEYS.values()}
    spec = precision_of(resolved) if precision is None else precision
    formats = {k: getattr(spec, TENSOR_KINDS[k][0]) for k in tensor_kinds(resolved)}
    for letter, fmt in formats.items():
        out[KIND_KEYS[letter]] = str(fmt)
    weight = formats["W"]
    full = resolved["accumulator"] == "full" or weight.is_identity
    out["bits_per_param"] = 32.0 if full else float(weight.bits)
    return out
