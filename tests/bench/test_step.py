"""bench.step end to end on tiny sizes, ending with one JSON object (its contract); the figures
themselves are not asserted, their ratios are."""

from __future__ import annotations

import pytest

from bench import step
from tests.bench.helpers import last_json


def test_bench_step(capsys: pytest.CaptureFixture[str]) -> None:
    """Both set-ups on both executors; the ratios are the ratios of the reported medians."""
    step.main(["--rounds", "1", "--steps", "1", "--json"])
    out = last_json(capsys)
    ms = out["ms"]
    assert all(0 < v < 60_000 for v in ms.values())
    assert out["executors"]["lp fused"] == "fused" and out["executors"]["lp eager"] == "eager"
    assert out["lp_over_fp32"] == pytest.approx(ms["lp fused"] / ms["fp32 fused"])
    assert out["lp_eager_over_fp32_eager"] == pytest.approx(ms["lp eager"] / ms["fp32 eager"])
    assert out["update_fused_over_eager"]["lp"] == pytest.approx(
        ms["lp fused update"] / ms["lp eager update"]
    )
