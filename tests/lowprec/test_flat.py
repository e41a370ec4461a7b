"""Flat buffers (lowprec/flat.py): each tensor a view of its segment, and the exponent groups
of each block structure (rows, runs of k, chunks), and the tasks they are packed into, by
hand-counted layouts."""

from __future__ import annotations

import numpy as np
import torch

from lowprec.flat import FlatLayout, block_structure, groups_of, tasks_of
from lowprec.formats import parse_format


def test_block_structure_of_each_kind_of_format() -> None:
    assert block_structure(parse_format("block<8>")) == ("rows", 0)
    assert block_structure(parse_format("fixed<8,3>")) is None
    assert block_structure(parse_format("fp32")) is None


def test_groups_by_rows_runs_and_chunks() -> None:
    assert groups_of((3, 4), ("rows", 0)) == [(0, 4), (4, 4), (8, 4)]
    assert groups_of((), ("rows", 0)) == [(0, 1)]  # a 0-d tensor is one group
    # runs of k = 3 within each row of 5: (3, 2) per row, never across a row's end
    assert groups_of((2, 5), ("runs", 3)) == [(0, 3), (3, 2), (5, 3), (8, 2)]
    assert groups_of((10,), None, chunk=4) == [(0, 4), (4, 4), (8, 2)]
    assert groups_of((0, 3), ("rows", 0)) == []


def test_tasks_pack_groups_until_a_chunk() -> None:
    assert tasks_of([2, 2, 2, 5, 1], chunk=4).tolist() == [0, 2, 4, 5]
    assert tasks_of([], chunk=4).tolist() == [0]


def test_layout_offsets_groups_and_views() -> None:
    layout = FlatLayout.build([(2, 3), (4,), ()], ("rows", 0), chunk=4)
    assert (layout.offsets, layout.sizes, layout.numel) == ((0, 6, 10), (6, 4, 1), 11)
    assert layout.group_start.tolist() == [0, 3, 6, 7, 8, 9, 10]
    assert layout.group_len.tolist() == [3, 3, 1, 1, 1, 1, 1]
    assert layout.group_tensor.tolist() == [0, 0, 1, 1, 1, 1, 2]
    assert layout.task_start.tolist() == [0, 2, 6, 7]
    flat = torch.arange(11, dtype=torch.float32)
    views = layout.views(flat)
    assert [tuple(v.shape) for v in views] == [(2, 3), (4,), ()]
    starts = [flat[offset].data_ptr() for offset in layout.offsets]
    assert [v.data_ptr() for v in views] == starts
    views[1][2] = -1.0  # a view writes the buffer
    assert flat[8] == -1.0
    tensors = [torch.ones(2, 3), views[1], torch.tensor(7.0)]
    out = layout.gather(tensors, flat)
    assert out is flat and flat.tolist() == [1.0] * 6 + [6.0, 7.0, -1.0, 9.0, 7.0]
    assert isinstance(layout.group_start, np.ndarray) and layout.group_start.dtype == np.int64
