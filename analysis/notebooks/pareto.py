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
# # How few bits suffice? The answer of a low-precision sampling sweep
#
# This notebook reads one sweep directory (`RESULTS/<name>/`, written by
# `python -m orchestrator.sweep SPEC`; by default `results/bits`, the default sweep of
# `make sweep`) and shows
#
# 1. **the answer**: the configuration with the fewest bits whose test error (and every other
#    objective) is *equivalent* to the baseline's within the tolerance, or *better*, with 95 %
#    confidence intervals that count both the seeds and the finite test set, and the verdict
#    of every configuration (the same figures as `python -m analysis.answer DIR` and the
#    report);
# 2. the trials by status (diverged and failed trials are listed, never on a front);
# 3. the **Pareto front** of the sweep's objectives over individual trials, and over
#    configurations averaged over seeds, with the knee of the configuration means;
# 4. figures: each metric against bits, reliability diagrams (classifiers), sample histograms
#    against the target density (synthetic targets) and, for optuna sweeps, the hypervolume
#    against the trial count.
#
# Open it in JupyterLab (the optional `notebook` extra):
#
#     .venv/bin/pip install -e '.[notebook]'
#     .venv/bin/jupyter lab analysis/notebooks/pareto.ipynb
#
# or run it on another sweep with papermill:
#
#     papermill analysis/notebooks/pareto.ipynb out.ipynb -p results_dir results/bits
#
# or change `results_dir` in the next cell. `objectives` overrides the spec's objectives for the
# fronts, e.g. `"test_nll:min,bits:min"` (the answer always uses the spec's).

# %% tags=["parameters"]
results_dir = "results/bits"
objectives = None
resamples = 2000

# %%
# %matplotlib inline
# ruff: noqa: E402  (a notebook: imports follow the parameters cell)
from pathlib import Path

import pandas as pd
from IPython.display import display

from analysis import plots
from analysis.answer import compute_answer, is_cost
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
    bits_axis,
    default_objectives,
    reliability_figure,
    samples_figure,
    with_objective_columns,
)

pd.set_option("display.max_columns", 40)
pd.set_option("display.width", 160)

sweep = None
if not (Path(results_dir) / "trials.parquet").exists():
    print(
        f"no sweep at {results_dir}: run `make sweep` (it writes results/bits), or set "
        "results_dir to a sweep directory RESULTS/<name>"
    )
else:
    sweep = load_sweep(Path(results_dir))
    objectives = parse_objectives(objectives) if objectives else default_objectives(sweep)
    # a sweep where no trial is ok has no metric columns: its objectives count as all-NaN
    trials = with_objective_columns(sweep.trials, objectives, f"sweep {sweep.name}")
    print(f"sweep {sweep.name}: {len(trials)} trials, objectives {objectives}")
    display(trials["status"].value_counts().rename("trials").to_frame())

# %% [markdown]
# ## The answer
#
# A *configuration* is the set of trials that differ only in their seed. Its figure is the
# mean over seeds, with a 95 % confidence interval from a bootstrap that resamples both the
# seeds and the test examples (the test set is shared by every seed, so its noise does not
# average out over seeds). Against the **baseline** (the spec's `baseline`, else the one
# configuration whose formats are all fp32) the difference is computed on the same test
# examples and the same seeds, and each configuration gets a verdict: *equivalent* when the
# 90 % CI of the difference lies inside ± the tolerance, *worse* or *better* when it does not
# and the 95 % CI lies entirely on one side of 0, otherwise *inconclusive*. The answer is the
# cheapest configuration that is equivalent or better; the front probability is the share of
# resamples in which a configuration is on the Pareto front.

# %%
answer = None
if sweep is not None:
    answer = compute_answer(results_dir, resamples=resamples)
    print(answer.sentence)
    for note in answer.notes:
        print("note:", note)
    display(answer.table())

# %% [markdown]
# The answer's figure: each configuration's mean and 95 % CI against its cost (log2 axis),
# coloured by verdict; the grey band is the baseline's 95 % CI, the dotted lines baseline ±
# tolerance, the staircase the front of configuration means, the circled point the answer.
# Below it, the difference against the baseline (same seeds, same test examples) with its 90 %
# CI and the ± tolerance band: the panel the verdicts read.

# %%
if answer is not None and answer.cost_name and any(c.n_seeds for c in answer.configurations):
    for metric in answer.objectives:
        display(plots.plot_answer(answer, metric))

# %% [markdown]
# ## Trials that are not ok
#
# `diverged` means the chain's numbers went non-finite (too few bits, too large a step, or the
# naive low-precision accumulator); `failed` is any other error. Neither is on a front: a
# configuration that diverges on some seeds is averaged over its ok seeds only, and its
# `n_seeds` below says so.

# %%
if sweep is not None:
    split = split_by_status(trials, objectives)
    not_ok = trials[trials["status"] != "ok"]
    shown = [c for c in ("trial_id", "status", "error", *sweep.config_keys) if c in not_ok]
    display(not_ok[shown])
    print(f"ok trials with an objective missing: {len(split['incomplete'])}")

