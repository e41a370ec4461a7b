"""Flat buffers with views for the model (as llm.c's single parameter buffer and apex's
multi-tensor apply): one contiguous float32 buffer per kind of state (θ, θ̂, ∇, momentum), each
tensor of the model a view of its segment, so one kernel launch updates every tensor.

``FlatLayout`` records where each tensor lives (offset, shape) and the exponent groups of the
block formats: contiguous runs of the flat buffer that share one block exponent (a row of a
dim-0 block, a run of k values of a k-block, or the whole of a 0-d tensor). Fixed, float and
fp32 formats share no exponent; the layout cuts their tensors into runs of ``chunk`` values so
that the runs spread over the threads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lowprec.formats import BlockFloat, Format, ScaledFormat

__all__ = ["FlatLayout", "block_structure", "flat_views", "groups_of"]

#: values per run for formats without shared exponents (enough to amortise a thread's start)
CHUNK = 1 << 14


def block_structure(fmt: Format) -> tuple[str, int] | None:
    """("rows", 0) for dim-0 blocks, ("runs", k) for k-blocks and MX blocks, None for formats
    whose grid does not depend on a block maximum (fixed, float, fp32)."""
    if isinstance(fmt, ScaledFormat):  # MX, NVFP4, int<B,gK>: runs of K; int<B>: rows
        return ("rows", 0) if fmt.block_size is None else ("runs", int(fmt.block_size))
    if not isinstance(fmt, BlockFloat):
        return None
    if fmt.block_size is None:
        return ("rows", 0)
    return ("runs", int(fmt.block_size))


def groups_of(
    shape: Sequence[int], structure: tuple[str, int] | None, chunk: int = CHUNK
) -> list[tuple[int, int]]:
    """(start, length) runs of one tensor of ``shape`` (row-major), relative to its start."""
    n = math.prod(shape)
    if n == 0:
        return []
    if structure is None:
        return [(s, min(chunk, n - s)) for s in range(0, n, chunk)]
    kind, k = structure
    if kind == "rows":
        if len(shape) == 0:
            return [(0, 1)]
        row = n // shape[0]
        return [(r * row, row) for r in range(shape[0])]
    last = shape[-1] if shape else 1
    out = []
    for base in range(0, n, last):
        out.extend((base + s, min(k, last - s)) for s in range(0, last, k))
    return out


@dataclass(frozen=True)
class FlatLayout:
    """Offsets and shapes of the tensors in one flat buffer, and its exponent groups.

    ``group_start``/``group_len``: int64 arrays of the runs (flat offsets); ``group_tensor``:
    the tensor each run belongs to; ``task_start``: the tasks (:func:`tasks_of`);
    ``offsets``/``sizes`` per tensor.
    """

    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    numel: int
    group_start: np.ndarray
    group_len: np.ndarray
    group_tensor: np.ndarray
    task_start: np.ndarray

    @classmethod
    def build(
        cls,
        shapes: Sequence[Sequence[int]],
        structure: tuple[str, int] | None,
        chunk: int = CHUNK,
    ) -> FlatLayout:
        shapes = tuple(tuple(int(s) for s in sh) for sh in shapes)
        sizes = tuple(math.prod(sh) for sh in shapes)
        offsets = tuple(int(x) for x in np.cumsum((0, *sizes[:-1])))
        starts, lens, owners = [], [], []
        for i, (sh, off) in enumerate(zip(shapes, offsets, strict=True)):
            for s, n in groups_of(sh, structure, chunk):
                starts.append(off + s)
                lens.append(n)
                owners.append(i)
        return cls(
            shapes,
            offsets,
            sizes,
            int(sum(sizes)),
            np.asarray(starts, dtype=np.int64),
            np.asarray(lens, dtype=np.int64),
            np.asarray(owners, dtype=np.int64),
            tasks_of(lens, chunk),
        )

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """The tensors as views of ``flat`` (no copy)."""
        return flat_views(flat, self.shapes, self.offsets, self.sizes)

    def gather(self, tensors: Sequence[torch.Tensor], out: torch.Tensor) -> torch.Tensor:
        """Copy ``tensors`` into the flat buffer ``out`` (skipping those already views of it)."""
        for t, view in zip(tensors, self.views(out), strict=True):
            if t.data_ptr() != view.data_ptr():
                view.copy_(t)
        return out


def tasks_of(lengths: Sequence[int], chunk: int = CHUNK) -> np.ndarray:
    """Task boundaries (indices into the groups, first 0, last len(lengths)): consecutive
    groups packed until a task holds at least ``chunk`` values, the unit of parallel work."""
    bounds, total = [0], 0
    for i, n in enumerate(lengths):
        total += n
        if total >= chunk:
            bounds.append(i + 1)
            total = 0
    if bounds[-1] != len(lengths):
        bounds.append(len(lengths))
    return np.asarray(bounds, dtype=np.int64)


def flat_views(
    flat: torch.Tensor,
    shapes: Sequence[tuple[int, ...]],
    offsets: Sequence[int],
    sizes: Sequence[int],
) -> list[torch.Tensor]:
    return [flat[o : o + n].view(sh) for sh, o, n in zip(shapes, offsets, sizes, strict=True)]
