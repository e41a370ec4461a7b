"""The answer of a sweep: how few bits suffice, at a stated confidence (ALGORITHMS.md §12).

    python -m analysis.answer RESULTS/<sweep> [--json] [--resamples 2000] [--seed 0]

prints one sentence, e.g.

    fewest bits with no measurable loss against fp32: block<5> vc at 5.25 bits/weight:
    test_error 7.0% [6.5, 7.5] vs 6.9% [6.4, 7.4]; difference +0.1 pt [-0.3, +0.5] (90% CI)
    within ±0.5 (3 seeds x 1,000 test images)

then one line per configuration (the trials that differ only in ``seed``) sorted by cost, with
its verdict against the baseline; with ``--json`` one JSON object on the last line (schema in
:meth:`Answer.to_json`). A directory that is not a sweep: one line on stderr, exit 2.

- **Configurations**: the ``configuration`` column of trials.parquet (the MLflow child run name
  without the seed) when present, else a name made from the config keys that vary.
- **Baseline**: the spec's ``baseline`` (a variant name, or a mapping of config keys to values),
  else the one configuration whose recorded formats are all fp32 (:func:`select_baseline`).
- **Objectives** compared: the spec's objectives that are not costs; the **cost** is the spec's
  first cost objective (``bits_per_param``, ``ensemble_bits``, ``state_bytes``, ``bops_*``,
  ``energy_*``, ``bits``), else ``bits_per_param`` when a column.
- **Tolerance** τ per objective: the spec's ``objectives.<m>.tolerance``, else
  :data:`DEFAULT_TOLERANCE`; none: that objective's verdict is ``inconclusive``.
- **Statistics**: :mod:`analysis.stats` (two-way bootstrap over seeds and test examples from
  ``predictions/``, paired differences, verdicts, front probabilities).
- **The answer**: the cheapest configuration whose verdict is ``equivalent`` or ``better``;
  when none is, the sentence says so and names the cheapest ``inconclusive`` one.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import answer_text, stats
from analysis.answer_text import COST_UNITS, _percent
from analysis.baseline import (
    DEFAULT_TOLERANCE,
    FORMAT_KEYS,
    _missing,
    is_cost,
    select_baseline,
)
from analysis.load import NoTrials, load_sweep, tolerances_from_spec
from analysis.pareto import knee, non_dominated
from analysis.predictions import configuration_names, read_predictions

__all__ = [
    "COST_UNITS",
    "DEFAULT_TOLERANCE",
    "FORMAT_KEYS",
    "Answer",
    "Configuration",
    "Figures",
    "compute_answer",
    "configuration_names",
    "is_cost",
    "main",
    "read_predictions",
    "select_baseline",
]

#: metrics that cannot be negative: their intervals are clipped at 0 (error-like ones and ECE,
#: AUROC also at 1); clipping moves no interval away from a true value
NONNEGATIVE = frozenset(
    {"test_error", "last_test_error", "test_nll", "test_ece", "test_brier", "ood_auroc", "w2", "ks"}
)

#: workloads whose test examples are images (the sentence says "test images")
IMAGE_WORKLOADS = ("mnist", "cifar", "resnet", "fashion")


# ------------------------------------------------------------------------------------------------
# the result
# ------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """One configuration's figures on one objective: mean and 95 % CI over seeds and test
    examples, the difference against the baseline with its 95 % and 90 % CIs, the verdict,
    McNemar's p (error), how many seeds and test examples, and which interval method."""

    mean: float
    ci: tuple[float, float]
    diff: float | None = None
    diff_ci: tuple[float, float] | None = None
    diff_ci90: tuple[float, float] | None = None
    verdict: str = "inconclusive"
    mcnemar_p: float | None = None
    n_seeds: int = 0
    n_test: int | None = None
    method: str = stats.NO_INTERVAL

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": _num(self.mean),
            "ci": _pair(self.ci),
            "diff": _num(self.diff),
            "diff_ci": _pair(self.diff_ci),
            "diff_ci90": _pair(self.diff_ci90),
            "verdict": self.verdict,
            "mcnemar_p": _num(self.mcnemar_p),
            "n_seeds": int(self.n_seeds),
            "n_test": None if self.n_test is None else int(self.n_test),
            "method": self.method,
        }


