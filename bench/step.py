"""Cost of one SGLD step in low precision against float32, measured side by side in one run.

One step = ``sampler.prepare()`` + forward + backward + ``sampler.step(lr)`` of a 784-100-10
ReLU MLP on a batch of 128 (random inputs: the cost does not depend on the data). Set-ups:

- ``fp32``: float32 weights and gradients, ``accumulator: full`` (plain SGLD);
- ``lp``: ``block<8>`` weights and gradients (one exponent per output row), variance-corrected
  low-precision accumulators (``accumulator: vc``): VC SGLDLP-L;
- ``mxfp4``: the same in OCP MXFP4 (``mx<fp4_e2m1>``: 32 FP4 values share a power-of-two
  scale), reported as ``mxfp4_over_fp32``;
- ``lp_ae``: ``lp`` with activations and errors in ``block<8>`` as well (Quantizer modules after
  each linear layer and the ReLU, as workloads/mlp.py), reported as ``lp_ae_over_fp32``;

each with the ``eager`` executor (the per-tensor reference) and the
``fused`` one (one kernel per step over flat buffers). They are timed in alternating rounds
(median over rounds), so that drift in the machine's load hits all alike. Reported:

- ``lp_over_fp32``: lp / fp32 with the default executor (``auto``: fused here), the price of
  simulating low precision in a trial;
- ``lp_fused_over_fp32_eager``: the fused lp step against the eager float32 step;
- ``lp_eager_over_fp32_eager``: the same before (both eager);
- the update alone (``sampler.step``, gradients already in place), per set-up.

    python -m bench.step [--json] [--rounds 15] [--steps 20] [--threads 1] [--device cpu]

``--threads`` sets torch's and numba's thread counts.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from bench.timing import device_name, side_by_side
from lowprec import PrecisionSpec, Quantizer, parse_format
from lowprec.samplers import SGLD

SETUPS = {
    "fp32": PrecisionSpec(),
    "lp": PrecisionSpec(
        weight=parse_format("block<8>"), grad=parse_format("block<8>"), accumulator="vc"
    ),
    "mxfp4": PrecisionSpec(
        weight=parse_format("mx<fp4_e2m1>"), grad=parse_format("mx<fp4_e2m1>"), accumulator="vc"
    ),
    # activations and errors quantized too, by Quantizer(A, E) modules after the linear layers
    # and the ReLU as workloads/mlp.py places them (stochastic, the sampler's generator)
    "lp_ae": PrecisionSpec(
        weight=parse_format("block<8>"),
        grad=parse_format("block<8>"),
        act=parse_format("block<8>"),
        error=parse_format("block<8>"),
        accumulator="vc",
    ),
}
EXECUTORS = ("eager", "fused")


def _setup(
    precision: PrecisionSpec, executor: str, device: torch.device, seed: int = 0
) -> tuple[Callable[[], None], Callable[[], None], str]:
    """(one training step, the update alone, the executor that ran)."""
    # "fused" is asked as auto: where no fused step exists the row runs eager (it says why)
    executor = "auto" if executor == "fused" else executor
    torch.manual_seed(seed)  # model initialisation only; sampling uses the generator below
    gen = torch.Generator(device=device).manual_seed(seed)
    quantized = not (precision.act.is_identity and precision.error.is_identity)

    def q() -> nn.Module:
        if not quantized:
            return nn.Identity()
        kernels = "eager" if executor == "eager" else "auto"
        return Quantizer(precision.act, precision.error, precision.rounding, gen, kernels)

    model = nn.Sequential(nn.Linear(784, 100), q(), nn.ReLU(), q(), nn.Linear(100, 10), q())
    model = model.to(device)
    sampler = SGLD(
        list(model.parameters()),
        precision,
        num_data=60_000,
        temperature=1.0,
        generator=gen,
        executor=executor,
    )
    x = torch.randn(128, 784, generator=gen, device=device)
    y = torch.randint(10, (128,), generator=gen, device=device)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        sampler.prepare()
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        sampler.step(0.01)

    def update() -> None:
        sampler.step(0.01)

    step()  # gradients in place for update(); compiles the fused kernel (cached on disk)
    return step, update, sampler.executor_name


def measure(rounds: int = 15, steps: int = 20, device: str = "cpu") -> dict[str, Any]:
    """Median seconds per call of every set-up x executor over ``rounds`` alternating rounds."""
    dev = torch.device(device)
    runs: dict[str, Callable[[], None]] = {}
    ran: dict[str, str] = {}
    for name, precision in SETUPS.items():
        for executor in EXECUTORS:
            step, update, ran[f"{name} {executor}"] = _setup(precision, executor, dev)
            runs[f"{name} {executor}"] = step
            runs[f"{name} {executor} update"] = update
    median = side_by_side(runs, dev, rounds, calls=steps, warmup=3)
    ms = {k: 1e3 * v for k, v in median.items()}
    auto = "fused" if ran["lp fused"] == "fused" else "eager"
    return {
        "model": "784-100-10 MLP, batch 128",
        "lp": "block<8> W and G, accumulator vc (VC SGLDLP-L)",
        "device": str(dev),
        "device_name": device_name(dev),
        "threads": torch.get_num_threads(),
        "rounds": rounds,
        "steps_per_round": steps,
        "executors": ran,
        "ms": ms,
        "lp_over_fp32": median[f"lp {auto}"] / median[f"fp32 {auto}"],
        "mxfp4_over_fp32": median[f"mxfp4 {auto}"] / median[f"fp32 {auto}"],
        "lp_ae_over_fp32": median[f"lp_ae {auto}"] / median[f"fp32 {auto}"],
        "lp_fused_over_fp32_eager": median["lp fused"] / median["fp32 eager"],
        "lp_eager_over_fp32_eager": median["lp eager"] / median["fp32 eager"],
        "update_fused_over_eager": {
            name: median[f"{name} fused update"] / median[f"{name} eager update"] for name in SETUPS
        },
    }


def set_threads(n: int) -> None:
    """torch's and numba's thread counts (numba capped at its pool size)."""
    torch.set_num_threads(n)
    try:
        import numba

        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.step", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    parser.add_argument("--threads", type=int, default=1, help="torch and numba threads")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < 1 or args.threads < 1:
        parser.error("--rounds, --steps and --threads must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    set_threads(args.threads)
    out = measure(args.rounds, args.steps, args.device)
    print(
        f"one SGLD step, {out['model']}, {out['device_name']} ({out['device']}), "
        f"{out['threads']} thread(s), median of {out['rounds']} rounds"
    )
    for name, value in out["ms"].items():
        print(f"  {name:22s} {value:9.3f} ms")
    print(f"  lp_over_fp32             {out['lp_over_fp32']:7.2f}  (executor auto)")
    print(f"  mxfp4_over_fp32          {out['mxfp4_over_fp32']:7.2f}  (executor auto)")
    print(f"  lp_ae_over_fp32          {out['lp_ae_over_fp32']:7.2f}  (block<8> W G A E + vc)")
    print(f"  lp_fused_over_fp32_eager {out['lp_fused_over_fp32_eager']:7.2f}")
    print(f"  lp_eager_over_fp32_eager {out['lp_eager_over_fp32_eager']:7.2f}  (before)")
    if args.json:
        print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
