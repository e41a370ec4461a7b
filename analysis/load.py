"""Reading a finished (or running) sweep back from its files.

A sweep directory ``RESULTS/<name>/`` holds (the orchestrator writes it; docs/results.md):

- ``spec.yaml``: the search-space file the sweep ran (``objectives`` gives the Pareto axes);
- ``trials.parquet``: one row per trial, every config key, every final metric, ``status``
  (ok | diverged | failed), ``error``, ``trial_id``, ``wall_s`` ...;
- ``predictions/trial_id=<id>/part-0.parquet``: classifiers, per test example ``example``,
  ``label`` and the ensemble's class probabilities ``probs``;
- ``samples/trial_id=<id>/part-0.parquet``: synthetic targets, ``sample``, ``chain`` and the
  sample ``x``.

Nothing here imports Ray, MLflow or the samplers: analysis reads files only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from analysis.calibration import classification_metrics

#: trial statuses the orchestrator writes; only ``ok`` trials can be on a front
STATUSES: tuple[str, ...] = ("ok", "diverged", "failed")

#: bookkeeping columns of ``trials.parquet``: neither config nor metric
BOOKKEEPING: frozenset[str] = frozenset(
    {"status", "error", "trial_id", "mlflow_run_id", "wall_s", "sweep_id", "git_commit"}
)

#: config keys that never distinguish two configurations: the seed (averaged over) and where
#: the trial happened to run
NOT_CONFIGURATION: frozenset[str] = frozenset({"seed", "device"})

#: columns, in order of preference, that give the order in which trials started
START_TIME_COLUMNS: tuple[str, ...] = ("start_time", "started_at", "timestamp")

#: the names of ``COMMON_KEYS`` in ``workloads/config/resolve.py`` (analysis imports neither
#: workloads nor torch; tests/analysis/test_imports.py holds this list to the key table)
COMMON_KEY_NAMES: frozenset[str] = frozenset(
    [
        "workload",
        "sampler",
        "seed",
        "device",
        "kernels",
        "variant",
        "format",
        "bits",
        "frac_bits",
        "exp_bits",
        "block_size",
        "tensors",
        "weight_format",
        "grad_format",
        "act_format",
        "error_format",
        "momentum_format",
        "accumulator",
        "rounding",
        "scale_rule",
        "vc_mode",
        "momentum_rescale",
        "lr",
        "schedule",
        "cycles",
        "explore_fraction",
        "temperature",
        "friction",
        "inverse_mass",
        "prior_std",
        "steps",
        "epochs",
        "batch_size",
        "burn_in",
        "thin",
        "num_samples",
    ]
)

#: format families, as derived by :func:`format_family`
#: format families, in the order the figures show them: the papers' formats, then the OCP
#: elements (fp8_e4m3 -> fp8), the MX block formats, NVFP4 and the scaled integers
FAMILIES: tuple[str, ...] = (
    "fp32", "fixed", "block", "float", "fp8", "fp6", "fp4", "mx", "nvfp4", "int",
)  # fmt: skip


class NoTrials(FileNotFoundError):
    """The directory holds no ``trials.parquet``: not a sweep, or one that has not written yet."""


@dataclass
class Sweep:
    """One sweep read back: its directory, its spec (``{}`` when spec.yaml is absent) and its
    trials (one row per trial, with the derived column ``family`` added)."""

    path: Path
    spec: dict[str, Any]
    trials: pd.DataFrame
    config_keys: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The sweep's name: the spec's ``name``, else the directory's."""
        return str(self.spec.get("name") or self.path.name)

    @property
    def objectives(self) -> dict[str, str]:
        """The spec's objectives ``{metric: min|max}`` (``reference`` excluded)."""
        return objectives_from_spec(self.spec)

    def predictions(self, trial_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(labels [n], probs [n, classes])`` of one trial, see :func:`load_predictions`."""
        return load_predictions(self.path, trial_id)

    def samples(self, trial_id: str) -> np.ndarray:
        """``[num_samples, chains, dim]`` of one trial, see :func:`load_samples`."""
        return load_samples(self.path, trial_id)


def format_family(weight_format: Any, fmt: Any) -> str:
    """The format family of a trial's weights (:data:`FAMILIES`): the name before ``<`` or
    ``_`` (``fixed<8,3>`` -> fixed, ``fp8_e4m3`` -> fp8, ``mx<fp4_e2m1>`` -> mx, ``nvfp4``).

    ``weight_format`` (a full format string such as ``fixed<8,3>``) overrides ``fmt``, which is a
    family name (``fixed``) or a full format string; both missing means ``fp32`` (the default
    of the ``format`` key). A string of another kind raises ``ValueError`` naming it.
    """
    for value in (weight_format, fmt):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        text = str(value).strip().lower()
        family = re.match(r"[a-z0-9]+", text)
        if family is not None and family.group(0) in FAMILIES:
            return family.group(0)
        raise ValueError(
            f"format {value!r}: cannot derive its family; expected one of "
            f"{', '.join(FAMILIES)} or a format string such as fixed<8,3>, block<8>, float<5,2>"
        )
    return "fp32"


def objectives_from_spec(spec: dict[str, Any]) -> dict[str, str]:
    """``{metric: 'min'|'max'}`` from the spec's ``objectives`` (its ``reference`` entry, the
    hypervolume reference point, is not an objective). An entry is ``metric: min`` or
    ``metric: {direction: min, tolerance: 0.005}``. ``ValueError`` on a bad direction."""
    return {metric: direction for metric, (direction, _) in _objective_entries(spec).items()}


def tolerances_from_spec(spec: dict[str, Any]) -> dict[str, float]:
    """``{metric: tolerance}`` of the objectives whose spec entry gives ``tolerance`` (a positive
    number in the metric's units); ``ValueError`` naming the key otherwise."""
    return {m: t for m, (_, t) in _objective_entries(spec).items() if t is not None}


def _objective_entries(spec: dict[str, Any]) -> dict[str, tuple[str, float | None]]:
    raw = spec.get("objectives") or {}
    if not isinstance(raw, dict):
        raise ValueError(f"spec key 'objectives': expected a mapping metric: min|max, got {raw!r}")
    entries: dict[str, tuple[str, float | None]] = {}
    for metric, entry in raw.items():
        if metric == "reference":
            continue
        tolerance = None
        direction = entry
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - {"direction", "tolerance"})
            if unknown:
                raise ValueError(
                    f"spec key 'objectives.{metric}.{unknown[0]}': not a key of an objective "
                    "(direction, tolerance)"
                )
            direction = entry.get("direction", "min")
            tolerance = entry.get("tolerance")
            if tolerance is not None and (
                isinstance(tolerance, bool)
                or not isinstance(tolerance, int | float)
                or not np.isfinite(tolerance)
                or tolerance <= 0
            ):
                raise ValueError(
                    f"spec key 'objectives.{metric}.tolerance': must be a positive number "
                    f"in {metric}'s units, got {tolerance!r}"
                )
        if direction not in ("min", "max"):
            raise ValueError(
                f"spec key 'objectives.{metric}': direction must be min or max, got {direction!r}"
            )
        entries[str(metric)] = (str(direction), None if tolerance is None else float(tolerance))
    return entries


