"""The answer of a sweep: baseline selection, McNemar, the CLI and its JSON schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats as sps

from analysis import stats
from analysis.answer import DEFAULT_TOLERANCE, compute_answer, main
from analysis.load import objectives_from_spec, tolerances_from_spec

ROOT = Path(__file__).resolve().parents[2]

CONFIGS = [
    {"variant": None, "format": "fp32", "bits": 32, "accumulator": "full", "seed": 0},
    {"variant": None, "format": "fp32", "bits": 32, "accumulator": "full", "seed": 1},
    {"variant": None, "format": "block", "bits": 8, "accumulator": "vc", "seed": 0},
    {"variant": None, "format": "block", "bits": 8, "accumulator": "low", "seed": 0},
    {"variant": None, "format": "fixed", "bits": 8, "accumulator": "vc", "seed": 0},
]


def test_objectives_accept_tolerances_and_refuse_bad_ones():
    spec = {
        "objectives": {
            "test_error": {"direction": "min", "tolerance": 0.01},
            "test_nll": "min",
            "bits_per_param": "min",
            "reference": {"test_error": 1.0},
        }
    }
    assert objectives_from_spec(spec) == {
        "test_error": "min",
        "test_nll": "min",
        "bits_per_param": "min",
    }
    assert tolerances_from_spec(spec) == {"test_error": 0.01}
    for bad in (0, -0.1, "small", True, float("nan")):
        with pytest.raises(ValueError, match=r"objectives\.test_error\.tolerance"):
            tolerances_from_spec({"objectives": {"test_error": {"tolerance": bad}}})
    assert DEFAULT_TOLERANCE["test_error"] == 0.005


def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs():
    wrong_b = np.array([0, 0, 0, 1, 1, 0, 0, 1, 0, 0], bool)
    wrong_c = np.array([1, 1, 0, 1, 0, 1, 0, 1, 1, 0], bool)
    b01, b10, p = stats.mcnemar(wrong_c, wrong_b)
    assert (b01, b10) == (4, 1)
    # by hand: P(X <= 1) + P(X >= 4) for X ~ Bin(5, 1/2) = (1 + 5 + 5 + 1) / 32
    assert p == pytest.approx(12 / 32)
    assert p == pytest.approx(sps.binomtest(4, 5, 0.5).pvalue)
    assert stats.mcnemar(wrong_b, wrong_b)[2] == 1.0


def test_verdict_rules():
    v = stats.verdict
    assert v(-0.004, 0.004, -0.003, 0.003, 0.005) == "equivalent"
    # the 95% CI above 0 but the 90% CI inside the band: equivalent (a negligible loss)
    assert v(0.0005, 0.0045, 0.001, 0.004, 0.005) == "equivalent"
    assert v(0.001, 0.012, 0.002, 0.011, 0.005) == "worse"
    assert v(-0.012, -0.001, -0.011, -0.002, 0.005) == "better"
    assert v(-0.012, -0.001, -0.011, -0.002, 0.005, "max") == "worse"
    assert v(-0.002, 0.012, 0.0, 0.011, 0.005) == "inconclusive"
    assert v(0.001, 0.012, 0.002, 0.011, None) == "inconclusive"  # no tolerance
    assert stats.combine(["equivalent", "better"]) == "better"
    assert stats.combine(["equivalent", "inconclusive"]) == "inconclusive"
    assert stats.combine(["better", "worse"]) == "worse"


def _json_line(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_cli_json_schema(storage_sweep, capsys):
    assert main([str(storage_sweep), "--json", "--resamples", "300"]) == 0
    out = capsys.readouterr().out
    data = _json_line(out)
    assert out.splitlines()[0] == data["sentence"]
    assert data["baseline"] == "fp32 full"
    assert {"baseline", "answer", "configurations"} <= set(data)
    configs = data["configurations"]
    assert len(configs) == 28  # 27 grid configurations + fp32
    for c in configs:
        assert {
            "configuration",
            "variant",
            "bits_per_param",
            "verdict",
            "front_probability",
        } <= set(c)
        assert c["verdict"] in stats.VERDICTS
        fig = c["test_error"]
        assert {"mean", "ci", "diff", "diff_ci", "n_seeds", "n_test"} <= set(fig)
        if c["verdict"] != "failed":
            assert fig["ci"][0] <= fig["mean"] <= fig["ci"][1]
            assert fig["n_test"] == 300
    costs = [c["bits_per_param"] for c in configs if c["bits_per_param"] is not None]
    assert costs == sorted(costs)  # sorted by cost
    assert [c["verdict"] for c in configs].count("baseline") == 1
    failed = [c for c in configs if c["verdict"] == "failed"]
    assert [c["configuration"] for c in failed] == ["fixed<4,2> low"]  # diverged on every seed
    if data["answer"] is not None:
        assert data["answer"]["configuration"] in {c["configuration"] for c in configs}
        assert "test_error" in data["answer"]
    # one line per configuration after the sentence
    assert len([line for line in out.splitlines() if line.startswith("  ")]) == 28


def test_cli_refuses_a_directory_that_is_not_a_sweep(tmp_path, capsys):
    assert main([str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "trials.parquet" in err


def test_cli_runs_as_a_module(storage_sweep):
    out = subprocess.run(
        [sys.executable, "-m", "analysis.answer", str(storage_sweep), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert _json_line(out.stdout)["baseline"] == "fp32 full"


def test_a_baseline_matching_two_configurations_is_refused(tmp_path, storage_sweep):
    import shutil

    sweep = tmp_path / "storage"
    shutil.copytree(storage_sweep, sweep)
    spec = yaml.safe_load((sweep / "spec.yaml").read_text())
    spec["baseline"] = {"accumulator": "vc", "bits": 8}
    (sweep / "spec.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match=r"spec key 'baseline'.*matches 3 configurations"):
        compute_answer(sweep, resamples=50)
    spec["baseline"] = {"format": "block", "bits": 8, "accumulator": "vc"}
    (sweep / "spec.yaml").write_text(yaml.safe_dump(spec))
    answer = compute_answer(sweep, resamples=200)
    assert answer.baseline == "block<8> vc"
    assert answer.verdicts["block<8> vc"] == "baseline"


def test_answer_views_agree(storage_sweep):
    answer = compute_answer(storage_sweep, resamples=300)
    data = answer.to_json()
    assert answer.sentence and "\n" not in answer.sentence
    assert len(answer.lines()) == len(data["configurations"])
    assert answer.verdicts == {c["configuration"]: c["verdict"] for c in data["configurations"]}
    md = answer.markdown()
    assert md.startswith(f"**{answer.sentence}**")
    assert len(answer.table().columns) <= 8
    metrics = answer.metrics()
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    if answer.answer is not None:
        assert metrics["answer_test_error"] == answer.answer.figures["test_error"].mean


def _subset(src: Path, dst: Path, keep) -> Path:
    """A copy of the sweep ``src`` with only the trials ``keep(trials)`` selects."""
    import shutil

    import pandas as pd

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("report"))
    trials = pd.read_parquet(dst / "trials.parquet")
    trials[keep(trials)].to_parquet(dst / "trials.parquet")
    return dst


def test_one_seed_says_the_intervals_count_the_test_set_only(storage_sweep, tmp_path):
    sweep = _subset(storage_sweep, tmp_path / "one", lambda t: t["seed"] == 0)
    answer = compute_answer(sweep, resamples=300)
    assert "one seed: the intervals count the test set only" in answer.sentence
    data = answer.to_json()
    methods = {c["test_error"]["method"] for c in data["configurations"] if c["n_seeds"]}
    assert methods == {stats.TEST_ONLY}
    assert "one seed" in " ".join(data["methods"].values())


def test_without_predictions_the_answer_says_t_intervals(storage_sweep, tmp_path):
    import shutil

    sweep = tmp_path / "nopred"
    shutil.copytree(storage_sweep, sweep, ignore=shutil.ignore_patterns("report", "predictions"))
    answer = compute_answer(sweep, resamples=300)
    assert "t-interval over seeds (no stored predictions)" in answer.sentence
    methods = {c["test_error"]["method"] for c in answer.to_json()["configurations"]}
    assert methods <= {stats.T_SEEDS, stats.NO_INTERVAL}


def test_without_a_baseline_the_sentence_says_so(storage_sweep, tmp_path):
    sweep = _subset(storage_sweep, tmp_path / "nobase", lambda t: t["format"] != "fp32")
    answer = compute_answer(sweep, resamples=300)
    assert answer.kind == "no-baseline" and answer.baseline is None
    assert answer.sentence.startswith("no baseline to compare against")
    assert set(answer.verdicts.values()) <= {"inconclusive", "failed"}
    assert answer.knee in answer.verdicts
    assert answer.to_json()["answer"] is None


def test_vectorised_mcnemar_is_binomtest():
    rng = np.random.default_rng(0)
    b01 = rng.integers(0, 40, 200)
    b10 = rng.integers(0, 40, 200)
    b01[:3], b10[:3] = 0, 0
    got = stats.mcnemar_p(b01, b10)
    for x, y, p in zip(b01, b10, got, strict=True):
        expected = 1.0 if x + y == 0 else sps.binomtest(int(x), int(x + y), 0.5).pvalue
        assert p == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_several_objectives_ece_and_nll_from_predictions(storage_sweep, tmp_path):
    """Means recomputed from the stored predictions are the reported ones (ECE included), and
    a configuration's verdict combines its objectives'."""
    import shutil

    import pandas as pd

    sweep = tmp_path / "multi"
    shutil.copytree(storage_sweep, sweep, ignore=shutil.ignore_patterns("report"))
    spec = yaml.safe_load((sweep / "spec.yaml").read_text())
    spec["objectives"] = {
        "test_error": "min",
        "test_nll": {"direction": "min", "tolerance": 0.05},
        "test_ece": "min",
        "bits_per_param": "min",
    }
    (sweep / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    answer = compute_answer(sweep, resamples=300)
    assert list(answer.objectives) == ["test_error", "test_nll", "test_ece"]
    assert answer.tolerances["test_nll"] == 0.05 and answer.tolerances["test_ece"] == 0.01
    trials = pd.read_parquet(sweep / "trials.parquet")
    for c in answer.configurations:
        if not c.n_seeds:
            continue
        rows = trials[trials["trial_id"].isin(c.trial_ids) & (trials["status"] == "ok")]
        for m in answer.objectives:
            assert c.figures[m].mean == pytest.approx(rows[m].mean(), abs=1e-6), (c, m)
            assert c.figures[m].method == stats.TWO_WAY or c.n_seeds == 1
        if c.verdict not in ("baseline", "failed"):
            assert c.verdict == stats.combine([f.verdict for f in c.figures.values()])
    assert len(answer.table().columns) <= 8
