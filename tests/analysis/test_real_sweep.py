"""Analysis on real sweeps run by the orchestrator (local Ray, MLflow in a temporary SQLite file):
the smoke sweep of search_spaces/smoke.yaml (Gaussian target, samples) and a tiny logistic
regression grid (a classifier, predictions). Checks that what the orchestrator writes is what
analysis reads, that the metrics recomputed from the stored predictions and samples are the
reported ones, and that the report the orchestrator wrote at the end of the sweep is complete."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.answer import compute_answer
from analysis.load import check_metrics, load_sweep, objectives_from_spec
from analysis.pareto import pareto_front
from analysis.report import read_table, write_report
from tests.shared_run import run_sweep_cli, shared_dir
from tests.shared_run import smoke_sweep as shared_smoke_sweep

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

#: a classifier grid of 4 trials that runs in seconds: full vs naive low accumulator, 2 seeds
LOGREG_SPEC = {
    "name": "an_logreg",
    "workload": "logreg",
    "objectives": {"test_error": "min", "bits": "min"},
    "search": {"algorithm": "grid", "num_samples": 1},
    "resources": {"cpu": 1, "gpu": 0},
    "fixed": {
        "sampler": "sgld",
        "steps": 400,
        "lr": 0.05,
        "burn_in": 200,
        "thin": 20,
        "prior_std": 1.0,
        "temperature": 1.0,
        "weight_format": "fixed<8,4>",
        "device": "cpu",
    },
    "space": {"accumulator": {"grid": ["full", "low"]}, "seed": {"grid": [0, 1]}},
}


def _run_sweep(spec_file: Path, root: Path) -> Path:
    name = yaml.safe_load(spec_file.read_text())["name"]
    done = run_sweep_cli(spec_file, root, name)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done.directory


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke sweep the test run shares (tests.shared_run): read here, not changed."""
    done = shared_smoke_sweep(shared_dir(tmp_path_factory))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done.directory


@pytest.fixture(scope="module")
def logreg_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("logreg")
    spec_file = root / "an_logreg.yaml"
    spec_file.write_text(yaml.safe_dump(LOGREG_SPEC, sort_keys=False))
    return _run_sweep(spec_file, root)


def test_smoke_sweep_reads_back_and_its_report_is_complete(smoke_sweep):
    sweep = load_sweep(smoke_sweep)
    spec = yaml.safe_load((ROOT / "search_spaces" / "smoke.yaml").read_text())
    assert sweep.name == spec["name"] and sweep.objectives == objectives_from_spec(spec)
    trials = sweep.trials
    assert len(trials) == 4 and set(trials["status"]) <= {"ok", "diverged", "failed"}
    assert {"w2", "bits", "trial_id", "accumulator", "weight_format"} <= set(trials.columns)
    assert set(trials["family"]) == {"fixed"}
    ok = trials[trials["status"] == "ok"]
    assert len(ok) >= 1
    x = sweep.samples(ok["trial_id"].iloc[0])
    assert x.ndim == 3 and x.shape[1] == spec["fixed"]["chains"] and np.isfinite(x).all()
    checked = check_metrics(sweep)
    assert len(checked) > 0, "the smoke sweep reports neither mean nor std"
    # reported and recomputed come from the same float32 samples, summed in float64
    assert checked["abs_diff"].max() < 1e-5, checked
    # the orchestrator wrote the report at the end of the sweep
    report = smoke_sweep / "report"
    for name in (
        "index.html",
        "pareto.csv",
        "pareto_mean.csv",
        "samples.png",
        "w2_vs_bits_per_param.png",
    ):
        assert (report / name).is_file(), name
    front = read_table(report / "pareto.csv")  # typed: ids that look like numbers stay strings
    assert set(front["trial_id"]) == set(pareto_front(trials, sweep.objectives)["trial_id"])


def test_logreg_sweep_metrics_recompute_from_predictions(logreg_sweep, tmp_path):
    sweep = load_sweep(logreg_sweep)
    ok = sweep.trials[sweep.trials["status"] == "ok"]
    assert len(ok) >= 2
    labels, probs = sweep.predictions(ok["trial_id"].iloc[0])
    assert probs.ndim == 2 and len(labels) == len(probs)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    checked = check_metrics(sweep)
    assert set(checked["metric"]) == {"test_error", "test_nll", "test_ece", "test_brier"}
    assert len(checked) == 4 * len(ok)
    # the workload computed its metrics from the same float32 probabilities with the same
    # functions, so they agree to float64 rounding
    assert checked["abs_diff"].max() < 1e-9, checked.sort_values("abs_diff").tail()
    report = write_report(logreg_sweep, out_dir=tmp_path / "r")
    names = {p.name for p in report.pngs}
    assert {"test_error_vs_bits.png", "reliability.png"} <= names
    assert report.summary["trials"] == 4


def test_logreg_sweep_answer_against_the_full_accumulator(logreg_sweep, tmp_path):
    """The answer on what the orchestrator wrote: full vs low accumulator, 2 seeds, the stored
    predictions; no configuration is all fp32 (both have fixed<8,4> weights), so the baseline
    is named in the spec."""
    assert compute_answer(logreg_sweep, resamples=200).kind == "no-baseline"
    sweep = tmp_path / "an_logreg"
    shutil.copytree(logreg_sweep, sweep, ignore=shutil.ignore_patterns("report"))
    spec = yaml.safe_load((sweep / "spec.yaml").read_text()) or {}
    spec["baseline"] = {"accumulator": "full"}
    (sweep / "spec.yaml").write_text(yaml.safe_dump(spec))
    answer = compute_answer(sweep, resamples=500)
    labels, _ = load_sweep(sweep).predictions(load_sweep(sweep).trials["trial_id"].iloc[0])
    assert answer.n_test == len(labels)
    data = answer.to_json()
    assert len(data["configurations"]) == 2
    verdicts = sorted(c["verdict"] for c in data["configurations"])
    assert verdicts[0] == "baseline" or verdicts[1] == "baseline"
    low = next(c for c in data["configurations"] if c["verdict"] != "baseline")
    assert low["test_error"]["method"] == "two-way" and low["test_error"]["n_seeds"] == 2
    assert low["test_error"]["diff_ci"][0] <= low["test_error"]["diff"]
    assert answer.sentence.split(":")[0] in (
        "fewest bits with no measurable loss against " + data["baseline"],
        "fewest bits with a measurable gain over " + data["baseline"],
    ) or answer.sentence.startswith("no configuration is shown equivalent")
