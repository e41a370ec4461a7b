"""Step-size schedules (ALGORITHMS.md §7): values at chosen steps against the formulas."""

from __future__ import annotations

import itertools
import math

import pytest

from lowprec.schedules import Schedule


def test_constant() -> None:
    s = Schedule(0.3, 100)
    assert [s.lr(k) for k in (0, 50, 99)] == [0.3, 0.3, 0.3]
    assert all(s.is_sampling(k) for k in range(100))


def test_decay_formula_at_chosen_steps() -> None:
    # K = 1000: factor 1 up to t = 0.5, then 1 - 0.99 (t - 0.5)/0.4, then 0.01 from t = 0.9
    s = Schedule(2.0, 1000, kind="decay")
    assert s.lr(0) == 2.0
    assert s.lr(500) == 2.0
    assert s.lr(700) == pytest.approx(2.0 * (1 - 0.99 * 0.2 / 0.4))  # = 2 · 0.505
    assert s.lr(900) == pytest.approx(2.0 * 0.01)
    assert s.lr(999) == pytest.approx(0.02)
    lrs = [s.lr(k) for k in range(1000)]
    assert all(a >= b for a, b in itertools.pairwise(lrs))  # non-increasing


def test_decay_per_epoch_changes_only_at_epoch_boundaries() -> None:
    s = Schedule(1.0, 100, kind="decay", steps_per_epoch=10)  # 10 epochs
    # epoch 7 (steps 70..79): t = 0.7 -> 1 - 0.99 · 0.5
    assert [s.lr(k) for k in range(70, 80)] == pytest.approx([1 - 0.99 * 0.5] * 10)
    assert s.lr(69) != s.lr(70)


def test_cyclical_values_and_stages() -> None:
    # K = 100, M = 4 -> C = 25; β = 0.8: r < 0.8 explores (steps 0..19 of each cycle)
    s = Schedule(0.5, 100, kind="cyclical", cycles=4, explore_fraction=0.8)
    assert s.cycle_length == 25
    for k in (0, 7, 24, 25, 60, 99):
        r = (k % 25) / 25
        assert s.lr(k) == pytest.approx(0.5 / 2 * (math.cos(math.pi * r) + 1))
        assert s.is_sampling(k) == (r >= 0.8)
    assert s.lr(25) == pytest.approx(0.5)  # restarts at lr0
    assert [k for k in range(25) if s.is_sampling(k)] == [20, 21, 22, 23, 24]


def test_cyclical_uneven_cycles_use_ceil() -> None:
    s = Schedule(1.0, 10, kind="cyclical", cycles=3)  # C = ceil(10/3) = 4
    assert s.cycle_length == 4
    assert s.lr(8) == pytest.approx(1.0)  # third cycle starts at step 8
    assert s.is_cycle_sample_point(9)  # the short last cycle's last step
    assert s.is_cycle_sample_point(3) and s.is_cycle_sample_point(7)


def test_cycle_sample_points_epochs() -> None:
    # 4 cycles of 5 epochs of 10 steps, 3 samples per cycle at the ends of its last 3 epochs
    s = Schedule(
        1.0,
        200,
        kind="cyclical",
        cycles=4,
        explore_fraction=0.2,
        steps_per_epoch=10,
        samples_per_cycle=3,
    )
    points = [k for k in range(200) if s.is_sample_step(k)]
    # the exact points: cycle c spans [50c, 50c + 49]; its last 3 epoch ends are 50c + 29/39/49
    assert points == [50 * c + e for c in range(4) for e in (29, 39, 49)]


def test_cycle_sample_points_skip_exploration() -> None:
    # β = 0.9 of a 10-step cycle leaves one sampling step: asking for 3 gives 1
    s = Schedule(1.0, 20, kind="cyclical", cycles=2, explore_fraction=0.9, samples_per_cycle=3)
    assert [k for k in range(20) if s.is_sample_step(k)] == [9, 19]


def test_burn_in_and_thin() -> None:
    s = Schedule(1.0, 20)
    assert [k for k in range(20) if s.is_sample_step(k, burn_in=10, thin=3)] == [12, 15, 18]
    assert [k for k in range(5) if s.is_sample_step(k)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"kind": "cosine"}, "schedule"),
        ({"cycles": 0}, "cycles"),
        ({"cycles": 11}, "cycles"),
        ({"explore_fraction": 1.5}, "explore_fraction"),
        ({"lr": -1.0}, "lr"),
    ],
)
def test_bad_values_name_the_key(kwargs: dict, key: str) -> None:
    args = {"lr": 1.0, "total_steps": 10, **kwargs}
    with pytest.raises(ValueError, match=key):
        Schedule(**args)


def test_step_out_of_range() -> None:
    with pytest.raises(ValueError, match="outside"):
        Schedule(1.0, 10).lr(10)


@pytest.mark.parametrize(
    "config",
    [
        {"schedule": "constant"},
        {"schedule": "decay"},
        {"schedule": "cyclical", "cycles": 3, "explore_fraction": 0.0},
        {"schedule": "cyclical", "cycles": 3, "explore_fraction": 0.8},
        {"schedule": "cyclical", "cycles": 4, "explore_fraction": 0.97},
        {"schedule": "cyclical", "cycles": 7, "explore_fraction": 1.0},
    ],
)
def test_collects_any_agrees_with_every_step(config: dict) -> None:
    """collects_any (O(cycles)) against the brute force over every step."""
    for total in (1, 5, 37, 100):
        if total < config.get("cycles", 1):
            continue  # more cycles than steps is rejected by Schedule
        for burn_in, thin in ((0, 1), (3, 2), (36, 1), (99, 1), (10, 30)):
            kw = {"cycles": 1, "explore_fraction": 0.0, **config}
            sched = Schedule(0.1, total, kw.pop("schedule"), **kw)
            brute = any(sched.is_sample_step(k, burn_in, thin) for k in range(total))
            assert sched.collects_any(burn_in, thin) == brute, (total, burn_in, thin)
