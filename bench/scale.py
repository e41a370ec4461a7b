"""Bookkeeping cost per trial, through the real sweep command.

    python -m bench.scale                 # N = 100 and 1,000
    python -m bench.scale --large         # also N = 10,000 (a long run: an hour or more)
    python -m bench.scale --sizes 50 200 --json

For each N it writes a grid spec of N tiny Gaussian trials (``steps`` SGLD steps of one 1-d
chain, ~0.01 s of compute each; ``kernels: eager``, since a fused kernel's compilation or launch
would be compute, not bookkeeping), runs ``python -m orchestrator.sweep SPEC`` as a subprocess in
a fresh directory (its own local Ray, MLflow in a SQLite file, the analysis report at the end),
and times it. Between consecutive sizes N1 < N2 it prints the marginal cost per trial

    marginal(N1 -> N2) = (wall(N2) - wall(N1)) / (N2 - N1)

whose ratio across steps says whether the bookkeeping stays flat (target: the last step within
1.2x of the first and under 0.05 s on 2 CPUs). Start-up (Ray, imports, MLflow's schema) cancels
in the difference. Separate runs see different loads from other processes, so it also prints
the marginal cost *inside* the largest run: seconds per trial between the a-th and b-th trial
to end (from the row files' times), for the same windows (or the two halves of the run).
It also times, for the largest N, the consolidation of the row files into
``trials.parquet`` and the analysis report on their own, and, with ``--profile``, runs the largest
sweep's driver under cProfile and prints where its time goes (the trials run in Ray workers,
so this is the driver's share: Tune's event loop, callbacks, searcher, experiment snapshots).
JSON on the last line with ``--json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SPEC = """\
name: scale{n}
workload: gaussian
objectives: {{w2: min}}
search: {{algorithm: grid, num_samples: 1}}
resources: {{cpu: 1, gpu: 0}}
max_failures: 0
fixed: {{steps: {steps}, report_every: {steps}, lr: 0.01, device: cpu, kernels: eager}}
space:
  seed: {{grid: [{seeds}]}}
"""


def write_spec(directory: Path, n: int, steps: int) -> Path:
    """A grid spec of ``n`` Gaussian trials (seeds 0..n-1) of ``steps`` steps."""
    path = directory / f"scale{n}.yaml"
    path.write_text(SPEC.format(n=n, steps=steps, seeds=", ".join(map(str, range(n)))))
    return path


def run_sweep(
    n: int, steps: int, workdir: Path, profile: Path | None = None, timeout: float = 36_000
) -> tuple[float, dict[str, float]]:
    """Wall seconds of ``python -m orchestrator.sweep`` over ``n`` trials in ``workdir``, and
    its CPU seconds by role (:class:`CpuByRole`)."""
    spec = write_spec(workdir, n, steps)
    prefix = [sys.executable]
    if profile is not None:
        prefix += ["-m", "cProfile", "-o", str(profile)]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    start = time.perf_counter()
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        subprocess.Popen(
            [*prefix, "-m", "orchestrator.sweep", str(spec), "--results", str(workdir / "results")],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=err,
            text=True,
        ) as proc,
    ):
        cpu = CpuByRole(proc.pid)
        while proc.poll() is None:
            cpu.sample()
            if time.perf_counter() - start > timeout:
                proc.kill()
            time.sleep(0.5)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0 or f"{n}/{n} trials recorded" not in stdout:
        raise RuntimeError(
            f"sweep of {n} trials failed (exit {proc.returncode}):\n"
            f"{stdout[-3000:]}\n{stderr[-3000:]}"
        )
    return wall, cpu.seconds()


class CpuByRole:
    """CPU seconds (user + system) of a sweep's process tree, by role: ``driver`` (the sweep
    command), ``trials`` (Ray's worker processes, where the trials run) and ``ray`` (Ray's own
    daemons: GCS, raylet, agents). Sampled every half second from the descendants of the
    driver: unlike wall time, CPU seconds hardly change with other processes' load, so they say
    where the bookkeeping goes even on a busy machine (a worker's last half second is missed)."""

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.last: dict[int, tuple[str, float]] = {}

    @staticmethod
    def role(cmdline: str) -> str:
        if "orchestrator.sweep" in cmdline:
            return "driver"
        if "default_worker.py" in cmdline or (
            cmdline.startswith("ray::") and "Agent" not in cmdline
        ):
            return "trials"
        return "ray"

    def sample(self) -> None:
        import psutil

        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            try:
                times = proc.cpu_times()
                cmdline = " ".join(proc.cmdline()).strip()
            except psutil.Error:
                continue
            role, used = self.last.get(proc.pid, ("ray", 0.0))
            if cmdline:  # a worker renames itself once it runs a task; an exiting one is blank
                role = self.role(cmdline)
            self.last[proc.pid] = (role, max(used, times.user + times.system))

    def seconds(self) -> dict[str, float]:
        out = {"driver": 0.0, "trials": 0.0, "ray": 0.0}
        for role, used in self.last.values():
            out[role] += used
        return out


def time_consolidation(workdir: Path, n: int) -> dict[str, float]:
    """Seconds to consolidate the row files of the sweep in ``workdir`` and to write its report."""
    from orchestrator.store import ResultsStore

    store = ResultsStore(workdir / "results", f"scale{n}")
    start = time.perf_counter()
    table = store.consolidate()
    consolidate_s = time.perf_counter() - start
    if table.num_rows != n:
        raise RuntimeError(f"consolidation found {table.num_rows} rows, expected {n}")
    out = {"consolidate_s": consolidate_s}
    try:
        from analysis.report import write_report
    except ImportError:
        return out
    start = time.perf_counter()
    write_report(store.sweep_uri())
    out["report_s"] = time.perf_counter() - start
    return out


def completion_times(workdir: Path, n: int) -> list[float]:
    """When each trial ended: the modification times of its row files, sorted."""
    rows = workdir / "results" / f"scale{n}" / "trials"
    return sorted(p.stat().st_mtime for p in rows.glob("*.parquet"))


def in_run_slopes(times: list[float], edges: list[int]) -> dict[str, float]:
    """Seconds per trial between the ``a``-th and ``b``-th completions of ONE run, for each
    consecutive pair of ``edges``: the marginal cost inside a sweep, where every window shares
    the same Ray, database and machine load (robust to other processes coming and going
    between runs, unlike differences of separate runs)."""
    out = {}
    for a, b in itertools.pairwise(edges):
        if b <= len(times) and b - a > 1:
            out[f"{a}-{b}"] = (times[b - 1] - times[a - 1]) / (b - a)
    return out


def top_functions(profile: Path, limit: int = 25) -> list[tuple[str, float, float, int]]:
    """``(function, own seconds, cumulative seconds, calls)`` of the profile, by own time."""
    stats = pstats.Stats(str(profile))
    rows = []
    for (file, line, name), (_, calls, own, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).name}:{line}({name})"
        rows.append((where, own, cum, calls))
    rows.sort(key=lambda r: r[1], reverse=True)
    return rows[:limit]


