"""Cost of one SGLD step in low precision against float32, measured side by side in one run.

One step = ``sampler.prepare()`` + forward + backward + ``sampler.step(lr)`` of a 784-100-10
ReLU MLP on a batch of 128 (random inputs: the cost does not depend on the data):

- ``fp32``: float32 weights and gradients, ``accumulator: full`` (plain SGLD);
- ``lp``: ``block<8>`` weights and gradients (one exponent per output row), variance-corrected
  low-precision accumulators (``accumulator: vc``): VC SGLDLP-L.

The two are timed in alternating rounds (median over rounds) so that drift in the machine's
load hits both alike; the ratio ``lp_over_fp32`` is what to compare across machines.

    python -m bench.step [--json] [--rounds 7] [--steps 20] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from torch import nn

from bench.timing import side_by_side
from workloads.trialspec import TrialSpec, build_sampler

FP32 = {"sampler": "sgld", "lr": 0.01, "temperature": 1.0, "accumulator": "full", "prior_std": None}
LP = {**FP32, "format": "block", "bits": 8, "tensors": "WG", "accumulator": "vc"}


def _setup(config: dict[str, Any], device: torch.device, seed: int = 0):
    torch.manual_seed(seed)  # model initialisation only; sampling uses the generator below
    model = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10)).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    trial = TrialSpec.from_config({"workload": "mnist_mlp", **config})
    sampler = build_sampler(trial, list(model.parameters()), num_data=60_000, generator=gen)
    x = torch.randn(128, 784, generator=gen, device=device)
    y = torch.randint(10, (128,), generator=gen, device=device)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        sampler.prepare()
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        sampler.step(config["lr"])

    return step


def measure(rounds: int = 7, steps: int = 20, device: str = "cpu") -> dict[str, Any]:
    """Median seconds per step of each variant over ``rounds`` alternating rounds."""
    dev = torch.device(device)
    runs = {"fp32": _setup(FP32, dev), "lp": _setup(LP, dev)}
    median = side_by_side(runs, dev, rounds, calls=steps, warmup=3)
    fp32_s, lp_s = median["fp32"], median["lp"]
    return {
        "model": "784-100-10 MLP, batch 128",
        "lp": "block<8> W and G, accumulator vc (VC SGLDLP-L)",
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "rounds": rounds,
        "steps_per_round": steps,
        "fp32_ms": 1e3 * fp32_s,
        "lp_ms": 1e3 * lp_s,
        "lp_over_fp32": lp_s / fp32_s,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.step", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    torch.set_num_threads(args.threads)
    out = measure(args.rounds, args.steps, args.device)
    print(f"one SGLD step, {out['model']}, {out['device']}, {out['threads']} thread(s)")
    print(f"  fp32                 {out['fp32_ms']:8.3f} ms")
    print(f"  {out['lp']:<20} {out['lp_ms']:8.3f} ms")
    print(f"  lp_over_fp32         {out['lp_over_fp32']:8.2f}")
    if args.json:
        print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
