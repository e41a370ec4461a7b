"""Optuna's study in a real storage, named after the sweep, so that it outlives the driver.

An ``algorithm: optuna`` sweep keeps its study (every proposed trial, its parameters, its
values and state) in an Optuna storage instead of the driver's memory:

- where: ``--optuna-storage URL`` (or the environment variable ``LOWPREC_OPTUNA_STORAGE``);
  else ``sqlite:///RESULTS/<name>/optuna.db`` next to the sweep's results when they are local;
  else (results on s3:// ...) ``sqlite:///<cwd>/optuna-<name>.db``. On a cluster: the head's
  PostgreSQL, ``postgresql+psycopg2://lowprec@localhost:5432/optuna`` with the password in
  ``PGPASSWORD`` (docs/orchestrator.md, "Tracking on a cluster").
  A URL ending in ``.log`` (or ``journal:PATH``) is an Optuna journal file.
- name: the sweep's ``name``; ``sweep.json`` records the URL and the name, so
  ``optuna.load_study(study_name=NAME, storage=URL)`` and ``optuna-dashboard URL`` open it.
- ``--resume``: Tune restores the searcher, whose study is the same stored study; the sampler
  (TPE, NSGA-II) reads every trial from the storage, those of the interrupted run included,
  and proposes nothing twice. Trials the killed driver had asked for but Tune never recorded
  (asked after Tune's last snapshot) are told COMPLETE when their trial wrote its row
  (``orchestrator.tune_state``: they count, and their configuration is not run again), else
  FAIL on restore, so none stays RUNNING.
- A configuration is run once: when the sampler proposes the effective configuration of an
  earlier trial (a categorical space, or keys without effect, make that common), the proposal
  is not run but told the earlier trial's outcome (its values; FAIL while it still runs or if
  it failed), marked with the user attribute ``duplicate_of``, and the sampler asked again, up
  to :data:`MAX_REDRAWS` times (a space whose every configuration has run then runs a repeat,
  with a warning). TPE runs with ``constant_liar`` so that two slots are not handed the same
  configuration while the first is still running.
- :class:`StudySearch` is Ray's ``OptunaSearch`` with that and three more fixes: every study
  trial carries the Tune ``trial_id`` as a user attribute (one Optuna trial per Tune trial,
  traceable); an intermediate report without the objective is not given to the study (Ray's
  raises KeyError on it, ending the sweep); and a trial that ends without all its objective
  values -- stopped early by ASHA in a multi-objective study, whose intermediate reports carry
  no objective -- is told PRUNED (FAIL when it raised) rather than left RUNNING by a failing
  ``tell``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import urllib.parse
from typing import Any

from ray.tune.search.optuna import OptunaSearch

ENV_STORAGE = "LOWPREC_OPTUNA_STORAGE"
USER_ATTR_TRIAL = "trial_id"
USER_ATTR_DUPLICATE = "duplicate_of"
#: proposals of an already-run configuration told and asked again, per Tune trial
MAX_REDRAWS = 25
logger = logging.getLogger(__name__)


def storage_url(sweep_dir: str | None, name: str, override: str | None = None) -> str:
    """The study's storage URL (see the module docstring): ``override``, else
    ``$LOWPREC_OPTUNA_STORAGE``, else a SQLite file in the local ``sweep_dir``, else in the
    working directory."""
    url = override or os.environ.get(ENV_STORAGE)
    if url:
        if "://" not in url and not url.startswith("journal:"):
            # a bare path: SQLite when it ends in .db, a journal file otherwise
            path = os.path.abspath(url)
            return f"sqlite:///{path}" if path.endswith(".db") else f"journal:{path}"
        return url
    if sweep_dir is not None:
        return f"sqlite:///{os.path.abspath(os.path.join(sweep_dir, 'optuna.db'))}"
    return f"sqlite:///{os.path.abspath(f'optuna-{name}.db')}"


def redact(url: str) -> str:
    """``url`` without its password (``postgresql://user:***@host/db``), for logs and files."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url``: a journal file (``journal:PATH`` or ``*.log``), else an
    RDB (SQLite, PostgreSQL, MySQL). SQLite waits up to 60 s for a lock instead of failing."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if url.startswith("journal:") or url.endswith(".log"):
        path = url.removeprefix("journal:")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(url.removeprefix("sqlite:///")) or ".", exist_ok=True)
        kwargs = {"connect_args": {"timeout": 60}}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def existing_trials(url: str, name: str) -> int:
    """How many trials study ``name`` already holds in ``url`` (0 when there is no such study)."""
    import optuna

    storage = open_storage(url)
    names = {s.study_name for s in optuna.study.get_all_study_summaries(storage)}
    if name not in names:
        return 0
    return len(optuna.load_study(study_name=name, storage=storage).trials)


