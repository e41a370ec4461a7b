"""The report of one sweep: Pareto tables, figures and an HTML page.

    python -m analysis.report RESULTS/<name> [--objectives test_error:min,bits:min] [--out DIR]
                              [--compare OTHER_SWEEP ...]

writes ``RESULTS/<name>/report/`` (or ``--out``):

- ``answer.json``, ``verdicts.csv``: the answer (:mod:`analysis.answer`: the sentence, and per
  configuration its means with 95 % CIs over seeds and test examples, its difference against
  the baseline, verdict and front probability); ``answer_<metric>.png`` its figure per compared
  objective (log2 cost axis, 95 % CIs, the baseline's interval as a band);
- ``pareto.csv``: the front over individual ok trials under the objectives (the spec's by
  default): trial id, objectives, config;
- ``pareto_mean.csv``: the front over configurations averaged over seeds, with ``<metric>_std``,
  ``n_seeds``, ``knee`` marking the knee of the configuration means and, from the answer, each
  configuration's 95 % CI, verdict and front probability;
- ``pareto_by_group.csv``: the fronts over seed means within each sampler × accumulator ×
  format family group;
- ``best_per_group.csv``: the best ok trial on the first objective per sampler, accumulator and
  format family;
- ``summary.json``: the answer's sentence, trials by status, objectives, the knee configuration,
  reference point and hypervolume;
- every CSV also as Parquet beside it (``pareto.parquet`` ...), typed: a trial id such as
  ``91781970`` or ``12e45678`` stays a string there, where a CSV reader would make it a number;
- PNGs: ``<metric>_vs_<axis>.png`` (error, NLL, ECE and every objective that is not a bits
  column) against ``axis`` = ``bits_per_param`` when that is an objective, else ``bits``
  (:func:`bits_axis`), ``samples.png`` (synthetic targets), ``reliability.png``
  (classifiers), ``hypervolume.png`` (optuna sweeps); none of them when no trial is ok;
- ``index.html`` showing all of it, the answer's sentence and verdict table first.

PNGs (and ``hypervolume.csv``) that an earlier run wrote into the report directory and this run
does not are removed. The CLI prints every file written, one per line, on stdout.

With ``--compare`` it also writes ``compare.csv``: every sweep's hypervolume against one shared
reference point (:func:`compare_sweeps`). It exits 2 with a message when a directory holds no
``trials.parquet`` or an objective is malformed or not a column (of any of the sweeps, named
in the message; a sweep where no trial is ok lacks the metric columns, and there a missing
objective counts as all-NaN: the report still lists the trials and their errors). The orchestrator
calls :func:`write_report` at the end of a sweep.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyarrow import ArrowException

from analysis import plots
from analysis.answer import Answer, compute_answer, configuration_names
from analysis.load import (
    NoTrials,
    Sweep,
    load_predictions,
    load_samples,
    load_sweep,
    parse_objectives,
    reference_from_spec,
    trial_order,
)
from analysis.pareto import (
    COUNT_COLUMN,
    MARGIN,
    aggregate_seeds,
    hypervolume_history,
    knee,
    pareto_front,
    reference_point,
    split_by_status,
    trials_hypervolume,
)

#: metrics plotted against bits whenever the sweep reports them
PLOTTED_METRICS: tuple[str, ...] = ("test_error", "test_nll", "test_ece")

#: bits-like cost columns, in order of preference for the x-axis of the figures: the storage
#: bits per weight (counts the float32 master copy of ``accumulator: full``), the word length
BITS_AXES: tuple[str, ...] = ("bits_per_param", "bits")

#: files the report writes besides ``<metric>_vs_<bits axis>.png``, that a run may not produce;
#: one left over from an earlier run is removed
OPTIONAL_FILES: tuple[str, ...] = (
    "answer.json",
    "verdicts.csv",
    "verdicts.parquet",
    "pareto_by_variant.parquet",
    "hypervolume.parquet",
    "samples.png",
    "reliability.png",
    "hypervolume.png",
    "hypervolume.csv",
    "pareto_by_variant.csv",
)

#: what each figure shows, under it on the page (by file name; ``{metric}``/``{axis}`` filled in)
CAPTIONS: dict[str, str] = {
    "answer": "The answer for {metric}: each configuration's mean over seeds with its 95% CI "
    "(seeds and test examples both resampled) against its {axis} on a log2 axis, coloured by "
    "its verdict against the baseline; the grey band is the baseline's 95% CI, the dotted "
    "lines baseline ± tolerance, the staircase the front of configuration means, the circled "
    "point the answer. Below: each configuration's difference against the baseline on the same "
    "seeds and test examples with its 90% CI, and the ± tolerance band (green): a bar inside "
    "the band is equivalent. The differences are much tighter than the means' intervals, "
    "because the test set's noise is shared and cancels.",
    "vs": "{metric} against {axis} (log2 axis) by accumulator mode (left) and format family "
    "(right): configuration means with 95% CIs; each staircase is that group's front of "
    "configuration means.",
    "reliability.png": "Reliability diagrams of the best trial of each accumulator mode: "
    "accuracy per confidence bin (15 bins) against the diagonal of perfect calibration; bars "
    "below it are over-confident.",
    "samples.png": "Samples (coordinate 0, chains and seeds pooled) against the target density, "
    "one panel per accumulator mode.",
    "hypervolume.png": "Hypervolume of the first k trials against k, in start order: a curve "
    "still rising at the end means more trials would likely move the front.",
}

#: the page's names of summary entries that need a word of explanation
SUMMARY_LABELS: dict[str, str] = {
    "hypervolume": "hypervolume (the area of objective space the trials' front dominates up to "
    "the reference point; larger is better; only for comparing sweeps under one reference)",
    "knee configuration": "knee configuration (the front member of configuration means "
    "closest to the ideal point, objectives scaled to [0, 1])",
}

#: columns that describe a group in "best per group"
GROUP_COLUMNS: tuple[str, ...] = ("sampler", "accumulator", "family")

#: metrics carried into the seed-averaged table besides the objectives
SUMMARY_METRICS: tuple[str, ...] = (
    "test_error",
    "test_nll",
    "test_ece",
    "test_brier",
    "ood_auroc",
    "w2",
    "ks",
    "std",
    "ess",
    "bits",
    "bits_per_param",
    "wall_s",
)

#: most configurations drawn per accumulator panel of samples.png
MAX_HISTOGRAMS = 4


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote. ``os.fspath(report)`` (and ``Path(report)``) is the
    report directory, so a caller expecting a path can use it as one."""

    dir: Path
    pngs: list[Path]
    index: Path
    pareto_csv: Path
    pareto_mean_csv: Path
    summary: dict[str, Any] = field(default_factory=dict)
    #: every file written, in the order written (CSVs, summary.json, PNGs, index.html)
    files: list[Path] = field(default_factory=list)
    #: files of an earlier run in the report directory that this run did not write, removed
    removed: list[Path] = field(default_factory=list)

    def __fspath__(self) -> str:
        return os.fspath(self.dir)


