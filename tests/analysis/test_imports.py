"""analysis reads files only: importing it loads neither torch nor workloads nor lowprec, and
its one ECE agrees with the trials' own metrics."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from analysis.calibration import classification_metrics, ece
from analysis.load import COMMON_KEY_NAMES
from analysis.plots import expected_calibration_error, reliability_bins


def test_importing_analysis_loads_no_torch() -> None:
    code = (
        "import sys, analysis, analysis.report, analysis.load, analysis.plots, analysis.pareto\n"
        "import analysis.answer, analysis.stats\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'workloads', 'lowprec', 'ray', 'mlflow', 'orchestrator'))\n"
        "print(' '.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "", out.stdout[:300]


def test_common_key_names_are_the_key_table() -> None:
    from workloads.config.resolve import COMMON_KEYS

    assert set(COMMON_KEYS) == COMMON_KEY_NAMES


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
