"""The accumulators (lowprec/samplers/accumulators.py): VC's joint and independent pair
draws differ where the noise exceeds the grid."""

from __future__ import annotations

import torch

from tests.lowprec.samplers.helpers import _config, _run


def test_vc_modes_differ() -> None:
    # at the reference setting (η 0.09, u 2, γ 3, N = 1 below via T = 10: T/N = 1) the noise
    # variances exceed Δ²/4, so the conditional draw differs from the independent one
    extra = {"lr": 0.09, "inverse_mass": 2.0, "temperature": 10.0, "prior_std": None}
    a, _ = _run(_config("sghmc", "vc", "fixed<8,4>", vc_mode="joint", **extra))
    b, _ = _run(_config("sghmc", "vc", "fixed<8,4>", vc_mode="independent", **extra))
    assert not all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
