"""The report of a sweep directory: tables, figures, summary, index.html, CLI exit codes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.load import load_sweep
from analysis.pareto import hypervolume
from analysis.report import compare_sweeps, main, write_report

ROOT = Path(__file__).resolve().parents[2]


def _brute_front(ok: pd.DataFrame, objectives: dict[str, str]) -> set[str]:
    """Trial ids not dominated by any other ok trial, by the definition, pair by pair."""
    sign = {"min": 1.0, "max": -1.0}
    f = {
        t: np.array([sign[d] * r[m] for m, d in objectives.items()])
        for t, r in ok.set_index("trial_id").iterrows()
    }
    return {
        t
        for t, a in f.items()
        if not any((b <= a).all() and (b < a).any() for u, b in f.items() if u != t)
    }


def _assert_png_not_blank(path: Path) -> None:
    image = mpimg.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100, path
    assert float(np.std(image[..., :3])) > 0.02, f"{path} looks blank"


@pytest.fixture(scope="module")
def classifier_report(classifier_sweep):
    return write_report(classifier_sweep)


def test_pareto_csv_is_the_front_of_ok_trials(classifier_report, classifier_sweep):
    trials = load_sweep(classifier_sweep).trials
    front = pd.read_csv(classifier_report.pareto_csv)
    objectives = {"test_error": "min", "bits": "min"}
    ok = trials[trials["status"] == "ok"]
    assert set(front["trial_id"]) == _brute_front(ok, objectives)
    assert {"trial_id", "test_error", "bits", "accumulator", "family"} <= set(front.columns)
    not_ok = set(trials.loc[trials["status"] != "ok", "trial_id"])
    assert not not_ok & set(front["trial_id"])
    assert front["knee"].sum() == 1


def test_pareto_mean_csv_is_the_front_of_seed_means(classifier_report, classifier_sweep):
    trials = load_sweep(classifier_sweep).trials
    mean = pd.read_csv(classifier_report.pareto_mean_csv)
    assert {"test_error", "test_error_std", "n_seeds", "trial_ids"} <= set(mean.columns)
    ok = trials[trials["status"] == "ok"]
    for _, row in mean.iterrows():
        ids = row["trial_ids"].split()
        assert row["n_seeds"] == len(ids)
        errors = ok.set_index("trial_id").loc[ids, "test_error"]
        assert row["test_error"] == pytest.approx(errors.mean())
        if len(ids) > 1:
            assert row["test_error_std"] == pytest.approx(errors.std(ddof=1))
    # no configuration's seed mean dominates a member of pareto_mean.csv
    keys = ["format", "bits", "accumulator"]
    means = ok.groupby(keys)[["test_error"]].mean().reset_index()
    for _, row in mean.iterrows():
        better = means[
            (means["test_error"] <= row["test_error"])
            & (means["bits"] <= row["bits"])
            & ((means["test_error"] < row["test_error"]) | (means["bits"] < row["bits"]))
        ]
        assert better.empty, row


def test_summary_counts_statuses_and_hypervolume(classifier_report):
    summary = json.loads((classifier_report.dir / "summary.json").read_text())
    assert summary["trials"] == 56
    statuses = (summary["status ok"], summary["status diverged"], summary["status failed"])
    assert statuses == (53, 2, 1)
    assert summary["hypervolume"] > 0
    assert summary["knee trial"] in set(pd.read_csv(classifier_report.pareto_csv)["trial_id"])


def test_pngs_and_index_html(classifier_report):
    names = {p.name for p in classifier_report.pngs}
    assert {
        "test_error_vs_bits.png",
        "test_nll_vs_bits.png",
        "test_ece_vs_bits.png",
        "reliability.png",
    } <= names
    for png in classifier_report.pngs:
        _assert_png_not_blank(png)
    page = classifier_report.index.read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == sorted(names)
    assert all((classifier_report.dir / s).is_file() for s in sources)
    for text in (
        "Pareto front (trials)",
        "Best per group",
        "Trials not ok",
        "RuntimeError: simulated failure",
        "non-finite weights",
    ):
        assert text in page
    assert os.fspath(classifier_report) == str(classifier_report.dir)
    assert Path(classifier_report) == classifier_report.dir


def test_best_per_group(classifier_report, classifier_sweep):
    best = pd.read_csv(classifier_report.dir / "best_per_group.csv")
    trials = load_sweep(classifier_sweep).trials
    ok = trials[trials["status"] == "ok"]
    expected = ok.groupby(["sampler", "accumulator", "family"])["test_error"].min()
    got = best.set_index(["sampler", "accumulator", "family"])["test_error"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)


def test_objectives_override_three_d(classifier_sweep, tmp_path):
    objectives = {"test_nll": "min", "test_ece": "min", "bits": "min"}
    report = write_report(classifier_sweep, objectives, out_dir=tmp_path / "r")
    front = pd.read_csv(report.pareto_csv)
    trials = load_sweep(classifier_sweep).trials
    assert set(front["trial_id"]) == _brute_front(trials[trials["status"] == "ok"], objectives)
    assert report.summary["hypervolume"] > 0


def test_gaussian_sweep_report_has_sample_histograms(gaussian_sweep, tmp_path):
    report = write_report(gaussian_sweep, out_dir=tmp_path / "r")
    names = {p.name for p in report.pngs}
    assert "samples.png" in names and "reliability.png" not in names
    _assert_png_not_blank(report.dir / "samples.png")


def test_optuna_sweep_report_has_hypervolume_history(optuna_sweep, tmp_path):
    report = write_report(optuna_sweep, out_dir=tmp_path / "r")
    assert "hypervolume.png" in {p.name for p in report.pngs}
    history = pd.read_csv(report.dir / "hypervolume.csv")
    assert history["trial_id"].tolist() == [f"tuned_{k}" for k in range(24)]  # natural order
    assert (np.diff(history["hypervolume"]) >= 0).all()
    assert history["hypervolume"].iloc[-1] == pytest.approx(report.summary["hypervolume"])


def test_cli_prints_paths_and_exits_2_without_trials(classifier_sweep, tmp_path, capsys):
    assert main([str(classifier_sweep), "--out", str(tmp_path / "r")]) == 0
    printed = capsys.readouterr().out.split()
    assert str(tmp_path / "r" / "pareto.csv") in printed
    assert str(tmp_path / "r" / "index.html") in printed
    assert all(Path(p).exists() for p in printed)
    assert main([str(tmp_path)]) == 2
    assert "no trials.parquet" in capsys.readouterr().err
    assert main([str(classifier_sweep), "--objectives", "test_error"]) == 2
    assert "metric:min" in capsys.readouterr().err
    assert main([str(classifier_sweep), "--objectives", "accuracy:max"]) == 2
    assert "'accuracy'" in capsys.readouterr().err


def test_cli_as_a_module(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "analysis.report", str(tmp_path / "nothing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no trials.parquet" in result.stderr


def _shifted_copy(sweep: Path, root: Path, name: str, shift: float) -> Path:
    """A copy of ``sweep`` (trials and spec) with the ok trials' test_error ``shift`` higher."""
    out = root / name
    out.mkdir(parents=True)
    (out / "spec.yaml").write_text(
        (sweep / "spec.yaml").read_text().replace("name: bits", f"name: {name}")
    )
    trials = pd.read_parquet(sweep / "trials.parquet")
    trials.loc[trials["status"] == "ok", "test_error"] += shift
    trials.to_parquet(out / "trials.parquet")
    return out


