"""The Ray Tune function trainable: one trial of a sweep, through
:func:`orchestrator.trial.run_trial`.

Per trial (trial id = Tune's):

1. a trial whose row file already says ``ok`` or ``diverged`` (a resumed sweep whose driver died
   after the trial ended) is not run again: its final metrics are reported and it returns;
2. its MLflow child run is reopened (a retry, a resume) or created under the sweep's parent, by
   the tracker's background thread while the trial computes;
3. ``ctx.restored`` = the state in ``tune.get_checkpoint()`` (an earlier attempt's last
   checkpoint), and ``ctx.report(metrics, state)`` -> MLflow metrics at the report's step and
   ``tune.report(metrics, checkpoint=...)`` (the state ``torch.save``'d in a temporary dir);
4. the predictions or samples, then the trial's row (``trials/<trial_id>.parquet``) are written
   atomically and the child run ended;
5. status ``failed`` is raised again, so Tune retries it (``FailureConfig(max_failures)``);
   ``diverged`` returns normally and is never retried; config or data problems are recorded as
   ``failed`` without a retry (they would fail the same way again).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from orchestrator.naming import configuration_name
from orchestrator.spec import ALLOWED_METRICS
from orchestrator.store import ResultsStore, trial_row
from orchestrator.tracking import TrialTracker, numeric_metrics
from orchestrator.trial import (
    TrialConfigError,
    TrialResult,
    record_config,
    run_trial,
    trial_spec,
)
from workloads.base import DataUnavailable

STATE_FILE = "state.pt"


class TrialFailed(RuntimeError):
    """A trial's workload raised; raised again in the trainable so that Tune retries it."""


@dataclass(frozen=True)
class SweepContext:
    """What every trial of a sweep needs besides its config (given with ``tune.with_parameters``,
    so none of it is a searched key or an MLflow param)."""

    name: str
    sweep_id: str
    results_root: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    git_commit: str
    spec_text: str
    #: the sweep's searched keys: a child run is named by their values (tracking.run_name)
    name_keys: tuple[str, ...] = ()
    #: a resumed sweep: a trial without a recorded child run searches MLflow for one
    resumed: bool = False
    #: the metrics Tune is told (the objectives, the progress keys ``epoch``/``step``); empty:
    #: every metric (a scheduler such as ASHA writes an early-stopped trial's row from them).
    #: Tune keeps running statistics and n-step windows of every number reported, in the
    #: experiment state it rewrites whole at each snapshot (~20 KB a trial with every metric).
    report_keys: tuple[str, ...] = ()


def _restored_state() -> dict[str, Any] | None:
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        path = os.path.join(directory, STATE_FILE)
        if not os.path.exists(path):
            return None
        return load_state(path)


