"""Reading a sweep directory back: trials, spec, format families, predictions, samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.load import (
    NoTrials,
    check_metrics,
    format_family,
    load_predictions,
    load_samples,
    load_sweep,
    objectives_from_spec,
    parse_objectives,
    reference_from_spec,
    trial_order,
)
from analysis.plots import expected_calibration_error, reliability_bins
from tests.analysis.sweep_fixture import N_CLASSES, N_TEST, classification_metrics


def test_load_sweep_reads_trials_spec_and_config_keys(classifier_sweep):
    sweep = load_sweep(classifier_sweep)
    assert sweep.name == "bits"
    assert sweep.objectives == {"test_error": "min", "bits": "min"}
    trials = sweep.trials
    assert len(trials) == 2 * (1 + 3 * 3 * 3)
    assert set(trials["status"]) == {"ok", "diverged", "failed"}
    assert "seed" not in sweep.config_keys and "device" not in sweep.config_keys
    assert {"format", "bits", "accumulator", "weight_format", "lr"} <= set(sweep.config_keys)
    assert not {"test_error", "status", "trial_id", "wall_s"} & set(sweep.config_keys)
    fp32 = trials[trials["format"] == "fp32"]
    assert set(fp32["family"]) == {"fp32"}
    assert set(trials.loc[trials["format"] == "block", "family"]) == {"block"}


@pytest.mark.parametrize(
    ("weight_format", "fmt", "family"),
    [
        ("fixed<8,3>", "fp32", "fixed"),  # weight_format wins
        (None, "block", "block"),
        (None, "float<5,2>", "float"),
        (np.nan, "block<8,32>", "block"),
        (None, None, "fp32"),
        ("FP32", None, "fp32"),
        ("fp8_e4m3", None, "fp8"),
        (None, "fp4_e2m1", "fp4"),
        ("mx<fp4_e2m1>", "mx", "mx"),
        ("mx<int8,16>", None, "mx"),
        ("nvfp4<t>", None, "nvfp4"),
        ("int<4,g32>", "int", "int"),
    ],
)
def test_format_family(weight_format, fmt, family):
    assert format_family(weight_format, fmt) == family


def test_format_family_rejects_unknown_strings():
    with pytest.raises(ValueError, match="posit<8,1>"):
        format_family("posit<8,1>", None)


def test_no_trials_parquet_is_a_clear_error(tmp_path):
    with pytest.raises(NoTrials, match=r"no trials\.parquet"):
        load_sweep(tmp_path)


def test_predictions_round_trip_and_reported_metrics_recompute(classifier_sweep):
    sweep = load_sweep(classifier_sweep)
    ok = sweep.trials[sweep.trials["status"] == "ok"]
    row = ok.iloc[3]
    labels, probs = load_predictions(classifier_sweep, row["trial_id"])
    assert labels.shape == (N_TEST,) and probs.shape == (N_TEST, N_CLASSES)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    recomputed = classification_metrics(labels, probs)
    for metric, value in recomputed.items():
        assert row[metric] == pytest.approx(value, rel=1e-6)
    # the reliability diagram's bins (searchsorted) and the fixture's (ceil) give the same ECE
    ece = expected_calibration_error(reliability_bins(labels, probs, 15))
    assert ece == pytest.approx(row["test_ece"], rel=1e-6)
    failed = sweep.trials[sweep.trials["status"] == "failed"].iloc[0]
    with pytest.raises(FileNotFoundError, match="no predictions"):
        load_predictions(classifier_sweep, failed["trial_id"])


def test_samples_round_trip(gaussian_sweep):
    sweep = load_sweep(gaussian_sweep)
    row = sweep.trials.iloc[0]
    x = load_samples(gaussian_sweep, row["trial_id"])
    assert x.shape == (4000, 1, 1) and x.dtype == np.float32
    assert float(x.std()) == pytest.approx(row["std"], rel=1e-5)


def test_parse_objectives():
    assert parse_objectives("test_error:min, bits:min") == {"test_error": "min", "bits": "min"}
    assert parse_objectives("ood_auroc:max") == {"ood_auroc": "max"}
    for bad in ("test_error", "test_error:lowest", "", ":min"):
        with pytest.raises(ValueError, match="objectives"):
            parse_objectives(bad)


def test_spec_reference_is_not_an_objective():
    spec = {
        "objectives": {
            "test_error": "min",
            "bits": "min",
            "reference": {"test_error": 1.0, "bits": 32},
        }
    }
    assert objectives_from_spec(spec) == {"test_error": "min", "bits": "min"}
    assert reference_from_spec(spec) == {"test_error": 1.0, "bits": 32.0}
    assert reference_from_spec({"objectives": {"w2": "min"}}) is None
    with pytest.raises(ValueError, match=r"objectives\.w2"):
        objectives_from_spec({"objectives": {"w2": "smallest"}})


def test_trial_order_natural_and_by_start_time():
    frame = pd.DataFrame({"trial_id": ["t_10", "t_2", "t_1"], "status": ["ok"] * 3})
    assert trial_order(frame)["trial_id"].tolist() == ["t_1", "t_2", "t_10"]
    frame["start_time"] = [1.0, 3.0, 2.0]
    assert trial_order(frame)["trial_id"].tolist() == ["t_10", "t_1", "t_2"]


def test_check_metrics_agrees_on_the_fixture(classifier_sweep, gaussian_sweep):
    """The fixture computes its metrics independently of lowprec.metrics (sweep_fixture.py);
    both implement ALGORITHMS.md §8, so they agree to float64 rounding."""
    pytest.importorskip("lowprec.metrics")
    checked = check_metrics(load_sweep(classifier_sweep))
    assert set(checked["metric"]) == {"test_error", "test_nll", "test_ece", "test_brier"}
    assert len(checked) == 4 * 53
    assert checked["abs_diff"].max() < 1e-9
    checked = check_metrics(load_sweep(gaussian_sweep))
    assert set(checked["metric"]) == {"mean", "std"}
    assert checked["abs_diff"].max() < 1e-6  # float32 samples, summed in float64 either way
