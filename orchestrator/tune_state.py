"""Ray Tune's saved state made to agree with the sweep's results before ``--resume`` restores it.

Tune saves its experiment state (the trials it holds), the search generator's state (how many
trials it made) and its searcher's state as three files, at most every 10 s, uploaded one by
one. Two things can leave them behind the results:

- one upload failed and another did not (a nearly full disk takes the trial list's 300 bytes
  and refuses the experiment state's 90 KB; a driver killed between two uploads), so the newest
  files disagree with each other;
- a driver killed (SIGKILL, a lost machine) after trials were handed out since the last save:
  those that ran and wrote their row before the kill are unknown to the resumed Tune, and the
  restored searcher would hand their configurations out again, under new ids.

:func:`align_trial_list` (grid, random) and :func:`settle_lost_study_trials` (optuna) rewrite the
saved files so that each configuration with a row is counted once and the others are run.
Local results only (on an object store Tune's own resolution applies).
"""

from __future__ import annotations

import glob
import json
import os
import uuid
from typing import Any, TextIO

from orchestrator.store import ResultsStore, local_path

EXPERIMENT_STATE = "experiment_state-*.json"
SEARCHER_STATE = "searcher-state-*.pkl"
GENERATOR_STATE = "search_gen_state-*"
#: a row with one of these statuses has its objective values
VALUED = ("ok", "diverged")


def _newest(store: ResultsStore) -> dict[str, str] | None:
    """The newest file of each kind in the sweep's Tune directory; None when one is missing."""
    directory = local_path(store.tune_uri())
    if directory is None:
        return None
    newest = {
        pattern: max(glob.glob(os.path.join(directory, pattern)), default=None)
        for pattern in (EXPERIMENT_STATE, SEARCHER_STATE, GENERATOR_STATE)
    }
    return None if None in newest.values() else newest  # type: ignore[return-value]


def _held_trials(path: str) -> list[dict[str, Any]]:
    """The trials of a saved experiment state (each a dict with ``trial_id``, ``config``)."""
    with open(path) as f:
        return [json.loads(state) for state, _ in json.load(f)["trial_data"]]


def _load_pickle(path: str) -> Any:
    from ray import cloudpickle

    with open(path, "rb") as f:
        return cloudpickle.load(f)


def _replace_pickle(path: str, value: Any) -> None:
    """Write ``value`` to ``path`` whole or not at all (a temporary file, fsync, rename)."""
    from ray import cloudpickle

    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        cloudpickle.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def align_trial_list(store: ResultsStore, name: str, err: TextIO) -> None:
    """Make the trial list's saved position agree with the trials Tune's state holds and with
    the trials that ended after its last save.

    A trial list ahead of the trials would never hand out the configs it gave to trials Tune
    lost, and the resumed sweep ends short of its trials, saying "interrupted"; one behind would
    run configs twice. So: the configs Tune holds trials of come first, in the list's order,
    then those of trials the journal (:mod:`orchestrator.trial_list`) names and whose row was
    written (they ended), then the others; the position is where the others start; the search
    generator's count of the trials it made is the number Tune holds; and the concurrency
    limiter forgets trials Tune does not hold (they would count as running)."""
    from orchestrator.trial_list import JOURNAL, read_journal

    newest = _newest(store)
    if newest is None:
        return
    try:
        trials = _held_trials(newest[EXPERIMENT_STATE])
        listed = _load_pickle(newest[SEARCHER_STATE])
        generator = _load_pickle(newest[GENERATOR_STATE])
        configs, position = list(listed["configs"]), int(listed["next_index"])
        held = [t["config"] for t in trials]
        ids = {t["trial_id"] for t in trials}
    except Exception:  # not files this code knows: Tune's restore says what is wrong
        return
    first = []
    rest = list(configs)
    for config in held:
        if config in rest:
            first.append(rest.pop(rest.index(config)))
    if len(first) != len(held):
        return  # trials of configs the list does not hold: not ours to change
    unheld_rows = set(store.trial_row_ids()) - ids
    journal = read_journal(os.path.join(store.path, JOURNAL))
    done = [config for trial_id, config in journal.items() if trial_id in unheld_rows]
    ended = [rest.pop(rest.index(config)) for config in done if config in rest]
    limiter = generator.get("name:ConcurrencyLimiter") or {}
    live = set(limiter.get("live_trials") or ())
    lost = live - ids
    counter = generator.get("counter")
    if first + rest == configs and position == len(first) == counter and not (lost or ended):
        return  # they agree (the usual case)
    first += ended
    _replace_pickle(newest[SEARCHER_STATE], {"configs": first + rest, "next_index": len(first)})
    # the generator stops at counter == total_samples: it counts the trials it made (those Tune
    # holds; the list runs out before it would count the ended ones again)
    generator.update(counter=len(held), finished=False)
    if limiter:
        limiter["live_trials"] = live & ids
        limiter["num_unfinished_live_trials"] = len(live & ids)
    _replace_pickle(newest[GENERATOR_STATE], generator)
    print(
        f"[{name}] Ray Tune's saved state disagreed with the results (a write that failed: a "
        f"full disk, a killed driver): the trial list had handed out {position} configs, Tune "
        f"holds {len(held)} trials"
        + (f", {len(ended)} more ended after its last save" if ended else "")
        + f"; the other {len(rest)} configs are run now",
        file=err,
        flush=True,
    )


def settle_lost_study_trials(
    store: ResultsStore, name: str, study_url: str, metrics: list[str], err: TextIO
) -> int:
    """An optuna sweep's trials that ended after Tune's last save, made known before it
    restores. Each study trial carries its Tune ``trial_id``; those whose row was written but
    whose id Tune's state does not hold ended: one still RUNNING in the study (the driver was
    killed before it told the study) is told COMPLETE with its row's values (FAIL when the row
    has none), and the search generator counts them all among the trials it made (the sweep
    asks for that many fewer). ``StudySearch.restore`` then knows their configurations as run
    (a repeat proposal is redrawn) and tells FAIL the orphans without a row. Returns how many
    trials were counted."""
    import optuna
    from optuna.trial import TrialState

    from orchestrator.study import USER_ATTR_TRIAL, open_storage

    newest = _newest(store)
    if newest is None:
        return 0
    try:
        ids = {t["trial_id"] for t in _held_trials(newest[EXPERIMENT_STATE])}
        generator = _load_pickle(newest[GENERATOR_STATE])
        study = optuna.load_study(study_name=name, storage=open_storage(study_url))
    except Exception:  # not files this code knows, or no study: Tune's restore says what is wrong
        return 0
    unheld_rows = set(store.trial_row_ids()) - ids
    ended = 0
    for trial in study.get_trials(deepcopy=False):
        trial_id = trial.user_attrs.get(USER_ATTR_TRIAL)
        if trial_id not in unheld_rows:
            continue
        ended += 1
        if trial.state != TrialState.RUNNING:
            continue
        row = store.read_trial_row(trial_id) or {}
        values = [row.get(m) for m in metrics]
        if row.get("status") in VALUED and all(isinstance(v, int | float) for v in values):
            study.tell(trial.number, [float(v) for v in values])
        else:
            study.tell(trial.number, state=TrialState.FAIL)
    if ended:
        generator.update(counter=int(generator.get("counter", 0)) + ended, finished=False)
        _replace_pickle(newest[GENERATOR_STATE], generator)
        print(
            f"[{name}] {ended} trial(s) ended after Ray Tune's last save (a killed driver): "
            "counted, their configurations not run again",
            file=err,
            flush=True,
        )
    return ended
