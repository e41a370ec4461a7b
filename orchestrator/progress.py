"""What a person sees while a sweep runs, in place of Ray Tune's verbose table.

On a terminal: one live line (rich), redrawn twice a second, and under it one line per running
trial with its epoch or step from the trial's intermediate reports:

    bits ━━━━━━━╸━━━━━━━━━━━━ 41/108 ended · ok 40 · diverged 0 · failed 1 · 2 running ·
         elapsed 01:27 · ETA 02:21                               (one line on the screen)
      best test_error=0.0712 (block<8> full seed=2)
      ▸ fixed<6,4> vc seed=0   epoch 7/10
      ▸ fixed<6,4> vc seed=1   epoch 3/10

Not on a terminal (CI, a log file): one plain line per ended trial, and a heartbeat line when
nothing was printed for ``heartbeat_s`` seconds (30; ``$LOWPREC_HEARTBEAT_S``):

    [bits 01:27] 41/108 ended (ok 40, diverged 0, failed 1) | 2 running | ETA 02:21 | best
        test_error=0.0712 (block<8> full seed=2) | ended fixed<6> low seed=2: ok

``$LOWPREC_PROGRESS`` = ``live`` | ``plain`` overrides the choice. The ETA is the work left over
the pace so far, counted from the first trial's start (Ray's start-up excluded) and in trials:
a running trial counts for the fraction of its epochs (``epoch/epochs``) or steps
(``step/steps``) reported so far,

    ETA = elapsed × (total − ended − Σ running fractions) / (ended here + Σ running fractions),

where "ended here" leaves out the trials a resumed sweep had already finished.

Display only: the trial's outcome is the ``status`` of its final result, or, for a trial a
scheduler stopped early (no final result of its own), the status of its row, which
:class:`orchestrator.sweep_records.SweepRecords`, called before this callback, wrote.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from ray.tune import Callback

from orchestrator.store import ResultsStore
from orchestrator.sweep_records import ENDED_STATUSES, spec_or_config
from orchestrator.tracking import run_name

HEARTBEAT_S = 30.0
BAR_WIDTH = 20
#: running trials shown under the live line (the rest counted)
SHOW_RUNNING = 8


def clock(seconds: float | None) -> str:
    """``mm:ss`` (``h:mm:ss`` from an hour); ``--:--`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def report_fraction(
    result: dict[str, Any], config: dict[str, Any]
) -> tuple[float | None, str] | None:
    """How far a running trial is, from its last report: ``(epoch/epochs, "epoch 3/10")`` or
    ``(step/steps, "step 5000/25000")``; ``(None, "step 3")`` without a total; None when its
    report says neither."""
    for done_key, total_key in (("epoch", "epochs"), ("step", "steps")):
        done, total = result.get(done_key), config.get(total_key)
        if isinstance(done, int | float) and isinstance(total, int | float) and total > 0:
            return min(max(float(done) / float(total), 0.0), 1.0), f"{done_key} {done:g}/{total:g}"
    for done_key in ("epoch", "step"):
        if isinstance(result.get(done_key), int | float):
            return None, f"{done_key} {result[done_key]:g}"
    return None


class SweepProgress(Callback):
    """Counts trials by outcome; draws the live line on a terminal, plain lines elsewhere."""

    def __init__(
        self,
        name: str,
        total: int,
        metric: str,
        mode: str,
        store: ResultsStore | None = None,
        stream: TextIO | None = None,
        name_keys: Sequence[str] = (),
        live: bool | None = None,
        heartbeat_s: float | None = None,
    ):
        self.name, self.total, self.metric, self.mode = name, total, metric, mode
        #: read only: the row of a trial stopped early says its outcome
        self.store = store
        self.stream = stream or sys.stderr
        self.name_keys = tuple(name_keys)
        self.live_wanted = live
        env_heartbeat = os.environ.get("LOWPREC_HEARTBEAT_S")
        self.heartbeat_s = float(
            heartbeat_s if heartbeat_s is not None else env_heartbeat or HEARTBEAT_S
        )
        self.start = time.monotonic()
        self.first_start: float | None = None
        self.ended_before = 0
        self.last_line = time.monotonic()
        self.running: dict[str, dict[str, Any]] = {}
        self.outcomes: dict[str, str] = {}
        self.best: tuple[float, str] | None = None
        self.labels: dict[str, str] = {}
        #: trial id -> its TrialSpec (None: its config cannot resolve), resolved once here
        self.specs: dict[str, Any] = {}
        self._init_runtime()

    def _init_runtime(self) -> None:
        self.lock = threading.Lock()
        self.live: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config (callbacks included) for --resume: leave the stream, the
        live display and the lock out."""
        state = dict(self.__dict__)
        for key in ("stream", "lock", "live"):
            state.pop(key, None)
        state["specs"] = {}  # a cache (TrialSpecs hold read-only mappings, which never pickle)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.stream = sys.stderr
        self._init_runtime()

    # ------------------------------------------------------------------ output mode
    def is_live(self) -> bool:
        """Live line: on a terminal (``$LOWPREC_PROGRESS`` = live | plain overrides)."""
        if self.live_wanted is not None:
            return self.live_wanted
        forced = os.environ.get("LOWPREC_PROGRESS", "").strip().lower()
        if forced in ("live", "plain"):
            return forced == "live"
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def open(self) -> None:
        """Start the live display (on a terminal); a no-op elsewhere or when already open."""
        if self.live is not None or not self.is_live():
            return
        from rich.console import Console
        from rich.live import Live

        view = _LiveView(self)
        console = Console(file=self.stream, force_terminal=True)
        self.live = Live(
            view,
            console=console,
            refresh_per_second=2,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.live.start()

    def close(self) -> None:
        """Stop the live display (its last frame stays on screen)."""
        if self.live is not None:
            with contextlib.suppress(Exception):
                self.live.refresh()
                self.live.stop()
            self.live = None

    def say(self, text: str) -> None:
        """An event line: above the live display, or a plain line."""
        if self.live is not None:
            self.live.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)
            self.last_line = time.monotonic()

    # ------------------------------------------------------------------ Tune hooks
    def setup(self, **info: Any) -> None:
        self.open()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        now = time.monotonic()
        if self.first_start is None:
            self.first_start = now
            self.ended_before = len(self.outcomes)
        self.label(trial)  # the run name, shown on its line from the start
        with self.lock:
            self.running[trial.trial_id] = {"fraction": 0.0, "where": "starting"}
        self.open()

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        if trial.trial_id not in self.running or "status" in result:
            return
        found = report_fraction(result, dict(trial.config))
        if found is not None:
            fraction, where = found
            with self.lock:
                self.running[trial.trial_id] = {"fraction": fraction or 0.0, "where": where}

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        with self.lock:
            self.running.pop(trial.trial_id, None)
        self.say(f"[{self.name}] trial {self.label(trial)} raised; retrying it")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        status = result.get("status")
        if status not in ENDED_STATUSES:
            status = self.recorded_status(trial)
        value = result.get(self.metric)
        with self.lock:
            self.running.pop(trial.trial_id, None)
            self.outcomes[trial.trial_id] = status
            if status == "ok" and isinstance(value, int | float) and math.isfinite(value):
                signed = value if self.mode == "min" else -value
                if self.best is None or signed < self.best[0]:
                    self.best = (signed, self.label(trial))
        self.ended(trial, status, result.get("error"))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        with self.lock:
            self.running.pop(trial.trial_id, None)
            self.outcomes[trial.trial_id] = "failed"
        self.ended(trial, "failed", None)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if self.live is None and now - self.last_line >= self.heartbeat_s:
            self.line(running=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ lines
    def described(self, trial: Any) -> Any:
        """What names a Tune trial: its ``TrialSpec`` (its config resolved once, then kept), or
        its raw config when that cannot resolve."""
        trial_id = trial.trial_id
        if trial_id not in self.specs:
            self.specs[trial_id] = spec_or_config(trial.config)
        return self.specs[trial_id]

    def recorded_status(self, trial: Any) -> str:
        """The outcome of a trial that ended without a final status (a scheduler stopped it):
        its row's status (``ok`` for the row written from its last report), ``ok`` without a
        store or a row."""
        row = self.store.read_trial_row(trial.trial_id) if self.store is not None else None
        return str(row.get("status")) if row else "ok"

    def label(self, trial: Any) -> str:
        """The trial's MLflow run name (what distinguishes it in the sweep)."""
        trial_id = trial.trial_id
        if trial_id not in self.labels:
            config = self.described(trial)
            try:
                name = run_name(config, self.name_keys) if self.name_keys else trial_id
            except Exception:
                name = trial_id
            self.labels[trial_id] = name if name != "trial" else trial_id
        return self.labels[trial_id]

    def ended(self, trial: Any, status: str, error: Any) -> None:
        if self.live is None:
            self.line(ended=f"{self.label(trial)}: {status}")
        elif status != "ok":
            why = f" ({str(error).strip().splitlines()[-1][:120]})" if error else ""
            self.say(f"{self.label(trial)}: {status}{why}")

    def counts(self) -> dict[str, int]:
        return {"ok": 0, "diverged": 0, "failed": 0, **Counter(list(self.outcomes.values()))}

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left (see the module docstring); None before anything can be measured."""
        if self.first_start is None:
            return None
        now = time.monotonic() if now is None else now
        with self.lock:
            partial = sum(r["fraction"] for r in self.running.values())
            ended = len(self.outcomes)
        done_here = ended - self.ended_before + partial
        elapsed = now - self.first_start
        if done_here <= 1e-9 or elapsed <= 0:
            return None
        left = max(self.total - ended - partial, 0.0)
        return elapsed * left / done_here

    def best_text(self) -> str:
        if self.best is None:
            return ""
        value = self.best[0] * (1 if self.mode == "min" else -1)
        return f"best {self.metric}={value:.4g} ({self.best[1]})"

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def line(self, ended: str | None = None, running: bool = False) -> None:
        """The plain status line (per ended trial, and as a heartbeat)."""
        counts = self.counts()
        parts = [
            f"[{self.name} {clock(self.elapsed())}] {len(self.outcomes)}/{self.total} ended "
            f"(ok {counts['ok']}, diverged {counts['diverged']}, failed {counts['failed']})",
            f"{len(self.running)} running",
            f"ETA {clock(self.eta())}",
        ]
        if self.best is not None:
            parts.append(self.best_text())
        if ended is not None:
            parts.append(f"ended {ended}")
        if running:
            with self.lock:
                shown = [r["where"] for r in self.running.values()][:3]
            if shown and any(w != "starting" for w in shown):
                parts.append("now: " + ", ".join(shown))
        print(" | ".join(parts), file=self.stream, flush=True)
        self.last_line = time.monotonic()


class _LiveView:
    """The live display's renderable: redrawn from the callback's state at every refresh."""

    def __init__(self, progress: SweepProgress):
        self.progress = progress

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        p = self.progress
        counts = p.counts()
        ended = len(p.outcomes)
        filled = BAR_WIDTH * ended / p.total if p.total else 0.0
        bar = Text()
        bar.append("━" * int(filled), style="green")
        if int(filled) < BAR_WIDTH:
            half = filled - int(filled) >= 0.5
            bar.append("╸" if half else "━", style="green" if half else "grey37")
            bar.append("━" * (BAR_WIDTH - int(filled) - 1), style="grey37")
        head = Text.assemble(
            (f"{p.name} ", "bold"),
            bar,
            f" {ended}/{p.total} ended · ok {counts['ok']} · diverged {counts['diverged']} · ",
            (f"failed {counts['failed']}", "red" if counts["failed"] else ""),
            f" · {len(p.running)} running · elapsed {clock(p.elapsed())} · ",
            (f"ETA {clock(p.eta())}", "bold cyan"),
        )
        lines = [head]
        if p.best is not None:
            lines.append(Text(f"  {p.best_text()}"))
        with p.lock:
            running = list(p.running.items())
        for trial_id, state in running[:SHOW_RUNNING]:
            label = p.labels.get(trial_id, trial_id)
            lines.append(Text(f"  ▸ {label}   {state['where']}", style="dim"))
        if len(running) > SHOW_RUNNING:
            lines.append(Text(f"  … {len(running) - SHOW_RUNNING} more running", style="dim"))
        for line in lines:  # a narrow terminal cuts a line, never wraps it (the redraw needs it)
            line.no_wrap, line.overflow = True, "ellipsis"
        return Group(*lines)
