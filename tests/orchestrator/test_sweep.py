"""The sweep end to end on a real local Ray (2 CPUs) with MLflow in a temporary SQLite store:
every trial recorded once in trials.parquet, the predictions/samples datasets, the MLflow parent
and its children, faults recorded (orchestrator.sweep)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from orchestrator import tracking
from orchestrator.spec import load_spec
from orchestrator.sweep import SweepUsageError, run_sweep
from tests.orchestrator.helpers import write_spec
from tests.shared_run import shared_dir, smoke_sweep

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray(ray_env: None, fake_registered: None) -> Iterator[None]:
    """One local Ray instance (2 CPUs) for the module; sweeps reuse it."""
    import ray

    from orchestrator.tune_setup import init_ray as _init_ray

    assert not ray.is_initialized()
    # address="local": our own Ray, even when another process's `ray start` cluster runs here
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
    )
    _init_ray(None)  # sets the worker environment, joins the running instance
    yield
    ray.shutdown()


def _quiet_sweep(spec_file: str, tmp_path: Path):
    """The sweep of ``spec_file`` into ``tmp_path`` (results, MLflow), its lines kept, no report."""
    return run_sweep(
        spec_file,
        results=str(tmp_path / "results"),
        mlflow_uri=str(tmp_path / "mlflow.db"),
        out=io.StringIO(),
        err=io.StringIO(),
        analysis_report=False,
    )


def _children(outcome):
    return tracking.find_child_runs(
        outcome.tracking_uri, outcome.experiment_id, outcome.parent_run_id
    )


def test_smoke_end_to_end(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """search_spaces/smoke.yaml as a user runs it (the run the test run shares,
    tests.shared_run): rows, samples, MLflow runs, report, progress and closing lines."""
    import json
    import shutil
    import sqlite3

    done = smoke_sweep(shared_dir(tmp_path_factory))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    spec_file = REPO / "search_spaces" / "smoke.yaml"
    rows = pq.read_table(done.directory / "trials.parquet").to_pylist()
    assert len(rows) == load_spec(spec_file).num_trials() == 4  # the --dry-run count
    assert {r["status"] for r in rows} == {"ok"}
    assert len({r["trial_id"] for r in rows}) == 4
    assert {(r["weight_format"], r["accumulator"]) for r in rows} == {
        (w, a) for w in ("fixed<8,3>", "fixed<6,3>") for a in ("full", "low")
    }
    assert {r["bits"] for r in rows} == {8, 6}  # the weight format's word bits
    assert all(r["w2"] >= 0 and r["sweep_id"] == rows[0]["sweep_id"] for r in rows)
    # the samples dataset: one partition per trial, 64 chains per sample
    samples = ds.dataset(done.directory / "samples", partitioning="hive").to_table()
    assert set(samples.column("trial_id").to_pylist()) == {r["trial_id"] for r in rows}
    assert samples.num_rows % 64 == 0
    # MLflow: one parent, one finished child per trial, linked by tag
    meta = json.loads((done.directory / "sweep.json").read_text())
    assert meta["tracking_uri"] == done.tracking_uri
    children = tracking.find_child_runs(
        done.tracking_uri, meta["experiment_id"], meta["parent_run_id"]
    )
    assert sorted(c.data.tags["trial_id"] for c in children) == sorted(r["trial_id"] for r in rows)
    # named by the searched keys' values (orchestrator.tracking.run_name)
    assert {c.info.run_name for c in children} == {
        f"{w} {a}" for w in ("fixed<8,3>", "fixed<6,3>") for a in ("full", "low")
    }
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.info.run_id for c in children} == {r["mlflow_run_id"] for r in rows}
    assert all(c.data.params["accumulator"] in ("full", "low") for c in children)
    mlflow = tracking.client(done.tracking_uri)
    assert mlflow.get_run(meta["parent_run_id"]).info.status == "FINISHED"
    # the analysis report, its figures logged to the parent run
    assert (done.directory / "report" / "index.html").exists()
    logged = [a.path for a in mlflow.list_artifacts(meta["parent_run_id"], "report")]
    assert any(path.endswith(".png") for path in logged), logged
    # the progress lines and the closing summary
    assert "4/4 ended (ok 4, diverged 0, failed 0)" in done.stderr
    assert "sweep smoke finished: 4/4 trials recorded" in done.stdout
    assert "mlflow ui --backend-store-uri sqlite:///" in done.stdout

    # on a copy (the shared run is read by other tests): a second run into the same directory
    # is refused (resume it or pick another place) ...
    results = tmp_path / "results"
    shutil.copytree(done.directory, results / "smoke")
    with (
        sqlite3.connect(done.root / "mlflow.db") as store,
        sqlite3.connect(tmp_path / "mlflow.db") as copy,
    ):
        store.backup(copy)  # the log of a WAL-mode file too, which a file copy would miss
    copy_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(SweepUsageError, match="--resume"):
        run_sweep(str(spec_file), results=str(results), mlflow_uri=copy_uri)
    # ... and a driver killed after a trial's row was written but before the end of its run was
    # sent (then marked KILLED by the resume): the back-fill ends that run from the row, once
    from orchestrator import backfill

    mlflow = tracking.client(copy_uri)
    cut = children[0].info.run_id
    verdict = children[0].data.tags["verdict"]  # its configuration's, from the answer
    assert verdict in ("baseline", "equivalent", "better", "worse", "inconclusive")
    mlflow.update_run(cut, status="KILLED")
    mlflow.delete_tag(cut, "verdict")  # as a run MLflow never got the answer's writes for
    filled = backfill.backfill(str(results / "smoke"), copy_uri)
    assert (filled.ended, filled.created) == (1, 0)
    again = mlflow.get_run(cut)
    assert again.info.status == "FINISHED" and again.data.tags["status"] == "ok"
    assert again.data.tags["verdict"] == verdict
    assert backfill.backfill(str(results / "smoke"), copy_uri).ended == 0


FAULTS = """\
name: faults
workload: fake
objectives: {test_error: min}
max_failures: 1
fixed: {lr: 0.1, reports: 2, marker_dir: MARKERS}
space:
  behaviour: {grid: [ok, raise, raise_once, diverge, missing_data]}
