"""The trials of a search space, listed: variants x space x fixed, drawn, deduplicated.

A spec's trials are the union over its variants ``v`` (one unnamed variant when it has none) of

    T(v) = { fixed ∪ fixed(v) ∪ g ∪ d(g, s) : g ∈ ∏ grid axes of space ∪ space(v),
                                              s = 1 .. num_samples }

where ``d(g, s)`` draws every other axis (``choice``, ``uniform``, ``loguniform``, ``randint``)
once, from one ``numpy.random.default_rng(search.seed or 0)`` walked in that order, so the list is
the same on every call (the ``--dry-run`` shows the trials that will run).

Relevance (``workloads.config.resolve``): a key that has no effect on a trial (``bits`` when the
format is fp32, ``friction`` with sgld ...) is not part of the trial: it is left out of the trial's
config, its record holds null, and trials that differ only in such keys are one trial (kept: the
first).
The identity of a trial is its resolved config (every default filled, irrelevant keys None) and
its variant. A key set in the spec that has no effect on ANY trial where it is set is refused
(:class:`NoEffect`): ``space.bits: no effect: format is fp32 in every trial``.

Grid and random search run exactly :func:`expand`'s list (``orchestrator.trial_list.TrialList``,
a Ray Tune ``Searcher`` that suggests the configs in order); Optuna proposes from
:class:`OptunaSpace`, a define-by-run space: a categorical ``variant`` first, then the keys of
the chosen variant (Optuna parameters ``<variant>.<key>`` for a variant's own axes, so that two
variants may search one key over different values).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from orchestrator.spec import Axis, Spec, Variant

#: most trials a grid/random spec may expand to (more: split the sweep)
MAX_TRIALS = 200_000
#: trials whose reason a refused key's message collects (distinct reasons shown)
MAX_REASONS = 64


class NoEffect(ValueError):
    """A key of the spec that has no effect in any trial where it is set."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


class BadCombination(ValueError):
    """A listed trial that cannot run (``resolve_config`` refused it)."""

    def __init__(self, variant: str | None, config: Mapping[str, Any], error: str):
        self.variant, self.config, self.error = variant, dict(config), error
        super().__init__(error)


@dataclass(frozen=True)
class Trial:
    """One trial of the sweep: ``config`` is what Tune hands the trainable (``workload``, the keys
    that have an effect, ``variant`` when the spec has variants)."""

    variant: str | None
    config: dict[str, Any]


@dataclass
class Expansion:
    """The deduplicated trials, and per variant how many listed configs were duplicates of an
    earlier one in every key that has an effect."""

    trials: list[Trial] = field(default_factory=list)
    merged: dict[str | None, int] = field(default_factory=dict)

    def per_variant(self) -> dict[str | None, int]:
        counts: dict[str | None, int] = {}
        for trial in self.trials:
            counts[trial.variant] = counts.get(trial.variant, 0) + 1
        return counts


# ----------------------------------------------------------------------------------------------
# relevance of one config
# ----------------------------------------------------------------------------------------------


