"""The contract between a workload and whoever runs it (the single-trial CLI or a Ray Tune trial).

A workload module (``workloads/<name>.py``) exposes

    KEYS: dict[str, Key]     # its own config keys, beyond ``workloads.config.COMMON_KEYS``
    def run(config: dict, ctx: TrialContext) -> WorkloadResult
    SAMPLERS: tuple[str, ...]            # optional; default ("sgld", "sghmc", "sgd")
    def validate(config: dict) -> None   # optional; ValueError naming the key, before any run

``config`` is a flat dict, already validated and with every default filled in
(``workloads.config.resolve_config``). The workload reads randomness only from ``ctx.generator``,
reports progress through ``ctx.report`` (every epoch, or every few thousand steps), and, when
``ctx.restored`` is not None, continues from the state it passed to its last ``ctx.report``.
A run whose numbers go non-finite raises :class:`Diverged`; any other exception is a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


class Diverged(RuntimeError):
    """The chain's numbers went non-finite. Recorded as status ``diverged``; never retried."""

    def __init__(self, message: str, metrics: dict[str, Any] | None = None):
        super().__init__(message)
        self.metrics = dict(metrics or {})


class DataUnavailable(RuntimeError):
    """Data files are missing or malformed. The message names the directory searched, the
    files expected and how to get them (the single-trial CLI exits 2 with it)."""


def _no_report(metrics: dict[str, Any], state: dict[str, Any] | None = None) -> None:
    return None


@dataclass
class TrialContext:
    """What a running trial gets from its runner.

    generator: the trial's only source of randomness, on ``device``, seeded from ``seed``.
    device:    where tensors live (``config['device']`` resolved: cuda when present, else cpu).
    restored:  the ``state`` of the last ``report`` of an earlier attempt of this trial, or None.
    report:    ``report(metrics, state=None)``: intermediate metrics (must include ``step`` or
               ``epoch``); when ``state`` is given (a ``torch.save``-able dict holding everything
               needed to continue, the generator state included) it is checkpointed.
    step_kernels: the workload sets it to its sampler's ``executor_name`` ("fused" or "eager"),
               so the trial's record says which code path ran the sampler step (a sampler may
               run its step eagerly where the fused step cannot, e.g. block formats over 25 bits).
    """

    generator: torch.Generator
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    restored: dict[str, Any] | None = None
    report: Callable[..., None] = _no_report
    step_kernels: str | None = None


@dataclass
class WorkloadResult:
    """What a finished workload hands back.

    metrics:     final metrics, named as in docs/results.md (``test_error``, ``w2``, ``bits``, ...);
                 every value a float, int or bool.
    labels, probs: classifiers only: per test example the true label ``[n]`` (int64) and the
                 ensemble's class probabilities ``[n, classes]`` (float32).
    samples:     synthetic targets only: the collected (thinned) samples, ``[num_samples, chains,
                 dim]`` float32.
    """

    metrics: dict[str, float | int | bool]
    labels: np.ndarray | None = None
    probs: np.ndarray | None = None
    samples: np.ndarray | None = None