"""


def test_faults_are_recorded_and_retried_as_configured(local_ray: None, tmp_path: Path) -> None:
    (tmp_path / "markers").mkdir()
    spec = write_spec(tmp_path, FAULTS.replace("MARKERS", str(tmp_path / "markers")))
    outcome = _quiet_sweep(str(spec), tmp_path)
    rows = {r["behaviour"]: r for r in outcome.table.to_pylist()}
    assert len(rows) == outcome.table.num_rows == 5
    assert rows["ok"]["status"] == "ok" and rows["ok"]["attempt"] == 1
    # a raising trial: failed, its error kept, retried max_failures = 1 time
    assert rows["raise"]["status"] == "failed" and rows["raise"]["attempt"] == 2
    assert "RuntimeError: fake failure: this trial always raises" in rows["raise"]["error"]
    # raising once: the retry resumed from the first attempt's checkpoint and succeeded
    assert rows["raise_once"]["status"] == "ok" and rows["raise_once"]["attempt"] == 2
    assert rows["raise_once"]["start_step"] == 1
    # diverged: recorded with its metrics, never retried
    assert rows["diverge"]["status"] == "diverged" and rows["diverge"]["attempt"] == 1
    assert rows["diverge"]["diverged"] is True and rows["diverge"]["step"] == 2
    assert "inf" in rows["diverge"]["error"]
    # missing data fails the same way every time: recorded, not retried
    assert rows["missing_data"]["status"] == "failed" and rows["missing_data"]["attempt"] == 1
    assert "fake.npz" in rows["missing_data"]["error"]
    # predictions only for the trials that finished
    parts = {p.name for p in (tmp_path / "results" / "faults" / "predictions").iterdir()}
    assert parts == {f"trial_id={rows[b]['trial_id']}" for b in ("ok", "raise_once")}
    runs = {c.info.run_id: c for c in _children(outcome)}
    assert len(runs) == 5  # a retry continues its trial's run
    assert runs[rows["raise"]["mlflow_run_id"]].info.status == "FAILED"
    assert runs[rows["diverge"]["mlflow_run_id"]].data.tags["status"] == "diverged"
    assert outcome.complete


OPTUNA = """\
name: optuna2
workload: fake
objectives: {test_error: min, test_nll: min}
search: {algorithm: optuna, num_samples: 4, max_concurrent: 2, seed: 0}
fixed: {reports: 1}
space:
  lr: {loguniform: [1.0e-3, 1.0]}
  kind: {grid: [classifier, sampler]}