def relevance(raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``(resolved, irrelevant)``: ``workloads.config.resolve_config(raw)`` (irrelevant keys None)
    and ``irrelevant_keys``: key -> why it has no effect. ``ValueError`` when ``raw`` cannot run."""
    from workloads.config.resolve import defaults_for, irrelevant_keys, resolve_config

    resolved = resolve_config(raw)
    # the rules read the filled config (before resolve_config set the irrelevant keys to None:
    # e.g. `tensors` None would make `format` look irrelevant too)
    defaults = defaults_for(resolved["workload"])
    filled = {k: v if v is not None else raw.get(k, defaults.get(k)) for k, v in resolved.items()}
    return resolved, irrelevant_keys(filled)


def effective_config(raw: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """``raw`` without the keys that have no effect on it, and its identity (the resolved
    config as a hashable tuple)."""
    resolved, irrelevant = relevance(raw)
    config = {k: v for k, v in raw.items() if k not in irrelevant}
    identity = tuple(sorted((k, repr(v)) for k, v in resolved.items()))
    return config, identity


# ----------------------------------------------------------------------------------------------
# listing the trials
# ----------------------------------------------------------------------------------------------


def _draw(axis: Axis, rng: np.random.Generator) -> Any:
    """One value of a non-grid axis."""
    if axis.kind in ("grid", "choice"):
        return axis.values[int(rng.integers(len(axis.values)))]
    low, high = float(axis.low), float(axis.high)  # type: ignore[arg-type]
    if axis.kind == "uniform":
        return float(rng.uniform(low, high))
    if axis.kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return int(rng.integers(int(low), int(high)))  # randint: high excluded


def listed_count(spec: Spec, finite: bool = False) -> int:
    """How many configs :func:`raw_configs` lists (before deduplication)."""
    total = 0
    for part in spec.parts():
        axes = spec.part_axes(part).values()
        if finite:
            total += math.prod(len(a.values) if a.values else 1 for a in axes)
        else:
            grid = [a for a in axes if a.kind == "grid"]
            total += math.prod(len(a.values) for a in grid) * spec.num_samples
    return total


def raw_configs(spec: Spec, finite: bool = False) -> list[tuple[Variant, dict[str, Any]]]:
    """Every listed config, in order, before deduplication: grid points x ``num_samples`` draws.

    ``finite``: instead every combination of the grid and choice axes, range axes at ``low``
    (what Optuna may propose, for the checks that need the values of the categorical keys)."""
    rng = np.random.default_rng(spec.search_seed if spec.search_seed is not None else 0)
    out: list[tuple[Variant, dict[str, Any]]] = []
    for part in spec.parts():
        fixed = spec.part_fixed(part)
        axes = list(spec.part_axes(part).values())
        if finite:
            crossed = [a for a in axes if a.values]
            for values in itertools.product(*(a.values for a in crossed)):
                config = {**fixed, **{a.key: a.low for a in axes if not a.values}}
                config.update(zip([a.key for a in crossed], values, strict=True))
                out.append((part, _ordered(config, fixed, axes)))
            continue
        grid = [a for a in axes if a.kind == "grid"]
        drawn = [a for a in axes if a.kind != "grid"]
        for values in itertools.product(*(a.values for a in grid)):
            point = dict(zip([a.key for a in grid], values, strict=True))
            for _ in range(spec.num_samples):
                config = {**fixed, **point, **{a.key: _draw(a, rng) for a in drawn}}
                out.append((part, _ordered(config, fixed, axes)))
    return out


def _ordered(config: dict[str, Any], fixed: Mapping[str, Any], axes: Sequence[Axis]) -> dict:
    """``config`` with its keys in spec order: the fixed ones, then the axes as declared."""
    order = [*fixed, *(a.key for a in axes)]
    return {k: config[k] for k in order if k in config}


def expand(spec: Spec, finite: bool = False) -> Expansion:
    """The deduplicated trials of ``spec`` (see the module docstring); raises :class:`NoEffect`
    for a key without effect in every trial where it is set and :class:`BadCombination` for a
    listed config that cannot run."""
    from workloads.config.resolve import resolve_config

    expansion = Expansion()
    seen: set[tuple[Any, ...]] = set()
    effective: dict[tuple[str | None, str], int] = {}
    examples: dict[tuple[str | None, str], list[dict[str, Any]]] = {}
    for part, raw in raw_configs(spec, finite):
        try:
            resolved = resolve_config(raw)
        except (ValueError, TypeError) as exc:
            raise BadCombination(part.name, raw, str(exc)) from None
        # resolve_config sets exactly the keys without effect to None
        irrelevant = {k for k, v in raw.items() if v is not None and resolved.get(k) is None}
        for key in raw:
            scope = _scope(spec, part, key)
            if scope is None:
                continue
            effective.setdefault(scope, 0)
            if key not in irrelevant:
                effective[scope] += 1
            elif len(examples.setdefault(scope, [])) < MAX_REASONS:
                examples[scope].append(raw)  # the reasons are worded only for a refusal
        config = {k: v for k, v in raw.items() if k not in irrelevant}
        identity = (part.name, tuple(sorted((k, repr(v)) for k, v in resolved.items())))
        if identity in seen:
            expansion.merged[part.name] = expansion.merged.get(part.name, 0) + 1
            continue
        seen.add(identity)
        expansion.trials.append(Trial(part.name, config))
    for scope, count in effective.items():
        if count == 0:
            reasons: list[str] = []
            for raw in examples.get(scope, []):
                why = relevance(raw)[1].get(scope[1], "no effect")
                if why not in reasons:
                    reasons.append(why)
            raise NoEffect(_path(spec, scope), _no_effect_reason(reasons))
    return expansion


def _scope(spec: Spec, part: Variant, key: str) -> tuple[str | None, str] | None:
    """Where ``key`` of a trial of ``part`` was set: (variant name, key) for a variant's key,
    (None, key) for a shared one, None for keys the spec does not set (workload, variant)."""
    if key in part.fixed or key in part.space:
        return (part.name, key)
    if key in spec.fixed or key in spec.space:
        return (None, key)
    return None


def _path(spec: Spec, scope: tuple[str | None, str]) -> str:
    name, key = scope
    if name is not None:
        return f"variants.{name}.{key}"
    return f"{'fixed' if key in spec.fixed else 'space'}.{key}"


def _no_effect_reason(reasons: list[str]) -> str:
    if len(reasons) == 1:
        return f"no effect: {reasons[0]} in every trial"
    return f"no effect in any trial ({'; '.join(reasons)})"


# ----------------------------------------------------------------------------------------------
# what Ray Tune is given
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptunaSpace:
    """The define-by-run space Ray's ``OptunaSearch(space=...)`` calls with an Optuna trial:
    ``variant`` as a categorical choice (when the spec has variants), then the shared axes
    (parameter = key) and the chosen variant's axes (parameter = ``<variant>.<key>``); returns
    the trial's config (its fixed keys included, keys without effect left out).

    Every value is suggested on the Optuna trial itself and returned in the config, so the
    config Tune passes is flat and holds each key under its own name."""

    parts: tuple[tuple[str | None, tuple[tuple[str, Any], ...], tuple[Any, ...]], ...]
    shared: tuple[str, ...]

    @classmethod
    def of(cls, spec: Spec) -> OptunaSpace:
        parts = tuple(
            (
                part.name,
                tuple(spec.part_fixed(part).items()),
                tuple(spec.part_axes(part).values()),
            )
            for part in spec.parts()
        )
        return cls(parts, tuple(spec.space))

    @property
    def names(self) -> list[str | None]:
        return [name for name, _, _ in self.parts]

    def __call__(self, trial: Any) -> dict[str, Any]:
        # Ray passes a wrapper that copies every suggested parameter name into the config;
        # suggest on the Optuna trial underneath and return the config with the real key names
        ot = getattr(trial, "ot_trial", trial)
        index = 0
        if len(self.parts) > 1:
            names = [str(n) for n in self.names]
            index = names.index(ot.suggest_categorical("variant", names))
        name, fixed, axes = self.parts[index]
        config = dict(fixed)
        for axis in axes:
            param = axis.key if name is None or axis.key in self.shared else f"{name}.{axis.key}"
            config[axis.key] = suggest(ot, param, axis)
        resolved_config, _ = effective_config(config)
        return resolved_config


def suggest(trial: Any, name: str, axis: Axis) -> Any:
    """One value of ``axis`` from an Optuna trial under the parameter ``name``."""
    if axis.kind in ("grid", "choice"):
        return trial.suggest_categorical(name, list(axis.values))
    if axis.kind == "randint":
        return trial.suggest_int(name, int(axis.low), int(axis.high) - 1)  # type: ignore[arg-type]
    return trial.suggest_float(
        name,
        float(axis.low),  # type: ignore[arg-type]
        float(axis.high),  # type: ignore[arg-type]
        log=axis.kind == "loguniform",
    )


__all__ = [
    "MAX_TRIALS",
    "BadCombination",
    "Expansion",
    "NoEffect",
    "OptunaSpace",
    "Trial",
    "effective_config",
    "expand",
    "listed_count",
    "raw_configs",
    "relevance",
    "suggest",
]


def configs_with_parts(spec: Spec) -> list[tuple[Variant, dict[str, Any]]]:
    """Each trial's config with its variant: grid/random the listed trials; optuna every
    combination of the categorical values (range axes at ``low``), or, when there are more
    than :data:`MAX_TRIALS`, one config per variant."""
    parts = {part.name: part for part in spec.parts()}
    if spec.algorithm != "optuna":
        return [(parts[t.variant], dict(t.config)) for t in spec.expansion().trials]
    if listed_count(spec, finite=True) <= MAX_TRIALS:
        return raw_configs(spec, finite=True)
    return [
        (part, {**spec.part_fixed(part), **{k: a.first() for k, a in spec.part_axes(part).items()}})
        for part in spec.parts()
    ]
