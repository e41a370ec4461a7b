"""The report's HTML page (``index.html``): the answer's sentence and verdict table first, the
cost panel, the figures with their captions, the summary and the Pareto tables."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.answer import Answer
from analysis.load import Sweep

#: what each figure shows, under it on the page (by file name; ``{metric}``/``{axis}`` filled in)
CAPTIONS: dict[str, str] = {
    "answer": "The answer for {metric}: each configuration's mean over seeds with its 95% CI "
    "(seeds and test examples both resampled) against its {axis} on a log2 axis, coloured by "
    "its verdict against the baseline; the grey band is the baseline's 95% CI, the dotted "
    "lines baseline ± tolerance, the staircase the front of configuration means, the circled "
    "point the answer. Below: each configuration's difference against the baseline on the same "
    "seeds and test examples with its 90% CI, and the ± tolerance band (green): a bar inside "
    "the band is equivalent. The differences are much tighter than the means' intervals, "
    "because the test set's noise is shared and cancels.",
    "vs": "{metric} against {axis} (log2 axis) by accumulator mode (left) and format family "
    "(right): configuration means with 95% CIs; each staircase is that group's front of "
    "configuration means.",
    "reliability.png": "Reliability diagrams of the best trial of each accumulator mode: "
    "accuracy per confidence bin (15 bins) against the diagonal of perfect calibration; bars "
    "below it are over-confident.",
    "samples.png": "Samples (coordinate 0, chains and seeds pooled) against the target density, "
    "one panel per accumulator mode.",
    "hypervolume.png": "Hypervolume of the first k trials against k, in start order: a curve "
    "still rising at the end means more trials would likely move the front.",
}

#: the page's names of summary entries that need a word of explanation
SUMMARY_LABELS: dict[str, str] = {
    "hypervolume": "hypervolume (the area of objective space the trials' front dominates up to "
    "the reference point; larger is better; only for comparing sweeps under one reference)",
    "knee configuration": "knee configuration (the front member of configuration means "
    "closest to the ideal point, objectives scaled to [0, 1])",
}


def _table_html(frame: pd.DataFrame, max_rows: int = 200) -> str:
    if frame.empty:
        return "<p><em>none</em></p>"
    note = (
        f"<p>first {max_rows} of {len(frame)} rows; all in the CSV</p>"
        if len(frame) > max_rows
        else ""
    )
    return note + frame.head(max_rows).to_html(
        index=False,
        escape=True,
        na_rep="",
        float_format=lambda v: f"{v:.4g}",
        border=0,
        classes="table",
    )


def _short(value: Any) -> str:
    """A summary value for the page: floats to 4 significant digits, mappings as k: v."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_short(v)}" for k, v in value.items())
    return str(value)


def _answer_html(answer: Answer | None, error: str | None) -> str:
    """The page's first section: the sentence, the verdict rule, the data, the verdict table."""
    e = html.escape
    if answer is None:
        return (
            "<h2>Answer</h2><p><em>No answer: "
            + e(error or "no objective to compare")
            + "</em></p>"
        )
    seeds = sorted({c.n_seeds for c in answer.configurations if c.n_seeds})
    seed_text = (
        "no ok trial"
        if not seeds
        else f"{seeds[0]} seed{'s' if seeds[0] != 1 else ''} per configuration"
        if len(seeds) == 1
        else f"{seeds[0]} to {seeds[-1]} seeds per configuration"
    )
    test_text = (
        f"{answer.n_test:,} test examples shared by every trial"
        if answer.n_test
        else "no stored predictions (intervals over seeds only)"
    )
    tol = ", ".join(
        f"{m} ±{v:g}" if v is not None else f"{m}: none (inconclusive)"
        for m, v in answer.tolerances.items()
    )
    methods = "; ".join(answer.methods.values())
    notes = "".join(f'<p class="note"><em>{e(n)}</em></p>' for n in answer.notes)
    table = answer.table()
    return f"""<h2>Answer</h2>
<p class="answer"><strong>{e(answer.sentence)}</strong></p>
<p>Data: {e(test_text)}; {e(seed_text)}; {answer.resamples:,} bootstrap resamples
({e(methods)}). Baseline: {e(answer.baseline or "none")} ({e(answer.baseline_note)}).
Tolerances: {e(tol or "none")}. Verdicts: <em>equivalent</em> when the 90% CI of the difference
against the baseline lies inside ±tolerance; <em>worse</em> or <em>better</em> when it does not
and the 95% CI lies entirely on one side of 0; otherwise <em>inconclusive</em> (too few seeds
or test examples to tell); <em>failed</em>: no seed finished. The front probability is the
share of resamples in which the configuration is on the Pareto front.</p>
{notes}
<p>Verdict table ({len(table)} configurations, sorted by cost; every figure at full precision
in <a href="verdicts.csv">verdicts.csv</a> and <a href="answer.json">answer.json</a>):</p>
{_table_html(table, max_rows=400)}
"""


