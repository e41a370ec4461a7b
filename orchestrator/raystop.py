"""Stopping the local Ray a sweep started, and waiting until every process of it has ended.

An interrupted sweep must mark its stopped trials' MLflow runs KILLED only once no trial process
is left: a trial actor still alive may create or end its run afterwards (seen: a run created
6 ms after the marking, left RUNNING, because the driver marked them while its Ray was still up).
``ray.shutdown()`` signals the node's processes without waiting for them or for the workers the
raylet started, so :func:`stop` notes every process of the local node and its descendants, shuts
Ray down, waits for all of them to end (``GRACE_S``), kills those still there, and only then
returns.

Only a Ray this process started (:func:`own`, called by ``tune_setup.init_ray``) is stopped: a
joined cluster, or a Ray a caller started in-process, is left alone.
"""

from __future__ import annotations

import contextlib

#: seconds to wait for the local Ray's processes to end after ``ray.shutdown()``
GRACE_S = 15.0

_owned = False


def own() -> None:
    """This process started the local Ray: :func:`stop` shuts it down."""
    global _owned
    _owned = True


def stop(grace_s: float = GRACE_S) -> None:
    """Shut down the local Ray this process started and wait until its processes (daemons,
    workers and their children) have ended, killing those left after ``grace_s``; nothing when
    this process did not start Ray. A second Ctrl-C while waiting kills them at once."""
    global _owned
    if not _owned:
        return
    _owned = False
    import psutil
    import ray

    processes = _node_processes()
    ray.shutdown()
    try:
        _, alive = psutil.wait_procs(processes, timeout=grace_s)
    except KeyboardInterrupt:
        _kill(processes)
        raise
    _kill(alive)


def _node_processes() -> list:  # type: ignore[type-arg]
    """The local node's processes and all their descendants (psutil), while Ray is up."""
    import psutil
    from ray._private import worker

    node = worker._global_node
    found: dict[int, psutil.Process] = {}
    for infos in node.all_processes.values() if node is not None else ():
        for info in infos:
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(info.process.pid)
                for p in (process, *process.children(recursive=True)):
                    found[p.pid] = p
    return list(found.values())


def _kill(processes: list) -> None:  # type: ignore[type-arg]
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=5)