def default_objectives(sweep: Sweep) -> dict[str, str]:
    """The spec's objectives; without any, ``test_error`` (or ``w2``) and ``bits``, minimised."""
    if sweep.objectives:
        return sweep.objectives
    for metric in ("test_error", "w2"):
        if metric in sweep.trials.columns and "bits" in sweep.trials.columns:
            return {metric: "min", "bits": "min"}
    raise ValueError(
        f"{sweep.path / 'spec.yaml'}: no objectives; pass --objectives metric:min,bits:min"
    )


def bits_axis(objectives: Mapping[str, str], columns: Sequence[str]) -> str | None:
    """The column on the x-axis of the figures: the first of :data:`BITS_AXES` that is an
    objective (``bits_per_param`` before ``bits``), else ``bits`` when it is a column, else
    None (no figure against bits)."""
    for axis in BITS_AXES:
        if axis in objectives and axis in columns:
            return axis
    return "bits" if "bits" in columns else None


def with_objective_columns(
    trials: pd.DataFrame, objectives: Mapping[str, str], sweep: str = "the sweep"
) -> pd.DataFrame:
    """``trials`` with every objective a column. When no trial is ok (every trial diverged or
    failed, so the workload never reported its metrics) a missing objective is added as an
    all-NaN column; when some trial is ok a missing objective is a mistake (a typo in
    ``--objectives``, a metric the workload does not report) and raises ``ValueError`` naming
    ``sweep`` and the objective."""
    missing = [m for m in objectives if m not in trials.columns]
    if not missing:
        return trials
    if (trials["status"] == "ok").any():
        raise ValueError(
            f"{sweep}: objective {missing[0]!r}: no such column "
            f"(columns: {', '.join(map(str, trials.columns))})"
        )
    return trials.assign(**dict.fromkeys(missing, np.nan))


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


