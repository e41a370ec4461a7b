"""A validated search-space file as values: its axes, variants and objectives (:class:`Spec`),
the metrics an objective may name, and the configurations a baseline can select. The loading
and the checks that make one are in :mod:`orchestrator.spec` and :mod:`orchestrator.validate`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: metrics an objective may name: docs/results.md's list, ``bits``, ``mean``, ``train_loss``,
#: and the ``last_*`` (last single sample) variant of each
BASE_METRICS: tuple[str, ...] = (
    "test_error", "test_nll", "test_ece", "test_brier", "ood_auroc", "w2", "ks", "std", "ess",
    "wall_s", "bits_per_param", "bits", "mean", "train_loss",
)  # fmt: skip
#: the cost panel and the chain diagnostics (docs/costs.md), objectives too (no last_* variant)
COST_METRICS: tuple[str, ...] = (
    "state_bytes", "ensemble_bits", "bops_per_step", "bops_per_prediction", "energy_pj_per_step",
    "energy_pj_per_prediction", "peak_rss_mb", "peak_gpu_mb", "rhat", "ess_per_s",
)  # fmt: skip
ALLOWED_METRICS: frozenset[str] = (
    frozenset(BASE_METRICS) | {f"last_{m}" for m in BASE_METRICS} | frozenset(COST_METRICS)
)

ALGORITHMS = ("grid", "random", "optuna")
SCHEDULERS = ("none", "asha")
RANGE_KINDS = ("uniform", "loguniform", "randint")
LIST_KINDS = ("grid", "choice")
TOP_KEYS = (
    "name", "description", "workload", "objectives", "search", "scheduler", "resources",
    "max_failures", "fixed", "space", "variants", "baseline",
)  # fmt: skip
#: above this many grid/choice combinations only each value is checked, not every combination
MAX_COMBINATIONS_CHECKED = 4096


@dataclass(frozen=True)
class Axis:
    """One searched key: ``kind`` in grid | choice (``values``) or uniform | loguniform |
    randint (``low``, ``high``; randint's ``high`` excluded, as in Ray Tune)."""

    key: str
    kind: str
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None

    def describe(self) -> str:
        if self.kind in LIST_KINDS:
            return f"{self.kind}{list(self.values)}"
        return f"{self.kind}({self.low}, {self.high})"

    def first(self) -> Any:
        """A representative value (the first listed, or ``low``)."""
        return self.values[0] if self.kind in LIST_KINDS else self.low


@dataclass(frozen=True)
class Variant:
    """One entry of ``variants:``: its name, the keys it fixes and the keys it searches."""

    name: str | None
    fixed: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Axis] = field(default_factory=dict)


