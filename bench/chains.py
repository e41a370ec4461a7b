"""Time per chain-step of one Gaussian trial holding C chains, against many one-chain trials.

A trial of the ``gaussian`` workload runs C independent chains as one batched [C, 1] tensor
(one fused sampler step per step for all of them). Two measurements:

- ``steps``: the trial's step loop as ``workloads.synthetic.run_chains`` runs it (the sampler
  built by ``workloads.config.trialspec.build_sampler``; per step ``prepare``, ∇Ũ(θ) = θ + 0.1ξ,
  ``step``), for C = 10, 100, 1,000, 10,000, 100,000: per chain-step = time / (C · steps);
- ``trials``: whole trials (``workloads.gaussian.run``: set-up, steps, sample collection and
  the end-of-trial metrics, whose per-chain ESS grows with C) with 1,000 chains, and R
  one-chain trials run one after the other: per chain-step = wall time / (chains · steps).

``per_chain_step_1000_over_10`` (from ``steps``) is the issue-13 figure (bar <= 0.02: a step of
1,000 chains costs at most twice a step of 10); ``one_chain_trials_over_1000`` (from
``trials``) says how much holding chains in one trial saves over separate trials. Every figure
is timed in alternating rounds (median over rounds); a warm-up trial first (numba compile or
cache load) is not timed.

    python -m bench.chains [--json] [--steps 500] [--rounds 3] [--trials 10] [--threads 1]
                           [--kernels auto|fused|eager] [--sizes 10 100 1000 10000 100000]

Set-up: SGLD, ``fixed<8,3>`` weights and gradients, ``accumulator: vc``, lr 2e-3, thin 10,
N(0, 1) with ∇Ũ(θ) = θ + 0.1ξ (ALGORITHMS.md §10).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from bench.step import set_threads
from bench.timing import device_name
from lowprec.precision import KERNEL_MODES
from workloads import gaussian
from workloads.base import TrialContext
from workloads.config.resolve import resolve_config
from workloads.config.trialspec import TrialSpec, build_sampler

SIZES = (10, 100, 1_000, 10_000, 100_000)
BASE = {
    "workload": "gaussian",
    "sampler": "sgld",
    "format": "fixed",
    "bits": 8,
    "frac_bits": 3,
    "accumulator": "vc",
    "lr": 2e-3,
    "thin": 10,
}


def _config(chains: int, steps: int, kernels: str) -> dict[str, Any]:
    return resolve_config(
        {**BASE, "chains": chains, "steps": steps, "burn_in": steps // 2, "kernels": kernels}
    )


def trial_seconds(chains: int, steps: int, kernels: str, seed: int = 0) -> float:
    """Wall seconds of one whole gaussian trial with ``chains`` chains of ``steps`` steps."""
    config = _config(chains, steps, kernels)
    start = time.perf_counter()
    gaussian.run(config, TrialContext(generator=torch.Generator().manual_seed(seed)))
    return time.perf_counter() - start


def step_seconds(chains: int, steps: int, kernels: str, seed: int = 0) -> tuple[float, str]:
    """(seconds of ``steps`` steps of the trial's loop over ``chains`` chains, executor)."""
    config = _config(chains, steps, kernels)
    gen = torch.Generator().manual_seed(seed)
    theta = torch.zeros((chains, 1))
    sampler = build_sampler(TrialSpec.from_config(config), [theta], num_data=1, generator=gen)
    theta = sampler.params[0]

    def one(k: int) -> None:
        sampler.prepare()
        theta.grad = theta.detach() + 0.1 * torch.randn(theta.shape, generator=gen)
        sampler.step(2e-3, noise=True)

    one(0)
    start = time.perf_counter()
    for k in range(steps):
        one(k)
    return time.perf_counter() - start, sampler.executor_name


def measure(
    sizes: tuple[int, ...] = SIZES,
    steps: int = 500,
    rounds: int = 3,
    trials: int = 10,
    kernels: str = "auto",
) -> dict[str, Any]:
    """Median per chain-step seconds of the step loop per size, and of whole trials."""
    trial_seconds(10, 20, kernels)  # warm-up: kernel compile / cache load, imports
    steps_t: dict[str, list[float]] = {str(c): [] for c in sizes}
    trials_t: dict[str, list[float]] = {"1000": [], "one-chain trials": []}
    executor = ""
    for _ in range(rounds):
        for c in sizes:
            seconds, executor = step_seconds(c, steps, kernels)
            steps_t[str(c)].append(seconds / (c * steps))
        trials_t["1000"].append(trial_seconds(1000, steps, kernels) / (1000 * steps))
        total = sum(trial_seconds(1, steps, kernels, seed=r) for r in range(trials))
        trials_t["one-chain trials"].append(total / (trials * steps))
    per = {name: statistics.median(t) for name, t in steps_t.items()}
    per_trial = {name: statistics.median(t) for name, t in trials_t.items()}
    out: dict[str, Any] = {
        "workload": "gaussian, SGLD fixed<8,3> vc, lr 2e-3",
        "kernels": kernels,
        "executor": executor,
        "device_name": device_name(torch.device("cpu")),
        "threads": torch.get_num_threads(),
        "steps": steps,
        "rounds": rounds,
        "one_chain_trials": trials,
        "steps_ns_per_chain_step": {name: 1e9 * v for name, v in per.items()},
        "trials_ns_per_chain_step": {name: 1e9 * v for name, v in per_trial.items()},
        "one_chain_trials_over_1000": per_trial["one-chain trials"] / per_trial["1000"],
    }
    if "10" in per and "1000" in per:
        out["per_chain_step_1000_over_10"] = per["1000"] / per["10"]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chains", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    parser.add_argument("--steps", type=int, default=500, help="steps per trial")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=10, help="one-chain trials per round")
    parser.add_argument("--threads", type=int, default=1, help="torch and numba threads")
    parser.add_argument("--kernels", default="auto", choices=KERNEL_MODES)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args(argv)
    if min(args.steps, args.rounds, args.trials, args.threads, *args.sizes) < 1:
        parser.error("--steps, --rounds, --trials, --threads and --sizes must be >= 1")
    if args.steps < 20:
        parser.error("--steps must be >= 20 (burn-in is half the run, thin is 10)")
    set_threads(args.threads)
    out = measure(tuple(args.sizes), args.steps, args.rounds, args.trials, args.kernels)
    print(
        f"gaussian trials, {out['workload']}, kernels {args.kernels}, {out['threads']} "
        f"thread(s), {args.steps} steps, median of {args.rounds} rounds"
    )
    print(f"  step loop (executor {out['executor']}):")
    for name, ns in out["steps_ns_per_chain_step"].items():
        print(f"  {name:>18} chains  {ns:12.1f} ns per chain-step")
    print("  whole trials (set-up, steps, samples, end-of-trial metrics):")
    for name, ns in out["trials_ns_per_chain_step"].items():
        label = name if name.startswith("one") else f"{name} chains"
        print(f"  {label:>25}  {ns:12.1f} ns per chain-step")
    if "per_chain_step_1000_over_10" in out:
        print(f"  per_chain_step_1000_over_10  {out['per_chain_step_1000_over_10']:.4f}")
    print(f"  one_chain_trials_over_1000   {out['one_chain_trials_over_1000']:.0f}")
    if args.json:
        print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
