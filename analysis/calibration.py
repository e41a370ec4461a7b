"""Classification metrics of stored predictions, NumPy only (ALGORITHMS.md §8): the one ECE of
the analysis package (reliability plots and recomputed metrics both use it).

For probabilities p [n, C] and labels y [n], confidence c_i = max_k p_ik, bin b of B = 15
equal-width bins holds c in (b/B, (b+1)/B] (bin 0 also holds 0):

    ECE   = Σ_b (n_b / n) |acc_b - conf_b|
    error = 1 - mean 1{argmax_k p_ik = y_i}
    nll   = mean -log max(p_{i, y_i}, 1e-12)
    brier = mean Σ_k (p_ik - 1{k = y_i})²

the same definitions as the trials' own ``lowprec.metrics`` (a test holds them equal).
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15
_EPS = 1e-12


def bin_index(confidence: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """The bin b of each confidence: c in (b/B, (b+1)/B], 0 in bin 0."""
    return np.clip(np.ceil(np.asarray(confidence) * bins).astype(np.int64) - 1, 0, bins - 1)


def ece_from_bins(count: np.ndarray, accuracy: np.ndarray, confidence: np.ndarray) -> float:
    """Σ_b (n_b / n) |acc_b - conf_b| over the bins with n_b > 0."""
    count = np.asarray(count, dtype=np.float64)
    used = count > 0
    if not used.any():
        return float("nan")
    weights = count[used] / count[used].sum()
    gap = np.abs(np.asarray(accuracy, dtype=np.float64)[used] - np.asarray(confidence)[used])
    return float(np.sum(weights * gap))


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of ``probs`` [n, C] against ``labels`` [n]."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    idx = bin_index(conf, bins)
    count = np.bincount(idx, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(idx, weights=correct, minlength=bins) / count
        mean_conf = np.bincount(idx, weights=conf, minlength=bins) / count
    return ece_from_bins(count, acc, mean_conf)


def classification_metrics(
    probs: np.ndarray, labels: np.ndarray, prefix: str = "test_"
) -> dict[str, float]:
    """``{prefix}error, {prefix}nll, {prefix}ece, {prefix}brier`` (module docstring)."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    rows = np.arange(len(y))
    onehot = np.zeros_like(p)
    onehot[rows, y] = 1.0
    return {
        f"{prefix}error": float(np.mean(p.argmax(axis=1) != y)),
        f"{prefix}nll": float(-np.mean(np.log(np.clip(p[rows, y], _EPS, None)))),
        f"{prefix}ece": ece(p, y),
        f"{prefix}brier": float(np.mean(np.sum((p - onehot) ** 2, axis=1))),
    }
