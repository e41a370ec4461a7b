"""The sweep driver's decisions without Ray: when a sweep counts as interrupted, what the summary
says when no trial succeeded, where the analysis report is looked for, the optuna dry run
(orchestrator.sweep)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.driver import _all_ended
from orchestrator.outcome import SweepOutcome
from orchestrator.spec import parse_spec
from orchestrator.store import ResultsStore, local_path, rows_to_table
from orchestrator.summary import analysis_report, summarize
from orchestrator.sweep import dry_run
from tests.orchestrator.test_spec import VALID


def _grid(*trials: tuple[str, str]) -> SimpleNamespace:
    """A stand-in for Tune's ResultGrid holding trials ``(trial_id, status)``."""
    ts = [SimpleNamespace(trial_id=t, status=s) for t, s in trials]
    return SimpleNamespace(_experiment_analysis=SimpleNamespace(trials=ts))


def _row(trial_id: str, status: str, error: str | None = None) -> dict:
    return {"trial_id": trial_id, "status": status, "error": error, "w2": 0.1, "bits": 8}


def test_trials_stopped_by_tune_without_rows_are_not_ended(tmp_path: Path) -> None:
    spec = parse_spec(
        VALID.replace("[full, low]", "[full]").replace("num_samples: 2", "num_samples: 1")
    )
    store = ResultsStore(tmp_path, spec.name)
    ids = ("a_0", "a_1", "a_2")
    # Tune's graceful stop on SIGINT leaves every trial TERMINATED, none with its row
    assert not _all_ended(_grid(*((i, "TERMINATED") for i in ids)), spec, store)
    for i in ids[:2]:
        store.write_trial_row(_row(i, "ok"))
    assert not _all_ended(_grid(*((i, "TERMINATED") for i in ids)), spec, store)
    # an ERROR trial need not have a row (a worker killed outright writes none)
    assert _all_ended(
        _grid(("a_0", "TERMINATED"), ("a_1", "TERMINATED"), ("a_2", "ERROR")), spec, store
    )


def _outcome(tmp_path: Path, rows: list[dict], sweep_uri: str | None = None) -> SweepOutcome:
    spec = parse_spec(VALID, "t.yaml")
    table = rows_to_table(rows) if rows else rows_to_table([])
    return SweepOutcome(spec, sweep_uri or str(tmp_path / "t"), table, True, "sqlite:///x.db")


def test_no_trial_succeeded_is_said_loudly_and_the_report_skipped(tmp_path: Path) -> None:
    rows = [
        _row("a_0", "failed", "Traceback ...\nRuntimeError: fake failure"),
        _row("a_1", "diverged"),
    ]
    outcome = _outcome(tmp_path, rows)
    out, err = io.StringIO(), io.StringIO()
    summarize(outcome, out)
    assert "NO TRIAL SUCCEEDED" in out.getvalue()
    assert "first error: RuntimeError: fake failure" in out.getvalue()
    analysis_report(outcome, err)
    assert "analysis report skipped: no trial succeeded" in err.getvalue()
    assert "ValueError" not in err.getvalue()
    # nothing recorded at all (every trial killed before writing a row)
    out, err = io.StringIO(), io.StringIO()
    empty = _outcome(tmp_path, [])
    summarize(empty, out)
    analysis_report(empty, err)
    assert "NO TRIAL SUCCEEDED" in out.getvalue()
    assert "analysis report skipped: no trial succeeded" in err.getvalue()


def test_some_trial_succeeded_is_not_flagged(tmp_path: Path) -> None:
    out = io.StringIO()
    summarize(_outcome(tmp_path, [_row("a_0", "ok"), _row("a_1", "failed", "x")]), out)
    assert "NO TRIAL SUCCEEDED" not in out.getvalue()


def test_local_path_of_storage_uris() -> None:
    assert local_path("/data/results/bits") == "/data/results/bits"
    assert local_path("file:///data/results/bits") == "/data/results/bits"
    assert local_path("file://localhost/data/x") == "/data/x"
    assert local_path("s3://bucket/results/bits") is None
    assert local_path("gs://bucket/results/bits") is None


@pytest.mark.parametrize("uri", ["file:///data/results/t", "s3://bucket/results/t"])
def test_printed_analysis_command_and_report_for_storage_uris(tmp_path: Path, uri: str) -> None:
    outcome = _outcome(tmp_path, [_row("a_0", "ok")], sweep_uri=uri)
    out, err = io.StringIO(), io.StringIO()
    summarize(outcome, out)
    if uri.startswith("file://"):
        assert "analysis: python -m analysis.answer /data/results/t\n" in out.getvalue()
        assert "          python -m analysis.report /data/results/t\n" in out.getvalue()
    else:
        assert f"analysis: copy {uri} to a local directory DIR" in out.getvalue()
        analysis_report(outcome, err)
        assert f"analysis report skipped: {uri} is not a local directory" in err.getvalue()


def test_file_uri_report_is_written_to_the_local_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import analysis.report

    seen = []
    monkeypatch.setattr(analysis.report, "write_report", lambda d: seen.append(d))
    outcome = _outcome(tmp_path, [_row("a_0", "ok")], sweep_uri=f"file://{tmp_path}/t")
    err = io.StringIO()
    analysis_report(outcome, err)
    assert seen == [f"{tmp_path}/t"], err.getvalue()
    assert f"report:   {tmp_path}/t/report" in err.getvalue()


def test_optuna_dry_run_says_what_optuna_does() -> None:
    text = VALID.replace("algorithm: grid, num_samples: 2", "algorithm: optuna, num_samples: 6")
    out = io.StringIO()
    dry_run(parse_spec(text, "o.yaml"), out)
    text = out.getvalue()
    assert "o.yaml: 6 trials of workload 'gaussian'" in text
    assert "6 trials proposed by Optuna over: weight_format, accumulator, lr" in text
    assert "more" not in text and "[0]" not in text


@pytest.mark.parametrize(
    ("uri", "where"),
    [
        ("/data/results/t", "--results /data/results"),
        ("file:///data/results/t", "--results /data/results"),
        ("s3://bucket/results/t", "--storage s3://bucket/results"),
    ],
)
def test_printed_resume_command_names_where_the_sweep_is(
    tmp_path: Path, uri: str, where: str
) -> None:
    outcome = _outcome(tmp_path, [_row("a_0", "ok")], sweep_uri=uri)
    outcome.complete = False
    out = io.StringIO()
    summarize(outcome, out)
    assert f"resume:   python -m orchestrator.sweep t.yaml --resume {where}\n" in out.getvalue()


def test_dry_run_names_the_baseline_and_the_tolerances() -> None:
    """--dry-run says what the answer will compare against before anything runs."""
    spec = """name: answered
workload: mnist_mlp
objectives: {test_error: {direction: min, tolerance: 0.01}, bits_per_param: min}
search: {algorithm: grid}
fixed: {epochs: 2, burn_in: 1}
baseline: fp32
variants:
  - {name: fp32, format: fp32}
  - {name: quantized, format: block, bits: {grid: [4, 8]}}
"""
    out = io.StringIO()
    dry_run(parse_spec(spec, "a.yaml"), out)
    assert "  answer: baseline 'fp32', equivalent within test_error ±0.01\n" in out.getvalue()
    out = io.StringIO()
    dry_run(
        parse_spec(spec.replace("baseline: fp32\n", "").replace("fp32}", "block}"), "b.yaml"), out
    )
    assert "answer: no baseline (no single all-fp32 configuration" in out.getvalue()
