"""bench.chains end to end on tiny sizes, ending with one JSON object (its contract); the
figures themselves are not asserted (timings belong to bench/, not to tests), their ratios are."""

from __future__ import annotations

import pytest

from bench import chains
from tests.bench.helpers import last_json


def test_bench_chains(capsys: pytest.CaptureFixture[str]) -> None:
    """Per chain-step figures for each size and for one-chain trials, ratios consistent."""
    chains.main(
        ["--steps", "20", "--rounds", "1", "--trials", "1", "--sizes", "10", "1000", "--json"]
    )
    out = last_json(capsys)
    per = out["steps_ns_per_chain_step"]
    assert set(per) == {"10", "1000"} and all(0 < v < 1e9 for v in per.values())
    assert out["per_chain_step_1000_over_10"] == pytest.approx(per["1000"] / per["10"])
    trials = out["trials_ns_per_chain_step"]
    assert out["one_chain_trials_over_1000"] == pytest.approx(
        trials["one-chain trials"] / trials["1000"]
    )
    assert out["executor"] == "fused"
