"""bench.scale and bench.sweep end to end on tiny sizes, through the real sweep command: the
JSON line is their contract, and its figures must be physically possible (not only positive)."""

from __future__ import annotations

import json
import math

import pytest

from bench import scale, sweep

pytestmark = pytest.mark.slow


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) > 1, "a table comes before the JSON line"
    return json.loads(lines[-1])


def test_bench_scale(capsys: pytest.CaptureFixture[str]) -> None:
    assert scale.main(["--sizes", "3", "6", "--steps", "20", "--profile", "--json"]) == 0
    out = _last_json(capsys)
    walls = {int(n): w for n, w in out["wall_s"].items()}
    assert sorted(walls) == [3, 6] and all(5 < w < 1800 for w in walls.values())
    (marginal,) = out["marginal_s_per_trial"].values()
    assert math.isclose(marginal, (walls[6] - walls[3]) / 3)
    assert 0 < out["consolidate_s"] < walls[6]  # a part of the sweep, not more than it
    assert out["profile"] and all(own >= 0 and cum >= own for _, own, cum, _ in out["profile"])
    # CPU by role: the driver and the trials' workers both worked, no role used more CPU than
    # the machine's cores had in the sweep's wall time, and the marginal CPU is their difference
    for n, cpu in out["cpu_s"].items():
        assert cpu["driver"] > 0.5 and cpu["trials"] > 0.1
        assert sum(cpu.values()) < out["cpus"] * walls[int(n)]
    (per_trial,) = out["marginal_cpu_s_per_trial"].values()
    for role, cost in per_trial.items():
        assert math.isclose(cost, (out["cpu_s"]["6"][role] - out["cpu_s"]["3"][role]) / 3)


def test_bench_sweep(capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep.main(["--trials", "3", "--trial-seconds", "0.3", "--json"]) == 0
    out = _last_json(capsys)
    assert out["compute_s"] > 0 and out["steps"] >= 1
    assert out["wall_excluded_s"] < out["wall_included_s"]  # start-up is part of the whole
    # no more compute than the slots can hold, start-up excluded or not
    assert 0 < out["efficiency_included"] < out["efficiency_excluded"] <= 1.0
    assert 0 < out["efficiency_bound"] <= 1.0
