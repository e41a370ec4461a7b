"""The report's cost panel: for the configurations on the front, every cost column of
trials.parquet (storage, resident state, ensemble bits, bit operations, energy, peak memory,
and the sampling diagnostics where the workload runs chains) as a mean over the configuration's
ok trials and as a ratio to the float32 baseline's, so one table says what a low-precision
configuration saves and what it costs in sampling quality.

The baseline is the answer's (the spec's ``baseline:``), else the one configuration whose
formats are all fp32 (:func:`analysis.baseline.select_baseline`). Columns that are absent are
not shown; columns present but null in every trial are left out and named in a note.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.baseline import select_baseline

#: the cost and diagnostic columns a trial may carry, in the order the panel shows them
COST_COLUMNS: tuple[str, ...] = (
    "bits_per_param",
    "state_bytes",
    "ensemble_bits",
    "bops_per_step",
    "bops_per_prediction",
    "energy_pj_per_step",
    "energy_pj_per_prediction",
    "peak_rss_mb",
    "ess",
    "rhat",
    "ess_per_s",
)

#: the suffix of a ratio column: the configuration's mean over the baseline's
RATIO = "_ratio"


def panel_baseline(trials: pd.DataFrame, baseline: str | None = None) -> str | None:
    """The configuration the panel divides by: ``baseline`` when given, else the one whose
    formats are all fp32 (None when not exactly one is)."""
    if baseline is not None or "configuration" not in trials.columns or trials.empty:
        return baseline
    first = trials.drop_duplicates("configuration")
    found = select_baseline(None, first.to_dict("records"))
    return str(first["configuration"].iloc[found[0]]) if found else None


def cost_panel(
    trials: pd.DataFrame, configurations: Sequence[str], baseline: str | None
) -> tuple[pd.DataFrame, list[str]]:
    """``(panel, notes)``: one row per configuration of ``configurations`` (the baseline
    first), ``configuration`` and per cost column present ``<column>`` (the mean over its ok
    trials) and ``<column>_ratio`` (over the baseline's mean; NaN without a baseline or where
    the baseline's is 0 or missing). ``trials`` needs ``configuration`` and ``status``."""
    notes: list[str] = []
    present = [c for c in COST_COLUMNS if c in trials.columns]
    if not present or "configuration" not in trials.columns:
        return pd.DataFrame(), ["no cost column in trials.parquet: no cost panel"]
    ok = trials[trials["status"] == "ok"]
    values = ok[present].apply(pd.to_numeric, errors="coerce")
    empty = [c for c in present if values[c].isna().all()]
    if empty:
        notes.append(f"left out, null in every ok trial: {', '.join(empty)}")
    shown = [c for c in present if c not in empty]
    if not shown:
        return pd.DataFrame(), notes
    means = values[shown].groupby(ok["configuration"].astype(str)).mean()
    names = list(dict.fromkeys([*([baseline] if baseline else []), *map(str, configurations)]))
    names = [n for n in names if n in means.index]
    if baseline is None:
        notes.append("no baseline (no configuration with all formats fp32): no ratios")
    elif baseline not in means.index:
        notes.append(f"the baseline {baseline} has no ok trial: no ratios")
    base = means.loc[baseline] if baseline in means.index else pd.Series(np.nan, index=shown)
    frame = pd.DataFrame({"configuration": names})
    for c in shown:
        column = means[c].reindex(names).to_numpy(dtype=float)
        ref = float(base[c])
        frame[c] = column
        frame[c + RATIO] = column / ref if np.isfinite(ref) and ref != 0 else np.nan
    return frame, notes