# %% [markdown]
# ## The Pareto front over trials, and over configurations
#
# A trial is on the front when no other ok trial is at least as good on every objective and
# strictly better on one. Over configurations, trials sharing every config key but the seed
# are pooled: each objective is their mean, the `_std` column their standard deviation across
# seeds and `n_seeds` how many ok seeds there were. The **knee** is the member of the front of
# configuration means closest to the ideal point (the best value of every objective) once each
# objective is scaled to [0, 1] over the front.

# %%
if sweep is not None:
    keys = [k for k in sweep.config_keys if k in trials.columns]
    shown = list(dict.fromkeys(["trial_id", *objectives, *keys, "family"]))
    display(pareto_front(trials, objectives)[[c for c in shown if c in trials.columns]])
    metrics = [
        m
        for m in (*objectives, "test_error", "test_nll", "test_ece", "w2", "std")
        if m in trials.columns and m not in keys
    ]
    pooled = aggregate_seeds(trials, keys, list(dict.fromkeys(metrics)))
    front_mean = pareto_front(pooled, objectives)
    if len(front_mean):
        picked = knee(front_mean, objectives)
        front_mean.insert(0, "knee", front_mean.index == picked.index)
        print(f"knee (configuration means): row {picked.index} of the table below")
    display(front_mean)

# %% [markdown]
# ## Hypervolume
#
# The hypervolume is the area (volume) of objective space that the trials' front dominates, up
# to a reference point: the spec's `objectives.reference` when given, else the worst ok value
# of each objective plus 10 % of its range. Larger is better. It is only for comparing sweeps,
# and only under the same reference point (pass both sweeps' trials to `reference_point`).

# %%
if sweep is not None and len(split["ok"]):
    given = {m: v for m, v in (reference_from_spec(sweep.spec) or {}).items() if m in objectives}
    reference = reference_point(trials, objectives, given)
    signs = [1.0 if d == "min" else -1.0 for d in objectives.values()]
    in_units = {m: float(r * s) for m, r, s in zip(objectives, reference, signs, strict=True)}
    print(f"reference point: {in_units}")
    print(f"hypervolume: {trials_hypervolume(trials, objectives, reference):.6g}")
elif sweep is not None:
    print("no ok trial: no reference point and no hypervolume")

# %% [markdown]
# ## Figures
#
# Each metric against the spec's cost objective: `bits_per_param` (the storage bits per weight
# that count the float32 master copy of `full` as 32) or `bits` (the weight format's word
# length) on a log2 axis; another cost (`ensemble_bits`, `bops_per_step` ...) on a log axis
# where it spans more than a decade; `bits` when no cost is an objective. Every point is a
# configuration (mean over seeds, bar = its 95 % CI from the answer); the staircase of a colour
# is that group's front, left by accumulator mode (`full` keeps a float32 master copy, `low`
# rounds the stored weights after each update, `vc`
# uses variance-corrected rounding), right by format family.

# %%
if sweep is not None:
    ok = split["ok"]
    x_axis = bits_axis(objectives, list(trials.columns))
    if not len(ok):
        print("no ok trial: no figures (they need ok trials)")
    plotted = trials
    if "configuration" not in plotted.columns and answer is not None:
        names = {t: c.configuration for c in answer.configurations for t in c.trial_ids}
        plotted = trials.assign(configuration=trials["trial_id"].map(names))
    for metric in dict.fromkeys(("test_error", "test_nll", "test_ece", *objectives)):
        if is_cost(metric) or x_axis is None or metric not in trials.columns:
            continue
        if ok[metric].notna().any():
            intervals = {}
            if answer is not None:
                intervals = {
                    c.configuration: c.figures[metric].ci
                    for c in answer.configurations
                    if metric in c.figures
                }
            fig = plots.plot_metric_vs_bits(
                plotted,
                metric,
                keys,
                bits=x_axis,
                direction=objectives.get(metric, "min"),
                intervals=intervals,
            )
            display(fig)

# %% [markdown]
# Reliability diagrams (classifiers): the best trial of each accumulator mode. Bars are the
# accuracy of the predictions in each of 15 confidence bins; the dashed diagonal is perfect
# calibration, bars below it are over-confident. ECE is the gap averaged with the bins' mass.
#
# Sample histograms (synthetic targets, LP-SGLD paper fig. 1): the naive `low` accumulator
# inflates the variance by about Δ²/(12 α); `full` and `vc` should follow the target.

# %%
if sweep is not None:
    for figure in (reliability_figure(sweep, ok), samples_figure(sweep, ok)):
        if figure is not None:
            display(figure)

# %% [markdown]
# Hypervolume against the number of trials (optuna sweeps): how quickly the search found the
# front. A curve still rising at the end means more trials would likely improve the front.

# %%
optuna = sweep is not None and (sweep.spec.get("search") or {}).get("algorithm") == "optuna"
if optuna and len(ok):
    history = hypervolume_history(trial_order(trials), objectives, reference)
    display(plots.plot_hypervolume_history(history))
