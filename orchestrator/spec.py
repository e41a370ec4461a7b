"""The search-space file: its schema, its validation, and what Ray Tune is given.

    name: bits                      # MLflow experiment and RESULTS/<name>/
    workload: mnist_mlp
    objectives: {test_error: min, bits_per_param: min}
    search: {algorithm: grid, num_samples: 1, max_concurrent: 2}   # grid | random | optuna
    scheduler: none                 # or asha, or {type: asha, grace_period: 1, max_t: 20}
    resources: {cpu: 1, gpu: 0}     # per trial; fractions allowed; custom: {name: amount}
    max_failures: 1                 # retries of a trial that raises (diverged: never retried)
    fixed: {sampler: sgld, epochs: 10}
    space:
      seed: {grid: [0, 1, 2]}
      lr: {loguniform: [1.0e-3, 0.5]}   # also uniform: [lo, hi], randint: [lo, hi) , choice: [...]
    variants:                       # optional: sub-spaces, each a name and keys (values or axes)
      - name: fp32
        format: fp32
        accumulator: full
      - name: lowprec
        format: {grid: [fixed, block]}
        bits: {grid: [4, 8]}
        accumulator: {grid: [full, low, vc]}

Trials: the union over the variants of (variant x space x fixed) (no ``variants``: one unnamed
variant, space x fixed). Grid and random search cross every ``grid`` axis and draw the other
axes ``num_samples`` times per grid point, from ``search.seed`` (default 0), so the list is
known before anything runs (:mod:`orchestrator.expand`); a key that has no effect on a trial
(``bits`` with ``format: fp32``) is left out of it, and trials that differ only in such keys
run once. Optuna proposes ``num_samples`` trials from a define-by-run space: the variant, then
that variant's keys.

:func:`load_spec` validates the whole file before anything runs and raises :class:`SpecError`,
whose message names the file, the key path (``space.bits.grid[2]``,
``variants.lowprec.bits``) and the reason; a key that has no effect in any trial is refused
(``space.bits: no effect: format is fp32 in every trial``).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.yamlio import load_yaml, read_text

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
    from workloads.keys import effective_params

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


def check_data(spec: Spec) -> None:
    """Refuse, with :class:`SpecError`, a spec whose trials need data that is not on this machine
    (:func:`workloads.datacheck.check_data`, once per distinct data set): the message names the
    key, the directory and the files expected."""
    from orchestrator.expand import configs_with_parts
    from workloads.datacheck import MissingData, data_needs
    from workloads.datacheck import check_data as check_config
    from workloads.keys import resolve_config

    seen: set[Any] = set()
    for part, config in configs_with_parts(spec):
        resolved = resolve_config(config)
        need = data_needs(resolved)
        if need is None or need in seen:
            continue
        seen.add(need)
        try:
            check_config(resolved)
        except MissingData as exc:
            if exc.key in part.fixed or exc.key in part.space:
                path = f"variants.{part.name}.{exc.key}"
            elif exc.key in spec.fixed:
                path = f"fixed.{exc.key}"
            elif exc.key in spec.space:
                path = f"space.{exc.key}"
            else:
                path = ""
            reason = " ".join(str(exc).split())
            raise SpecError(
                spec.file,
                path,
                f"{reason} (--skip-data-check when the data is only on the cluster's workers)",
            ) from None


# ----------------------------------------------------------------------------------------------
# loading and validation
# ----------------------------------------------------------------------------------------------


def load_spec(path: str | Path, max_trials: int | None = None) -> Spec:
    """Read and validate the search-space file at ``path``; :class:`SpecError` on any problem
    (``max_trials``: more grid/random trials listed than that are refused before they are
    expanded and checked one by one, which takes about a millisecond each)."""
    file = str(path)
    return parse_spec(read_text(path, file), file, max_trials)


def parse_spec(text: str, file: str = "<spec>", max_trials: int | None = None) -> Spec:
    """Validate the YAML ``text`` of a search-space file (``file`` names it in errors)."""
    doc = load_yaml(text, file)  # the safe loader: any YAML problem is one SpecError line
    return _Validator(file, text, max_trials).validate(doc)


class _Validator:
    def __init__(self, file: str, text: str, max_trials: int | None = None):
        self.file, self.text, self.max_trials = file, text, max_trials

    def error(self, path: str, reason: str) -> SpecError:
        return SpecError(self.file, path, reason)

    # -------------------------------------------------------------- small type checks
    def mapping(self, value: Any, path: str, required: bool = True) -> dict[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping (key: value lines), got {value!r}")
        for key in value:
            if not isinstance(key, str):
                raise self.error(f"{path}.{key}", "keys must be strings")
        return value

    def known(self, value: Mapping[str, Any], path: str, allowed: tuple[str, ...]) -> None:
        for key in value:
            if key not in allowed:
                shown = key if re.fullmatch(r"[\w.-]+", key) else repr(key)
                where = f"{path}.{shown}" if path else shown
                raise self.error(where, f"unknown key; allowed: {', '.join(allowed)}")

    def integer(self, value: Any, path: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"expected an integer, got {value!r}")
        if value < minimum:
            raise self.error(path, f"must be at least {minimum}, got {value}")
        return value

    def number(self, value: Any, path: str, minimum: float, strict: bool) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(path, f"expected a number, got {value!r}")
        if value < minimum or (strict and value == minimum):
            raise self.error(path, f"must be {'>' if strict else '>='} {minimum}, got {value}")
        return float(value)

    def string(self, value: Any, path: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str):
            raise self.error(path, f"expected a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.error(path, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def metric(self, value: Any, path: str) -> str:
        name = self.string(value, path)
        if name not in ALLOWED_METRICS:
            raise self.error(
                path,
                f"unknown metric {name!r}; objectives may use {', '.join(BASE_METRICS)}, "
                f"their last_* variants, and {', '.join(COST_METRICS)}",
            )
        # a metric the workload never reports could not rank a single trial (a workload
        # registered at run time has no list: anything allowed is accepted)
        from workloads.costs import reported_metrics

        workload = getattr(self, "workload", None)
        reported = reported_metrics(workload) if workload else None
        if reported is not None and name not in reported:
            listed = ", ".join(sorted(reported & ALLOWED_METRICS))
            raise self.error(
                path, f"workload {workload} does not report {name!r}; it reports: {listed}"
            )
        return name

    # -------------------------------------------------------------- the document
    def validate(self, doc: Any) -> Spec:
        if doc is None:
            raise self.error("", "the file is empty; see search_spaces/smoke.yaml for an example")
        doc = self.mapping(doc, "(top level)")
        self.known(doc, "", TOP_KEYS)
        for required in ("name", "workload", "objectives"):
            if required not in doc:
                raise self.error(required, "missing (required)")
        name = self.string(doc["name"], "name")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise self.error("name", f"{name!r}: use letters, digits, '_', '.', '-' only")

        from workloads import WORKLOADS

        workload = self.string(doc["workload"], "workload", tuple(WORKLOADS))
        self.workload = workload  # metric() checks an objective against its metrics
        spec = Spec(file=self.file, text=self.text, name=name, workload=workload, objectives={})
        spec.description = str(doc.get("description") or "")
        self.objectives(spec, doc["objectives"])
        self.search(spec, doc.get("search"))
        self.scheduler(spec, doc.get("scheduler"))
        self.resources(spec, doc.get("resources"))
        if "max_failures" in doc:
            spec.max_failures = self.integer(doc["max_failures"], "max_failures", 0)
        self.keys(spec, doc.get("fixed"), doc.get("space"), doc.get("variants"))
        if doc.get("baseline") is not None:
            self.baseline(spec, doc["baseline"])
        return spec

    def objectives(self, spec: Spec, value: Any) -> None:
        objectives = self.mapping(value, "objectives")
        if not objectives:
            raise self.error("objectives", "empty; name at least one metric: min|max")
        for metric, mode in objectives.items():
            if metric == "reference":
                continue
            self.metric(metric, f"objectives.{metric}")
            path = f"objectives.{metric}"
            if isinstance(mode, dict):  # {direction: min, tolerance: 0.005}
                self.known(mode, path, ("direction", "tolerance"))
                if "direction" not in mode:
                    raise self.error(f"{path}.direction", "missing (min or max)")
                spec.objectives[metric] = self.string(
                    mode["direction"], f"{path}.direction", ("min", "max")
                )
                if mode.get("tolerance") is not None:
                    spec.tolerances[metric] = self.tolerance(metric, mode["tolerance"], path)
            else:
                spec.objectives[metric] = self.string(mode, path, ("min", "max"))
        if not spec.objectives:
            raise self.error("objectives", "empty; name at least one metric: min|max")
        if "reference" in objectives:  # the hypervolume reference point analysis reads
            reference = self.mapping(objectives["reference"], "objectives.reference")
            for metric, value in reference.items():
                if metric not in spec.objectives:
                    raise self.error(f"objectives.reference.{metric}", "not one of the objectives")
                spec.reference[metric] = self.number(
                    value, f"objectives.reference.{metric}", -math.inf, strict=False
                )

    def tolerance(self, metric: str, value: Any, path: str) -> float:
        """A positive, finite number in ``metric``'s units; a cost is not compared for
        equivalence, so it takes none."""
        from analysis.answer import is_cost

        path = f"{path}.tolerance"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(
                path, f"expected a positive number (in {metric}'s units), got {value!r}"
            )
        if not math.isfinite(value) or value <= 0:
            raise self.error(path, f"must be a positive number (in {metric}'s units), got {value}")
        if is_cost(metric):
            raise self.error(
                path, f"{metric} is a cost: it is compared by value, never for equivalence"
            )
        return float(value)

    def baseline(self, spec: Spec, value: Any) -> None:
        """``baseline:`` selects exactly one configuration (the trials that differ only in
        ``seed``): a variant name, or a mapping of keys to values (checked as the keys' values).
        Grid/random: matched against the listed trials; optuna: against every combination of
        the variants and listed (grid/choice) values, so a key searched over a range cannot
        select it."""
        from analysis.answer import select_baseline
        from workloads.keys import keys_for

        if isinstance(value, str):
            if not value.strip():
                raise self.error("baseline", "empty: name a variant, or give keys: values")
            spec.baseline = value
        elif isinstance(value, dict):
            known = keys_for(spec.workload)
            mapping = self.mapping(value, "baseline")
            if not mapping:
                raise self.error("baseline", "an empty mapping selects nothing; give keys: values")
            checked: dict[str, Any] = {}
            for key, raw in mapping.items():
                path = f"baseline.{key}"
                if key == "variant":
                    if raw not in spec.variants:
                        shown = ", ".join(spec.variants) or "none: the spec has no variants"
                        raise self.error(path, f"{raw!r} is not a variant (variants: {shown})")
                    checked[key] = raw
                    continue
                self.settable(spec, known, key, path)
                checked[key] = self.value(known[key], key, raw, path)
                ranged = [
                    p.name for p in spec.parts()
                    if key in spec.part_axes(p) and spec.part_axes(p)[key].kind in RANGE_KINDS
                ]  # fmt: skip
                if ranged:
                    raise self.error(
                        path, f"{key} is drawn from a range: it cannot select one configuration"
                    )
            spec.baseline = checked
        else:
            raise self.error(
                "baseline",
                f"expected a variant name or a mapping of keys to values, got {value!r:.80}",
            )
        configs = baseline_candidates(spec)
        found = select_baseline(spec.baseline, configs)
        if isinstance(spec.baseline, dict):
            shown = "{" + ", ".join(f"{k}: {v}" for k, v in spec.baseline.items()) + "}"
        else:
            shown = repr(spec.baseline)
        if not found:
            hint = f" (variants: {', '.join(spec.variants)})" if spec.variants else ""
            raise self.error("baseline", f"{shown} matches no configuration of the sweep{hint}")
        if len(found) > 1:
            names = [configs[i].get("configuration") or "?" for i in found]
            listed = ", ".join(names[:4]) + (
                f" and {len(names) - 4} more" if len(names) > 4 else ""
            )
            raise self.error(
                "baseline",
                f"{shown} matches {len(found)} configurations ({listed}); add keys that select one",
            )

    def search(self, spec: Spec, value: Any) -> None:
        search = self.mapping(value, "search", required=False)
        allowed = ("algorithm", "num_samples", "max_concurrent", "seed", "metric", "mode")
        self.known(search, "search", allowed)
        spec.algorithm = self.string(
            search.get("algorithm", "grid"), "search.algorithm", ALGORITHMS
        )
        spec.num_samples = self.integer(search.get("num_samples", 1), "search.num_samples", 1)
        if search.get("max_concurrent") is not None:
            spec.max_concurrent = self.integer(search["max_concurrent"], "search.max_concurrent", 1)
        if search.get("seed") is not None:
            spec.search_seed = self.integer(search["seed"], "search.seed", 0)
        if "metric" in search or "mode" in search:
            metrics = search.get("metric")
            modes = search.get("mode")
            metrics = metrics if isinstance(metrics, list) else [metrics]
            modes = modes if isinstance(modes, list) else [modes]
            if len(metrics) != len(modes):
                raise self.error("search.mode", "give one mode (min|max) per search.metric")
            spec.search_metric = [
                self.metric(m, f"search.metric[{i}]") for i, m in enumerate(metrics)
            ]
            spec.search_mode = [
                self.string(m, f"search.mode[{i}]", ("min", "max")) for i, m in enumerate(modes)
            ]
        if spec.algorithm != "optuna" and spec.search_metric:
            raise self.error("search.metric", "only used by algorithm: optuna")

    def scheduler(self, spec: Spec, value: Any) -> None:
        if value is None or isinstance(value, str):
            spec.scheduler = self.string(value or "none", "scheduler", SCHEDULERS)
            options: dict[str, Any] = {}
        else:
            options = self.mapping(value, "scheduler")
            self.known(options, "scheduler", ("type", "grace_period", "max_t", "metric"))
            spec.scheduler = self.string(options.get("type", "none"), "scheduler.type", SCHEDULERS)
        if spec.scheduler == "none":
            if set(options) - {"type"}:
                raise self.error("scheduler", "grace_period/max_t/metric need type: asha")
            return
        spec.grace_period = self.integer(
            options.get("grace_period", 1), "scheduler.grace_period", 1
        )
        spec.max_t = self.integer(options.get("max_t", 100), "scheduler.max_t", 1)
        if spec.max_t < spec.grace_period:
            raise self.error("scheduler.max_t", f"must be >= grace_period ({spec.grace_period})")
        if "metric" in options:
            metric = self.metric(options["metric"], "scheduler.metric")
            if metric not in spec.objectives:
                raise self.error("scheduler.metric", f"{metric!r} is not one of the objectives")
            spec.scheduler_metric = metric

    def resources(self, spec: Spec, value: Any) -> None:
        resources = self.mapping(value, "resources", required=False)
        self.known(resources, "resources", ("cpu", "gpu", "custom"))
        spec.resources = {
            "cpu": self.number(resources.get("cpu", 1), "resources.cpu", 0.0, strict=False),
            "gpu": self.number(resources.get("gpu", 0), "resources.gpu", 0.0, strict=False),
        }
        if spec.resources["cpu"] == 0 and spec.resources["gpu"] == 0:
            raise self.error("resources", "a trial needs some cpu or gpu")
        custom = self.mapping(resources.get("custom"), "resources.custom", required=False)
        spec.custom_resources = {
            k: self.number(v, f"resources.custom.{k}", 0.0, strict=True) for k, v in custom.items()
        }

    def keys(self, spec: Spec, fixed_value: Any, space_value: Any, variants_value: Any) -> None:
        from workloads.keys import keys_for

        known = keys_for(spec.workload)
        fixed = self.mapping(fixed_value, "fixed", required=False)
        space = self.mapping(space_value, "space", required=False)
        for section, mapping in (("fixed", fixed), ("space", space)):
            for key in mapping:
                self.settable(spec, known, key, f"{section}.{key}")
        for key in fixed:
            if key in space:
                raise self.error(f"space.{key}", "is also in fixed: a key is fixed or searched")
            spec.fixed[key] = self.value(known[key], key, fixed[key], f"fixed.{key}")
        for key, raw in space.items():
            spec.space[key] = self.axis(known[key], key, raw, f"space.{key}")
        if variants_value is not None:
            spec.subspaces = self.variants(spec, known, variants_value)
        for part in spec.parts():
            self.combinations(spec, part)
        self.expand(spec)

    def settable(self, spec: Spec, known: Mapping[str, Any], key: str, path: str) -> None:
        """``key`` may be set in a spec: a key of the workload, not workload or variant."""
        if key == "workload":
            raise self.error(path, "set the workload at the top level")
        if key == "variant":
            raise self.error(path, "set by variants: (each entry's name); not a key to set")
        if key not in known:
            shown = sorted(k for k in known if k not in ("workload", "variant"))
            raise self.error(
                path,
                f"unknown key for workload {spec.workload!r}; known keys: {', '.join(shown)}",
            )

    def variants(self, spec: Spec, known: Mapping[str, Any], value: Any) -> list[Variant]:
        """``variants:``: a non-empty list of mappings, each a unique ``name`` and keys set to a
        value or an axis; a key is in a variant or in fixed/space, not both."""
        if not isinstance(value, list) or not value:
            raise self.error(
                "variants",
                f"expected a list of entries (- name: NAME, then keys), got {value!r:.80}",
            )
        out: list[Variant] = []
        for i, entry in enumerate(value):
            entry = self.mapping(entry, f"variants[{i}]")
            if "name" not in entry:
                raise self.error(f"variants[{i}]", "missing name: (each variant is named)")
            name = self.string(entry["name"], f"variants[{i}].name")
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
                raise self.error(
                    f"variants[{i}].name", f"{name!r}: use letters, digits, '_', '.', '+', '-'"
                )
            if name in {v.name for v in out}:
                raise self.error(f"variants[{i}].name", f"{name!r} names two variants")
            part = Variant(name)
            for key, raw in entry.items():
                if key == "name":
                    continue
                path = f"variants.{name}.{key}"
                self.settable(spec, known, key, path)
                for section, mapping in (("fixed", spec.fixed), ("space", spec.space)):
                    if key in mapping:
                        raise self.error(
                            path,
                            f"is also in {section}: a key is set in the variants or in "
                            "fixed/space, not both",
                        )
                if isinstance(raw, dict):
                    part.space[key] = self.axis(known[key], key, raw, path)
                else:
                    part.fixed[key] = self.value(known[key], key, raw, path)
            out.append(part)
        return out

    def combinations(self, spec: Spec, part: Variant) -> None:
        """Impossible combinations within ``part``: a representative config per listed value,
        then (when few enough) every combination of the grid/choice axes. Each config is first
        checked by ``check_keys`` (keys, values, formats, precision combinations: no torch),
        then by ``resolve_config`` (the workload's own checks, which import its module), so that
        a bad value in any axis is refused before torch loads."""
        from workloads.keys import check_keys, resolve_config

        axes = spec.part_axes(part)
        fixed = spec.part_fixed(part)
        base = {**fixed, **{k: a.first() for k, a in axes.items()}}
        within = f" (variant {part.name})" if part.name is not None else ""

        checks: list[tuple[dict[str, Any], str]] = []  # (config, the path its error names)
        if part.name is not None and not part.space:
            checks.append((base, f"variants.{part.name}"))
        else:
            first = next(iter(axes), None)
            checks.append((base, "fixed" if first is None else self.axis_path(spec, part, first)))
        lists = [a for a in axes.values() if a.kind in LIST_KINDS]
        for axis in axes.values():
            values = axis.values if axis.kind in LIST_KINDS else (axis.low, axis.high)
            for i, value in enumerate(values):
                if axis.kind == "randint" and i == 1:
                    value = int(value) - 1
                path = f"{self.axis_path(spec, part, axis.key)}.{axis.kind}[{i}]"
                checks.append(({**base, axis.key: value}, path))
        count, keys = math.prod(len(a.values) for a in lists), [a.key for a in lists]
        combos: list[dict[str, Any]] = []
        if 1 < count <= MAX_COMBINATIONS_CHECKED and len(lists) > 1:
            products = itertools.product(*(a.values for a in lists))
            combos = [dict(zip(keys, values, strict=True)) for values in products]
        for resolve in (check_keys, resolve_config):
            for i, (config, path) in enumerate(checks):
                try:
                    resolve(config)
                except (ValueError, TypeError) as exc:
                    if i == 0:  # the fixed keys and each axis's first value: name the culprit
                        path = self.culprit(spec, part, str(exc)) or path
                    raise self.error(path, f"{exc}{within}") from None
            for combo in combos:
                try:
                    resolve({**base, **combo})
                except (ValueError, TypeError) as exc:
                    shown = ", ".join(f"{k}={v!r}" for k, v in combo.items())
                    where = "space" if part.name is None else f"variants.{part.name}"
                    raise self.error(where, f"the combination {shown} cannot run: {exc}") from None

    def culprit(self, spec: Spec, part: Variant, message: str) -> str | None:
        """Where the spec sets the key an error names (``key 'burn_in': ...`` ->
        ``fixed.burn_in``), else the first key the spec sets that the message mentions; None
        when it mentions none (a default's doing: the caller's path stands)."""
        named = re.match(r"key '([^']+)'", message)
        keys = [named.group(1)] if named else []
        keys += [k for k in re.findall(r"[A-Za-z_]\w*", message) if k not in keys]
        for key in keys:
            if key in part.fixed or key in part.space:
                return f"variants.{part.name}.{key}"
            if key in spec.fixed:
                return f"fixed.{key}"
            if key in spec.space:
                return f"space.{key}"
        return None

    @staticmethod
    def axis_path(spec: Spec, part: Variant, key: str) -> str:
        return f"variants.{part.name}.{key}" if key in part.space else f"space.{key}"

    def expand(self, spec: Spec) -> None:
        """List the trials (grid/random: what will run; optuna: every combination of the
        categorical values) to refuse keys without effect and oversized sweeps."""
        from orchestrator import expand

        finite = spec.algorithm == "optuna"
        drawn = any(a.kind != "grid" for p in spec.parts() for a in spec.part_axes(p).values())
        if not finite and spec.num_samples > 1 and not drawn:
            raise self.error(
                "search.num_samples",
                f"{spec.num_samples} draws of the same trials: no axis is drawn at random "
                "(choice, uniform, loguniform, randint) and a trial runs once; repeat with "
                "seed: {grid: [0, 1, ...]}",
            )
        listed = expand.listed_count(spec, finite=finite)
        if listed > expand.MAX_TRIALS:
            if finite:
                return  # optuna samples such a space; the per-value checks above stand
            raise self.error(
                "space" if not spec.subspaces else "variants",
                f"{listed:,} trials: more than {expand.MAX_TRIALS:,}; split the sweep or draw "
                "from ranges with algorithm: random / optuna",
            )
        if not finite and self.max_trials is not None and listed > self.max_trials:
            raise self.error(  # the sweep CLI's safety limit: refused before the expansion
                "space" if not spec.subspaces else "variants",
                f"{listed:,} trials, more than {self.max_trials:,}: check the search space "
                "(--dry-run lists it), then launch it with --yes",
            )
        try:
            expansion = expand.expand(spec, finite=finite)
        except expand.NoEffect as exc:
            raise self.error(exc.path, exc.reason) from None
        except expand.BadCombination as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in exc.config.items() if k != "workload")
            where = "space" if exc.variant is None else f"variants.{exc.variant}"
            raise self.error(where, f"the trial {shown} cannot run: {exc.error}") from None
        if not finite:
            spec._expansion = expansion

    def value(self, key_def: Any, key: str, value: Any, path: str) -> Any:
        try:
            return key_def.check(key, value)
        except ValueError as exc:
            raise self.error(path, str(exc)) from None

    def axis(self, key_def: Any, key: str, raw: Any, path: str) -> Axis:
        if not isinstance(raw, dict) or len(raw) != 1:
            raise self.error(
                path,
                "expected exactly one of grid: [..], choice: [..], uniform: [lo, hi], "
                f"loguniform: [lo, hi], randint: [lo, hi]; got {raw!r} (a constant goes in fixed)",
            )
        ((kind, values),) = raw.items()
        path = f"{path}.{kind}"
        if kind in LIST_KINDS:
            if not isinstance(values, list):
                raise self.error(path, f"expected a list of values, got {values!r}")
            if not values:
                raise self.error(path, "empty: list at least one value")
            checked = tuple(
                self.value(key_def, key, v, f"{path}[{i}]") for i, v in enumerate(values)
            )
            if len(set(map(repr, checked))) != len(checked):
                raise self.error(path, "a value is listed twice")
            return Axis(key, kind, values=checked)
        if kind not in RANGE_KINDS:
            raise self.error(
                path.rsplit(".", 1)[0],
                f"unknown kind {kind!r}; use one of {', '.join(LIST_KINDS + RANGE_KINDS)}",
            )
        if not isinstance(values, list) or len(values) != 2:
            raise self.error(path, f"expected [low, high], got {values!r}")
        low, high = values
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise self.error(f"{path}[{i}]", f"expected a number, got {v!r}")
        if key_def.type not in (int, float):
            raise self.error(path, f"key {key!r} is a {key_def.type.__name__}: use grid or choice")
        if kind == "randint":
            if not (isinstance(low, int) and isinstance(high, int)):
                raise self.error(path, f"randint bounds must be integers, got {values!r}")
        elif key_def.type is int:
            raise self.error(path, f"key {key!r} is an integer: use randint, grid or choice")
        if not low < high:
            raise self.error(path, f"low must be below high, got [{low}, {high}]")
        if kind == "loguniform" and low <= 0:
            raise self.error(path, f"loguniform needs low > 0, got {low}")
        for i, v in enumerate((low, high if kind != "randint" else high - 1)):
            self.value(key_def, key, float(v) if key_def.type is float else v, f"{path}[{i}]")
        return Axis(key, kind, low=low, high=high)