def reference_from_spec(spec: dict[str, Any]) -> dict[str, float] | None:
    """The hypervolume reference point ``objectives.reference`` of the spec, or None.

    YAML: ``objectives: {test_error: min, bits: min, reference: {test_error: 1.0, bits: 32}}``.
    """
    raw = (spec.get("objectives") or {}).get("reference")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError(
            f"spec key 'objectives.reference': expected a mapping metric: value, got {raw!r}"
        )
    return {str(k): float(v) for k, v in raw.items()}


def parse_objectives(text: str) -> dict[str, str]:
    """``"test_error:min,bits:min"`` -> ``{"test_error": "min", "bits": "min"}``."""
    objectives: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        metric, sep, direction = part.partition(":")
        if not sep or direction.strip() not in ("min", "max") or not metric.strip():
            raise ValueError(
                f"objectives {text!r}: {part!r} is not metric:min or metric:max "
                "(example: test_error:min,bits:min)"
            )
        objectives[metric.strip()] = direction.strip()
    if not objectives:
        raise ValueError(f"objectives {text!r}: empty; example: test_error:min,bits:min")
    return objectives


def load_spec(results_dir: str | Path) -> dict[str, Any]:
    """The sweep's ``spec.yaml`` as a dict; ``{}`` when the file is absent."""
    path = Path(results_dir) / "spec.yaml"
    if not path.exists():
        return {}
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(spec).__name__}")
    return spec