"""


def test_optuna_multi_objective_records_both(local_ray: None, tmp_path: Path) -> None:
    """Also: results and Tune's state given as a pyarrow URI (--storage)."""
    spec = write_spec(tmp_path, OPTUNA)
    outcome = run_sweep(
        str(spec),
        storage=f"file://{tmp_path}/store",
        mlflow_uri=str(tmp_path / "mlflow.db"),
        out=io.StringIO(),
        err=io.StringIO(),
        analysis_report=False,
    )
    rows = outcome.table.to_pylist()
    assert len(rows) == 4 == load_spec(spec).num_trials()
    assert all(r["status"] == "ok" for r in rows)
    assert all(1e-3 <= r["lr"] <= 1.0 for r in rows)
    assert all(r["test_error"] is not None and r["test_nll"] is not None for r in rows)
    for child in _children(outcome):
        assert {"test_error", "test_nll"} <= set(child.data.metrics)
    assert outcome.sweep_uri == f"file://{tmp_path}/store/optuna2"
    assert (tmp_path / "store" / "optuna2" / "trials.parquet").exists()
    assert (tmp_path / "store" / "optuna2" / "tune").is_dir()


ASHA = """\
name: asha
workload: fake
objectives: {train_loss: min}
scheduler: {type: asha, grace_period: 1, max_t: 10}
fixed: {reports: 4, sleep_s: 0.2}
space:
  lr: {grid: [0.1, 0.2, 0.3, 0.4]}
"""


def test_asha_every_trial_recorded_once(local_ray: None, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, ASHA)
    outcome = _quiet_sweep(str(spec), tmp_path)
    rows = outcome.table.to_pylist()
    assert sorted(r["lr"] for r in rows) == [0.1, 0.2, 0.3, 0.4]
    assert all(r["status"] == "ok" for r in rows)
    # a trial ASHA stopped has its last reported loss; one that ran to the end its test_error
    for r in rows:
        assert r["train_loss"] is not None if r["early_stopped"] else r["test_error"] is not None


def test_resume_before_tune_saved_anything_starts_afresh(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver that died after writing sweep.json but before Tune started can be resumed."""
    import orchestrator.driver as driver_mod

    spec = write_spec(tmp_path, "name: early\nworkload: fake\nobjectives: {test_error: min}\n")
    kwargs = dict(
        results=str(tmp_path / "results"),
        mlflow_uri=str(tmp_path / "mlflow.db"),
        out=io.StringIO(),
        analysis_report=False,
    )

    def killed(*args: object, **kw: object) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(driver_mod, "_fit", killed)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(str(spec), err=io.StringIO(), **kwargs)
    monkeypatch.undo()
    err = io.StringIO()
    outcome = run_sweep(str(spec), resume=True, err=err, **kwargs)
    assert "starting the trials afresh" in err.getvalue()
    assert outcome.complete and outcome.table.num_rows == 1
    assert len(_children(outcome)) == 1


REUSE = """\
name: reuse
workload: fake
objectives: {test_error: min}
resources: {cpu: 1}
fixed: {reports: 1, sleep_s: 0.3}
"""
TEN = "  lr: {grid: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]}\n"


@pytest.mark.parametrize(
    "search",
    [
        f"space:\n{TEN}",
        f"search: {{algorithm: grid, num_samples: 1, max_concurrent: 2}}\nspace:\n{TEN}",
        "search: {algorithm: optuna, num_samples: 10, seed: 3}\nspace:\n"
        "  lr: {loguniform: [0.01, 1.0]}\n",
    ],
    ids=["no-limit", "max-concurrent", "optuna"],
)
def test_trials_reuse_one_worker_per_slot(local_ray: None, tmp_path: Path, search: str) -> None:
    """Ten short trials on two slots run in exactly two worker processes: both slots work,
    and each slot's actor is kept for the next trial. Without a limit Tune keeps it only while
    a trial is staged for it (the sweep stages as many as there are slots); with a limit
    (max_concurrent, optuna: Tune's ConcurrencyLimiter) the finished trial's actor is kept
    until the searcher's next trial takes it. A new worker per trial costs seconds of imports
    (bench.scale)."""
    outcome = _quiet_sweep(str(write_spec(tmp_path, REUSE + search)), tmp_path)
    rows = outcome.table.to_pylist()
    assert outcome.complete and len(rows) == 10
    # both slots busy (not one trial at a time), and no slot restarted its worker
    assert len({r["worker_pid"] for r in rows}) == 2, sorted(r["worker_pid"] for r in rows)
