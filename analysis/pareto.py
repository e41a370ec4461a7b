"""Non-dominated sets, hypervolume and the knee of a front, for any number of objectives.

Conventions. Objectives come as ``{metric: "min" | "max"}``. Internally every objective is
turned into one to minimise, f_j = s_j · metric_j with s_j = +1 for min and -1 for max.
Point a *dominates* b (a ≺ b) when f_j(a) ≤ f_j(b) for every j and f_j(a) < f_j(b) for some j.
The Pareto front (non-dominated set) of a set P is {p ∈ P : no q ∈ P has q ≺ p}; two equal points
do not dominate each other, so duplicates are all on the front (Deb, *Multi-Objective
Optimization Using Evolutionary Algorithms*, 2001, ch. 2).

The hypervolume of a set P against a reference point r (Zitzler and Thiele, 1998) is the Lebesgue
measure of the region that P dominates and that dominates r:

    HV(P; r) = λ( ∪_{p ∈ P} [f(p), r] ),  [a, b] = the box ∏_j [a_j, b_j].

Points that do not strictly dominate r in every objective add nothing. It is computed exactly:
in 2-D by a sweep over the front sorted by f_1; in d-D by slicing along the last objective (the
HSO scheme of While, Hingston, Barone and Huband, 2006): with the points sorted by f_d,
HV = Σ_i (z_{i+1} - z_i) · HV_{d-1}(first i points projected), z_{n+1} = r_d.

Only ``ok`` trials (finite objective values) enter a front or a hypervolume; diverged and
failed trials are counted and listed by :func:`split_by_status`, never placed on a front.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: relative margin added beyond the worst observed value when no reference point is given:
#: r_j = worst_j + MARGIN · (worst_j - best_j), or worst_j + MARGIN · max(|worst_j|, 1) when
#: every trial has the same value; the margin lets the extreme points of a front add volume.
MARGIN = 0.1

#: derived columns constant within a configuration that :func:`aggregate_seeds` carries along
CARRIED = ("configuration", "family")

#: the seed-pooled frame of :func:`aggregate_seeds` names its spread columns <metric>_std and
#: its count column ``n_seeds``
COUNT_COLUMN = "n_seeds"


def _directions(objectives: Mapping[str, str]) -> np.ndarray:
    signs = []
    for metric, direction in objectives.items():
        if direction not in ("min", "max"):
            raise ValueError(
                f"objective {metric!r}: direction must be min or max, got {direction!r}"
            )
        signs.append(1.0 if direction == "min" else -1.0)
    if not signs:
        raise ValueError("objectives: empty; give at least one, e.g. {'test_error': 'min'}")
    return np.asarray(signs)


def to_minimisation(frame: pd.DataFrame, objectives: Mapping[str, str]) -> np.ndarray:
    """The ``[n, d]`` array f with f_j = +metric_j (min) or -metric_j (max)."""
    missing = [m for m in objectives if m not in frame.columns]
    if missing:
        raise ValueError(
            f"objective {missing[0]!r}: no such column "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    values = frame[list(objectives)].to_numpy(dtype=float)
    return values * _directions(objectives)


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` ``[n, d]``, all objectives minimised.

    Row i is kept unless some row k satisfies points[k] ≤ points[i] everywhere and < somewhere.
    Rows with a non-finite value are never kept. O(n² d), fine for sweeps of thousands of trials.
    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2:
        raise ValueError(f"points: expected a 2-D array [n, d], got shape {points.shape}")
    finite = np.isfinite(points).all(axis=1)
    keep = finite.copy()
    candidates = points[finite]
    index = np.flatnonzero(finite)
    for row, i in zip(candidates, index, strict=True):
        weakly_better = (candidates <= row).all(axis=1)
        strictly_somewhere = (candidates < row).any(axis=1)
        if (weakly_better & strictly_somewhere).any():
            keep[i] = False
    return keep


def dominated_by(points: np.ndarray, front: np.ndarray) -> np.ndarray:
    """Mask of rows of ``points`` dominated by at least one row of ``front`` (minimisation)."""
    points, front = np.asarray(points, dtype=float), np.asarray(front, dtype=float)
    weakly = (front[None, :, :] <= points[:, None, :]).all(axis=2)
    strictly = (front[None, :, :] < points[:, None, :]).any(axis=2)
    return (weakly & strictly).any(axis=1)


def split_by_status(trials: pd.DataFrame, objectives: Mapping[str, str]) -> dict[str, pd.DataFrame]:
    """Trials split into ``ok`` (status ok and every objective finite), ``diverged``,
    ``failed`` and ``incomplete`` (status ok but an objective missing or non-finite)."""
    status = trials["status"]
    ok = trials[status == "ok"]
    finite = (
        np.isfinite(to_minimisation(ok, objectives)).all(axis=1) if len(ok) else np.ones(0, bool)
    )
    return {
        "ok": ok[finite],
        "incomplete": ok[~finite],
        "diverged": trials[status == "diverged"],
        "failed": trials[status == "failed"],
    }


def pareto_front(
    trials: pd.DataFrame,
    objectives: Mapping[str, str],
    by: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """The rows of ``trials`` on the Pareto front of ``objectives``, sorted by the objectives.

    Only ``ok`` rows with finite objective values compete (a frame without a ``status`` column,
    such as :func:`aggregate_seeds`'s, counts as all ok). With ``by`` (a column or columns such
    as ``accumulator`` or ``["accumulator", "family"]``) the front is taken within each group.
    """
    frame = trials if "status" not in trials.columns else trials[trials["status"] == "ok"]
    f = to_minimisation(frame, objectives)
    frame = frame[np.isfinite(f).all(axis=1)]
    if by is None:
        front = frame[non_dominated(to_minimisation(frame, objectives))]
    else:
        by = [by] if isinstance(by, str) else list(by)
        parts = [
            group[non_dominated(to_minimisation(group, objectives))]
            for _, group in frame.groupby(by, dropna=False, sort=True)
        ]
        front = pd.concat(parts) if parts else frame.iloc[:0]
        return front.sort_values([*by, *objectives], kind="stable").reset_index(drop=True)
    return front.sort_values(list(objectives), kind="stable").reset_index(drop=True)


def aggregate_seeds(
    trials: pd.DataFrame, config_keys: Sequence[str], metrics: Sequence[str]
) -> pd.DataFrame:
    """Mean, standard deviation and count over seeds of each configuration's ``ok`` trials.

    A configuration is a distinct value of ``config_keys`` (missing values count as a value).
    The result has one row per configuration: the config keys, ``<metric>`` = the mean over its
    seeds, ``<metric>_std`` = the sample standard deviation (ddof 1; NaN for one seed),
    ``n_seeds`` = how many ok trials were pooled and ``trial_ids`` = their ids joined by spaces.
    The derived columns ``configuration`` (the configuration's name) and ``family``, constant
    within a configuration, are carried along (first).
    """
    keys = [k for k in config_keys if k in trials.columns]
    ok = trials[trials["status"] == "ok"] if "status" in trials.columns else trials
    metrics = [m for m in metrics if m not in keys]
    if not keys:
        raise ValueError("config_keys: none of them is a column; cannot tell configurations apart")
    carried = [c for c in CARRIED if c in trials.columns and c not in keys]
    rows = []
    for _, group in ok.groupby(keys, dropna=False, sort=True):
        row = {c: group[c].iloc[0] for c in carried}
        row.update({k: group[k].iloc[0] for k in keys})
        for metric in metrics:
            values = pd.to_numeric(group[metric], errors="coerce").astype(float)
            row[metric] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=1) if values.notna().sum() > 1 else np.nan
        row[COUNT_COLUMN] = len(group)
        row["trial_ids"] = " ".join(group["trial_id"].astype(str)) if "trial_id" in group else ""
        rows.append(row)
    columns = [*(["configuration"] if "configuration" in carried else []), *keys]
    columns += [c for c in carried if c != "configuration"]
    columns += [c for m in metrics for c in (m, f"{m}_std")] + [COUNT_COLUMN, "trial_ids"]
    return pd.DataFrame(rows, columns=columns)


def reference_point(
    frames: pd.DataFrame | Sequence[pd.DataFrame],
    objectives: Mapping[str, str],
    reference: Mapping[str, float] | None = None,
    margin: float = MARGIN,
) -> np.ndarray:
    """The hypervolume reference point r, in minimisation form (f_j = s_j · metric_j).

    ``reference`` (``{metric: value}`` in the metrics' own units, e.g. the spec's
    ``objectives.reference``) gives r_j for the objectives it names. Every other r_j is the
    worst value observed over the ok trials of all ``frames`` plus ``margin`` times the
    observed range (see :data:`MARGIN`); pass the frames of every sweep being compared so
    that they share one r. A ``reference`` key that is not an objective raises ``ValueError``.
    """
    signs = _directions(objectives)
    reference = dict(reference or {})
    unknown = [m for m in reference if m not in objectives]
    if unknown:
        raise ValueError(
            f"reference: {unknown[0]!r} is not one of the objectives ({', '.join(objectives)})"
        )
    given = np.array([m in reference for m in objectives])
    r = np.array([float(reference.get(m, np.nan)) for m in objectives]) * signs
    if given.all():
        return r
    frames = [frames] if isinstance(frames, pd.DataFrame) else list(frames)
    ok = [split_by_status(f, objectives)["ok"] if "status" in f else f for f in frames]
    f = np.concatenate([to_minimisation(x, objectives) for x in ok]) if ok else np.zeros((0, 0))
    f = f[np.isfinite(f).all(axis=1)] if f.size else f
    if len(f) == 0:
        raise ValueError(
            "reference: no ok trial with finite objectives to derive it from; give one "
            "explicitly (spec: objectives: {reference: {metric: value, ...}})"
        )
    worst, best = f.max(axis=0), f.min(axis=0)
    spread = np.where(worst > best, worst - best, np.maximum(np.abs(worst), 1.0))
    return np.where(given, r, worst + margin * spread)


def _hv2(points: np.ndarray, ref: np.ndarray) -> float:
    """2-D hypervolume: sort by f_1; each front point adds (r_1 - x_i) · (y_prev - y_i)."""
    order = np.lexsort((points[:, 1], points[:, 0]))
    volume, y_prev = 0.0, ref[1]
    for x, y in points[order]:
        if y < y_prev:
            volume += (ref[0] - x) * (y_prev - y)
            y_prev = y
    return volume


def _hv(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of points that all strictly dominate ``ref`` (HSO slicing)."""
    if len(points) == 0:
        return 0.0
    d = points.shape[1]
    if d == 1:
        return float(ref[0] - points[:, 0].min())
    if d == 2:
        return _hv2(points, ref)
    points = points[non_dominated(points)]
    points = points[np.argsort(points[:, -1], kind="stable")]
    volume = 0.0
    for i in range(len(points)):
        top = points[i + 1, -1] if i + 1 < len(points) else ref[-1]
        depth = top - points[i, -1]
        if depth > 0:
            volume += depth * _hv(points[: i + 1, :-1], ref[:-1])
    return volume


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """HV(P; r) = λ(∪_p [p, r]) of ``points`` ``[n, d]`` against ``reference`` ``[d]``, both in
    minimisation form (see :func:`to_minimisation`). Exact for any d; points that do not strictly
    dominate r in every coordinate, and non-finite points, add nothing."""
    points = np.asarray(points, dtype=float).reshape(-1, np.size(reference))
    ref = np.asarray(reference, dtype=float)
    if not np.isfinite(ref).all():
        raise ValueError(f"reference: must be finite, got {ref.tolist()}")
    points = points[np.isfinite(points).all(axis=1) & (points < ref).all(axis=1)]
    return float(_hv(points, ref))


def trials_hypervolume(
    trials: pd.DataFrame, objectives: Mapping[str, str], reference: np.ndarray
) -> float:
    """Hypervolume of the ok trials of ``trials`` under ``objectives`` against ``reference``
    (minimisation form, from :func:`reference_point`)."""
    ok = split_by_status(trials, objectives)["ok"] if "status" in trials else trials
    return hypervolume(to_minimisation(ok, objectives), reference)


def hypervolume_history(
    ordered_trials: pd.DataFrame, objectives: Mapping[str, str], reference: np.ndarray
) -> pd.DataFrame:
    """The hypervolume of the first k trials, k = 1..n, in the given (start) order.

    Columns ``n_trials``, ``trial_id``, ``status`` and ``hypervolume``; diverged and failed
    trials count as trials and leave the hypervolume where it was.
    """
    f = to_minimisation(ordered_trials, objectives)
    ok = (ordered_trials["status"] == "ok").to_numpy() & np.isfinite(f).all(axis=1)
    volumes = [hypervolume(f[: k + 1][ok[: k + 1]], reference) for k in range(len(f))]
    return pd.DataFrame(
        {
            "n_trials": np.arange(1, len(f) + 1),
            "trial_id": ordered_trials["trial_id"].to_numpy(),
            "status": ordered_trials["status"].to_numpy(),
            "hypervolume": volumes,
        }
    )


@dataclass(frozen=True)
class Knee:
    """The trial picked from a front: its row index in the front and its normalised distance."""

    index: int
    distance: float


def knee(front: pd.DataFrame, objectives: Mapping[str, str]) -> Knee:
    """The knee of a front: the member closest to the ideal point after normalisation.

    With f the front in minimisation form, ideal z*_j = min f_j and nadir z^n_j = max f_j over
    the front, each objective is scaled to [0, 1] as f̃_j = (f_j - z*_j) / (z^n_j - z*_j)
    (0 when z^n_j = z*_j), and the member minimising ||f̃||_2 is chosen; ties go to the first
    row (the front is sorted by the objectives, so to the best first objective). Scaling by
    the front's own range makes the choice independent of units (bits vs error rates).
    """
    f = to_minimisation(front, objectives)
    if len(f) == 0:
        raise ValueError("front: empty; no ok trial to pick from")
    ideal, nadir = f.min(axis=0), f.max(axis=0)
    scale = np.where(nadir > ideal, nadir - ideal, 1.0)
    distance = np.linalg.norm((f - ideal) / scale, axis=1)
    i = int(np.argmin(distance))
    return Knee(index=i, distance=float(distance[i]))
