"""The report page's pieces (analysis.report_page): tables escaped and cut at their row limit,
summary values short."""

from __future__ import annotations

import pandas as pd

from analysis.report_page import _short, _table_html


def test_tables_are_escaped_and_cut_with_a_note() -> None:
    assert _table_html(pd.DataFrame()) == "<p><em>none</em></p>"
    frame = pd.DataFrame({"name": ["<b>x</b>", "fixed<8,3>", "y"], "value": [0.123456, None, 2.0]})
    html = _table_html(frame, max_rows=2)
    assert html.startswith("<p>first 2 of 3 rows; all in the CSV</p>")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "fixed&lt;8,3&gt;" in html and ">0.1235<" in html and ">y<" not in html
    assert "first" not in _table_html(frame, max_rows=3)


def test_summary_values_are_short() -> None:
    assert _short(0.123456) == "0.1235"
    assert _short({"test_error": 0.0712345, "bits": "fp32"}) == "test_error: 0.07123, bits: fp32"
    assert _short(7) == "7"
