"""The single-trial command and the shared run-one-trial code path (orchestrator.trial)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from orchestrator.trial import (
    TrialConfigError,
    main,
    parse_assignments,
    run_trial,
    weight_bits,
)

GAUSSIAN = [
    "workload=gaussian", "sampler=sgld", "accumulator=low", "weight_format='fixed<8,3>'",
    "grad_format='fixed<8,3>'", "lr=2e-3", "chains=50", "steps=600", "burn_in=100", "seed=1",
    "device=cpu",
]  # fmt: skip


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.trial", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def _without_timing(summary: dict) -> dict:
    from orchestrator.trial import MEASURED_METRICS

    return {k: v for k, v in summary.items() if k not in MEASURED_METRICS}


def test_cli_prints_json_last_line_and_is_deterministic(fake_env: dict[str, str]) -> None:
    first, second = _cli(GAUSSIAN, fake_env), _cli(GAUSSIAN, fake_env)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["status"] == "ok"
    assert result["bits"] == 8  # fixed<8,3>: word length 8
    assert result["wall_s"] > 0
    assert math.isfinite(result["std"])
    # same seed -> the same JSON, measurements aside (wall_s, peak memory, ESS per second)
    assert _without_timing(json.loads(second.stdout.strip().splitlines()[-1])) == _without_timing(
        result
    )


def test_cli_unknown_key_exits_2_with_one_line(fake_env: dict[str, str]) -> None:
    out = _cli([*GAUSSIAN, "learning_rate=0.1"], fake_env)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "'learning_rate'" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["workload=gaussian", "lr=fast"], "'lr'"),  # wrong type
        (["workload=gaussian", "accumulator=sometimes"], "'accumulator'"),  # not a choice
        (["workload=gaussian", "accumulator=vc"], "'accumulator'"),  # vc with fp32 weights
        (["workload=gaussian", "weight_format='fixed<8'"], "'weight_format'"),  # bad format
        (["workload=gaussian", "format=float", "bits=32", "exp_bits=5"], "'bits'"),  # > float32
        (["workload=gaussian", "seed=-1"], "'seed'"),  # below the minimum
        (["workload=nosuch"], "'workload'"),
        (["lr=0.1"], "'workload'"),  # missing
        (["workload=gaussian", "lr"], "'lr'"),  # not key=value
        (["workload=gaussian", "lr=0.1", "lr=0.2"], "'lr'"),  # twice
        (["workload=fake", "behaviour=missing_data"], "fake.npz"),  # DataUnavailable
    ],
)
def test_cli_bad_input_exits_2_naming_the_key(
    args: list[str], named: str, fake_registered: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], captured.err


def test_cli_failed_trial_exits_1_with_json(
    fake_registered: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["workload=fake", "behaviour=raise", "lr=0.1"]) == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["status"] == "failed"
    assert "fake failure" in result["error"]
    assert "Traceback" in captured.err


def test_cli_diverged_trial_is_a_result(
    fake_registered: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["workload=fake", "behaviour=diverge", "lr=0.1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["status"] == "diverged" and result["diverged"] is True
    assert result["std"] is None  # inf is not JSON: written as null
    assert result["step"] == 2  # the Diverged exception's metrics are kept


def test_cli_progress_goes_to_stderr(
    fake_registered: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["workload=fake", "lr=0.1", "reports=3"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) == 1
    assert captured.err.count("train_loss=") == 3


def test_run_trial_same_seed_same_metrics_and_outputs(fake_registered: None) -> None:
    a = run_trial({"workload": "fake", "lr": 0.1, "seed": 3})
    b = run_trial({"workload": "fake", "lr": 0.1, "seed": 3})
    c = run_trial({"workload": "fake", "lr": 0.1, "seed": 4})
    assert _without_timing(a.summary()) == _without_timing(b.summary())
    assert (a.probs == b.probs).all() and (a.labels == b.labels).all()
    assert a.metrics["test_error"] != c.metrics["test_error"]
    assert a.config["sampler"] == "sgld"  # defaults filled in


def test_run_trial_restores_from_state(fake_registered: None) -> None:
    seen: list[dict] = []
    run_trial(
        {"workload": "fake", "lr": 0.1, "reports": 3},
        report=lambda m, state=None: seen.append(state),
    )
    resumed = run_trial({"workload": "fake", "lr": 0.1, "reports": 3}, restored=seen[0])
    full = run_trial({"workload": "fake", "lr": 0.1, "reports": 3})
    assert resumed.metrics["start_step"] == 1
    # the generator state travels with the checkpoint, so the resumed run ends identically
    assert resumed.metrics["test_error"] == full.metrics["test_error"]


def test_run_trial_bad_config_raises(fake_registered: None) -> None:
    with pytest.raises(TrialConfigError, match="'behaviour'"):
        run_trial({"workload": "fake", "behaviour": "explode"})


@pytest.mark.parametrize(
    ("config", "bits"),
    [
        ({}, 32),
        ({"format": "fixed", "bits": 6}, 6),
        ({"format": "block", "bits": 8, "block_size": 32}, 8),  # word bits, exponent not counted
        ({"format": "float", "bits": 8}, 8),
        ({"format": "float<5,10>"}, 16),
        ({"weight_format": "fixed<4,2>", "format": "fixed", "bits": 12}, 4),
        ({"format": "fixed", "bits": 6, "tensors": "G"}, 32),  # weights left in fp32
    ],
)
def test_weight_bits(config: dict, bits: int) -> None:
    assert weight_bits(config) == bits


def test_parse_assignments() -> None:
    """``key=value`` arguments: the value read as one YAML scalar, split at the first ``=``."""
    assert parse_assignments(["a=1", "b='x=y'"]) == {"a": 1, "b": "x=y"}


@pytest.mark.parametrize(
    ("extra", "kernels", "step_kernels"),
    [
        ({"kernels": "fused"}, "fused", "fused"),
        ({"kernels": "eager"}, "eager", "eager"),
        ({"kernels": "auto", "sampler": "sghmc", "momentum_rescale": True}, "fused", "fused"),
        # block formats wider than 25 bits have no fused step: under auto the quantizers run
        # fused and the step eagerly, and the record says so
        ({"kernels": "auto", "format": "block", "bits": 28}, "fused", "eager"),
    ],
)
def test_record_names_the_path_that_ran_the_sampler_step(
    extra: dict, kernels: str, step_kernels: str
) -> None:
    """``kernels`` is the quantizers' path; ``step_kernels`` the sampler step's, which may fall
    back to eager where the fused step cannot run (a result traces to its code path)."""
    from orchestrator.trial import run_trial

    config = {
        "workload": "gaussian",
        "steps": 50,
        "format": "fixed",
        "bits": 8,
        "frac_bits": 3,
        "accumulator": "low",
        "device": "cpu",
        **extra,
    }
    result = run_trial(config)
    assert result.status == "ok", result.error
    assert result.metrics["kernels"] == kernels
    assert result.metrics["step_kernels"] == step_kernels
