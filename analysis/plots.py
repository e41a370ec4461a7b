"""Figures of a sweep (matplotlib, PNG).

Figures are built as ``matplotlib.figure.Figure`` objects, not through pyplot, so they need no
GUI backend, leave pyplot's state alone and are safe to draw in worker threads; a notebook shows
them with ``display(fig)``, :func:`save` writes them with the Agg renderer.

- :func:`plot_answer`: the answer's figure: every configuration's mean with its 95 % CI
  (seeds and test examples) against its cost on a log2 axis, coloured by its verdict against
  the baseline, whose interval is drawn as a band (and its ± tolerance as dotted lines), the
  front of configuration means as a staircase, points labelled by configuration; below, each
  configuration's difference against the baseline with its 90 % CI and the ± tolerance band
  (what the verdict reads).
- :func:`plot_metric_vs_bits`: a metric (test error, NLL, ECE) against a bits column (``bits``,
  the word length, or ``bits_per_param``, the storage bits per weight) on a log2 axis, every
  configuration as a point (seed mean with its 95 % CI when the answer gives one, else ± std
  over seeds), the Pareto front of (metric, that column) per accumulator mode in one panel and
  per format family in the other, drawn as staircases.
- :func:`plot_sample_histograms`: the Gaussian experiment of the low-precision SGLD paper
  (Zhang, Wilson, De Sa, ICML 2022, fig. 1): histograms of the collected samples against the
  target density, one panel per accumulator mode.
- :func:`plot_reliability`: reliability diagram, accuracy against confidence in 15 equal-width
  bins, with the expected calibration error ECE = Σ_b (n_b / n) |acc_b - conf_b|.
- :func:`plot_hypervolume_history`: hypervolume of the first k trials against k.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from analysis.calibration import bin_index, ece_from_bins
from analysis.load import FAMILIES
from analysis.pareto import aggregate_seeds, non_dominated, pareto_front

#: order and colours of the accumulator modes and format families in every figure
ACCUMULATORS: tuple[str, ...] = ("full", "low", "vc")
LABELS: dict[str, str] = {
    "full": "full (LP-F)",
    "low": "low (naive LP-L)",
    "vc": "vc (VC LP-L)",
}

#: axis labels of the bits-like columns: what a value on that axis means
AXIS_LABELS: dict[str, str] = {
    "bits": "bits (word length of the weight format)",
    "bits_per_param": "bits_per_param: storage bits per weight\n"
    "(accumulator full: its float32 master copy, 32)",
}


def axis_label(column: str) -> str:
    """The label of an axis showing ``column``: its meaning for the bits-like columns."""
    return AXIS_LABELS.get(column, column)


def integer_ticks(ax: Axes, values: pd.Series | np.ndarray, axis: str = "x") -> None:
    """Integer tick positions on ``axis`` when every finite value is a whole number (word
    lengths), so that the axis reads 4, 6, 8 rather than 4.0, 4.5, 5.0."""
    values = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce").to_numpy(float)
    values = values[np.isfinite(values)]
    if values.size and np.all(values == np.round(values)):
        (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


#: what an axis label says of its scale
SCALE_TEXT: dict[str, str] = {"log2": " (log2 scale)", "log": " (log scale)", "linear": ""}


def axis_scale(column: str, values: pd.Series | np.ndarray) -> str:
    """How an axis showing ``column`` is scaled: ``log2`` for bits-per-weight columns (``bits``,
    ``bits_per_param``), ``log`` (base 10) for another column whose positive values span more
    than a decade (``ensemble_bits``, ``bops_*``), else ``linear``."""
    if column in ("bits", "bits_per_param"):
        return "log2"
    values = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce").to_numpy(float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size and values.max() > 10 * values.min():
        return "log"
    return "linear"


def log2_axis(ax: Axes, values: pd.Series | np.ndarray, axis: str = "x") -> None:
    """A log2 scale on ``axis`` with ticks at the values themselves (when at most 12 distinct,
    else at powers of two), printed as plain numbers (4, 5.25, 32)."""
    values = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce").to_numpy(float)
    values = np.unique(values[np.isfinite(values) & (values > 0)])
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=2)
    if values.size == 0:
        return
    if values.size <= 12:
        # ticks closer than 0.15 in log2 units (4 and 4.25) would print over each other
        keep = [values[0]]
        for value in values[1:]:
            if np.log2(value) - np.log2(keep[-1]) >= 0.15:
                keep.append(value)
        ticks = np.array(keep)
    else:
        ticks = 2.0 ** np.arange(
            np.floor(np.log2(values.min())), np.ceil(np.log2(values.max())) + 1
        )
    target.set_ticks(ticks)
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    target.set_minor_formatter(NullFormatter())


def _ordered(values: Sequence[object], preferred: Sequence[str]) -> list[object]:
    present = list(dict.fromkeys(values))
    return [v for v in preferred if v in present] + sorted(
        (v for v in present if v not in preferred), key=str
    )


def _staircase(ax: Axes, front: pd.DataFrame, x: str, y: str, color: object, label: str) -> None:
    """A front of (x min, y min) drawn as the boundary of the region it dominates."""
    front = front.sort_values([x, y])
    ax.step(
        front[x],
        front[y],
        where="post",
        color=color,
        lw=1.5,
        marker="o",
        ms=5,
        mfc="none",
        label=label,
    )


def plot_metric_vs_bits(
    trials: pd.DataFrame,
    metric: str,
    config_keys: Sequence[str],
    bits: str = "bits",
    direction: str = "min",
    title: str | None = None,
    intervals: Mapping[str, tuple[float, float]] | None = None,
    log2: bool = True,
) -> Figure:
    """``metric`` against ``bits`` (the column on the x-axis: ``bits`` or ``bits_per_param``,
    log2 scale unless ``log2`` is False; another cost column, ``ensemble_bits`` say, on the
    scale :func:`axis_scale` picks: log where it spans more than a decade): seed means with
    error bars, fronts per accumulator (left) and per format family (right), and first, when
    the sweep has variants (a ``variant`` column), one per variant. The error bars are the
    95 % CIs of ``intervals`` (``{configuration: (lo, hi)}``, matched on the trials'
    ``configuration`` column) where given, else ± one standard deviation over seeds.
    Fronts are over the seed means, objectives ``{metric: direction, bits: min}``."""
    if metric == bits:
        raise ValueError(f"metric {metric!r}: is the x-axis itself; plot another metric")
    pooled = aggregate_seeds(trials, config_keys, [metric, bits]) if len(trials) else trials
    if bits in ("bits", "bits_per_param"):
        scale = "log2" if log2 else "linear"
    else:
        scale = axis_scale(bits, pooled[bits] if bits in pooled.columns else [])
    use_ci = bool(intervals) and "configuration" in pooled.columns
    panels: list[tuple[str, Sequence[str]]] = [("accumulator", ACCUMULATORS), ("family", FAMILIES)]
    if "variant" in pooled.columns and pooled["variant"].notna().any():
        # a spec with variants: one front per variant first (in the spec's order)
        order = list(dict.fromkeys(trials["variant"].dropna().astype(str)))
        panels.insert(0, ("variant", order))
    fig = Figure(figsize=(5.5 * len(panels), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True)
    n_bad = int((trials["status"] != "ok").sum()) if "status" in trials else 0
    for ax, (by, preferred) in zip(axes, panels, strict=True):
        ax.set_xlabel(axis_label(bits) + SCALE_TEXT[scale], fontsize=9)
        ax.grid(alpha=0.3)
        if bits in pooled.columns:
            if scale == "log2":
                log2_axis(ax, pooled[bits])
            elif scale == "log":
                ax.set_xscale("log")
            else:
                integer_ticks(ax, pooled[bits])
        if by not in pooled.columns or pooled.empty or pooled[metric].notna().sum() == 0:
            ax.set_title(f"by {by}: no ok trial with {metric}")
            continue
        groups = _ordered(pooled[by].tolist(), preferred)
        colors = matplotlib.colormaps["tab10"]
        for k, group in enumerate(groups):
            part = pooled[pooled[by] == group]
            if use_ci:
                ci = np.array(
                    [intervals.get(str(c), (np.nan, np.nan)) for c in part["configuration"]]
                ).reshape(-1, 2)
                mean = part[metric].to_numpy(dtype=float)
                yerr = np.nan_to_num(np.abs(np.stack([mean - ci[:, 0], ci[:, 1] - mean])))
            else:
                yerr = part[f"{metric}_std"].fillna(0.0)
            ax.errorbar(
                part[bits],
                part[metric],
                yerr=yerr,
                fmt="o",
                ms=4,
                alpha=0.45,
                color=colors(k),
                elinewidth=0.8,
            )
            front = pareto_front(part, {metric: direction, bits: "min"})
            if len(front):
                _staircase(ax, front, bits, metric, colors(k), LABELS.get(str(group), str(group)))
        ax.set_title(f"fronts by {by}")
        ax.legend(fontsize=8, title=by, title_fontsize=8)
    axes[0].set_ylabel(metric)
    bars = "95% CIs over seeds and test examples" if use_ci else "± std over seeds"
    fig.suptitle(
        title
        or f"{metric} against {bits} (points: seed means, bars: {bars}; {n_bad} trials not ok)",
        fontsize=10,
    )
    return fig


#: colours of the verdicts in :func:`plot_answer`
VERDICT_COLORS: dict[str, str] = {
    "baseline": "black",
    "equivalent": "tab:green",
    "better": "tab:blue",
    "worse": "tab:red",
    "inconclusive": "tab:gray",
}

#: most configurations labelled by name in :func:`plot_answer` (beyond it: the front, the
#: answer and the baseline only)
MAX_LABELS = 40


def plot_answer(answer: object, metric: str, title: str | None = None) -> Figure:
    """The answer's figure for ``metric`` (an :class:`analysis.answer.Answer`): every scored
    configuration at its cost (log2 axis; configurations of one cost spread a little sideways)
    with its mean and 95 % CI, coloured by verdict; the baseline's 95 % CI as a grey band and
    baseline ± tolerance as dotted lines; the front of configuration means as a staircase; the
    answer circled; points labelled by configuration (all of them up to :data:`MAX_LABELS`,
    else the front's members, the answer and the baseline)."""
    configs = [
        c
        for c in answer.configurations
        if metric in c.figures and np.isfinite(c.figures[metric].mean) and np.isfinite(c.cost)
    ]
    fig = Figure(figsize=(10, 8.2), layout="constrained")
    ax, ax_diff = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    percent = metric.endswith("error")
    scale = 100.0 if percent else 1.0
    unit = " (%)" if percent else ""
    if not configs:
        ax.set_title(f"{metric}: no configuration with a value")
        return fig
    cost = np.array([c.cost for c in configs])
    mean = np.array([c.figures[metric].mean for c in configs]) * scale
    lo = np.array([c.figures[metric].ci[0] for c in configs]) * scale
    hi = np.array([c.figures[metric].ci[1] for c in configs]) * scale
    # configurations of one cost: spread over ±0.08 in log2 units so that their bars show
    x = cost.astype(float).copy()
    for value in np.unique(cost):
        same = np.flatnonzero(cost == value)
        if len(same) > 1:
            x[same] = value * 2.0 ** np.linspace(-0.08, 0.08, len(same))
    base = next((c for c in configs if c.verdict == "baseline"), None)
    if base is not None:
        f = base.figures[metric]
        ax.axhspan(
            f.ci[0] * scale,
            f.ci[1] * scale,
            color="0.85",
            zorder=0,
            label=f"baseline {base.configuration}: 95% CI",
        )
        tol = answer.tolerances.get(metric)
        if tol:
            for sign in (-1, 1):
                ax.axhline(
                    (f.mean + sign * tol) * scale,
                    color="0.4",
                    ls=":",
                    lw=1,
                    label=f"baseline ± tolerance ({tol * scale:g}{' pt' if percent else ''})"
                    if sign == 1
                    else None,
                )
    seen = set()
    for verdict, color in VERDICT_COLORS.items():
        idx = [i for i, c in enumerate(configs) if c.verdict == verdict]
        if not idx:
            continue
        seen.add(verdict)
        ax.errorbar(
            x[idx],
            mean[idx],
            yerr=np.nan_to_num(np.abs(np.stack([mean[idx] - lo[idx], hi[idx] - mean[idx]]))),
            fmt="o",
            ms=5,
            color=color,
            elinewidth=1.0,
            capsize=2,
            label=f"{verdict} ({len(idx)})",
        )
    sign = -1.0 if answer.objectives.get(metric) == "max" else 1.0
    points = np.stack([sign * mean, cost], axis=1)
    on_front = non_dominated(points)
    order = np.argsort(cost[on_front], kind="stable")
    ax.step(
        cost[on_front][order],
        mean[on_front][order],
        where="post",
        color="tab:purple",
        lw=1.2,
        alpha=0.7,
        label="front of configuration means",
    )
    chosen = answer.answer.configuration if answer.answer is not None else None
    for i, c in enumerate(configs):
        if c.configuration == chosen:
            ax.plot(x[i], mean[i], "o", ms=14, mfc="none", mec="tab:green", mew=2,
                    label=f"the answer: {chosen}")  # fmt: skip
        if len(configs) <= MAX_LABELS or on_front[i] or c.configuration == chosen or c is base:
            ax.annotate(
                c.configuration,
                (x[i], mean[i]),
                xytext=(4, 3),
                textcoords="offset points",
                fontsize=6.5,
                color=VERDICT_COLORS.get(c.verdict, "black"),
            )
    log2_axis(ax, cost)
    cost_name = answer.cost_name or "cost"
    ax.set_ylabel(metric + unit)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    _plot_differences(ax_diff, answer, metric, configs, x, scale)
    ax_diff.set_xlabel(axis_label(cost_name) + " (log2 scale)", fontsize=9)
    n = sorted({c.n_seeds for c in configs})
    seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}"
    data = f"{seeds} seeds" + (f" x {answer.n_test:,} test examples" if answer.n_test else "")
    ax.set_title(
        title
        or f"{metric}: configuration means with 95% CIs ({data}); verdicts against "
        f"{answer.baseline or 'no baseline'}",
        fontsize=10,
    )
    return fig


