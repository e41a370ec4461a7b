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

from pathlib import Path
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.specmodel import (
    ALGORITHMS,
    ALLOWED_METRICS,
    BASE_METRICS,
    COST_METRICS,
    LIST_KINDS,
    MAX_COMBINATIONS_CHECKED,
    NOT_CONFIGURATION,
    RANGE_KINDS,
    SCHEDULERS,
    TOP_KEYS,
    Axis,
    Spec,
    Variant,
    baseline_candidates,
)
from orchestrator.validate import SpecValidator
from orchestrator.yamlio import load_yaml, read_text

__all__ = [
    "ALGORITHMS",
    "ALLOWED_METRICS",
    "BASE_METRICS",
    "COST_METRICS",
    "LIST_KINDS",
    "MAX_COMBINATIONS_CHECKED",
    "NOT_CONFIGURATION",
    "RANGE_KINDS",
    "SCHEDULERS",
    "TOP_KEYS",
    "Axis",
    "Spec",
    "SpecError",
    "Variant",
    "baseline_candidates",
    "check_data",
    "load_spec",
    "parse_spec",
]


def check_data(spec: Spec) -> None:
    """Refuse, with :class:`SpecError`, a spec whose trials need data that is not on this machine
    (:func:`workloads.datacheck.check_data`, once per distinct data set): the message names the
    key, the directory and the files expected."""
    from orchestrator.expand import configs_with_parts
    from workloads.config.resolve import resolve_config
    from workloads.datacheck import MissingData, data_needs
    from workloads.datacheck import check_data as check_config

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
    return SpecValidator(file, text, max_trials).validate(doc)