class StudySearch(OptunaSearch):
    """``OptunaSearch`` on a stored study (see the module docstring)."""

    def suggest(self, trial_id: str) -> dict | None:
        fresh = trial_id not in self._ot_trials
        params = super().suggest(trial_id)
        if not fresh or trial_id not in self._ot_trials:
            return params
        for _ in range(MAX_REDRAWS):
            twin = self._twin(self._ot_trials[trial_id])
            if twin is None:
                break
            self._tell_as(self._ot_trials.pop(trial_id), twin)
            params = super().suggest(trial_id)
        else:
            logger.warning("the sampler proposes only configurations already run: a repeat")
        trial = self._ot_trials[trial_id]
        trial.set_user_attr(USER_ATTR_TRIAL, trial_id)
        self._proposed()[self._config_key(trial)] = trial.number
        return params

    def _proposed(self) -> dict[str, int]:
        """Configuration key -> the study trial number that first proposed it (kept in the
        searcher's state, which Tune saves and restores with the sweep)."""
        return self.__dict__.setdefault("_configs", {})

    def _config_key(self, trial: Any) -> str:
        """The trial's effective configuration (what the space function returns for it: keys
        without effect left out), as a canonical string."""
        config = self._space(trial) if callable(self._space) else trial.params
        return json.dumps(config, sort_keys=True, default=repr)

    def _twin(self, trial: Any) -> Any:
        """The earlier study trial proposed with ``trial``'s configuration, or None."""
        number = self._proposed().get(self._config_key(trial))
        if number is None:
            return None
        return self._ot_study.get_trials(deepcopy=False)[number]

    def _tell_as(self, trial: Any, twin: Any) -> None:
        """End ``trial`` (a repeat of ``twin``'s configuration, not run) with ``twin``'s
        outcome: its values when complete, PRUNED when pruned, else FAIL."""
        from optuna.trial import TrialState

        trial.set_user_attr(USER_ATTR_DUPLICATE, twin.number)
        if twin.state == TrialState.COMPLETE:
            self._ot_study.tell(trial, twin.values)
        elif twin.state == TrialState.PRUNED:
            self._ot_study.tell(trial, state=TrialState.PRUNED)
        else:
            self._ot_study.tell(trial, state=TrialState.FAIL)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """An intermediate report: given to the study only when it carries the objective (a
        trial's per-step reports need not; Ray's OptunaSearch raises KeyError on them)."""
        if isinstance(self.metric, str) and self.metric in result:
            from optuna.exceptions import UpdateFinishedTrialError

            # a resumed trial that ended before the kill re-reports its final result
            with contextlib.suppress(UpdateFinishedTrialError):
                super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if trial_id not in self._ot_trials:  # a trial the restored searcher never proposed
            logger.warning("trial %s completed but the study never proposed it", trial_id)
            return
        if isinstance(self.metric, list) and trial_id not in self._completed_trials:
            values = [(result or {}).get(m) for m in self.metric]
            if any(v is None for v in values):
                from optuna.trial import TrialState

                state = TrialState.FAIL if error else TrialState.PRUNED
                try:
                    self._ot_study.tell(self._ot_trials[trial_id], None, state=state)
                except Exception as exc:  # already finished in the storage
                    logger.warning("study tell for trial %s: %s", trial_id, exc)
                self._completed_trials.add(trial_id)
                return
        super().on_trial_complete(trial_id, result=result, error=error)

    def restore(self, checkpoint_path: str) -> None:
        """Tune's saved searcher, then: every RUNNING study trial this searcher does not hold
        (asked by a killed driver after Tune's last snapshot) is told FAIL, and every complete
        one's configuration is known as proposed (those a killed driver's trials ran after the
        snapshot, told COMPLETE by ``orchestrator.tune_state``, are not run again)."""
        super().restore(checkpoint_path)
        self.fail_orphans()
        self.know_completed()

    def know_completed(self) -> None:
        """Enter each COMPLETE study trial (not itself a repeat) in the configuration map."""
        if self._ot_study is None:
            return
        from optuna.trial import TrialState

        proposed = self._proposed()
        for trial in self._ot_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if USER_ATTR_DUPLICATE not in trial.user_attrs:
                proposed.setdefault(self._config_key(trial), trial.number)

    def fail_orphans(self) -> int:
        """Tell FAIL every RUNNING trial of the study that no Tune trial of ours holds."""
        if self._ot_study is None:
            return 0
        from optuna.trial import TrialState

        held = {t.number for t in self._ot_trials.values()}
        orphans = [
            t
            for t in self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.number not in held
        ]
        for trial in orphans:
            try:
                self._ot_study.tell(trial.number, None, state=TrialState.FAIL)
            except Exception as exc:
                logger.warning("could not close orphaned study trial %s: %s", trial.number, exc)
        return len(orphans)
