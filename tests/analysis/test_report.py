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
from analysis.report import compare_sweeps, main, read_table, write_report

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
    assert "knee" not in front.columns  # the knee is a configuration's, on seed means
    assert pd.read_csv(classifier_report.pareto_mean_csv)["knee"].sum() == 1


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
    mean = pd.read_csv(classifier_report.pareto_mean_csv)
    assert summary["knee configuration"] == mean.loc[mean["knee"], "configuration"].item()
    assert "knee trial" not in summary
    assert summary["answer"].startswith(("fewest bits", "no configuration"))
    assert summary["baseline"] == "fp32 full" and summary["test examples"] == 300


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


def _line_points(ax, label: str) -> set[tuple[float, float]]:
    """The (x, y) points of the staircase labelled ``label`` in ``ax``."""
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return set(zip(line.get_xdata().tolist(), line.get_ydata().tolist(), strict=True))


def test_figures_use_bits_per_param_when_it_is_an_objective(storage_sweep, tmp_path, monkeypatch):
    """objectives {test_error, bits_per_param}: x is bits_per_param (full at 32, not at its
    word length), the fronts are on that axis, and no objective is plotted against itself."""
    from analysis import plots
    from analysis.pareto import aggregate_seeds, pareto_front

    figures = {}
    save = plots.save

    def keep(fig, path):
        figures[Path(path).name] = fig
        return save(fig, path)

    monkeypatch.setattr(plots, "save", keep)
    report = write_report(storage_sweep, out_dir=tmp_path / "r")
    names = {p.name for p in report.pngs}
    assert {
        "test_error_vs_bits_per_param.png",
        "test_nll_vs_bits_per_param.png",
        "test_ece_vs_bits_per_param.png",
    } <= names
    assert not any(n.startswith(("bits_per_param_vs", "bits_vs")) for n in names), names
    assert not any(n.endswith("_vs_bits.png") for n in names), names
    left = figures["test_error_vs_bits_per_param.png"].axes[0]
    assert "bits_per_param" in left.get_xlabel() and "master copy" in left.get_xlabel()
    # the full accumulator's front sits at 32 bits per param, not at its word length
    full = _line_points(left, "full (LP-F)")
    assert {x for x, _ in full} == {32.0}
    # every staircase is the group's front of seed means under the report's objectives
    objectives = {"test_error": "min", "bits_per_param": "min"}
    sweep = load_sweep(storage_sweep)
    pooled = aggregate_seeds(sweep.trials, sweep.config_keys, list(objectives))
    for mode, label in (
        ("full", "full (LP-F)"),
        ("low", "low (naive LP-L)"),
        ("vc", "vc (VC LP-L)"),
    ):
        front = pareto_front(pooled[pooled["accumulator"] == mode], objectives)
        expected = set(zip(front["bits_per_param"], front["test_error"], strict=True))
        assert _line_points(left, label) == expected, mode
    # the overall front (pareto.csv) is the front of the same points the figure shows
    front = pd.read_csv(report.pareto_csv)
    ok = sweep.trials[sweep.trials["status"] == "ok"]
    assert set(front["trial_id"]) == _brute_front(ok, objectives)
    assert (front.loc[front["accumulator"] == "full", "bits_per_param"] == 32.0).all()


