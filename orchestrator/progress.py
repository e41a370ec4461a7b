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

The callback also records, from the driver, trials that a scheduler (ASHA) stopped early: their
workload never returned, so they wrote no row; it writes one from the last reported metrics
(``status`` ok, ``early_stopped`` true) and ends their MLflow child run. And while the sweep
runs it sends, every few seconds, the MLflow writes ended trials could not send
(:func:`orchestrator.outbox.replay_pending`): a tracking server that comes back is caught up.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from ray.tune import Callback

from orchestrator.naming import configuration_name
from orchestrator.store import ResultsStore, trial_row
from orchestrator.tracking import TAG_TRIAL, client, retry, run_name
from orchestrator.trial import TrialConfigError, record_config, trial_spec, weight_bits

#: keys Tune adds to every result; not metrics of ours
TUNE_KEYS = frozenset(
    {
        "done", "training_iteration", "trial_id", "date", "timestamp", "time_this_iter_s",
        "time_total_s", "pid", "hostname", "node_ip", "config", "time_since_restore",
        "iterations_since_restore", "checkpoint_dir_name", "should_checkpoint", "experiment_tag",
    }
)  # fmt: skip
HEARTBEAT_S = 30.0
#: seconds between two attempts to send ended trials' saved MLflow writes
REPLAY_EVERY_S = 5.0
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
        tracking: tuple[str, str, str] | None = None,
        stream: TextIO | None = None,
        name_keys: Sequence[str] = (),
        live: bool | None = None,
        heartbeat_s: float | None = None,
    ):
        self.name, self.total, self.metric, self.mode = name, total, metric, mode
        self.store, self.tracking = store, tracking
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
        self.last_replay = 0.0
        self._init_runtime()

    def _init_runtime(self) -> None:
        self.lock = threading.Lock()
        self.live: Any = None
        self.replaying: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config (callbacks included) for --resume: leave the stream, the
        live display, the lock and the threads out."""
        state = dict(self.__dict__)
        for key in ("stream", "lock", "live", "replaying"):
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
        """Stop the live display (its last frame stays on screen) and wait for a catch-up of
        MLflow writes in progress (the driver's own catch-up follows: never two at once)."""
        if self.replaying is not None:
            self.replaying.join(timeout=300)
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
        if status not in ("ok", "diverged", "failed"):
            status = self.record_early_stop(trial, result)
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
        if now - self.last_replay >= REPLAY_EVERY_S:
            self.last_replay = now
            self.replay_in_background()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ lines
    def described(self, trial: Any) -> Any:
        """What names and records a Tune trial: its ``TrialSpec`` (its config resolved once,
        then kept), or its raw config when that cannot resolve."""
        trial_id = trial.trial_id
        if trial_id not in self.specs:
            try:
                self.specs[trial_id] = trial_spec(dict(trial.config))
            except (TrialConfigError, ValueError, TypeError):
                self.specs[trial_id] = None
        spec = self.specs[trial_id]
        return spec if spec is not None else dict(trial.config)

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

    # ------------------------------------------------------------------ MLflow catch-up
    def replay_in_background(self) -> None:
        """Send ended trials' saved MLflow writes on a thread (the driver's loop never waits)."""
        if self.store is None or self.tracking is None:
            return
        if self.replaying is not None and self.replaying.is_alive():
            return
        from orchestrator.outbox import pending_keys

        try:
            if not pending_keys(self.store):
                return
        except OSError:
            return
        self.replaying = threading.Thread(
            target=catch_up_quietly, args=(self.store, self.tracking[0]), daemon=True
        )
        self.replaying.start()

    # ------------------------------------------------------------------ early stops
    def record_early_stop(self, trial: Any, result: dict[str, Any]) -> str:
        """A trial stopped by the scheduler: write its row from the last report."""
        if self.store is None or self.store.read_trial_row(trial.trial_id) is not None:
            row = self.store.read_trial_row(trial.trial_id) if self.store else None
            return str(row.get("status")) if row else "ok"
        config = self.described(trial)
        metrics = {k: v for k, v in result.items() if k not in TUNE_KEYS and k != "status"}
        with contextlib.suppress(ValueError, TypeError):
            metrics["bits"] = weight_bits(config)
        run_id = None
        if self.tracking is not None:
            uri, experiment_id, parent = self.tracking
            try:
                mlflow = client(uri)
                runs = retry(
                    lambda: mlflow.search_runs(
                        [experiment_id],
                        filter_string=(
                            f"tags.mlflow.parentRunId = '{parent}' and tags.{TAG_TRIAL} = "
                            f"'{trial.trial_id}'"
                        ),
                        max_results=1,
                    ),
                    attempts=3,
                )
                if runs:
                    run_id = runs[0].info.run_id
                    retry(lambda: mlflow.set_tag(run_id, "status", "ok"), attempts=3)
                    retry(lambda: mlflow.set_tag(run_id, "early_stopped", "true"), attempts=3)
                    retry(lambda: mlflow.set_terminated(run_id, status="FINISHED"), attempts=3)
            except Exception as exc:  # the row matters more than the run; say so once
                self.say(f"[{self.name}] MLflow: could not end {trial.trial_id}'s run: {exc}")
        row = trial_row(
            record_config(config),
            metrics,
            status="ok",
            error=None,
            trial_id=trial.trial_id,
            configuration=configuration_name(config, self.name_keys),
            mlflow_run_id=run_id,
            wall_s=float(result.get("time_total_s", math.nan)),
            early_stopped=True,
            node=None,
        )
        self.store.write_trial_row(row)
        return "ok"


def catch_up_quietly(store: ResultsStore, tracking_uri: str) -> None:
    """Replay ended trials' saved MLflow writes; the server still away is not an error here."""
    from orchestrator.outbox import fill_run_ids, replay_pending

    with contextlib.suppress(Exception):
        _, _, created = replay_pending(store, client(tracking_uri))
        fill_run_ids(store, created)


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


class InterruptWatch(Callback):
    """Ctrl-C while Tune runs: the first SIGINT stops the sweep gracefully, a second one at once.

    Tune's ``fit`` installs its own SIGINT handler: a SIGINT stops the trials gracefully (they
    end TERMINATED, as if they had finished; Tune saves its state one last time), puts back the
    handler it found and returns normally. So :meth:`install` puts ours in place before ``fit``
    (it notes a SIGINT that reaches it and raises ``KeyboardInterrupt``, as Python's default
    does): the handler Tune finds, and puts back after the first SIGINT, so that a second SIGINT
    raises at once wherever the driver is (Tune's last checkpoint, stopping the trial actors).
    As soon as Tune's handler is in place (:meth:`setup`, else the first step), it is wrapped so
    that the first SIGINT also says, on ``stream``, what happens and that a second one stops at
    once. After ``fit``, our handler back in place of Tune's means Tune got a SIGINT.
    """

    def __init__(self, stream: TextIO | None = None, name: str = "") -> None:
        self.signalled = False
        self.tune_handler: Any = None
        self.previous: Any = None
        self.installed = False
        self.stream = stream
        self.name = name

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config (callbacks included): leave the handlers out."""
        return {
            "signalled": False, "tune_handler": None, "previous": None, "installed": False,
            "stream": None, "name": self.name,
        }  # fmt: skip

    def handler(self, signum: int, frame: Any) -> None:
        self.signalled = True
        raise KeyboardInterrupt

    def first_stop(self, signum: int, frame: Any) -> None:
        """Tune's handler, saying so first: Tune stops the trials and puts ours back."""
        self.signalled = True
        if self.stream is not None:
            with contextlib.suppress(Exception):  # a closed stream must not stop the stop
                print(
                    f"[{self.name}] Ctrl-C: stopping the trials and saving Tune's state "
                    "(--resume continues them); Ctrl-C again stops at once",
                    file=self.stream,
                    flush=True,
                )
        signal.signal(signal.SIGINT, self.handler)  # whatever Tune's handler does next
        self.tune_handler(signum, frame)

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self.handler)
            self.installed = True

    def uninstall(self) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)
            self.installed = False

    def _wrap_tune_handler(self) -> None:
        if self.tune_handler is not None or not self.installed:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(signal.SIGINT)
        if current in (self.handler, self.first_stop) or not callable(current):
            return  # Tune installed none (TUNE_DISABLE_SIGINT_HANDLER), or it ran already
        self.tune_handler = current
        signal.signal(signal.SIGINT, self.first_stop)

    def setup(self, **info: Any) -> None:
        """Called by Tune after it installed its SIGINT handler, before the first trial."""
        self._wrap_tune_handler()

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        self._wrap_tune_handler()

    def interrupted(self) -> bool:
        """True when a SIGINT reached our handler or Tune's (call before :meth:`uninstall`)."""
        if self.signalled:
            return True
        return (
            self.installed
            and self.tune_handler is not None
            and signal.getsignal(signal.SIGINT) == self.handler
        )
