"""Fault 7: the results directory's disk fills up in the middle of a sweep (a 16 MiB tmpfs
mounted for the test; skipped with one line where mounting is not permitted).

At a random moment (after the first trial's row, then U(0, 0.5) s: the recorded RNG) a filler
file takes every free byte. The sweep ends with a clear error naming a file under the results
directory and exits 1, no traceback; every row written before is intact. With the filler
removed, ``--resume`` finishes the sweep, every trial exactly once, whatever the moment of the
fill: Ray Tune's own files (its experiment and searcher state, ``tuner.pkl``, trial
checkpoints) go through :mod:`orchestrator.atomicfs`, whole or not at all, so the fill cannot
cut one short (before it did, and ``--resume`` could only refuse)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.store import ResultsStore
from tests.faults import harness
from tests.orchestrator.helpers import write_spec

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TRIALS = 4
SPEC = """\
name: full
workload: fake
objectives: {test_error: min}
search: {max_concurrent: 2}
resources: {cpu: 0.5}
max_failures: 1
fixed: {reports: 3, sleep_s: 0.3}
space:
  lr: {grid: [0.1, 0.2, 0.3, 0.4]}
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(mount: Path) -> Path:
    """A file taking every free byte of ``mount``. Unbuffered: the write that finds the disk
    full raises inside ``suppress``; a buffered file kept the unwritten part and raised
    ENOSPC again when closed, outside it (CI saw that once)."""
    filler = mount / "filler"
    block = b"\0" * (1 << 16)
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(block)
    return filler


def test_full_disk_mid_sweep(
    small_disk: Path, fault_env: dict[str, str], tmp_path: Path, fault_rng, fault_log
) -> None:
    spec = write_spec(tmp_path, SPEC)
    results = small_disk / "results"
    args = [str(spec), "--results", str(results), "--mlflow-uri", str(tmp_path / "mlflow.db")]
    sweep = results / "full"
    log = tmp_path / "first"
    proc = harness.start(args, tmp_path, fault_env, log=log)
    harness.wait_for(lambda: harness.row_files(sweep), proc, 300, "the first row")
    time.sleep(fault_rng.uniform(0.0, 0.5))
    store = ResultsStore(results, "full")
    filler = _fill(small_disk)
    before = {t: store.read_trial_row(t) for t in store.trial_row_ids()}
    proc.wait(timeout=400)
    out, err = harness.output(log)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 1, (proc.returncode, out, err)
    assert len(errors) == 1 and str(results) in errors[0], err
    assert "No space left on device" in errors[0], errors
    tracebacks = harness.tracebacks(out + err)
    after = {t: store.read_trial_row(t) for t in before}
    assert after == before  # nothing already written is damaged: our rows,
    assert store.tune_state_damage() is None  # and Tune's own state files

    filler.unlink()
    log = tmp_path / "resumed"
    proc = harness.start([*args, "--resume"], tmp_path, fault_env, log=log)
    proc.wait(timeout=400)
    out, err = harness.output(log)
    tracebacks += harness.tracebacks(out + err)
    assert proc.returncode == 0, (out, err)
    audit = harness.audit(sweep, expected=TRIALS)
    fault_log(
        "full disk under the results directory mid-sweep",
        tried=1,
        recorded=audit["recorded"],
        duplicates=audit["duplicates"],
        lost=audit["lost"],
        tracebacks=tracebacks,
        outcome="rows and Tune's state written before intact; `error: cannot write PATH: No "
        "space left on device`, exit 1; --resume after freeing space: complete",
    )
    assert not audit["problems"], audit["problems"]
    assert (audit["recorded"], audit["duplicates"], audit["lost"]) == (TRIALS, 0, 0)
    assert tracebacks == 0


def _tune_state(directory: Path, held: list[dict], listed: list[dict], position: int) -> None:
    """Tune's three state files as a failed upload leaves them: the experiment state holding
    trials of ``held``, the trial list at ``position`` of ``listed`` (its search generator
    counting as many, one of them running under the concurrency limiter)."""
    import json

    from ray import cloudpickle

    trials = [
        [json.dumps({"trial_id": f"t{i}", "config": config}), "{}"] for i, config in enumerate(held)
    ]
    (directory / "experiment_state-2026-01-01_00-00-00.json").write_text(
        json.dumps({"trial_data": trials})
    )
    with open(directory / "searcher-state-2026-01-01_00-00-01.pkl", "wb") as f:
        cloudpickle.dump({"configs": listed, "next_index": position}, f)
    limiter = {"max_concurrent": 2, "live_trials": {f"t{position - 1}"}}
    limiter["num_unfinished_live_trials"] = 1
    generator = {"counter": position, "total_samples": len(listed), "finished": True}
    with open(directory / "search_gen_state-2026-01-01_00-00-01.json", "wb") as f:
        cloudpickle.dump({**generator, "name:ConcurrencyLimiter": limiter}, f)


@pytest.mark.parametrize("held", [2, 4], ids=["trial list ahead", "trial list behind"])
def test_resume_aligns_the_trial_list_with_the_trials_tune_holds(tmp_path: Path, held: int) -> None:
    """The cause of a resumed sweep that ended "interrupted: 2/4 trials recorded" after a full
    disk: Tune uploads its experiment state (~90 KB) and the trial list's state (~300 bytes) as
    separate files, and on a nearly full disk the small one fits where the large one does not.
    The trial list then stands ahead of the trials Tune holds (it handed out configs whose
    trials Tune lost) and, resumed, never hands them out again; behind, it would run configs
    twice. Before Tune restores, the driver puts the trial list where Tune's trials are."""
    import io

    from ray import cloudpickle

    from orchestrator.tune_state import align_trial_list

    configs = [{"lr": 0.1 * (i + 1)} for i in range(4)]
    store = ResultsStore(tmp_path / "results", "full")
    tune_dir = Path(store.path) / "tune"
    tune_dir.mkdir(parents=True)
    position = 4 if held == 2 else 2
    _tune_state(tune_dir, configs[:held], configs, position)
    err = io.StringIO()
    align_trial_list(store, "full", err)
    with open(tune_dir / "searcher-state-2026-01-01_00-00-01.pkl", "rb") as f:
        listed = cloudpickle.load(f)
    with open(tune_dir / "search_gen_state-2026-01-01_00-00-01.json", "rb") as f:
        generator = cloudpickle.load(f)
    assert listed == {"configs": configs, "next_index": held}
    assert (generator["counter"], generator["finished"]) == (held, False)
    limiter = generator["name:ConcurrencyLimiter"]
    assert limiter["live_trials"] == ({"t1"} if held == 4 else set())  # t3: a trial Tune lost
    assert limiter["num_unfinished_live_trials"] == len(limiter["live_trials"])
    assert f"handed out {position} configs, Tune holds {held} trials" in err.getvalue()

    # agreeing files are left alone
    before = {p.name: p.read_bytes() for p in tune_dir.iterdir()}
    align_trial_list(store, "full", io.StringIO())
    assert {p.name: p.read_bytes() for p in tune_dir.iterdir()} == before
