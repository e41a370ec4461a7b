"""A Ray Tune ``Searcher`` that suggests a given list of configs, each once, in order.

Grid and random sweeps hand Tune the explicit, deduplicated list of their trials
(``Spec.trial_configs()``, :mod:`orchestrator.expand`) through it, so Tune runs exactly that list
and each trial's config is flat (the keys of the trial, no others). Its position is saved with
Tune's experiment state, so a resumed sweep continues the list where it stopped.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune.search import Searcher


class TrialList(Searcher):
    """Suggests ``configs[0]``, ``configs[1]``, ... then ``Searcher.FINISHED``."""

    def __init__(self, configs: Sequence[Mapping[str, Any]]):
        super().__init__()
        self.configs = [dict(c) for c in configs]
        self.next_index = 0

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        return True  # the configs are complete: Tune's param_space adds nothing

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.next_index >= len(self.configs):
            return Searcher.FINISHED
        config = self.configs[self.next_index]
        self.next_index += 1
        return dict(config)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        return None

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"configs": self.configs, "next_index": self.next_index}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.configs, self.next_index = list(state["configs"]), int(state["next_index"])
