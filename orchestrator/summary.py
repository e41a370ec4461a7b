"""What a sweep prints when it ends: its answer (``analysis.answer``: one sentence, one line
per configuration with its verdict; the table of trials when there is no answer, with why),
the trial counts and the commands to look further; the answer's MLflow writes (the parent
run's description, metrics and tag, each child's verdict, the saved view the printed URL opens),
queued like every other write; and the analysis report written into the sweep directory, its
files queued for the parent run."""

from __future__ import annotations

import math
import os
from typing import Any, TextIO

from orchestrator import tracking
from orchestrator.outbox import queue_parent
from orchestrator.outcome import SweepOutcome
from orchestrator.store import local_path, table_to_text


def summarize(outcome: SweepOutcome, out: TextIO) -> Any:
    """The closing lines: the answer's sentence and one line per configuration (sorted by cost,
    with its verdict), or, when the answer cannot be computed, one line saying why and the
    table of trials; then the trial counts and the commands to look further. The answer also
    goes to MLflow (:func:`queue_answer`), through the parent run's queued writes. Returns the
    answer (None when not computed), which :func:`analysis_report` reuses."""
    spec, table = outcome.spec, outcome.table
    statuses = table.column("status").to_pylist() if table is not None and table.num_rows else []
    counts = {s: statuses.count(s) for s in ("ok", "diverged", "failed")}
    state = "finished" if outcome.complete else "interrupted"
    answer, why = compute(outcome, counts["ok"])
    if answer is not None:
        print(answer.sentence, file=out)
        for line in answer.lines():
            print(f"  {line}", file=out)
        for text in answer.notes:
            print(f"note: {text}", file=out)
    print(
        f"\nsweep {spec.name} {state}: {len(statuses)}/{spec.num_trials()} trials recorded "
        f"(ok {counts['ok']}, diverged {counts['diverged']}, failed {counts['failed']})",
        file=out,
    )
    if answer is None and why:
        print(f"answer:   not computed: {why}", file=out)
    if answer is None and statuses:
        print(trials_text(spec, table), file=out)
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
    view = queue_answer(outcome, answer, why)
    ui = outcome.tracking_uri or ""
    local = local_path(outcome.sweep_uri)
    print(f"results:  {outcome.sweep_uri}/trials.parquet", file=out)
    print(f"mlflow:   {tracking.ui_command(ui)}", file=out)
    if outcome.experiment_id is not None:
        url = tracking.experiment_url(
            ui, outcome.experiment_id, sort=spec.primary_objective(), view=view
        )
        print(f"          then open {url} (the runs table of experiment {spec.name})", file=out)
    if local is not None:
        print(f"analysis: python -m analysis.answer {local}", file=out)
        print(f"          python -m analysis.report {local}", file=out)
    else:
        print(
            f"analysis: copy {outcome.sweep_uri} to a local directory DIR, then "
            "python -m analysis.answer DIR and python -m analysis.report DIR",
            file=out,
        )
    if not outcome.complete:
        root = outcome.sweep_uri.rstrip("/").rsplit("/", 1)[0]  # the sweep is ROOT/<name>
        where = f"--results {local_path(root)}" if local is not None else f"--storage {root}"
        print(f"resume:   python -m orchestrator.sweep {spec.file} --resume {where}", file=out)
    return answer


def compute(outcome: SweepOutcome, ok: int) -> tuple[Any, str | None]:
    """``(answer, None)``, or ``(None, why not)`` in one line (``None, None``: no trial
    succeeded, which the summary says on its own)."""
    if not ok:
        return None, None
    if not outcome.complete:
        return None, "the sweep was interrupted: resume it for the answer"
    sweep_dir = local_path(outcome.sweep_uri)
    if sweep_dir is None:
        return None, f"{outcome.sweep_uri} is not a local directory (see analysis: below)"
    try:
        from analysis.answer import compute_answer
    except ImportError as exc:
        return None, f"the analysis package cannot be imported ({exc})"
    try:
        return compute_answer(sweep_dir), None
    except Exception as exc:  # the results stand without the answer; say why in one line
        text = (str(exc).strip().splitlines() or [""])[0][:300]
        return None, f"{type(exc).__name__}: {text}"


def trials_text(spec: Any, table: Any) -> str:
    """The table of trials, best first by the primary objective (the summary without an
    answer)."""
    varies = [*(["variant"] if spec.variants else []), *spec.searched_keys()]
    columns = ["trial_id", "status", *spec.objectives, *varies, "wall_s", "error"]
    metric, mode = spec.primary_objective()
    if metric in table.column_names:
        values = table.column(metric).to_pylist()

        def key(i: int) -> tuple[int, float]:
            v = values[i]
            bad = v is None or (isinstance(v, float) and math.isnan(v))
            return (1 if bad else 0, 0.0 if bad else (v if mode == "min" else -v))

        table = table.take(sorted(range(table.num_rows), key=key))
    return table_to_text(table, list(dict.fromkeys(columns)))


