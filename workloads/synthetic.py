"""Shared machinery of the synthetic targets (``gaussian``, ``mixture``): many independent
chains run as one batched ``[chains, dim]`` tensor, with N = 1 (ALGORITHMS.md §5: the update is
the textbook θ ← θ - α∇U + sqrt(2α)ξ at T = 1).

:func:`run_chains` runs the sampler of a config on a potential given by its gradient, collects
samples after burn-in every ``thin`` steps (or at the cyclical schedule's sample points),
keeps running first and second moments of every collected sample, keeps the latest
``num_samples`` in a ring buffer, reports and checkpoints every ``report_every`` steps, resumes
from ``ctx.restored`` and raises :class:`~workloads.base.Diverged` on non-finite numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lowprec import PrecisionSpec, schedules
from workloads.base import Diverged, TrialContext
from workloads.config import checks
from workloads.config.trialspec import TrialSpec, build_sampler

#: without ``num_samples``, keep at most this many collected values (samples × chains × dim)
DEFAULT_KEPT_VALUES = 2_000_000
#: steps between finiteness checks
CHECK_EVERY = 100

#: ∇U(θ, generator) -> a tensor of θ's shape (the stochastic gradient)
GradFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


#: checks before anything runs (torch-free: workloads.config.check_keys runs them first)
validate = checks.check_synthetic


def bits_metrics(precision: PrecisionSpec, shapes: list[tuple[int, ...]]) -> dict[str, float]:
    """``bits`` (W's word bits) and ``bits_per_param``: the storage bits per stored weight,
    block exponents amortised over the tensors' shapes, 32 for ``full`` (its float32 master)."""
    if precision.accumulator == "full" or precision.weight.is_identity:
        per_param = 32.0
    else:
        sizes = [int(np.prod(s)) for s in shapes]
        per_param = sum(
            precision.weight.bits_for(s) * n for s, n in zip(shapes, sizes, strict=True)
        )
        per_param /= max(sum(sizes), 1)
    return {"bits": precision.weight.word_bits, "bits_per_param": float(per_param)}


@dataclass
class ChainRun:
    """What :func:`run_chains` hands back.

    samples: the latest kept samples, oldest first, ``[kept, chains, dim]`` float32.
    collected: how many samples were collected in all (per chain).
    mean, cov: moments of all collected samples pooled over chains (float64, [dim], [dim, dim]).
    final: the chains' last state θ̂ ``[chains, dim]``.
    """

    samples: np.ndarray
    collected: int
    mean: np.ndarray
    cov: np.ndarray
    final: torch.Tensor
    precision: PrecisionSpec


def _sample_capacity(trial: TrialSpec, sched: schedules.Schedule, values_per: int) -> int:
    run = trial.run
    if sched.kind == "cyclical":
        upper = sched.cycles * sched.samples_per_cycle
    else:
        upper = max(sched.total_steps - run.burn_in, 0) // run.thin
    cap = run.num_samples or max(1, DEFAULT_KEPT_VALUES // values_per)
    return max(1, min(int(cap), upper))


def run_chains(
    config: TrialSpec | dict[str, Any],
    ctx: TrialContext,
    grad_fn: GradFn,
    dim: int,
    live_metrics: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = None,
) -> ChainRun:
    """Run ``trial['chains']`` chains of ``trial.run.steps`` steps on the potential whose
    stochastic gradient is ``grad_fn``; see the module docstring."""
    trial = TrialSpec.of(config)
    chains, steps = int(trial["chains"]), int(trial.run.steps or 0)
    burn_in, thin = trial.run.burn_in, trial.run.thin
    device, gen = ctx.device, ctx.generator
    theta = torch.full((chains, dim), float(trial["init"]), dtype=torch.float32, device=device)
    sampler = build_sampler(trial, [theta], num_data=1, generator=gen)
    ctx.step_kernels = sampler.executor_name
    sched = trial.schedule.build(steps)
    cap = _sample_capacity(trial, sched, chains * dim)
    buffer = torch.zeros((cap, chains, dim), dtype=torch.float32, device=device)
    filled, pos, collected = 0, 0, 0
    total = torch.zeros(dim, dtype=torch.float64, device=device)
    total_sq = torch.zeros((dim, dim), dtype=torch.float64, device=device)
    start = 0
    if ctx.restored is not None:
        state = ctx.restored
        sampler.load_state_dict(state["sampler"])
        gen.set_state(state["generator"])
        buffer.copy_(state["buffer"].to(device))
        filled, pos, collected = state["filled"], state["pos"], state["collected"]
        total.copy_(state["total"].to(device))
        total_sq.copy_(state["total_sq"].to(device))
        start = int(state["step"])

    def moments() -> tuple[np.ndarray, np.ndarray]:
        n = max(collected * chains, 1)
        m = (total / n).cpu().numpy()
        return m, (total_sq / n).cpu().numpy() - np.outer(m, m)

    report_every = int(trial["report_every"])
    for k in range(start, steps):
        sampler.prepare()
        theta.grad = grad_fn(theta.detach(), gen)
        sampler.step(sched.lr(k), noise=sched.is_sampling(k))
        if sched.is_sample_step(k, burn_in, thin):
            x = theta.detach()
            buffer[pos].copy_(x)
            pos = (pos + 1) % cap
            filled = min(filled + 1, cap)
            collected += 1
            xd = x.double()
            total += xd.sum(0)
            total_sq += xd.T @ xd
        done = k + 1
        checkpoint = done % CHECK_EVERY == 0 or done == steps
        if checkpoint and not bool(torch.isfinite(theta).all()):
            raise Diverged(f"chains went non-finite by step {done}", {"step": done})
        if done % report_every == 0 and done < steps:
            m, c = moments()
            metrics: dict[str, Any] = {"step": done}
            if collected:
                metrics["mean"] = float(m.mean())
                metrics["std"] = float(np.sqrt(np.mean(np.diag(c))))
                if live_metrics is not None:
                    metrics.update(live_metrics(m, c))
            ctx.report(
                metrics,
                {
                    "step": done,
                    "sampler": sampler.state_dict(),
                    "generator": gen.get_state(),
                    "buffer": buffer.cpu().clone(),
                    "filled": filled,
                    "pos": pos,
                    "collected": collected,
                    "total": total.cpu().clone(),
                    "total_sq": total_sq.cpu().clone(),
                },
            )
    if collected == 0:
        raise ValueError(
            f"no samples collected: burn_in={burn_in} and thin={thin} leave none of the "
            f"{steps} steps; lower burn_in or raise steps"
        )
    order = [(pos - filled + i) % cap for i in range(filled)]
    samples = buffer[order].cpu().numpy()
    m, c = moments()
    return ChainRun(samples, collected, m, c, theta.detach().clone(), sampler.precision)
