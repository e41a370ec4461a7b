"""What the fault tests share: the sweep CLI in its own process group, stray-process checks,
the recorded RNG of injection points, and the exactly-once audit of a sweep directory.

Stray processes: every process a test starts (the sweep driver, Ray's GCS, raylet and workers,
their helpers) inherits ``LOWPREC_FAULT_TAG=<uuid>`` from the environment; after the test, a
scan of ``/proc/*/environ`` for that tag finds whatever it left behind.

Injection points (``LOWPREC_FAULT_PAUSE``, read by :mod:`tests.faults.sitecustomize` in every
process and by :mod:`tests.faults.driver`): ``row`` (a trial writing its row file), ``consolidate``
(the driver writing ``trials.parquet``) and ``report`` (the driver writing the analysis report)
pause there, with the temporary file half written, after creating ``$LOWPREC_FAULT_DIR/paused``;
the test then sends its signal.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq

TAG = "LOWPREC_FAULT_TAG"
#: the recorded seed of every random injection point (override: FAULTS_SEED=N make faults)
SEED = int(os.environ.get("FAULTS_SEED", "20261202"))
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def rng_for(nodeid: str) -> random.Random:
    """The injection points' RNG of one test: seeded by the recorded seed and the test's id."""
    return random.Random(f"{SEED}:{nodeid}")


def tagged_pids(tag: str) -> list[int]:
    """Processes (other than this one) whose environment carries ``TAG=tag``."""
    needle = f"{TAG}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read():
                    found.append(int(entry))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def command_line(pid: int) -> str:
    """The whole command line of ``pid`` ("" once it has ended)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def describe(pid: int) -> str:
    command = command_line(pid)
    return f"{pid} {command[:120]}" if command else str(pid)


def strays_after(tag: str, grace_s: float = 30.0) -> list[str]:
    """Wait up to ``grace_s`` for the tagged processes to end; those still there are killed
    (they are this test's) and described."""
    deadline = time.monotonic() + grace_s
    while (left := tagged_pids(tag)) and time.monotonic() < deadline:
        time.sleep(0.5)
    described = [describe(pid) for pid in left]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return described


def start(
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    driver: bool = False,
    log: Path | None = None,
    sigint_ignored: bool = False,
) -> subprocess.Popen:
    """``python -m orchestrator.sweep ARGS`` (``driver``: through :mod:`tests.faults.driver`,
    which adds the ``report`` pause point) in its own process group. Output: captured (read it
    with ``communicate``), or with ``log`` into ``LOG.out`` / ``LOG.err`` (read by
    :func:`output`), for a process that runs while the test waits on something else.
    ``sigint_ignored``: started with SIGINT ignored, as a shell script's background job is."""
    module = "tests.faults.driver" if driver else "orchestrator.sweep"
    if log is None:
        streams: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    else:
        streams = {
            "stdout": open(f"{log}.out", "w"),  # noqa: SIM115 (the child holds them)
            "stderr": open(f"{log}.err", "w"),  # noqa: SIM115
        }
    try:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=cwd, env=env, text=True, start_new_session=True, **streams,
            preexec_fn=_ignore_sigint if sigint_ignored else None,
        )  # fmt: skip
    finally:
        if log is not None:
            streams["stdout"].close()
            streams["stderr"].close()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # kept across exec, as a shell's `&` does


def output(log: Path) -> tuple[str, str]:
    """``(stdout, stderr)`` of a process started with ``log``."""
    return Path(f"{log}.out").read_text(), Path(f"{log}.err").read_text()


def wait_for(
    predicate: Any,
    proc: subprocess.Popen | None,
    timeout: float,
    what: str,
    log: Path | None = None,
) -> None:
    """Poll ``predicate`` until true; fail (with the process's output) if ``proc`` ends first
    or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            out, err = output(log) if log is not None else proc.communicate()
            raise AssertionError(f"ended (rc {proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def tracebacks(text: str) -> int:
    return text.count("Traceback (most recent call last)")


def row_files(sweep: Path) -> dict[str, tuple[int, int]]:
    """trial id -> (inode, mtime_ns) of its row file: a rewritten row gets a new inode."""
    directory = sweep / "trials"
    if not directory.exists():
        return {}
    out = {}
    for path in directory.glob("*.parquet"):
        st = path.stat()
        out[path.stem] = (st.st_ino, st.st_mtime_ns)
    return out


def audit(sweep: Path, expected: int) -> dict[str, Any]:
    """Count each trial in trials.parquet, the predictions dataset and MLflow (one ended child
    run per trial: FINISHED, or FAILED for a failed trial): ``recorded`` (distinct trials in
    trials.parquet), ``duplicates`` (extra rows, extra prediction rows, extra child runs) and
    ``lost`` (expected trials missing anywhere); ``problems`` says what is wrong."""
    from orchestrator import tracking

    table = pq.read_table(sweep / "trials.parquet").to_pylist()
    ids = [r["trial_id"] for r in table]
    counts = Counter(ids)
    duplicates = sum(n - 1 for n in counts.values())
    ok_ids = {r["trial_id"] for r in table if r["status"] == "ok"}
    lost = max(0, expected - len(counts))
    problems: list[str] = []
    predictions = sweep / "predictions"
    if ok_ids:
        pred = ds.dataset(predictions, format="parquet", partitioning="hive").to_table()
        per_trial = Counter(pred.column("trial_id").to_pylist())
        extra = {t: n for t, n in per_trial.items() if n != 10}  # the fake: 10 test examples
        duplicates += sum(max(0, n - 10) for n in per_trial.values())
        missing = ok_ids - set(per_trial)
        lost += len(missing)
        if extra or missing:
            problems.append(f"predictions: rows per trial {extra}, missing {sorted(missing)}")
    meta = json.loads((sweep / "sweep.json").read_text())
    children = tracking.find_child_runs(
        meta["tracking_uri"], meta["experiment_id"], meta["parent_run_id"]
    )
    # a run of a trial id the results do not know: an attempt Tune lost with a killed driver
    # (it ran that config again under another id); ended KILLED it is no result, RUNNING a fault
    abandoned = [c for c in children if c.data.tags.get("trial_id") not in counts]
    problems += [
        f"mlflow: abandoned run {c.data.tags.get('trial_id')} is {c.info.status}"
        for c in abandoned
        if c.info.status != "KILLED"
    ]
    children = [c for c in children if c.data.tags.get("trial_id") in counts]
    # a child run per trial (its tag trial_id), none left over, each ended as its trial did:
    # FINISHED (ok, diverged) or FAILED (failed); never left RUNNING
    by_trial = Counter(c.data.tags.get("trial_id") for c in children)
    want = {r["trial_id"]: "FAILED" if r["status"] == "failed" else "FINISHED" for r in table}
    unfinished = [
        f"{c.data.tags.get('trial_id')}: {c.info.status}"
        for c in children
        if c.info.status != want[c.data.tags.get("trial_id")]
    ]
    duplicates += sum(n - 1 for n in by_trial.values())
    missing_runs = set(counts) - set(by_trial)
    lost += len(missing_runs)
    if unfinished or missing_runs or len(children) != len(counts):
        problems.append(
            f"mlflow: not ended as their trial {unfinished}, trials without a child run "
            f"{sorted(missing_runs)}, {len(children)} child runs for {len(counts)} trials"
        )
    parent = tracking.client(meta["tracking_uri"]).get_run(meta["parent_run_id"])
    return {
        "recorded": len(counts),
        "duplicates": duplicates,
        "lost": lost,
        "problems": problems,
        "rows": table,
        "parent_status": parent.info.status,
        "unfinished": unfinished,
    }
