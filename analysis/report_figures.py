"""The report's figures that read more than the trials table: sample histograms against the
target density (``samples.png``) and reliability diagrams (``reliability.png``); and which
column is the figures' x axis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import numpy as np
import pandas as pd

from analysis import plots
from analysis.answer import Answer
from analysis.baseline import is_cost
from analysis.load import Sweep, load_predictions, load_samples

#: metrics plotted against bits whenever the sweep reports them
PLOTTED_METRICS: tuple[str, ...] = ("test_error", "test_nll", "test_ece")

#: bits-like cost columns, in order of preference for the x-axis of the figures: the storage
#: bits per weight (counts the float32 master copy of ``accumulator: full``), the word length
BITS_AXES: tuple[str, ...] = ("bits_per_param", "bits")

#: most configurations drawn per accumulator panel of samples.png
MAX_HISTOGRAMS = 4


def bits_axis(objectives: Mapping[str, str], columns: Sequence[str]) -> str | None:
    """The column on the x-axis of the figures: the spec's first cost objective that is a
    column (``ensemble_bits``, ``bops_per_step`` ...; ``bits_per_param`` before ``bits`` when
    both are), else ``bits`` when it is a column, else None (no figure against a cost)."""
    costs = [m for m in objectives if is_cost(m) and m in columns]
    costs.sort(key=lambda m: m == "bits")  # the word length only when nothing else is
    if costs:
        return costs[0]
    return "bits" if "bits" in columns else None


def _label(row: pd.Series) -> str:
    """A short name of a trial's configuration: weight format (or format and bits) and lr."""
    fmt = row.get("weight_format")
    if fmt is None or (isinstance(fmt, float) and np.isnan(fmt)):
        fmt = row.get("format", "fp32")
        if fmt in ("fixed", "block", "float") and "bits" in row:
            fmt = f"{fmt} {int(row['bits'])}"
    lr = row.get("lr")
    return f"{fmt} lr={lr:g}" if isinstance(lr, int | float) and np.isfinite(lr) else str(fmt)


def samples_figure(sweep: Sweep, ok: pd.DataFrame) -> plots.Figure | None:
    """samples.png: per accumulator mode up to MAX_HISTOGRAMS configurations, seeds pooled."""
    if not (sweep.path / "samples").is_dir() or "accumulator" not in ok.columns:
        return None
    keys = [k for k in sweep.config_keys if k in ok.columns]
    sets: dict[str, list[tuple[str, np.ndarray]]] = {}
    for _, group in ok.groupby(keys, dropna=False, sort=True):
        mode = str(group["accumulator"].iloc[0])
        if len(sets.setdefault(mode, [])) >= MAX_HISTOGRAMS:
            continue
        parts = []
        for trial_id in group["trial_id"]:
            try:
                x = load_samples(sweep.path, trial_id)[..., :1]  # coordinate 0
                parts.append(x.reshape(-1, 1, 1))
            except FileNotFoundError:
                continue
        if parts:
            sets[mode].append((_label(group.iloc[0]), np.concatenate(parts)))
    sets = {mode: s for mode, s in sets.items() if s}
    if not sets:
        return None
    workload = str(ok["workload"].iloc[0]) if "workload" in ok.columns else "gaussian"
    target = plots.TARGET_PDFS.get(workload, plots.gaussian_pdf)
    scales = ok["target_std"].dropna().unique() if "target_std" in ok.columns else []
    if workload == "gaussian" and len(scales) == 1 and scales[0] != 1.0:
        # the Gaussian workload targets N(0, T Σ); in 1-D its target_std is sqrt(T Σ)
        target = partial(plots.scaled_pdf, plots.gaussian_pdf, float(scales[0]))
    return plots.plot_sample_histograms(
        sets,
        target,
        title=f"{sweep.name}: samples (coordinate 0, seeds pooled) against the "
        f"{workload} target density",
    )


def reliability_figure(sweep: Sweep, ok: pd.DataFrame) -> plots.Figure | None:
    """reliability.png: the best ok trial on test_error per accumulator mode."""
    if not (sweep.path / "predictions").is_dir() or "test_error" not in ok.columns:
        return None
    by = "accumulator" if "accumulator" in ok.columns else None
    groups = ok.groupby(by, sort=True) if by else [("all", ok)]
    panels = []
    for mode, group in groups:
        best = group.sort_values("test_error", kind="stable").iloc[0]
        try:
            labels, probs = load_predictions(sweep.path, best["trial_id"])
        except FileNotFoundError:
            continue
        mode = mode[0] if isinstance(mode, tuple) else mode
        panels.append(
            (
                f"{plots.LABELS.get(str(mode), str(mode))}: {_label(best)}\n"
                f"trial {best['trial_id']}",
                labels,
                probs,
            )
        )
    return plots.plot_reliability(panels) if panels else None


def _intervals(answer: Answer | None, metric: str) -> dict[str, tuple[float, float]]:
    """``{configuration: (lo, hi)}`` of the answer's 95% CIs for ``metric`` ({} without)."""
    if answer is None:
        return {}
    return {
        c.configuration: c.figures[metric].ci for c in answer.configurations if metric in c.figures
    }