def test_stale_pngs_are_removed_and_stdout_lists_every_file(storage_sweep, tmp_path, capsys):
    out = tmp_path / "r"
    # an earlier run under other objectives wrote figures against bits (and one of
    # bits_per_param against bits); a file the report does not own is left alone
    assert (
        main([str(storage_sweep), "--out", str(out), "--objectives", "test_error:min,bits:min"])
        == 0
    )
    capsys.readouterr()
    (out / "bits_per_param_vs_bits.png").write_bytes(b"old")
    (out / "hypervolume.png").write_bytes(b"old")
    (out / "my_notes.png").write_bytes(b"mine")
    assert (out / "test_error_vs_bits.png").is_file()
    assert main([str(storage_sweep), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    printed = captured.out.split()
    left = {p.name for p in out.iterdir()}
    assert not {n for n in left if n.endswith("_vs_bits.png")}, left
    assert "hypervolume.png" not in left and "my_notes.png" in left
    assert "removed stale" in captured.err
    # stdout names every file the run wrote, and nothing else
    assert sorted(printed) == sorted(str(out / n) for n in left if n != "my_notes.png")
    for name in ("pareto_by_group.csv", "best_per_group.csv", "summary.json", "index.html"):
        assert str(out / name) in printed


def test_report_when_every_trial_failed_and_metrics_are_absent(failed_sweep, tmp_path, capsys):
    """No trial is ok and trials.parquet has no metric columns (as the orchestrator writes it):
    the report is still written, with the errors, empty fronts with headers and no figures."""
    trials = pd.read_parquet(failed_sweep / "trials.parquet")
    assert "test_error" not in trials and "bits_per_param" not in trials
    out = tmp_path / "r"
    assert main([str(failed_sweep), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["status ok"], summary["status diverged"], summary["status failed"]) == (
        0,
        2,
        2,
    )
    assert summary["front size"] == 0 and "hypervolume" not in summary
    pareto = pd.read_csv(out / "pareto.csv")
    assert pareto.empty
    assert list(pareto.columns[:3]) == ["trial_id", "test_error", "bits_per_param"]
    mean = pd.read_csv(out / "pareto_mean.csv")
    assert mean.empty and {"test_error", "test_error_std", "n_seeds", "trial_ids"} <= set(
        mean.columns
    )
    best = pd.read_csv(out / "best_per_group.csv")
    assert best.empty and {"trial_id", "test_error", "bits_per_param"} <= set(best.columns)
    assert pd.read_csv(out / "pareto_by_group.csv").empty
    assert not list(out.glob("*.png"))
    page = (out / "index.html").read_text()
    for text in ("RuntimeError: no block kernel", "non-finite loss", "No trial is ok", "failed"):
        assert text in page
    assert str(out / "index.html") in printed and str(out / "summary.json") in printed


def test_compare_names_the_sweep_lacking_an_objective(classifier_sweep, tmp_path, capsys):
    other = _shifted_copy(classifier_sweep, tmp_path, "no_nll", 0.0)
    trials = pd.read_parquet(other / "trials.parquet").drop(columns=["test_nll"])
    trials.to_parquet(other / "trials.parquet")
    with pytest.raises(ValueError, match=r"no_nll.*'test_nll'"):
        compare_sweeps([classifier_sweep, other], {"test_nll": "min", "bits": "min"})
    argv = [str(classifier_sweep), "--out", str(tmp_path / "r"), "--compare", str(other)]
    assert main([*argv, "--objectives", "test_nll:min,bits:min"]) == 2
    err = capsys.readouterr().err
    assert "no_nll" in err and str(other) in err and "'test_nll'" in err


def test_the_answer_comes_first_with_its_table_and_captions(storage_sweep, tmp_path):
    from analysis.answer import compute_answer

    report = write_report(storage_sweep, out_dir=tmp_path / "r")
    answer = compute_answer(storage_sweep)
    page = report.index.read_text()
    import html as htmllib

    sentence = htmllib.escape(answer.sentence)
    assert sentence in page
    assert page.index(sentence) < page.index("<img")  # above every figure
    assert page.index(sentence) < page.index("<h2>Summary</h2>")
    assert "300 test examples" in page and "2 seeds per configuration" in page
    assert "hypervolume (the area of objective space" in page  # explained where it is shown
    assert "knee trial" not in page
    # the answer's figure first, with a caption saying what it shows
    assert report.pngs[0].name == "answer_test_error.png"
    _assert_png_not_blank(report.pngs[0])
    assert page.count("<figcaption>") == len(report.pngs)
    assert "log2 axis" in page and "95% CI" in page
    # the verdict table on the page: at most 8 columns; every figure in verdicts.csv
    section = page[page.index("Verdict table") :]
    section = section[: section.index("</table>")]
    header = section[section.index("<thead>") : section.index("</thead>")]
    assert 5 <= header.count("<th") <= 8
    assert section.count("<tr") - 1 == len(answer.configurations)
    full = read_table(report.dir / "verdicts.csv")
    assert list(full["configuration"]) == [c.configuration for c in answer.configurations]
    assert {"test_error_lo", "test_error_hi", "test_error_diff_lo90", "verdict"} <= set(full)
    data = json.loads((report.dir / "answer.json").read_text())
    assert data["sentence"] == answer.sentence
    mean = read_table(report.pareto_mean_csv)
    assert {"configuration", "verdict", "front_probability", "test_error_lo"} <= set(mean)


def _sweep_with_ids(src: Path, dst: Path, ids: list[str]) -> Path:
    """A copy of ``src`` whose trial ids are ``ids`` (predictions renamed along)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("report"))
    trials = pd.read_parquet(dst / "trials.parquet")
    old = trials["trial_id"].tolist()
    new = (ids * (len(old) // len(ids) + 1))[: len(old)]
    new = [f"{t[:-3]}{k:03d}" if len(ids) < len(old) else t for k, t in enumerate(new)]
    for a, b in zip(old, new, strict=True):
        folder = dst / "predictions" / f"trial_id={a}"
        if folder.exists():
            folder.rename(dst / "predictions" / f"trial_id={b}")
    trials["trial_id"] = new
    trials.to_parquet(dst / "trials.parquet")
    return dst


def test_trial_ids_that_look_like_numbers_survive(storage_sweep, tmp_path):
    """Ray-style ids such as 91781970 (an int to a CSV reader) or 12e45678 (a float: 1.2e49)
    come back as the same strings from the typed tables beside the CSVs."""
    ids = ["91781970", "12e45678"]
    sweep = _sweep_with_ids(storage_sweep, tmp_path / "ids", ids)
    trials = load_sweep(sweep).trials
    assert {"91781000", "12e45001"} <= set(trials["trial_id"])  # the ids as written
    report = write_report(sweep, out_dir=tmp_path / "r")
    front = read_table(report.pareto_csv)
    assert front["trial_id"].map(type).eq(str).all()
    assert set(front["trial_id"]) <= set(trials["trial_id"])
    assert any("e" in t for t in trials["trial_id"]) and any(t.isdigit() for t in front["trial_id"])
    mean = read_table(report.pareto_mean_csv)
    for ids_of_config in mean["trial_ids"]:
        assert set(ids_of_config.split()) <= set(trials["trial_id"])
    # a plain CSV reader does turn them into numbers: that is why the Parquet files exist
    plain = pd.read_csv(report.pareto_csv)["trial_id"]
    assert plain.dtype.kind in "if"
    verdicts = read_table(report.dir / "verdicts.csv")
    assert all(set(t.split()) <= set(trials["trial_id"]) for t in verdicts["trial_ids"])


def test_report_uses_an_answer_given_to_it(storage_sweep, tmp_path, monkeypatch):
    from analysis import report as report_module
    from analysis.answer import compute_answer

    answer = compute_answer(storage_sweep, resamples=200)

    def refuse(*args, **kwargs):
        raise AssertionError("the answer was computed again")

    monkeypatch.setattr(report_module, "compute_answer", refuse)
    report = write_report(storage_sweep, out_dir=tmp_path / "r", answer=answer)
    assert report.summary["answer"] == answer.sentence
    without = write_report(storage_sweep, out_dir=tmp_path / "r2", answer=False)
    assert without.summary["answer"].startswith("no answer")
    assert not (tmp_path / "r2" / "answer.json").exists()
