"""Non-dominated sets, seed pooling, hypervolume and the knee against hand-computable answers,
plus property tests of the front's defining conditions and of the hypervolume against an
independent inclusion–exclusion formula."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from analysis.pareto import (
    aggregate_seeds,
    dominated_by,
    hypervolume,
    hypervolume_history,
    knee,
    non_dominated,
    pareto_front,
    reference_point,
    split_by_status,
    to_minimisation,
)


def _frame(rows, columns=("test_error", "bits"), status=None):
    frame = pd.DataFrame(rows, columns=list(columns))
    frame["status"] = status or ["ok"] * len(frame)
    frame["trial_id"] = [f"t{i}" for i in range(len(frame))]
    return frame


# --- non-dominated sets: hand cases ------------------------------------------------------------


def test_one_point_is_its_own_front():
    assert non_dominated(np.array([[3.0, 4.0]])).tolist() == [True]


def test_duplicates_are_all_on_the_front():
    points = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 3.0]])
    assert non_dominated(points).tolist() == [True, True, False]


def test_tie_in_one_objective_is_broken_by_the_other():
    points = np.array([[1.0, 3.0], [1.0, 2.0], [0.5, 5.0]])
    assert non_dominated(points).tolist() == [False, True, True]


def test_all_dominated_but_one():
    points = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    assert non_dominated(points).tolist() == [True, False, False, False, False]


def test_non_finite_points_are_never_on_the_front():
    points = np.array([[np.nan, 0.0], [1.0, 1.0], [np.inf, -1.0]])
    assert non_dominated(points).tolist() == [False, True, False]


def test_max_and_min_mixed():
    # accuracy is maximised, bits minimised: (0.9, 8) and (0.95, 16) trade off; (0.85, 8) is
    # beaten by (0.9, 8) and (0.95, 32) by (0.95, 16).
    frame = _frame([[0.9, 8], [0.95, 16], [0.85, 8], [0.95, 32]], columns=("accuracy", "bits"))
    front = pareto_front(frame, {"accuracy": "max", "bits": "min"})
    assert front["trial_id"].tolist() == ["t0", "t1"]
    assert to_minimisation(front, {"accuracy": "max", "bits": "min"})[:, 0].tolist() == [
        -0.9,
        -0.95,
    ]


def test_only_ok_trials_compete_and_statuses_are_listed():
    # the diverged and the failed trial would dominate everything if they counted
    frame = _frame(
        [[0.0, 1], [0.1, 8], [0.2, 4], [np.nan, 2], [0.05, 4]],
        status=["diverged", "ok", "ok", "failed", "ok"],
    )
    objectives = {"test_error": "min", "bits": "min"}
    assert pareto_front(frame, objectives)["trial_id"].tolist() == ["t4"]
    split = split_by_status(frame, objectives)
    assert split["diverged"]["trial_id"].tolist() == ["t0"]
    assert split["failed"]["trial_id"].tolist() == ["t3"]
    assert split["ok"]["trial_id"].tolist() == ["t1", "t2", "t4"]


def test_ok_trial_with_a_missing_objective_is_incomplete_not_on_the_front():
    frame = _frame([[np.nan, 1], [0.1, 8]])
    objectives = {"test_error": "min", "bits": "min"}
    assert split_by_status(frame, objectives)["incomplete"]["trial_id"].tolist() == ["t0"]
    assert pareto_front(frame, objectives)["trial_id"].tolist() == ["t1"]


def test_fronts_per_group():
    frame = _frame([[0.1, 8], [0.2, 4], [0.3, 16], [0.05, 16], [0.4, 4]])
    frame["accumulator"] = ["full", "full", "low", "low", "low"]
    front = pareto_front(frame, {"test_error": "min", "bits": "min"}, by="accumulator")
    assert sorted(front["trial_id"]) == ["t0", "t1", "t3", "t4"]  # t2 loses to t3 within low
    assert set(front.loc[front["accumulator"] == "low", "trial_id"]) == {"t3", "t4"}


def test_unknown_objective_and_bad_direction_name_the_key():
    frame = _frame([[0.1, 8]])
    with pytest.raises(ValueError, match="test_nll"):
        pareto_front(frame, {"test_nll": "min"})
    with pytest.raises(ValueError, match="minimize"):
        pareto_front(frame, {"test_error": "minimize"})


@settings(max_examples=200, deadline=None)
@given(
    arrays(
        np.int64,
        st.tuples(st.integers(1, 25), st.integers(1, 4)),
        elements=st.integers(0, 4),  # a small range makes ties and duplicates common
    )
)
def test_front_property(points):
    """No member is dominated by any point; every non-member is dominated by some member."""
    points = points.astype(float)
    mask = non_dominated(points)
    assert mask.any()
    assert not dominated_by(points[mask], points).any()
    assert dominated_by(points[~mask], points[mask]).all()


# --- seed pooling ------------------------------------------------------------------------------


def test_aggregate_seeds_mean_std_count():
    rows = []
    for fmt, errors in (("fixed<8,6>", [0.1, 0.2, 0.3]), (None, [0.05, 0.07, 0.5])):
        for seed, error in enumerate(errors):
            rows.append(
                {
                    "weight_format": fmt,
                    "bits": 8,
                    "seed": seed,
                    "test_error": error,
                    "status": "failed" if error == 0.5 else "ok",
                    "trial_id": f"{fmt}{seed}",
                }
            )
    pooled = aggregate_seeds(pd.DataFrame(rows), ["weight_format", "bits"], ["test_error"])
    assert len(pooled) == 2
    fixed = pooled[pooled["weight_format"] == "fixed<8,6>"].iloc[0]
    assert fixed["test_error"] == pytest.approx(0.2)
    assert fixed["test_error_std"] == pytest.approx(np.std([0.1, 0.2, 0.3], ddof=1))
    assert fixed["n_seeds"] == 3
    fp32 = pooled[pooled["weight_format"].isna()].iloc[0]  # a null config value is a value
    assert fp32["n_seeds"] == 2  # the failed seed is not pooled
    assert fp32["test_error"] == pytest.approx(0.06)
    assert fp32["trial_ids"] == "None0 None1"


def test_aggregate_seeds_single_seed_has_nan_spread():
    frame = pd.DataFrame(
        {"lr": [0.1], "seed": [0], "test_error": [0.3], "status": ["ok"], "trial_id": ["a"]}
    )
    pooled = aggregate_seeds(frame, ["lr"], ["test_error"])
    assert np.isnan(pooled["test_error_std"].iloc[0]) and pooled["n_seeds"].iloc[0] == 1


# --- hypervolume -------------------------------------------------------------------------------


def test_hypervolume_one_box_2d_and_3d():
    assert hypervolume(np.array([[1.0, 2.0]]), np.array([3.0, 5.0])) == pytest.approx(2 * 3)
    assert hypervolume(np.array([[1.0, 1.0, 1.0]]), np.array([2.0, 3.0, 4.0])) == pytest.approx(6)


def test_hypervolume_two_overlapping_boxes_2d():
    # [1,4]x[3,4] (area 3) ∪ [2,4]x[1,4] (area 6), overlap [2,4]x[3,4] (area 2): 7
    points = np.array([[1.0, 3.0], [2.0, 1.0]])
    assert hypervolume(points, np.array([4.0, 4.0])) == pytest.approx(7.0)


def test_hypervolume_two_overlapping_boxes_3d():
    # [0,2]²x[1,2] (4) ∪ [1,2]²x[0,2] (2), overlap [1,2]³ (1): 5
    points = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    assert hypervolume(points, np.array([2.0, 2.0, 2.0])) == pytest.approx(5.0)


def test_hypervolume_ignores_dominated_points_and_points_beyond_the_reference():
    ref = np.array([4.0, 4.0])
    base = hypervolume(np.array([[1.0, 3.0], [2.0, 1.0]]), ref)
    more = np.array([[1.0, 3.0], [2.0, 1.0], [3.0, 3.0], [0.0, 4.0], [5.0, 0.0], [np.nan, 0.0]])
    assert hypervolume(more, ref) == pytest.approx(base)
    assert hypervolume(np.zeros((0, 2)), ref) == 0.0


def _inclusion_exclusion(points, ref):
    """HV = Σ_{S ≠ ∅} (-1)^{|S|+1} Π_j (r_j - max_{p ∈ S} p_j)_+: independent of the slicing."""
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(points, size):
            corner = np.max(subset, axis=0)
            total += (-1) ** (size + 1) * np.prod(np.clip(ref - corner, 0, None))
    return total


@settings(max_examples=150, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 4)),
        elements=st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]),
    )
)
def test_hypervolume_matches_inclusion_exclusion(points):
    ref = np.full(points.shape[1], 3.0)  # points with a coordinate at 3 add nothing
    assert hypervolume(points, ref) == pytest.approx(_inclusion_exclusion(points, ref), abs=1e-9)


def test_hypervolume_matches_optuna_wfg():
    wfg = pytest.importorskip("optuna._hypervolume").compute_hypervolume
    rng = np.random.default_rng(0)
    for d in (2, 3, 4):
        points = rng.uniform(0, 1, (40, d))
        ref = np.full(d, 1.1)
        assert hypervolume(points, ref) == pytest.approx(wfg(points, ref), rel=1e-12)


def test_reference_point_worst_plus_margin_and_explicit():
    frame = _frame([[0.1, 4], [0.3, 8], [0.2, 16]])
    objectives = {"test_error": "min", "bits": "min"}
    ref = reference_point(frame, objectives)
    assert ref == pytest.approx([0.3 + 0.1 * 0.2, 16 + 0.1 * 12])
    # max direction: worst is the smallest accuracy, in minimisation form -0.7 + 0.1 * 0.2
    acc = _frame([[0.9, 4], [0.7, 4]], columns=("accuracy", "bits"))
    ref = reference_point(acc, {"accuracy": "max", "bits": "min"})
    assert ref == pytest.approx([-0.7 + 0.02, 4 + 0.4])  # constant bits: margin 0.1 · |4|
    assert reference_point(frame, objectives, {"test_error": 1.0, "bits": 32}) == pytest.approx(
        [1.0, 32.0]
    )
    # a partial reference: bits derived from the trials
    partial = reference_point(frame, objectives, {"test_error": 1.0})
    assert partial == pytest.approx([1.0, 16 + 0.1 * 12])
    with pytest.raises(ValueError, match="test_nll"):
        reference_point(frame, objectives, {"test_nll": 1.0})


def test_hypervolume_history_is_monotone_and_ends_at_the_total():
    frame = _frame(
        [[0.3, 8], [0.0, 1], [0.2, 4], [0.1, 16], [0.15, 8]],
        status=["ok", "diverged", "ok", "ok", "ok"],
    )
    objectives = {"test_error": "min", "bits": "min"}
    ref = reference_point(frame, objectives)
    history = hypervolume_history(frame, objectives, ref)
    volumes = history["hypervolume"].to_numpy()
    assert (np.diff(volumes) >= 0).all()
    assert volumes[1] == volumes[0]  # the diverged trial adds nothing
    assert volumes[-1] == pytest.approx(
        hypervolume(to_minimisation(frame.drop(1), objectives), ref)
    )


# --- knee --------------------------------------------------------------------------------------


def test_knee_is_closest_to_the_ideal_and_unit_free():
    front = _frame([[0.0, 32], [0.05, 8], [0.5, 2]])
    objectives = {"test_error": "min", "bits": "min"}
    # normalised: (0, 1), (0.1, 0.2), (1, 0): the middle one is at distance 0.224
    assert knee(front, objectives).index == 1
    assert knee(front, objectives).distance == pytest.approx(np.hypot(0.1, 0.2))
    scaled = front.assign(test_error=front["test_error"] * 1000)
    assert knee(scaled, objectives).index == 1
    assert knee(front.iloc[[2]], objectives).index == 0
    with pytest.raises(ValueError, match="empty"):
        knee(front.iloc[:0], objectives)