def gaussian_pdf(x: np.ndarray) -> np.ndarray:
    """The N(0, 1) density φ(x) = exp(-x²/2) / sqrt(2π): the target of the Gaussian workload."""
    return np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)


def mixture_pdf(x: np.ndarray) -> np.ndarray:
    """1/3·N(-1.5, 0.5²) + 2/3·N(1.5, 0.5²), the mixture target of ALGORITHMS.md §10."""
    return (gaussian_pdf((x + 1.5) / 0.5) / 3 + 2 * gaussian_pdf((x - 1.5) / 0.5) / 3) / 0.5


def scaled_pdf(pdf: Callable[[np.ndarray], np.ndarray], scale: float, x: np.ndarray) -> np.ndarray:
    """The density of s·X when X has density ``pdf``: pdf(x / s) / s."""
    return pdf(x / scale) / scale


#: target densities of the synthetic workloads, by workload name
TARGET_PDFS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gaussian": gaussian_pdf,
    "mixture": mixture_pdf,
}


def histogram_bins(values: np.ndarray, lo: float, hi: float, target: int = 60) -> np.ndarray:
    """About ``target`` equal-width bins over [lo, hi]. Low-precision samples lie on a grid of
    step Δ (the smallest gap between distinct values when there are few of them); the bin width
    is then a whole multiple of Δ and the edges fall halfway between grid points, so every bin
    holds the same number of grid points and the histogram shows no aliasing spikes."""
    distinct = np.unique(values)
    if 2 < distinct.size <= 4096:
        step = float(np.min(np.diff(distinct)))
        width = step * max(1, round((hi - lo) / target / step))
        start = (np.floor(lo / step) - 0.5) * step
        return np.arange(start, hi + width, width)
    return np.linspace(lo, hi, target + 1)