def config_keys(trials: pd.DataFrame, spec: dict[str, Any]) -> list[str]:
    """The columns of ``trials`` that are config keys and distinguish configurations.

    Config keys are the common keys (``COMMON_KEYS`` in ``workloads/config/resolve.py``) plus
    the keys the spec fixes or searches (a workload's own keys); ``seed`` and ``device`` are
    excluded, so that grouping by these columns pools a configuration's seeds.
    """
    names = set(COMMON_KEY_NAMES) | set(spec.get("fixed") or {}) | set(spec.get("space") or {})
    names |= {"workload"}
    for variant in spec.get("variants") or []:  # the keys each variant fixes or searches
        names |= {k for k in (variant if isinstance(variant, dict) else {}) if k != "name"}
    return [c for c in trials.columns if c in names and c not in NOT_CONFIGURATION]


def _natural_key(text: Any) -> tuple[Any, ...]:
    """Sort key that orders ``trial_2`` before ``trial_10``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text)))


def trial_order(trials: pd.DataFrame) -> pd.DataFrame:
    """``trials`` in the order they started: by a start-time column when present
    (``start_time``, ``started_at`` or ``timestamp``), else by the trial id in natural order."""
    for column in START_TIME_COLUMNS:
        if column in trials.columns and trials[column].notna().all():
            return trials.sort_values(column, kind="stable").reset_index(drop=True)
    keys = trials["trial_id"].map(_natural_key)
    return trials.iloc[sorted(range(len(trials)), key=lambda i: keys.iloc[i])].reset_index(
        drop=True
    )


def load_trials(results_dir: str | Path) -> pd.DataFrame:
    """``trials.parquet`` as a DataFrame, with ``family`` derived from the weight format.

    Raises :class:`NoTrials` (a ``FileNotFoundError``) naming the path when the file is absent.
    """
    path = Path(results_dir) / "trials.parquet"
    if not path.exists():
        raise NoTrials(
            f"{path}: no trials.parquet; is {Path(results_dir)} a sweep directory "
            "(python -m orchestrator.sweep SPEC --results DIR writes RESULTS/<name>/)?"
        )
    trials = pq.read_table(path).to_pandas()
    for required in ("trial_id", "status"):
        if required not in trials.columns:
            raise ValueError(f"{path}: column {required!r} is missing")
    unknown = sorted(set(trials["status"].dropna()) - set(STATUSES))
    if unknown:
        raise ValueError(f"{path}: status {unknown[0]!r} is not one of {', '.join(STATUSES)}")
    trials["trial_id"] = trials["trial_id"].astype(str)
    weight = trials["weight_format"] if "weight_format" in trials else pd.Series(None, trials.index)
    fmt = trials["format"] if "format" in trials else pd.Series(None, trials.index)
    trials["family"] = [format_family(w, f) for w, f in zip(weight, fmt, strict=True)]
    return trials


def load_sweep(results_dir: str | Path) -> Sweep:
    """The sweep in ``results_dir``: spec, trials (see :func:`load_trials`) and config keys."""
    path = Path(results_dir)
    trials = load_trials(path)
    spec = load_spec(path)
    return Sweep(path=path, spec=spec, trials=trials, config_keys=config_keys(trials, spec))


def _trial_part(results_dir: str | Path, kind: str, trial_id: str) -> pa.Table:
    folder = Path(results_dir) / kind / f"trial_id={trial_id}"
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(
            f"{folder}: no {kind} for trial {trial_id!r} (failed trials and workloads without "
            f"{kind} write none)"
        )
    return pa.concat_tables([pq.read_table(f) for f in files])


def _list_column(table: pa.Table, name: str) -> np.ndarray:
    """A ``list<float32>`` column of equal-length lists as a ``[rows, length]`` float32 array."""
    column = table.column(name).combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return values.reshape(len(table), -1) if len(table) else values.reshape(0, 0)


def load_predictions(results_dir: str | Path, trial_id: str) -> tuple[np.ndarray, np.ndarray]:
    """One trial's ensemble predictions: ``labels`` ``[n]`` int64 and ``probs`` ``[n, classes]``
    float32, in the order of the ``example`` column."""
    table = _trial_part(results_dir, "predictions", trial_id)
    order = np.argsort(table.column("example").to_numpy(), kind="stable")
    labels = table.column("label").to_numpy().astype(np.int64)[order]
    return labels, _list_column(table, "probs")[order]


def load_samples(results_dir: str | Path, trial_id: str) -> np.ndarray:
    """One trial's collected samples as ``[num_samples, chains, dim]`` float32."""
    table = _trial_part(results_dir, "samples", trial_id)
    sample = table.column("sample").to_numpy()
    chain = table.column("chain").to_numpy()
    x = _list_column(table, "x")
    samples, chains = np.unique(sample), np.unique(chain)
    out = np.full((len(samples), len(chains), x.shape[1]), np.nan, dtype=np.float32)
    out[np.searchsorted(samples, sample), np.searchsorted(chains, chain)] = x
    return out


