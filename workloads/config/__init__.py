"""The config schema: every key a trial understands and what a trial's config resolves to.

- ``keyspec``: one key (type, default, bounds, choices, when it has an effect) and the words
  the keys use (format families, tensor kinds);
- ``table``: each project workload's keys, defaults, samplers and run length;
- ``resolve``: the common keys, ``check_keys`` (torch-free), ``resolve_config`` (defaults
  filled, checks run, keys without effect set to None), relevance and the trial's record;
- ``checks``: each project workload's own torch-free checks;
- ``precision``: the ``format``/``bits`` families and ``*_format`` keys made a
  ``lowprec.PrecisionSpec``;
- ``runspec`` and ``trialspec``: the typed values a trial is made of, and the ``TrialSpec`` a
  trial resolves once and passes down;
- ``doc``: docs/keys.md and ``--keys``, generated from the table.

Nothing here imports torch: a bad key is refused before torch loads.
"""

from workloads.config.resolve import (
    COMMON_KEYS,
    check_keys,
    defaults_for,
    effective_params,
    irrelevant_keys,
    keys_for,
    resolve_config,
    with_defaults,
)
from workloads.config.trialspec import TrialSpec, build_sampler

__all__ = [
    "COMMON_KEYS",
    "TrialSpec",
    "build_sampler",
    "check_keys",
    "defaults_for",
    "effective_params",
    "irrelevant_keys",
    "keys_for",
    "resolve_config",
    "with_defaults",
]
