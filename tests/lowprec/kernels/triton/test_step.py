"""The Triton SGLD / SGHMC steps on the scaled formats (MX with its scale rules, NVFP4, scaled
integers: ALGORITHMS.md §11) against the numba steps, run by Triton's interpreter on CPU
tensors: without noise both draw the same Philox thresholds, so every rounding gives the same
bits; with noise the normals differ by ~1e-6 (libm against polynomials) and the values agree
to that, except where a rounding lands on the other side of its threshold. The fixed, block and
float cases are tests.lowprec.samplers.test_fused.py's, whose harness this reuses."""

from __future__ import annotations

import pytest

from lowprec.formats import parse_format
from lowprec.kernels.fused import has_fused
from tests.lowprec.samplers.test_fused import test_triton_step_matches_numba as _matches
from tests.lowprec.samplers.test_fused import triton_step  # noqa: F401 (the fixture)

_SLOW = pytest.mark.slow  # the interpreter takes ~10 s a case: two run in the quick suite
CASES = [
    ("sgld", "mx<fp8_e4m3>", "low"),
    pytest.param("sgld", "int<8,g32>", "vc", marks=_SLOW),
    pytest.param("sgld", "nvfp4", "full", marks=_SLOW),
    ("sghmc", "int<6,g16>", "vc"),
    pytest.param("sghmc", "mx<fp4_e2m1>", "vc", marks=_SLOW),
    pytest.param("sghmc", "nvfp4", "low", marks=_SLOW),
    ("sgld", "mx<fp8_e4m3,16,rceil>", "low"),
    pytest.param("sghmc", "mx<fp4_e2m1,even>", "vc", marks=_SLOW),
]


@pytest.mark.parametrize(("rule", "fmt", "acc"), CASES)
def test_triton_scaled_step_matches_numba(triton_step, rule: str, fmt: str, acc: str) -> None:  # noqa: F811
    assert has_fused(parse_format(fmt), "cuda", "step")
    _matches(triton_step, rule, fmt, acc, False)
