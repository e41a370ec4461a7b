"""A fake workload implementing the ``workloads.base`` contract, for the orchestrator's tests.

It behaves as ``behaviour`` says: ``ok``; ``raise`` (every attempt raises); ``raise_once`` (the
first attempt of a trial raises after its checkpoint of step ``raise_step``, 0 the first; later
attempts succeed: the marker file ``<marker_dir>/<seed>-<lr>`` remembers the attempt);
``die_once`` (as ``raise_once``, but the first attempt ends its worker process with
``os._exit``: a lost worker, as on a removed node, which writes no row); ``diverge`` (raises
``Diverged``); ``missing_data`` (raises ``DataUnavailable``). It reports
``reports`` times, sleeping ``sleep_s`` before each, with a checkpointed state, and resumes from
``ctx.restored``. ``kind`` picks what it hands back: class probabilities (``classifier``) or
samples (``sampler``).

Its metrics are a deterministic function of the config and the generator, so the same seed gives
the same numbers: ``test_error = lr + u/100`` with u ~ U[0, 1) drawn from ``ctx.generator``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from tests.orchestrator import fake_registry
from workloads.base import DataUnavailable, Diverged, TrialContext, WorkloadResult
from workloads.config.resolve import Key

NAME = fake_registry.NAME

KEYS: dict[str, Key] = {
    "behaviour": Key(
        str, "ok", "what the fake does",
        choices=("ok", "raise", "raise_once", "die_once", "diverge", "missing_data"),
    ),
    "sleep_s": Key(float, 0.0, "seconds slept before each report", min=0.0, max=3600.0),
    "reports": Key(int, 3, "number of intermediate reports", min=1, max=10_000),
    "kind": Key(str, "classifier", "classifier or sampler", choices=("classifier", "sampler")),
    "marker_dir": Key(str, None, "raise_once: where attempts are remembered", optional=True),
    "raise_step": Key(int, 0, "raise_once: the step after whose checkpoint it raises", min=0,
                      max=10_000),
}  # fmt: skip


def register() -> None:
    """Add ``fake`` to the workload registry (and to the ``workload`` key's choices)."""
    fake_registry.register()


def run(config: dict[str, Any], ctx: TrialContext) -> WorkloadResult:
    """See the module docstring."""
    behaviour = config["behaviour"]
    if behaviour == "missing_data":
        raise DataUnavailable("fake data: looked in /nowhere for fake.npz; there is none")
    start = 0
    if ctx.restored is not None:
        start = int(ctx.restored["step"]) + 1
        ctx.generator.set_state(ctx.restored["generator"])
    for step in range(start, config["reports"]):
        time.sleep(config["sleep_s"])
        u = float(torch.rand((), generator=ctx.generator))
        ctx.report(
            {"step": step, "train_loss": 1.0 / (step + 1) + u / 100},
            state={"step": step, "generator": ctx.generator.get_state()},
        )
        if behaviour in ("raise_once", "die_once") and step == config["raise_step"]:
            marker = os.path.join(config["marker_dir"], f"{config['seed']}-{config['lr']}")
            if not os.path.exists(marker):
                open(marker, "w").close()
                if behaviour == "die_once":
                    os._exit(3)
                raise RuntimeError("fake failure on the first attempt")
    if behaviour == "raise":
        raise RuntimeError("fake failure: this trial always raises")
    if behaviour == "diverge":
        raise Diverged("fake chain went to inf", metrics={"std": float("inf"), "step": 2})
    u = float(torch.rand((), generator=ctx.generator))
    metrics = {
        "test_error": config["lr"] + u / 100,
        "test_nll": 0.5 + u,
        "start_step": start,
        "worker_pid": os.getpid(),  # which process ran it: actors reused or not
    }
    if config["kind"] == "sampler":
        samples = torch.randn((4, 3, 2), generator=ctx.generator).numpy().astype(np.float32)
        return WorkloadResult(metrics={**metrics, "std": float(samples.std())}, samples=samples)
    logits = torch.randn((10, 3), generator=ctx.generator)
    probs = torch.softmax(logits, dim=1).numpy().astype(np.float32)
    labels = np.arange(10, dtype=np.int64) % 3
    return WorkloadResult(metrics=metrics, labels=labels, probs=probs)
