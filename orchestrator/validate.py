"""The search-space schema, checked: :class:`SpecValidator` turns a YAML document into a
:class:`orchestrator.specmodel.Spec` or raises one :class:`SpecError` line."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.specmodel import (
    ALGORITHMS,
    ALLOWED_METRICS,
    BASE_METRICS,
    COST_METRICS,
    LIST_KINDS,
    MAX_COMBINATIONS_CHECKED,
    RANGE_KINDS,
    SCHEDULERS,
    TOP_KEYS,
    Axis,
    Spec,
    Variant,
    baseline_candidates,
)


class SpecValidator:
    """Every check of a search-space document, each method one part of the schema; the first
    problem raises :class:`SpecError` naming the file, the key path and the reason."""

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
        from workloads.config.resolve import keys_for

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
        from workloads.config.resolve import keys_for

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
        from workloads.config.resolve import check_keys, resolve_config

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
