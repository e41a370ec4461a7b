"""The GPU benchmarks and the CUDA tests in one run (`make gpu-check`), on a CUDA machine.

    python -m bench.gpu [--out DIR] [--json]

Runs, in order, each in its own process (one failing does not stop the others):

1. the CUDA tests: ``pytest -m cuda tests/lowprec tests/workloads`` (the Triton kernels against
   the eager path on the device, the samplers' laws on the fused CUDA step);
2. ``python -m bench.quantize --device cuda --json``: ``sr_vs_copy`` (bar >= 0.5, goal 0.7);
3. ``python -m bench.resnet --device cuda --json``: ``lp_over_fp32`` of a ResNet-18 step with
   block<8> W G A E and vc (bar <= 1.5, goal 1.2);
4. ``python -m bench.step --device cuda --json``: the MLP step (no bar on the GPU).

Each step's output goes to DIR (default ``gpu-check/``), and a table of the figures against
the bars is printed, with the device's name. Without a CUDA device: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

#: (name, command after ``python -m``, the figure read from its JSON, bar, goal, "<=" or ">=")
BENCHES = (
    ("quantize", ["bench.quantize", "--device", "cuda", "--json"], "sr_vs_copy", 0.5, 0.7, ">="),
    ("resnet", ["bench.resnet", "--device", "cuda", "--json"], "lp_over_fp32", 1.5, 1.2, "<="),
    ("step", ["bench.step", "--device", "cuda", "--json"], "lp_over_fp32", None, None, "<="),
)
NO_CUDA = "torch.cuda.is_available() is False"
TESTS = ["pytest", "-m", "cuda", "tests/lowprec", "tests/workloads", "-q", "-p", "no:cacheprovider"]


def _run(args: list[str], log: Path, timeout: int) -> tuple[int, str]:
    """(exit status, output) of ``python -m args``, the output also written to ``log``."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout
        )
        status, text = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        status, text = 124, f"timed out after {timeout} s\n{exc.stdout or ''}"
    log.write_text(text)
    return status, text


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def verdict(value: float | None, bar: float | None, sense: str) -> str:
    """ "met", "not met" or "-" (no bar, or no figure)."""
    if value is None or bar is None:
        return "-"
    met = value >= bar if sense == ">=" else value <= bar
    return "met" if met else "not met"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="gpu-check", help="directory for each step's output")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per step")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(f"bench.gpu: no CUDA device here ({NO_CUDA})", file=sys.stderr)
        raise SystemExit(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name(0)
    print(f"device: {device}; outputs in {out}/", flush=True)
    status, text = _run(TESTS, out / "cuda_tests.txt", args.timeout)
    summary = (text.strip().splitlines() or ["(no output)"])[-1]
    print(f"CUDA tests: exit {status}: {summary}", flush=True)
    result: dict[str, Any] = {"device": device, "cuda_tests": {"exit": status, "summary": summary}}
    print(f"{'benchmark':<10} {'figure':<14} {'value':>8} {'bar':>8} {'goal':>6}  verdict")
    for name, command, key, bar, goal, sense in BENCHES:
        status, text = _run(command, out / f"{name}.txt", args.timeout)
        figures = _last_json(text) or {}
        value = figures.get(key)
        value = float(value) if isinstance(value, int | float) else None
        row = {"exit": status, key: value, "bar": bar, "goal": goal}
        row["verdict"] = verdict(value, bar, sense)
        result[name] = row
        shown = f"{value:.3f}" if value is not None else f"exit {status}"
        bar_s = f"{sense} {bar}" if bar is not None else "-"
        print(f"{name:<10} {key:<14} {shown:>8} {bar_s:>8} {goal or '-':>6}  {row['verdict']}")
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