def queue_answer(outcome: SweepOutcome, answer: Any, why: str | None) -> str | None:
    """Queue the answer's MLflow writes (sent by the driver's catch-up, kept on disk while the
    server is away): the parent run's description (``mlflow.note.content``: the sentence and
    the verdict table), its metrics (the answer's figures) and its ``verdict`` tag
    (``answer: ...``, which sorts it first); each child run's ``verdict`` tag; and the saved
    view the printed URL opens (:func:`orchestrator.tracking.view_state`). Returns that view's
    key (the sweep id), or None when there is no parent run."""
    if not outcome.parent_run_id or outcome.experiment_id is None:
        return None
    store = outcome.store()
    meta = store.read_meta() or {}
    sweep_id = str(meta.get("sweep_id") or "")
    ops: list[dict[str, Any]] = []
    if sweep_id:
        ops.append(
            tracking.share_view_op(outcome.experiment_id, sweep_id, list(outcome.spec.objectives))
        )
    tags: dict[str, str] = {}
    if answer is not None:
        chosen = answer.answer.configuration if answer.answer is not None else None
        tags[tracking.TAG_VERDICT] = f"answer: {chosen or 'none'}"
        tags[NOTE_TAG] = note(answer.markdown())
        metrics = tracking.numeric_metrics(answer.metrics())
        if metrics:
            ops.append({"op": "metrics", "metrics": metrics, "step": 0, "timestamp": _now_ms()})
    else:
        tags[tracking.TAG_VERDICT] = "answer: not computed"
        if why:
            tags[NOTE_TAG] = f"No answer: {why}"
    ops.append({"op": "tags", "tags": tags})
    queue_parent(store, outcome.parent_run_id, *ops)
    if answer is not None:
        queue_verdicts(store, outcome.table, answer.verdicts)
    return sweep_id or None


#: the tag MLflow's UI shows as a run's description (Markdown), and the most characters a tag
#: value holds (MLflow's limit: 8,000)
NOTE_TAG, MAX_NOTE = "mlflow.note.content", 8000


def note(markdown: str, limit: int = MAX_NOTE) -> str:
    """``markdown`` whole when it fits in a tag, else its first lines and one that says how
    many were left out (the whole table is in the report and ``python -m analysis.answer``)."""
    if len(markdown) <= limit:
        return markdown
    lines = markdown.splitlines()
    kept: list[str] = []
    size = 200  # room for the closing line
    for line in lines:
        if size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    left = len(lines) - len(kept)
    return "\n".join([*kept, "", f"*... {left} more lines: see python -m analysis.answer*"])


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def queue_verdicts(store: Any, table: Any, verdicts: dict[str, str]) -> int:
    """Each child run's ``verdict`` tag (its configuration's), queued as the run's own saved
    writes (``mlflow_pending/<trial_id>-verdict.json``); how many. A trial whose row names no
    run (the server was away all along; the backfill makes it) gets none."""
    from orchestrator.outbox import save_pending
    from orchestrator.tracking import RUNS_DIR

    if table is None or "configuration" not in table.column_names:
        return 0
    queued = 0
    for row in table.select(
        [c for c in ("trial_id", "configuration", "mlflow_run_id") if c in table.column_names]
    ).to_pylist():
        verdict = verdicts.get(str(row.get("configuration")))
        trial_id = str(row["trial_id"])
        run_id = row.get("mlflow_run_id")
        if not run_id:
            recorded = store.read_bytes(f"{RUNS_DIR}/{trial_id}")
            run_id = recorded.decode().strip() if recorded else None
        if verdict is None or not run_id:
            continue
        ops = [{"op": "tags", "tags": {tracking.TAG_VERDICT: verdict}}]
        save_pending(store, f"{trial_id}-verdict", run_id, ops, final=True, trial_id=trial_id)
        queued += 1
    return queued


def analysis_report(outcome: SweepOutcome, err: TextIO, answer: Any = None) -> None:
    """Write the analysis report and log its PNGs to the parent run (when analysis exists).
    The report shows ``answer`` (the one :func:`summarize` computed); without it the report
    computes the answer itself."""
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
        report = (
            write_report(sweep_dir) if answer is None else write_report(sweep_dir, answer=answer)
        )
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
    """The report's table as an MLflow table artifact (the run's Artifacts tab shows it as a
    table), read from the typed Parquet the report writes beside the CSV: a CSV reader would
    turn ids such as ``91781970`` or ``12e45678`` into numbers."""
    import pyarrow.parquet as pq

    table = pq.read_table(os.path.splitext(csv_path)[0] + ".parquet")
    data = {
        name: [None if isinstance(v, float) and math.isnan(v) else v for v in column.to_pylist()]
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    return {"op": "table", "data": data, "path": artifact_file}
