"""What a spec says about its answer: tolerances per objective and the baseline configuration,
refused in one line naming the key before anything runs; defaults that give way to the user's
own settings (``burn_in`` against ``epochs``) and errors reported at the key that caused them;
how configurations and child runs are named (orchestrator.spec, orchestrator.naming)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.answer import select_baseline
from orchestrator.spec import SpecError, baseline_candidates, load_spec, parse_spec
from tests.orchestrator.helpers import write_spec

REPO = Path(__file__).resolve().parents[2]

GRID = """\
name: g
workload: gaussian
objectives: {w2: {direction: min, tolerance: 0.01}, bits_per_param: min}
fixed: {sampler: sgld, steps: 100}
space:
  weight_format: {grid: ['fixed<8,3>', 'fixed<6,3>']}
  accumulator: {grid: [full, low]}
  seed: {grid: [0, 1, 2]}
"""

VARIANTS = """\
name: v
workload: logreg
objectives: {train_loss: min, bits_per_param: min}
fixed: {steps: 200, batch_size: 1}
space:
  seed: {grid: [0, 1]}
variants:
  - name: lp8
    format: fixed
    bits: 8
    frac_bits: 6
    tensors: W
    accumulator: low
    sampler: {grid: [sgd, svrg]}
  - name: fp32
    format: fp32
    accumulator: full
    sampler: svrg
"""


def test_tolerance_and_baseline_are_read() -> None:
    spec = parse_spec(GRID + "baseline: {weight_format: 'fixed<8,3>', accumulator: full}\n")
    assert spec.objectives == {"w2": "min", "bits_per_param": "min"}  # metric -> direction
    assert spec.tolerances == {"w2": 0.01}
    assert spec.tolerance("w2") == 0.01
    assert spec.tolerance("test_error") == 0.005  # analysis's default
    assert spec.tolerance("ks") is None  # no default: its verdict is inconclusive
    assert spec.baseline == {"weight_format": "fixed<8,3>", "accumulator": "full"}
    assert parse_spec(GRID).baseline is None  # the default: decided from the results
    # a string names a variant, or else a configuration by its name (the child runs' name)
    assert parse_spec(GRID + "baseline: 'fixed<6,3> full'\n").baseline == "fixed<6,3> full"


# (change to GRID, the key path in the message, words of the reason)
REFUSED = [
    ("tolerance: 0.01", "tolerance: -0.01", "objectives.w2.tolerance", "positive number"),
    ("tolerance: 0.01", "tolerance: 0", "objectives.w2.tolerance", "positive number"),
    ("tolerance: 0.01", "tolerance: small", "objectives.w2.tolerance", "positive number"),
    ("tolerance: 0.01", "tolerance: true", "objectives.w2.tolerance", "positive number"),
    ("tolerance: 0.01", "tolerance: .inf", "objectives.w2.tolerance", "positive number"),
    ("tolerance: 0.01", "tol: 0.01", "objectives.w2.tol", "unknown key"),
    ("direction: min, tolerance", "tolerance", "objectives.w2.direction", "missing"),
    ("direction: min,", "direction: down,", "objectives.w2.direction", "not one of"),
    (
        "bits_per_param: min",
        "bits_per_param: {direction: min, tolerance: 1}",
        "objectives.bits_per_param.tolerance",
        "a cost",
    ),
]


@pytest.mark.parametrize(("old", "new", "path", "reason"), REFUSED)
def test_bad_tolerance_is_refused_naming_the_key(old: str, new: str, path: str, reason: str):
    with pytest.raises(SpecError) as info:
        parse_spec(GRID.replace(old, new), "g.yaml")
    assert str(info.value).startswith(f"g.yaml: {path}: "), str(info.value)
    assert reason in str(info.value) and "\n" not in str(info.value)


BASELINES = [
    ("{accumulator: full}", "baseline", "matches 2 configurations (fixed<8,3> full, fixed<6,3>"),
    ("{weight_format: 'fixed<4,2>'}", "baseline", "matches no configuration"),
    ("fp32", "baseline", "'fp32' matches no configuration"),
    ("{bogus: 1}", "baseline.bogus", "unknown key"),
    ("{accumulator: lo}", "baseline.accumulator", "not one of"),
    ("{workload: gaussian}", "baseline.workload", "top level"),
    ("{}", "baseline", "empty mapping"),
    ("[fp32]", "baseline", "expected a variant name or a mapping"),
    ("{variant: fp32}", "baseline.variant", "not a variant"),
]


@pytest.mark.parametrize(("value", "path", "reason"), BASELINES)
def test_bad_baseline_is_refused_naming_the_key(value: str, path: str, reason: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(GRID + f"baseline: {value}\n", "g.yaml")
    assert str(info.value).startswith(f"g.yaml: {path}: "), str(info.value)
    assert reason in str(info.value) and "\n" not in str(info.value)


def test_baseline_by_variant_or_keys_selects_one_configuration() -> None:
    spec = parse_spec(VARIANTS + "baseline: fp32\n")
    configs = baseline_candidates(spec)
    # 2 seeds x (2 samplers of lp8 + 1 of fp32): 3 configurations, named without the seed by
    # the variant and the values that differ between them (the child runs' names)
    names = ["lp8 sgd fixed<8,6> W low", "lp8 svrg fixed<8,6> W low", "fp32 svrg full"]
    assert [c["configuration"] for c in configs] == names
    assert select_baseline(spec.baseline, configs) == [2]
    spec = parse_spec(VARIANTS + "baseline: {variant: lp8, sampler: svrg}\n")
    assert select_baseline(spec.baseline, baseline_candidates(spec)) == [1]
    for value, reason in (
        ("lp16", "'lp16' matches no configuration of the sweep (variants: lp8, fp32)"),
        ("lp8", "'lp8' matches 2 configurations (lp8 sgd fixed<8,6> W low, lp8 svrg"),
    ):
        with pytest.raises(SpecError, match=r"v\.yaml: baseline: ") as info:
            parse_spec(VARIANTS + f"baseline: {value}\n", "v.yaml")
        assert reason in str(info.value)


def test_optuna_baseline_is_checked_against_the_listed_values() -> None:
    optuna = VARIANTS.replace(
        "objectives:", "search: {algorithm: optuna, num_samples: 4}\nobjectives:"
    )
    assert parse_spec(optuna + "baseline: fp32\n").baseline == "fp32"
    ranged = optuna.replace("steps: 200,", "steps: 200, prior_std: 1.0,").replace(
        "  seed: {grid: [0, 1]}", "  seed: {grid: [0, 1]}\n  lr: {loguniform: [1.0e-3, 1.0e-1]}"
    )
    with pytest.raises(SpecError, match=r"baseline\.lr: lr is drawn from a range"):
        parse_spec(ranged + "baseline: {variant: fp32, lr: 0.01}\n")


def _dry_run(spec: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.sweep", str(spec), "--dry-run"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_dry_run_refuses_a_bad_baseline_or_tolerance_in_one_line(tmp_path: Path) -> None:
    for name, text, named in (
        ("baseline.yaml", GRID + "baseline: {accumulator: full}\n", "baseline: "),
        ("tol.yaml", GRID.replace("0.01", "-1"), "objectives.w2.tolerance: "),
    ):
        done = _dry_run(write_spec(tmp_path, text, name))
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{name}: {named}" in lines[0], done.stderr


def test_default_sweep_has_its_float32_baseline() -> None:
    spec = load_spec(REPO / "search_spaces" / "bits.yaml")
    assert spec.num_trials() == 111  # 3 fp32 + 3 formats x 4 word lengths x 3 accumulators x 3
    assert spec.trials_per_variant() == {"fp32": 3, "quantized": 108}
    assert spec.baseline == "fp32" and spec.tolerances == {"test_error": 0.005}
    configs = baseline_candidates(spec)
    assert len(configs) == 37
    (index,) = select_baseline(spec.baseline, configs)
    assert configs[index]["configuration"] == "fp32 full"
    assert configs[index]["weight_format"] == configs[index]["grad_format"] == "fp32"


@pytest.mark.parametrize("name", ["bits", "logreg_halp", "mixture", "smoke", "cifar_resnet18"])
def test_shipped_baselines_select_one_configuration(name: str) -> None:
    spec = load_spec(REPO / "search_spaces" / f"{name}.yaml")
    assert spec.baseline is not None
    assert len(select_baseline(spec.baseline, baseline_candidates(spec))) == 1


# ------------------------------------------------------------------------- defaults and blame

MLP = """\
name: m
workload: mnist_mlp
objectives: {test_error: min}
fixed: {device: cpu, EXTRA}
space:
  accumulator: {grid: [full, low]}
  format: {grid: [fixed, block]}