def plot_sample_histograms(
    samples: Mapping[str, Sequence[tuple[str, np.ndarray]]],
    target_pdf: Callable[[np.ndarray], np.ndarray] = gaussian_pdf,
    title: str = "samples against the target density",
) -> Figure:
    """One panel per accumulator mode: density histograms of each labelled sample set
    (coordinate 0, all chains pooled) against ``target_pdf``.

    ``samples`` maps an accumulator mode to ``[(label, samples [num_samples, chains, dim]), ...]``;
    each label's standard deviation is printed in the legend (the target N(0, 1) has 1).
    """
    modes = _ordered(list(samples), ACCUMULATORS)
    fig = Figure(figsize=(4.2 * max(len(modes), 1), 3.6), layout="constrained")
    axes = fig.subplots(1, max(len(modes), 1), sharey=True, squeeze=False)
    pooled = [np.asarray(x)[..., 0].ravel() for sets in samples.values() for _, x in sets]
    pooled = [x[np.isfinite(x)] for x in pooled]
    values = np.concatenate(pooled) if pooled else np.zeros(0)
    lo, hi = np.quantile(values, [0.001, 0.999]) if values.size else (-4.0, 4.0)
    lo, hi = min(lo, -4.0), max(hi, 4.0)
    grid = np.linspace(lo, hi, 400)
    bins = histogram_bins(values, lo, hi)
    for ax, mode in zip(axes[0], modes, strict=False):
        ax.plot(grid, target_pdf(grid), color="black", lw=1.5, label="target")
        for label, x in samples[mode]:
            x = np.asarray(x)[..., 0].ravel()
            x = x[np.isfinite(x)]
            if x.size == 0:
                continue
            ax.hist(
                x,
                bins=bins,
                density=True,
                histtype="step",
                lw=1.2,
                label=f"{label} (std {x.std():.2f})",
            )
        ax.set_title(LABELS.get(str(mode), str(mode)))
        ax.set_xlabel("x")
        ax.legend(fontsize=7)
    if not modes:
        axes[0][0].set_title("no samples")
    axes[0][0].set_ylabel("density")
    fig.suptitle(title, fontsize=10)
    return fig


