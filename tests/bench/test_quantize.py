"""bench.quantize end to end on tiny sizes (every format on both paths, ratios of the reported
medians), and its allocation figures: the rows that price a new tensor and the torch
expression's own allocations, and the child run under torch's THP_MEM_ALLOC_ENABLE."""

from __future__ import annotations

import json

import pytest

from bench import quantize
from lowprec.kernels import outputs
from tests.bench.helpers import last_json


def test_allocation_rows_and_torch_thp_child(capsys: pytest.CaptureFixture[str]) -> None:
    """Each derived figure is what its docstring says of the medians printed beside it; the
    rows without reuse leave the fused path's output settings as they found them."""
    settings = outputs.HUGEPAGE_MIN_BYTES, outputs.POOL_MAX_BYTES
    args = "--n 20000 --repeats 1 --threads 1 --no-compile-time --torch-thp --json"
    quantize.main(args.split())
    assert settings == (outputs.HUGEPAGE_MIN_BYTES, outputs.POOL_MAX_BYTES)
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run = out["by_threads"]["1"]
    for r in (run, run["torch_thp"]):
        med = r["median_s"]
        assert all(0 < t < 60 for t in med.values())
        assert r["sr_vs_torch_expr"] == pytest.approx(med["torch_expr"] / med["fixed fused"])
        assert r["sr_vs_torch_expr_4k"] == pytest.approx(
            med["torch_expr"] / med["fixed fused 4K pages"]
        )
        assert r["sr_vs_torch_expr_fresh"] == pytest.approx(
            med["torch_expr"] / med["fixed fused fresh 2M pages"]
        )
        assert r["sr_vs_torch_expr_no_alloc"] == pytest.approx(
            med["torch_expr out="] / med["fixed fused out="]
        )
        for pages, row in (("4K", "new 4K pages"), ("2M", "new 2M pages"), ("reused", "reused")):
            assert r["first_touch_ms"][pages] == pytest.approx(
                1e3 * (med[f"{row} + write"] - med["write"])
            )
        assert r["torch_expr_allocations_ms"] == pytest.approx(
            1e3 * (med["torch_expr"] - med["torch_expr out="])
        )
    assert set(run["torch_thp"]["fused_over_eager"]) == {"fixed"}
    assert out["sr_vs_torch_expr_4k"] == run["sr_vs_torch_expr_4k"]


def test_bench_quantize(capsys: pytest.CaptureFixture[str]) -> None:
    """Every format on both paths, at the thread count asked for, and ratios that are the
    ratios of the reported medians."""
    quantize.main(
        ["--n", "20000", "--repeats", "1", "--threads", "1", "--no-compile-time", "--json"]
    )
    out = last_json(capsys)
    run = out["by_threads"]["1"]
    assert out["threads"] == run["threads"] == 1
    med = run["median_s"]
    for fmt in quantize.FORMATS:
        for path in quantize.PATHS:
            assert 0 < med[f"{fmt} {path}"] < 60
            ratio = run["sr_vs_copy_by_format"][f"{fmt} {path}"]
            assert ratio == pytest.approx(med["copy"] / med[f"{fmt} {path}"])
    assert out["sr_vs_copy"] == pytest.approx(med["copy"] / med["fixed fused out="])
    assert out["sr_vs_torch_expr"] == pytest.approx(med["torch_expr"] / med["fixed fused"])
    assert run["gb_per_s"]["copy"] == pytest.approx(8 * 20000 / med["copy"] / 1e9)
