"""How the answer's numbers are written (analysis.answer_text): error-like metrics in percent
and their differences in points, others to 3 significant digits, tolerances in the units of
their differences, and "n/a" for what is missing."""

from __future__ import annotations

import math

import pytest

from analysis.answer_text import _fmt, _fmt_diff, _fmt_tol, _sig


@pytest.mark.parametrize(
    ("metric", "value", "written"),
    [
        ("test_error", 0.0712, "7.1%"),
        ("test_error", 0.005, "0.50%"),
        ("test_nll", 0.123456, "0.123"),
        ("bits_per_param", 8.0, "8"),
        ("test_error", None, "n/a"),
        ("test_nll", math.nan, "n/a"),
    ],
)
def test_values(metric: str, value: float | None, written: str) -> None:
    assert _fmt(metric, value) == written


def test_values_without_their_unit() -> None:
    assert _fmt("test_error", 0.0712, unit=False) == "7.1"
    assert _fmt_diff("test_error", 0.004, unit=False) == "+0.4"


@pytest.mark.parametrize(
    ("metric", "value", "written"),
    [
        ("test_error", 0.004, "+0.4 pt"),
        ("test_error", -0.0005, "-0.05 pt"),
        ("test_error", 0.0, "+0.0 pt"),
        ("test_nll", 0.012345, "+0.0123"),
        ("test_nll", -2.0, "-2"),
        ("test_error", math.inf, "n/a"),
    ],
)
def test_differences(metric: str, value: float, written: str) -> None:
    assert _fmt_diff(metric, value) == written


def test_tolerances_and_significant_digits() -> None:
    assert _fmt_tol("test_error", 0.005) == "0.5" and _fmt_tol("test_nll", 0.02) == "0.02"
    assert [_sig(v) for v in (None, 0.0, 1234567.0, 0.000123456, 2.5)] == [
        "n/a", "0", "1.23e+06", "0.000123", "2.5"
    ]  # fmt: skip
