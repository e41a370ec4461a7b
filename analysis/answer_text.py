"""The answer as text: the one sentence, one line per configuration, the verdict table and
its Markdown (for the parent MLflow run's description), and how each figure is written
(error-like metrics in percent, differences in points, others to 3 significant digits)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from analysis.answer import Answer, Configuration

#: how a cost reads in a sentence
COST_UNITS: dict[str, str] = {"bits_per_param": "bits/weight", "bits": "bits"}


def _percent(metric: str) -> bool:
    return metric.endswith("error")


def _sig(x: float | None, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    text = f"{x:.{digits}g}"
    if "e" in text:
        return text
    return text


def _fmt(metric: str, x: float | None, unit: bool = True) -> str:
    """A value: error-like metrics in percent with one decimal (two below 1 %), others to 3
    significant digits."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if _percent(metric):
        decimals = 1 if abs(x) >= 0.01 else 2
        return f"{100 * x:.{decimals}f}" + ("%" if unit else "")
    return _sig(x)


def _fmt_diff(metric: str, x: float | None, unit: bool = True) -> str:
    """A difference with its sign: error-like in points (one decimal, two when the value is
    under 0.1 pt), others to 3 significant digits."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if _percent(metric):
        pts = 100 * x
        decimals = 1 if abs(pts) >= 0.1 or pts == 0 else 2
        return f"{pts:+.{decimals}f}" + (" pt" if unit else "")
    return f"{x:+.3g}"


def _fmt_tol(metric: str, tol: float) -> str:
    """A tolerance in the units its difference is printed in (points for error-like metrics)."""
    return f"{100 * tol:g}" if _percent(metric) else f"{tol:g}"


def lines(answer: Answer) -> list[str]:
    """One line per configuration, sorted by cost: verdict, name, cost, figures."""
    rows = []
    width = max([len(c.configuration) for c in answer.configurations] + [13])
    for c in answer.configurations:
        parts = [f"{c.verdict:<12}", f"{c.configuration:<{width}}"]
        if answer.cost_name:
            parts.append(f"{_sig(c.cost)} {COST_UNITS.get(answer.cost_name, answer.cost_name)}")
        for m, f in c.figures.items():
            text = f"{m} {_fmt(m, f.mean)} [{_fmt(m, f.ci[0], unit=False)}, "
            text += f"{_fmt(m, f.ci[1], unit=False)}]"
            if f.diff is not None and c.verdict != "baseline":
                text += f" diff {_fmt_diff(m, f.diff)} [{_fmt_diff(m, f.diff_ci90[0], False)},"
                text += f" {_fmt_diff(m, f.diff_ci90[1], False)}]"
            parts.append(text)
        if c.front_probability is not None and math.isfinite(c.front_probability):
            parts.append(f"front {c.front_probability:.2f}")
        parts.append(f"{c.n_seeds} seed{'s' if c.n_seeds != 1 else ''}")
        rows.append("  ".join(parts))
    return rows


def table(answer: Answer) -> pd.DataFrame:
    """The verdict table (at most 8 columns, 3 significant digits, as text): configuration,
    cost, verdict, then per compared objective (at most two) ``mean [95% CI]`` and
    ``diff [90% CI]``, front probability, seeds."""
    rows = []
    shown = list(answer.objectives)[:2] if len(answer.objectives) > 1 else list(answer.objectives)
    for c in answer.configurations:
        row = {"configuration": c.configuration}
        if answer.cost_name:
            row[COST_UNITS.get(answer.cost_name, answer.cost_name)] = _sig(c.cost)
        row["verdict"] = c.verdict
        for m in shown:
            f = c.figures.get(m)
            if f is None:
                row[m] = row[f"Δ{m}"] = ""
                continue
            row[m] = f"{_fmt(m, f.mean)} [{_fmt(m, f.ci[0], False)}, {_fmt(m, f.ci[1], False)}]"
            row[f"Δ{m} (90% CI)"] = (
                ""
                if f.diff is None or c.verdict == "baseline"
                else f"{_fmt_diff(m, f.diff)} [{_fmt_diff(m, f.diff_ci90[0], False)}, "
                f"{_fmt_diff(m, f.diff_ci90[1], False)}]"
            )
        if len(shown) < 2:
            row["front prob."] = "" if c.front_probability is None else f"{c.front_probability:.2f}"
            row["seeds"] = str(c.n_seeds)
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(answer: Answer) -> str:
    """The sentence, how to read it, and the verdict table (Markdown, for the parent run's
    description)."""
    frame = table(answer)
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    rule_text = (
        "Verdicts against the baseline: *equivalent* when the 90% CI of the difference lies "
        "inside ±tolerance, *worse*/*better* when not and the 95% CI lies entirely on one "
        "side of 0, else *inconclusive*. Means with 95% CIs over seeds and test examples."
    )
    return "\n".join(
        [f"**{answer.sentence}**", "", rule_text, "", head, rule, *body, ""]
        + [f"- {n}" for n in answer.notes]
    )


def _figures_text(answer: Answer, cfg: Configuration, base: Configuration | None) -> str:
    parts = []
    for m, f in cfg.figures.items():
        text = f"{m} {_fmt(m, f.mean)} [{_fmt(m, f.ci[0], False)}, {_fmt(m, f.ci[1], False)}]"
        if base is not None and f.diff is not None:
            b = base.figures[m]
            text += f" vs {_fmt(m, b.mean)} [{_fmt(m, b.ci[0], False)}, {_fmt(m, b.ci[1], False)}]"
            text += (
                f"; difference {_fmt_diff(m, f.diff)} [{_fmt_diff(m, f.diff_ci90[0], False)}, "
                f"{_fmt_diff(m, f.diff_ci90[1], False)}] (90% CI)"
            )
            tol = answer.tolerances.get(m)
            if tol is not None:
                where = "within" if f.verdict == "equivalent" else "not within"
                text += f" {where} ±{_fmt_tol(m, tol)}"
            else:
                text += " (no tolerance)"
        parts.append(text)
    return "; ".join(parts)


def _scope(answer: Answer, cfg: Configuration) -> str:
    n = cfg.n_seeds
    seeds = f"{n} seed{'s' if n != 1 else ''}"
    if answer.n_test:
        text = f"{seeds} x {answer.n_test:,} {answer.example_word}"
    else:
        text = f"{seeds}, t-interval over seeds (no stored predictions)"
    if n == 1 and answer.n_test:
        text += "; one seed: the intervals count the test set only"
    return text


def sentence(answer: Answer) -> str:
    unit = COST_UNITS.get(answer.cost_name or "", answer.cost_name or "")
    cost_word = "bits" if answer.cost_name in ("bits_per_param", "bits") else answer.cost_name
    base = answer.by_name(answer.baseline)

    def at(cfg: Configuration) -> str:
        return f" at {_sig(cfg.cost)} {unit}" if answer.cost_name else ""

    if answer.kind == "no-objective":
        return f"sweep {answer.sweep}: no objective to compare (the spec's objectives are costs)"
    if answer.kind == "no-baseline":
        scored = [c for c in answer.configurations if c.n_seeds]
        if not scored:
            return f"sweep {answer.sweep}: no trial finished ok; nothing to answer"
        knee_cfg = answer.by_name(answer.knee) or scored[0]
        return (
            f"no baseline to compare against ({answer.baseline_note}); the knee of the front of "
            f"configuration means: {knee_cfg.configuration}{at(knee_cfg)}: "
            f"{_figures_text(answer, knee_cfg, None)} ({_scope(answer, knee_cfg)})"
        )
    if answer.kind == "answer":
        cfg = answer.answer
        assert cfg is not None
        if cfg.verdict == "better":
            lead = f"fewest {cost_word} with a measurable gain over {answer.baseline}"
        else:
            lead = f"fewest {cost_word} with no measurable loss against {answer.baseline}"
        text = (
            f"{lead}: {cfg.configuration}{at(cfg)}: {_figures_text(answer, cfg, base)} "
            f"({_scope(answer, cfg)})"
        )
        if base is not None and math.isfinite(base.cost) and cfg.cost >= base.cost:
            text += f"; no configuration cheaper than {answer.baseline} is shown equivalent"
        return text
    tried = [c for c in answer.configurations if c.verdict not in ("baseline", "failed")]
    inconclusive = [c for c in tried if c.verdict == "inconclusive"]
    if inconclusive:
        cfg = inconclusive[0]
        return (
            f"no configuration is shown equivalent to {answer.baseline} within tolerance; the "
            f"cheapest inconclusive one is {cfg.configuration}{at(cfg)}: "
            f"{_figures_text(answer, cfg, base)} ({_scope(answer, cfg)})"
        )
    return (
        f"every configuration is measurably worse than {answer.baseline}"
        f" ({len(tried)} configurations; {_scope(answer, base) if base else ''})"
    )
