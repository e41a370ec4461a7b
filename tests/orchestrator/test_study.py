"""The Optuna study lives in a real storage (orchestrator/study.py): the searcher on its own
(no Ray run) for the states it leaves, then a sweep killed mid-way and resumed (slow): the study
holds exactly ``num_samples`` completed trials, one per Tune trial, with the sweep's values."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pyarrow.parquet as pq
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from orchestrator import study
from tests.orchestrator.helpers import write_spec

SPACE = {"lr": FloatDistribution(0.01, 1.0)}


def _search(url: str, metric: str | list[str], mode: str | list[str]) -> study.StudySearch:
    return study.StudySearch(
        space=SPACE,
        metric=metric,
        mode=mode,
        sampler=optuna.samplers.RandomSampler(seed=0),
        study_name="s",
        storage=study.open_storage(url),
    )


def _states(url: str) -> list[TrialState]:
    return [t.state for t in optuna.load_study(study_name="s", storage=url).trials]


def test_early_stopped_multi_objective_trial_is_not_left_running(tmp_path: Path) -> None:
    """ASHA stops a trial whose intermediate reports carry no objective: Ray's OptunaSearch
    would ``tell`` [None, None], which Optuna refuses, leaving the trial RUNNING forever."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    search = _search(url, ["test_error", "bits"], ["min", "min"])
    for trial_id in ("a", "b", "c"):
        assert 0.01 <= search.suggest(trial_id)["lr"] <= 1.0
    search.on_trial_result("a", {"train_loss": 0.5, "training_iteration": 1})  # no objective
    search.on_trial_complete("a", {"test_error": 0.1, "bits": 8.0})
    search.on_trial_complete("b", {"train_loss": 0.3, "training_iteration": 2})  # stopped early
    search.on_trial_complete("c", None, error=True)
    assert _states(url) == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    stored = optuna.load_study(study_name="s", storage=url).trials
    assert [t.user_attrs[study.USER_ATTR_TRIAL] for t in stored] == ["a", "b", "c"]
    assert stored[0].values == [0.1, 8.0]


def test_restore_fails_orphans_and_the_sampler_sees_the_history(tmp_path: Path) -> None:
    """A searcher saved after two trials, then a third asked by the 'killed' driver: restoring
    the saved searcher closes the orphan as FAIL; new proposals continue the same study."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    search = _search(url, "test_error", "min")
    search.suggest("a")
    search.on_trial_result("a", {"train_loss": 0.5, "training_iteration": 1})  # no objective
    search.on_trial_result("a", {"test_error": 0.25, "training_iteration": 2})
    search.on_trial_complete("a", {"test_error": 0.2})
    search.suggest("b")  # running when the searcher's state is saved
    search.save(str(tmp_path / "searcher.pkl"))
    search.suggest("orphan")  # asked after the last save: no Tune trial will ever hold it
    assert _states(url) == [TrialState.COMPLETE, TrialState.RUNNING, TrialState.RUNNING]

    restored = _search(url, "test_error", "min")
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert _states(url) == [TrialState.COMPLETE, TrialState.RUNNING, TrialState.FAIL]
    restored.on_trial_complete("b", {"test_error": 0.1})  # the in-flight trial, re-run
    restored.suggest("d")
    restored.on_trial_complete("d", {"test_error": 0.3})
    loaded = optuna.load_study(study_name="s", storage=url)
    assert [t.state for t in loaded.trials] == [
        TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE,
    ]  # fmt: skip
    assert [t.number for t in loaded.trials] == [0, 1, 2, 3]  # one study, numbered on
    assert loaded.best_value == pytest.approx(0.1)
    assert loaded.trials[0].intermediate_values == {2: 0.25}


def _noop_b(trial: optuna.Trial) -> dict[str, object]:
    """A space whose parameter ``b`` has no effect: the effective config is ``a`` alone."""
    a = trial.suggest_categorical("a", [1, 2, 3])
    trial.suggest_categorical("b", ["x", "y"])
    return {"a": a}


def _categorical(url: str) -> study.StudySearch:
    return study.StudySearch(
        space=_noop_b,
        metric="test_error",
        mode="min",
        sampler=optuna.samplers.RandomSampler(seed=1),
        study_name="s",
        storage=study.open_storage(url),
    )


def test_a_configuration_already_run_is_told_not_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Three effective configs (b has no effect): the first three Tune trials get the three,
    whatever the sampler proposes; each repeat proposal is told its twin's value (marked
    ``duplicate_of``), none left RUNNING; a fourth Tune trial, the space exhausted, runs a
    repeat after MAX_REDRAWS told proposals, with a warning."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    search = _categorical(url)
    seen = []
    for i, trial_id in enumerate("abc"):
        config = search.suggest(trial_id)
        seen.append(config["a"])
        search.on_trial_complete(trial_id, {"test_error": 0.1 * (i + 1)})
    assert sorted(seen) == [1, 2, 3]
    trials = optuna.load_study(study_name="s", storage=url).trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    dup = study.USER_ATTR_DUPLICATE
    value = {t.params["a"]: t.value for t in trials if dup not in t.user_attrs}
    repeats = [t for t in trials if dup in t.user_attrs]
    assert len(repeats) == len(trials) - 3
    for t in repeats:  # told, not run: the earlier trial's value, and no Tune trial of its own
        assert t.value == value[t.params["a"]] and study.USER_ATTR_TRIAL not in t.user_attrs
        twin = trials[t.user_attrs[dup]]
        assert twin.params["a"] == t.params["a"] and dup not in twin.user_attrs
    with caplog.at_level("WARNING", logger="orchestrator.study"):
        assert search.suggest("d")["a"] in (1, 2, 3)
    assert "already run" in caplog.text
    after = optuna.load_study(study_name="s", storage=url).trials
    assert len(after) == len(trials) + study.MAX_REDRAWS + 1
    assert [t.state for t in after].count(TrialState.RUNNING) == 1  # d's, running


def test_a_repeat_of_a_running_trial_is_told_fail(tmp_path: Path) -> None:
    """While the twin runs there is no value to give: the repeat proposal is told FAIL."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    search = _categorical(url)
    running = {search.suggest(t)["a"] for t in "abc"}  # all three running
    assert running == {1, 2, 3}
    trials = optuna.load_study(study_name="s", storage=url).trials
    repeats = [t for t in trials if study.USER_ATTR_DUPLICATE in t.user_attrs]
    assert repeats and all(t.state == TrialState.FAIL for t in repeats)


