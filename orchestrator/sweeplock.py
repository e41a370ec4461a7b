"""One sweep at a time per sweep directory: ``RESULTS/<name>/.lock``.

Two drivers on the same sweep directory (two ``python -m orchestrator.sweep`` started at once,
or a ``--resume`` while the sweep still runs) would both create a parent run, both write
``sweep.json`` and both run every trial. The first takes an exclusive ``flock`` on the lock
file and holds it until it returns; the second is refused at once with one line naming the
directory and the process that holds it. The kernel drops the lock when its holder dies, even
by SIGKILL, so a killed sweep never leaves a stale lock for ``--resume`` to trip on.

Object stores (``s3://``, ``gs://``) have no locks: there the lock is a no-op, and running one
driver per sweep is up to the user.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator

from orchestrator.store import ResultsStore


class SweepLocked(RuntimeError):
    """Another driver holds the sweep directory's lock."""


@contextlib.contextmanager
def sweep_lock(store: ResultsStore) -> Iterator[None]:
    """Hold ``<sweep dir>/.lock`` (local or mounted directories) while the body runs; raise
    :class:`SweepLocked` at once when another process holds it."""
    if "://" in store.root_uri and not store.root_uri.startswith("file://"):
        yield  # object stores: no locking
        return
    os.makedirs(store.path, exist_ok=True)
    path = os.path.join(store.path, ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise SweepLocked(
                f"{store.path} is in use by another sweep ({holder}): wait for it to end "
                "(then --resume), or choose another --results directory or name"
            ) from None
        os.ftruncate(fd, 0)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
