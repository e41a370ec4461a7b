"""What a person sees while a sweep runs (orchestrator.progress): the ETA's known answers, one
plain line per ended trial plus spaced heartbeats off a terminal, and the live line with an ETA
on a pseudo-terminal during a real sweep."""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator import progress
from orchestrator.progress import SweepProgress, clock, report_fraction


class Clock:
    """A hand-driven ``time.monotonic``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock_ = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock_)
    return clock_


def _trial(i: int, **result: object) -> SimpleNamespace:
    return SimpleNamespace(
        trial_id=f"t{i}", config={"lr": 0.1 * (i + 1), "epochs": 10}, last_result=result
    )


def _progress(stream: io.StringIO, total: int, heartbeat_s: float = 30.0) -> SweepProgress:
    return SweepProgress(
        "s", total, "test_error", "min", stream=stream, name_keys=["lr"], live=False,
        heartbeat_s=heartbeat_s,
    )  # fmt: skip


def test_clock_and_report_fraction_known_answers() -> None:
    assert [clock(s) for s in (None, -1.0, 0.4, 61.0, 3599.0, 3723.0)] == [
        "--:--", "--:--", "00:00", "01:01", "59:59", "1:02:03"
    ]  # fmt: skip
    assert report_fraction({"epoch": 3}, {"epochs": 10}) == (0.3, "epoch 3/10")
    assert report_fraction({"step": 5000}, {"steps": 25000}) == (0.2, "step 5000/25000")
    assert report_fraction({"step": 2}, {}) == (None, "step 2")
    assert report_fraction({"loss": 1.0}, {"epochs": 10}) is None


def test_eta_is_the_work_left_over_the_pace_so_far(fake_clock: Clock) -> None:
    """ETA = elapsed x (total - ended - running fractions) / (ended here + running fractions)."""
    p = _progress(io.StringIO(), total=10)
    assert p.eta() is None  # nothing started
    for i in range(4):
        p.on_trial_start(0, [], _trial(i))
    assert p.eta() is None  # nothing measured yet
    fake_clock.now += 100.0
    p.on_trial_complete(0, [], _trial(0, status="ok", test_error=0.3))
    p.on_trial_complete(0, [], _trial(1, status="ok", test_error=0.2))
    p.on_trial_result(0, [], _trial(2), {"epoch": 5})
    p.on_trial_result(0, [], _trial(3), {"epoch": 5})
    assert p.eta() == pytest.approx(100.0 * (10 - 2 - 1.0) / (2 + 1.0))
    assert p.best_text() == "best test_error=0.2 (lr=0.2)"


def test_eta_of_a_resumed_sweep_leaves_out_what_had_ended(fake_clock: Clock) -> None:
    p = _progress(io.StringIO(), total=10)
    p.outcomes.update({f"old{i}": "ok" for i in range(6)})  # finished before the interruption
    p.on_trial_start(0, [], _trial(0))
    fake_clock.now += 30.0
    p.on_trial_complete(0, [], _trial(0, status="ok", test_error=0.1))
    assert p.eta() == pytest.approx(30.0 * 3 / 1)


def test_off_a_terminal_one_line_per_ended_trial(fake_clock: Clock) -> None:
    out = io.StringIO()
    p = _progress(out, total=6)
    statuses = ["ok", "diverged", "ok", "failed", "ok", "ok"]
    for i, status in enumerate(statuses):
        p.on_trial_start(0, [], _trial(i))
        for epoch in range(1, 4):
            fake_clock.now += 2.0  # well under the heartbeat's 30 s
            p.on_trial_result(0, [], _trial(i), {"epoch": epoch})
            p.on_step_end(0, [])
        p.on_trial_complete(0, [], _trial(i, status=status, test_error=0.1 * i))
        p.on_step_end(0, [])
    lines = out.getvalue().splitlines()
    assert len(lines) == len(statuses)  # no line for a start, a report or a loop step
    assert lines[-1].startswith("[s 00:36] 6/6 ended (ok 4, diverged 1, failed 1) | 0 running")
    assert all("ETA " in line and "ended lr=" in line for line in lines)
    assert "ended lr=0.2: diverged" in lines[1]


def test_off_a_terminal_heartbeats_at_most_every_30_s(fake_clock: Clock) -> None:
    out = io.StringIO()
    p = _progress(out, total=2)
    p.on_trial_start(0, [], _trial(0))
    printed_at = []
    for _ in range(400):  # 200 s of Tune loop steps, one every 0.5 s
        fake_clock.now += 0.5
        before = len(out.getvalue().splitlines())
        p.on_trial_result(0, [], _trial(0), {"epoch": 4})
        p.on_step_end(0, [])
        if len(out.getvalue().splitlines()) > before:
            printed_at.append(fake_clock.now)
    gaps = [b - a for a, b in itertools.pairwise(printed_at)]
    assert len(printed_at) == 6 and all(gap >= 30.0 for gap in gaps)  # 200 s / 30 s
    assert "| 1 running | ETA" in out.getvalue() and "now: epoch 4/10" in out.getvalue()


def test_the_callback_pickles_without_its_stream_and_display() -> None:
    import pickle

    p = _progress(io.StringIO(), total=3)
    clone = pickle.loads(pickle.dumps(p))
    assert clone.total == 3 and clone.live is None and clone.lock is not None


def test_a_trial_is_resolved_once_and_the_callback_still_pickles() -> None:
    """The display keeps each trial's TrialSpec (its one resolution on the driver) for its
    name; Tune pickles the callback, and the cache stays behind."""
    import pickle

    p = _progress(io.StringIO(), total=1)
    trial = SimpleNamespace(
        trial_id="t0", config={"workload": "gaussian", "lr": 0.1, "steps": 50}, last_result={}
    )
    assert p.label(trial) == "lr=0.1"
    assert p.specs["t0"].resolved["lr"] == 0.1
    clone = pickle.loads(pickle.dumps(p))
    assert clone.labels == {"t0": "lr=0.1"} and clone.specs == {}


@pytest.mark.slow
def test_live_line_on_a_pseudo_terminal_shows_an_eta(
    fake_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The real sweep command on a pty: rich's live line with trials ended, running and an ETA;
    the closing lines name the `mlflow ui` command and the experiment's URL."""
    from tests.orchestrator.ui_sweep import pty_sweep
    from tests.shared_run import shared_dir

    sweep = pty_sweep(fake_env, shared_dir(tmp_path_factory))
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", sweep.output)  # escape sequences out
    assert sweep.returncode == 0, text[-3000:]
    assert re.search(r"ui .*\d/4 ended · ok \d · diverged 0 · failed 0 · \d running", text), text
    etas = re.findall(r"ETA (\d\d:\d\d)", text)
    assert etas, text[-3000:]  # an estimate, not only "--:--"
    assert "4/4 ended" in text and "▸ fixed<" in text  # the per-trial lines under it
    assert "mlflow ui --backend-store-uri sqlite:///" in text
    assert re.search(r"http://127\.0\.0\.1:5000/#/experiments/\d+", text)
    # a terminal gets the live display, not one plain line per trial
    assert "| ended " not in text
    (Path(sweep.directory) / "terminal.txt").write_text(sweep.output)


