"""Shared test set-up: a quiet, deterministic, two-core-friendly environment."""

from __future__ import annotations

import json
import os
import tempfile

import pytest
import torch

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Without a GPU the Triton kernels run under Triton's interpreter (on CPU tensors); it must be
# chosen before triton is first imported (its standard library is jit-decorated at import)
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _one_thread_per_test():
    """Two cores: one intra-op thread keeps timings stable and leaves a core for Ray workers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: the files that take minutes (sweeps end to end, faults, long sampler runs), longest first.
#: Under pytest-xdist (--dist loadfile) a worker takes the next file as it frees up: started
#: first, these leave the short files to fill the end, instead of one worker finishing the run
#: alone on a long file (longest-processing-time-first). Order only: a file missing here runs.
LONG_FILES = (
    "tests/faults/test_fault_ctrl_c.py",
    "tests/faults/test_fault_driver_stopped.py",
    "tests/faults/test_fault_mlflow_outage.py",
    "tests/orchestrator/test_sweep.py",
    "tests/orchestrator/test_postgres_tracking.py",
    "tests/faults/test_fault_two_sweeps.py",
    "tests/faults/test_fault_trial_raises.py",
    "tests/orchestrator/test_resume.py",
    "tests/faults/test_fault_full_disk.py",
    "tests/lowprec/samplers/test_fused.py",
    "tests/faults/test_fault_worker_lost.py",
    "tests/orchestrator/test_progress.py",
    "tests/analysis/test_real_sweep.py",
    "tests/bench/test_scale.py",
    "tests/lowprec/kernels/triton/test_scaled.py",
    "tests/orchestrator/test_study.py",
    "tests/faults/test_fault_node_removed.py",
    "tests/bench/test_sweep.py",
    "tests/orchestrator/test_expand.py",
    "tests/faults/test_fault_ray_start.py",
    "tests/faults/test_security.py",
    "tests/analysis/test_report.py",
    "tests/workloads/test_mlp.py",
)


def pytest_collection_modifyitems(config, items):
    """Long files first (:data:`LONG_FILES`); `cuda`-marked tests skipped cleanly without a GPU."""
    rank = {path: i for i, path in enumerate(LONG_FILES)}

    def file_rank(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return rank.get(path, len(LONG_FILES))

    items.sort(key=file_rank)  # stable: each file's tests keep their order
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    """Under pytest-xdist the fault tests run in the workers: their rows of the faults table go
    to one file (``$FAULTS_LOG``, a temporary one unless set) that this process prints from."""
    if not _xdist_controller(config) or os.environ.get("FAULTS_LOG"):
        return
    fd, path = tempfile.mkstemp(prefix="faults-", suffix=".jsonl")
    os.close(fd)
    os.environ["FAULTS_LOG"] = path  # the workers start after this and inherit it
    config._faults_log = path


def pytest_terminal_summary(terminalreporter, config):
    if not _xdist_controller(config):
        return  # without xdist tests/faults/conftest.py prints the table itself
    from tests.faults.conftest import table

    path = os.environ.get("FAULTS_LOG", "")
    try:
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return
    if rows:
        terminalreporter.write_sep("-", "faults and bad inputs tried")
        terminalreporter.write_line(table(rows))
    if getattr(config, "_faults_log", None):
        os.unlink(config._faults_log)


def _xdist_controller(config) -> bool:
    """This process hands tests to pytest-xdist workers (and runs none itself)."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")