def _table_html(frame: pd.DataFrame, max_rows: int = 200) -> str:
    if frame.empty:
        return "<p><em>none</em></p>"
    note = (
        f"<p>first {max_rows} of {len(frame)} rows; all in the CSV</p>"
        if len(frame) > max_rows
        else ""
    )
    return note + frame.head(max_rows).to_html(
        index=False,
        escape=True,
        na_rep="",
        float_format=lambda v: f"{v:.4g}",
        border=0,
        classes="table",
    )


def _short(value: Any) -> str:
    """A summary value for the page: floats to 4 significant digits, mappings as k: v."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_short(v)}" for k, v in value.items())
    return str(value)


def _answer_html(answer: Answer | None, error: str | None) -> str:
    """The page's first section: the sentence, the verdict rule, the data, the verdict table."""
    e = html.escape
    if answer is None:
        return (
            "<h2>Answer</h2><p><em>No answer: "
            + e(error or "no objective to compare")
            + "</em></p>"
        )
    seeds = sorted({c.n_seeds for c in answer.configurations if c.n_seeds})
    seed_text = (
        "no ok trial"
        if not seeds
        else f"{seeds[0]} seed{'s' if seeds[0] != 1 else ''} per configuration"
        if len(seeds) == 1
        else f"{seeds[0]} to {seeds[-1]} seeds per configuration"
    )
    test_text = (
        f"{answer.n_test:,} test examples shared by every trial"
        if answer.n_test
        else "no stored predictions (intervals over seeds only)"
    )
    tol = ", ".join(
        f"{m} ±{v:g}" if v is not None else f"{m}: none (inconclusive)"
        for m, v in answer.tolerances.items()
    )
    methods = "; ".join(answer.methods.values())
    notes = "".join(f'<p class="note"><em>{e(n)}</em></p>' for n in answer.notes)
    table = answer.table()
    return f"""<h2>Answer</h2>
<p class="answer"><strong>{e(answer.sentence)}</strong></p>
<p>Data: {e(test_text)}; {e(seed_text)}; {answer.resamples:,} bootstrap resamples
({e(methods)}). Baseline: {e(answer.baseline or "none")} ({e(answer.baseline_note)}).
Tolerances: {e(tol or "none")}. Verdicts: <em>equivalent</em> when the 90% CI of the difference
against the baseline lies inside ±tolerance; <em>worse</em> or <em>better</em> when it does not
and the 95% CI lies entirely on one side of 0; otherwise <em>inconclusive</em> (too few seeds
or test examples to tell); <em>failed</em>: no seed finished. The front probability is the
share of resamples in which the configuration is on the Pareto front.</p>
{notes}
<p>Verdict table ({len(table)} configurations, sorted by cost; every figure at full precision
in <a href="verdicts.csv">verdicts.csv</a> and <a href="answer.json">answer.json</a>):</p>
{_table_html(table, max_rows=400)}
"""


def _html(
    sweep: Sweep,
    summary: dict[str, Any],
    tables: Mapping[str, pd.DataFrame],
    pngs: Sequence[Path],
    notes: Sequence[str] = (),
    answer_section: str = "",
    captions: Mapping[str, str] | None = None,
) -> str:
    e = html.escape
    captions = captions or {}
    rows = "".join(
        f"<tr><th>{e(SUMMARY_LABELS.get(str(k), str(k)))}</th><td>{e(_short(v))}</td></tr>"
        for k, v in summary.items()
        if k != "answer"
    )
    images = "".join(
        f'<figure><img src="{e(p.name)}" alt="{e(p.stem)}"><figcaption>'
        f"{e(captions.get(p.name, p.name))} <code>{e(p.name)}</code></figcaption></figure>"
        for p in pngs
    )
    sections = "".join(f"<h2>{e(title)}</h2>{_table_html(t)}" for title, t in tables.items())
    remarks = "".join(f'<p class="note"><em>{e(note)}</em></p>' for note in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(sweep.name)}: sweep report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; max-width: 1250px; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin-bottom: 1em; }}