def measure(sizes: list[int], steps: int, profile: bool) -> dict[str, Any]:
    """Run every size, one after the other, and derive the marginal costs."""
    walls: dict[int, float] = {}
    cpus: dict[int, dict[str, float]] = {}
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for n in sizes:
            workdir = Path(tmp) / f"n{n}"
            workdir.mkdir()
            prof = workdir / "driver.prof" if profile and n == sizes[-1] else None
            walls[n], cpus[n] = run_sweep(n, steps, workdir, prof)
            print(f"  N={n:>6}: sweep {walls[n]:8.1f} s", file=sys.stderr, flush=True)
            if n == sizes[-1]:
                times = completion_times(workdir, n)
                edges = sizes if len(sizes) > 2 else [sizes[0], (sizes[0] + n) // 2, n]
                slopes = in_run_slopes(times, edges)
                extra = {**time_consolidation(workdir, n), "in_run_s_per_trial": slopes}
                if prof is not None:
                    extra["profile"] = top_functions(prof)
    marginal, marginal_cpu = {}, {}
    for a, b in itertools.pairwise(sizes):
        marginal[f"{a}-{b}"] = (walls[b] - walls[a]) / (b - a)
        marginal_cpu[f"{a}-{b}"] = {k: (cpus[b][k] - cpus[a][k]) / (b - a) for k in cpus[a]}
    values = list(marginal.values())
    return {
        "sizes": sizes,
        "wall_s": {str(n): w for n, w in walls.items()},
        "marginal_s_per_trial": marginal,
        "cpu_s": {str(n): c for n, c in cpus.items()},
        "marginal_cpu_s_per_trial": marginal_cpu,
        "flatness": values[-1] / values[0] if len(values) > 1 and values[0] > 0 else None,
        "cpus": os.cpu_count(),
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", type=int, nargs="+", help="trial counts (default 100 1000)")
    parser.add_argument("--large", action="store_true", help="also 10,000 trials (long)")
    parser.add_argument("--steps", type=int, default=200, help="SGLD steps per trial")
    parser.add_argument("--profile", action="store_true", help="cProfile the largest driver")
    parser.add_argument("--json", action="store_true", help="JSON on the last line")
    args = parser.parse_args(argv)
    sizes = sorted(set(args.sizes or [100, 1000] + ([10_000] if args.large else [])))
    if len(sizes) < 2 or sizes[0] < 1:
        print("error: --sizes: give at least two positive trial counts", file=sys.stderr)
        return 2
    result = measure(sizes, args.steps, args.profile)
    print(f"bench.scale on {result['cpus']} CPUs, tiny Gaussian trials ({args.steps} steps)")
    for n, wall in result["wall_s"].items():
        print(f"  {int(n):>6} trials  {wall:9.1f} s")
    for step_name, cost in result["marginal_s_per_trial"].items():
        print(f"  marginal cost per trial {step_name:>12}: {cost:.4f} s")
    for step_name, roles in result["marginal_cpu_s_per_trial"].items():
        parts = ", ".join(f"{role} {cost:.4f}" for role, cost in roles.items())
        print(f"  CPU s per trial {step_name:>12}: {sum(roles.values()):.4f} ({parts})")
    if result["flatness"] is not None:
        print(f"  last step / first step: {result['flatness']:.2f} (target <= 1.2)")
    slopes = list(result.get("in_run_s_per_trial", {}).items())
    for window, cost in slopes:
        print(f"  inside the {sizes[-1]}-trial run, trials {window:>12}: {cost:.4f} s per trial")
    if len(slopes) > 1 and slopes[0][1] > 0:
        print(f"  inside the run, last window / first: {slopes[-1][1] / slopes[0][1]:.2f}")
    for key in ("consolidate_s", "report_s"):
        if key in result:
            print(f"  {key} at {sizes[-1]} trials: {result[key]:.2f} s")
    for where, own, cum, calls in result.get("profile", []):
        print(f"    {own:8.2f} s own {cum:8.2f} s cum {calls:>9} calls  {where}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
