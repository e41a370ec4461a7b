"""The report's cost panel (every cost column of the front's configurations beside float32's,
as ratios) and the figures' x axis when the spec's cost objective is not bits per weight."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import plots
from analysis.cost_panel import cost_panel
from analysis.load import load_sweep
from analysis.report import bits_axis, read_table, write_report
from tests.analysis.sweep_fixture import PARAMS, PEAK_RSS_MB, SAMPLES_KEPT


@pytest.fixture(scope="module")
def cost_report(cost_sweep, tmp_path_factory):
    return write_report(cost_sweep, out_dir=tmp_path_factory.mktemp("report"), answer=False)


def test_the_panel_holds_the_fronts_configurations_against_float32(cost_report):
    panel = read_table(cost_report.dir / "cost_panel.csv")
    front = read_table(cost_report.dir / "pareto_mean.csv")
    base = panel["configuration"].iloc[0]
    assert base.startswith("fp32")
    assert set(panel["configuration"]) == {base, *front["configuration"]}
    ratios = [c for c in panel.columns if c.endswith("_ratio")]
    assert np.allclose(panel.loc[0, ratios].to_numpy(float), 1.0)
    # known arithmetic: w = stored word length; ensemble w/32, bit operations (w/32)²
    w_over_32 = panel["ensemble_bits"] / (SAMPLES_KEPT * PARAMS * 32)
    assert np.allclose(panel["ensemble_bits_ratio"], w_over_32)
    assert np.allclose(panel["bops_per_prediction_ratio"], w_over_32**2)
    assert np.allclose(panel["bops_per_step_ratio"], w_over_32**2)
    assert np.allclose(panel["energy_pj_per_step_ratio"], panel["bops_per_step_ratio"])
    assert np.allclose(panel["peak_rss_mb"], PEAK_RSS_MB)
    assert np.allclose(panel["peak_rss_mb_ratio"], 1.0)
    assert (panel["ensemble_bits_ratio"].iloc[1:] < 1).all()  # every front member is cheaper


def test_all_null_columns_are_left_out_with_a_line(cost_report):
    panel = read_table(cost_report.dir / "cost_panel.csv")
    assert not {"ess", "rhat", "ess_per_s"} & set(panel.columns)
    page = cost_report.index.read_text()
    assert "Costs against float32" in page
    assert "left out, null in every ok trial: ess, rhat, ess_per_s" in page
    assert "ensemble_bits_ratio" in page


def test_no_baseline_no_ratios():
    trials = pd.DataFrame(
        {
            "configuration": ["a", "a", "b"],
            "status": ["ok", "ok", "ok"],
            "ensemble_bits": [4.0, 6.0, 10.0],
            "rhat": [np.nan, np.nan, np.nan],
        }
    )
    panel, notes = cost_panel(trials, ["b", "a"], None)
    assert panel["configuration"].tolist() == ["b", "a"]
    assert panel["ensemble_bits"].tolist() == [10.0, 5.0]
    assert panel["ensemble_bits_ratio"].isna().all()
    assert "rhat" not in panel.columns
    assert any("no ratios" in n for n in notes) and any("rhat" in n for n in notes)
    panel, _ = cost_panel(trials, ["b"], "a")
    assert panel["ensemble_bits_ratio"].tolist() == [1.0, 2.0]


def test_the_cost_objective_is_the_figures_x_axis(cost_sweep, cost_report):
    columns = list(load_sweep(cost_sweep).trials.columns)
    assert bits_axis({"test_error": "min", "ensemble_bits": "min"}, columns) == "ensemble_bits"
    assert bits_axis({"test_error": "min", "bits_per_param": "min"}, columns) == "bits_per_param"
    assert bits_axis({"test_error": "min"}, columns) == "bits"
    names = {p.name for p in cost_report.pngs}
    assert "test_error_vs_ensemble_bits.png" in names
    assert not any(n.endswith(("_vs_bits.png", "_vs_bits_per_param.png")) for n in names)
    assert not any(n.startswith("ensemble_bits_vs") for n in names)  # never a cost vs a cost


def test_a_cost_spanning_decades_gets_a_log_axis(cost_sweep):
    assert plots.axis_scale("bits_per_param", [4, 32]) == "log2"
    assert plots.axis_scale("ensemble_bits", [1e6, 2e7]) == "log"
    assert plots.axis_scale("ensemble_bits", [1e6, 8e6]) == "linear"
    sweep = load_sweep(cost_sweep)
    keys = [k for k in sweep.config_keys if k in sweep.trials.columns]
    # bit operations per prediction span (32/4)² = 64: log; ensemble bits 32/4 = 8: linear
    wide = plots.plot_metric_vs_bits(sweep.trials, "test_error", keys, bits="bops_per_prediction")
    assert wide.axes[0].get_xscale() == "log"
    assert "(log scale)" in wide.axes[0].get_xlabel()
    narrow = plots.plot_metric_vs_bits(sweep.trials, "test_error", keys, bits="ensemble_bits")
    assert narrow.axes[0].get_xscale() == "linear"
    bits = plots.plot_metric_vs_bits(sweep.trials, "test_error", keys, bits="bits_per_param")
    assert bits.axes[0].get_xscale() == "log"  # log2: matplotlib names it "log" too
    assert "(log2 scale)" in bits.axes[0].get_xlabel()
