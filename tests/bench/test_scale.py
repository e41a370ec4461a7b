"""bench.scale end to end on tiny sizes, through the real sweep command: the JSON line is its
contract, and its figures must be physically possible (not only positive)."""

from __future__ import annotations

import math

import pytest

from bench import scale
from tests.bench.helpers import last_json

pytestmark = pytest.mark.slow


def test_bench_scale(capsys: pytest.CaptureFixture[str]) -> None:
    assert scale.main(["--sizes", "3", "6", "--steps", "20", "--profile", "--json"]) == 0
    out = last_json(capsys)
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
