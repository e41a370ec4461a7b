"""Run a sweep: ``python -m orchestrator.sweep search_spaces/bits.yaml``.

    python -m orchestrator.sweep FILE [--dry-run] [--resume] [--results DIR] [--storage URI]
                                      [--mlflow-uri URI] [--address ADDR] [--max-concurrent N]

1. the spec is validated as a whole (:mod:`orchestrator.spec`); any problem -> exit 2 with
   ``FILE: key.path: reason``; ``--dry-run`` prints the trial count and the first trials;
2. the sweep directory ``RESULTS/<name>/`` (``--results``, default ``./results``; or
   ``--storage`` a pyarrow URI such as ``s3://bucket/prefix`` for results and Tune's state) gets
   ``spec.yaml`` and ``sweep.json`` (sweep id, MLflow parent run);
3. MLflow: the database, the experiment (= name) and the sweep's parent run are made here, in the
   driver, before any trial (``orchestrator.tracking``);
4. Ray: a local instance with this machine's CPUs, or ``--address auto`` / ``ray://host:10001``;
5. Ray Tune runs :func:`orchestrator.trainable.tune_trainable` for every trial (grid/random:
   Tune's variant generator; optuna: ``OptunaSearch``, TPE for one objective and NSGA-II for
   several; ASHA when ``scheduler: asha``), retrying a raising trial ``max_failures`` times;
6. the trials' row files are consolidated into ``trials.parquet``; a summary table, the commands
   to look further, and (when the ``analysis`` package is importable) the report, its PNGs
   logged to the parent run.

``--resume`` continues an interrupted sweep (Ctrl-C, a killed driver) from Tune's experiment dir
(``Tuner.restore(..., resume_errored=True)``): finished trials are not run again.
Exit status: 0 when every trial ended (failed or diverged trials included), 2 for a bad spec or
options, 1 when the sweep directory is in use by another driver, Ray cannot start or join
(:mod:`orchestrator.raystart`) or a file cannot be written (a full disk: the line names it),
130 when interrupted (resume with ``--resume``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import math
import os
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from orchestrator import atomicfs, raystart, tracking
from orchestrator.raystart import RayStartError
from orchestrator.spec import Spec, SpecError, check_data, load_spec
from orchestrator.store import DamagedFile, ResultsStore, storage_uri, table_to_text
from orchestrator.sweeplock import SweepLocked, sweep_lock

if TYPE_CHECKING:
    from orchestrator.trainable import SweepContext

#: environment every trial process gets (Ray workers inherit it from the runtime env)
WORKER_ENV = {
    # intermediate reports need not carry the objectives (only the final one does)
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
    # trials keep the driver's working directory, so relative data paths mean the same thing
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    # keeping two checkpoints per trial forces frequent experiment snapshots: by design here
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # no result.json / progress.csv / TensorBoard events per trial, written by the driver at
    # every report: the trial's row (Parquet) and its MLflow run are the record (bench.scale)
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
}


#: the key of the parent run's queued MLflow writes (orchestrator.outbox)
PARENT_KEY = "_sweep"


#: a sweep of more trials than this launches only with --yes (``run_sweep(yes=True)``)
LARGE_SWEEP = 10_000


class SweepUsageError(ValueError):
    """Options that cannot work together (exit status 2), e.g. resuming a sweep that never ran."""


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did: the spec, the sweep directory, the consolidated table (None
    for a dry run), whether every trial ended, and the MLflow ids."""

    spec: Spec
    sweep_uri: str
    table: Any = None
    complete: bool = True
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None


# ----------------------------------------------------------------------------------------------
# building the Tuner
# ----------------------------------------------------------------------------------------------


def _searcher(spec: Spec, max_concurrent: int | None, storage: str | None = None) -> Any:
    """grid/random: Tune's variant generator; optuna: TPE (one objective) or NSGA-II (several)
    on the study ``spec.name`` in ``storage`` (an Optuna storage URL, :mod:`orchestrator.study`;
    None: in memory)."""
    if spec.algorithm == "optuna":
        import optuna

        from orchestrator.study import StudySearch, open_storage

        metrics, modes = spec.optimisation_target()
        kwargs: dict[str, Any] = {}
        if storage is not None:
            kwargs = {"study_name": spec.name, "storage": open_storage(storage)}
        space = spec.optuna_space() if hasattr(spec, "optuna_space") else None
        if space is not None:
            kwargs["space"] = space
        if len(metrics) == 1:
            # constant_liar: running trials count as bad, so parallel slots get different ones
            sampler = optuna.samplers.TPESampler(seed=spec.search_seed, constant_liar=True)
            return StudySearch(metric=metrics[0], mode=modes[0], sampler=sampler, **kwargs)
        sampler = optuna.samplers.NSGAIISampler(seed=spec.search_seed)
        return StudySearch(metric=metrics, mode=modes, sampler=sampler, **kwargs)
    from orchestrator.trial_list import TrialList

    # the explicit, deduplicated list (variants x space x fixed, drawn from search.seed)
    return TrialList(spec.trial_configs())


