"""The benchmarks run end to end on tiny sizes and end with one JSON object (their contract);
the figures themselves are not asserted (timings belong to bench/, not to tests)."""

from __future__ import annotations

import json

import pytest

from bench import quantize, resnet, step


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) > 1, "a table comes before the JSON line"
    return json.loads(lines[-1])


def test_bench_quantize(capsys: pytest.CaptureFixture[str]) -> None:
    quantize.main(["--n", "20000", "--repeats", "1", "--json"])
    out = _last_json(capsys)
    assert out["sr_vs_copy"] > 0 and out["sr_vs_torch_expr"] > 0


def test_bench_step(capsys: pytest.CaptureFixture[str]) -> None:
    step.main(["--rounds", "1", "--steps", "1", "--json"])
    assert _last_json(capsys)["lp_over_fp32"] > 0


def test_bench_resnet(capsys: pytest.CaptureFixture[str]) -> None:
    resnet.main(["--device", "cpu", "--batch", "2", "--repeats", "1", "--json"])
    assert _last_json(capsys)["lp_over_fp32"] > 0