def test_storage_url_and_redaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(study.ENV_STORAGE, raising=False)
    sweep = tmp_path / "results" / "x"
    assert study.storage_url(str(sweep), "x") == f"sqlite:///{sweep}/optuna.db"
    assert study.storage_url(None, "x").endswith("/optuna-x.db")
    assert study.storage_url(None, "x", "study.log") == f"journal:{os.path.abspath('study.log')}"
    monkeypatch.setenv(study.ENV_STORAGE, "postgresql://u:secret@h:5432/optuna")
    url = study.storage_url(str(sweep), "x")
    assert url == "postgresql://u:secret@h:5432/optuna"
    assert study.redact(url) == "postgresql://u:***@h:5432/optuna"
    assert study.redact("sqlite:////a/b.db") == "sqlite:////a/b.db"


def test_journal_storage_holds_the_study(tmp_path: Path) -> None:
    url = f"journal:{tmp_path / 'study.log'}"
    search = _search(url, "test_error", "min")
    search.suggest("a")
    search.on_trial_complete("a", {"test_error": 0.5})
    assert study.existing_trials(url, "s") == 1
    assert study.existing_trials(url, "other") == 0


SPEC = """\
name: tpe
workload: fake
objectives: {test_error: min}
search: {algorithm: optuna, num_samples: NUM, max_concurrent: 2, seed: 3}
fixed: {reports: 2, sleep_s: 0.5}
space:
  lr: {uniform: [0.01, 1.0]}
"""
NUM = 8


def _rows(sweep: Path) -> int:
    directory = sweep / "trials"
    return len(list(directory.glob("*.parquet"))) if directory.exists() else 0


@pytest.mark.slow
def test_killed_optuna_sweep_resumes_the_same_study(
    fake_env: dict[str, str], tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, SPEC.replace("NUM", str(NUM)))
    sweep = tmp_path / "results" / "tpe"
    env = {**fake_env, "RAY_AIR_NEW_OUTPUT": "0"}
    env.pop(study.ENV_STORAGE, None)
    command = [sys.executable, "-m", "orchestrator.sweep", str(spec)]
    first = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while _rows(sweep) < 3 and time.monotonic() < deadline:
        assert first.poll() is None, first.communicate()[0]
        time.sleep(0.2)
    assert _rows(sweep) >= 3
    os.killpg(first.pid, signal.SIGKILL)  # the driver and its Ray, mid-sweep
    first.communicate(timeout=60)
    assert _rows(sweep) < NUM, "the sweep ended before it could be killed"

    second = subprocess.run(
        [*command, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=400,
    )  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    table = pq.read_table(sweep / "trials.parquet").to_pylist()
    assert len(table) == NUM and all(r["status"] == "ok" for r in table)

    meta = json.loads((sweep / "sweep.json").read_text())
    assert meta["optuna_storage"] == f"sqlite:///{sweep}/optuna.db"
    loaded = optuna.load_study(study_name=meta["optuna_study"], storage=meta["optuna_storage"])
    complete = [t for t in loaded.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == NUM
    assert not [t for t in loaded.trials if t.state == TrialState.RUNNING]
    by_trial = {t.user_attrs[study.USER_ATTR_TRIAL]: t for t in complete}
    assert sorted(by_trial) == sorted(r["trial_id"] for r in table)  # one per Tune trial
    for row in table:
        stored = by_trial[row["trial_id"]]
        assert stored.value == pytest.approx(row["test_error"])
        assert stored.params["lr"] == pytest.approx(row["lr"])
    assert len({t.params["lr"] for t in complete}) == NUM  # nothing proposed twice
