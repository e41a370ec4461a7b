"""bench.gpu, the one prepared GPU run: refuses in one line without CUDA; with a device, reads
each benchmark's JSON and judges it against the issue's bars (here with the commands faked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import gpu


def test_without_cuda_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.gpu", "--out", str(tmp_path / "g")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "bench.gpu: no CUDA device here (torch.cuda.is_available() is False)"
    ]
    assert not (tmp_path / "g").exists()


def test_verdicts_against_bars() -> None:
    assert gpu.verdict(0.6, 0.5, ">=") == "met"
    assert gpu.verdict(0.4, 0.5, ">=") == "not met"
    assert gpu.verdict(1.4, 1.5, "<=") == "met"
    assert gpu.verdict(1.6, 1.5, "<=") == "not met"
    assert gpu.verdict(None, 1.5, "<=") == "-" and gpu.verdict(1.0, None, "<=") == "-"


def test_reads_each_benchmarks_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    figures = {
        "bench.quantize": '{"sr_vs_copy": 0.62}',
        "bench.resnet": '{"lp_over_fp32": 1.9}',
        "bench.step": "Traceback: boom",
    }

    def fake_run(args: list[str], log: Path, timeout: int) -> tuple[int, str]:
        text = "12 passed, 3 deselected" if args[0] == "pytest" else f"table\n{figures[args[0]]}"
        log.write_text(text)
        return (1 if "boom" in text else 0), text

    monkeypatch.setattr(gpu, "_run", fake_run)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.get_device_name", lambda i: "Fake GPU")
    result = gpu.main(["--out", str(tmp_path)])
    assert result["device"] == "Fake GPU"
    assert result["cuda_tests"] == {"exit": 0, "summary": "12 passed, 3 deselected"}
    assert result["quantize"]["sr_vs_copy"] == 0.62 and result["quantize"]["verdict"] == "met"
    assert result["resnet"]["verdict"] == "not met"
    assert result["step"] == {
        "exit": 1,
        "lp_over_fp32": None,
        "bar": None,
        "goal": None,
        "verdict": "-",
    }
    assert json.loads((tmp_path / "summary.json").read_text()) == result
    assert (tmp_path / "resnet.txt").read_text().endswith('{"lp_over_fp32": 1.9}')