@pytest.mark.slow
def test_real_sweep_off_a_terminal_prints_one_line_per_ended_trial(
    fake_env: dict[str, str], tmp_path: Path
) -> None:
    """The real sweep command with its output in a pipe (CI, a log file): one plain line per
    ended trial, a few lines before and after, and none of Ray Tune's per-trial warnings (with
    its per-result loggers off, Tune's ResultGrid used to warn once per trial), nor the notices
    Ray and MLflow print on starting a cluster or creating a store."""
    import subprocess
    import sys
    import textwrap

    from tests.orchestrator.ui_sweep import SPEC

    (tmp_path / "ui.yaml").write_text(textwrap.dedent(SPEC))
    env = {**fake_env, "RAY_AIR_NEW_OUTPUT": "0", "LOWPREC_PROGRESS": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.sweep", "ui.yaml", "--max-concurrent", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        start_new_session=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    ended = [line for line in lines if "| ended " in line]
    assert len(ended) == 4, proc.stderr[-3000:]
    assert "Failed to fetch metrics" not in proc.stderr
    # nor Ray's notice that token authentication is on, nor MLflow's on creating its tables
    assert "Token authentication" not in proc.stderr
    assert "MLflow database tables" not in proc.stderr
    assert not any(line.startswith("- tune_trainable") for line in lines), proc.stderr[-3000:]
    others = [line for line in lines if not line.startswith("[ui ")]  # not progress/heartbeat
    assert len(others) <= 12, "\n".join(others)
