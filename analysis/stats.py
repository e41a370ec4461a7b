"""Confidence intervals, paired differences and verdicts of configurations (ALGORITHMS.md §12).

NumPy and SciPy only. Everything is vectorised over configurations, seeds and resamples: the
resamples are matrices of weights, never a Python loop.

The data
--------
A configuration c is the set of trials that differ only in ``seed``. Its trials are scored on
one test set of N examples shared by every seed and every configuration. For an objective with
a per-example loss ℓ (``test_error``: 1[argmax p ≠ y]; ``test_nll``: -log p_y; ``test_brier``:
Σ_k (p_k - 1[k = y])²) the stored predictions give the matrix L_c[s, i] = ℓ of seed s on
example i, and the configuration's figure is ē_c = (1/n) Σ_s m_cs, m_cs = (1/N) Σ_i L_c[s, i].

Two noise sources (crossed: every seed sees every example)
----------------------------------------------------------
The seeds are a sample of training runs and the test set a sample of examples; the
Hoeffding decomposition of a crossed design gives

    Var(ē_c) = σ²_seed / n + σ²_test / N + σ²_res / (n N).

The two-way ANOVA mean squares estimate the terms without bias:

    MS_seed = N Σ_s (m_s - ē)² / (n - 1)                 E = σ²_res + N σ²_seed
    MS_test = n Σ_i (q_i - ē)² / (N - 1)                 E = σ²_res + n σ²_test
    MS_res  = Σ_si (L_si - m_s - q_i + ē)² / ((n-1)(N-1))   E = σ²_res

with q_i = (1/n) Σ_s L_si the seed-averaged loss of example i. In what the data show:

    A = s²_m / n = MS_seed / (nN)   the seed means' spread (σ²_seed/n + σ²_res/(nN)),
    E = MS_test / (nN)              the test set's noise of the seed-averaged losses
                                    (σ²_test/N + σ²_res/(nN)),
    B = MS_res / (nN)               the residual term, inside both,
    V = Var(ē) ≈ A + max(E - B, 0).

A is the t-interval's variance over seed means; E - B = σ²_test/N is the test set's noise that
every seed shares, which A misses: a t-interval over the seed means alone under-covers (at 3
seeds and 1,000 test images, about 0.89 instead of 0.95 in tests/analysis/test_stats.py's
simulations). When the seed means coincide exactly (A = 0: error counts are whole numbers, two
seeds can score the same) B, A's expectation without a seed effect, stands in for A, so that no
interval has zero width by accident.

The bootstrap (two parts, independent, resampled jointly for all configurations)
--------------------------------------------------------------------------------
Each resample r draws

- example weights w_r ~ Multinomial(N; 1/N, ..., 1/N), one draw shared by every trial (the
  test set is shared, so paired comparisons resample the same examples), and
- seed weights v_r ~ Multinomial(S; 1/S, ...) over the S seed *values* of the sweep, shared by
  every configuration (seeds matched by value).

The test part of configuration c is T*_c = (1/n) Σ_s [X_cs(w_r) - X_cs], X_cs(w) the trial's
statistic on the reweighted test set (Σ_i w_i L_c[s, i] / N for an additive loss, one matrix
product for all trials; the ECE of the reweighted examples for ``test_ece``). Its variance
over the resamples estimates E; in the resampled means it is scaled to variance E - B (the
shared part: A already holds the residual, which a plain two-way "pigeonhole" bootstrap
counts twice). Statistics without a per-example form (ECE) take B = 0 (conservative).

The seed part is S*_c = √(n_c / (n_c - 1)) Σ_s v_rs δ_cs / n_c with δ_cs = m_cs - ē_c (0 for
a seed the configuration lacks); its variance is exactly Σ_s δ_cs² / (n_c (n_c - 1)) = A (the
factor undoes the bootstrap's (n-1)/n bias), used in closed form.

The interval
------------
With 3 seeds a percentile interval of the resamples cannot cover at 95 %: a bootstrap of 3
values has 10 distinct outcomes and normal tails, while A is estimated with 2 degrees of
freedom. The interval is therefore studentized with Satterthwaite's degrees of freedom:

    ē ± t_{ν, 0.975} √V,   ν = V² / (A² / (n - 1) + max(E - B, 0)² / (N - 1)),

which is the classical t_{n-1} when the test set's shared part is negligible and tends to the
normal quantile when it dominates. Chosen over alternatives (truncating A - B at 0, a floor at
B) by simulation of means and paired differences over seed effects of 0 to 2 points, example
difficulty on and off, 2, 3 and 10 seeds: coverage 0.93-0.95 with 3 seeds, 0.94-0.95 with 10
(2 seeds: 0.91-0.94).

Methods (reported with every figure):

- ``two-way``: predictions stored, n ≥ 2 seeds: both parts;
- ``test-set only``: predictions stored, one seed: A cannot be estimated, V = E, ν = N - 1; the
  interval counts the test set only (it says so);
- ``t over seeds``: no predictions (or a metric without a per-example form): the classical
  t-interval over seed values, ē ± t_{n-1} s_m / √n, which misses the shared test set's noise;
- ``none``: one seed and no predictions: no interval.

Differences against a baseline b
--------------------------------
d_c = ē_c - ē_b is computed on the seeds both ran (matched by value) and on the same examples:
the matrix D[s, i] = L_c[s, i] - L_b[s, i] goes through the same decomposition, so the shared
test-set noise cancels in D and only what differs remains. Without common seeds the difference
is unpaired on seeds: V_seed = V_seed,c + V_seed,b (Welch), still paired on examples.

McNemar's exact test (error only) is a second opinion: with b01 the examples the baseline gets
right and c wrong (seed-majority vote) and b10 the reverse, p = binomtest(b01, b01 + b10, 1/2).

Verdicts (ALGORITHMS.md §12, two one-sided tests at α = 0.05), tolerance τ > 0, d in the
objective's own units, "worse" meaning d > 0 for an objective to minimise (d < 0 to maximise):

- ``equivalent``: the 90 % CI of d lies inside (-τ, +τ);
- ``worse``: not equivalent and the 95 % CI of d lies entirely on the worse side of 0 (so its
  far end is beyond τ: a loss bigger than the tolerance cannot be ruled out and no loss at all
  is ruled out);
- ``better``: the same on the better side;
- ``inconclusive``: otherwise (too few seeds or test examples to tell), and always when the
  objective has no tolerance.

Front probability: the fraction of resamples in which a configuration is on the Pareto front of
the objectives (resampled means) and the cost (fixed per configuration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

#: interval levels: the reported CIs, and the equivalence test's (two one-sided tests at 5 %)
LEVEL = 0.95
EQUIVALENCE_LEVEL = 0.90

#: metrics with a per-example loss computed from stored probabilities
ADDITIVE = ("test_error", "test_nll", "test_brier")
#: metrics computed from stored probabilities without a per-example form (resampled directly)
RESAMPLED = ("test_ece",)

TWO_WAY = "two-way"
TEST_ONLY = "test-set only"
T_SEEDS = "t over seeds"
NO_INTERVAL = "none"

#: what each method counts, for the reader
METHOD_TEXT = {
    TWO_WAY: "two-way bootstrap over seeds and test examples, mean ± t_ν·SE",
    TEST_ONLY: "bootstrap over test examples only: one seed, so seed-to-seed variation is "
    "not counted",
    T_SEEDS: "t-interval over seeds (no stored predictions): the shared test set's noise is "
    "not counted",
    NO_INTERVAL: "no interval: one seed and no stored predictions",
}

VERDICTS = ("baseline", "better", "equivalent", "inconclusive", "worse", "failed")

_EPS = 1e-12
ECE_BINS = 15


# ------------------------------------------------------------------------------------------------
# per-example losses
# ------------------------------------------------------------------------------------------------


def per_example(metric: str, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """ℓ_i of an additive metric (see :data:`ADDITIVE`) for ``probs`` [..., N, K] and ``labels``
    [N]: error 1[argmax p ≠ y], NLL -log max(p_y, 1e-12), Brier Σ_k (p_k - 1[k = y])²; float32
    [..., N]."""
    p = np.asarray(probs)
    y = np.asarray(labels).astype(np.int64)
    p_y = np.take_along_axis(p, np.broadcast_to(y[..., None], (*p.shape[:-1], 1)), -1)[..., 0]
    if metric == "test_error":
        return (p.argmax(axis=-1) != y).astype(np.float32)
    if metric == "test_nll":
        return (-np.log(np.clip(p_y.astype(np.float64), _EPS, None))).astype(np.float32)
    if metric == "test_brier":
        sq = np.einsum("...k,...k->...", p, p, dtype=np.float64)
        return (sq - 2.0 * p_y + 1.0).astype(np.float32)
    raise ValueError(f"metric {metric!r}: no per-example loss (have {', '.join(ADDITIVE)})")


def ece_parts(labels: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS):
    """For the ECE of reweighted examples: each example's bin (15 equal-width confidence bins,
    (b/B, (b+1)/B]) and gap g_i = 1[correct] - confidence, so that
    ECE(w) = Σ_b |Σ_{i in b} w_i g_i| / Σ_i w_i (ALGORITHMS.md §8)."""
    p = np.asarray(probs)
    conf = p.max(axis=-1)
    correct = p.argmax(axis=-1) == np.asarray(labels)
    index = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    return index, (correct - conf).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# resampling weights
# ------------------------------------------------------------------------------------------------


def multinomial_counts(rng: np.random.Generator, resamples: int, n: int) -> np.ndarray:
    """[resamples, n] float32: row r counts how often each of n items is drawn in n draws with
    replacement (a Multinomial(n; 1/n, ...) vector), made with one bincount per chunk."""
    out = np.empty((resamples, n), dtype=np.float32)
    chunk = max(1, 4_000_000 // max(n, 1))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        draws = rng.integers(0, n, size=(rows, n), dtype=np.int32).astype(np.int64)
        draws += (np.arange(rows, dtype=np.int64) * n)[:, None]
        out[start : start + rows] = np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n)
    return out


# ------------------------------------------------------------------------------------------------
# the crossed decomposition
# ------------------------------------------------------------------------------------------------


@dataclass
class Decomposition:
    """Per configuration (leading axis C): mean ē, seed count n, seed means m [C, S] (NaN for
    a missing seed), MS_seed, MS_res (NaN when unknown) and N."""

    mean: np.ndarray
    n: np.ndarray
    seed_means: np.ndarray
    ms_seed: np.ndarray
    ms_res: np.ndarray
    n_test: int


def decompose(losses: np.ndarray) -> Decomposition:
    """The ANOVA of :mod:`analysis.stats` (module docstring) of ``losses`` [C, S, N], a missing
    seed being a row of NaN. Vectorised over C; float64 accumulation."""
    L = np.asarray(losses, dtype=np.float64)
    present = ~np.isnan(L[:, :, 0])
    n = present.sum(axis=1)
    N = L.shape[2]
    m = L.mean(axis=2)  # NaN rows stay NaN
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(present, m, 0.0).sum(axis=1) / n
        q = np.nansum(L, axis=1) / n[:, None]
        dev = m - mean[:, None]
        ms_seed = N * np.nansum(dev**2, axis=1) / (n - 1)
        resid = L - m[:, :, None] - q[:, None, :] + mean[:, None, None]
        ms_res = np.nansum(resid**2, axis=(1, 2)) / ((n - 1) * (N - 1))
    ms_seed = np.where(n >= 2, ms_seed, np.nan)
    ms_res = np.where(n >= 2, ms_res, np.nan)
    return Decomposition(mean, n, m, ms_seed, ms_res, N)


# ------------------------------------------------------------------------------------------------
# intervals from observed per-trial values and resampled test parts
# ------------------------------------------------------------------------------------------------


@dataclass
class Estimate:
    """Per configuration: ``mean``, ``lo``/``hi`` (the ``level`` interval), ``se``, ``df``,
    the resampled means ``draws`` [R, C] (for front probabilities), ``n`` seeds, ``method``
    (one of :data:`METHOD_TEXT`'s keys), and the variance parts ``v_seed`` (A) and ``v_test``
    (max(E - B, 0))."""

    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    se: np.ndarray
    df: np.ndarray
    draws: np.ndarray
    n: np.ndarray
    method: np.ndarray
    v_test: np.ndarray
    v_seed: np.ndarray

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) at another ``level`` from the same SE and degrees of freedom."""
        return _interval(self.mean, self.se, self.df, level)


def _interval(mean, se, df, level):
    with np.errstate(invalid="ignore"):
        t = sps.t.ppf(0.5 + level / 2, np.where(df > 0, df, np.nan))
    half = np.where(se == 0, 0.0, t * se)
    return mean - half, mean + half


def estimate(
    values: np.ndarray,
    test_draws: np.ndarray | None,
    seed_weights: np.ndarray,
    n_test: int | None,
    ms_res: np.ndarray | None = None,
    level: float = LEVEL,
) -> Estimate:
    """Means, intervals and resampled means of C configurations.

    ``values`` [C, S]: the per-trial statistic X_cs (NaN for a seed the configuration lacks).
    ``test_draws`` [R, C, S]: X_cs on the reweighted test set of resample r (NaN where
    missing), or None without predictions. ``seed_weights`` [R, S]. ``ms_res`` [C]: MS_res of the
    decomposition (None or NaN: unknown, B = 0). See the module docstring for the formulas.
    """
    X = np.asarray(values, dtype=np.float64)
    present = ~np.isnan(X)
    n = present.sum(axis=1)
    R = seed_weights.shape[0]
    several = n >= 2
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(X, axis=1) / np.maximum(n, 1), np.nan)
        delta = np.where(present, X - mean[:, None], 0.0)
        a = np.where(several, (delta**2).sum(axis=1) / (n * np.maximum(n - 1, 1)), 0.0)
        k = np.where(several, np.sqrt(n / np.maximum(n - 1, 1)), 0.0)
        b = np.zeros_like(mean) if ms_res is None else ms_res / (n * (n_test or 1))
        b = np.where(several & np.isfinite(b), b, 0.0)
    seed_part = seed_weights.astype(np.float64) @ (delta * (k / np.maximum(n, 1))[:, None]).T
    if test_draws is not None:
        diff = np.where(present[None], test_draws - X[None], 0.0)
        test_part = diff.sum(axis=2) / np.maximum(n, 1)[None]
        e = test_part.var(axis=0, ddof=1) if R > 1 else np.zeros_like(mean)
    else:
        test_part = np.zeros((R, len(mean)))
        e = np.zeros_like(mean)
    shared = np.maximum(e - b, 0.0)
    # seed means that coincide exactly (error counts are whole numbers): the residual term,
    # A's expectation without a seed effect, stands in for A
    a = np.where(several & (a == 0), b, a)
    v = a + shared
    v_test = shared
    with np.errstate(invalid="ignore", divide="ignore"):
        test_part = test_part * np.where(e > 0, np.sqrt(v_test / e), 0.0)[None]
        big = n_test - 1 if n_test else np.inf
        df = v**2 / (a**2 / np.maximum(n - 1, 1) + shared**2 / big)
    se = np.sqrt(v)
    if test_draws is not None:
        method = np.where(several, TWO_WAY, TEST_ONLY)
    else:
        method = np.where(several, T_SEEDS, NO_INTERVAL)
        df = np.where(several, n - 1, np.nan)
        se = np.where(several, se, np.nan)
    method = np.where(n == 0, NO_INTERVAL, method)
    df = np.where(se > 0, df, np.where(n >= 1, np.inf, np.nan))
    lo, hi = _interval(mean, se, df, level)
    draws = mean[None] + test_part + seed_part
    return Estimate(mean, lo, hi, se, df, draws, n, method, v_test, a)