def _scheduler(spec: Spec) -> Any:
    if spec.scheduler != "asha":
        from orchestrator.fifo import Fifo  # Tune's FIFO order without a scan of every trial

        return Fifo()
    from ray.tune.schedulers import ASHAScheduler

    metric, mode = spec.primary_objective()
    return ASHAScheduler(
        time_attr="training_iteration",
        metric=metric,
        mode=mode,
        grace_period=spec.grace_period,
        max_t=spec.max_t,
    )


def _trainable(spec: Spec, context: SweepContext) -> Any:
    from ray import tune

    resources = {k: v for k, v in spec.resources.items() if v > 0}
    resources.update(spec.custom_resources)
    from orchestrator.trainable import tune_trainable  # torch: imported once a sweep runs

    return tune.with_resources(tune.with_parameters(tune_trainable, sweep=context), resources)


def _default_concurrency(spec: Spec) -> int:
    """How many trials fit on the cluster at once (at least 1)."""
    import ray

    available = ray.cluster_resources()
    fits = []
    for name, amount in {**spec.resources, **spec.custom_resources}.items():
        if amount > 0:
            have = available.get(name.upper() if name in ("cpu", "gpu") else name, 0.0)
            fits.append(int(have // amount))
    return max(1, min(fits) if fits else 1)


def _init_ray(address: str | None) -> bool:
    """Start or join Ray; True when this call started it (and should shut it down)."""
    import ray

    os.environ.update(WORKER_ENV)
    # the legacy output engine honours verbose=0 (the new one prints its table regardless)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # with the per-result loggers off (WORKER_ENV), fit()'s ResultGrid warns once per trial that
    # it found no result.json / progress.csv; the sweep reads its own rows, never those metrics
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "logging_level": "WARNING",
        "log_to_driver": False,
        "runtime_env": {"env_vars": dict(WORKER_ENV)},
    }
    if not address:
        # raystart passes address "local": a new instance of our own, even where `ray start`
        # left a cluster running (ray.init() alone would join that one, and refuse num_cpus)
        kwargs.update(num_cpus=os.cpu_count(), include_dashboard=False)
    # an unreachable address or a port taken by another program: one line, nothing started
    raystart.start(ray.init, ray.shutdown, address, **kwargs)
    return True


# ----------------------------------------------------------------------------------------------
# the sweep
# ----------------------------------------------------------------------------------------------


def dry_run(spec: Spec, out: TextIO, limit: int = 5) -> None:
    """Print the number of trials, per variant with its first ``limit`` trials (the keys that
    are not the same in every trial); optuna: the space each variant proposes from."""
    n = spec.num_trials()
    print(
        f"{spec.file}: {n} trial{'s' if n != 1 else ''} of workload {spec.workload!r} "
        f"({spec.algorithm}, num_samples {spec.num_samples}; objectives "
        f"{', '.join(f'{k}: {v}' for k, v in spec.objectives.items())})",
        file=out,
    )
    shared = spec.base_config()
    print("  fixed: " + " ".join(f"{k}={v}" for k, v in shared.items()), file=out)
    if spec.algorithm == "optuna":
        # Optuna proposes each trial from the results so far: there is no list to show
        for part in spec.parts():
            keys = [f"{k}={v}" for k, v in part.fixed.items()]
            keys += [f"{k}={a.describe()}" for k, a in spec.part_axes(part).items()]
            label = f"variant {part.name}" if part.name is not None else "space"
            print(f"  {label}: {' '.join(keys) if keys else '(no searched keys)'}", file=out)
        keys = [*(["variant"] if spec.variants else []), *spec.searched_keys()]
        print(
            f"  {n} trial{'s' if n != 1 else ''} proposed by Optuna over: "
            f"{', '.join(keys) if keys else '(no searched keys)'}",
            file=out,
        )
        return
    expansion = spec.expansion()
    index = 0
    for part in spec.parts():
        trials = [t for t in expansion.trials if t.variant == part.name]
        merged = expansion.merged.get(part.name, 0)
        note = f" ({merged} more differ only in keys without effect: run once)" if merged else ""
        indent = "  "
        if part.name is not None:
            count = f"{len(trials)} trial{'s' if len(trials) != 1 else ''}"
            print(f"  variant {part.name}: {count}{note}", file=out)
            indent = "    "
        elif note:
            print(f"  {note.strip()[1:-1]}", file=out)
        for trial in trials[:limit]:
            shown = " ".join(
                f"{k}={v}" for k, v in trial.config.items() if k not in shared and k != "variant"
            )
            print(f"{indent}[{index}] {shown or '(the fixed keys only)'}", file=out)
            index += 1
        if len(trials) > limit:
            print(f"{indent}... {len(trials) - limit} more", file=out)
        index += max(0, len(trials) - limit)


def _one_driver_per_sweep(run: Any) -> Any:
    """``run_sweep`` under the sweep directory's lock (:mod:`orchestrator.sweeplock`): a second
    driver on the same directory is refused at once instead of running every trial again."""

    @functools.wraps(run)
    def locked(spec_file: str, *args: Any, **kwargs: Any) -> SweepOutcome:
        spec = load_spec(spec_file, None if kwargs.get("yes") else LARGE_SWEEP)
        root = kwargs.get("storage") or kwargs.get("results") or "results"
        store = ResultsStore(root, spec.name)
        _preflight(spec, spec_file, store, **kwargs)  # refused at once: no lock, Ray or MLflow
        with sweep_lock(store):
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
            started_ray = _init_ray(kwargs.get("address"))
            try:
                outcome = run(spec_file, *args, **kwargs)
                if outcome.complete:
                    _children_from_rows(outcome, err)
                return outcome
            except KeyboardInterrupt:  # during consolidation or the report: before the run's
                _kill_running_children_of(store, err)  # own clean-up could mark them KILLED
                raise
            finally:
                if started_ray:
                    import ray

                    ray.shutdown()

    return locked


def _children_from_rows(outcome: SweepOutcome, err: TextIO) -> None:
    """A finished sweep: every trial's row has its MLflow child run, ended. A trial can end
    (its row written) while its MLflow writes are still queued in memory when the driver is
    killed; on --resume Tune reports it from its row without running it, so nothing would send
    them: make those runs from the rows (:func:`orchestrator.backfill.backfill`)."""
    from orchestrator.backfill import backfill
    from orchestrator.outbox import pending_keys

    sweep_dir = local_path(outcome.sweep_uri)
    if sweep_dir is None or pending_keys(store_of(outcome)):
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
    # every trial's run has ended now: one still RUNNING belongs to a trial Tune lost with a
    # killed driver (started, never saved in Tune's state, run again under another id)
    abandoned = _kill_running_children_of(store_of(outcome), err, say=False)
    if abandoned:
        print(f"MLflow: {abandoned} abandoned trial run(s) marked KILLED", file=err)


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
        name_keys=_name_keys(spec),
        resumed=resume,
        # without a scheduler Tune needs the objectives only (and the progress line epoch/step)
        report_keys=() if spec.scheduler == "asha" else (*spec.objectives, "epoch", "step"),
    )

    started_ray = _init_ray(address)
    try:
        study_url = _study_url(spec, store, meta, optuna_storage)
        complete = _fit(spec, store, context, resume, max_concurrent, err, study_url=study_url)
    finally:
        try:  # a SIGINT or a full disk here: Ray still goes down, trials.parquet stays whole
            table = store.consolidate()
        finally:
            if started_ray:
                import ray

                ray.shutdown()
    if not complete:  # stopped trials' child runs: KILLED now, RUNNING again on --resume
        _kill_running_children(tracking_uri, experiment_id, parent, err)
    status = "FINISHED" if complete else "KILLED"
    _queue_parent(store, parent, {"op": "terminate", "status": status})
    outcome = SweepOutcome(
        spec, store.sweep_uri(), table, complete, tracking_uri, experiment_id, parent
    )
    summarize(outcome, out)
    if complete and analysis_report:
        _analysis_report(outcome, err)
    _mlflow_catch_up(outcome, store, err)
    return outcome


