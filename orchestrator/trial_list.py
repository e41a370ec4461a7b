"""A Ray Tune ``Searcher`` that suggests a given list of configs, each once, in order.

Grid and random sweeps hand Tune the explicit, deduplicated list of their trials
(``Spec.trial_configs()``, :mod:`orchestrator.expand`) through it, so Tune runs exactly that list
and each trial's config is flat (the keys of the trial, no others). Its position is saved with
Tune's experiment state, so a resumed sweep continues the list where it stopped.

Tune saves that state at most every 10 s. A trial handed out after the last save can run and
write its row before a killed driver (SIGKILL, a lost machine) saves again; the resumed Tune does
not know it, and the restored position would hand its config out a second time. So each
suggestion is also appended, as it is made, to a journal (``handed_out.jsonl`` in the sweep's
results: one JSON line ``{"trial_id", "config"}``, O(1) per trial); on ``--resume`` the driver
reads it (:func:`read_journal`) and counts a journaled trial with a row as done.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune.search import Searcher

JOURNAL = "handed_out.jsonl"


class TrialList(Searcher):
    """Suggests ``configs[0]``, ``configs[1]``, ... then ``Searcher.FINISHED``; each suggestion
    appended to ``journal`` (a local path; None: none kept) before Tune starts its trial."""

    def __init__(self, configs: Sequence[Mapping[str, Any]], journal: str | None = None):
        super().__init__()
        self.configs = [dict(c) for c in configs]
        self.next_index = 0
        self.journal = journal

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        return True  # the configs are complete: Tune's param_space adds nothing

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.next_index >= len(self.configs):
            return Searcher.FINISHED
        config = self.configs[self.next_index]
        self.next_index += 1
        self._append(trial_id, config)
        return dict(config)

    def _append(self, trial_id: str, config: Mapping[str, Any]) -> None:
        """One line, written whole by one ``write`` (a killed process leaves whole lines); the
        page cache outlives the process, so no fsync. Best effort: the journal only narrows
        what a killed driver can repeat, and a full disk must not stop the sweep."""
        if self.journal is None:
            return
        line = json.dumps({"trial_id": trial_id, "config": config}, default=repr) + "\n"
        try:
            fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError:
            pass

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


def read_journal(path: str) -> dict[str, dict[str, Any]]:
    """Trial id -> the config handed to it, from a journal (empty when there is none; a line
    cut short by a full disk is skipped)."""
    handed: dict[str, dict[str, Any]] = {}
    try:
        with open(path) as f:
            lines = f.readlines()
    except OSError:
        return handed
    for line in lines:
        try:
            entry = json.loads(line)
            handed[str(entry["trial_id"])] = dict(entry["config"])
        except (ValueError, KeyError, TypeError):
            continue
    return handed
