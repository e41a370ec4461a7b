"""numba compile options, and each parallel kernel compiled twice from one body.

Every kernel of this package is compiled with ``cache=True`` (on-disk cache, one file per
function and signature), ``nogil`` and numpy's error model (a float division by zero gives
inf or NaN, no exception). Scalar helpers are ``inline="always"`` (:data:`INLINE`).

numba checks a cached kernel against the source file that defines it, and only that file: the
kernels inline helpers from the sibling files (grid.py, bits.py, ...) and read constants from
lowprec/kernels/encoding.py and rng.py, so after an edit there every kernel of another file
would go on loading its old machine code. :func:`drop_stale_cache` therefore keys the cache by
a hash of all those sources, and removes the cached kernels when it changes (at import, before
any kernel is loaded).
"""

from __future__ import annotations

import hashlib
import os
import types as pytypes
from collections.abc import Callable, Iterable
from pathlib import Path

import numba
from numba import njit

__all__ = ["INLINE", "OPTS", "drop_stale_cache", "parallel_and_serial", "set_threads"]

OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}
#: scalar helpers (and the step's helpers over arrays, called per chunk or group)
INLINE = {**OPTS, "inline": "always"}

_HERE = Path(__file__).resolve().parent
#: what the compiled kernels depend on: this package and the modules its kernels read
KERNEL_SOURCES = (
    *sorted(_HERE.glob("*.py")),
    _HERE.parent / "encoding.py",
    _HERE.parent / "rng.py",
)
STAMP = "kernel-sources.sha256"


def drop_stale_cache(sources: Iterable[Path], cache: Path) -> bool:
    """Remove numba's cached kernels (``*.nbi``, ``*.nbc`` in ``cache``) unless they were
    compiled from ``sources`` as they are now (the SHA-256 of their bytes, kept in ``cache``/
    :data:`STAMP`); True when it removed them. A cache it cannot write is left as it is (numba
    then uses its own per-user cache, subject to the same check)."""
    digest = hashlib.sha256(b"".join(Path(p).read_bytes() for p in sources)).hexdigest()
    stamp = cache / STAMP
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for compiled in (*cache.glob("*.nbi"), *cache.glob("*.nbc")):
            compiled.unlink(missing_ok=True)
        partial = cache / f".{STAMP}.{os.getpid()}"
        partial.write_text(digest)
        partial.replace(stamp)  # atomic: a process reading it sees the old or the new hash
    except OSError:
        return False
    return True


drop_stale_cache(KERNEL_SOURCES, _HERE / "__pycache__")


def parallel_and_serial(body: Callable) -> numba.core.dispatcher.Dispatcher:
    """One Python body compiled twice: ``njit(parallel=True)`` (returned; its ``prange`` loops
    run on numba's thread pool) and ``njit(parallel=False)`` as its ``.serial`` attribute
    (``prange`` is ``range``: the calling thread, no pool launch; for small tensors).

    numba's on-disk cache names its index file after the function's qualified name and keys
    the entries by signature and bytecode, not by the compile flags: two dispatchers of one
    function share one entry, and whichever compiles first is loaded by both (a serial twin
    would start the thread pool). The serial dispatcher therefore compiles a copy of the
    function named ``<name>_serial``: two cache files, both loaded by later processes."""
    twin = pytypes.FunctionType(
        body.__code__,
        body.__globals__,
        f"{body.__name__}_serial",
        body.__defaults__,
        body.__closure__,
    )
    twin.__qualname__ = f"{body.__qualname__}_serial"
    twin.__doc__ = f"{body.__name__} on the calling thread (``prange`` runs as ``range``)."
    parallel = njit(parallel=True, **OPTS)(body)
    parallel.serial = njit(**OPTS)(twin)
    return parallel


def set_threads(n: int) -> None:
    """numba's thread count for the next kernels (capped at its pool size)."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
