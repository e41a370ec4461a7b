"""How busy a sweep keeps the machine.

    python -m bench.sweep                       # 16 Gaussian trials of ~5 s on this machine's CPUs
    python -m bench.sweep --trials 8 --trial-seconds 2 --json

It calibrates the number of SGLD steps so that one Gaussian trial computes for about
``--trial-seconds`` (timed in this process), writes a grid spec of ``--trials`` such trials (one
CPU each, so ``slots`` = the CPUs Ray gets), runs ``python -m orchestrator.sweep SPEC`` as a
subprocess and reports

    efficiency = sum over trials of wall_s / (slots x sweep wall time)

where ``wall_s`` is each trial's own time in its workload (the ``wall_s`` column of
``trials.parquet``), and the sweep wall time is taken two ways: ``included`` = the whole
command (Python and Ray start-up, MLflow's database, consolidation and report), ``excluded`` =
from the driver's ``running N trials`` line (Ray up, the Tuner about to start) to its closing
summary line. 1.0 means every slot computed all the time; what is missing is per-trial overhead
(scheduling, actor start, MLflow and Parquet writes, checkpoints) and the tail where fewer trials
than slots are left. JSON on the last line with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SPEC = """\
name: busy
workload: gaussian
objectives: {{w2: min}}
search: {{algorithm: grid, num_samples: 1}}
resources: {{cpu: 1, gpu: 0}}
max_failures: 0
fixed: {{steps: {steps}, lr: 0.01, device: cpu}}
space:
  seed: {{grid: [{seeds}]}}
"""


def calibrate_steps(seconds: float) -> int:
    """Steps for one Gaussian trial to compute about ``seconds`` (timed here, one thread)."""
    import torch

    from orchestrator.trial import run_trial

    torch.set_num_threads(1)
    # once untimed: kernels compiled or loaded from their cache, data and imports warm
    run_trial({"workload": "gaussian", "steps": 200, "lr": 0.01, "device": "cpu"})
    steps = 2000
    while True:
        result = run_trial({"workload": "gaussian", "steps": steps, "lr": 0.01, "device": "cpu"})
        if result.wall_s > 0.5 or steps >= 10**8:
            return max(1, int(steps * seconds / result.wall_s))
        steps *= 4


def run(trials: int, steps: int, workdir: Path, timeout: float) -> dict[str, Any]:
    """Run the sweep; the wall times (included and excluded) and the trials' own times."""
    import pyarrow.parquet as pq

    spec = workdir / "busy.yaml"
    spec.write_text(SPEC.format(steps=steps, seeds=", ".join(map(str, range(trials)))))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    marks: dict[str, float] = {}
    lines: list[str] = []
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.sweep", str(spec), "--results", "results"],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.perf_counter()
        lines.append(line)
        if "running" in line and "trials" in line and "fit_start" not in marks:
            marks["fit_start"] = now
        if line.startswith("sweep busy "):
            marks["fit_end"] = now
    proc.wait()
    timer.cancel()
    included = time.perf_counter() - start
    text = "".join(lines)
    if proc.returncode != 0 or f"{trials}/{trials} trials recorded (ok {trials}" not in text:
        raise RuntimeError(f"the sweep failed (exit {proc.returncode}):\n{text[-4000:]}")
    table = pq.read_table(workdir / "results" / "busy" / "trials.parquet")
    compute = [float(v) for v in table.column("wall_s").to_pylist()]
    return {
        "included_s": included,
        "excluded_s": marks["fit_end"] - marks["fit_start"],
        "compute_s": compute,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sweep", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--trials", type=int, default=16, help="trials in the sweep (16)")
    parser.add_argument("--trial-seconds", type=float, default=5.0, help="compute per trial (5)")
    parser.add_argument("--steps", type=int, help="SGLD steps per trial (default: calibrated)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before giving up")
    parser.add_argument("--json", action="store_true", help="JSON on the last line")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.trial_seconds <= 0:
        print("error: --trials and --trial-seconds must be positive", file=sys.stderr)
        return 2
    steps = args.steps or calibrate_steps(args.trial_seconds)
    slots = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        timing = run(args.trials, steps, Path(tmp), args.timeout)
    compute = sum(timing["compute_s"])
    result = {
        "trials": args.trials,
        "steps": steps,
        "slots": slots,
        "compute_s": compute,
        "mean_trial_s": compute / args.trials,
        "wall_included_s": timing["included_s"],
        "wall_excluded_s": timing["excluded_s"],
        "efficiency_included": compute / (slots * timing["included_s"]),
        "efficiency_excluded": compute / (slots * timing["excluded_s"]),
        # the best any schedule could do: whole trials on `slots` slots (the tail included)
        "efficiency_bound": compute / (slots * _makespan(timing["compute_s"], slots)),
    }
    print(
        f"bench.sweep: {args.trials} Gaussian trials x {steps} steps "
        f"(mean {result['mean_trial_s']:.2f} s of compute) on {slots} slots"
    )
    print(f"  sweep wall, start-up included  {result['wall_included_s']:8.1f} s")
    print(f"  sweep wall, start-up excluded  {result['wall_excluded_s']:8.1f} s")
    print(f"  efficiency, start-up excluded  {result['efficiency_excluded']:8.3f}  (target >= 0.8)")
    print(f"  efficiency, start-up included  {result['efficiency_included']:8.3f}")
    print(f"  bound (whole trials on slots)  {result['efficiency_bound']:8.3f}")
    if args.json:
        print(json.dumps(result))
    return 0


def _makespan(durations: list[float], slots: int) -> float:
    """Finish time of ``durations`` run longest first, each on the earliest free slot."""
    free = [0.0] * slots
    for duration in sorted(durations, reverse=True):
        i = free.index(min(free))
        free[i] += duration
    return max(free)


if __name__ == "__main__":
    sys.exit(main())
