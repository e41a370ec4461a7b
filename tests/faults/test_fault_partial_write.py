"""Fault 4: a write killed half-way. No partial or corrupt file is ever read back; the next run
repairs or ignores it and says so.

1. A writer process rewrites trial rows (2 MiB of random bytes each, so most of its time is
   spent writing) and consolidates them, and is SIGKILLed at random moments (the recorded RNG).
   After each kill every row file and trials.parquet read back whole, and
   :meth:`ResultsStore.repair` removes the unfinished temporary file, saying so.
2. The same, stopped deterministically inside a row write and inside the consolidation (the
   temporary file half written, ``tests.faults.pause``): the half file is not valid Parquet,
   nothing reads it, the earlier version of the file is untouched.
3. A row file damaged by other means (truncated): left out of trials.parquet and set aside,
   each said on stderr; the trial has no row, so a resumed sweep runs it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestrator.store import ResultsStore
from tests.faults import harness

pytestmark = pytest.mark.faults

PAYLOAD = 2 << 20
WRITER = """\
import os, sys
from orchestrator.store import ResultsStore
store = ResultsStore(sys.argv[1], "killed")
payload = os.urandom(PAYLOAD)
start = int(sys.argv[2])
for i in range(start, start + 10**6):
    store.write_trial_row({"trial_id": f"t{i % 7}", "status": "ok", "i": i, "payload": payload})
    if i % 3 == 2:
        store.consolidate()
    if i == start + 2:  # in the steady loop: writing rows and trials.parquet
        print("ready", flush=True)
""".replace("PAYLOAD", str(PAYLOAD))


def _unfinished(sweep: Path) -> list[Path]:
    return list(sweep.rglob(".*.tmp"))


def _check_whole(store: ResultsStore) -> int:
    """Every row file and trials.parquet read back complete; returns the number of rows."""
    ids = store.trial_row_ids()
    for trial_id in ids:
        row = store.read_trial_row(trial_id)
        assert row is not None and len(row["payload"]) == PAYLOAD, trial_id
    table = store.read_table("trials.parquet")
    if table is not None and table.num_rows:
        assert all(len(p) == PAYLOAD for p in table.column("payload").to_pylist())
        assert len(set(table.column("trial_id").to_pylist())) == table.num_rows
    return len(ids)


def _spawn(root: Path, start: int, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(start)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_sigkill_at_random_moments_of_writes(
    fault_env: dict[str, str], tmp_path: Path, fault_rng, fault_log
) -> None:
    root = tmp_path / "results"
    store = ResultsStore(root, "killed")
    kills, mid_write, said = 8, 0, []
    for k in range(kills):
        proc = _spawn(root, 1000 * k, fault_env)
        time.sleep(fault_rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        left = _unfinished(root / "killed")
        mid_write += bool(left)
        assert _check_whole(store) >= 3  # never a partial file under a final name
        messages = store.repair(say=said.append)
        assert bool(left) == any("unfinished write" in m for m in messages), (left, messages)
        assert not _unfinished(root / "killed")
    table = store.consolidate()
    assert table.num_rows == len(store.trial_row_ids()) == _check_whole(store)
    fault_log(
        "SIGKILL during a Parquet write (random moments)",
        tried=kills,
        recorded=table.num_rows,
        duplicates=table.num_rows - len(set(table.column("trial_id").to_pylist())),
        lost=0,
        tracebacks=0,
        outcome=f"{mid_write} of {kills} kills left a half-written temporary file: never read, "
        "removed by the next run, which says so",
    )


@pytest.mark.parametrize("point", ["row", "consolidate"])
def test_sigkill_inside_a_write(
    point: str, fault_env: dict[str, str], tmp_path: Path, fault_log
) -> None:
    root = tmp_path / "results"
    store = ResultsStore(root, "killed")
    store.write_trial_row({"trial_id": "t0", "status": "ok", "i": -1, "payload": b"before"})
    store.write_table("trials.parquet", pa.table({"trial_id": ["t0"], "i": [-1]}))
    before = (store.read_trial_row("t0"), store.read_table("trials.parquet"))
    paused = Path(fault_env["LOWPREC_FAULT_DIR"]) / "paused"
    env = {**fault_env, "LOWPREC_FAULT_PAUSE": point}
    code = (
        "import sys; from orchestrator.store import ResultsStore\n"
        "store = ResultsStore(sys.argv[1], 'killed')\n"
        "store.write_trial_row({'trial_id': 't0', 'status': 'ok', 'i': 0, 'payload': b'after'})\n"
        "store.consolidate()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], env=env)
    harness.wait_for(paused.exists, proc, 300, f"the {point} write to pause")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (half,) = _unfinished(root / "killed")
    with pytest.raises((pa.ArrowInvalid, OSError)):
        pq.read_metadata(half)  # really a partial file
    if point == "row":  # the row write was stopped: the earlier row stands
        assert store.read_trial_row("t0") == before[0]
    else:  # the row landed; trials.parquet is still the earlier one
        assert store.read_trial_row("t0")["payload"] == b"after"
    assert store.read_table("trials.parquet").equals(before[1])
    said: list[str] = []
    store.repair(say=said.append)
    assert len(said) == 1 and "removed 1 unfinished write" in said[0], said
    assert not _unfinished(root / "killed")
    fault_log(
        "SIGKILL inside a row write / inside consolidation",
        tried=1,
        recorded=store.consolidate().num_rows,
        duplicates=0,
        lost=0,
        tracebacks=0,
        outcome="half-written temporary file never read; the earlier file untouched; removed "
        "by the next run, which says so",
    )


def test_damaged_row_file_is_never_read_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault_log
) -> None:
    store = ResultsStore(tmp_path / "results", "damaged")
    for trial_id in ("a", "b"):
        store.write_trial_row({"trial_id": trial_id, "status": "ok", "x": 1.0})
    path = Path(store.join("trials", "b.parquet"))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated in place
    assert store.read_trial_row("b") is None  # a resumed sweep runs trial b again
    table = store.consolidate()
    assert table.column("trial_id").to_pylist() == ["a"]
    assert "b.parquet cannot be read: left out of trials.parquet" in capsys.readouterr().err
    said: list[str] = []
    store.repair(say=said.append)
    assert len(said) == 1 and "set aside as" in said[0] and "b.parquet" in said[0], said
    assert store.trial_row_ids() == ["a"] and os.path.exists(
        store.join("trials", ".b.parquet.damaged")
    )
    fault_log(
        "damaged row file (truncated)",
        tried=1,
        recorded=table.num_rows,
        duplicates=0,
        lost=0,
        tracebacks=0,
        outcome="left out of trials.parquet and set aside, each said; its trial runs again",
    )
