"""Large CPU outputs of the fused kernels: on 2 MiB pages, and reused once freed.

A new tensor's pages are mapped (and zeroed by the kernel) when first written. On 4 KiB pages
that is one page fault per 4 KiB, about as long as a quantizer's own work on 40 MB; torch frees
large CPU tensors back to the kernel, so every call pays it again (bench.quantize prints the
first-touch cost). Two remedies, both for outputs of at least ``HUGEPAGE_MIN_BYTES``:

- huge pages: the buffer is advised ``MADV_HUGEPAGE`` before the first write (one fault per
  2 MiB), as torch does for all its allocations under THP_MEM_ALLOC_ENABLE=1. Only advice:
  where refused the pages stay 4 KiB. As with torch's option, a fault may wait for the kernel to
  compact memory into a free 2 MiB page (the THP ``defrag`` setting).
- reuse: when the last tensor (or view) of an output is freed its buffer goes to a pool and
  is handed out again for the next output of the same size in 2 MiB, pages already mapped; a
  caching allocator for the CPU, as torch's CUDA allocator is for the GPU. The pool holds at
  most ``POOL_MAX_BYTES`` (freed buffers beyond it go back to the kernel); a reused buffer is
  uninitialised, as ``torch.empty``'s is.

The output is a contiguous torch tensor over a numpy array over an anonymous ``mmap``
(``torch.from_numpy``: its storage cannot be resized). Raising ``HUGEPAGE_MIN_BYTES`` past any
size turns both off (plain ``torch.empty_like``).
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import threading
import weakref
from pathlib import Path

import numpy as np
import torch

__all__ = ["HUGEPAGE_MIN_BYTES", "POOL_MAX_BYTES", "huge_pages_available", "new_output"]

#: CPU outputs of at least this many bytes get huge pages and reuse
HUGEPAGE_MIN_BYTES = 4 << 20
#: freed buffers kept for reuse, in bytes (per process)
POOL_MAX_BYTES = 256 << 20
_HUGEPAGE = 2 << 20


@functools.cache
def huge_pages_available() -> bool:
    """Whether transparent huge pages can be asked for (Linux, THP not ``never``)."""
    try:
        thp = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False
    return "[never]" not in thp and hasattr(mmap, "MADV_HUGEPAGE")


class _Pool:
    """Freed output buffers by size; thread-safe (a tensor may be freed on autograd's
    threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[int, list[mmap.mmap]] = {}
        self.bytes = 0

    def take(self, size: int) -> mmap.mmap:
        """A buffer of ``size`` bytes: a freed one if there is one, else a new mapping."""
        with self._lock:
            free = self._free.get(size)
            if free:
                self.bytes -= size
                return free.pop()
        # private: an anonymous shared mapping is shmem, which THP leaves on 4 KiB pages
        buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if huge_pages_available():
            with contextlib.suppress(OSError):  # refused: 4 KiB pages
                buf.madvise(mmap.MADV_HUGEPAGE)
        return buf

    def give(self, buf: mmap.mmap) -> None:
        """Keep ``buf`` for reuse while the pool has room (else it is unmapped when dropped)."""
        size = len(buf)
        with self._lock:
            if self.bytes + size <= POOL_MAX_BYTES:
                self._free.setdefault(size, []).append(buf)
                self.bytes += size

    def clear(self) -> None:
        with self._lock:
            self._free.clear()
            self.bytes = 0


POOL = _Pool()


def new_output(like: torch.Tensor) -> torch.Tensor:
    """``torch.empty_like(like)``, contiguous; on the CPU, when float32 and at least
    ``HUGEPAGE_MIN_BYTES``, on huge pages and from the pool (module docstring)."""
    nbytes = like.numel() * like.element_size()
    if like.device.type != "cpu" or like.dtype != torch.float32 or nbytes < HUGEPAGE_MIN_BYTES:
        return torch.empty_like(like, memory_format=torch.contiguous_format)
    buf = POOL.take(-(-nbytes // _HUGEPAGE) * _HUGEPAGE)
    array = np.frombuffer(buf, dtype=np.float32, count=like.numel())
    # back to the pool when the last tensor (or view) of the array is freed
    weakref.finalize(array, POOL.give, buf).atexit = False
    return torch.from_numpy(array).view(like.shape)
