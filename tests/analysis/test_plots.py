"""Figure helpers: reliability bins, grid-aligned histogram bins, densities, PNG output."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from analysis import plots


def test_reliability_bins_hand_case():
    # 4 bins with exact edges 0.25, 0.5, 0.75; bins are right-closed, (0.25, 0.5] holds 0.5
    probs = np.array([[0.9, 0.05, 0.05], [0.05, 0.05, 0.9], [0.5, 0.25, 0.25], [0.45, 0.3, 0.25]])
    labels = np.array([0, 0, 0, 1])  # correct, wrong (conf 0.9); correct (0.5), wrong (0.45)
    bins = plots.reliability_bins(labels, probs, n_bins=4)
    assert bins["count"].tolist() == [0, 2, 0, 2]
    assert bins["accuracy"].iloc[1] == 0.5 and bins["confidence"].iloc[1] == pytest.approx(0.475)
    assert bins["accuracy"].iloc[3] == 0.5 and bins["confidence"].iloc[3] == pytest.approx(0.9)
    # ECE = (2/4)|0.5 - 0.475| + (2/4)|0.5 - 0.9|; left-closed bins would give 0.4375
    assert plots.expected_calibration_error(bins) == pytest.approx(0.5 * 0.025 + 0.5 * 0.4)


def test_ece_matches_lowprec_metrics():
    metrics = pytest.importorskip("lowprec.metrics")
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (500, 10))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 10, 500)
    ece = plots.expected_calibration_error(plots.reliability_bins(labels, probs, 15))
    assert ece == pytest.approx(metrics.ece(probs, labels), rel=1e-12)


def test_histogram_bins_align_with_a_low_precision_grid():
    step = 1 / 8
    values = np.round(np.random.default_rng(1).normal(0, 1, 5000) / step) * step
    edges = plots.histogram_bins(values, -4.0, 4.0)
    widths = np.diff(edges)
    assert np.allclose(widths, widths[0])
    assert widths[0] / step == pytest.approx(round(widths[0] / step))
    # every grid point sits strictly inside a bin, half a step from the nearest edge or more
    gaps = np.abs(values[:, None] - edges[None, :]).min(axis=1)
    assert gaps.min() == pytest.approx(step / 2)
    # continuous values: plain equal-width bins over [lo, hi]
    smooth = plots.histogram_bins(np.random.default_rng(2).normal(size=5000), -4.0, 4.0)
    assert smooth[0] == -4.0 and smooth[-1] == 4.0 and len(smooth) == 61


@pytest.mark.parametrize("pdf", [plots.gaussian_pdf, plots.mixture_pdf])
def test_target_densities_integrate_to_one(pdf):
    assert integrate.quad(pdf, -12, 12)[0] == pytest.approx(1.0, abs=1e-9)
    scaled = integrate.quad(lambda x: plots.scaled_pdf(pdf, 2.0, x), -30, 30)[0]
    assert scaled == pytest.approx(1.0, abs=1e-9)


def test_figures_save_as_non_blank_pngs(tmp_path):
    trials = pd.DataFrame(
        {
            "trial_id": [f"t{i}" for i in range(6)],
            "status": ["ok", "ok", "ok", "ok", "diverged", "ok"],
            "accumulator": ["full", "low", "vc", "full", "low", "vc"],
            "family": ["fixed", "fixed", "block", "block", "fixed", "fixed"],
            "bits": [4, 4, 8, 8, 4, 8],
            "seed": [0, 0, 0, 0, 1, 1],
            "test_error": [0.2, 0.3, 0.1, 0.12, np.nan, 0.11],
        }
    )
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), 200)
    figures = {
        "bits.png": plots.plot_metric_vs_bits(
            trials, "test_error", ["accumulator", "family", "bits"]
        ),
        "samples.png": plots.plot_sample_histograms(
            {
                "full": [("a", rng.normal(size=(500, 2, 1)))],
                "low": [("b", rng.normal(size=(500, 1, 1)))],
            }
        ),
        "reliability.png": plots.plot_reliability([("x", rng.integers(0, 3, 200), probs)]),
        "hv.png": plots.plot_hypervolume_history(
            pd.DataFrame(
                {
                    "n_trials": [1, 2, 3],
                    "hypervolume": [0.1, 0.1, 0.3],
                    "status": ["ok", "failed", "ok"],
                    "trial_id": ["a", "b", "c"],
                }
            )
        ),
    }
    for name, figure in figures.items():
        path = plots.save(figure, tmp_path / "sub" / name)
        image = mpimg.imread(path)[..., :3]
        assert image.shape[0] > 200 and float(image.std()) > 0.02, name


def test_integer_axes_get_integer_ticks():
    """bits 4, 5, 6, 8 (the default sweep's grid): ticks at whole bits, not 4.5; fractional
    bits_per_param (block formats) keep the default ticks."""
    trials = pd.DataFrame(
        {
            "trial_id": [f"t{i}" for i in range(4)],
            "status": "ok",
            "accumulator": ["low", "low", "vc", "vc"],
            "family": "fixed",
            "bits": [4, 5, 6, 8],
            "bits_per_param": [4.25, 5.25, 6.25, 8.25],
            "test_error": [0.3, 0.2, 0.15, 0.1],
        }
    )
    fig = plots.plot_metric_vs_bits(trials, "test_error", ["accumulator", "family", "bits"])
    for ax in fig.axes:
        ax.get_xlim()
        ticks = ax.get_xticks()
        assert len(ticks) > 1 and np.all(ticks == np.round(ticks)), ticks
        assert "word length" in ax.get_xlabel()
    fig = plots.plot_metric_vs_bits(
        trials, "test_error", ["accumulator", "family", "bits"], bits="bits_per_param"
    )
    assert "storage bits per weight" in fig.axes[0].get_xlabel()
    with pytest.raises(ValueError, match="x-axis itself"):
        plots.plot_metric_vs_bits(trials, "bits", ["accumulator", "family"])
