"""Metrics (ALGORITHMS.md §8): known answers, and the exact W2 against numerical integration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from sklearn.metrics import roc_auc_score

from lowprec import metrics as lm

PROBS = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3], [0.2, 0.8]])
LABELS = np.array([0, 0, 1, 1])


def test_classification_known_answers() -> None:
    # predictions 0, 1, 0, 1 -> wrong on examples 1 and 2
    assert lm.error(PROBS, LABELS) == 0.5
    nll = -(math.log(0.9) + math.log(0.4) + math.log(0.3) + math.log(0.8)) / 4
    assert lm.nll(PROBS, LABELS) == pytest.approx(nll)
    brier = ((0.1**2 * 2) + (0.6**2 * 2) + (0.7**2 * 2) + (0.2**2 * 2)) / 4
    assert lm.brier(PROBS, LABELS) == pytest.approx(brier)
    # confidences 0.9, 0.6, 0.7, 0.8 fall in 15 bins (b/15, (b+1)/15]: 0.9 -> bin 13,
    # 0.6 -> bin 8, 0.7 -> bin 10, 0.8 -> bin 11; each bin holds one example:
    # |acc - conf| = 0.1, 0.6, 0.7, 0.2 -> ECE = 1.6/4
    assert lm.ece(PROBS, LABELS) == pytest.approx(1.6 / 4)


def test_ece_pools_a_bin() -> None:
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.05, 0.95], [0.95, 0.05]])
    labels = np.array([0, 1, 1, 0])  # all in the top bin: accuracy 3/4, confidence 0.95
    assert lm.ece(probs, labels) == pytest.approx(0.2)


def test_classification_metrics_prefix() -> None:
    out = lm.classification_metrics(PROBS, LABELS, prefix="last_test_")
    assert set(out) == {"last_test_error", "last_test_nll", "last_test_ece", "last_test_brier"}
    assert all(isinstance(v, float) for v in out.values())


@pytest.mark.parametrize(
    ("probs", "labels", "match"),
    [
        (np.ones(4), LABELS, "probs must be"),
        (PROBS, LABELS[:3], "labels must be"),
        (PROBS, np.array([0, 1, 2, 0]), "labels must lie"),
        (PROBS, LABELS.astype(float), "integers"),
    ],
)
def test_classification_bad_input(probs: np.ndarray, labels: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        lm.error(probs, labels)


def test_ood_auroc_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    h_in, h_out = rng.normal(0, 1, 200), rng.normal(0.7, 1, 150)
    h_out[:10] = h_in[:10]  # ties
    expected = roc_auc_score(np.r_[np.zeros(200), np.ones(150)], np.r_[h_in, h_out])
    assert lm.ood_auroc(h_in, h_out) == pytest.approx(expected)
    assert lm.ood_auroc([0.0, 0.1], [1.0, 2.0]) == 1.0


def test_entropy() -> None:
    assert lm.entropy(np.array([[0.5, 0.5], [1.0, 0.0]])) == pytest.approx([math.log(2), 0.0])


def _w2_quad(samples: np.ndarray, ppf) -> float:
    """∫_0^1 (F_n⁻¹(u) - F⁻¹(u))² du by adaptive quadrature on each piece ((i-1)/n, i/n]."""
    x = np.sort(samples)
    n = len(x)
    total = 0.0
    for i in range(n):
        val, _ = integrate.quad(
            lambda u, xi=x[i]: (xi - ppf(u)) ** 2, i / n, (i + 1) / n, limit=200
        )
        total += val
    return math.sqrt(total)


def test_w2_exact_single_point() -> None:
    # one sample at a: W2² = ∫ (a - Φ⁻¹(u))² du = a² + 1
    assert lm.w2(np.array([0.0]), stats.norm()) == pytest.approx(1.0, abs=1e-12)
    assert lm.w2(np.array([2.0]), stats.norm()) == pytest.approx(math.sqrt(5.0), abs=1e-12)


def test_w2_normal_matches_quadrature() -> None:
    x = np.random.default_rng(1).normal(0.3, 1.4, 7)
    ref = stats.norm(0.5, 2.0)
    assert lm.w2(x, ref) == pytest.approx(_w2_quad(x, ref.ppf), rel=1e-6)


def test_w2_mixture_matches_quadrature() -> None:
    mix = lm.NormalMixture([1 / 3, 2 / 3], [-1.5, 1.5], [0.5, 0.5])
    x = np.random.default_rng(2).normal(0.5, 1.5, 6)
    assert lm.w2(x, mix) == pytest.approx(_w2_quad(x, lambda u: float(mix.ppf(u))), rel=1e-6)


def test_w2_converges_for_target_samples() -> None:
    # samples of the target itself: W2 -> 0 (O(n^-1/2) up to logs); n = 10^5 gives ~0.01
    x = np.random.default_rng(3).normal(size=100_000)
    assert lm.w2(x, stats.norm()) < 0.03


def test_normal_mixture_functions() -> None:
    mix = lm.NormalMixture([1 / 3, 2 / 3], [-1.5, 1.5], [0.5, 0.5])
    u = np.array([0.01, 0.3, 0.5, 0.9])
    assert mix.cdf(mix.ppf(u)) == pytest.approx(u, abs=1e-12)
    assert mix.mean() == pytest.approx(0.5)
    assert mix.var() == pytest.approx(0.25 + 2.25 - 0.25)
    for t in (-1.0, 0.0, 2.0):
        g, _ = integrate.quad(lambda s: s * float(mix.pdf(s)), -20, t)
        assert float(mix.partial_expectation(t)) == pytest.approx(g, abs=1e-9)
    with pytest.raises(ValueError, match="sum to 1"):
        lm.NormalMixture([0.5, 0.6], [0, 1], [1, 1])


def test_w2_gaussian_closed_form() -> None:
    # 1-D: (m1 - m2)² + (s1 - s2)²
    assert lm.w2_gaussian([1.0], [[4.0]], [0.0], [[1.0]]) == pytest.approx(math.sqrt(2.0))
    # commuting (diagonal) covariances: Σ (m1 - m2)² + Σ (√a - √b)²
    w = lm.w2_gaussian([0, 0], np.diag([1.0, 9.0]), [0, 1], np.diag([4.0, 1.0]))
    assert w == pytest.approx(math.sqrt(1 + 1 + 4))
    with pytest.raises(ValueError, match="shapes"):
        lm.w2_gaussian([0, 0], np.eye(2), [0], np.eye(1))


def test_ks_matches_scipy() -> None:
    x = np.random.default_rng(4).normal(0.1, 1, 500)
    assert lm.ks(x, stats.norm()) == pytest.approx(stats.kstest(x, "norm").statistic)


def test_ess_iid_and_ar1() -> None:
    rng = np.random.default_rng(5)
    n, chains = 10_000, 20
    iid = rng.normal(size=(n, chains))
    # iid: ESS = n. The estimator's relative error per chain is about sqrt(2(2W+1)/n) for a
    # window of W lags (W ~ 5 here): ~0.05; averaged over 20 chains ~0.01: 5% is ~5 SE.
    assert lm.ess(iid) == pytest.approx(n, rel=0.05)
    # AR(1) x_t = ρ x_{t-1} + sqrt(1-ρ²) ε_t: τ = (1+ρ)/(1-ρ) = 3 at ρ = 0.5; ESS = n/3.
    # Window W ~ 15 lags: per-chain error ~ sqrt(2·31/n) ≈ 0.08, averaged ~0.02: 10% is 5 SE.
    rho = 0.5
    x = np.zeros((n, chains))
    eps = rng.normal(size=(n, chains)) * math.sqrt(1 - rho**2)
    x[0] = rng.normal(size=chains)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + eps[t]
    assert lm.ess(x) == pytest.approx(n / 3, rel=0.10)
    assert lm.ess(x[:, :, None]) == lm.ess(x)


def test_mean_std() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert lm.mean(x) == 2.5
    assert lm.std(x) == pytest.approx(np.std([1, 2, 3, 4]))
    with pytest.raises(ValueError, match="non-finite"):
        lm.std([1.0, float("nan")])
