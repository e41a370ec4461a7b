"""The analysis package's one ECE and classification metrics (analysis.calibration), against
hand-computed answers and the trials' own ``lowprec.metrics``."""

from __future__ import annotations

import math

import numpy as np

from analysis.calibration import bin_index, classification_metrics, ece, ece_from_bins
from analysis.plots import expected_calibration_error, reliability_bins


def test_bins_are_right_closed_and_zero_is_in_the_first() -> None:
    edges = np.array([0.0, 1 / 15, 1 / 15 + 1e-9, 0.5, 1.0])
    assert bin_index(edges).tolist() == [0, 0, 1, 7, 14]
    assert bin_index(np.array([0.25, 0.2500001]), bins=4).tolist() == [0, 1]


def test_metrics_of_two_examples_by_hand() -> None:
    """Confidences 0.9 (right) and 0.6 (wrong): ECE = 0.5 * 0.1 + 0.5 * 0.6 = 0.35."""
    probs = np.array([[0.9, 0.1], [0.6, 0.4]])
    labels = np.array([0, 1])
    assert math.isclose(ece(probs, labels), 0.35, abs_tol=1e-12)
    got = classification_metrics(probs, labels, prefix="val_")
    assert got.keys() == {"val_error", "val_nll", "val_ece", "val_brier"}
    assert math.isclose(got["val_error"], 0.5, abs_tol=1e-12)
    assert math.isclose(got["val_nll"], (-math.log(0.9) - math.log(0.4)) / 2, abs_tol=1e-12)
    assert math.isclose(got["val_brier"], (0.02 + 0.72) / 2, abs_tol=1e-12)
    assert math.isclose(got["val_ece"], 0.35, abs_tol=1e-12)


def test_empty_bins_are_left_out_and_no_count_is_nan() -> None:
    count, accuracy, confidence = np.array([0, 2, 2]), np.array([9.0, 1.0, 0.5]), [9.0, 0.8, 0.5]
    assert math.isclose(ece_from_bins(count, accuracy, confidence), 0.1, abs_tol=1e-12)
    assert math.isnan(ece_from_bins(np.zeros(3), np.zeros(3), np.zeros(3)))


def test_one_ece_agrees_with_the_trials_metrics() -> None:
    from lowprec import metrics

    rng = np.random.default_rng(0)
    for classes in (2, 10):
        logits = 3.0 * rng.standard_normal((500, classes))
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        labels = rng.integers(0, classes, 500)
        labels[:200] = probs[:200].argmax(1)  # some calibration signal
        ours = classification_metrics(probs, labels)
        theirs = metrics.classification_metrics(probs, labels)
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert abs(ours[key] - theirs[key]) < 1e-12, key
        from_bins = expected_calibration_error(reliability_bins(labels, probs, 15))
        assert abs(from_bins - ece(probs, labels)) < 1e-12
    # a known answer: two examples, both confidence 0.9, one right: |0.5 - 0.9| = 0.4
    p = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert abs(ece(p, np.array([0, 1])) - 0.4) < 1e-12