def test_draws_additive(losses: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """X_cs(w_r) = Σ_i w_ri L[c, s, i] / N of ``losses`` [C, S, N] (NaN rows missing) for the
    example weights [R, N]: [R, C, S], one matrix product."""
    C, S, N = losses.shape
    flat = np.nan_to_num(losses.reshape(C * S, N), nan=0.0).astype(np.float32, copy=False)
    out = (weights @ flat.T) / np.float32(N)
    out = out.reshape(-1, C, S).astype(np.float64)
    missing = np.isnan(losses[:, :, 0])
    out[:, missing] = np.nan
    return out


def test_draws_ece(
    bins: np.ndarray, gaps: np.ndarray, weights: np.ndarray, n_bins: int = ECE_BINS
) -> np.ndarray:
    """ECE_cs(w_r) = Σ_b |Σ_{i in b} w_ri g_csi| / N for ``bins``/``gaps`` [C, S, N] (gaps NaN for
    a missing seed): [R, C, S]. One product with the [N, C·S·B] bin-indicator matrix, in chunks
    of trials to bound memory."""
    C, S, N = gaps.shape
    R = weights.shape[0]
    flat_bins = bins.reshape(C * S, N)
    flat_gaps = np.nan_to_num(gaps.reshape(C * S, N), nan=0.0).astype(np.float32)
    out = np.empty((R, C * S))
    chunk = max(1, 20_000_000 // max(R * n_bins, 1))
    for start in range(0, C * S, chunk):
        stop = min(C * S, start + chunk)
        t = stop - start
        g = np.zeros((N, t * n_bins), dtype=np.float32)
        cols = (np.arange(t)[:, None] * n_bins + flat_bins[start:stop]).T  # [N, t]
        np.put_along_axis(g, cols, flat_gaps[start:stop].T, axis=1)
        sums = (weights @ g).reshape(R, t, n_bins)
        out[:, start:stop] = np.abs(sums).sum(axis=2) / N
    out = out.reshape(R, C, S)
    out[:, np.isnan(gaps[:, :, 0])] = np.nan
    return out


def ece_values(bins: np.ndarray, gaps: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """The observed ECE of each trial, [C, S] (NaN for a missing seed)."""
    C, S, N = gaps.shape
    flat = (np.arange(C * S)[:, None] * n_bins + bins.reshape(C * S, N)).ravel()
    sums = np.bincount(flat, weights=np.nan_to_num(gaps).ravel(), minlength=C * S * n_bins)
    out = np.abs(sums.reshape(C, S, n_bins)).sum(axis=2) / N
    out[np.isnan(gaps[:, :, 0])] = np.nan
    return out


# ------------------------------------------------------------------------------------------------
# differences, McNemar, verdicts
# ------------------------------------------------------------------------------------------------


def differences(
    values: np.ndarray,
    test_draws: np.ndarray | None,
    seed_weights: np.ndarray,
    n_test: int | None,
    baseline: int | np.ndarray,
    losses: np.ndarray | None = None,
    level: float = LEVEL,
) -> Estimate:
    """Estimates of d_c = X_c - X_b(c) against the baseline configuration ``baseline`` (an index,
    or one index per configuration [C]), paired on examples and on the seeds both ran; unpaired
    on seeds (Welch) where they share none. ``losses`` [C, S, N] (additive metrics) gives each
    difference's own MS_res. The baseline's difference with itself is 0 with a zero-width
    interval."""
    X = np.asarray(values, dtype=np.float64)
    base = np.broadcast_to(np.asarray(baseline, dtype=np.int64), (X.shape[0],))
    common = ~np.isnan(X) & ~np.isnan(X[base])
    paired = common.sum(axis=1) >= 1
    D = np.where(common, X - X[base], np.nan)
    Dt = None
    if test_draws is not None:
        Dt = np.where(common[None], test_draws - test_draws[:, base], np.nan)
    ms_res = None
    if losses is not None:
        Ld = np.where(common[:, :, None], losses - losses[base], np.nan)
        ms_res = decompose(Ld).ms_res
    est = estimate(D, Dt, seed_weights, n_test, ms_res, level)
    if (~paired).any():
        _unpaired(est, np.flatnonzero(~paired), X, test_draws, seed_weights, n_test, base, level)
    return est


def _unpaired(est, idx, X, test_draws, seed_weights, n_test, base, level) -> None:
    """Configurations ``idx`` share no seed with their baseline: d = ē_c - ē_b with the seed
    parts independent (Welch: A_c + A_b, ν by Satterthwaite over three parts) and the test part
    still paired on examples (its B unknown: 0, conservative)."""
    alone = estimate(X, None, seed_weights, n_test, None, level)
    b = base[idx]
    mean = alone.mean[idx] - alone.mean[b]
    a_c, a_b = alone.v_seed[idx], alone.v_seed[b]
    n_c, n_b = alone.n[idx], alone.n[b]
    draws = alone.draws[:, idx] - alone.draws[:, b]
    v_test = np.zeros_like(mean)
    if test_draws is not None:
        present = ~np.isnan(X)
        shift = np.where(present[None], test_draws - X[None], 0.0).sum(axis=2)
        shift = shift / np.maximum(present.sum(axis=1), 1)[None]
        part = shift[:, idx] - shift[:, b]
        v_test = part.var(axis=0, ddof=1)
        draws = draws + part
    v = a_c + a_b + v_test
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = a_c**2 / np.maximum(n_c - 1, 1) + a_b**2 / np.maximum(n_b - 1, 1)
        denom = denom + (v_test**2 / (n_test - 1) if n_test else 0.0)
        df = v**2 / denom
    se = np.sqrt(v)
    df = np.where(se > 0, df, np.inf)
    lo, hi = _interval(mean, se, df, level)
    for name, value in (
        ("mean", mean), ("lo", lo), ("hi", hi), ("se", se), ("df", df),
        ("v_test", v_test), ("v_seed", a_c + a_b),
    ):  # fmt: skip
        getattr(est, name)[idx] = value
    est.draws[:, idx] = draws
    est.n[idx] = np.minimum(n_c, n_b)
    method = TWO_WAY if test_draws is not None else T_SEEDS
    est.method[idx] = np.where((n_c >= 2) & (n_b >= 2), method, est.method[idx])


def mcnemar(wrong_c: np.ndarray, wrong_b: np.ndarray) -> tuple[int, int, float]:
    """McNemar's exact test on paired per-example errors (booleans, same examples): b01 =
    examples the baseline gets right and c wrong, b10 the reverse; p = two-sided binomial test
    of b01 out of b01 + b10 at 1/2 (1.0 when there is no discordant pair)."""
    wc = np.asarray(wrong_c, dtype=bool)
    wb = np.asarray(wrong_b, dtype=bool)
    b01 = int(np.sum(wc & ~wb))
    b10 = int(np.sum(~wc & wb))
    if b01 + b10 == 0:
        return b01, b10, 1.0
    return b01, b10, float(sps.binomtest(b01, b01 + b10, 0.5).pvalue)


def mcnemar_p(b01: np.ndarray, b10: np.ndarray) -> np.ndarray:
    """:func:`mcnemar`'s p-values for arrays of discordant counts at once: for X ~ Bin(b01 +
    b10, 1/2), symmetric, the two-sided exact p is min(1, 2 min(P(X ≤ b01), P(X ≥ b01)))
    (what ``scipy.stats.binomtest`` gives at p = 1/2)."""
    b01 = np.asarray(b01)
    total = b01 + np.asarray(b10)
    low = sps.binom.cdf(b01, total, 0.5)
    high = sps.binom.sf(b01 - 1, total, 0.5)
    return np.where(total > 0, np.minimum(1.0, 2.0 * np.minimum(low, high)), 1.0)


def verdict(
    lo95: float,
    hi95: float,
    lo90: float,
    hi90: float,
    tolerance: float | None,
    direction: str = "min",
) -> str:
    """The verdict of a difference d = c - baseline from its 95 % and 90 % intervals (module
    docstring): ``equivalent``, ``better``, ``worse`` or ``inconclusive``."""
    if not all(np.isfinite([lo95, hi95, lo90, hi90])):
        return "inconclusive"
    if tolerance is not None and tolerance > 0 and -tolerance < lo90 and hi90 < tolerance:
        return "equivalent"
    above, below = lo95 > 0, hi95 < 0
    if tolerance is None:
        return "inconclusive"
    if direction == "min":
        return "worse" if above else "better" if below else "inconclusive"
    return "better" if above else "worse" if below else "inconclusive"


def combine(verdicts: Sequence[str]) -> str:
    """A configuration's verdict over its compared objectives: ``worse`` if any is worse,
    ``equivalent`` if all are, ``better`` if all are better or equivalent and one is better,
    else ``inconclusive``."""
    v = list(verdicts)
    if not v:
        return "inconclusive"
    if "worse" in v:
        return "worse"
    if all(x == "equivalent" for x in v):
        return "equivalent"
    if all(x in ("better", "equivalent") for x in v):
        return "better"
    return "inconclusive"


# ------------------------------------------------------------------------------------------------
# front probability
# ------------------------------------------------------------------------------------------------


def front_probability(draws: np.ndarray, cost: np.ndarray | None = None) -> np.ndarray:
    """Fraction of resamples in which each configuration is on the Pareto front.

    ``draws`` [R, C, d]: resampled objective values in minimisation form (NaN: never on the
    front); ``cost`` [C]: a fixed cost (minimised), or None. With one objective and a cost the
    front of each resample is found by a prefix minimum along the configurations sorted by
    cost (O(R·C)): c is on it iff its value is below every strictly cheaper configuration's
    and no configuration of the same cost is better. Otherwise pairwise dominance, in chunks of
    resamples (O(R·C²·d)).
    """
    draws = np.asarray(draws, dtype=np.float64)
    R, C, d = draws.shape
    finite = np.isfinite(draws).all(axis=2)
    if cost is not None and d == 1:
        cost = np.asarray(cost, dtype=np.float64)
        ok_cost = np.isfinite(cost)
        order = np.argsort(np.where(ok_cost, cost, np.inf), kind="stable")
        x = np.where(finite, draws[..., 0], np.inf)[:, order]
        x[:, ~ok_cost[order]] = np.inf
        sc = cost[order]
        starts = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
        group = np.cumsum(np.r_[True, sc[1:] != sc[:-1]]) - 1
        group_min = np.minimum.reduceat(x, starts, axis=1)  # [R, G]
        prefix = np.minimum.accumulate(group_min, axis=1)
        lower = np.concatenate([np.full((R, 1), np.inf), prefix[:, :-1]], axis=1)
        on = (x < lower[:, group]) & (x <= group_min[:, group]) & np.isfinite(x)
        out = np.empty(C)
        out[order] = on.mean(axis=0)
        return out
    f = (
        draws
        if cost is None
        else np.concatenate(
            [draws, np.broadcast_to(np.asarray(cost, float)[None, :, None], (R, C, 1))], axis=2
        )
    )
    f = np.where(np.isfinite(f).all(axis=2, keepdims=True), f, np.inf)
    counts = np.zeros(C)
    chunk = max(1, 50_000_000 // max(C * C * f.shape[2], 1))
    for start in range(0, R, chunk):
        g = f[start : start + chunk]  # [r, C, d]
        weak = (g[:, :, None, :] <= g[:, None, :, :]).all(axis=3)  # q (axis 1) ≤ p (axis 2)
        strict = (g[:, :, None, :] < g[:, None, :, :]).any(axis=3)
        dominated = (weak & strict).any(axis=1)
        counts += (~dominated & np.isfinite(g).all(axis=2)).sum(axis=0)
    return counts / R