def reliability_bins(labels: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> pd.DataFrame:
    """Per confidence bin b = (b/B, (b+1)/B] (the first bin also holds 0): count n_b, mean
    confidence conf_b = mean max_k p_k and accuracy acc_b = mean 1[argmax_k p_k = y]."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = bin_index(confidence, n_bins)
    rows = []
    for b in range(n_bins):
        mask = index == b
        rows.append(
            {
                "lower": edges[b],
                "upper": edges[b + 1],
                "count": int(mask.sum()),
                "confidence": float(confidence[mask].mean()) if mask.any() else np.nan,
                "accuracy": float(correct[mask].mean()) if mask.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(bins: pd.DataFrame) -> float:
    """ECE = Σ_b (n_b / n) |acc_b - conf_b| from :func:`reliability_bins`
    (:func:`analysis.calibration.ece_from_bins`, the package's one ECE)."""
    return ece_from_bins(
        bins["count"].to_numpy(), bins["accuracy"].to_numpy(), bins["confidence"].to_numpy()
    )


def plot_reliability(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray]], n_bins: int = 15
) -> Figure:
    """Reliability diagrams, one panel per ``(title, labels, probs)``: accuracy per confidence
    bin as bars against the diagonal (perfect calibration), ECE in the title."""
    n = max(len(panels), 1)
    fig = Figure(figsize=(3.8 * n, 3.8), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)
    for ax, (title, labels, probs) in zip(axes[0], panels, strict=False):
        bins = reliability_bins(labels, probs, n_bins)
        width = 1.0 / n_bins
        ax.bar(
            bins["lower"],
            bins["accuracy"].fillna(0.0),
            width=width,
            align="edge",
            edgecolor="black",
            lw=0.5,
            alpha=0.7,
            label="accuracy",
        )
        ax.bar(
            bins["lower"],
            (bins["confidence"] - bins["accuracy"]).fillna(0.0),
            bottom=bins["accuracy"].fillna(0.0),
            width=width,
            align="edge",
            color="tab:red",
            alpha=0.25,
            label="gap",
        )
        ax.plot([0, 1], [0, 1], color="black", ls="--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_title(f"{title}\nECE {expected_calibration_error(bins):.4f}", fontsize=9)
    if not panels:
        axes[0][0].set_title("no predictions")
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7, loc="upper left")
    return fig


