"""The gaussian workload and the shared batched-chain machinery (workloads/synthetic.py):
the result contract, determinism, resume from a report's state, divergence, clear errors."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from workloads import gaussian
from workloads.base import Diverged, TrialContext
from workloads.config.resolve import resolve_config

SMALL = {"workload": "gaussian", "chains": 16, "steps": 200, "lr": 0.05, "burn_in": 50}


def _run(raw: dict, restored: dict | None = None, reports: list | None = None):
    cfg = resolve_config(raw)
    gen = torch.Generator().manual_seed(cfg["seed"])

    def report(metrics: dict, state: dict | None = None) -> None:
        if reports is not None:
            reports.append((copy.deepcopy(metrics), copy.deepcopy(state)))

    return gaussian.run(cfg, TrialContext(generator=gen, restored=restored, report=report))


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"sampler": "sghmc", "format": "fixed", "bits": 8, "accumulator": "vc"},
        {"format": "block", "bits": 8, "accumulator": "low", "dim": 4},
        {"sampler": "sgd", "temperature": 0.0},
        {"schedule": "cyclical", "cycles": 4, "explore_fraction": 0.5},
    ],
)
def test_result_contract(extra: dict) -> None:
    res = _run({**SMALL, **extra})
    dim = extra.get("dim", 1)
    assert res.samples is not None and res.samples.dtype == np.float32
    assert res.samples.shape[1:] == (16, dim)
    for key in ("mean", "std", "w2", "ks", "ess", "bits", "bits_per_param"):
        assert key in res.metrics
        assert isinstance(res.metrics[key], float | int | bool)
    assert res.labels is None and res.probs is None


def test_samples_are_latest_and_capped() -> None:
    res = _run({**SMALL, "burn_in": 100, "thin": 10, "num_samples": 3})
    assert res.samples.shape == (3, 16, 1)
    assert res.metrics["collected"] == 10  # steps 110, 120, ..., 200
    # the last kept sample is the chains' final state
    last = _run({**SMALL, "burn_in": 100, "thin": 10})
    assert np.array_equal(res.samples[-1], last.samples[-1])
    assert np.array_equal(res.samples, last.samples[-3:])


def test_cyclical_collects_at_cycle_ends() -> None:
    res = _run({**SMALL, "schedule": "cyclical", "cycles": 4, "explore_fraction": 0.5})
    assert res.metrics["collected"] == 4  # one sample at the end of each cycle


def test_same_seed_same_numbers() -> None:
    raw = {**SMALL, "format": "fixed", "bits": 8, "accumulator": "vc"}
    a, b, c = _run(raw), _run(raw), _run({**raw, "seed": 1})
    assert a.metrics == b.metrics and np.array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)


@pytest.mark.parametrize("sampler", ["sgld", "sghmc"])
def test_resume_from_a_report_gives_the_same_result(sampler: str) -> None:
    raw = {
        **SMALL,
        "sampler": sampler,
        "report_every": 60,
        "format": "fixed",
        "bits": 8,
        "accumulator": "low",
        "num_samples": 20,
    }
    reports: list = []
    straight = _run(raw, reports=reports)
    assert [m["step"] for m, _ in reports] == [60, 120, 180]
    assert all("generator" in s for _, s in reports)
    resumed = _run(raw, restored=reports[1][1])
    assert resumed.metrics == straight.metrics
    assert np.array_equal(resumed.samples, straight.samples)


def test_diverges_cleanly() -> None:
    # SGLD on N(0, 1) is unstable for lr > 2: |1 - lr| > 1 multiplies θ every step
    with pytest.raises(Diverged, match="non-finite"):
        _run({**SMALL, "lr": 5.0, "steps": 2000, "init": 1.0})


def test_bits_metrics() -> None:
    res = _run({**SMALL, "format": "block", "bits": 8, "accumulator": "vc", "dim": 4})
    assert res.metrics["bits"] == 8
    assert res.metrics["bits_per_param"] == pytest.approx(8 + 8 / 4)  # one exponent per chain
    full = _run(SMALL)
    assert full.metrics["bits"] == 32 and full.metrics["bits_per_param"] == 32.0


def test_prior_std_has_no_effect() -> None:
    """U is the whole target: prior_std is resolved to None, with the reason, and ignored."""
    from workloads.config.resolve import irrelevant_keys

    raw = {**SMALL, "prior_std": 1.0}
    assert resolve_config(raw)["prior_std"] is None
    assert "no prior" in irrelevant_keys(resolve_config(raw))["prior_std"]
    assert _run(raw).metrics["std"] == _run(SMALL).metrics["std"]


def test_no_samples_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="burn_in"):
        _run({**SMALL, "burn_in": 500})


def test_target_covariance() -> None:
    sigma = gaussian.target_covariance(5, condition=10.0)
    eig = np.linalg.eigvalsh(sigma)
    assert eig.max() / eig.min() == pytest.approx(10.0)
    assert math.prod(eig) == pytest.approx(1.0)  # geometric mean 1
    assert not np.allclose(sigma, np.diag(np.diag(sigma)))  # rotated
    assert np.array_equal(sigma, gaussian.target_covariance(5))  # fixed, not seeded


def test_multivariate_full_precision_moments() -> None:
    # 5-D anisotropic Gaussian, 400 chains × 1500 steps at lr 0.02 (burn-in 500 = 5 relaxation
    # times of the slowest direction, variance sqrt(10) ≈ 3.2: rate lr/3.2 per step).
    # W2 of the fitted Gaussian to the target: a few percent from sampling error and the
    # O(lr) discretisation bias (variances × 1/(1 - lr λ/2) ≤ 1.03); 0.25 is far above both
    # and far below the W2 of a wrong target (the unrotated one is at W2 1.6, N(0, I) at 1.0).
    res = _run(
        {
            "workload": "gaussian",
            "dim": 5,
            "chains": 400,
            "steps": 1500,
            "burn_in": 500,
            "lr": 0.02,
            "thin": 5,
        }
    )
    assert res.metrics["w2"] < 0.25
    assert res.metrics["std_ratio"] == pytest.approx(1.0, abs=0.05)
