"""One driver per sweep directory (orchestrator.sweeplock): a second lock on the same directory
is refused at once naming the holder; the lock is free again when its holder returns; object
stores have none."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.store import ResultsStore
from orchestrator.sweeplock import SweepLocked, sweep_lock


def test_a_second_driver_is_refused_naming_the_holder(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path, "s")
    with sweep_lock(store):
        holder = (tmp_path / "s" / ".lock").read_text()
        assert holder.startswith(f"pid {os.getpid()} on {socket.gethostname()} since ")
        with pytest.raises(SweepLocked) as refused, sweep_lock(store):  # a second open file
            pytest.fail("the body ran under a lock another holder has")
        message = str(refused.value)
        assert message.startswith(f"{tmp_path / 's'} is in use by another sweep (pid {os.getpid()}")
        assert "--resume" in message
    with sweep_lock(store):  # released when the first holder returned
        pass


def test_a_body_that_raises_releases_the_lock(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path, "s")
    with pytest.raises(KeyError), sweep_lock(store):
        raise KeyError("the sweep failed")
    with sweep_lock(store):
        pass


def test_object_stores_have_no_lock(tmp_path: Path) -> None:
    store = SimpleNamespace(root_uri="s3://bucket/results", path=str(tmp_path / "never"))
    with sweep_lock(store), sweep_lock(store):  # type: ignore[arg-type]
        pass
    assert not (tmp_path / "never").exists()
