"""The benchmarks run end to end on tiny sizes and end with one JSON object (their contract);
the figures themselves are not asserted (timings belong to bench/, not to tests)."""

from __future__ import annotations

import json

import pytest

from bench import chains, quantize, resnet, step


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) > 1, "a table comes before the JSON line"
    return json.loads(lines[-1])


def test_bench_quantize(capsys: pytest.CaptureFixture[str]) -> None:
    """Every format on both paths, at the thread count asked for, and ratios that are the
    ratios of the reported medians."""
    quantize.main(
        ["--n", "20000", "--repeats", "1", "--threads", "1", "--no-compile-time", "--json"]
    )
    out = _last_json(capsys)
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


def test_bench_step(capsys: pytest.CaptureFixture[str]) -> None:
    """Both set-ups on both executors; the ratios are the ratios of the reported medians."""
    step.main(["--rounds", "1", "--steps", "1", "--json"])
    out = _last_json(capsys)
    ms = out["ms"]
    assert all(0 < v < 60_000 for v in ms.values())
    assert out["executors"]["lp fused"] == "fused" and out["executors"]["lp eager"] == "eager"
    assert out["lp_over_fp32"] == pytest.approx(ms["lp fused"] / ms["fp32 fused"])
    assert out["lp_eager_over_fp32_eager"] == pytest.approx(ms["lp eager"] / ms["fp32 eager"])
    assert out["update_fused_over_eager"]["lp"] == pytest.approx(
        ms["lp fused update"] / ms["lp eager update"]
    )


def test_bench_chains(capsys: pytest.CaptureFixture[str]) -> None:
    """Per chain-step figures for each size and for one-chain trials, ratios consistent."""
    chains.main(
        ["--steps", "20", "--rounds", "1", "--trials", "1", "--sizes", "10", "1000", "--json"]
    )
    out = _last_json(capsys)
    per = out["steps_ns_per_chain_step"]
    assert set(per) == {"10", "1000"} and all(0 < v < 1e9 for v in per.values())
    assert out["per_chain_step_1000_over_10"] == pytest.approx(per["1000"] / per["10"])
    trials = out["trials_ns_per_chain_step"]
    assert out["one_chain_trials_over_1000"] == pytest.approx(
        trials["one-chain trials"] / trials["1000"]
    )
    assert out["executor"] == "fused"


def test_bench_resnet(capsys: pytest.CaptureFixture[str]) -> None:
    resnet.main(["--device", "cpu", "--batch", "2", "--repeats", "1", "--json"])
    assert _last_json(capsys)["lp_over_fp32"] > 0
