"""Pins what the fast paths of quantize / vc_quantize rely on: the amax block grid equals the
format's own grid bit for bit, and vc_quantize's single-branch CPU paths (a scalar v with
every element in the same branch) deliver the same moments as ALGORITHMS.md §4 states."""

from __future__ import annotations

import pytest
import torch

from lowprec import parse_format, quantize, vc_quantize
from lowprec.quantize import block_grid


@pytest.mark.parametrize("fmt", ["block<8>", "block<4>", "block<24>", "block<30>"])
def test_block_grid_equals_the_formats_grid(fmt: str) -> None:
    f = parse_format(fmt)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, 3, generator=g) * torch.logspace(-40, 30, 6).reshape(6, 1, 1)
    x[1] = 0.0  # an all-zero block
    x[2, 0, 0] = float("nan")  # a NaN block
    x[3, 1, 2] = float("-inf")
    x[4, 2, 1] = 1e-44  # subnormal maximum
    for t in (x, x.reshape(6, 15), x.reshape(-1), x[:, 0, 0], x[0]):
        grid = block_grid(f, t)
        assert grid is not None
        for ours, theirs in zip(grid, f._grid(t), strict=True):
            torch.testing.assert_close(
                ours.expand(t.shape), theirs.expand(t.shape), rtol=0, atol=0, equal_nan=True
            )
    assert block_grid(f, torch.tensor(1.0)) is None
    assert block_grid(f, torch.zeros(0, 3)) is None
    assert block_grid(parse_format("block<8,4>"), x) is None
    assert block_grid(parse_format("fixed<8,3>"), x) is None


def test_stochastic_rounding_unchanged_for_dim0_blocks() -> None:
    """quantize with the amax grid: same output as rounding with the format's grid."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 40, generator=g) * torch.logspace(-3, 3, 50).unsqueeze(1)
    out = quantize(x, "block<8>", "stochastic", torch.Generator().manual_seed(2), kernels="eager")
    delta, lo, hi = parse_format("block<8>")._grid(x)
    xc = torch.clamp(x, lo, hi)
    rem = torch.remainder(xc, delta)
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(2))
    assert torch.equal(out, (xc - rem) + delta * (u < rem / delta).float())


# (c, w): μ = Δ·(k + c), v = w·Δ² with one scalar w for the whole tensor, so every element is in
# the same branch and the CPU takes the single-branch path
@pytest.mark.parametrize("w", [1.5, 0.3, 0.25, 0.2, 0.1, 0.0001])
def test_single_branch_moments_fixed(w: float) -> None:
    torch.set_num_threads(1)
    delta, n = 0.0625, 100_000
    cs = torch.tensor([0.0, 0.1, 0.3, 0.5, 0.7, 0.95], dtype=torch.float64)
    mu = torch.cat([(2 + cs) * delta, -(3 + cs) * delta])
    frac = torch.cat([cs, (1 - cs) % 1.0])
    target = torch.full_like(mu, w) if w > 0.25 else torch.clamp(frac * (1 - frac), min=w)
    target = target * delta * delta
    g = torch.Generator().manual_seed(11)
    mus = mu.float().expand(n, -1).contiguous()
    out, delivered = vc_quantize(mus, w * delta * delta, "fixed<8,4>", g, return_variance=True)
    assert delivered.shape == mus.shape
    torch.testing.assert_close(delivered[0].double(), target, rtol=1e-5, atol=0)
    out = out.double()
    assert torch.equal(quantize(out.float(), "fixed<8,4>", "nearest").double(), out)
    _check(out, mu, target, n)


@pytest.mark.parametrize("var", [1e-7, 2e-6, 1e-4])
def test_single_and_mixed_branch_moments_block(var: float) -> None:
    """block<8>, one row per block: rows of different scale put rows in different branches
    (mixed path) and a one-row tensor takes a single-branch path; all match §4."""
    torch.set_num_threads(1)
    n = 60_000
    rows = torch.tensor([0.3, 0.021, 0.0052, 0.7])
    out_all = vc_quantize(
        rows.unsqueeze(1).expand(-1, n).contiguous(),
        var,
        "block<8>",
        torch.Generator().manual_seed(5),
    )
    for i, r in enumerate(rows):
        mu_row = torch.full((1, n), float(r))
        single = vc_quantize(mu_row, var, "block<8>", torch.Generator().manual_seed(6 + i))
        for out in (out_all[i : i + 1], single):
            _, delivered = vc_quantize(mu_row[:, :1], var, "block<8>", torch.Generator(), True)
            target = delivered.double().reshape(1)
            assert torch.equal(quantize(out, "block<8>", "nearest"), out)
            _check(out.double().reshape(n, 1), mu_row[0, :1].double(), target, n)


def _check(out: torch.Tensor, mu: torch.Tensor, target: torch.Tensor, n: int) -> None:
    """Mean within 5 SE of μ and variance (ddof 0) within 5 SE of the target, per column."""
    mean = out.mean(0)
    assert ((mean - mu).abs() <= 5 * (target / n).sqrt() + 1e-12).all(), (mean, mu)
    centred = out - mean
    var = (centred**2).mean(0)
    mu4 = (centred**4).mean(0)
    se = ((mu4 - var**2).clamp(min=0) / n).sqrt()
    assert ((var - target).abs() <= 5 * se + 1e-12).all(), (var, target)