@dataclass
class Spec:
    """A validated search-space file."""

    file: str
    text: str
    name: str
    workload: str
    objectives: dict[str, str]
    algorithm: str = "grid"
    num_samples: int = 1
    max_concurrent: int | None = None
    search_seed: int | None = None
    search_metric: list[str] = field(default_factory=list)
    search_mode: list[str] = field(default_factory=list)
    scheduler: str = "none"
    grace_period: int = 1
    max_t: int = 100
    scheduler_metric: str | None = None
    resources: dict[str, float] = field(default_factory=lambda: {"cpu": 1.0, "gpu": 0.0})
    custom_resources: dict[str, float] = field(default_factory=dict)
    max_failures: int = 1
    fixed: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Axis] = field(default_factory=dict)
    description: str = ""
    reference: dict[str, float] = field(default_factory=dict)
    #: the tolerances the spec gives (``objectives: {m: {direction: min, tolerance: t}}``), in
    #: the metric's units; :meth:`tolerance` adds analysis's defaults
    tolerances: dict[str, float] = field(default_factory=dict)
    #: ``baseline:`` as written: a variant (or configuration) name, a mapping of keys to values,
    #: or None (the default: the one configuration whose formats are all fp32, if exactly one)
    baseline: str | dict[str, Any] | None = None

    #: the sub-spaces of ``variants:`` (empty: the spec has none)
    subspaces: list[Variant] = field(default_factory=list)
    _expansion: Any = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ what runs
    @property
    def variants(self) -> list[str]:
        """The variants' names, in file order (empty when the spec has no ``variants:``)."""
        return [str(v.name) for v in self.subspaces]

    def parts(self) -> list[Variant]:
        """The variants, or one unnamed variant without keys when the spec has none."""
        return list(self.subspaces) or [Variant(None)]

    def base_config(self) -> dict[str, Any]:
        """``workload`` and the fixed keys: the part of every trial's config that never varies."""
        return {"workload": self.workload, **self.fixed}

    def part_fixed(self, part: Variant) -> dict[str, Any]:
        """The constant keys of every trial of ``part``: workload, ``fixed``, the variant's own
        values and ``variant`` (its name, when the spec has variants)."""
        named = {"variant": part.name} if part.name is not None else {}
        return {**self.base_config(), **part.fixed, **named}

    def part_axes(self, part: Variant) -> dict[str, Axis]:
        """The searched keys of the trials of ``part``: ``space``, then the variant's axes."""
        return {**self.space, **part.space}

    def expansion(self) -> Any:
        """The deduplicated trial list (:func:`orchestrator.expand.expand`), computed once."""
        if self._expansion is None:
            from orchestrator.expand import expand

            self._expansion = expand(self)
        return self._expansion

    def trial_configs(self) -> list[dict[str, Any]]:
        """Grid/random: every trial's config, in the order Tune runs them (deduplicated; the keys
        that have an effect only; ``variant`` when the spec has variants). Optuna proposes its
        trials as it goes: ``ValueError``."""
        if self.algorithm == "optuna":
            raise ValueError("optuna proposes its trials as the sweep runs: there is no list")
        return [dict(t.config) for t in self.expansion().trials]

    def num_trials(self) -> int:
        """Trials the sweep will run: the listed trials (grid/random), ``num_samples`` (optuna)."""
        if self.algorithm == "optuna":
            return self.num_samples
        return len(self.expansion().trials)

    def trials_per_variant(self) -> dict[str | None, int]:
        """Grid/random: variant name (None without variants) -> its number of trials."""
        return self.expansion().per_variant()

    def param_space(self) -> dict[str, Any]:
        """The Ray Tune ``param_space``: empty. Every config comes whole from the searcher
        (grid/random: ``orchestrator.trial_list.TrialList(spec.trial_configs())``; optuna:
        ``OptunaSearch(space=spec.optuna_space())``), so that each trial holds exactly its keys."""
        return {}

    def optuna_space(self) -> Any:
        """Optuna: the define-by-run space (:class:`orchestrator.expand.OptunaSpace`) for
        ``OptunaSearch(space=...)``: ``variant`` as a categorical choice, then that variant's
        keys. None for grid and random search."""
        if self.algorithm != "optuna":
            return None
        from orchestrator.expand import OptunaSpace

        return OptunaSpace.of(self)

    def searched_keys(self) -> list[str]:
        """Keys whose value varies within the sweep: every axis of ``space`` and of the
        variants, and each key a variant fixes that not all variants fix to the same value
        (``variant`` itself not included)."""
        keys = list(self.space)
        for part in self.subspaces:
            keys += list(part.space)
        missing = object()
        for key in dict.fromkeys(k for part in self.subspaces for k in part.fixed):
            values = {repr(part.fixed.get(key, missing)) for part in self.subspaces}
            if len(values) > 1:
                keys.append(key)
        return list(dict.fromkeys(keys))

    def optimisation_target(self) -> tuple[list[str], list[str]]:
        """Metric(s) and mode(s) Optuna optimises: ``search.metric``/``mode``, else every
        objective."""
        if self.search_metric:
            return self.search_metric, self.search_mode
        return list(self.objectives), list(self.objectives.values())

    def tolerance(self, metric: str) -> float | None:
        """The equivalence tolerance of ``metric``: the spec's, else analysis's default
        (``analysis.answer.DEFAULT_TOLERANCE``), else None (its verdict is ``inconclusive``)."""
        if metric in self.tolerances:
            return self.tolerances[metric]
        from analysis.answer import DEFAULT_TOLERANCE

        return DEFAULT_TOLERANCE.get(metric)

    def primary_objective(self) -> tuple[str, str]:
        """The first objective: what ASHA prunes on (unless ``scheduler.metric``) and what the
        progress line calls "best"."""
        if self.scheduler_metric:
            return self.scheduler_metric, self.objectives.get(self.scheduler_metric, "min")
        metric = next(iter(self.objectives))
        return metric, self.objectives[metric]


#: keys that never tell two configurations apart (a configuration is its trials over seeds)
NOT_CONFIGURATION = ("seed", "device")


def baseline_candidates(spec: Spec) -> list[dict[str, Any]]:
    """One dict per configuration the sweep can run, as ``analysis.answer.select_baseline``
    reads a trials.parquet row: the resolved config with the effective formats
    (``weight_format`` ...), ``variant`` and ``configuration`` (the child runs' name without
    the seed). Grid/random: the listed trials; optuna: every combination of the variants and
    the listed values (:func:`orchestrator.expand.configs_with_parts`)."""
    from orchestrator.expand import configs_with_parts
    from orchestrator.naming import configuration_name, name_keys
    from workloads.config.resolve import effective_params

    keys = name_keys(spec)
    out: list[dict[str, Any]] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for part, config in configs_with_parts(spec):
        identity = tuple(
            sorted((k, repr(v)) for k, v in config.items() if k not in NOT_CONFIGURATION)
        )
        if identity in seen:
            continue
        seen.add(identity)
        try:
            record = {**config, **effective_params(config)}
        except (ValueError, TypeError, KeyError):
            record = dict(config)
        if part.name is not None:
            record["variant"] = part.name
        record["configuration"] = configuration_name(record, keys)
        out.append(record)
    return out
