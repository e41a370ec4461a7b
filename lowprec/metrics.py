"""Metrics of ensembles and of samples (ALGORITHMS.md §8). NumPy in, Python floats out.

Classification, for probabilities ``probs`` [n, C] (rows sum to 1) and integer ``labels`` [n]:

- error = 1 - mean 1{argmax_c p_ic = y_i}
- nll   = mean -log p_{i, y_i}   (probabilities clipped at 1e-12 so a hard zero stays finite)
- ece   = Σ_b (|B_b|/n) · |acc(B_b) - conf(B_b)| over 15 equal-width bins of the confidence
          max_c p_ic (Guo et al., 2017; bins (0, 1/15], (1/15, 2/15], ...)
- brier = mean Σ_c (p_ic - 1{c = y_i})²  (the multi-class Brier score; in [0, 2])

Distributions, for samples [n] (1-D) or [n, d]:

- w2: 2-Wasserstein distance. 1-D, exact against a distribution with a quantile function:
  W2² = ∫_0^1 (F_n⁻¹(u) - F⁻¹(u))² du with F_n⁻¹ = x_(i) on ((i-1)/n, i/n], which expands to
  (1/n) Σ x_(i)² - 2 Σ x_(i) (G(q_i) - G(q_{i-1})) + E[X²], with q_i = F⁻¹(i/n) and
  G(t) = E[X 1{X <= t}] the partial expectation (closed form for normals and their mixtures).
  d-D Gaussians: ||m1 - m2||² + tr(S1 + S2 - 2 (S2^½ S1 S2^½)^½).
- ks: Kolmogorov–Smirnov statistic sup_x |F_n(x) - F(x)|.
- ess: effective sample size from Geyer's initial monotone sequence estimator, per chain,
  averaged over chains (and coordinates).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import linalg, special, stats

ECE_BINS = 15
_EPS = 1e-12


# ---------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------
def _check_probs(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2:
        raise ValueError(f"probs must be [n, classes], got shape {p.shape}")
    if y.shape != (p.shape[0],):
        raise ValueError(f"labels must be [n] = [{p.shape[0]}], got shape {y.shape}")
    if p.shape[0] == 0:
        raise ValueError("probs and labels are empty")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must lie in [0, {p.shape[1]}), got [{y.min()}, {y.max()}]")
    return p, y.astype(np.int64)


def error(probs: Any, labels: Any) -> float:
    """1 - accuracy of the argmax prediction."""
    p, y = _check_probs(probs, labels)
    return float(np.mean(p.argmax(axis=1) != y))


def nll(probs: Any, labels: Any) -> float:
    """Mean negative log probability of the true label."""
    p, y = _check_probs(probs, labels)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], _EPS, None))))


def ece(probs: Any, labels: Any, bins: int = ECE_BINS) -> float:
    """Expected calibration error over ``bins`` equal-width confidence bins."""
    p, y = _check_probs(probs, labels)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    # bin b holds confidences in (b/B, (b+1)/B]; a confidence of exactly 0 goes to bin 0
    idx = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    n = len(y)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.sum() / n * abs(correct[mask].mean() - conf[mask].mean())
    return float(total)


def brier(probs: Any, labels: Any) -> float:
    """Multi-class Brier score mean Σ_c (p_c - onehot_c)²."""
    p, y = _check_probs(probs, labels)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def classification_metrics(probs: Any, labels: Any, prefix: str = "test_") -> dict[str, float]:
    """``{prefix}error, {prefix}nll, {prefix}ece, {prefix}brier`` of one probs/labels pair."""
    return {
        f"{prefix}error": error(probs, labels),
        f"{prefix}nll": nll(probs, labels),
        f"{prefix}ece": ece(probs, labels),
        f"{prefix}brier": brier(probs, labels),
    }


def entropy(probs: Any) -> np.ndarray:
    """Predictive entropy -Σ_c p_c log p_c per row (nats)."""
    p = np.asarray(probs, dtype=np.float64)
    return -np.sum(special.xlogy(p, p), axis=-1)


def ood_auroc(entropy_in: Any, entropy_out: Any) -> float:
    """AUROC of telling out-of-distribution inputs (positives) from in-distribution ones by
    predictive entropy: P(H_out > H_in) + ½ P(H_out = H_in) (the Mann–Whitney statistic)."""
    h_in = np.asarray(entropy_in, dtype=np.float64).ravel()
    h_out = np.asarray(entropy_out, dtype=np.float64).ravel()
    if h_in.size == 0 or h_out.size == 0:
        raise ValueError("ood_auroc needs at least one in- and one out-of-distribution entropy")
    ranks = stats.rankdata(np.concatenate([h_in, h_out]))  # average ranks handle ties
    rank_sum_out = ranks[h_in.size :].sum()
    u = rank_sum_out - h_out.size * (h_out.size + 1) / 2
    return float(u / (h_in.size * h_out.size))


# ---------------------------------------------------------------------------------------
# reference distributions
# ---------------------------------------------------------------------------------------
class NormalMixture:
    """A 1-D mixture Σ_j w_j N(m_j, s_j²) with the vectorised interface of a scipy frozen
    distribution that the metrics use (``cdf``, ``pdf``, ``ppf``, ``mean``, ``var``, ``std``)
    plus ``partial_expectation`` for the exact W2."""

    def __init__(self, weights: Sequence[float], means: Sequence[float], stds: Sequence[float]):
        self.weights = np.asarray(weights, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        self.stds = np.asarray(stds, dtype=np.float64)
        if not (self.weights.shape == self.means.shape == self.stds.shape):
            raise ValueError("weights, means and stds must have the same length")
        if np.any(self.weights < 0) or not math.isclose(self.weights.sum(), 1.0, rel_tol=1e-9):
            raise ValueError(f"mixture weights must be >= 0 and sum to 1, got {weights}")
        if np.any(self.stds <= 0):
            raise ValueError(f"mixture stds must be > 0, got {stds}")

    def _z(self, x: Any) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64)[..., None] - self.means) / self.stds

    def pdf(self, x: Any) -> np.ndarray:
        return np.sum(self.weights * stats.norm.pdf(self._z(x)) / self.stds, axis=-1)

    def cdf(self, x: Any) -> np.ndarray:
        return np.sum(self.weights * special.ndtr(self._z(x)), axis=-1)

    def partial_expectation(self, t: Any) -> np.ndarray:
        """G(t) = E[X 1{X <= t}] = Σ_j w_j (m_j Φ(z_j) - s_j φ(z_j))."""
        z = self._z(t)
        return np.sum(
            self.weights * (self.means * special.ndtr(z) - self.stds * stats.norm.pdf(z)),
            axis=-1,
        )

    def ppf(self, u: Any) -> np.ndarray:
        """F⁻¹(u) by vectorised bisection (to float64 resolution), ±inf at 0 and 1."""
        u = np.asarray(u, dtype=np.float64)
        lo = np.full(u.shape, np.min(self.means - 40 * self.stds))
        hi = np.full(u.shape, np.max(self.means + 40 * self.stds))
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid) < u
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        out = 0.5 * (lo + hi)
        out = np.where(u <= 0, -np.inf, out)
        return np.where(u >= 1, np.inf, out)

    def mean(self) -> float:
        return float(np.sum(self.weights * self.means))

    def var(self) -> float:
        second = np.sum(self.weights * (self.stds**2 + self.means**2))
        return float(second - self.mean() ** 2)

    def std(self) -> float:
        return math.sqrt(self.var())


def _partial_expectation(dist: Any, t: np.ndarray) -> np.ndarray | None:
    """G(t) = E[X 1{X <= t}] in closed form, or None when unknown for ``dist``."""
    if hasattr(dist, "partial_expectation"):
        return np.asarray(dist.partial_expectation(t), dtype=np.float64)
    name = getattr(getattr(dist, "dist", None), "name", None)
    if name == "norm":
        m, s = float(dist.mean()), float(dist.std())
        z = (t - m) / s
        with np.errstate(invalid="ignore"):
            g = m * special.ndtr(z) - s * stats.norm.pdf(z)
        return np.where(np.isneginf(t), 0.0, np.where(np.isposinf(t), m, g))
    return None


# ---------------------------------------------------------------------------------------
# distribution metrics
# ---------------------------------------------------------------------------------------
def _flat1d(samples: Any) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no samples")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain non-finite values")
    return x


def mean(samples: Any) -> float:
    """Sample mean of all values."""
    return float(np.mean(_flat1d(samples)))


def std(samples: Any) -> float:
    """Sample standard deviation (ddof 0) of all values."""
    return float(np.std(_flat1d(samples)))


def w2(samples: Any, dist: Any) -> float:
    """Exact 1-D 2-Wasserstein distance between the empirical law of ``samples`` (pooled) and
    ``dist`` (a scipy frozen distribution or :class:`NormalMixture`).

    W2² = (1/n) Σ x_(i)² - 2 Σ x_(i) ∫_{(i-1)/n}^{i/n} F⁻¹(u) du + E[X²]; the inner integrals
    are G(F⁻¹(i/n)) - G(F⁻¹((i-1)/n)) with G the partial expectation (normals and their
    mixtures). Other distributions fall back to the midpoint rule F⁻¹((i - ½)/n), which is
    not exact (error O(1/n) from the tails).
    """
    x = np.sort(_flat1d(samples))
    n = x.size
    second = float(dist.var()) + float(dist.mean()) ** 2
    q = dist.ppf(np.arange(n + 1) / n)
    g = _partial_expectation(dist, np.asarray(q, dtype=np.float64))
    if g is None:
        mid = dist.ppf((np.arange(n) + 0.5) / n)
        return float(math.sqrt(np.mean((x - mid) ** 2)))
    inner = np.diff(g)
    w2sq = np.mean(x**2) - 2.0 * np.sum(x * inner) + second
    return float(math.sqrt(max(w2sq, 0.0)))


def w2_gaussian(mean1: Any, cov1: Any, mean2: Any, cov2: Any) -> float:
    """Closed-form W2 between N(mean1, cov1) and N(mean2, cov2):
    W2² = ||m1 - m2||² + tr(S1 + S2 - 2 (S2^½ S1 S2^½)^½)."""
    m1 = np.atleast_1d(np.asarray(mean1, dtype=np.float64))
    m2 = np.atleast_1d(np.asarray(mean2, dtype=np.float64))
    s1 = np.atleast_2d(np.asarray(cov1, dtype=np.float64))
    s2 = np.atleast_2d(np.asarray(cov2, dtype=np.float64))
    if not (m1.shape == m2.shape and s1.shape == s2.shape == (m1.size, m1.size)):
        raise ValueError(
            f"w2_gaussian: shapes do not match: {m1.shape}, {s1.shape}, {m2.shape}, {s2.shape}"
        )
    r2 = np.real(linalg.sqrtm(s2))
    cross = np.real(linalg.sqrtm(r2 @ s1 @ r2))
    w2sq = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2.0 * cross)
    return float(math.sqrt(max(float(w2sq), 0.0)))


def w2_gaussian_samples(samples: Any, mean_ref: Any, cov_ref: Any) -> float:
    """W2 between the Gaussian with the moments of ``samples`` [n, d] and N(mean_ref, cov_ref)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x.reshape(x.shape[0], -1) if x.ndim > 1 else x[:, None]
    return w2_gaussian(
        x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False, bias=True)), mean_ref, cov_ref
    )