def _html(
    sweep: Sweep,
    summary: dict[str, Any],
    tables: Mapping[str, pd.DataFrame],
    pngs: Sequence[Path],
    notes: Sequence[str] = (),
    answer_section: str = "",
    captions: Mapping[str, str] | None = None,
) -> str:
    e = html.escape
    captions = captions or {}
    rows = "".join(
        f"<tr><th>{e(SUMMARY_LABELS.get(str(k), str(k)))}</th><td>{e(_short(v))}</td></tr>"
        for k, v in summary.items()
        if k != "answer"
    )
    images = "".join(
        f'<figure><img src="{e(p.name)}" alt="{e(p.stem)}"><figcaption>'
        f"{e(captions.get(p.name, p.name))} <code>{e(p.name)}</code></figcaption></figure>"
        for p in pngs
    )
    sections = "".join(f"<h2>{e(title)}</h2>{_table_html(t)}" for title, t in tables.items())
    remarks = "".join(f'<p class="note"><em>{e(note)}</em></p>' for note in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(sweep.name)}: sweep report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; max-width: 1250px; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin-bottom: 1em; }}
th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}
th {{ background: #f0f0f0; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
figure {{ margin: 1em 0; }}
figcaption {{ font-size: 0.9em; color: #333; max-width: 1000px; }}
p.answer {{ font-size: 1.15em; background: #f3f8f3; padding: 0.6em; border-left: 4px solid #2a2; }}
</style></head>
<body>
<h1>Sweep {e(sweep.name)}</h1>
{answer_section}
<h2>Figures</h2>{remarks}{images or "<p><em>no figures</em></p>"}
<h2>Summary</h2>
<p>Directory {e(str(sweep.path))}. A trial is on the Pareto front when no other ok trial is at
least as good on every objective and better on one; diverged and failed trials are never on it.
A configuration is the set of trials that differ only in their seed; the knee is the member of
the front of configuration means closest to the ideal point after scaling each objective to
[0, 1] over that front. The tables leave out the config keys that are the same in every trial;
the CSV files next to this page have them all (and Parquet files the same tables, typed).</p>
<table>{rows}</table>
{sections}
</body></html>
"""


def _cost_panel_html(panel: pd.DataFrame, notes: Sequence[str], baseline: str | None) -> str:
    """The cost panel: each front configuration's cost columns beside the baseline's, as
    ratios (configuration over baseline: below 1 is cheaper)."""
    e = html.escape
    remarks = "".join(f'<p class="note"><em>{e(n)}</em></p>' for n in notes)
    if panel.empty:
        return f"<h2>Costs against float32</h2>{remarks or '<p><em>no cost columns</em></p>'}"
    return f"""<h2>Costs against float32</h2>
<p>Every cost column of the configurations on the front of configuration means (means over
their ok trials) beside the baseline's ({e(baseline or "none")}): <code>&lt;column&gt;_ratio</code>
is the configuration's over the baseline's, below 1 where it is cheaper (for <code>ess</code>
and <code>ess_per_s</code> above 1 is better). All of it in
<a href="cost_panel.csv">cost_panel.csv</a> (typed: cost_panel.parquet).</p>
{remarks}
{_table_html(panel)}
"""
