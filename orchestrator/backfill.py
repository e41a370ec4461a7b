"""Back-fill MLflow from a sweep's results: ``python -m orchestrator.backfill RESULTS/NAME``.

    python -m orchestrator.backfill results/bits [--mlflow-uri URI]

For a sweep whose tracking server was away when it ended (the sweep printed
``MLFLOW INCOMPLETE ... python -m orchestrator.backfill ...``), or an MLflow store that was lost:

1. the experiment (the sweep's name, tagged as a training experiment) and the parent run are
   found, or made again when the store no longer holds them (``sweep.json`` then records the
   new ids);
2. the writes the trials and the driver could not send (``mlflow_pending/*.json``: every report
   at its step, params, tags, the end of each run) are sent in order;
3. every row of ``trials.parquet`` whose trial still has no finished child run gets one from
   the row itself: its name, its effective params, its final metrics, its status; a child
   left RUNNING or KILLED (the driver stopped after the trial's row was written, before the
   end of its run was sent) is ended from the row: the final metrics it lacks, the status
   tag, FINISHED (FAILED for a failed trial).

Running it twice adds nothing the second time. Exit status 0 when MLflow holds every trial,
1 when the server still does not answer (nothing lost: run it again later), 2 for a directory
that holds no sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import tracking
from orchestrator.outbox import PENDING_DIR, fill_run_ids, load_pending, pending_keys, save_pending
from orchestrator.store import ID_COLUMNS, ResultsStore

#: bookkeeping columns that are neither config keys nor metrics
BOOKKEEPING = frozenset(ID_COLUMNS) - {"wall_s", "bits"}


class BackfillError(ValueError):
    """A directory that holds no sweep (exit status 2)."""


@dataclass
class BackfillOutcome:
    sent_files: int = 0
    left_files: int = 0
    created: int = 0
    ended: int = 0
    trials: int = 0


def _open_store(sweep_dir: str) -> tuple[ResultsStore, dict[str, Any]]:
    path = Path(sweep_dir)
    store = ResultsStore(str(path.parent), path.name)
    meta = store.read_meta()
    if meta is None:
        raise BackfillError(
            f"{sweep_dir}: no sweep.json; pass the sweep's directory (RESULTS/NAME, e.g. "
            "results/bits)"
        )
    return store, meta


def _name_keys(store: ResultsStore) -> tuple[str, ...]:
    from orchestrator.naming import name_keys as keys_of
    from orchestrator.spec import parse_spec

    try:
        return keys_of(parse_spec(store.read_spec_text() or "", "spec.yaml"))
    except Exception:
        return ()


def row_config(row: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's resolved config, read back from its row (its config columns)."""
    from workloads.config.resolve import keys_for, resolve_config

    try:
        names = set(keys_for(str(row["workload"])))
    except Exception:
        names = set()
    names.add("variant")
    raw = {k: v for k, v in row.items() if k in names and v is not None}
    try:
        return resolve_config(raw)
    except Exception:
        return raw


def row_metrics(row: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, float]:
    """The row's final metrics: its numeric columns that are not config keys."""
    metrics = {
        k: v
        for k, v in row.items()
        if k not in BOOKKEEPING and (k not in config or k == "bits") and v is not None
    }
    return tracking.numeric_metrics(metrics)


def _end_from_row(client: Any, run: Any, row: Mapping[str, Any], status: str, final: str) -> None:
    """The row's final metrics the run lacks, its ``status`` tag, and the run ended ``final``."""
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    missing = {
        k: v for k, v in row_metrics(row, row_config(row)).items() if k not in run.data.metrics
    }
    metrics = [Metric(k, v, now, 0) for k, v in missing.items()]
    tags = [RunTag(tracking.TAG_STATUS, status)]
    if row.get("error"):
        tags.append(RunTag("error", str(row["error"])[: tracking.MAX_TAG]))
    run_id = run.info.run_id
    for i in range(0, max(len(metrics), 1), 500):  # MLflow takes <= 1,000 entries a batch
        chunk, once = metrics[i : i + 500], tags if i == 0 else []
        tracking.retry(lambda c=chunk, t=once: client.log_batch(run_id, metrics=c, tags=t))
    tracking.retry(lambda: client.set_terminated(run_id, status=final))