@dataclass
class Configuration:
    """One configuration: its name, variant, cost, verdict, front probability, figures per
    compared objective and its trials."""

    configuration: str
    variant: str | None
    cost: float
    verdict: str
    front_probability: float | None
    figures: dict[str, Figures]
    trial_ids: list[str]
    n_seeds: int
    bits_per_param: float | None = None

    def to_json(self, cost_name: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "configuration": self.configuration,
            "variant": self.variant,
            "bits_per_param": _num(self.bits_per_param),
        }
        if cost_name and cost_name != "bits_per_param":
            out[cost_name] = _num(self.cost)
        out.update(
            verdict=self.verdict,
            front_probability=_num(self.front_probability),
            n_seeds=self.n_seeds,
            trial_ids=self.trial_ids,
        )
        out.update({m: f.to_json() for m, f in self.figures.items()})
        return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _pair(p: tuple[float, float] | None) -> list[float | None] | None:
    return None if p is None else [_num(p[0]), _num(p[1])]


@dataclass
class Answer:
    """What :func:`compute_answer` found. ``sentence`` is the one-sentence answer;
    :meth:`lines`, :meth:`to_json`, :meth:`markdown`, :attr:`verdicts`, :meth:`metrics` give the
    same figures for the terminal, the CLI, MLflow and the report."""

    sweep: str
    path: Path
    baseline: str | None
    baseline_note: str
    cost_name: str | None
    objectives: dict[str, str]
    tolerances: dict[str, float | None]
    configurations: list[Configuration]
    answer: Configuration | None
    kind: str  # "answer" | "none" | "no-baseline" | "no-objective"
    knee: str | None
    n_test: int | None
    resamples: int
    methods: dict[str, str]
    example_word: str = "test examples"
    sentence: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def verdicts(self) -> dict[str, str]:
        """``{configuration: verdict}``."""
        return {c.configuration: c.verdict for c in self.configurations}

    def by_name(self, name: str | None) -> Configuration | None:
        return next((c for c in self.configurations if c.configuration == name), None)

    def lines(self) -> list[str]:
        """One line per configuration, sorted by cost: verdict, name, cost, figures."""
        return answer_text.lines(self)

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON object: ``baseline`` (its configuration name or null), ``answer``
        (``configuration``, ``bits_per_param``, the cost, ``verdict`` and per compared objective
        ``{mean, ci, diff, diff_ci, diff_ci90, verdict, mcnemar_p, n_seeds, n_test, method}``; null
        when no configuration qualifies), ``configurations`` (the same per configuration plus
        ``variant``, ``verdict``, ``front_probability``), and ``sentence``, ``kind``, ``cost``,
        ``objectives``, ``tolerances``, ``knee``, ``n_test``, ``resamples``, ``methods``."""
        answer = None
        if self.answer is not None:
            answer = self.answer.to_json(self.cost_name)
            answer.pop("front_probability", None)
        return {
            "sweep": self.sweep,
            "baseline": self.baseline,
            "baseline_note": self.baseline_note,
            "answer": answer,
            "kind": self.kind,
            "sentence": self.sentence,
            "cost": self.cost_name,
            "objectives": self.objectives,
            "tolerances": self.tolerances,
            "knee": self.knee,
            "n_test": self.n_test,
            "resamples": self.resamples,
            "methods": self.methods,
            "notes": self.notes,
            "configurations": [c.to_json(self.cost_name) for c in self.configurations],
        }

    def table(self) -> pd.DataFrame:
        """The verdict table (at most 8 columns, 3 significant digits, as text): configuration,
        cost, verdict, then per compared objective (at most two) ``mean [95% CI]`` and
        ``diff [90% CI]``, front probability, seeds."""
        return answer_text.table(self)

    def full_table(self) -> pd.DataFrame:
        """Every figure of every configuration, one row each, full precision (for the CSV)."""
        rows = []
        for c in self.configurations:
            row: dict[str, Any] = {
                "configuration": c.configuration,
                "variant": c.variant,
                "cost": c.cost,
                "bits_per_param": c.bits_per_param,
                "verdict": c.verdict,
                "front_probability": c.front_probability,
                "n_seeds": c.n_seeds,
                "trial_ids": " ".join(c.trial_ids),
            }
            for m, f in c.figures.items():
                row.update(
                    {
                        f"{m}": f.mean,
                        f"{m}_lo": f.ci[0],
                        f"{m}_hi": f.ci[1],
                        f"{m}_diff": f.diff,
                        f"{m}_diff_lo": None if f.diff_ci is None else f.diff_ci[0],
                        f"{m}_diff_hi": None if f.diff_ci is None else f.diff_ci[1],
                        f"{m}_diff_lo90": None if f.diff_ci90 is None else f.diff_ci90[0],
                        f"{m}_diff_hi90": None if f.diff_ci90 is None else f.diff_ci90[1],
                        f"{m}_verdict": f.verdict,
                        f"{m}_mcnemar_p": f.mcnemar_p,
                        f"{m}_n_test": f.n_test,
                        f"{m}_method": f.method,
                    }
                )
            rows.append(row)
        return pd.DataFrame(rows)

    def markdown(self) -> str:
        """The sentence, how to read it, and the verdict table (Markdown, for the parent run's
        description)."""
        return answer_text.markdown(self)

    def metrics(self) -> dict[str, float]:
        """The answer's figures as ``{name: float}`` for the parent run: ``answer_<cost>``,
        ``answer_<m>``, ``answer_<m>_lo``/``_hi``, ``answer_<m>_diff``/``_diff_lo``/``_diff_hi``
        (90% CI), ``baseline_<m>``, and ``n_<verdict>`` counts."""
        out: dict[str, float] = {}
        if self.answer is not None:
            if self.cost_name:
                out[f"answer_{self.cost_name}"] = self.answer.cost
            for m, f in self.answer.figures.items():
                out[f"answer_{m}"] = f.mean
                out[f"answer_{m}_lo"], out[f"answer_{m}_hi"] = f.ci
                if f.diff is not None:
                    out[f"answer_{m}_diff"] = f.diff
                    out[f"answer_{m}_diff_lo"], out[f"answer_{m}_diff_hi"] = f.diff_ci90
        base = self.by_name(self.baseline)
        if base is not None:
            for m, f in base.figures.items():
                out[f"baseline_{m}"] = f.mean
        for v in stats.VERDICTS:
            out[f"n_{v}"] = float(sum(c.verdict == v for c in self.configurations))
        return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(float(v))}


# ------------------------------------------------------------------------------------------------
# the computation
# ------------------------------------------------------------------------------------------------


def _cost_name(objectives: Mapping[str, str], columns: Sequence[str]) -> str | None:
    for m in objectives:
        if is_cost(m) and m in columns:
            return m
    for m in ("bits_per_param", "bits"):
        if m in columns:
            return m
    return None


def _grid(frame: pd.DataFrame, column: str, cells: np.ndarray) -> np.ndarray:
    """[C, S] of ``column`` (float) with NaN where ``cells`` is -1."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    out = np.full(cells.shape, np.nan)
    has = cells >= 0
    out[has] = values[cells[has]]
    return out


