"""Builders of realistic sweep directories, written with pyarrow in the orchestrator's layout
(docs/results.md), so analysis is tested without running a sweep.

- :func:`write_classifier_sweep`: a grid over format × bits × accumulator × seed of a classifier,
  plus fp32 baselines, with diverged and failed trials, and per-trial predictions whose metrics
  (error, NLL, ECE 15 bins, Brier) are the ones reported in trials.parquet;
- :func:`write_gaussian_sweep`: the 1-D N(0, 1) experiment with full / low / vc accumulators and
  per-trial samples; the naive low accumulator's samples have the inflated std sqrt(1 + Δ²/(12α))
  of ALGORITHMS.md §10;
- :func:`write_optuna_sweep`: a search over lr and bits with trial ids in start order;
- :func:`write_failed_sweep`: a sweep where every trial failed or diverged, so that
  trials.parquet has no metric columns at all (as the orchestrator writes it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from scipy.stats import norm

from analysis.cost_panel import COST_COLUMNS

N_TEST = 300
N_CLASSES = 10

#: every config key the orchestrator writes, with the value a trial gets unless set
DEFAULTS: dict[str, Any] = {
    "sampler": "sgld",
    "format": "fp32",
    "bits": 32,
    "weight_format": None,
    "grad_format": None,
    "act_format": None,
    "error_format": None,
    "momentum_format": None,
    "accumulator": "full",
    "rounding": "stochastic",
    "lr": 0.1,
    "schedule": "constant",
    "cycles": 1,
    "temperature": 1.0,
    "friction": 3.0,
    "inverse_mass": 1.0,
    "prior_std": None,
    "epochs": 2,
    "steps": 10000,
    "batch_size": 128,
    "burn_in": 0,
    "thin": 1,
    "num_samples": None,
    "seed": 0,
    "device": "cpu",
}


def _weight_format(fmt: str, bits: int) -> str | None:
    return {
        "fixed": f"fixed<{bits},{bits - 2}>",
        "block": f"block<{bits}>",
        "float": f"float<{min(5, bits - 2)},{bits - 1 - min(5, bits - 2)}>",
        "fp32": None,
    }[fmt]


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """ALGORITHMS.md §8, computed independently of lowprec.metrics: error 1 - accuracy,
    NLL -mean log p_y, ECE over 15 equal-width confidence bins (lo, hi], Brier
    mean_i Σ_k (p_ik - 1[y_i = k])²."""
    probs = np.asarray(probs, dtype=np.float64)  # the stored float32 values, summed in float64
    n = len(labels)
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    correct = predicted == labels
    bins = np.clip(np.ceil(confidence * 15).astype(int) - 1, 0, 14)
    ece = sum(
        (bins == b).sum() / n * abs(correct[bins == b].mean() - confidence[bins == b].mean())
        for b in range(15)
        if (bins == b).any()
    )
    onehot = np.eye(probs.shape[1])[labels]
    return {
        "test_error": float(1 - correct.mean()),
        "test_nll": float(-np.log(probs[np.arange(n), labels]).mean()),
        "test_ece": float(ece),
        "test_brier": float(((probs - onehot) ** 2).sum(axis=1).mean()),
    }


def _write_trials(root: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(c for r in rows for c in r))
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
    pq.write_table(table, root / "trials.parquet")


def _write_part(root: Path, kind: str, trial_id: str, table: pa.Table) -> None:
    folder = root / kind / f"trial_id={trial_id}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part-0.parquet")


def _bookkeeping(name: str, trial_id: str, wall_s: float) -> dict[str, Any]:
    return {
        "trial_id": trial_id,
        "mlflow_run_id": f"run{abs(hash(trial_id)) % 10**8:08d}",
        "wall_s": wall_s,
        "sweep_id": f"{name}-0001",
        "git_commit": "0" * 40,
    }


def write_classifier_sweep(
    root: str | Path,
    name: str = "bits",
    seeds: tuple[int, ...] = (0, 1),
    formats: tuple[str, ...] = ("fixed", "block", "float"),
    bits: tuple[int, ...] = (4, 8, 16),
    accumulators: tuple[str, ...] = ("full", "low", "vc"),
    objectives: dict[str, str] | None = None,
    storage_bits: bool = False,
    costs: bool = False,
) -> Path:
    """A classifier sweep under ``root/name``: returns the sweep directory.

    With ``costs`` every ok trial also carries the cost panel of docs/costs.md, from
    :func:`trial_costs` (known arithmetic on the MNIST MLP), and ``ess``, ``rhat`` and
    ``ess_per_s`` columns that are null in every trial (a classifier runs no chains).

    ``bits_per_param`` is the word length ``bits``, or with ``storage_bits`` what the workloads
    report (lowprec.precision): 32 for ``accumulator: full`` (its float32 master copy), the
    word length plus the shared 8-bit exponent over 32 weights for ``block``.

    The ensemble's logits are the one-hot label scaled by a quality that grows with bits (and
    is lower for the naive low accumulator) plus Gaussian noise, so fewer bits cost accuracy.
    fixed 4 with the low accumulator diverges (metrics NaN except train_loss inf); the float,
    4 bits, vc trial of seed 0 fails with an error message and no metrics.
    """
    root = Path(root) / name
    root.mkdir(parents=True, exist_ok=True)
    objectives = objectives or {"test_error": "min", "bits": "min"}
    spec = {
        "name": name,
        "workload": "mnist_mlp",
        "objectives": objectives,
        "search": {"algorithm": "grid", "num_samples": 1, "max_concurrent": 2},
        "fixed": {"epochs": 2, "batch_size": 128, "sampler": "sgld"},
        "space": {
            "format": {"grid": list(formats)},
            "bits": {"grid": list(bits)},
            "accumulator": {"grid": list(accumulators)},
            "seed": {"grid": list(seeds)},
        },
    }
    (root / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    data = np.random.default_rng(12345)
    labels = data.integers(0, N_CLASSES, N_TEST)
    configs = [("fp32", 32, "full")] + [
        (f, b, a) for f in formats for b in bits for a in accumulators
    ]
    rows = []
    for seed in seeds:
        for fmt, b, acc in configs:
            trial_id = f"{name}_{len(rows):05d}"
            row = {
                **DEFAULTS,
                "workload": "mnist_mlp",
                "format": fmt,
                "bits": b,
                "weight_format": _weight_format(fmt, b),
                "accumulator": acc,
                "seed": seed,
                **_bookkeeping(name, trial_id, 5.0 + len(rows) % 7),
            }
            metrics = dict.fromkeys(
                (
                    "test_error",
                    "test_nll",
                    "test_ece",
                    "test_brier",
                    "last_test_error",
                    "ood_auroc",
                    "train_loss",
                    "bits_per_param",
                ),
                np.nan,
            )
            if costs:
                metrics.update(dict.fromkeys(COST_COLUMNS, np.nan))  # every cost column, absent
            if fmt == "fixed" and b == 4 and acc == "low":
                row.update(
                    status="diverged",
                    error="non-finite weights at epoch 1",
                    diverged=True,
                    **metrics,
                )
                row["train_loss"] = np.inf
                rows.append(row)
                continue
            if fmt == "float" and b == 4 and acc == "vc" and seed == seeds[0]:
                row.update(
                    status="failed",
                    diverged=False,
                    error="RuntimeError: simulated failure",
                    **metrics,
                )
                rows.append(row)
                continue
            rng = np.random.default_rng([seed, len(rows)])
            quality = 1.2 + 0.25 * min(b, 16) - (0.8 if acc == "low" else 0.0)
            logits = quality * np.eye(N_CLASSES)[labels] + rng.normal(0, 1, (N_TEST, N_CLASSES))
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
            metrics.update(classification_metrics(labels, probs))
            metrics.update(
                last_test_error=metrics["test_error"] + 0.01,
                ood_auroc=0.8,
                train_loss=0.3,
                bits_per_param=_storage_bits(fmt, b, acc) if storage_bits else float(b),
            )
            if costs:
                metrics.update(trial_costs(fmt, b, acc))
            row.update(status="ok", error=None, diverged=False, **metrics)
            rows.append(row)
            _write_part(
                root,
                "predictions",
                trial_id,
                pa.table(
                    {
                        "example": pa.array(np.arange(N_TEST), pa.int32()),
                        "label": pa.array(labels, pa.int32()),
                        "probs": pa.array(list(probs), pa.list_(pa.float32())),
                    }
                ),
            )
    _write_trials(root, rows)
    return root


#: the MNIST MLP 784-100-10: parameters and multiply-accumulates of one example's forward pass
PARAMS, MACS = 79_510, 79_400
#: samples an ensemble keeps, and peak memory of every trial (MiB)
SAMPLES_KEPT, PEAK_RSS_MB = 10, 512.0


def trial_costs(fmt: str, bits: int, accumulator: str) -> dict[str, float]:
    """Costs whose ratios to float32's are known: with w = the stored word length (32 for
    fp32), ``ensemble_bits`` = K x 79,510 x w (ratio w/32), ``bops_per_prediction`` =
    K x 79,400 x w² (ratio (w/32)²), ``bops_per_step`` three times one example's w²
    products; energy 0.5 fJ per bit operation; ``state_bytes`` weights and gradient in w, plus
    the float32 master of ``full``; ``peak_rss_mb`` the same for every trial."""
    w = 32 if fmt == "fp32" else bits
    master = 32 if accumulator == "full" and fmt != "fp32" else 0
    bops_step = 3 * MACS * w * w
    bops_prediction = SAMPLES_KEPT * MACS * w * w
    return {
        "state_bytes": PARAMS * (2 * w + master) / 8,
        "ensemble_bits": float(SAMPLES_KEPT * PARAMS * w),
        "bops_per_step": float(bops_step),
        "bops_per_prediction": float(bops_prediction),
        "energy_pj_per_step": bops_step * 5e-4,
        "energy_pj_per_prediction": bops_prediction * 5e-4,
        "peak_rss_mb": PEAK_RSS_MB,
    }


def _storage_bits(fmt: str, bits: int, accumulator: str) -> float:
    if accumulator == "full" or fmt == "fp32":
        return 32.0
    return bits + 8 / 32 if fmt == "block" else float(bits)


def write_failed_sweep(root: str | Path, name: str = "broken") -> Path:
    """Every trial failed or diverged before reporting a metric: trials.parquet has the config
    keys, ``status`` and ``error`` but no ``test_error``, ``bits_per_param``, ... columns. The
    spec's objectives are the default sweep's, {test_error: min, bits_per_param: min}."""
    root = Path(root) / name
    root.mkdir(parents=True, exist_ok=True)
    spec = {
        "name": name,
        "workload": "mnist_mlp",
        "objectives": {"test_error": "min", "bits_per_param": "min"},
        "search": {"algorithm": "grid", "num_samples": 1},
        "fixed": {"epochs": 2, "sampler": "sgld"},
        "space": {
            "format": {"grid": ["fixed", "block"]},
            "bits": {"grid": [4]},
            "accumulator": {"grid": ["low", "vc"]},
        },
    }
    (root / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    rows = []
    for fmt in ("fixed", "block"):
        for acc in ("low", "vc"):
            trial_id = f"{name}_{len(rows):05d}"
            failed = acc == "vc"
            rows.append(
                {
                    **DEFAULTS,
                    "workload": "mnist_mlp",
                    "format": fmt,
                    "bits": 4,
                    "weight_format": _weight_format(fmt, 4),
                    "accumulator": acc,
                    **_bookkeeping(name, trial_id, 0.0),
                    "status": "failed" if failed else "diverged",
                    "error": f"RuntimeError: no {fmt} kernel" if failed else "non-finite loss",
                }
            )
    _write_trials(root, rows)
    return root


def write_gaussian_sweep(
    root: str | Path,
    name: str = "gaussian",
    seeds: tuple[int, ...] = (0, 1),
    num_samples: int = 4000,
    lr: float = 2e-3,
) -> Path:
    """The 1-D N(0, 1) experiment: fixed<8,3> weights, accumulators full, low and vc, plus an
    fp32 baseline. Samples of full, vc and fp32 are N(0, 1) draws; those of low are drawn with
    the inflated std sqrt(1 + Δ²/(12 lr)), Δ = 1/8 (ALGORITHMS.md §10)."""
    root = Path(root) / name
    root.mkdir(parents=True, exist_ok=True)
    spec = {
        "name": name,
        "workload": "gaussian",
        "objectives": {"w2": "min", "bits": "min"},
        "search": {"algorithm": "grid"},
        "fixed": {"steps": 100000, "sampler": "sgld", "lr": lr, "weight_format": "fixed<8,3>"},
        "space": {"accumulator": {"grid": ["full", "low", "vc"]}, "seed": {"grid": list(seeds)}},
    }
    (root / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    inflated = float(np.sqrt(1 + (1 / 8) ** 2 / (12 * lr)))
    rows = []
    for seed in seeds:
        for fmt, acc in (("fp32", "full"), ("fixed", "full"), ("fixed", "low"), ("fixed", "vc")):
            trial_id = f"{name}_{len(rows):05d}"
            sd = inflated if acc == "low" else 1.0
            rng = np.random.default_rng([seed, len(rows), 7])
            x = rng.normal(0.0, sd, (num_samples, 1, 1)).astype(np.float32)
            b = 32 if fmt == "fp32" else 8
            flat = np.sort(x.ravel())
            quantiles = norm.ppf((np.arange(len(flat)) + 0.5) / len(flat))
            rows.append(
                {
                    **DEFAULTS,
                    "workload": "gaussian",
                    "format": fmt,
                    "bits": b,
                    "lr": lr,
                    "weight_format": "fixed<8,3>" if fmt == "fixed" else None,
                    "accumulator": acc,
                    "seed": seed,
                    "steps": 100000,
                    "num_samples": num_samples,
                    **_bookkeeping(name, trial_id, 2.0),
                    "status": "ok",
                    "error": None,
                    "diverged": False,
                    "mean": float(x.mean()),
                    "std": float(x.std()),
                    "w2": float(np.sqrt(np.mean((flat - quantiles) ** 2))),
                    "ks": 0.01,
                    "ess": 1000.0,
                    "bits_per_param": float(b),
                }
            )
            _write_part(
                root,
                "samples",
                trial_id,
                pa.table(
                    {
                        "sample": pa.array(np.arange(num_samples), pa.int32()),
                        "chain": pa.array(np.zeros(num_samples), pa.int32()),
                        "x": pa.array(list(x[:, 0, :]), pa.list_(pa.float32())),
                    }
                ),
            )
    _write_trials(root, rows)
    return root


def write_optuna_sweep(root: str | Path, name: str = "tuned", n_trials: int = 24) -> Path:
    """An optuna-style search over (format, bits, lr) of a classifier, objectives test_error
    and bits; trial ids ``<name>_<k>`` are in start order (k not zero-padded, so that ordering
    needs the natural sort); two trials diverge. No predictions are written."""
    root = Path(root) / name
    root.mkdir(parents=True, exist_ok=True)
    spec = {
        "name": name,
        "workload": "mnist_mlp",
        "objectives": {"test_error": "min", "bits": "min"},
        "search": {"algorithm": "optuna", "num_samples": n_trials},
        "fixed": {"epochs": 1},
        "space": {"bits": {"choice": [4, 6, 8, 12, 16]}, "lr": {"loguniform": [1e-3, 0.5]}},
    }
    (root / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    rng = np.random.default_rng(3)
    rows = []
    for k in range(n_trials):
        b = int(rng.choice([4, 6, 8, 12, 16]))
        lr = float(np.exp(rng.uniform(np.log(1e-3), np.log(0.5))))
        status = "diverged" if k in (3, 11) else "ok"
        error = 0.5 / b + 0.02 * abs(np.log10(lr) + 1.0) + 0.05 / (k + 1)
        rows.append(
            {
                **DEFAULTS,
                "workload": "mnist_mlp",
                "format": "fixed",
                "bits": b,
                "weight_format": f"fixed<{b},{b - 2}>",
                "lr": lr,
                "seed": 0,
                **_bookkeeping(name, f"{name}_{k}", 1.0),
                "status": status,
                "error": "non-finite loss" if status == "diverged" else None,
                "diverged": status == "diverged",
                "test_error": error if status == "ok" else np.nan,
                "test_nll": 2 * error,
                "test_ece": 0.05,
                "test_brier": 1.5 * error,
                "bits_per_param": float(b),
            }
        )
    _write_trials(root, rows)
    return root
