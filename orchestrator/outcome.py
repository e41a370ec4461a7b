"""The outcome of a sweep run: what the driver hands to the summary and to the tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.spec import Spec
from orchestrator.store import ResultsStore


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did: the spec, the sweep directory, the consolidated table (None
    for a dry run), whether every trial ended, and the MLflow ids."""

    spec: Spec
    sweep_uri: str
    table: Any = None
    complete: bool = True
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None

    # ----------------------------------------------------------------------------------------------
    # building the Tuner

    def store(self) -> ResultsStore:
        """The results store of the sweep directory (``ROOT/<name>``)."""
        root, name = self.sweep_uri.rstrip("/").rsplit("/", 1)
        return ResultsStore(root, name)
