"""The sweep driver: refuse what cannot run (preflight), hold the sweep directory's lock, make
the MLflow parent run, run (or resume) the trials on Ray Tune, consolidate the rows, and end:
the summary, the report and MLflow's catch-up. ``orchestrator.sweep`` is its command line."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from orchestrator import atomicfs, raystop, summary, tracking
from orchestrator.naming import configuration_name, name_keys
from orchestrator.outbox import PARENT_KEY, queue_parent
from orchestrator.outcome import SweepOutcome
from orchestrator.spec import Spec, check_data, load_spec
from orchestrator.store import ResultsStore, local_path, storage_uri, trial_row
from orchestrator.sweeplock import sweep_lock
from orchestrator.tune_setup import (
    default_concurrency,
    init_ray,
    scheduler,
    searcher,
    staged_trials,
    trainable,
)

if TYPE_CHECKING:
    from orchestrator.trainable import SweepContext

#: a sweep of more trials than this launches only with --yes (``run_sweep(yes=True)``)
LARGE_SWEEP = 10_000


class SweepUsageError(ValueError):
    """Options that cannot work together (exit status 2), e.g. resuming a sweep that never ran."""


def _one_driver_per_sweep(run: Any) -> Any:
    """``run_sweep`` under the sweep directory's lock (:mod:`orchestrator.sweeplock`): a second
    driver on the same directory is refused at once instead of running every trial again."""

    @functools.wraps(run)
    def locked(spec_file: str, *args: Any, **kwargs: Any) -> SweepOutcome:
        spec = load_spec(spec_file, None if kwargs.get("yes") else LARGE_SWEEP)
        root = kwargs.get("storage") or kwargs.get("results") or "results"
        store = ResultsStore(root, spec.name)
        _preflight(spec, spec_file, store, **kwargs)  # refused at once: no lock, Ray or MLflow
        with _sigint_stops_the_sweep(), sweep_lock(store):
            # what an interrupted run left: unfinished writes, unreadable row files
            err = kwargs.get("err") or sys.stderr
            store.repair(say=lambda message: print(message, file=err, flush=True))
            damage = store.tune_state_damage() if kwargs.get("resume") else None
            if damage:  # Tune would print a traceback and start no trial
                raise SweepUsageError(
                    f"--resume: Ray Tune's state is damaged, {damage} (a full disk?); the "
                    f"trials recorded so far are in {store.sweep_uri()}/trials; Tune cannot "
                    "continue this sweep: run the rest as a new sweep (another name)"
                )
            # Ray first: when it cannot start, nothing else (MLflow runs, sweep.json) is made
            started_ray = init_ray(kwargs.get("address"))
            try:
                outcome = run(spec_file, *args, **kwargs)
                if outcome.complete:
                    raystop.stop()  # no trial process left to make a run after the check
                    _children_from_rows(outcome, err)
                return outcome
            except KeyboardInterrupt:  # during consolidation or the report: before the run's
                raystop.stop()  # own clean-up could mark them KILLED; no trial process left
                _kill_running_children_of(store, err)
                raise
            finally:
                if started_ray:
                    raystop.stop()

    return locked


@contextlib.contextmanager
def _sigint_stops_the_sweep() -> Iterator[None]:
    """SIGINT stops the sweep at every moment, even in a process started with SIGINT ignored
    (a job a script started in the background: the shell makes it ignore SIGINT, and children
    inherit that): Python then leaves SIGINT ignored. Ray Tune's ``fit`` handles SIGINT whatever
    was there before, so such a driver stopped on SIGINT while trials ran, but ignored it
    afterwards (consolidation, the report, MLflow's catch-up) and, stopped there, ran on with
    its Ray. Python's own handler (``KeyboardInterrupt``) is in place while the sweep runs, the
    one found put back afterwards."""
    ignored = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    )
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _children_from_rows(outcome: SweepOutcome, err: TextIO) -> None:
    """A finished sweep: every trial's row has its MLflow child run, ended, and no other. A
    trial can end (its row written) while its MLflow writes are still queued in memory when the
    driver is killed; on --resume Tune reports it from its row without running it, so nothing
    would send them: make those runs from the rows (:func:`orchestrator.backfill.backfill`).
    Then the empty duplicates a late write made are deleted, and runs of trials Tune lost
    marked KILLED. Called once the sweep's Ray is down: no trial process can write after."""
    from orchestrator.backfill import backfill
    from orchestrator.outbox import pending_keys

    sweep_dir = local_path(outcome.sweep_uri)
    if sweep_dir is None or pending_keys(outcome.store()):
        return  # MLflow away: the catch-up has said what it misses, and how to back-fill
    try:
        done = backfill(sweep_dir, outcome.tracking_uri)
    except Exception as exc:  # MLflow away: the catch-up has said what it misses
        print(f"MLflow: trials without a run not checked ({type(exc).__name__})", file=err)
        return
    if done.created or done.ended:
        print(
            f"MLflow: {done.created} trial run(s) lost with a stopped driver made from their "
            f"rows, {done.ended} left RUNNING ended",
            file=err,
        )
    duplicates = _delete_empty_duplicates(outcome)
    if duplicates:
        print(f"MLflow: {duplicates} empty duplicate trial run(s) deleted", file=err)
    # every trial's run has ended now: one still RUNNING belongs to a trial Tune lost with a
    # killed driver (started, never saved in Tune's state, run again under another id)
    abandoned = _kill_running_children_of(outcome.store(), err, say=False)
    if abandoned:
        print(f"MLflow: {abandoned} abandoned trial run(s) marked KILLED", file=err)


def _delete_empty_duplicates(outcome: SweepOutcome) -> int:
    """The empty second run a late write can leave beside a trial's run, deleted
    (:func:`orchestrator.tracking.delete_empty_duplicates`); MLflow away: none."""
    if not (outcome.tracking_uri and outcome.experiment_id and outcome.parent_run_id):
        return 0
    # trials.parquet as the backfill left it (it re-consolidates after filling run ids): one
    # read, not one per row file
    try:
        table = outcome.store().read_table("trials.parquet")
        rows = table.select(["trial_id", "mlflow_run_id"]).to_pylist() if table else []
        named = {str(r["trial_id"]): str(r["mlflow_run_id"]) for r in rows if r["mlflow_run_id"]}
        return tracking.delete_empty_duplicates(
            outcome.tracking_uri, outcome.experiment_id, outcome.parent_run_id, named
        )
    except Exception:  # MLflow away (the catch-up has said what it misses), or no table
        return 0


def _kill_running_children_of(store: ResultsStore, err: TextIO, say: bool = True) -> int:
    """Mark the sweep's RUNNING child runs KILLED (its parent from sweep.json); how many."""
    meta = store.read_meta() or {}
    try:
        killed = tracking.kill_running_children(
            meta["tracking_uri"], meta["experiment_id"], meta["parent_run_id"]
        )
    except Exception:  # no sweep.json yet, or MLflow away: nothing to do here
        return 0
    if killed and say:
        print(f"MLflow: {killed} stopped trial run(s) marked KILLED", file=err)
    return killed


def _preflight(
    spec: Spec,
    spec_file: str,
    store: ResultsStore,
    *,
    resume: bool = False,
    data_check: bool = True,
    yes: bool = False,
    **_: Any,
) -> None:
    """What refuses a sweep before anything starts (no lock, no Ray, no MLflow): more than
    :data:`LARGE_SWEEP` trials without ``yes``, missing data, and a sweep directory that does not
    fit ``resume`` (none to resume, another sweep there, a spec.yaml that differs, a damaged
    spec.yaml or sweep.json): :class:`SweepUsageError` or ``DamagedFile``, one line each."""
    if not yes and spec.num_trials() > LARGE_SWEEP:
        raise SweepUsageError(
            f"{spec_file}: {spec.num_trials():,} trials, more than {LARGE_SWEEP:,}: check the "
            "search space (--dry-run lists it), then launch it with --yes"
        )
    if data_check:  # missing data: refused before anything starts (--skip-data-check)
        check_data(spec)
    meta = store.read_meta()
    if resume:
        if meta is None:
            raise SweepUsageError(
                f"--resume: no sweep to resume at {store.sweep_uri()} (no sweep.json); "
                "run it without --resume first"
            )
        if (store.read_spec_text() or "") != spec.text:
            raise SweepUsageError(
                f"--resume: {spec_file} differs from the spec the sweep ran "
                f"({store.sweep_uri()}/spec.yaml); Tune cannot change a search space on resume. "
                "Restore that file, or start a new sweep under another name"
            )
    elif meta is not None:
        raise SweepUsageError(
            f"{store.sweep_uri()} already holds sweep {meta.get('sweep_id')}: continue it with "
            "--resume, or choose another --results directory (or name) for a new sweep"
        )


@_one_driver_per_sweep
def run_sweep(
    spec_file: str,
    *,
    results: str = "results",
    storage: str | None = None,
    mlflow_uri: str | None = None,
    address: str | None = None,
    resume: bool = False,
    max_concurrent: int | None = None,
    optuna_storage: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    analysis_report: bool = True,
    data_check: bool = True,
    yes: bool = False,
) -> SweepOutcome:
    """Run (or resume) the sweep of ``spec_file``; see the module docstring.

    Raises :class:`SpecError` for a bad spec and :class:`SweepUsageError` for options that
    cannot work; a Ctrl-C returns with ``complete=False`` (resume with ``resume=True``).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    spec = load_spec(spec_file)
    store = ResultsStore(storage or results, spec.name)
    # checked before the lock, Ray and MLflow; again under the lock (another driver may have
    # made or finished this sweep meanwhile)
    _preflight(spec, spec_file, store, resume=resume, data_check=False, yes=True)
    meta = store.read_meta()

    # MLflow: the database, the experiment and the parent run, before any trial starts
    tracking_uri = tracking.resolve_tracking_uri(mlflow_uri or (meta or {}).get("tracking_uri"))
    experiment_id = tracking.ensure_experiment(tracking_uri, spec.name)
    commit = tracking.git_commit()
    if meta is None:
        sweep_id = uuid.uuid4().hex[:12]
        parent = tracking.start_parent_run(
            tracking_uri, experiment_id, spec.name, sweep_id, commit, spec.text
        )
        meta = {
            "sweep_id": sweep_id,
            "name": spec.name,
            "spec_file": os.path.abspath(spec_file),
            "tracking_uri": tracking_uri,
            "experiment_id": experiment_id,
            "parent_run_id": parent,
            "git_commit": commit,
            "tune_path": store.tune_uri(),
            **_study_meta(spec, store, optuna_storage),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        store.write_spec(spec.text)
        store.write_meta(meta)
    else:
        parent = meta["parent_run_id"]
        tracking.reopen_run(tracking_uri, parent)
    from orchestrator.trainable import SweepContext  # torch: imported once a sweep runs

    context = SweepContext(
        name=spec.name,
        sweep_id=meta["sweep_id"],
        results_root=storage_uri(storage or results),
        tracking_uri=tracking_uri,
        experiment_id=experiment_id,
        parent_run_id=parent,
        git_commit=meta.get("git_commit", commit),
        spec_text=spec.text,
        name_keys=name_keys(spec),
        resumed=resume,
        # without a scheduler Tune needs the objectives only (and the progress line epoch/step)
        report_keys=() if spec.scheduler == "asha" else (*spec.objectives, "epoch", "step"),
    )

    started_ray = init_ray(address)
    try:
        study_url = _study_url(spec, store, meta, optuna_storage)
        complete = _fit(spec, store, context, resume, max_concurrent, err, study_url=study_url)
    finally:
        try:  # a SIGINT or a full disk here: Ray still goes down, trials.parquet stays whole
            table = store.consolidate()
        finally:
            if started_ray:
                raystop.stop()
    if not complete:  # stopped trials' child runs: KILLED now, RUNNING again on --resume
        raystop.stop()  # (once no trial process is left to start or end one)
        _kill_running_children(tracking_uri, experiment_id, parent, err)
    status = "FINISHED" if complete else "KILLED"
    queue_parent(store, parent, {"op": "terminate", "status": status})
    outcome = SweepOutcome(
        spec, store.sweep_uri(), table, complete, tracking_uri, experiment_id, parent
    )
    answer = summary.summarize(outcome, out)
    if complete and analysis_report:  # the report shows the answer the closing lines computed
        summary.analysis_report(outcome, err, answer=answer)
    _mlflow_catch_up(outcome, store, err)
    return outcome


def _kill_running_children(uri: str, experiment_id: str, parent: str, err: TextIO) -> None:
    try:
        killed = tracking.kill_running_children(uri, experiment_id, parent)
    except Exception as exc:
        print(f"MLflow: could not mark the stopped trials' runs KILLED ({exc})", file=err)
        return
    if killed:
        print(f"MLflow: {killed} stopped trial run(s) marked KILLED", file=err)


def _mlflow_catch_up(outcome: SweepOutcome, store: ResultsStore, err: TextIO) -> None:
    """Send what MLflow has not got yet (the server away meanwhile), waiting for it up to
    ``$LOWPREC_MLFLOW_WAIT_S`` seconds (60); if it stays away, one line says what it missed and
    how to back-fill it from the results."""
    from orchestrator.outbox import catch_up, pending_keys

    uri = outcome.tracking_uri or ""
    wait_s = float(os.environ.get("LOWPREC_MLFLOW_WAIT_S", "60"))
    left, filled = catch_up(store, lambda: tracking.client(uri), wait_s)
    if filled:  # rows written while the server was away now name their runs
        outcome.table = store.consolidate()
    if not left:
        return
    keys = pending_keys(store)
    trials = {k.rsplit("-", 1)[0] for k in keys if k != PARENT_KEY}  # one file per attempt
    where = local_path(outcome.sweep_uri) or outcome.sweep_uri
    print(
        f"MLFLOW INCOMPLETE: {uri} did not answer; it is missing the writes of {len(trials)} "
        f"trial(s){' and of the sweep run' if PARENT_KEY in keys else ''} (trials.parquet "
        f"holds every result). When it is back: python -m orchestrator.backfill {where} "
        f"--mlflow-uri {uri}",
        file=err,
    )


def _study_meta(spec: Spec, store: ResultsStore, override: str | None) -> dict[str, Any]:
    """sweep.json's ``optuna_storage`` (password left out) and ``optuna_study`` of a new optuna
    sweep; refuses a storage that already holds a study of this name with trials."""
    if spec.algorithm != "optuna":
        return {}
    from orchestrator import study

    url = study.storage_url(local_path(store.sweep_uri()), spec.name, override)
    held = study.existing_trials(url, spec.name)
    if held:
        raise SweepUsageError(
            f"--optuna-storage {study.redact(url)} already holds study {spec.name!r} with "
            f"{held} trials: give the sweep another name, another storage, or delete it "
            f"(optuna delete-study --study-name {spec.name} --storage URL)"
        )
    return {"optuna_storage": study.redact(url), "optuna_study": spec.name}


def _study_url(
    spec: Spec, store: ResultsStore, meta: dict[str, Any], override: str | None
) -> str | None:
    """The study's storage URL of this run: ``--optuna-storage``, ``$LOWPREC_OPTUNA_STORAGE``,
    else the one sweep.json records (without a password: libpq takes it from PGPASSWORD)."""
    if spec.algorithm != "optuna":
        return None
    from orchestrator import study

    given = override or os.environ.get(study.ENV_STORAGE) or meta.get("optuna_storage")
    return study.storage_url(local_path(store.sweep_uri()), spec.name, given)


def _fit(
    spec: Spec,
    store: ResultsStore,
    context: SweepContext,
    resume: bool,
    max_concurrent: int | None,
    err: TextIO,
    study_url: str | None = None,
) -> bool:
    """Build (or restore) the Tuner and fit it; True when every trial ended."""
    from ray import tune
    from ray.tune.execution.tune_controller import TuneController

    from orchestrator.actor_deaths import count_each_death_once
    from orchestrator.interrupt import InterruptWatch
    from orchestrator.progress import SweepProgress
    from orchestrator.sweep_records import SweepRecords
    from orchestrator.trial_list import JOURNAL
    from orchestrator.tune_state import align_trial_list, settle_lost_study_trials

    count_each_death_once(TuneController)  # a lost actor costs its trial one retry, not two
    # grid/random: unlimited unless asked (Tune fits trials to the resources, and an autoscaling
    # cluster grows); optuna: a Searcher proposes one trial at a time unless told otherwise
    concurrency = max_concurrent or spec.max_concurrent
    if concurrency is None and spec.algorithm == "optuna":
        concurrency = default_concurrency(spec)
    metric, mode = spec.primary_objective()
    progress = SweepProgress(
        spec.name,
        spec.num_trials(),
        metric,
        mode,
        store=store,
        stream=err,
        name_keys=context.name_keys,
    )
    tracked = (context.tracking_uri, context.experiment_id, context.parent_run_id)
    records = SweepRecords(spec.name, store, tracked, context.name_keys, say=progress.say)
    watch = InterruptWatch(err, spec.name)
    # in this order: the display reads the row the records callback writes for an early stop
    callbacks = [records, progress, watch]
    # a local results dir: Tune's own state files replaced whole or not at all (a full disk
    # cannot cut them short: orchestrator.atomicfs); an object store: Tune's own resolution
    tune_fs = atomicfs.for_storage(store.fs)
    run_config = tune.RunConfig(
        name="tune",
        storage_path=store.sweep_uri() if tune_fs is None else store.path,
        storage_filesystem=tune_fs,
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        callbacks=callbacks,
        verbose=0,
    )
    tune_trainable = trainable(spec, context)
    if resume and not tune.Tuner.can_restore(store.tune_uri(), storage_filesystem=tune_fs):
        # the driver died before Tune saved anything: no trial can have ended, start afresh
        print(
            f"[{spec.name}] no Ray Tune state under {store.tune_uri()}: starting the trials afresh",
            file=err,
        )
        resume = False
    if resume:
        if tune_fs is not None and spec.algorithm != "optuna":
            align_trial_list(store, spec.name, err)
        elif tune_fs is not None and study_url is not None:
            objectives = spec.optimisation_target()[0]
            settle_lost_study_trials(store, spec.name, study_url, objectives, err)
        # Tune restores the run config it saved; the callbacks are ours to give again
        tuner = tune.Tuner.restore(
            store.tune_uri(),
            tune_trainable,
            resume_errored=True,
            restart_errored=False,
            storage_filesystem=tune_fs,
        )
        with contextlib.suppress(AttributeError):
            tuner._local_tuner._run_config.callbacks = callbacks
            # the journal where the results are now (the pickled path is where they were)
            restored = tuner._local_tuner._tune_config.search_alg
            if getattr(restored, "journal", None) is not None and tune_fs is not None:
                restored.journal = os.path.join(store.path, JOURNAL)
        for trial_id in store.trial_row_ids():
            row = store.read_trial_row(trial_id) or {}
            if row.get("status") in ("ok", "diverged"):
                progress.outcomes[trial_id] = str(row["status"])
    else:
        journal = None if tune_fs is None else os.path.join(store.path, JOURNAL)
        tuner = tune.Tuner(
            tune_trainable,
            param_space=spec.param_space(),
            tune_config=tune.TuneConfig(
                num_samples=spec.num_trials(),
                search_alg=searcher(spec, concurrency, study_url, journal),
                scheduler=scheduler(spec),
                # both searchers (the trial list, optuna) need Tune to limit concurrency
                max_concurrent_trials=concurrency,
                reuse_actors=True,
            ),
            run_config=run_config,
        )
    print(
        f"[{spec.name}] {'resuming' if resume else 'running'} {spec.num_trials()} trials, "
        f"{f'at most {concurrency}' if concurrency else 'as many as fit'} at once; "
        f"results in {store.sweep_uri()}",
        file=err,
        flush=True,
    )
    watch.install()
    try:
        with staged_trials(spec, concurrency):
            grid = tuner.fit()
        interrupted = watch.interrupted()
    except KeyboardInterrupt:
        return False
    finally:
        watch.uninstall()
        records.close()
        progress.close()
    if interrupted:
        print(f"[{spec.name}] interrupted (SIGINT): Tune stopped the trials", file=err)
        return False
    _record_lost_trials(grid, store, context, err)
    return _all_ended(grid, spec, store)


def _record_lost_trials(grid: Any, store: ResultsStore, context: SweepContext, err: TextIO) -> None:
    """A ``failed`` row for every trial Tune ended as ERROR without one.

    A trial writes its own row as it ends, a failed one included; but when its worker process
    or node is lost (a removed node, an out-of-memory kill) there is nothing left to write it,
    and Tune, its retries spent, ends the trial ERROR. Without a row the trial would be missing
    from trials.parquet and from the counts; with one, ``--resume`` runs it again (Tune resumes
    errored trials; the trial then writes its own row over this one).
    """
    try:
        trials = grid._experiment_analysis.trials
    except AttributeError:
        return
    recorded = set(store.trial_row_ids())
    for trial in trials:
        if trial.status != "ERROR" or trial.trial_id in recorded:
            continue
        error = _last_line(trial.get_error()) or "its worker was lost"
        error = f"Ray Tune ended the trial after {trial.num_failures} failure(s): {error}"
        run_id = None
        try:
            run_id = tracking.end_trial_run(
                context.tracking_uri,
                context.experiment_id,
                context.parent_run_id,
                trial.trial_id,
                "FAILED",
                {"status": "failed", "error": error[:5000]},
            )
        except Exception as exc:  # the row matters more than the run
            print(f"MLflow: could not end {trial.trial_id}'s run ({exc})", file=err)
        attempts = max(1, int(trial.num_failures or 0))
        row = lost_trial_row(trial.config, trial.trial_id, error, run_id, context, attempts)
        store.write_trial_row(row)
        print(f"[{context.name}] trial {trial.trial_id} recorded as failed: {error}", file=err)


def lost_trial_row(
    config: dict[str, Any],
    trial_id: str,
    error: str,
    run_id: str | None,
    context: SweepContext,
    attempts: int,
) -> dict[str, Any]:
    """The ``failed`` row of a trial that ended without writing one (see above)."""
    from orchestrator.sweep_records import spec_or_config
    from orchestrator.trial import record_config

    described = spec_or_config(config)
    return trial_row(
        record_config(described),
        {"wall_s": math.nan, "diverged": False},
        status="failed",
        error=error,
        trial_id=trial_id,
        configuration=configuration_name(described, context.name_keys),
        mlflow_run_id=run_id,
        sweep_id=context.sweep_id,
        git_commit=context.git_commit,
        node=None,
        attempt=attempts,
        early_stopped=False,
    )


def _last_line(text: Any) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _all_ended(grid: Any, spec: Spec, store: ResultsStore) -> bool:
    """Every trial Tune knows TERMINATED or ERROR, (grid/random) as many as the spec asks, and
    every TERMINATED one with its row: a trial Tune stopped on an interruption also ends
    TERMINATED, but wrote no row (a trial writes its row as it ends, and so does the records
    callback, orchestrator.sweep_records, for one a scheduler stopped)."""
    rows = set(store.trial_row_ids())
    try:
        trials = grid._experiment_analysis.trials
        statuses = [(t.trial_id, t.status) for t in trials]
    except AttributeError:
        return len(rows) >= spec.num_trials()
    ended = all(s in ("TERMINATED", "ERROR") for _, s in statuses)
    recorded = all(t in rows for t, s in statuses if s == "TERMINATED")
    # rows of trials a killed driver's Tune lost (they ended after its last save) count too
    unheld = rows - {t for t, _ in statuses}
    return ended and recorded and len(statuses) + len(unheld) >= spec.num_trials()
