"""Run a sweep: ``python -m orchestrator.sweep search_spaces/bits.yaml``.

    python -m orchestrator.sweep FILE [--dry-run] [--resume] [--results DIR] [--storage URI]
                                      [--mlflow-uri URI] [--address ADDR] [--max-concurrent N]

1. the spec is validated as a whole (:mod:`orchestrator.spec`); any problem -> exit 2 with
   ``FILE: key.path: reason``; ``--dry-run`` prints the trial count and the first trials;
2. the sweep directory ``RESULTS/<name>/`` (``--results``, default ``./results``; or
   ``--storage`` a pyarrow URI such as ``s3://bucket/prefix`` for results and Tune's state) gets
   ``spec.yaml`` and ``sweep.json`` (sweep id, MLflow parent run);
3. MLflow: the database, the experiment (= name) and the sweep's parent run are made here, in the
   driver, before any trial (``orchestrator.tracking``);
4. Ray: a local instance with this machine's CPUs, or ``--address auto`` / ``ray://host:10001``;
5. Ray Tune runs :func:`orchestrator.trainable.tune_trainable` for every trial (grid/random:
   Tune's variant generator; optuna: ``OptunaSearch``, TPE for one objective and NSGA-II for
   several; ASHA when ``scheduler: asha``), retrying a raising trial ``max_failures`` times;
6. the trials' row files are consolidated into ``trials.parquet``; a summary table, the commands
   to look further, and (when the ``analysis`` package is importable) the report, its PNGs
   logged to the parent run.

``--resume`` continues an interrupted sweep (Ctrl-C, a killed driver) from Tune's experiment dir
(``Tuner.restore(..., resume_errored=True)``): finished trials are not run again.
Exit status: 0 when every trial ended (failed or diverged trials included), 2 for a bad spec or
options, 1 when the sweep directory is in use by another driver, Ray cannot start or join
(:mod:`orchestrator.raystart`) or a file cannot be written (a full disk: the line names it),
130 when interrupted (resume with ``--resume``).
"""

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from orchestrator import tracking
from orchestrator.driver import LARGE_SWEEP, SweepUsageError, run_sweep
from orchestrator.raystart import RayStartError
from orchestrator.spec import (
    COST_METRICS,
    Spec,
    SpecError,
    baseline_candidates,
    check_data,
    load_spec,
)
from orchestrator.store import DamagedFile
from orchestrator.sweeplock import SweepLocked


def _answer_setting(spec: Spec) -> str:
    """The baseline the answer compares against and each compared objective's tolerance."""
    from analysis.answer import select_baseline

    configs = baseline_candidates(spec)
    found = select_baseline(spec.baseline, configs)
    if len(found) == 1:
        baseline = f"baseline {configs[found[0]]['configuration']!r}"
    elif spec.baseline is None:
        baseline = "no baseline (no single all-fp32 configuration; set `baseline:`)"
    else:  # optuna specs are checked per listed value; the name comes from the sweep
        baseline = f"baseline {spec.baseline!r}"
    tolerances = [
        f"{metric} ±{tol:g}"
        for metric in spec.objectives
        if metric not in COST_METRICS and (tol := spec.tolerance(metric)) is not None
    ]
    within = f", equivalent within {', '.join(tolerances)}" if tolerances else ""
    return baseline + within