def test_compare_sweeps_shares_one_reference(classifier_sweep, tmp_path):
    worse = _shifted_copy(classifier_sweep, tmp_path, "worse", 0.05)
    compared = compare_sweeps([classifier_sweep, worse, classifier_sweep])
    assert compared["sweep"].tolist() == ["bits", "worse", "bits"]
    hv = compared["hypervolume"].to_numpy()
    assert hv[0] == hv[2] and hv[1] < hv[0]
    # shifting every point by 0.05 in test_error keeps the front's shape: against a shared
    # reference the lost volume is the strip 0.05 x (r_bits - min bits) at the worse end
    ref = compared.attrs["reference"]
    ok = load_sweep(classifier_sweep).trials.query("status == 'ok'")
    assert ref["test_error"] == pytest.approx(
        ok["test_error"].max()
        + 0.05
        + 0.1 * (ok["test_error"].max() + 0.05 - ok["test_error"].min())
    )
    assert hv[0] - hv[1] == pytest.approx(0.05 * (ref["bits"] - ok["bits"].min()))
    explicit = compare_sweeps([classifier_sweep], reference={"test_error": 1.0, "bits": 40})
    assert explicit.attrs["reference"] == {"test_error": 1.0, "bits": 40.0}


def test_cli_compare_writes_compare_csv(classifier_sweep, tmp_path, capsys):
    worse = _shifted_copy(classifier_sweep, tmp_path, "worse", 0.05)
    out = tmp_path / "r"
    assert main([str(classifier_sweep), "--out", str(out), "--compare", str(worse)]) == 0
    assert str(out / "compare.csv") in capsys.readouterr().out.split()
    assert pd.read_csv(out / "compare.csv")["sweep"].tolist() == ["bits", "worse"]