def _children(client: Any, experiment_id: str, parent: str) -> dict[str, Any]:
    runs = tracking.retry(
        lambda: client.search_runs(
            [experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent}'",
            max_results=50000,
        ),
        attempts=3,
    )
    # a trial with two children (an attempt a killed driver abandoned, marked KILLED): the
    # ended one, else the running one, is the trial's
    rank = {"FINISHED": 3, "FAILED": 3, "RUNNING": 2}
    runs = sorted(runs, key=lambda run: rank.get(run.info.status, 1))
    return {run.data.tags.get(tracking.TAG_TRIAL): run for run in runs}


def _ensure_parent(
    store: ResultsStore, meta: dict[str, Any], uri: str
) -> tuple[str, str, dict[str, str]]:
    """(experiment id, parent run id, {old id: new id}) in the store at ``uri``."""
    mlflow = tracking.client(uri)
    experiment_id = tracking.ensure_experiment(uri, meta["name"])
    parent = meta["parent_run_id"]
    try:
        tracking.retry(lambda: mlflow.get_run(parent), attempts=2)
    except Exception:
        parent = tracking.start_parent_run(
            uri,
            experiment_id,
            meta["name"],
            meta["sweep_id"],
            meta.get("git_commit", "unknown"),
            store.read_spec_text() or "",
        )
    renamed = {meta["experiment_id"]: experiment_id, meta["parent_run_id"]: parent}
    if (experiment_id, parent, uri) != (
        meta["experiment_id"],
        meta["parent_run_id"],
        meta.get("tracking_uri"),
    ):
        store.write_meta({**meta, "experiment_id": experiment_id, "parent_run_id": parent,
                          "tracking_uri": uri})  # fmt: skip
    return experiment_id, parent, renamed


def _rename_pending(store: ResultsStore, renamed: Mapping[str, str]) -> None:
    """Point saved writes at the experiment and parent of this store (made again if lost)."""
    moved = {k: v for k, v in renamed.items() if k != v}
    if not moved:
        return
    for key in pending_keys(store):
        doc = load_pending(store, key)
        if doc is None:
            continue
        for op in doc["ops"]:
            for field in ("experiment_id", "parent"):
                if op.get(field) in moved:
                    op[field] = moved[op[field]]
            tags = op.get("tags") or {}
            if tags.get("mlflow.parentRunId") in moved:
                tags["mlflow.parentRunId"] = moved[tags["mlflow.parentRunId"]]
        run_id = moved.get(doc.get("run_id"), doc.get("run_id"))
        extra = {k: v for k, v in doc.items() if k not in ("key", "run_id", "final", "ops")}
        save_pending(store, key, run_id, doc["ops"], final=bool(doc.get("final")), **extra)


def report_verdicts(sweep_dir: str) -> dict[str, str]:
    """configuration -> verdict, from the report's ``answer.json`` (empty before the report): a
    child made from its row gets its configuration's verdict as the sweep's own children do."""
    try:
        doc = json.loads((Path(sweep_dir) / "report" / "answer.json").read_text())
    except (OSError, ValueError):
        return {}
    configurations = doc.get("configurations") if isinstance(doc, dict) else None
    return {
        str(c["configuration"]): str(c["verdict"])
        for c in configurations or []
        if isinstance(c, dict) and c.get("configuration") is not None and c.get("verdict")
    }


def _tag_verdict(client: Any, run_id: str, verdict: str) -> None:
    tracking.retry(lambda: client.set_tag(run_id, tracking.TAG_VERDICT, verdict))


