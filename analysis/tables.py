"""The report's tables as files: each as CSV and as typed Parquet beside it, read back as
written; the seed-averaged front joined with the answer's intervals and verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from pyarrow import ArrowException

from analysis.answer import Answer


def _write_table(frame: pd.DataFrame, path: Path) -> list[Path]:
    """``frame`` as CSV at ``path`` and as typed Parquet beside it (``.parquet``): trial ids
    such as ``91781970`` or ``12e45678`` stay strings there, where CSV readers make numbers."""
    frame.to_csv(path, index=False)
    typed = path.with_suffix(".parquet")
    frame = frame.reset_index(drop=True)
    try:
        frame.to_parquet(typed, index=False)
    except (TypeError, ValueError, ArrowException):
        # a column mixing types (a key that is a number in one trial and a name in another):
        # Parquet wants one type per column, so such columns are written as text
        mixed = {
            c: frame[c].map(lambda v: None if v is None or v != v else str(v))
            for c in frame.columns
            if frame[c].dtype == object
        }
        frame.assign(**mixed).to_parquet(typed, index=False)
    return [path, typed]


def read_table(path: str | Path) -> pd.DataFrame:
    """A table the report wrote, as written: the typed Parquet beside ``path`` (a ``.csv``
    name or the ``.parquet`` one)."""
    return pd.read_parquet(Path(path).with_suffix(".parquet"))


def _with_answer(frame: pd.DataFrame, answer: Answer | None) -> pd.DataFrame:
    """``frame`` (one row per configuration, with ``configuration``) with the answer's 95% CI
    of each compared objective, the verdict and the front probability."""
    if answer is None or "configuration" not in frame.columns:
        return frame
    extra = {}
    for c in answer.configurations:
        row: dict[str, Any] = {"verdict": c.verdict, "front_probability": c.front_probability}
        for m, f in c.figures.items():
            row[f"{m}_lo"], row[f"{m}_hi"] = f.ci
        extra[c.configuration] = row
    columns = list(dict.fromkeys(k for r in extra.values() for k in r))
    add = pd.DataFrame(
        [extra.get(str(name), {}) for name in frame["configuration"]],
        columns=columns,
        index=frame.index,
    )
    return pd.concat([frame, add[[c for c in columns if c not in frame.columns]]], axis=1)
