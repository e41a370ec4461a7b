"""Side-by-side timing shared by the benchmarks: every variant is timed in the same rounds,
one after the other, so drift (other processes, clocks, thermal state) hits all of them alike,
and the benchmarks report ratios of medians rather than lone absolute times."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Mapping

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(fn: Callable[[], object], device: torch.device, calls: int = 1) -> float:
    """Wall seconds per call of ``fn`` over ``calls`` calls, the device synchronised around."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / calls


def side_by_side(
    variants: Mapping[str, Callable[[], object]],
    device: torch.device,
    rounds: int,
    calls: int = 1,
    warmup: int = 2,
) -> dict[str, float]:
    """Median seconds per call of each variant over ``rounds`` rounds; each round times every
    variant once (``calls`` calls each) after ``warmup`` untimed calls of each."""
    for fn in variants.values():  # allocator, cuDNN autotuning, lazy kernels
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times[name].append(seconds_per_call(fn, device, calls))
    return {name: statistics.median(t) for name, t in times.items()}


def device_name(device: torch.device) -> str:
    """The GPU's name, or the processor's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()
