"""Ray Tune's side of a sweep: the environment of every trial process, Ray started or joined,
the searcher (the trial list, or an Optuna study), the scheduler and the trainable."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from orchestrator import raystart, raystop
from orchestrator.spec import Spec

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


def searcher(
    spec: Spec, max_concurrent: int | None, storage: str | None = None, journal: str | None = None
) -> Any:
    """grid/random: the trial list, its suggestions journaled in ``journal`` (a local path,
    :mod:`orchestrator.trial_list`); optuna: TPE (one objective) or NSGA-II (several) on the
    study ``spec.name`` in ``storage`` (an Optuna storage URL, :mod:`orchestrator.study`; None:
    in memory)."""
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
    return TrialList(spec.trial_configs(), journal)


def scheduler(spec: Spec) -> Any:
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


def trainable(spec: Spec, context: SweepContext) -> Any:
    from ray import tune

    resources = {k: v for k, v in spec.resources.items() if v > 0}
    resources.update(spec.custom_resources)
    from orchestrator.trainable import tune_trainable  # torch: imported once a sweep runs

    return tune.with_resources(tune.with_parameters(tune_trainable, sweep=context), resources)


def default_concurrency(spec: Spec) -> int:
    """How many trials fit on the cluster at once (at least 1)."""
    import ray

    available = ray.cluster_resources()
    fits = []
    for name, amount in {**spec.resources, **spec.custom_resources}.items():
        if amount > 0:
            have = available.get(name.upper() if name in ("cpu", "gpu") else name, 0.0)
            fits.append(int(have // amount))
    return max(1, min(fits) if fits else 1)


def init_ray(address: str | None) -> bool:
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
    raystop.own()
    return True


# ----------------------------------------------------------------------------------------------
# the sweep
# ----------------------------------------------------------------------------------------------


#: Tune's setting of how many trials it stages (their resources requested) ahead of a free slot
PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"


@contextlib.contextmanager
def staged_trials(spec: Spec, concurrency: int | None) -> Iterator[None]:
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
    os.environ[PENDING_ENV] = str(max(2, default_concurrency(spec)))
    try:
        yield
    finally:
        os.environ.pop(PENDING_ENV, None)
