"""The built-in workloads' own checks of a trial's config, before anything runs: torch-free.

``workloads.config.check_keys`` runs them (:data:`BUILTIN`, by workload module), so that
``python -m orchestrator.trial`` and ``sweep --dry-run`` refuse these configs in one line before
torch loads; each workload module keeps its check as its ``validate``. Each takes a
config whose keys all have values (defaults filled in) and raises ``ValueError`` naming the key.

- synthetic targets (gaussian, mixture; logreg's samplers): ``burn_in`` and ``thin`` (or the
  cyclical schedule) leave at least one of the ``steps`` steps to collect a sample;
- trained networks (mnist_mlp, cifar_resnet18): cyclical ``epochs`` a multiple of ``cycles``,
  and an epoch end to collect a sample; the MLP's ``hidden`` parses;
- logreg's SVRG / HALP: the accumulator and weight format the method can run with
  (:func:`lowprec.precision.check_method`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lowprec.precision import VARIANCE_REDUCED, check_method
from workloads.config.precision import precision_of
from workloads.config.runspec import ScheduleSpec
from workloads.config.table import LOGREG

__all__ = [
    "BUILTIN",
    "check_logreg",
    "check_mlp",
    "check_synthetic",
    "check_training",
    "collection_epochs",
    "parse_hidden",
]

#: steps per epoch assumed when a cyclical run is validated before its data are loaded (the
#: real one is within a factor of a few of this for the bundled data sets; the run re-checks)
VALIDATION_STEPS_PER_EPOCH = 100
#: bounds on ``hidden``: layers, and the width of one layer
MAX_LAYERS, MAX_WIDTH = 64, 65_536


def check_synthetic(config: Mapping[str, Any]) -> None:
    """``burn_in`` and ``thin`` (or the cyclical schedule) must leave at least one of the
    ``steps`` steps to collect a sample."""
    sched = ScheduleSpec.from_values(config).build(int(config["steps"]))
    if not sched.collects_any(int(config["burn_in"]), int(config["thin"])):
        key = "explore_fraction" if sched.kind == "cyclical" else "burn_in"
        raise ValueError(
            f"key {key!r}: burn_in={config['burn_in']}, thin={config['thin']} "
            f"(schedule {sched.kind}) leave none of the {config['steps']} steps to collect a "
            "sample; lower burn_in or explore_fraction, or raise steps"
        )


def check_training(config: Mapping[str, Any]) -> None:
    """Cyclical ``epochs`` must be a multiple of ``cycles``, and the schedule must collect a
    sample. Exact for constant and decay schedules (their sample epochs do not depend on the
    steps per epoch); cyclical ones are checked at :data:`VALIDATION_STEPS_PER_EPOCH` steps per
    epoch, and ``workloads.train.train_classifier`` re-checks with the real number."""
    epochs = int(config["epochs"])
    if config["schedule"] == "cyclical" and epochs % config["cycles"]:
        raise ValueError(
            f"key 'cycles': epochs ({epochs}) must be a multiple of cycles ({config['cycles']}) "
            "so that every cycle ends at the end of an epoch"
        )
    spe = VALIDATION_STEPS_PER_EPOCH if config["schedule"] == "cyclical" else 1
    schedule = ScheduleSpec.from_values(config).build(epochs * spe, steps_per_epoch=spe)
    collection_epochs(
        schedule, epochs, spe, config["burn_in"], config["thin"], config["num_samples"]
    )


def collection_epochs(
    schedule: Any,
    epochs: int,
    steps_per_epoch: int,
    burn_in: int,
    thin: int,
    num_samples: int | None,
) -> list[int]:
    """The epochs (1-based) at whose end a sample is collected and kept.

    An epoch is collected when the step that ends it is a sample step of the schedule counted in
    epochs (``burn_in`` and ``thin`` times ``steps_per_epoch``; cyclical: a cycle's sample
    point); of those, the last ``num_samples`` are kept.
    """
    spe = steps_per_epoch
    chosen = [
        e
        for e in range(1, epochs + 1)
        if schedule.is_sample_step(e * spe - 1, burn_in=burn_in * spe, thin=thin * spe)
    ]
    if num_samples is not None:
        chosen = chosen[-num_samples:]
    if not chosen:
        if schedule.kind == "cyclical":
            raise ValueError(
                "key 'explore_fraction': no epoch end falls in a cycle's sampling stage; lower "
                "explore_fraction or raise epochs"
            )
        raise ValueError(
            f"key 'burn_in': burn_in ({burn_in}) leaves no epoch of the {epochs} to collect a "
            "sample; lower burn_in below epochs"
        )
    return chosen


def parse_hidden(hidden: str) -> list[int]:
    """``"512,256"`` → ``[512, 256]``; ``ValueError`` naming the key for anything else (at
    most ``MAX_LAYERS`` layers of at most ``MAX_WIDTH`` units)."""
    parts = str(hidden).split(",")
    widths = [int(p) for p in parts if p.strip().isdigit() and len(p.strip()) <= 6]
    if not widths or len(widths) != len(parts) or any(not 1 <= w <= MAX_WIDTH for w in widths):
        raise ValueError(
            f"key 'hidden': {hidden!r:.80} is not a comma-separated list of layer widths in "
            f"1..{MAX_WIDTH} (e.g. '100' or '512,256')"
        )
    if len(widths) > MAX_LAYERS:
        raise ValueError(f"key 'hidden': more than {MAX_LAYERS} layers")
    return widths


def check_mlp(config: Mapping[str, Any]) -> None:
    """``hidden`` parses, and the training schedule collects a sample (:func:`check_training`)."""
    parse_hidden(config["hidden"])
    check_training(config)


def check_logreg(config: Mapping[str, Any]) -> None:
    """SVRG/HALP combinations that cannot run (check_method), and burn-in/thinning that leave a
    sampler no sample to collect."""
    if config["sampler"] in VARIANCE_REDUCED:
        check_method(config["sampler"], precision_of(config))
    elif config["sampler"] not in LOGREG.optimisers:  # a sampler's ensemble needs a sample
        check_synthetic(config)


#: workload module -> its check
BUILTIN: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "workloads.gaussian": check_synthetic,
    "workloads.mixture": check_synthetic,
    "workloads.logreg": check_logreg,
    "workloads.mlp": check_mlp,
    "workloads.resnet": check_training,
}
