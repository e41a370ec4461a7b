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
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import plots
from analysis.answer import Answer, compute_answer
from analysis.baseline import is_cost
from analysis.cost_panel import COST_COLUMNS, cost_panel, panel_baseline
from analysis.load import (
    NoTrials,
    Sweep,
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
from analysis.predictions import configuration_names
from analysis.report_figures import (
    BITS_AXES,
    PLOTTED_METRICS,
    _intervals,
    bits_axis,
    reliability_figure,
    samples_figure,
)
from analysis.report_page import CAPTIONS, _answer_html, _cost_panel_html, _html
from analysis.tables import _with_answer, _write_table, read_table

#: the report's API (the orchestrator, the notebook and bench import these from here)
__all__ = [
    "BITS_AXES",
    "Report",
    "bits_axis",
    "compare_sweeps",
    "default_objectives",
    "main",
    "read_table",
    "reliability_figure",
    "samples_figure",
    "with_objective_columns",
    "write_report",
]

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
    "cost_panel.csv",
    "cost_panel.parquet",
)


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
    # the cost panel: the front's configurations against the float32 baseline, as ratios
    panel_base = panel_baseline(trials, answer.baseline if answer is not None else None)
    front_names = (
        list(front_mean["configuration"].astype(str)) if "configuration" in front_mean else []
    )
    panel, panel_notes = cost_panel(trials, front_names, panel_base)
    panel_files = _write_table(panel, out / "cost_panel.csv") if len(panel) else []
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

    files: list[Path] = [*files_variant, *panel_files]
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
    plotted = [m for m in plotted if not is_cost(m)]  # never a cost against a cost
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
        _html(
            sweep,
            summary,
            tables,
            pngs,
            notes,
            _answer_html(answer, answer_error) + _cost_panel_html(panel, panel_notes, panel_base),
            captions,
        )
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


def _remove_stale(out: Path, written: Sequence[Path]) -> list[Path]:
    """Remove the files an earlier report left in ``out`` that this one did not write: only
    names the report itself writes (``<metric>_vs_<bits axis>.png``, :data:`OPTIONAL_FILES`),
    never anything else in the directory."""
    axes = {*BITS_AXES, *COST_COLUMNS}
    owned = [p for axis in sorted(axes) for p in out.glob(f"*_vs_{axis}.png")]
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
