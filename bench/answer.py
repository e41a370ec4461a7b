"""How long the answer's statistics take, beside the report without them.

    python -m bench.answer                          # 10,000 trials x 1,000 test predictions
    python -m bench.answer --trials 108             # the default sweep's size
    python -m bench.answer --trials 2000 --resamples 2000 --json

It writes a synthetic classification sweep into a temporary directory (``--trials`` trials:
configurations of format x bits x accumulator x lr, 3 seeds each, plus an fp32 baseline; every
trial stores ``--test`` predictions of 10 classes, as the workloads do), then times in this
process

- ``answer``: ``analysis.answer.compute_answer(dir, resamples=R)`` (reading every trial's
  predictions, the two-way bootstrap of every configuration, the paired differences, McNemar,
  the front probabilities), and
- ``report``: ``analysis.report.write_report(dir, answer=False)``, the report without the
  statistics (fronts, seed-mean tables, figures; it reads predictions only for the reliability
  diagrams),

and prints both (wall and CPU seconds of this process, and the load average: the machine may be
shared) with their ratio. Writing the sweep is not timed. The targets: ``answer`` under
60 s for 10,000 trials on 2 cores, under 5 s for 108 trials. JSON on the last line with
``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

N_CLASSES = 10
FORMATS = ("fixed", "block", "float")
ACCUMULATORS = ("full", "low", "vc")


def write_sweep(root: Path, trials: int, n_test: int, seeds: int = 3, seed: int = 0) -> Path:
    """A classification sweep of about ``trials`` trials under ``root/synthetic``: an fp32
    baseline and configurations (format, bits, accumulator, lr) of ``seeds`` seeds each; the
    predictions of a configuration are noisier the fewer bits it has."""
    sweep = root / "synthetic"
    (sweep / "predictions").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    n_configs = max(2, round(trials / seeds))
    bits = np.arange(4, 17)
    lrs_needed = int(np.ceil((n_configs - 1) / (len(FORMATS) * len(bits) * len(ACCUMULATORS))))
    lrs = np.round(np.geomspace(0.01, 0.3, max(lrs_needed, 1)), 5)
    grid = [
        (f, int(b), a, float(lr)) for lr in lrs for f in FORMATS for b in bits for a in ACCUMULATORS
    ][: n_configs - 1]
    configs = [("fp32", 32, "full", 0.1), *grid]
    spec = {
        "name": "synthetic",
        "workload": "mnist_mlp",
        "objectives": {"test_error": "min", "bits_per_param": "min"},
        "search": {"algorithm": "grid"},
        "fixed": {"sampler": "sgld", "epochs": 10},
        "space": {
            "format": {"grid": list(FORMATS)},
            "bits": {"grid": bits.tolist()},
            "accumulator": {"grid": list(ACCUMULATORS)},
            "lr": {"grid": lrs.tolist()},
            "seed": {"grid": list(range(seeds))},
        },
    }
    (sweep / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    labels = rng.integers(0, N_CLASSES, n_test)
    onehot = np.eye(N_CLASSES, dtype=np.float32)[labels]
    difficulty = rng.normal(0, 1.0, (n_test, 1)).astype(np.float32)
    example = pa.array(np.arange(n_test), pa.int32())
    label = pa.array(labels, pa.int32())
    rows = []
    for c, (fmt, b, acc, lr) in enumerate(configs):
        quality = 4.0 + 0.1 * min(b, 16) - (0.8 if acc == "low" else 0.0) - abs(np.log10(lr) + 1)
        for s in range(seeds):
            trial_id = f"{c:05d}{s:03d}"
            logits = (quality + rng.normal(0, 0.1)) * onehot - difficulty * onehot
            logits += rng.normal(0, 1, (n_test, N_CLASSES)).astype(np.float32)
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            wrong = probs.argmax(axis=1) != labels
            folder = sweep / "predictions" / f"trial_id={trial_id}"
            folder.mkdir()
            values = pa.array(probs.astype(np.float32).ravel(), pa.float32())
            offsets = pa.array(np.arange(0, n_test * N_CLASSES + 1, N_CLASSES, dtype=np.int32))
            pq.write_table(
                pa.table(
                    {
                        "example": example,
                        "label": label,
                        "probs": pa.ListArray.from_arrays(offsets, values),
                    }
                ),
                folder / "part-0.parquet",
            )
            storage = 32.0 if acc == "full" else b + (8 / 32 if fmt == "block" else 0.0)
            rows.append(
                {
                    "trial_id": trial_id,
                    "status": "ok",
                    "error": None,
                    "workload": "mnist_mlp",
                    "format": fmt,
                    "bits": b,
                    "accumulator": acc,
                    "lr": lr,
                    "seed": s,
                    "test_error": float(wrong.mean()),
                    "bits_per_param": float(storage),
                    "wall_s": 1.0,
                }
            )
    pq.write_table(pa.Table.from_pylist(rows), sweep / "trials.parquet")
    return sweep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.answer", description=__doc__)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--test", type=int, default=1000, help="test predictions per trial")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--no-report", action="store_true", help="time the answer only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from analysis.answer import compute_answer
    from analysis.report import write_report

    with tempfile.TemporaryDirectory(prefix="bench-answer-") as tmp:
        t0 = time.perf_counter()
        sweep = write_sweep(Path(tmp), args.trials, args.test)
        written = time.perf_counter() - t0
        n = len(pq.read_table(sweep / "trials.parquet"))
        print(
            f"sweep: {n} trials x {args.test} test predictions written in {written:.1f} s "
            f"(not timed); {os.cpu_count()} CPUs",
            file=sys.stderr,
        )
        t0, c0 = time.perf_counter(), time.process_time()
        answer = compute_answer(sweep, resamples=args.resamples)
        t_answer, c_answer = time.perf_counter() - t0, time.process_time() - c0
        t_report = c_report = None
        if not args.no_report:
            t0, c0 = time.perf_counter(), time.process_time()
            write_report(sweep, out_dir=Path(tmp) / "report", answer=False)
            t_report, c_report = time.perf_counter() - t0, time.process_time() - c0
    print(answer.sentence, file=sys.stderr)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{'':<34}{'wall s':>9}{'CPU s':>9}   (load average {load:.1f})")
    print(f"{'answer (' + str(args.resamples) + ' resamples)':<34}{t_answer:>9.2f}{c_answer:>9.2f}")
    if t_report is not None:
        print(f"{'report without statistics':<34}{t_report:>9.2f}{c_report:>9.2f}")
        print(f"{'answer / report':<34}{t_answer / t_report:>9.2f}{c_answer / c_report:>9.2f}")
    if args.json:
        print(
            json.dumps(
                {
                    "trials": n,
                    "test": args.test,
                    "resamples": args.resamples,
                    "answer_s": round(t_answer, 3),
                    "answer_cpu_s": round(c_answer, 3),
                    "report_s": None if t_report is None else round(t_report, 3),
                    "report_cpu_s": None if c_report is None else round(c_report, 3),
                    "cpus": os.cpu_count(),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