def backfill(sweep_dir: str, mlflow_uri: str | None = None) -> BackfillOutcome:
    """See the module docstring. Raises :class:`BackfillError` for a directory without a sweep,
    :class:`tracking.TrackingError` when the server does not answer."""
    from orchestrator.outbox import replay_pending

    store, meta = _open_store(sweep_dir)
    uri = tracking.resolve_tracking_uri(mlflow_uri or meta.get("tracking_uri"))
    experiment_id, parent, renamed = _ensure_parent(store, meta, uri)
    _rename_pending(store, renamed)
    outcome = BackfillOutcome()
    mlflow = tracking.client(uri)
    outcome.sent_files, outcome.left_files, created = replay_pending(
        store, mlflow, final_only=False
    )
    filled = fill_run_ids(store, created)
    if outcome.left_files:
        return outcome

    table = store.read_table("trials.parquet")
    rows = table.to_pylist() if table is not None else []
    if not rows:
        rows = [r for t in store.trial_row_ids() if (r := store.read_trial_row(t)) is not None]
    outcome.trials = len(rows)
    children = _children(mlflow, experiment_id, parent)
    keys = _name_keys(store)
    verdicts = report_verdicts(sweep_dir)
    made: dict[str, str] = {}
    for row in rows:
        trial_id = str(row["trial_id"])
        run = children.get(trial_id)
        verdict = verdicts.get(str(row.get("configuration")))
        status = str(row.get("status"))
        final = "FAILED" if status == "failed" else "FINISHED"
        if run is not None:
            if run.info.status in ("RUNNING", "KILLED"):
                # its trial ended (the row says how) but the driver stopped before the end of
                # the run was sent (and a resume marked it KILLED): end it from the row
                _end_from_row(mlflow, run, row, status, final)
                outcome.ended += 1
            if not row.get("mlflow_run_id"):
                made[trial_id] = run.info.run_id
            if verdict is not None and run.data.tags.get(tracking.TAG_VERDICT) != verdict:
                _tag_verdict(mlflow, run.info.run_id, verdict)
            continue
        config = row_config(row)
        tracker = tracking.TrialTracker(
            uri, experiment_id, parent, trial_id, str(row.get("sweep_id") or meta["sweep_id"]),
            str(row.get("git_commit") or meta.get("git_commit", "unknown")), name_keys=keys,
            patient=True,
        )  # fmt: skip
        if tracker.start(config) is None:
            raise tracking.TrackingError(f"MLflow at {uri} stopped answering during the backfill")
        error = row.get("error")
        tracker.finish(status, row_metrics(row, config), error, None)
        tracking.retry(lambda t=tracker: mlflow.set_tag(t.run_id, "backfilled", "true"))
        if verdict is not None:
            _tag_verdict(mlflow, str(tracker.run_id), verdict)
        made[trial_id] = str(tracker.run_id)
        outcome.created += 1
    filled += fill_run_ids(store, made)
    if filled:  # trials.parquet names every trial's run
        store.consolidate()
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.backfill",
        description="Send a sweep's results to MLflow: the writes it could not send while the "
        "tracking server was away, and a run for every trial MLflow lacks.",
    )
    parser.add_argument("sweep_dir", help="the sweep's directory, RESULTS/NAME (results/bits)")
    parser.add_argument("--mlflow-uri", help="tracking URI (default: the one sweep.json names)")
    args = parser.parse_args(argv)
    try:
        outcome = backfill(args.sweep_dir, args.mlflow_uri)
    except BackfillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except tracking.TrackingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if outcome.left_files:
        print(
            f"backfill: MLflow stopped answering; {outcome.left_files} file(s) of "
            f"{args.sweep_dir}/{PENDING_DIR} still to send: run this command again",
            file=sys.stderr,
        )
        return 1
    print(
        f"backfill: sent {outcome.sent_files} saved file(s) of writes, created "
        f"{outcome.created} run(s) from trials.parquet, ended {outcome.ended}; MLflow holds "
        f"all {outcome.trials} trials of {args.sweep_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