"""


def test_burn_in_default_gives_way_to_a_short_run() -> None:
    from workloads.config.resolve import resolve_config

    assert resolve_config({"workload": "mnist_mlp"})["burn_in"] == 5  # the default stands
    assert resolve_config({"workload": "mnist_mlp", "epochs": 6})["burn_in"] == 5
    assert resolve_config({"workload": "mnist_mlp", "epochs": 3})["burn_in"] == 1  # 3 // 2
    assert resolve_config({"workload": "mnist_mlp", "epochs": 1})["burn_in"] == 0
    assert resolve_config({"workload": "mixture", "steps": 1000})["burn_in"] == 500
    with pytest.raises(ValueError, match="key 'burn_in'"):  # set by the user: refused
        resolve_config({"workload": "mnist_mlp", "epochs": 3, "burn_in": 5})
    assert parse_spec(MLP.replace("EXTRA", "epochs: 3")).num_trials() == 4


def test_error_is_reported_at_the_key_the_spec_sets() -> None:
    # burn_in 5 of 1 epoch: the error names burn_in, where the spec sets it, not the first axis
    with pytest.raises(SpecError) as info:
        parse_spec(MLP.replace("EXTRA", "epochs: 1, burn_in: 5"), "m.yaml")
    assert str(info.value).startswith("m.yaml: fixed.burn_in: key 'burn_in': burn_in (5) leaves")
    # a value of an axis that cannot run with the fixed keys keeps the value's own path
    text = MLP.replace("EXTRA", "burn_in: 5").replace("{grid: [full, low]}", "full")
    text = text.replace("  accumulator: full\n", "  epochs: {grid: [10, 4]}\n")
    with pytest.raises(SpecError, match=r"m\.yaml: space\.epochs\.grid\[1\]: key 'burn_in'"):
        parse_spec(text, "m.yaml")


# ------------------------------------------------------------------------------- names