th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}
th {{ background: #f0f0f0; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
figure {{ margin: 1em 0; }}
figcaption {{ font-size: 0.9em; color: #333; max-width: 1000px; }}
p.answer {{ font-size: 1.15em; background: #f3f8f3; padding: 0.6em; border-left: 4px solid #2a2; }}
</style></head>
<body>
<h1>Sweep {e(sweep.name)}</h1>
{answer_section}
<h2>Figures</h2>{remarks}{images or "<p><em>no figures</em></p>"}
<h2>Summary</h2>
<p>Directory {e(str(sweep.path))}. A trial is on the Pareto front when no other ok trial is at
least as good on every objective and better on one; diverged and failed trials are never on it.
A configuration is the set of trials that differ only in their seed; the knee is the member of
the front of configuration means closest to the ideal point after scaling each objective to
[0, 1] over that front. The tables leave out the config keys that are the same in every trial;
the CSV files next to this page have them all (and Parquet files the same tables, typed).</p>
<table>{rows}</table>
{sections}
</body></html>
"""


def write_report(
    results_dir: str | Path,
    objectives: Mapping[str, str] | None = None,
    out_dir: str | Path | None = None,
    answer: bool | Answer = True,
) -> Report:
    """Write the report of the sweep in ``results_dir`` (see the module docstring) and return
    what was written. Raises :class:`analysis.load.NoTrials` without ``trials.parquet`` and
    ``ValueError`` naming the objective when an objective is not a column (unless no trial is
    ok: then it is taken as all-NaN, see :func:`with_objective_columns`).

    Figures are drawn against the x-axis :func:`bits_axis` picks (``bits_per_param`` when it is
    an objective, else ``bits``) and named ``<metric>_vs_<axis>.png``. Files of that form, and
    :data:`OPTIONAL_FILES`, left in the report directory by an earlier run and not written by
    this one are removed (``Report.removed``). ``answer=False`` leaves the answer (the
    statistics of :mod:`analysis.answer`) out: what ``bench/answer.py`` times it against; an
    :class:`analysis.answer.Answer` already computed for this sweep is used as it is (the
    sweep's closing lines compute it first)."""
    sweep = load_sweep(results_dir)
    objectives = dict(objectives or default_objectives(sweep))
    out = Path(out_dir) if out_dir is not None else sweep.path / "report"
    out.mkdir(parents=True, exist_ok=True)
    trials = with_objective_columns(sweep.trials, objectives, f"sweep {sweep.name} ({sweep.path})")
    keys = [k for k in sweep.config_keys if k in trials.columns]
    if len(trials) and "configuration" not in trials.columns:
        trials = trials.assign(configuration=configuration_names(trials, keys).to_numpy())
    given = answer
    answer, answer_error = None, "not computed (answer=False)"
    if isinstance(given, Answer):
        answer = given
    elif given:
        try:
            answer = compute_answer(sweep.path)
        except Exception as exc:  # the report stands without the answer, and says why
            answer_error = f"{type(exc).__name__}: {exc}"
    split = split_by_status(trials, objectives)
    ok = split["ok"]
    shown = ["trial_id", *objectives, *[k for k in keys if k not in objectives], "family"]
    shown = list(dict.fromkeys(c for c in shown if c in trials.columns))

    front = pareto_front(trials, objectives)[shown]
    summary: dict[str, Any] = {
        "answer": answer.sentence if answer is not None else f"no answer: {answer_error}",
        "baseline": answer.baseline if answer is not None else None,
        "sweep": sweep.name,
        "trials": len(trials),
        **{f"status {s}": int((trials["status"] == s).sum()) for s in ("ok", "diverged", "failed")},
        "ok but an objective missing": len(split["incomplete"]),
        "objectives": objectives,
        "front size": len(front),
    }
    spec_reference = {
        m: v for m, v in (reference_from_spec(sweep.spec) or {}).items() if m in objectives
    }
    if len(ok):
        ref = reference_point(trials, objectives, spec_reference)
        signs = np.array([1.0 if d == "min" else -1.0 for d in objectives.values()])
        summary["reference point"] = dict(zip(objectives, (ref * signs).tolist(), strict=True))
        summary["reference from"] = ", ".join(
            f"{m}: spec objectives.reference"
            if m in spec_reference
            else f"{m}: worst ok value + {MARGIN} x observed range"
            for m in objectives
        )
        summary["hypervolume"] = trials_hypervolume(trials, objectives, ref)

    metrics = list(dict.fromkeys([*objectives, *SUMMARY_METRICS]))
    metrics = [m for m in metrics if m in trials.columns and m not in keys]
    front_variants: pd.DataFrame | None = None
    if keys:
        pooled = aggregate_seeds(trials, keys, metrics)
        front_mean = pareto_front(pooled, objectives) if len(pooled) else pooled
        first = [*keys, *(["family"] if "family" in pooled else [])]
        spread = [c for m in objectives for c in (m, f"{m}_std") if c in pooled.columns]
        first = [c for c in first if c not in spread]
        rest = [c for c in pooled.columns if c not in first and c not in spread]
        front_mean = front_mean[[*first, *spread, *rest]]
        front_mean.insert(0, "knee", np.zeros(len(front_mean), dtype=bool))
        if len(front_mean):
            picked = knee(front_mean, objectives)
            front_mean.loc[picked.index, "knee"] = True
            row = front_mean.iloc[picked.index]
            summary["knee configuration"] = str(row.get("configuration", row["trial_ids"]))
            summary["knee (means)"] = {m: float(row[m]) for m in objectives}
        front_mean = _with_answer(front_mean, answer)
        group_by = [c for c in GROUP_COLUMNS if c in pooled.columns]
        front_groups = (
            pareto_front(pooled, objectives, by=group_by)[[*first, *spread, *rest]]
            if group_by and len(pooled)
            else front_mean.iloc[:0]
        )
        if "variant" in pooled.columns and pooled["variant"].notna().any():
            # a spec with variants: one front per variant (seed means)
            front_variants = pareto_front(pooled, objectives, by=["variant"])[
                [*first, *spread, *rest]
            ]
            summary["front size per variant"] = {
                str(k): int(n) for k, n in front_variants["variant"].value_counts().items()
            }
        summary["configurations"] = len(pooled)
        summary["front size (seed means)"] = len(front_mean)
        most = int(pooled[COUNT_COLUMN].max()) if len(pooled) else 0
        summary["max seeds per configuration"] = most
    else:
        front_mean = front_groups = front.iloc[:0]
    if answer is not None:
        summary["test examples"] = answer.n_test
        summary["seeds per configuration"] = sorted(
            {c.n_seeds for c in answer.configurations if c.n_seeds}
        )
    files_variant = (
        _write_table(front_variants, out / "pareto_by_variant.csv")
        if front_variants is not None
        else []
    )

    first_objective, direction = next(iter(objectives.items()))
    group_by = [c for c in GROUP_COLUMNS if c in ok.columns]
    if group_by and len(ok):
        ordered = ok.sort_values(first_objective, ascending=direction == "min", kind="stable")
        best = ordered.groupby(group_by, dropna=False, sort=True).head(1)
        best = best.sort_values(group_by, kind="stable")[
            list(dict.fromkeys([*group_by, "trial_id", *objectives, *shown]))
        ]
    else:
        best = ok.iloc[:0][list(dict.fromkeys([*group_by, "trial_id", *objectives, *shown]))]
    not_ok = trials[trials["status"] != "ok"]
    not_ok = not_ok[[c for c in ("trial_id", "status", "error", *keys) if c in not_ok.columns]]

    files: list[Path] = list(files_variant)
    pareto_csv = out / "pareto.csv"
    pareto_mean_csv = out / "pareto_mean.csv"
    for frame, path in (
        (front, pareto_csv),
        (front_mean, pareto_mean_csv),
        (front_groups, out / "pareto_by_group.csv"),
        (best, out / "best_per_group.csv"),
    ):
        files += _write_table(frame, path)
    if answer is not None:
        (out / "answer.json").write_text(json.dumps(answer.to_json(), indent=1, default=str))
        files.append(out / "answer.json")
        files += _write_table(answer.full_table(), out / "verdicts.csv")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    files.append(out / "summary.json")

    pngs: list[Path] = []
    notes: list[str] = []
    captions: dict[str, str] = {}
    x_axis = bits_axis(objectives, list(trials.columns))
    if answer is not None and answer.cost_name and len(ok):
        for metric in answer.objectives:
            name = f"answer_{metric}.png"
            pngs.append(plots.save(plots.plot_answer(answer, metric), out / name))
            captions[name] = CAPTIONS["answer"].format(metric=metric, axis=answer.cost_name)
    plotted = [m for m in PLOTTED_METRICS if m in trials.columns and ok[m].notna().any()]
    plotted += [m for m in objectives if m not in plotted]
    plotted = [m for m in plotted if m not in BITS_AXES]  # never a cost against a cost
    if not len(ok):
        notes.append(
            "No trial is ok (with every objective finite): the figures of metrics against "
            "bits, the reliability diagrams and the sample histograms need ok trials and are "
            "not drawn. The trials and their errors are listed below."
        )
    elif x_axis is None:
        notes.append("No bits column: no figure of the metrics against bits.")
    else:
        for metric in plotted:
            fig = plots.plot_metric_vs_bits(
                trials,
                metric,
                keys or ["trial_id"],
                bits=x_axis,
                direction=objectives.get(metric, "min"),
                intervals=_intervals(answer, metric),
            )
            name = f"{metric}_vs_{x_axis}.png"
            pngs.append(plots.save(fig, out / name))
            caption = CAPTIONS["vs"].format(metric=metric, axis=x_axis)
            if not _intervals(answer, metric):
                caption = caption.replace("with 95% CIs", "± one standard deviation over seeds")
            captions[name] = caption
    for name, figure in (
        ("samples.png", samples_figure(sweep, ok)),
        ("reliability.png", reliability_figure(sweep, ok)),
    ):
        if figure is not None:
            pngs.append(plots.save(figure, out / name))
            captions[name] = CAPTIONS[name]
    algorithm = (sweep.spec.get("search") or {}).get("algorithm")
    if algorithm == "optuna" and "hypervolume" in summary:
        history = hypervolume_history(trial_order(trials), objectives, ref)
        files += _write_table(history, out / "hypervolume.csv")
        fig = plots.plot_hypervolume_history(
            history, title=f"{sweep.name}: hypervolume of {', '.join(objectives)}"
        )
        pngs.append(plots.save(fig, out / "hypervolume.png"))
        captions["hypervolume.png"] = CAPTIONS["hypervolume.png"]

    tables = {
        "Pareto front (trials)": front,
        "Pareto front (configurations, mean and std over seeds)": front_mean,
        **(
            {"Pareto front per variant (seed means)": front_variants}
            if front_variants is not None
            else {}
        ),
        "Pareto fronts per sampler, accumulator and family (seed means)": front_groups,
        f"Best per group on {first_objective}": best,
        "Trials not ok (never on a front)": not_ok,
    }
    # the page leaves out config keys that are the same in every trial (the CSVs keep them)
    constant = {k for k in keys if trials[k].astype(str).nunique() <= 1 and k not in objectives}
    tables = {t: f[[c for c in f.columns if c not in constant]] for t, f in tables.items()}
    index = out / "index.html"
    index.write_text(
        _html(sweep, summary, tables, pngs, notes, _answer_html(answer, answer_error), captions)
    )
    files += [*pngs, index]
    return Report(
        dir=out,
        pngs=pngs,
        index=index,
        pareto_csv=pareto_csv,
        pareto_mean_csv=pareto_mean_csv,
        summary=summary,
        files=files,
        removed=_remove_stale(out, files),
    )


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


def _intervals(answer: Answer | None, metric: str) -> dict[str, tuple[float, float]]:
    """``{configuration: (lo, hi)}`` of the answer's 95% CIs for ``metric`` ({} without)."""
    if answer is None:
        return {}
    return {
        c.configuration: c.figures[metric].ci for c in answer.configurations if metric in c.figures
    }


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


def _remove_stale(out: Path, written: Sequence[Path]) -> list[Path]:
    """Remove the files an earlier report left in ``out`` that this one did not write: only
    names the report itself writes (``<metric>_vs_<bits axis>.png``, :data:`OPTIONAL_FILES`),
    never anything else in the directory."""
    owned = [p for axis in BITS_AXES for p in out.glob(f"*_vs_{axis}.png")]
    owned += list(out.glob("answer_*.png"))
    owned += [out / name for name in OPTIONAL_FILES]
    keep = {p.resolve() for p in written}
    removed = []
    for path in sorted(set(owned)):
        if path.is_file() and path.resolve() not in keep:
            path.unlink()
            removed.append(path)
    return removed


def compare_sweeps(
    results_dirs: Sequence[str | Path],
    objectives: Mapping[str, str] | None = None,
    reference: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Sweeps compared by one number: the hypervolume of each sweep's ok trials against one
    shared reference point.

    ``objectives`` default to the first sweep's. The reference point is ``reference`` when
    given, else the specs' ``objectives.reference`` when every sweep's spec gives the same
    one; any objective left without a value is derived from the ok trials of all the sweeps
    together (worst value plus ``MARGIN`` times the range,
    :func:`analysis.pareto.reference_point`). One row per sweep:
    ``sweep``, ``path``, ``trials``, ``ok``, ``front_size``, ``hypervolume``; the reference is
    in ``frame.attrs["reference"]``. An objective missing from a sweep with ok trials raises
    ``ValueError`` naming that sweep (:func:`with_objective_columns`).
    """
    sweeps = [load_sweep(d) for d in results_dirs]
    if not sweeps:
        raise ValueError("results_dirs: give at least one sweep directory")
    objectives = dict(objectives or default_objectives(sweeps[0]))
    for s in sweeps:
        s.trials = with_objective_columns(s.trials, objectives, f"sweep {s.name} ({s.path})")
    if reference is None:
        references = [
            {m: v for m, v in (reference_from_spec(s.spec) or {}).items() if m in objectives}
            for s in sweeps
        ]
        if all(r == references[0] for r in references):
            reference = references[0]  # possibly empty: every r_j derived from all the sweeps
    ref = reference_point([s.trials for s in sweeps], objectives, reference)
    rows = [
        {
            "sweep": s.name,
            "path": str(s.path),
            "trials": len(s.trials),
            "ok": len(split_by_status(s.trials, objectives)["ok"]),
            "front_size": len(pareto_front(s.trials, objectives)),
            "hypervolume": trials_hypervolume(s.trials, objectives, ref),
        }
        for s in sweeps
    ]
    frame = pd.DataFrame(rows)
    signs = np.array([1.0 if d == "min" else -1.0 for d in objectives.values()])
    frame.attrs["reference"] = dict(zip(objectives, (ref * signs).tolist(), strict=True))
    return frame


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0, or 2 for a bad directory or objectives)."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis.report",
        description="Pareto tables, figures and index.html of a sweep directory.",
    )
    parser.add_argument("results_dir", help="a sweep directory RESULTS/<name>")
    parser.add_argument(
        "--objectives", help="metric:min|max pairs, comma separated (default: the spec's)"
    )
    parser.add_argument("--out", help="report directory (default: RESULTS/<name>/report)")
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="DIR",
        help="other sweep directories: print every sweep's hypervolume against one shared "
        "reference point and write compare.csv into the report directory",
    )
    args = parser.parse_args(argv)
    try:
        objectives = parse_objectives(args.objectives) if args.objectives else None
        report = write_report(args.results_dir, objectives, args.out)
        written = list(report.files)
        if args.compare:
            compared = compare_sweeps([args.results_dir, *args.compare], objectives)
            compared.to_csv(report.dir / "compare.csv", index=False)
            written.append(report.dir / "compare.csv")
            print(f"reference point: {compared.attrs['reference']}", file=sys.stderr)
            print(compared.to_string(index=False), file=sys.stderr)
    except NoTrials as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in report.removed:
        print(f"removed stale {path}", file=sys.stderr)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