def compute_answer(sweep_dir: str | Path, *, resamples: int = 2000, seed: int = 0) -> Answer:
    """The answer of the sweep in ``sweep_dir`` (module docstring). Raises
    :class:`analysis.load.NoTrials` without trials.parquet, ``ValueError`` for a spec it cannot
    use (a baseline matching several configurations, a bad tolerance)."""
    sweep = load_sweep(sweep_dir)
    spec = sweep.spec
    trials = sweep.trials
    objectives_all = dict(sweep.objectives)
    if not objectives_all:
        for metric in ("test_error", "w2"):
            if metric in trials.columns:
                objectives_all = {metric: "min"}
                break
    tolerances_spec = tolerances_from_spec(spec)
    cost_name = _cost_name(objectives_all, list(trials.columns))
    compared = {m: d for m, d in objectives_all.items() if not is_cost(m)}
    tolerances = {m: tolerances_spec.get(m, DEFAULT_TOLERANCE.get(m)) for m in compared}
    notes: list[str] = [
        f"{m} has no tolerance (no default for it): its verdict is inconclusive; give one as "
        f"objectives: {{{m}: {{direction: {d}, tolerance: ...}}}}"
        for m, d in compared.items()
        if tolerances[m] is None
    ]

    keys = [k for k in sweep.config_keys if k in trials.columns]
    names = configuration_names(trials, keys)
    trials = trials.assign(_configuration=names.to_numpy())
    order = list(dict.fromkeys(trials["_configuration"]))
    ok = trials[(trials["status"] == "ok")].copy()
    for m in compared:
        if m not in ok.columns:
            if len(ok):  # a typo or a metric the workload does not report
                raise ValueError(
                    f"objective {m!r}: no such column in {sweep.path / 'trials.parquet'}"
                )
            ok[m] = np.nan
    if len(ok):
        finite = np.isfinite(ok[list(compared)].to_numpy(dtype=float)).all(axis=1)
        ok = ok[finite]
    # seeds by value (a repeat of a seed within a configuration gets its own slot)
    seed_col = ok["seed"] if "seed" in ok.columns else pd.Series(0, index=ok.index)
    occurrence = ok.groupby([ok["_configuration"], seed_col.astype(str)]).cumcount()
    seed_key = seed_col.astype(str) + "#" + occurrence.astype(str)
    seeds = sorted(set(seed_key), key=lambda s: (len(s), s))
    C, S = len(order), max(len(seeds), 1)
    cells = np.full((C, S), -1, dtype=np.int64)
    ok = ok.reset_index(drop=True)
    ci = {name: i for i, name in enumerate(order)}
    si = {s: j for j, s in enumerate(seeds)}
    for row, (name, s) in enumerate(zip(ok["_configuration"], seed_key, strict=True)):
        cells[ci[name], si[s]] = row
    n_ok = (cells >= 0).sum(axis=1)

    # the baseline
    first = trials.drop_duplicates("_configuration").set_index("_configuration").loc[order]
    shown_keys = list(dict.fromkeys([*keys, *(["variant"] if "variant" in first.columns else [])]))
    config_dicts = [
        {**record, "configuration": name}
        for name, record in zip(order, first[shown_keys].to_dict("records"), strict=True)
    ]
    baseline_spec = spec.get("baseline")
    found = select_baseline(baseline_spec, config_dicts)
    if baseline_spec is not None and len(found) != 1:
        which = ": " + ", ".join(order[i] for i in found[:4]) if found else ""
        raise ValueError(
            f"spec key 'baseline': {baseline_spec!r} matches {len(found)} configurations "
            f"(expected exactly one){which}"
        )
    base = found[0] if found else None
    if base is not None and n_ok[base] == 0:
        notes.append(f"the baseline {order[base]} has no ok trial: nothing to compare against")
        base_usable = None
    else:
        base_usable = base
    if baseline_spec is not None:
        baseline_note = f"the spec's baseline: {baseline_spec!r}"
    elif base is not None:
        baseline_note = "the one configuration whose formats are all fp32"
    else:
        baseline_note = (
            "none: the spec names no baseline and not exactly one configuration has all "
            "formats fp32 (give one with the spec key 'baseline')"
        )

    # predictions
    rng = np.random.default_rng(seed)
    per_example = [m for m in compared if m in stats.ADDITIVE or m in stats.RESAMPLED]
    preds, why = (None, None)
    if per_example and len(ok):
        preds, why = read_predictions(sweep.path, list(ok["trial_id"]), per_example)
        if why:
            notes.append(f"no two-way bootstrap: {why}; t-intervals over seeds instead")
    n_test = preds.n_test if preds is not None else None
    weights = stats.multinomial_counts(rng, resamples, n_test) if preds is not None else None
    seed_w = stats.multinomial_counts(rng, resamples, S).astype(np.float64)

    estimates: dict[str, stats.Estimate] = {}
    diffs: dict[str, stats.Estimate] = {}
    for m in compared:
        values = _grid(ok, m, cells) if len(ok) else np.full((C, S), np.nan)
        draws = losses = None
        ms_res = None
        if preds is not None and m in preds.losses:
            losses = np.full((C, S, n_test), np.nan, dtype=np.float32)
            has = cells >= 0
            losses[has] = preds.losses[m][cells[has]]
            values = np.where(has, losses.mean(axis=2, dtype=np.float64), np.nan)
            draws = stats.test_draws_additive(losses, weights)
            ms_res = stats.decompose(losses).ms_res
        elif preds is not None and m == "test_ece" and preds.ece is not None:
            bins = np.zeros((C, S, n_test), dtype=np.int64)
            gaps = np.full((C, S, n_test), np.nan, dtype=np.float32)
            has = cells >= 0
            bins[has] = preds.ece[0][cells[has]]
            gaps[has] = preds.ece[1][cells[has]]
            values = stats.ece_values(bins, gaps)
            draws = stats.test_draws_ece(bins, gaps, weights)
        estimates[m] = stats.estimate(values, draws, seed_w, n_test, ms_res)
        if base_usable is not None:
            diffs[m] = stats.differences(values, draws, seed_w, n_test, base_usable, losses)

    # McNemar on the seed-majority errors
    mcnemar: dict[int, float] = {}
    if preds is not None and preds.wrong is not None and base_usable is not None:
        has = cells >= 0
        wrong = np.zeros((C, S, n_test), dtype=np.float32)
        wrong[has] = preds.wrong[cells[has]]
        majority = wrong.sum(axis=1) / np.maximum(n_ok, 1)[:, None] > 0.5
        b01 = (majority & ~majority[base_usable][None]).sum(axis=1)
        b10 = (~majority & majority[base_usable][None]).sum(axis=1)
        p_values = stats.mcnemar_p(b01, b10)
        for c in range(C):
            if n_ok[c] and c != base_usable:
                mcnemar[c] = float(p_values[c])

    # costs
    cost = np.full(C, np.nan)
    bpp = np.full(C, np.nan)
    for column, target in ((cost_name, cost), ("bits_per_param", bpp)):
        if column and column in trials.columns:
            values = pd.to_numeric(trials[column], errors="coerce")
            target[:] = values.groupby(trials["_configuration"]).mean().reindex(order).to_numpy()

    # front probability (objectives in minimisation form, the cost fixed)
    front_p = np.full(C, np.nan)
    if compared and len(ok):
        signs = np.array([1.0 if d == "min" else -1.0 for d in compared.values()])
        draws = np.stack([estimates[m].draws for m in compared], axis=2) * signs
        draws[:, n_ok == 0, :] = np.nan
        front_p = stats.front_probability(draws, cost if cost_name else None)
        front_p[n_ok == 0] = np.nan

    # verdicts and figures
    intervals90 = {m: d.interval(stats.EQUIVALENCE_LEVEL) for m, d in diffs.items()}
    trial_ids = trials.groupby("_configuration", sort=False)["trial_id"].agg(list).to_dict()
    configurations = []
    for c in range(C):
        figures = {}
        for m, d in compared.items():
            e = estimates[m]
            lo, hi = float(e.lo[c]), float(e.hi[c])
            if m in NONNEGATIVE:  # the interval of a rate or a loss stops at 0 (and 1)
                lo, hi = max(lo, 0.0), hi
            if _percent(m) or m in ("test_ece", "ood_auroc"):
                lo, hi = max(lo, 0.0), min(hi, 1.0)
            fig = Figures(
                mean=float(e.mean[c]),
                ci=(lo, hi),
                n_seeds=int(e.n[c]),
                n_test=n_test if e.method[c] in (stats.TWO_WAY, stats.TEST_ONLY) else None,
                method=str(e.method[c]),
            )
            if m in diffs and n_ok[c]:
                dd = diffs[m]
                lo90, hi90 = intervals90[m]
                fig.diff = float(dd.mean[c])
                fig.diff_ci = (float(dd.lo[c]), float(dd.hi[c]))
                fig.diff_ci90 = (float(lo90[c]), float(hi90[c]))
                fig.verdict = stats.verdict(
                    fig.diff_ci[0], fig.diff_ci[1], *fig.diff_ci90, tolerances.get(m), d
                )
                if m == "test_error" and c in mcnemar:
                    fig.mcnemar_p = mcnemar[c]
            figures[m] = fig
        if n_ok[c] == 0:
            verdict = "failed"
        elif c == base_usable:
            verdict = "baseline"
            for fig in figures.values():
                fig.verdict = "baseline"
        elif base_usable is None:
            verdict = "inconclusive"
        else:
            verdict = stats.combine([f.verdict for f in figures.values()])
        tids = [str(t) for t in trial_ids[order[c]]]
        variant = config_dicts[c].get("variant")
        configurations.append(
            Configuration(
                configuration=order[c],
                variant=None if _missing(variant) else str(variant),
                cost=float(cost[c]),
                verdict=verdict,
                front_probability=None if not np.isfinite(front_p[c]) else float(front_p[c]),
                figures=figures,
                trial_ids=tids,
                n_seeds=int(n_ok[c]),
                bits_per_param=None if not np.isfinite(bpp[c]) else float(bpp[c]),
            )
        )
    first_obj = next(iter(compared), None)

    def sort_key(cfg: Configuration):
        value = cfg.figures[first_obj].mean if first_obj else 0.0
        sign = 1.0 if not first_obj or compared[first_obj] == "min" else -1.0
        return (
            cfg.cost if math.isfinite(cfg.cost) else math.inf,
            sign * value if math.isfinite(value) else math.inf,
            cfg.configuration,
        )

    configurations.sort(key=sort_key)

    # the knee on configuration means
    knee_name = None
    scored = [c for c in configurations if c.n_seeds and compared]
    if scored:
        frame = pd.DataFrame(
            {
                **{m: [c.figures[m].mean for c in scored] for m in compared},
                **({"_cost": [c.cost for c in scored]} if cost_name else {}),
            }
        )
        objs = {**compared, **({"_cost": "min"} if cost_name else {})}
        signs = np.array([1.0 if d == "min" else -1.0 for d in objs.values()])
        f = frame[list(objs)].to_numpy(dtype=float) * signs
        mask = non_dominated(f)
        if mask.any():
            front = frame[mask].reset_index(drop=True)
            idx = np.flatnonzero(mask)
            knee_name = scored[idx[knee(front, objs).index]].configuration

    baseline_name = order[base] if base is not None else None
    pick = [c for c in configurations if c.verdict in ("equivalent", "better")]
    if not compared:
        kind = "no-objective"
    elif base_usable is None:
        kind = "no-baseline"
    else:
        kind = "answer" if pick else "none"
    methods = {str(k): stats.METHOD_TEXT[str(k)] for e in estimates.values() for k in set(e.method)}
    workload = str(
        spec.get("workload") or (trials["workload"].iloc[0] if "workload" in trials else "")
    )
    answer = Answer(
        sweep=sweep.name,
        path=sweep.path,
        baseline=baseline_name,
        baseline_note=baseline_note,
        cost_name=cost_name,
        objectives=compared,
        tolerances=tolerances,
        configurations=configurations,
        answer=pick[0] if kind == "answer" else None,
        kind=kind,
        knee=knee_name,
        n_test=n_test,
        resamples=resamples,
        methods=methods,
        example_word="test images"
        if any(w in workload for w in IMAGE_WORKLOADS)
        else "test examples",
        notes=notes,
    )
    answer.sentence = answer_text.sentence(answer)
    return answer


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis.answer",
        description="How few bits suffice: the sweep's answer with confidence intervals.",
    )
    parser.add_argument("sweep_dir", help="a sweep directory RESULTS/<name>")
    parser.add_argument("--json", action="store_true", help="end with one JSON object (one line)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    args = parser.parse_args(argv)
    try:
        if args.resamples < 2:
            raise ValueError(f"--resamples {args.resamples}: need at least 2")
        answer = compute_answer(args.sweep_dir, resamples=args.resamples, seed=args.seed)
    except (NoTrials, FileNotFoundError, NotADirectoryError, ValueError) as error:
        print(f"error: {error}".splitlines()[0], file=sys.stderr)
        return 2
    print(answer.sentence)
    for line in answer.lines():
        print("  " + line)
    for note in answer.notes:
        print(f"note: {note}")
    if args.json:
        print(json.dumps(answer.to_json(), allow_nan=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
