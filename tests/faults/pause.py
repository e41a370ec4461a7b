"""Injection points that stop a process in the middle of a write, until a signal comes.

``LOWPREC_FAULT_PAUSE`` names the point (see :mod:`tests.faults.harness`); the process writes
``$LOWPREC_FAULT_DIR/paused`` (its pid and the file) and sleeps. A SIGINT ends the sleep with
``KeyboardInterrupt`` (the code around must clean up), a SIGKILL leaves the file as it is: the
temporary file half written, the final name untouched.
"""

from __future__ import annotations

import os
import posixpath
import time
from typing import Any

POINT = "LOWPREC_FAULT_PAUSE"
DIR = "LOWPREC_FAULT_DIR"


def pause(what: str) -> None:
    """Announce the pause (``$LOWPREC_FAULT_DIR/paused``) and wait to be stopped."""
    marker = os.path.join(os.environ[DIR], "paused")
    with open(marker + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {what}\n")
    os.replace(marker + ".tmp", marker)
    time.sleep(600)


def _half(path: str) -> None:
    """Cut the file to half its size: a write stopped half-way."""
    os.truncate(path, os.path.getsize(path) // 2)


def install_write_pause(point: str) -> None:
    """Wrap ``pyarrow.parquet.write_table``: after writing a trial's row (``row``) or
    ``trials.parquet`` (``consolidate``) to its temporary name, cut it in half and pause."""
    import pyarrow.parquet as pq

    original = pq.write_table

    def write_table(table: Any, where: Any, *args: Any, **kwargs: Any) -> None:
        original(table, where, *args, **kwargs)
        path = str(where)
        name = posixpath.basename(path)
        row = point == "row" and posixpath.basename(posixpath.dirname(path)) == "trials"
        consolidation = point == "consolidate" and name.startswith(".trials.parquet.")
        if (row and name.startswith(".")) or consolidation:
            _half(path)
            pause(path)

    pq.write_table = write_table


def install_from_env() -> None:
    point = os.environ.get(POINT)
    if point in ("row", "consolidate"):
        install_write_pause(point)