def _name_keys(spec: Spec) -> tuple[str, ...]:
    """The keys that vary within the sweep: a child run is named by their values."""
    if hasattr(spec, "searched_keys"):
        return tuple(spec.searched_keys())
    return tuple(axis.key for axis in spec.space.values())


def _kill_running_children(uri: str, experiment_id: str, parent: str, err: TextIO) -> None:
    try:
        killed = tracking.kill_running_children(uri, experiment_id, parent)
    except Exception as exc:
        print(f"MLflow: could not mark the stopped trials' runs KILLED ({exc})", file=err)
        return
    if killed:
        print(f"MLflow: {killed} stopped trial run(s) marked KILLED", file=err)


def _queue_parent(store: ResultsStore, parent: str, *ops: dict[str, Any]) -> None:
    """Writes to the parent run, sent with the trials' by :func:`_mlflow_catch_up`."""
    from orchestrator.outbox import load_pending, save_pending

    earlier = load_pending(store, PARENT_KEY) or {}
    queued = [*earlier.get("ops", []), *ops]
    save_pending(store, PARENT_KEY, parent, queued, final=True)


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

    from orchestrator.progress import InterruptWatch, SweepProgress

    # grid/random: unlimited unless asked (Tune fits trials to the resources, and an autoscaling
    # cluster grows); optuna: a Searcher proposes one trial at a time unless told otherwise
    concurrency = max_concurrent or spec.max_concurrent
    if concurrency is None and spec.algorithm == "optuna":
        concurrency = _default_concurrency(spec)
    metric, mode = spec.primary_objective()
    progress = SweepProgress(
        spec.name,
        spec.num_trials(),
        metric,
        mode,
        store=store,
        tracking=(context.tracking_uri, context.experiment_id, context.parent_run_id),
        stream=err,
        name_keys=context.name_keys,
    )
    watch = InterruptWatch()
    # a local results dir: Tune's own state files replaced whole or not at all (a full disk
    # cannot cut them short: orchestrator.atomicfs); an object store: Tune's own resolution
    tune_fs = atomicfs.for_storage(store.fs)
    run_config = tune.RunConfig(
        name="tune",
        storage_path=store.sweep_uri() if tune_fs is None else store.path,
        storage_filesystem=tune_fs,
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        callbacks=[progress, watch],
        verbose=0,
    )
    trainable = _trainable(spec, context)
    if resume and not tune.Tuner.can_restore(store.tune_uri(), storage_filesystem=tune_fs):
        # the driver died before Tune saved anything: no trial can have ended, start afresh
        print(
            f"[{spec.name}] no Ray Tune state under {store.tune_uri()}: starting the trials afresh",
            file=err,
        )
        resume = False
    if resume:
        # Tune restores the run config it saved; the callbacks are ours to give again
        tuner = tune.Tuner.restore(
            store.tune_uri(),
            trainable,
            resume_errored=True,
            restart_errored=False,
            storage_filesystem=tune_fs,
        )
        with contextlib.suppress(AttributeError):
            tuner._local_tuner._run_config.callbacks = [progress, watch]
        for trial_id in store.trial_row_ids():
            row = store.read_trial_row(trial_id) or {}
            if row.get("status") in ("ok", "diverged"):
                progress.outcomes[trial_id] = str(row["status"])
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=spec.param_space(),
            tune_config=tune.TuneConfig(
                num_samples=spec.num_trials(),
                search_alg=_searcher(spec, concurrency, study_url),
                scheduler=_scheduler(spec),
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
        with _staged_trials(spec, concurrency):
            grid = tuner.fit()
        interrupted = watch.interrupted()
    except KeyboardInterrupt:
        return False
    finally:
        watch.uninstall()
        progress.close()
    if interrupted:
        print(f"[{spec.name}] interrupted (SIGINT): Tune stopped the trials", file=err)
        return False
    return _all_ended(grid, spec, store)


#: Tune's setting of how many trials it stages (their resources requested) ahead of a free slot
PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"


@contextlib.contextmanager
def _staged_trials(spec: Spec, concurrency: int | None) -> Iterator[None]:
    """While Tune runs a sweep without a concurrency limit: as many trials staged as the
    cluster has slots (at least 2), unless ``TUNE_MAX_PENDING_TRIALS_PG`` is set already.

    Why: Tune keeps a finished trial's actor for the next trial only while a staged trial
    waits for the same resources (or no other actor is kept), and with a custom searcher (the
    trial list) it stages one trial at a time. With two slots, one slot's actor was stopped
    after each trial and its next trial started a new worker process (Ray, torch and MLflow
    imported again: ~3 s of CPU), 0.12 s per trial in bench.scale against 0.07 with trials
    staged. With a limit (``max_concurrent``, optuna) Tune's ConcurrencyLimiter lets no trial
    wait beyond it, so this does not apply there."""
    if concurrency is not None or PENDING_ENV in os.environ:
        yield
        return
    os.environ[PENDING_ENV] = str(max(2, _default_concurrency(spec)))
    try:
        yield
    finally:
        os.environ.pop(PENDING_ENV, None)


def _all_ended(grid: Any, spec: Spec, store: ResultsStore) -> bool:
    """Every trial Tune knows TERMINATED or ERROR, (grid/random) as many as the spec asks, and
    every TERMINATED one with its row: a trial Tune stopped on an interruption also ends
    TERMINATED, but wrote no row (a trial writes its row as it ends, and so does the progress
    callback for one a scheduler stopped)."""
    rows = set(store.trial_row_ids())
    try:
        trials = grid._experiment_analysis.trials
        statuses = [(t.trial_id, t.status) for t in trials]
    except AttributeError:
        return len(rows) >= spec.num_trials()
    ended = all(s in ("TERMINATED", "ERROR") for _, s in statuses)
    recorded = all(t in rows for t, s in statuses if s == "TERMINATED")
    return ended and recorded and len(statuses) >= spec.num_trials()


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


def _analysis_report(outcome: SweepOutcome, err: TextIO) -> None:
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
            ops.append(_table_op(path, f"report/{csv[:-4]}_table.json"))
    _queue_parent(store_of(outcome), outcome.parent_run_id or "", *ops)


def _table_op(csv_path: str, artifact_file: str) -> dict[str, Any]:
    """The CSV as an MLflow table artifact (the run's Artifacts tab shows it as a table)."""
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(csv_path)
    data = {
        name: [None if isinstance(v, float) and math.isnan(v) else v for v in column.to_pylist()]
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    return {"op": "table", "data": data, "path": artifact_file}


def store_of(outcome: SweepOutcome) -> ResultsStore:
    """The results store of an outcome's sweep directory (``ROOT/<name>``)."""
    root, name = outcome.sweep_uri.rstrip("/").rsplit("/", 1)
    return ResultsStore(root, name)


def local_path(uri: str) -> str | None:
    """The local directory of a sweep URI: a path as it is, ``file:///dir`` as ``/dir``; None
    for remote storage (``s3://``, ``gs://`` ...)."""
    if "://" not in uri:
        return uri
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return urllib.request.url2pathname(parsed.path)
    return None


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------


class _OneLineParser(argparse.ArgumentParser):
    """Bad options say so in one line (exit 2), like every other refusal of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (python -m orchestrator.sweep --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m orchestrator.sweep",
        description="Run a low-precision sampling sweep on Ray Tune, tracked in MLflow.",
    )
    parser.add_argument("file", help="search-space YAML (e.g. search_spaces/bits.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="print the trials; run nothing")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    parser.add_argument(
        "--yes", action="store_true", help=f"launch even more than {LARGE_SWEEP:,} trials"
    )
    parser.add_argument("--results", default="results", help="results root (default ./results)")
    parser.add_argument(
        "--storage", help="results root as a pyarrow URI (s3://bucket/prefix, /shared/mount)"
    )
    parser.add_argument(
        "--mlflow-uri", help="tracking URI (default sqlite:///<cwd>/mlflow.db; http://head:5000)"
    )
    parser.add_argument("--address", help="join a Ray cluster: auto or ray://host:10001")
    parser.add_argument("--max-concurrent", type=int, help="trials at once (default: what fits)")
    parser.add_argument(
        "--skip-data-check",
        action="store_true",
        help="do not check here that the trials' data sets are present (data only on workers)",
    )
    parser.add_argument(
        "--optuna-storage",
        help="optuna: the study's storage URL (default sqlite:///RESULTS/NAME/optuna.db; "
        "postgresql://user@head/optuna on a cluster, the password in PGPASSWORD)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m orchestrator.sweep``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.max_concurrent is not None and args.max_concurrent < 1:
        print("error: --max-concurrent: must be at least 1", file=sys.stderr)
        return 2
    try:
        if args.dry_run:
            spec = load_spec(args.file)
            if not args.skip_data_check:
                check_data(spec)
            dry_run(spec, sys.stdout)
            return 0
        outcome = run_sweep(
            args.file,
            results=args.results,
            storage=args.storage,
            mlflow_uri=args.mlflow_uri,
            address=args.address,
            resume=args.resume,
            max_concurrent=args.max_concurrent,
            optuna_storage=args.optuna_storage,
            data_check=not args.skip_data_check,
            yes=args.yes,
        )
    except (SpecError, SweepUsageError, DamagedFile, tracking.TrackingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SweepLocked, RayStartError, OSError) as exc:  # OSError: a full disk, names the file
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; continue with --resume", file=sys.stderr)
        return 130
    return 0 if outcome.complete else 130


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head`: end quietly, no traceback
    sys.exit(main())
