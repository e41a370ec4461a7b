"""Each workload's defaults give a sensible trial on their own."""

from __future__ import annotations

import pytest

from orchestrator.trial import run_trial


@pytest.mark.parametrize(
    ("workload", "check"),
    [
        # N(0, 1) from 10,000 steps at lr 1e-3 (one chain, ~5 time units of correlation)
        ("gaussian", lambda m: abs(m["std"] - 1.0) < 0.35 and m["samples"] == 10_000),
        # breast cancer, prior N(0, 1): a few percent test error
        ("logreg", lambda m: m["test_error"] < 0.1),
    ],
)
def test_fast_workloads_run_with_their_defaults(workload: str, check) -> None:
    result = run_trial({"workload": workload, "device": "cpu", "kernels": "eager"})
    assert result.status == "ok", result.error
    assert check(result.metrics), result.metrics


@pytest.mark.slow
def test_mnist_mlp_defaults_reach_the_readme_figure() -> None:
    """`python -m orchestrator.trial workload=mnist_mlp` alone: the README's float32 settings
    (lr 0.1, T 0.01, prior_std 1, batch 64, 10 epochs, burn-in 5) give 6.7% test error."""
    result = run_trial({"workload": "mnist_mlp", "device": "cpu"})
    assert result.status == "ok", result.error
    assert result.metrics["test_error"] < 0.09, result.metrics


@pytest.mark.slow
def test_mixture_defaults_find_both_modes() -> None:
    """One chain, 50,000 steps at lr 0.05 (relaxation ~1,000 steps between the modes): the
    right mode's weight is 2/3; ~46 independent visits give an SE of ~0.07, so 0.25 is > 3 SE."""
    result = run_trial({"workload": "mixture", "device": "cpu", "kernels": "eager"})
    assert result.status == "ok", result.error
    assert abs(result.metrics["weight_right"] - 2 / 3) < 0.25, result.metrics


def test_cifar_defaults_are_the_papers_and_missing_data_is_named(tmp_path) -> None:
    """ALGORITHMS.md §10: batch 128, lr 0.5, T 0.001, decay, weight decay 5e-4 (σ = 0.2 at
    N = 50,000), 245 epochs with the last 50 collected; without the files, DataUnavailable."""
    from workloads.base import DataUnavailable
    from workloads.config.trialspec import TrialSpec

    trial = TrialSpec.from_config({"workload": "cifar_resnet18"})
    assert (trial.run.batch_size, trial.run.epochs, trial.run.burn_in) == (128, 245, 195)
    assert (trial.schedule.lr, trial.schedule.kind, trial.sampler.temperature) == (
        0.5,
        "decay",
        0.001,
    )
    assert abs(1 / (50_000 * trial.sampler.prior_std**2) - 5e-4) < 1e-12
    with pytest.raises(DataUnavailable, match=str(tmp_path)):
        run_trial({"workload": "cifar_resnet18", "device": "cpu", "data_dir": str(tmp_path)})