def test_report_of_a_sweep_where_nothing_is_ok(tmp_path):
    """Every trial diverged or failed: the report still says so, with empty fronts."""
    trials = pd.DataFrame(
        {
            "trial_id": ["a", "b"],
            "status": ["diverged", "failed"],
            "error": ["non-finite loss", "RuntimeError: boom"],
            "format": ["fixed", "block"],
            "bits": [4, 4],
            "accumulator": ["low", "vc"],
            "seed": [0, 0],
            "test_error": [np.nan, np.nan],
        }
    )
    sweep = tmp_path / "bad"
    sweep.mkdir()
    trials.to_parquet(sweep / "trials.parquet")  # no spec.yaml: objectives default
    report = write_report(sweep)
    assert report.summary["status ok"] == 0 and "hypervolume" not in report.summary
    assert pd.read_csv(report.pareto_csv).empty
    page = report.index.read_text()
    assert "RuntimeError: boom" in page and "non-finite loss" in page
    assert report.summary["objectives"] == {"test_error": "min", "bits": "min"}


def test_pareto_by_group_is_each_groups_front(classifier_report):
    groups = pd.read_csv(classifier_report.dir / "pareto_by_group.csv")
    pooled = pd.read_csv(classifier_report.pareto_mean_csv)  # a subset: the overall front
    assert set(pooled["trial_ids"]) <= set(groups["trial_ids"])  # the overall front ⊆ groups'
    for _, group in groups.groupby(["sampler", "accumulator", "family"]):
        points = group[["test_error", "bits"]].to_numpy()
        for p in points:  # no member of a group's front dominates another
            assert not ((points <= p).all(axis=1) & (points < p).any(axis=1)).any()
    assert set(groups["accumulator"]) == {"full", "low", "vc"}


def test_spec_reference_is_used_and_filtered_to_the_objectives(classifier_sweep, tmp_path):
    sweep = tmp_path / "withref"
    shutil.copytree(classifier_sweep, sweep, ignore=shutil.ignore_patterns("report"))
    spec = yaml.safe_load((sweep / "spec.yaml").read_text())
    spec["objectives"]["reference"] = {"test_error": 1.0, "bits": 40}
    (sweep / "spec.yaml").write_text(yaml.safe_dump(spec))
    report = write_report(sweep, out_dir=tmp_path / "r1")
    assert report.summary["reference point"] == {"test_error": 1.0, "bits": 40.0}
    ok = load_sweep(sweep).trials.query("status == 'ok'")
    expected = hypervolume(ok[["test_error", "bits"]].to_numpy(), np.array([1.0, 40.0]))
    assert report.summary["hypervolume"] == pytest.approx(expected)
    # --objectives without bits: the spec's bits reference is dropped, test_error's kept
    other = write_report(sweep, {"test_error": "min", "test_nll": "min"}, tmp_path / "r2")
    assert other.summary["reference point"]["test_error"] == 1.0
    assert other.summary["reference point"]["test_nll"] > ok["test_nll"].max()
