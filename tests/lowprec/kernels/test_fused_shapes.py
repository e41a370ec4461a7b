"""The fused numba quantizers on every block layout a shape gives: blocks of one element
(dim-0 block formats and per-row scales on a 1-D tensor or a column), one block per tensor
(a single row), runs longer than the row, narrow rows, few long blocks reduced in parallel, and
tiles of whole blocks (their maxima taken in the tile).
Nearest rounding equals the eager reference bit for bit; stochastic rounding lands on the same
grid (the floor or the ceiling of the eager nearest neighbours' grid)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lowprec import parse_format, quantize
from lowprec.kernels.numba import bits
from lowprec.kernels.rng import TILE16, draw_key

FORMATS = [
    "block<8>",
    "block<5,32>",
    "int<8>",
    "int<4,g32>",
    "nvfp4",
    "nvfp4<t>",
    "mx<fp4_e2m1>",
    "mx<fp8_e4m3>",
    "mx<int8>",
]
#: (6208,) and (3, 1024): tiles of whole blocks of 16 or 32 (their maxima taken in the tile),
#: the last tile short
SHAPES = [
    (),
    (1,),
    (4099,),
    (1, 4099),
    (4099, 1),
    (2049, 2),
    (1366, 3),
    (97, 41),
    (6208,),
    (3, 1024),
]


def _values(n: int, seed: int) -> torch.Tensor:
    """Magnitudes over 2^-20..2^20, zeros, ties of the coarse grids (halves), NaN and ±inf."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g) * torch.exp2(torch.randint(-20, 21, (n,), generator=g))
    if n >= 16:
        x[1::7] = torch.randint(-40, 41, (len(x[1::7]),), generator=g) / 2.0
        x[3::11] = 0.0
    return x


def _special(x: torch.Tensor) -> torch.Tensor:
    if x.numel() >= 64:
        flat = x.view(-1)
        flat[5], flat[17], flat[40] = float("inf"), float("-inf"), float("nan")
    return x


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("special", [False, True], ids=["finite", "nan_inf"])
def test_nearest_equals_eager_for_every_layout(fmt: str, shape: tuple, special: bool) -> None:
    n = 1
    for s in shape:
        n *= s
    x = _values(n, seed=n).reshape(shape)
    if special:
        x = _special(x)
    fused = quantize(x, fmt, "nearest", kernels="fused")
    eager = quantize(x, fmt, "nearest", kernels="eager")
    assert fused.shape == x.shape
    assert torch.equal(fused.view(-1).view(torch.int32), eager.view(-1).view(torch.int32)) or (
        torch.equal(fused.isnan(), eager.isnan())
        and torch.equal(fused[~fused.isnan()], eager[~eager.isnan()])
    )


@pytest.mark.parametrize("fmt", ["block<8>", "int<8>", "nvfp4", "block<6,32>"])
@pytest.mark.parametrize("shape", [(300_001,), (1, 300_001), (3, 200_000)], ids=str)
def test_long_blocks_reduced_in_parallel_match_eager(fmt: str, shape: tuple) -> None:
    """Few blocks of more than two chunks take the parallel max (on 2 threads): the same block
    maxima, so the same nearest bits; a NaN anywhere in a long block reaches its maximum."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = _values(int(torch.tensor(shape).prod()), seed=7).reshape(shape)
        x.view(-1)[-3] = 2.0**30  # the maximum in the last chunk of the last block
        for case in (x, _special(x.clone())):
            fused = quantize(case, fmt, "nearest", kernels="fused")
            eager = quantize(case, fmt, "nearest", kernels="eager")
            assert torch.equal(fused.isnan(), eager.isnan())
            assert torch.equal(fused[~fused.isnan()], eager[~eager.isnan()])
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("shape", [(4099,), (4099, 1)], ids=str)
def test_stochastic_blocks_of_one_element_round_to_a_neighbour(shape: tuple) -> None:
    """block<8> with a block per element: Δ = 2^(floor(log2|x|) - 6) per element, and the
    result is floor_Δ(x) or floor_Δ(x) + Δ; the same bits for a 1-D tensor and a column
    (the same layout, the same key)."""
    x = _values(4099, seed=3)
    x = x[x != 0].reshape(-1, *shape[1:])
    q = quantize(x, "block<8>", "stochastic", torch.Generator().manual_seed(0), kernels="fused")
    x64, q64 = x.double(), q.double()
    delta = torch.exp2(torch.floor(torch.log2(x64.abs())) - 6)
    low = torch.floor(x64 / delta) * delta
    assert bool(((q64 == low) | (q64 == low + delta)).all())
    again = quantize(
        x.reshape(-1), "block<8>", "stochastic", torch.Generator().manual_seed(0), kernels="fused"
    )
    assert torch.equal(again, q.reshape(-1))


@pytest.mark.parametrize("fmt", [f for f in FORMATS if not f.startswith("block")])
@pytest.mark.parametrize("shape", [(6208,), (3, 1024), (97, 41), (4099,)], ids=str)
def test_stochastic_scaled_is_the_element_rounding_of_the_kernels_draws(
    fmt: str, shape: tuple
) -> None:
    """Stochastic rounding of a scaled format, in tiles of whole blocks ((6208,), (3, 1024):
    block by block in the tile) and in the other layouts: Q(x) = (floor(t) + [u_i < t -
    floor(t)])·Δ·up, t = clamp(y)/Δ, y = the eager element map of x (scales per block), u_i
    = threshold16 of element i's 16-bit draw (lowprec/kernels/rng.py's layout, stream 0) for
    the key drawn from the generator: the same bits."""
    n = 1
    for s in shape:
        n *= s
    x = _values(n, seed=n + 1).reshape(shape)
    f = parse_format(fmt)
    out = quantize(x, f, "stochastic", torch.Generator().manual_seed(5), kernels="fused")
    k0, k1 = draw_key(torch.Generator().manual_seed(5)).tolist()
    buf = np.empty(TILE16, np.uint16)
    r16 = []
    for t in range(-(-n // TILE16)):
        bits.fill_bits16(buf, t, k0, k1, 0)
        r16.append(buf.astype(np.float32))
    u = (torch.from_numpy(np.concatenate(r16)[:n]) * 2 + 1) * 2.0**-17  # threshold16, exact
    y, _, up, restore = f.to_element(x)
    u = f.layout(u.reshape(shape))[0]
    delta, lo, hi = f.element._grid(y)
    t = torch.clamp(y, lo, hi) / delta
    fl = torch.floor(t)
    expect = restore((fl + (u < t - fl).float()) * delta * up)
    assert torch.equal(out.view(torch.int32), expect.reshape(shape).view(torch.int32))
