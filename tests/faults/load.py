"""The machine loaded as a user's would be: a CPU burner per core and a second, unrelated sweep
(its own results directory, MLflow store and local Ray) started from the same checkout.

The load's processes carry their own ``LOWPREC_FAULT_TAG`` (not the test's), so that the test can
tell its sweep's processes from the load's, and the load is stopped (and checked gone) when the
test ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.faults import harness
from tests.orchestrator.helpers import write_spec

#: the unrelated sweep: long enough to run beside any test here (it is stopped at the end)
BESIDE = """\
name: beside
workload: fake
objectives: {test_error: min}
search: {max_concurrent: 2}
resources: {cpu: 0.5}
fixed: {reports: 4, sleep_s: 2.0}
space:
  lr: {grid: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12]}
  seed: {grid: [0, 1, 2, 3, 4, 5, 6, 7]}
"""

BURN = "while True:\n    pass\n"


@dataclass
class Load:
    tag: str
    sweep: subprocess.Popen
    burners: list[subprocess.Popen]
    results: Path

    def rows(self) -> int:
        """Rows the unrelated sweep has written so far."""
        return len(harness.row_files(self.results / "beside"))


@contextlib.contextmanager
def machine_load(directory: Path, env: dict[str, str]) -> Iterator[Load]:
    """A CPU burner per core and the unrelated sweep ``beside`` (in ``directory``), running
    while the body runs; every process of the load is gone when it returns."""
    directory.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex
    load_env = {**env, harness.TAG: tag}
    load_env.pop("LOWPREC_FAULT_PAUSE", None)
    spec = write_spec(directory, BESIDE, "beside.yaml")
    results = directory / "results"
    args = ["--results", str(results), "--mlflow-uri", str(directory / "mlflow.db")]
    quiet: dict = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    burn = [sys.executable, "-c", BURN]
    burners = [
        subprocess.Popen(burn, env=load_env, start_new_session=True, **quiet)
        for _ in range(os.cpu_count() or 1)
    ]
    sweep = harness.start([str(spec), *args], directory, load_env, log=directory / "beside")
    load = Load(tag, sweep, burners, results)
    try:
        yield load
    finally:
        for proc in [sweep, *burners]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        harness.strays_after(tag, grace_s=30.0)
