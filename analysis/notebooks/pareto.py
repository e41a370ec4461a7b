# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Pareto fronts of a low-precision sampling sweep
#
# How few bits does Bayesian deep learning need? This notebook reads one sweep directory
# (`RESULTS/<name>/`, written by `python -m orchestrator.sweep SPEC`) and shows
#
# 1. the trials by status (diverged and failed trials are listed, never on a front);
# 2. the **Pareto front** of the sweep's objectives over individual trials, and over
#    configurations averaged over seeds (mean, std and the number of seeds);
# 3. the **hypervolume** and the **knee** (the trial we would pick);
# 4. figures: each metric against bits (`bits_per_param` when the objectives use it, else the
#    word length `bits`) with fronts per accumulator mode and format family,
#    reliability diagrams (classifiers), sample histograms against the target density
#    (synthetic targets) and, for optuna sweeps, the hypervolume against the trial count.
#
# Run it on another sweep with papermill:
#
#     papermill analysis/notebooks/pareto.ipynb out.ipynb -p results_dir results/bits
#
# or change `results_dir` in the next cell. `objectives` overrides the spec's objectives,
# e.g. `"test_nll:min,bits:min"`.

# %% tags=["parameters"]
results_dir = "results/smoke"
objectives = None

# %%
# %matplotlib inline
# ruff: noqa: E402  (a notebook: imports follow the parameters cell)
from pathlib import Path

import pandas as pd
from IPython.display import display

from analysis import plots
from analysis.load import load_sweep, parse_objectives, reference_from_spec, trial_order
from analysis.pareto import (
    aggregate_seeds,
    hypervolume_history,
    knee,
    pareto_front,
    reference_point,
    split_by_status,
    trials_hypervolume,
)
from analysis.report import (
    BITS_AXES,
    bits_axis,
    default_objectives,
    reliability_figure,
    samples_figure,
    with_objective_columns,
)

pd.set_option("display.max_columns", 40)
pd.set_option("display.width", 160)

sweep = load_sweep(Path(results_dir))
objectives = parse_objectives(objectives) if objectives else default_objectives(sweep)
# a sweep where no trial is ok has no metric columns: its objectives count as all-NaN
trials = with_objective_columns(sweep.trials, objectives, f"sweep {sweep.name}")
print(f"sweep {sweep.name}: {len(trials)} trials, objectives {objectives}")
display(trials["status"].value_counts().rename("trials").to_frame())

# %% [markdown]
# ## Trials that are not ok
#
# `diverged` means the chain's numbers went non-finite (too few bits, too large a step, or the
# naive low-precision accumulator); `failed` is any other error. Neither is on a front: a
# configuration that diverges on some seeds is averaged over its ok seeds only, and its
# `n_seeds` below says so.

# %%
split = split_by_status(trials, objectives)
not_ok = trials[trials["status"] != "ok"]
display(not_ok[[c for c in ("trial_id", "status", "error", *sweep.config_keys) if c in not_ok]])
print(f"ok trials with an objective missing: {len(split['incomplete'])}")

# %% [markdown]
# ## The Pareto front over trials
#
# A trial is on the front when no other ok trial is at least as good on every objective and
# strictly better on one. With `test_error` and `bits`, read the table from the top: each row
# buys a lower error with more bits than the row before it. The **knee** is the member
# closest to the ideal point (the best value of every objective) once each objective is scaled
# to [0, 1] over the front; it is the trial to pick when no objective matters more than the
# others.

# %%
keys = [k for k in sweep.config_keys if k in trials.columns]
shown = list(dict.fromkeys(["trial_id", *objectives, *keys, "family"]))
front = pareto_front(trials, objectives)[[c for c in shown if c in trials.columns]]
if len(front):
    picked = knee(front, objectives)
    front.insert(1, "knee", range(len(front)))
    front["knee"] = front["knee"] == picked.index
display(front)

# %% [markdown]
# ## The Pareto front over configurations (seeds averaged)
#
# Trials sharing every config key but the seed are pooled: each objective is their mean, the
# `_std` column their standard deviation across seeds (ddof 1) and `n_seeds` how many ok seeds
# there were. A front member whose std is comparable to the gap to its neighbours is not
# clearly better than them.

# %%
metrics = [
    m
    for m in (*objectives, "test_error", "test_nll", "test_ece", "w2", "std")
    if m in trials.columns and m not in keys
]
pooled = aggregate_seeds(trials, keys, list(dict.fromkeys(metrics)))
display(pareto_front(pooled, objectives))

# %% [markdown]
# ## Hypervolume
#
# The hypervolume is the volume of objective space that the front dominates, up to a reference
# point: the spec's `objectives.reference` when given, else the worst ok value of each
# objective plus 10 % of its range. Larger is better. Two sweeps compare by this one number
# only under the same reference point: pass both sweeps' trials to `reference_point`.

# %%
if len(split["ok"]):
    given = {m: v for m, v in (reference_from_spec(sweep.spec) or {}).items() if m in objectives}
    reference = reference_point(trials, objectives, given)
    signs = [1.0 if d == "min" else -1.0 for d in objectives.values()]
    in_units = {m: float(r * s) for m, r, s in zip(objectives, reference, signs, strict=True)}
    print(f"reference point: {in_units}")
    print(f"hypervolume: {trials_hypervolume(trials, objectives, reference):.6g}")
else:
    print("no ok trial: no reference point and no hypervolume")

# %% [markdown]
# ## Figures
#
# Each metric against bits (the x-axis is `bits_per_param`, the storage bits per weight that
# count the float32 master copy of `full` as 32, when that is an objective; else `bits`, the
# weight format's word length): every point is a configuration (mean over seeds, bar = std); the
# staircase of a colour is that group's front, left by accumulator mode (`full` keeps a float32
# master copy, `low` rounds the stored weights after each update, `vc` uses
# variance-corrected rounding), right by format family. A staircase lower and further left is
# better: fewer bits for the same error.

# %%
ok = split["ok"]
x_axis = bits_axis(objectives, list(trials.columns))
if not len(ok):
    print("no ok trial: no figures (they need ok trials)")
for metric in dict.fromkeys(("test_error", "test_nll", "test_ece", *objectives)):
    if metric in BITS_AXES or x_axis is None or metric not in trials.columns:
        continue
    if ok[metric].notna().any():
        direction = objectives.get(metric, "min")
        display(plots.plot_metric_vs_bits(trials, metric, keys, bits=x_axis, direction=direction))

# %% [markdown]
# Reliability diagrams (classifiers): the best trial of each accumulator mode. Bars are the
# accuracy of the predictions in each of 15 confidence bins; the dashed diagonal is perfect
# calibration, bars below it are over-confident. ECE is the gap averaged with the bins' mass.
#
# Sample histograms (synthetic targets, LP-SGLD paper fig. 1): the naive `low` accumulator
# inflates the variance by about Δ²/(12 α); `full` and `vc` should follow the target.

# %%
for figure in (reliability_figure(sweep, ok), samples_figure(sweep, ok)):
    if figure is not None:
        display(figure)

# %% [markdown]
# Hypervolume against the number of trials (optuna sweeps): how quickly the search found the
# front. A curve still rising at the end means more trials would likely improve the front.

# %%
if (sweep.spec.get("search") or {}).get("algorithm") == "optuna" and len(ok):
    history = hypervolume_history(trial_order(trials), objectives, reference)
    display(plots.plot_hypervolume_history(history))
