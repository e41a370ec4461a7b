"""The trial list (orchestrator.trial_list): Tune's searcher for grid and random sweeps hands
out exactly the listed configs, each once and in order, and a restored one continues where the
saved one stopped."""

from __future__ import annotations

from pathlib import Path

from ray.tune.search import Searcher

from orchestrator.spec import parse_spec
from orchestrator.trial_list import TrialList
from tests.orchestrator.test_expand import ISSUE


def test_trial_list_suggests_each_config_once_and_resumes_where_it_stopped(
    tmp_path: Path,
) -> None:
    configs = parse_spec(ISSUE).trial_configs()
    searcher = TrialList(configs)
    first = [searcher.suggest(f"t{i}") for i in range(10)]
    searcher.save(str(tmp_path / "state.pkl"))
    resumed = TrialList([])
    resumed.restore(str(tmp_path / "state.pkl"))
    rest = [resumed.suggest(f"t{i}") for i in range(10, 39)]
    assert first + rest == configs  # in order, each once
    assert resumed.suggest("t39") == Searcher.FINISHED


def test_configs_are_copies_and_the_search_space_is_accepted_as_given() -> None:
    """A suggested config is a copy (Tune may change it); the list adds nothing to the space."""
    configs = [{"lr": 0.1}, {"lr": 0.2}]
    searcher = TrialList(configs)
    assert searcher.set_search_properties("test_error", "min", {"lr": 9.0}) is True
    first = searcher.suggest("t0")
    assert first == {"lr": 0.1}
    first["lr"] = 5.0  # type: ignore[index]
    assert searcher.configs[0] == {"lr": 0.1} and configs[0] == {"lr": 0.1}
    assert searcher.suggest("t1") == {"lr": 0.2}
    assert searcher.suggest("t2") == Searcher.FINISHED == searcher.suggest("t3")
