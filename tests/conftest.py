"""Shared test set-up: a quiet, deterministic, two-core-friendly environment."""

from __future__ import annotations

import os

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


def pytest_collection_modifyitems(config, items):
    """Skip `cuda`-marked tests cleanly when no GPU is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
