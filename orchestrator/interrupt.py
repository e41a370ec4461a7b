"""Ctrl-C while Ray Tune runs a sweep: the first SIGINT stops the trials gracefully (Tune saves
its state, ``--resume`` continues), a second one stops at once. See :class:`InterruptWatch`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, TextIO

from ray.tune import Callback


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