def ks(samples: Any, dist: Any) -> float:
    """Kolmogorov–Smirnov statistic D = max_i max(i/n - F(x_(i)), F(x_(i)) - (i-1)/n)."""
    x = np.sort(_flat1d(samples))
    n = x.size
    f = np.asarray(dist.cdf(x), dtype=np.float64)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


def _ess_chain(x: np.ndarray) -> float:
    """ESS of one chain: n / τ, τ = -1 + 2 Σ_{m} Γ_m with Γ_m = ρ_{2m} + ρ_{2m+1} summed while
    positive and made monotone (Geyer 1992, the initial monotone sequence estimator)."""
    n = x.size
    if n < 4:
        return float(n)
    x = x - x.mean()
    var = np.dot(x, x) / n
    if var <= 0:
        return float(n)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(x, size)
    acov = np.fft.irfft(f * np.conj(f), size)[:n] / n
    rho = acov / var
    pairs = rho[: 2 * (n // 2)].reshape(-1, 2).sum(axis=1)  # Γ_m = ρ_2m + ρ_2m+1
    positive = pairs > 0
    stop = int(np.argmin(positive)) if not positive.all() else pairs.size
    gamma = np.minimum.accumulate(pairs[:stop]) if stop > 0 else pairs[:0]
    tau = -1.0 + 2.0 * float(np.sum(gamma))
    tau = max(tau, 1.0 / math.log10(max(n, 10)))  # Stan's cap on super-efficiency
    return float(n / tau)


def ess(samples: Any) -> float:
    """Effective sample size per chain, averaged over chains (and coordinates).

    ``samples``: [n] (one chain), [n, chains] or [n, chains, dim], time along axis 0.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    x = x.reshape(x.shape[0], -1)
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain non-finite values")
    return float(np.mean([_ess_chain(x[:, j]) for j in range(x.shape[1])]))