def recompute_metrics(results_dir: str | Path, trial_id: str) -> dict[str, float]:
    """A trial's metrics recomputed from its stored files, with the trials' definitions
    (ALGORITHMS.md §8; :mod:`analysis.calibration`): from predictions ``test_error``,
    ``test_nll``, ``test_ece`` (15 bins) and ``test_brier`` of the ensemble; from samples the
    ``mean`` and ``std`` of all finite values pooled. ``FileNotFoundError`` when the trial
    stored neither."""
    folder = Path(results_dir)
    if (folder / "predictions" / f"trial_id={trial_id}").is_dir():
        labels, probs = load_predictions(folder, trial_id)
        return classification_metrics(probs, labels, prefix="test_")
    if (folder / "samples" / f"trial_id={trial_id}").is_dir():
        x = np.asarray(load_samples(folder, trial_id), dtype=np.float64)
        x = x[np.isfinite(x)]
        return {"mean": float(x.mean()), "std": float(x.std())}
    raise FileNotFoundError(f"{folder}: trial {trial_id!r} stored neither predictions nor samples")


def check_metrics(sweep: Sweep, trial_ids: list[str] | None = None) -> pd.DataFrame:
    """Reported against recomputed metrics (:func:`recompute_metrics`) of the ok trials (or of
    ``trial_ids``): one row per trial and metric with ``reported``, ``recomputed`` and
    ``abs_diff``; metrics the trial did not report are left out."""
    trials = sweep.trials.set_index("trial_id")
    if trial_ids is None:
        trial_ids = trials.index[trials["status"] == "ok"].tolist()
    rows = []
    for trial_id in trial_ids:
        for metric, value in recompute_metrics(sweep.path, trial_id).items():
            if metric in trials.columns and pd.notna(trials.at[trial_id, metric]):
                reported = float(trials.at[trial_id, metric])
                rows.append(
                    {
                        "trial_id": trial_id,
                        "metric": metric,
                        "reported": reported,
                        "recomputed": value,
                        "abs_diff": abs(reported - value),
                    }
                )
    return pd.DataFrame(rows, columns=["trial_id", "metric", "reported", "recomputed", "abs_diff"])
