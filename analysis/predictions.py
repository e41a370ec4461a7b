"""Reading a sweep for the answer: each trial's configuration name, and the per-example
losses of the ok trials from ``predictions/`` (what the two-way bootstrap resamples)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import stats
from analysis.baseline import FORMAT_KEYS, _missing


def configuration_names(trials: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """Each trial's configuration name: the ``configuration`` column when present (the MLflow
    child run name without the seed), else the variant, the weight format (``weight_format``,
    else ``format<bits>``) and ``key=value`` of every other config key that varies."""
    if "configuration" in trials.columns and trials["configuration"].notna().all():
        return trials["configuration"].astype(str)
    varying = [k for k in keys if k in trials.columns and trials[k].astype(str).nunique() > 1]
    fmt_keys = ("format", "bits", *FORMAT_KEYS)
    parts: list[pd.Series] = []
    if "variant" in trials.columns:
        parts.append(trials["variant"].map(lambda v: "" if _missing(v) else str(v)))
    if any(k in varying for k in fmt_keys):
        fmt = trials["format"] if "format" in trials.columns else pd.Series(None, trials.index)
        bits = trials["bits"] if "bits" in trials.columns else pd.Series(None, trials.index)
        weight = (
            trials["weight_format"]
            if "weight_format" in trials.columns
            else pd.Series(None, trials.index)
        )
        parts.append(
            pd.Series(
                [
                    str(w)
                    if not _missing(w)
                    else "fp32"
                    if _missing(f) or str(f) == "fp32"
                    else str(f)
                    if _missing(b)
                    else f"{f}<{int(b)}>"
                    for w, f, b in zip(weight, fmt, bits, strict=True)
                ],
                index=trials.index,
            )
        )
    for k in varying:
        if k in fmt_keys or k == "variant":
            continue
        parts.append(trials[k].map(lambda v, k=k: _name_part(k, v)))
    if not parts:
        return pd.Series("all", index=trials.index)
    joined = pd.Series(
        [" ".join(p for p in row if p) for row in zip(*parts, strict=True)], index=trials.index
    )
    return joined.where(joined != "", "all")


def _name_part(key: str, v: Any) -> str:
    """One key's part of a configuration name: ``key=value`` for numbers and booleans, the
    value itself for names (``vc``, ``sgld``), nothing when unset."""
    if _missing(v):
        return ""
    if isinstance(v, bool | np.bool_):
        return f"{key}={str(bool(v)).lower()}"
    if isinstance(v, float | np.floating):
        return f"{key}={v:.4g}"
    if isinstance(v, int | np.integer):
        return f"{key}={v}"
    return str(v)


@dataclass
class _Predictions:
    """Per-example data of the ok trials: per additive metric L [T, N], ECE bins/gaps [T, N]."""

    n_test: int
    losses: dict[str, np.ndarray]
    ece: tuple[np.ndarray, np.ndarray] | None
    wrong: np.ndarray | None


def read_predictions(
    sweep_dir: Path, trial_ids: Sequence[str], metrics: Sequence[str], chunk: int = 500
) -> tuple[_Predictions | None, str | None]:
    """Per-example losses of ``metrics`` (additive ones and ``test_ece``) for ``trial_ids``.

    The files are read by Arrow's dataset scanner (its own threads, no Python per file), in
    chunks of ``chunk`` trials to bound memory, and every chunk is scored at once as a
    [trials, N, classes] array. Returns (None, why) when a trial has no predictions or the
    trials were not scored on the same examples."""
    import pyarrow.dataset as ds

    additive = [m for m in metrics if m in stats.ADDITIVE]
    want_ece = "test_ece" in metrics
    want_wrong = "test_error" in metrics
    if not trial_ids or not (additive or want_ece):
        return None, None
    files: list[list[Path]] = []
    for t in trial_ids:
        found = sorted((sweep_dir / "predictions" / f"trial_id={t}").glob("*.parquet"))
        if not found:
            return None, f"trial {t} stored no predictions"
        files.append(found)
    losses: dict[str, list[np.ndarray]] = {m: [] for m in additive}
    bins: list[np.ndarray] = []
    gaps: list[np.ndarray] = []
    wrong: list[np.ndarray] = []
    labels0: np.ndarray | None = None
    for start in range(0, len(files), chunk):
        group = files[start : start + chunk]
        flat = [f for fs in group for f in fs]
        owner = np.repeat(np.arange(len(group)), [len(fs) for fs in group])
        table = ds.dataset([str(f) for f in flat], format="parquet").to_table(
            columns=["example", "label", "probs", "__fragment_index"]
        )
        trial = owner[table.column("__fragment_index").to_numpy()]
        example = table.column("example").to_numpy()
        order = np.lexsort((example, trial))
        counts = np.bincount(trial, minlength=len(group))
        n_test = int(counts[0])
        if not np.all(counts == n_test) or n_test == 0:
            bad = trial_ids[start + int(np.flatnonzero(counts != n_test)[0])]
            return None, f"trial {bad} has another number of test predictions than the others"
        label = table.column("label").to_numpy().astype(np.int64)[order].reshape(len(group), -1)
        probs = table.column("probs").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        probs = probs.reshape(len(table), -1)[order].reshape(len(group), n_test, -1)
        if labels0 is None:
            labels0 = label[0]
        same = (label.shape[1] == len(labels0)) and np.all(label == labels0[None])
        if not same:
            return None, (
                f"the trials were not all scored on the same test examples (labels differ "
                f"from trial {trial_ids[0]}'s): no paired comparison"
            )
        for m in additive:
            losses[m].append(stats.per_example(m, labels0, probs))
        if want_ece:
            index, gap = stats.ece_parts(labels0, probs)
            bins.append(index)
            gaps.append(gap)
        if want_wrong:
            wrong.append(probs.argmax(axis=-1) != labels0[None])
    assert labels0 is not None
    return (
        _Predictions(
            len(labels0),
            {m: np.concatenate(v) for m, v in losses.items()},
            (np.concatenate(bins), np.concatenate(gaps)) if want_ece else None,
            np.concatenate(wrong) if want_wrong else None,
        ),
        None,
    )
