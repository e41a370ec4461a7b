"""numba compile options, and each parallel kernel compiled twice from one body.

Every kernel of this package is compiled with ``cache=True`` (on-disk cache, one file per
function and signature), ``nogil`` and numpy's error model (a float division by zero gives
inf or NaN, no exception). Scalar helpers are ``inline="always"`` (:data:`INLINE`).
"""

from __future__ import annotations

import types as pytypes
from collections.abc import Callable

import numba
from numba import njit

__all__ = ["INLINE", "OPTS", "parallel_and_serial", "set_threads"]

OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}
#: scalar helpers (and the step's helpers over arrays, called per chunk or group)
INLINE = {**OPTS, "inline": "always"}


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