def load_state(path: str) -> dict[str, Any] | None:
    """The trial state saved at ``path``, read with ``torch.load(weights_only=True)`` (tensors,
    numbers, strings and their containers: a checkpoint cannot run code). A damaged or foreign
    file gives None and one line on stderr naming it: the trial then starts again from its seed,
    which replays it exactly (nothing is lost but time)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
    else:
        if isinstance(state, dict):
            return state
        reason = f"holds a {type(state).__name__}, not a trial state"
    print(
        f"checkpoint {path} cannot be read ({reason[:300]}); the trial starts again from its seed",
        file=sys.stderr,
        flush=True,
    )
    return None


def final_report(
    row: dict[str, Any], config_keys: Iterable[str] = (), keep: Iterable[str] = ()
) -> dict[str, Any]:
    """What the trial's last ``tune.report`` carries: its numeric metrics and ``status``.

    The row's config keys (``config_keys``) are left out, unless an objective may name them
    (``bits``): Tune keeps running statistics and n-step windows of every number a trial
    reports, in the experiment state it rewrites whole at every snapshot (~0.35 KB per number
    per trial; forty config numbers tripled it, bench.scale). With ``keep``, only those
    metrics (:attr:`SweepContext.report_keys`)."""
    skip = (set(config_keys) - ALLOWED_METRICS) | {"trial_id", "attempt"}
    keep = set(keep)
    out: dict[str, Any] = {
        k: v for k, v in numeric_metrics(row).items() if k not in skip and (not keep or k in keep)
    }
    out["status"] = row.get("status")
    out["node"] = row.get("node")
    return out


def tune_trainable(config: dict[str, Any], sweep: SweepContext) -> None:
    """The function trainable Ray Tune runs for every trial (see the module docstring)."""
    import ray
    from ray import tune

    trial_id = tune.get_context().get_trial_id()
    node = ray.get_runtime_context().get_node_id()
    store = ResultsStore(sweep.results_root, sweep.name)
    prior = store.read_trial_row(trial_id)
    if prior is not None and prior.get("status") in ("ok", "diverged"):
        tune.report(final_report(prior, config, sweep.report_keys))
        return
    attempt = int(prior.get("attempt") or 0) + 1 if prior is not None else 1

    tracker = TrialTracker(
        sweep.tracking_uri,
        sweep.experiment_id,
        sweep.parent_run_id,
        trial_id,
        sweep.sweep_id,
        sweep.git_commit,
        store=store,
        name_keys=sweep.name_keys,
        search=sweep.resumed or prior is not None,
    )
    # the trial's one resolution: the tracker, the run, the row and the names read it
    trial: Any = None
    try:
        trial = trial_spec(config)
    except TrialConfigError as exc:
        setup_error: Exception | None = exc
    else:
        setup_error = None
    described = trial if trial is not None else dict(config)  # what names and records it
    run_id = tracker.start(described, wait=False)  # made while the trial computes

    def report(metrics: dict[str, Any], state: dict[str, Any] | None = None) -> None:
        tracker.log_metrics(metrics)
        keys = sweep.report_keys
        shown = {
            k: v
            for k, v in metrics.items()
            if isinstance(v, int | float | bool | str) and (not keys or k in keys)
        }
        if state is None:
            tune.report(shown)
            return
        with tempfile.TemporaryDirectory(prefix="lowprec-ckpt-") as directory:
            torch.save(state, os.path.join(directory, STATE_FILE))
            tune.report(shown, checkpoint=tune.Checkpoint.from_directory(directory))

    if trial is not None:
        try:
            result = run_trial(trial, report=report, restored=_restored_state())
        except (TrialConfigError, DataUnavailable) as exc:
            setup_error = exc
    if setup_error is not None:
        result = TrialResult(
            config=dict(trial.resolved if trial is not None else config),
            status="failed",
            error=str(setup_error),
        )
        result.metrics = {"wall_s": 0.0, "diverged": False}

    if result.status == "ok":
        if result.probs is not None and result.labels is not None:
            store.write_predictions(trial_id, result.labels, result.probs)
        if result.samples is not None:
            store.write_samples(trial_id, result.samples)
    row = trial_row(
        record_config(described),
        result.metrics,
        status=result.status,
        error=result.error,
        trial_id=trial_id,
        # the child run's name without the seed: the answer groups the seeds by it
        configuration=configuration_name(described, sweep.name_keys),
        mlflow_run_id=tracker.run_id or run_id,  # known by now even if the start was slow
        sweep_id=sweep.sweep_id,
        git_commit=sweep.git_commit,
        node=node,
        hostname=socket.gethostname(),
        attempt=attempt,
        early_stopped=False,
    )
    store.write_trial_row(row)
    tracker.finish(result.status, result.metrics, result.error, result.traceback)
    if row["mlflow_run_id"] is None and tracker.run_id is not None:
        # the tracking server came back while the trial ended: its row names the run after all
        row["mlflow_run_id"] = tracker.run_id
        store.write_trial_row(row)
    if result.status == "failed" and result.exception is not None:
        raise TrialFailed(f"trial {trial_id} failed: {result.error}") from result.exception
    tune.report(final_report(row, result.config, sweep.report_keys))