def plot_hypervolume_history(history: pd.DataFrame, title: str = "hypervolume") -> Figure:
    """Hypervolume of the first k trials against k (from ``pareto.hypervolume_history``);
    trials that were not ok are marked with a cross on the curve."""
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.step(history["n_trials"], history["hypervolume"], where="post", color="tab:blue")
    bad = history[history["status"] != "ok"]
    if len(bad):
        ax.plot(
            bad["n_trials"],
            bad["hypervolume"],
            "x",
            color="tab:red",
            label=f"diverged or failed ({len(bad)})",
        )
        ax.legend(fontsize=8)
    ax.set_xlabel("trials (in start order)")
    integer_ticks(ax, history["n_trials"])
    ax.set_ylabel("hypervolume")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return fig


def _plot_differences(ax: Axes, answer, metric, configs, x, scale) -> None:
    """The lower panel of :func:`plot_answer`: each configuration's difference against the
    baseline with its 90 % CI (the interval the equivalence test uses), the ±tolerance band in
    green: a bar inside the band is *equivalent*, one clear of 0 and not inside is *worse* or
    *better* (by its 95 % CI)."""
    points = metric.endswith("error")
    unit = " (pt)" if points else ""
    idx = [i for i, c in enumerate(configs) if c.figures[metric].diff is not None]
    tol = answer.tolerances.get(metric)
    if tol:
        label = f"± tolerance ({tol * scale:g}{' pt' if points else ''})"
        ax.axhspan(-tol * scale, tol * scale, color="tab:green", alpha=0.12, zorder=0, label=label)
    ax.axhline(0.0, color="black", lw=0.8)
    for verdict, color in VERDICT_COLORS.items():
        sel = [i for i in idx if configs[i].verdict == verdict and verdict != "baseline"]
        if not sel:
            continue
        d = np.array([configs[i].figures[metric].diff for i in sel]) * scale
        lo = np.array([configs[i].figures[metric].diff_ci90[0] for i in sel]) * scale
        hi = np.array([configs[i].figures[metric].diff_ci90[1] for i in sel]) * scale
        ax.errorbar(
            x[sel],
            d,
            yerr=np.nan_to_num(np.abs(np.stack([d - lo, hi - d]))),
            fmt="o",
            ms=4,
            color=color,
            elinewidth=1.0,
            capsize=2,
        )
    ax.set_ylabel(f"difference against\n{answer.baseline or 'no baseline'}{unit}", fontsize=9)
    ax.set_title(
        "difference against the baseline, same seeds and test examples (90% CI)", fontsize=9
    )
    ax.grid(alpha=0.3)
    if tol:
        ax.legend(fontsize=7, loc="best")


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")
    return path
