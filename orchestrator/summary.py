"""What a sweep prints when it ends (the summary and the commands to look further), and the
analysis report written into the sweep directory, its files queued for the parent run."""

from __future__ import annotations

import math
import os
from typing import Any, TextIO

from orchestrator import tracking
from orchestrator.outbox import queue_parent
from orchestrator.outcome import SweepOutcome
from orchestrator.store import local_path, table_to_text


def summarize(outcome: SweepOutcome, out: TextIO) -> None:
    """The summary table and the commands to look further."""
    spec, table = outcome.spec, outcome.table
    statuses = table.column("status").to_pylist() if table is not None and table.num_rows else []
    counts = {s: statuses.count(s) for s in ("ok", "diverged", "failed")}
    state = "finished" if outcome.complete else "interrupted"
    print(
        f"\nsweep {spec.name} {state}: {len(statuses)}/{spec.num_trials()} trials recorded "
        f"(ok {counts['ok']}, diverged {counts['diverged']}, failed {counts['failed']})",
        file=out,
    )
    if statuses:
        varies = [*(["variant"] if spec.variants else []), *spec.searched_keys()]
        columns = ["trial_id", "status", *spec.objectives, *varies, "wall_s", "error"]
        table_sorted = table
        metric, mode = spec.primary_objective()
        if metric in table.column_names:
            values = table.column(metric).to_pylist()

            def key(i: int) -> tuple[int, float]:
                v = values[i]
                bad = v is None or (isinstance(v, float) and math.isnan(v))
                return (1 if bad else 0, 0.0 if bad else (v if mode == "min" else -v))

            table_sorted = table.take(sorted(range(table.num_rows), key=key))
        print(table_to_text(table_sorted, list(dict.fromkeys(columns))), file=out)
    if outcome.complete and statuses and counts["ok"] == 0:
        column = table.column("error").to_pylist() if "error" in table.column_names else []
        errors = [e for e in column if e]
        first = f"first error: {errors[0].strip().splitlines()[-1]}" if errors else "no error given"
        print(
            f"NO TRIAL SUCCEEDED: all {len(statuses)} trials failed or diverged; see the error "
            f"column of trials.parquet ({first})",
            file=out,
        )
    elif outcome.complete and not statuses:
        print("NO TRIAL SUCCEEDED: no trial recorded a result", file=out)
    ui = outcome.tracking_uri or ""
    local = local_path(outcome.sweep_uri)
    print(f"results:  {outcome.sweep_uri}/trials.parquet", file=out)
    print(f"mlflow:   {tracking.ui_command(ui)}", file=out)
    if outcome.experiment_id is not None:
        url = tracking.experiment_url(ui, outcome.experiment_id, sort=spec.primary_objective())
        print(f"          then open {url} (the runs table of experiment {spec.name})", file=out)
    if local is not None:
        print(f"analysis: python -m analysis.report {local}", file=out)
    else:
        print(
            f"analysis: copy {outcome.sweep_uri} to a local directory DIR, then "
            "python -m analysis.report DIR",
            file=out,
        )
    if not outcome.complete:
        root = outcome.sweep_uri.rstrip("/").rsplit("/", 1)[0]  # the sweep is ROOT/<name>
        where = f"--results {local_path(root)}" if local is not None else f"--storage {root}"
        print(f"resume:   python -m orchestrator.sweep {spec.file} --resume {where}", file=out)


def analysis_report(outcome: SweepOutcome, err: TextIO) -> None:
    """Write the analysis report and log its PNGs to the parent run (when analysis exists)."""
    sweep_dir = local_path(outcome.sweep_uri)
    if sweep_dir is None:  # the report reads a local directory
        print(
            f"analysis report skipped: {outcome.sweep_uri} is not a local directory; copy it to "
            "one (DIR) and run python -m analysis.report DIR",
            file=err,
        )
        return
    table = outcome.table
    statuses = table.column("status").to_pylist() if table is not None and table.num_rows else []
    if "ok" not in statuses:
        print("analysis report skipped: no trial succeeded (nothing to analyse)", file=err)
        return
    try:
        from analysis.report import write_report
    except ImportError:
        return
    try:
        report = write_report(sweep_dir)
    except Exception as exc:  # the sweep's results stand without the report
        print(f"analysis report skipped: {type(exc).__name__}: {exc}", file=err)
        return
    out_dir = os.path.join(sweep_dir, "report")
    print(f"report:   {out_dir}", file=err)
    ops: list[dict[str, Any]] = [
        {"op": "artifact", "local_path": os.fspath(png), "artifact_path": "report"}
        for png in getattr(report, "pngs", [])
    ]
    for csv in ("pareto.csv", "pareto_mean.csv"):
        path = os.path.join(out_dir, csv)
        if os.path.exists(path):
            ops.append({"op": "artifact", "local_path": path, "artifact_path": "report"})
            ops.append(table_op(path, f"report/{csv[:-4]}_table.json"))
    queue_parent(outcome.store(), outcome.parent_run_id or "", *ops)


def table_op(csv_path: str, artifact_file: str) -> dict[str, Any]:
    """The CSV as an MLflow table artifact (the run's Artifacts tab shows it as a table)."""
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(csv_path)
    data = {
        name: [None if isinstance(v, float) and math.isnan(v) else v for v in column.to_pylist()]
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    return {"op": "table", "data": data, "path": artifact_file}
