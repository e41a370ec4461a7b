"""The report's figures (analysis.report_figures): which cost is the x-axis, and the short
label of a trial's configuration."""

from __future__ import annotations

import pandas as pd

from analysis.report_figures import _label, bits_axis


def test_the_x_axis_is_the_first_cost_objective_that_is_a_column() -> None:
    columns = ["bits", "bits_per_param", "ensemble_bits", "test_error"]
    both = {"test_error": "min", "bits": "min", "bits_per_param": "min"}
    assert bits_axis(both, columns) == "bits_per_param"  # the word length only when alone
    assert bits_axis({"test_error": "min", "ensemble_bits": "min"}, columns) == "ensemble_bits"
    assert bits_axis({"test_error": "min", "bops_per_step": "min"}, columns) == "bits"
    assert bits_axis({"test_error": "min"}, ["test_error"]) is None


def test_labels_name_the_weight_format_and_the_step_size() -> None:
    assert _label(pd.Series({"weight_format": "fixed<8,6>", "lr": 0.01})) == "fixed<8,6> lr=0.01"
    assert _label(pd.Series({"weight_format": float("nan"), "format": "block", "bits": 8.0})) == (
        "block 8"
    )
    assert _label(pd.Series({"format": "fp32", "lr": float("nan")})) == "fp32"
