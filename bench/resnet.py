"""Cost of low precision in one CIFAR ResNet-18 training step, measured side by side in one run.

    python -m bench.resnet [--json] [--device cpu|cuda] [--batch N] [--repeats R]

Times one SGLD training step of the kuangliu ResNet-18 (11.2M parameters) on a random 32×32
batch (default 128 on CUDA, 8 on CPU), the way ``workloads/train.py`` runs it:
``sampler.prepare()``, forward, mean cross-entropy, backward, ``sampler.step(lr)``. Two set-ups
alternate round by round:

- ``fp32``: float32 SGLD, no quantizer in the network;
- ``block8_wgae_vc``: 8-bit block floating point (``block<8>``, one exponent per output channel
  / per sample) on weights, gradients, activations and errors, with the VC SGLD update
  (accumulator ``vc``) — the papers' block-floating-point configuration.

The median of each is reported in milliseconds per step; ``lp_over_fp32`` is the ratio of the
medians (the price of simulating low precision in float32 arithmetic). With --json the last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from bench.timing import device_name, side_by_side
from workloads.config.resolve import resolve_config
from workloads.config.trialspec import TrialSpec, build_sampler
from workloads.resnet import ResNet18
from workloads.train import init_parameters, precision_and_quantizer

SETUPS: dict[str, dict[str, Any]] = {
    "fp32": {},
    "block8_wgae_vc": {"format": "block", "bits": 8, "tensors": "WGAE", "accumulator": "vc"},
}


def _step_fn(
    extra: dict[str, Any], batch: int, device: torch.device, seed: int
) -> Callable[[], None]:
    """One training step of a freshly initialised ResNet-18 under the set-up ``extra``."""
    config = resolve_config(
        {"workload": "cifar_resnet18", "lr": 0.05, "temperature": 1e-3, "prior_std": 1.0, **extra}
    )
    g = torch.Generator(device=device).manual_seed(seed)
    _, quantizer = precision_and_quantizer(config, g)
    model = ResNet18(10, quantizer).to(device)
    init_parameters(model, g)
    params = list(model.parameters())
    sampler = build_sampler(TrialSpec.from_config(config), params, num_data=50_000, generator=g)
    x = torch.randn(batch, 3, 32, 32, generator=g, device=device)
    y = torch.randint(0, 10, (batch,), generator=g, device=device)

    def step() -> None:
        sampler.prepare()
        loss = F.cross_entropy(model(x), y)
        for p in params:
            p.grad = None
        loss.backward()
        sampler.step(config["lr"])

    step.executor_name = sampler.executor_name  # type: ignore[attr-defined]
    return step


def measure(batch: int, device: torch.device, repeats: int, seed: int = 0) -> dict[str, Any]:
    """Median seconds per step of each set-up over ``repeats`` alternating rounds."""
    steps = {name: _step_fn(extra, batch, device, seed) for name, extra in SETUPS.items()}

    median = side_by_side(steps, device, repeats)
    return {
        "batch": batch,
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "ms_per_step": {name: 1e3 * t for name, t in median.items()},
        "lp_over_fp32": median["block8_wgae_vc"] / median["fp32"],
        # the sampler step's executor per set-up (kernels: auto): fused or eager
        "executors": {name: getattr(fn, "executor_name", "?") for name, fn in steps.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.resnet", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on the last line"
    )
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default=None, help="default: cuda when present"
    )
    parser.add_argument("--batch", type=int, default=None, help="default: 128 on cuda, 8 on cpu")
    parser.add_argument("--repeats", type=int, default=None, help="default: 20 on cuda, 3 on cpu")
    args = parser.parse_args(argv)
    name = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    batch = args.batch or (128 if device.type == "cuda" else 8)
    repeats = args.repeats or (20 if device.type == "cuda" else 3)
    if batch < 1 or repeats < 1:
        parser.error("--batch and --repeats must be >= 1")
    result = measure(batch, device, repeats)
    ms = result["ms_per_step"]
    print(
        f"ResNet-18 training step, batch {batch} on {result['device_name']} ({device}), "
        f"median of {repeats}:"
    )
    for setup, value in ms.items():
        print(f"  {setup:16s} {value:10.1f} ms")
    print(f"  lp_over_fp32     {result['lp_over_fp32']:10.2f}x")
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
