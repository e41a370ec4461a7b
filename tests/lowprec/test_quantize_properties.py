"""Property tests over many formats (hypothesis): nearest rounding lands on the grid within half
a step and is idempotent; stochastic rounding picks one of the two neighbours."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lowprec import BlockFloat, FixedPoint, Format, SmallFloat, quantize

formats = st.one_of(
    st.builds(FixedPoint, st.integers(2, 24), st.integers(0, 20)),
    st.builds(BlockFloat, st.integers(2, 20), st.one_of(st.none(), st.integers(1, 40))),
    st.builds(SmallFloat, st.integers(2, 8), st.integers(0, 20)),
)
values = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=40
)


@settings(max_examples=300, deadline=None)
@given(fmt=formats, xs=values, rows=st.integers(1, 3), seed=st.integers(0, 2**31 - 1))
def test_rounding_properties(fmt: Format, xs: list[float], rows: int, seed: int) -> None:
    x = torch.tensor(xs, dtype=torch.float32).repeat(rows, 1) * torch.arange(1, rows + 1)[:, None]
    delta = fmt.spacing(x).double()
    lo, hi = (b.double() for b in fmt.bounds(x))
    q = quantize(x, fmt, "nearest").double()
    assert (q >= lo).all() and (q <= hi).all()
    assert torch.equal(q / delta, torch.round(q / delta))  # on the grid
    inside = (x.double() >= lo) & (x.double() <= hi)
    assert ((q - x.double()).abs()[inside] <= delta[inside] / 2).all()
    assert torch.equal(quantize(q.float(), fmt, "nearest").double(), q)  # idempotent
    g = torch.Generator().manual_seed(seed)
    s = quantize(x, fmt, "stochastic", g).double()
    xc = torch.minimum(torch.maximum(x.double(), lo), hi)
    below = torch.floor(xc / delta) * delta
    assert ((s == below) | (s == below + delta)).all()
