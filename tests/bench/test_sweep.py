"""bench.sweep end to end on tiny sizes, through the real sweep command: the JSON line is its
contract, and its figures must be physically possible (not only positive)."""

from __future__ import annotations

import pytest

from bench import sweep
from tests.bench.helpers import last_json

pytestmark = pytest.mark.slow


def test_bench_sweep(capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep.main(["--trials", "3", "--trial-seconds", "0.3", "--json"]) == 0
    out = last_json(capsys)
    assert out["compute_s"] > 0 and out["steps"] >= 1
    assert out["wall_excluded_s"] < out["wall_included_s"]  # start-up is part of the whole
    # no more compute than the slots can hold, start-up excluded or not
    assert 0 < out["efficiency_included"] < out["efficiency_excluded"] <= 1.0
    assert 0 < out["efficiency_bound"] <= 1.0