def dry_run(spec: Spec, out: TextIO, limit: int = 5) -> None:
    """Print the number of trials, per variant with its first ``limit`` trials (the keys that
    are not the same in every trial); optuna: the space each variant proposes from."""
    n = spec.num_trials()
    print(
        f"{spec.file}: {n} trial{'s' if n != 1 else ''} of workload {spec.workload!r} "
        f"({spec.algorithm}, num_samples {spec.num_samples}; objectives "
        f"{', '.join(f'{k}: {v}' for k, v in spec.objectives.items())})",
        file=out,
    )
    shared = spec.base_config()
    print("  fixed: " + " ".join(f"{k}={v}" for k, v in shared.items()), file=out)
    print(f"  answer: {_answer_setting(spec)}", file=out)
    if spec.algorithm == "optuna":
        # Optuna proposes each trial from the results so far: there is no list to show
        for part in spec.parts():
            keys = [f"{k}={v}" for k, v in part.fixed.items()]
            keys += [f"{k}={a.describe()}" for k, a in spec.part_axes(part).items()]
            label = f"variant {part.name}" if part.name is not None else "space"
            print(f"  {label}: {' '.join(keys) if keys else '(no searched keys)'}", file=out)
        keys = [*(["variant"] if spec.variants else []), *spec.searched_keys()]
        print(
            f"  {n} trial{'s' if n != 1 else ''} proposed by Optuna over: "
            f"{', '.join(keys) if keys else '(no searched keys)'}",
            file=out,
        )
        return
    expansion = spec.expansion()
    index = 0
    for part in spec.parts():
        trials = [t for t in expansion.trials if t.variant == part.name]
        merged = expansion.merged.get(part.name, 0)
        note = f" ({merged} more differ only in keys without effect: run once)" if merged else ""
        indent = "  "
        if part.name is not None:
            count = f"{len(trials)} trial{'s' if len(trials) != 1 else ''}"
            print(f"  variant {part.name}: {count}{note}", file=out)
            indent = "    "
        elif note:
            print(f"  {note.strip()[1:-1]}", file=out)
        for trial in trials[:limit]:
            shown = " ".join(
                f"{k}={v}" for k, v in trial.config.items() if k not in shared and k != "variant"
            )
            print(f"{indent}[{index}] {shown or '(the fixed keys only)'}", file=out)
            index += 1
        if len(trials) > limit:
            print(f"{indent}... {len(trials) - limit} more", file=out)
        index += max(0, len(trials) - limit)


# CLI
# ----------------------------------------------------------------------------------------------


class _OneLineParser(argparse.ArgumentParser):
    """Bad options say so in one line (exit 2), like every other refusal of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (python -m orchestrator.sweep --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m orchestrator.sweep",
        description="Run a low-precision sampling sweep on Ray Tune, tracked in MLflow.",
    )
    parser.add_argument("file", help="search-space YAML (e.g. search_spaces/bits.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="print the trials; run nothing")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    parser.add_argument(
        "--yes", action="store_true", help=f"launch even more than {LARGE_SWEEP:,} trials"
    )
    parser.add_argument("--results", default="results", help="results root (default ./results)")
    parser.add_argument(
        "--storage", help="results root as a pyarrow URI (s3://bucket/prefix, /shared/mount)"
    )
    parser.add_argument(
        "--mlflow-uri", help="tracking URI (default sqlite:///<cwd>/mlflow.db; http://head:5000)"
    )
    parser.add_argument("--address", help="join a Ray cluster: auto or ray://host:10001")
    parser.add_argument("--max-concurrent", type=int, help="trials at once (default: what fits)")
    parser.add_argument(
        "--skip-data-check",
        action="store_true",
        help="do not check here that the trials' data sets are present (data only on workers)",
    )
    parser.add_argument(
        "--optuna-storage",
        help="optuna: the study's storage URL (default sqlite:///RESULTS/NAME/optuna.db; "
        "postgresql://user@head/optuna on a cluster, the password in PGPASSWORD)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m orchestrator.sweep``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.max_concurrent is not None and args.max_concurrent < 1:
        print("error: --max-concurrent: must be at least 1", file=sys.stderr)
        return 2
    try:
        if args.dry_run:
            spec = load_spec(args.file)
            if not args.skip_data_check:
                check_data(spec)
            dry_run(spec, sys.stdout)
            return 0
        outcome = run_sweep(
            args.file,
            results=args.results,
            storage=args.storage,
            mlflow_uri=args.mlflow_uri,
            address=args.address,
            resume=args.resume,
            max_concurrent=args.max_concurrent,
            optuna_storage=args.optuna_storage,
            data_check=not args.skip_data_check,
            yes=args.yes,
        )
    except (SpecError, SweepUsageError, DamagedFile, tracking.TrackingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SweepLocked, RayStartError, OSError) as exc:  # OSError: a full disk, names the file
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; continue with --resume", file=sys.stderr)
        return 130
    return 0 if outcome.complete else 130


if __name__ == "__main__":
    import atexit
    import os
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head`: end quietly, no traceback
    code = main()
    # everything is written and Ray is down: leave now. The interpreter's own teardown after a
    # sweep (Ray's, gRPC's and torch's extension modules) took 4-8 s on 2 cores, most of the
    # time from a Ctrl-C to the prompt; the exit handlers (logging's, MLflow's) still run
    if sys.getprofile() is not None:  # under cProfile (bench.scale --profile): let it write
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
