"""Throughput of the stochastic quantizers, measured side by side in one run.

    python -m bench.quantize [--json] [--n N] [--device cpu|cuda] [--repeats R]

On N float32 values (default 10^7) each repeat times, one after the other: a plain tensor copy
(the memory floor), the plain PyTorch expression clamp(floor(x/Δ + rand_like(x))·Δ) for
fixed<8,3> (the peer), and our stochastic quantizers for fixed<8,3>, block<8> (rows of 1000),
block<8,32> and float<4,3>, plus nearest fixed<8,3>. The median time of each is reported as
GB/s of one read and one write of N float32 values (8·N bytes; the same nominal traffic for all,
so the ratios are ratios of times). ``sr_vs_copy`` = our fixed-point SR throughput / copy's,
``sr_vs_torch_expr`` = ours / the peer's. With --json the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import torch

from bench.timing import device_name, side_by_side
from lowprec import quantize
from lowprec.formats import FixedPoint


def measure(n: int, device: torch.device, repeats: int, seed: int = 0) -> dict[str, object]:
    """Median seconds per method over ``repeats`` rounds, every method once per round."""
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(n, generator=g, device=device)
    rows = x.view(-1, 1000) if n % 1000 == 0 else x.view(1, -1)
    dst = torch.empty_like(x)
    fixed = FixedPoint(8, 3)
    delta, lo, hi = fixed.delta, fixed.min_value, fixed.max_value

    def peer() -> torch.Tensor:
        return torch.clamp(torch.floor(x / delta + torch.rand_like(x)) * delta, lo, hi)

    def peer_seeded() -> torch.Tensor:  # the same, with the uniforms from the generator
        u = torch.rand(x.shape, generator=g, device=device)
        return torch.clamp(torch.floor(x / delta + u) * delta, lo, hi)

    methods: dict[str, Callable[[], object]] = {
        "copy": lambda: dst.copy_(x),
        "torch_expr": peer,
        "torch_expr_generator": peer_seeded,
        "fixed<8,3> sr": lambda: quantize(x, fixed, "stochastic", g),
        "fixed<8,3> nearest": lambda: quantize(x, fixed, "nearest"),
        "block<8> sr (rows of 1000)": lambda: quantize(rows, "block<8>", "stochastic", g),
        "block<8,32> sr": lambda: quantize(x, "block<8,32>", "stochastic", g),
        "float<4,3> sr": lambda: quantize(x, "float<4,3>", "stochastic", g),
    }
    median = side_by_side(methods, device, repeats, warmup=1)
    gbps = {name: 8 * n / t / 1e9 for name, t in median.items()}
    return {
        "n": n,
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "torch": torch.__version__,
        "median_s": median,
        "gb_per_s": gbps,
        "sr_vs_copy": median["copy"] / median["fixed<8,3> sr"],
        "sr_vs_torch_expr": median["torch_expr"] / median["fixed<8,3> sr"],
        "sr_vs_torch_expr_generator": median["torch_expr_generator"] / median["fixed<8,3> sr"],
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.quantize", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--n", type=int, default=10**7, help="values per tensor (default 1e7)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; medians reported")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        parser.error("--n and --repeats must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    if args.device not in ("cpu", "cuda"):
        parser.error(f"--device {args.device!r}: expected cpu or cuda")
    result = measure(args.n, torch.device(args.device), args.repeats)
    print(
        f"{'method':<30} {'median ms':>10} {'GB/s':>8}   ({result['n']:.0e} float32 on "
        f"{result['device']} ({result['device_name']}), {result['threads']} threads, "
        f"median of {result['repeats']})"
    )
    for name, seconds in result["median_s"].items():
        print(f"{name:<30} {seconds * 1e3:>10.2f} {result['gb_per_s'][name]:>8.2f}")
    print(
        f"sr_vs_copy = {result['sr_vs_copy']:.3f}   "
        f"sr_vs_torch_expr = {result['sr_vs_torch_expr']:.3f}   "
        f"(peer drawing from the generator: {result['sr_vs_torch_expr_generator']:.3f})"
    )
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
