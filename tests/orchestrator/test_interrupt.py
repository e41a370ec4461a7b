"""Ctrl-C while Tune runs (orchestrator.interrupt): before Tune's handler is in place a SIGINT
raises KeyboardInterrupt; once it is, the first SIGINT says what happens, runs Tune's handler
and puts ours back so that a second one stops at once; the handler found before is restored."""

from __future__ import annotations

import io
import pickle
import signal
from typing import Any

import pytest

from orchestrator.interrupt import InterruptWatch


@pytest.fixture
def saved_handler() -> Any:
    """This process's SIGINT handler, put back whatever a test leaves in place."""
    before = signal.getsignal(signal.SIGINT)
    yield before
    signal.signal(signal.SIGINT, before)


def test_before_tune_a_sigint_raises_and_is_noted(saved_handler: Any) -> None:
    watch = InterruptWatch(io.StringIO(), "s")
    watch.install()
    assert signal.getsignal(signal.SIGINT) == watch.handler and not watch.interrupted()
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    assert watch.interrupted()
    watch.uninstall()
    assert signal.getsignal(signal.SIGINT) == saved_handler


def test_the_first_sigint_under_tune_says_so_and_a_second_stops_at_once(
    saved_handler: Any,
) -> None:
    out = io.StringIO()
    watch = InterruptWatch(out, "s")
    watch.install()
    tune_calls: list[int] = []

    def tune_handler(signum: int, frame: Any) -> None:
        tune_calls.append(signum)  # Tune stops the trials gracefully ...
        signal.signal(signal.SIGINT, watch.handler)  # ... and puts back the handler it found

    signal.signal(signal.SIGINT, tune_handler)  # what Tune's fit does
    watch.setup()
    assert signal.getsignal(signal.SIGINT) == watch.first_stop
    signal.raise_signal(signal.SIGINT)
    assert tune_calls == [signal.SIGINT] and watch.interrupted()
    assert out.getvalue().startswith("[s] Ctrl-C: stopping the trials")
    assert "Ctrl-C again stops at once" in out.getvalue()
    with pytest.raises(KeyboardInterrupt):  # the second one
        signal.raise_signal(signal.SIGINT)
    watch.uninstall()
    assert signal.getsignal(signal.SIGINT) == saved_handler


def test_a_fit_that_got_no_sigint_is_not_an_interruption(saved_handler: Any) -> None:
    watch = InterruptWatch(None, "s")
    watch.install()
    signal.signal(signal.SIGINT, lambda signum, frame: None)  # Tune's, never called
    watch.on_step_begin(0, [])
    assert not watch.interrupted()
    watch.uninstall()


def test_the_watch_pickles_without_its_handlers(saved_handler: Any) -> None:
    watch = InterruptWatch(io.StringIO(), "s")
    watch.install()
    clone = pickle.loads(pickle.dumps(watch))
    watch.uninstall()
    assert (clone.installed, clone.previous, clone.stream, clone.name) == (False, None, None, "s")
