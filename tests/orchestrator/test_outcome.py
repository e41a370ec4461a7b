"""What the driver hands back (orchestrator.outcome): the results store of the sweep directory
its URI names."""

from __future__ import annotations

from pathlib import Path

from orchestrator.outcome import SweepOutcome
from orchestrator.spec import parse_spec
from tests.orchestrator.test_spec import VALID


def test_the_store_is_the_sweep_directory_of_its_uri(tmp_path: Path) -> None:
    outcome = SweepOutcome(spec=parse_spec(VALID), sweep_uri=f"file://{tmp_path}/results/bits/")
    store = outcome.store()
    assert (store.name, store.path) == ("bits", str(tmp_path / "results" / "bits"))
    assert outcome.complete and outcome.table is None  # a dry run's outcome
