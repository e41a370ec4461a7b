"""The sweep's closing lines begin with the answer (analysis.answer) and give one line per
configuration; the answer reaches MLflow through the queued writes, so an outage loses nothing:
the parent run's description and metrics, each child's verdict tag, the saved view the printed
URL opens (orchestrator.summary)."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.answer import compute_answer
from orchestrator import tracking
from orchestrator.outbox import PARENT_KEY, load_pending, pending_keys, replay_pending
from orchestrator.outcome import SweepOutcome
from orchestrator.spec import parse_spec
from orchestrator.store import ResultsStore
from orchestrator.summary import note, summarize
from tests.analysis.sweep_fixture import write_classifier_sweep

SPEC = """\
name: bits
workload: mnist_mlp
objectives: {test_error: min, bits_per_param: min}
fixed: {epochs: 2, batch_size: 128, sampler: sgld}
space:
  seed: {grid: [0, 1]}
variants:
  - {name: fp32, format: fp32}
  - {name: fixed, format: fixed, bits: {grid: [8, 16]}}
"""

#: the fixture's configurations, named as the sweep names them (the child run without the seed)
NAMES = {"fp32": "fp32", 8: "fixed<8,6>", 16: "fixed<16,14>"}


def _sweep(tmp_path: Path, run_ids: dict[str, str] | None = None) -> SweepOutcome:
    """A finished classifier sweep (fp32 and fixed 8 / 16 bits, 2 seeds, stored predictions)
    with the ``configuration`` column the trials write, and its sweep.json."""
    root = write_classifier_sweep(
        tmp_path, formats=("fixed",), bits=(8, 16), accumulators=("full",), seeds=(0, 1)
    )
    trials = pq.read_table(root / "trials.parquet")
    rows = trials.to_pylist()
    for row in rows:
        row["configuration"] = NAMES["fp32" if row["format"] == "fp32" else row["bits"]]
        if run_ids is not None:
            row["mlflow_run_id"] = run_ids[row["trial_id"]]
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, root / "trials.parquet")
    meta = {"sweep_id": "abc123", "name": "bits", "parent_run_id": "parent"}
    (root / "sweep.json").write_text(json.dumps(meta))
    spec = parse_spec(SPEC, "bits.yaml")
    return SweepOutcome(spec, str(root), table, True, "sqlite:///x.db", "1", "parent")


def test_closing_lines_begin_with_the_answer_one_line_per_configuration(tmp_path: Path) -> None:
    outcome = _sweep(tmp_path)
    answer = compute_answer(outcome.sweep_uri)
    out = io.StringIO()
    summarize(outcome, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == answer.sentence
    assert "fp32" in lines[0]  # the default baseline: the one all-fp32 configuration
    # 3 configurations of 2 seeds each: three lines, not six rows of trials
    assert lines[1:4] == [f"  {line}" for line in answer.lines()]
    assert sorted(line.split()[0] for line in lines[1:4]) == sorted(answer.verdicts.values())
    assert "baseline" in answer.verdicts.values()
    assert "trial_id" not in out.getvalue()  # no table of trials
    assert f"analysis: python -m analysis.answer {outcome.sweep_uri}" in out.getvalue()
    assert "viewStateShareKey=abc123" in out.getvalue()


def test_without_an_answer_one_line_says_why_and_the_trials_follow(tmp_path: Path) -> None:
    outcome = _sweep(tmp_path)
    (Path(outcome.sweep_uri) / "trials.parquet").unlink()  # what the answer reads
    out = io.StringIO()
    summarize(outcome, out)
    text = out.getvalue()
    assert text.startswith("\nsweep bits finished: 6/")
    (why,) = [line for line in text.splitlines() if line.startswith("answer:")]
    assert "not computed" in why and "trials.parquet" in why
    assert "trial_id" in text and "bits_0000" in text  # the table of trials instead
    interrupted = _sweep(tmp_path / "i")
    interrupted.complete = False
    out = io.StringIO()
    summarize(interrupted, out)
    assert "answer:   not computed: the sweep was interrupted" in out.getvalue()


def test_answer_is_queued_for_mlflow(tmp_path: Path) -> None:
    outcome = _sweep(tmp_path)
    answer = compute_answer(outcome.sweep_uri)
    summarize(outcome, io.StringIO())
    store = outcome.store()
    parent = load_pending(store, PARENT_KEY)
    assert parent is not None and parent["run_id"] == "parent"
    ops = {op["op"]: op for op in parent["ops"]}
    assert ops["tags"]["tags"]["mlflow.note.content"] == answer.markdown()
    assert ops["tags"]["tags"]["verdict"].startswith("answer: ")
    assert ops["metrics"]["metrics"] == pytest.approx(answer.metrics())
    view = json.loads(ops["experiment_tag"]["value"])
    assert ops["experiment_tag"]["key"] == "mlflow.sharedViewState.abc123"
    assert view["selectedColumns"] == [
        "tags.`verdict`",
        "metrics.`test_error`",
        "metrics.`bits_per_param`",
    ]
    assert view["searchFilter"] == "tags.sweep_id = 'abc123'"
    # one file of writes per trial, with its configuration's verdict
    trials = [k for k in pending_keys(store) if k != PARENT_KEY]
    assert len(trials) == 6
    table = outcome.table.to_pylist()
    for row in table:
        doc = load_pending(store, f"{row['trial_id']}-verdict")
        assert doc["run_id"] == row["mlflow_run_id"]
        assert doc["ops"] == [
            {"op": "tags", "tags": {"verdict": answer.verdicts[row["configuration"]]}}
        ]


def test_a_long_description_is_cut_at_a_line_within_mlflow_s_limit() -> None:
    text = "\n".join(f"| row {i} | {'x' * 90} |" for i in range(200))
    cut = note(text)
    assert len(cut) <= 8000 and cut.splitlines()[0] == "| row 0 | " + "x" * 90 + " |"
    assert cut.endswith("more lines: see python -m analysis.answer*")
    assert note("short") == "short"


class _Away:
    """A tracking server that does not answer."""

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise ConnectionError("MLflow is away")

        return fail


def test_answer_reaches_mlflow_after_an_outage(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = tracking.ensure_experiment(uri, "bits")
    client = tracking.client(uri)
    parent = tracking.start_parent_run(uri, experiment_id, "bits", "abc123", "0" * 40, SPEC)
    trial_ids = [f"bits_{i:05d}" for i in range(6)]
    runs = {
        t: client.create_run(
            experiment_id, run_name=t, tags={"mlflow.parentRunId": parent, "sweep_id": "abc123"}
        ).info.run_id
        for t in trial_ids
    }
    for run_id in runs.values():
        client.set_terminated(run_id, "FINISHED")
    outcome = _sweep(tmp_path / "results", runs)
    outcome.tracking_uri, outcome.experiment_id, outcome.parent_run_id = uri, experiment_id, parent
    answer = compute_answer(outcome.sweep_uri)
    summarize(outcome, io.StringIO())
    store = ResultsStore(str(tmp_path / "results"), "bits")
    # the server away: nothing sent, nothing lost
    assert replay_pending(store, _Away(), final_only=False)[:2] == (0, 7)
    assert replay_pending(store, client, final_only=False)[:2] == (7, 0)
    assert pending_keys(store) == []
    run = client.get_run(parent)
    assert run.data.tags["mlflow.note.content"] == answer.markdown()
    assert run.data.metrics == pytest.approx(answer.metrics())
    for row in outcome.table.to_pylist():
        child = client.get_run(runs[row["trial_id"]])
        assert child.data.tags["verdict"] == answer.verdicts[row["configuration"]]
        assert child.info.status == "FINISHED"
    experiment = client.get_experiment(experiment_id)
    view = json.loads(experiment.tags["mlflow.sharedViewState.abc123"])
    assert view["orderByKey"] == "tags.`verdict`" and view["orderByAsc"] is True
    # ordered by the verdict tag, the parent comes first ("answer: ..." sorts before verdicts)
    ordered = client.search_runs(
        [experiment_id], filter_string=view["searchFilter"], order_by=["tags.`verdict` ASC"]
    )
    assert ordered[0].info.run_id == parent and len(ordered) == 7


def test_the_report_shows_the_answer_the_closing_lines_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver hands the summary's answer to the report: a sweep computes it once."""
    import analysis.answer
    import analysis.report
    from orchestrator.summary import analysis_report

    calls: list[str] = []

    def counted(sweep_dir: object, *args: object, **kwargs: object) -> object:
        calls.append(str(sweep_dir))
        return compute_answer(sweep_dir, *args, **kwargs)

    monkeypatch.setattr(analysis.answer, "compute_answer", counted)
    monkeypatch.setattr(analysis.report, "compute_answer", counted)
    outcome = _sweep(tmp_path)
    answer = summarize(outcome, io.StringIO())
    analysis_report(outcome, io.StringIO(), answer=answer)
    assert len(calls) == 1
    page = (Path(outcome.sweep_uri) / "report" / "index.html").read_text()
    assert html.escape(answer.sentence.split(":")[0]) in page
