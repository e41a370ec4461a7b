"""The search-space schema: valid files parse, broken files fail before anything runs with the
file, the key path and the reason (orchestrator.spec)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.spec import SpecError, load_spec, parse_spec
from tests.orchestrator.helpers import write_spec

REPO = Path(__file__).resolve().parents[2]

VALID = """\
name: t
workload: gaussian
objectives: {w2: min, bits: min}
search: {algorithm: grid, num_samples: 2, max_concurrent: 2}
fixed: {sampler: sgld, steps: 100}
space:
  weight_format: {grid: ['fixed<8,3>', 'fixed<6,3>', 'fixed<4,2>']}
  accumulator: {grid: [full, low]}
  lr: {loguniform: [1.0e-4, 1.0e-2]}
"""


def test_valid_spec_counts_and_lists_its_trials() -> None:
    spec = parse_spec(VALID, "t.yaml")
    assert spec.num_trials() == 3 * 2 * 2  # grid points x num_samples
    assert spec.objectives == {"w2": "min", "bits": "min"}
    assert spec.fixed == {"sampler": "sgld", "steps": 100}
    configs = spec.trial_configs()
    assert len(configs) == spec.num_trials()
    # every grid point twice, lr drawn within its range: 12 distinct trials
    points = [(c["weight_format"], c["accumulator"]) for c in configs]
    assert {p: points.count(p) for p in points} == {
        (w, a): 2 for w in ("fixed<8,3>", "fixed<6,3>", "fixed<4,2>") for a in ("full", "low")
    }
    assert all(1e-4 <= c["lr"] <= 1e-2 and c["steps"] == 100 for c in configs)
    assert len({c["lr"] for c in configs}) == 12
    assert all(c["workload"] == "gaussian" and "variant" not in c for c in configs)
    assert spec.param_space() == {}  # the configs come whole from the searcher
    assert spec.optuna_space() is None
    assert spec.searched_keys() == ["weight_format", "accumulator", "lr"]
    # the list is the same on every parse (drawn from search.seed, default 0)
    assert parse_spec(VALID, "t.yaml").trial_configs() == configs
    reseeded = parse_spec(VALID.replace("max_concurrent: 2", "max_concurrent: 2, seed: 5"))
    assert [c["lr"] for c in reseeded.trial_configs()] != [c["lr"] for c in configs]


def test_optuna_counts_num_samples() -> None:
    text = VALID.replace("algorithm: grid, num_samples: 2", "algorithm: optuna, num_samples: 7")
    spec = parse_spec(text)
    assert spec.num_trials() == 7
    assert spec.param_space() == {}
    assert callable(spec.optuna_space())
    with pytest.raises(ValueError, match="optuna"):
        spec.trial_configs()
    assert spec.optimisation_target() == (["w2", "bits"], ["min", "min"])


def test_yaml_floats_without_a_dot_are_floats() -> None:
    spec = parse_spec(VALID.replace("1.0e-4", "1e-4"))
    assert spec.space["lr"].low == 1e-4


@pytest.mark.parametrize("path", sorted(glob.glob(str(REPO / "search_spaces" / "*.yaml"))))
def test_shipped_search_spaces_are_valid(path: str) -> None:
    spec = load_spec(path)
    assert spec.num_trials() >= 1


# a corpus of broken files: (change to VALID, or a whole text) -> the key path in the message
BROKEN = [
    ("syntax", "name: t\nworkload: [gaussian\n", "line 3"),
    ("tab", "name: t\nobjectives:\n\t w2: min\n", "line 3"),
    ("duplicate key", VALID + "name: u\n", "line"),
    ("empty file", "", "empty"),
    ("top level list", "- a\n- b\n", "(top level)"),
    ("unknown top key", VALID + "schedular: asha\n", "schedular"),
    ("missing name", VALID.replace("name: t\n", ""), "name"),
    ("bad name", VALID.replace("name: t", "name: 'a b'"), "name"),
    ("unknown workload", VALID.replace("workload: gaussian", "workload: mnist"), "workload"),
    ("unknown metric", VALID.replace("w2: min", "accuracy: max"), "objectives.accuracy"),
    ("bad direction", VALID.replace("w2: min", "w2: lowest"), "objectives.w2"),
    ("no objectives", VALID.replace("{w2: min, bits: min}", "{}"), "objectives"),
    ("bad algorithm", VALID.replace("algorithm: grid", "algorithm: bayes"), "search.algorithm"),
    ("num_samples 0", VALID.replace("num_samples: 2", "num_samples: 0"), "search.num_samples"),
    ("num_samples str", VALID.replace("num_samples: 2", "num_samples: two"), "search.num_samples"),
    # num_samples > 1 with nothing drawn at random would list the same trials again
    ("repeats", VALID.replace("  lr: {loguniform: [1.0e-4, 1.0e-2]}\n", ""), "search.num_samples"),
    (
        "unknown search key",
        VALID.replace("max_concurrent: 2", "concurrency: 2"),
        "search.concurrency",
    ),
    ("bad scheduler", VALID + "scheduler: hyperband\n", "scheduler"),
    (
        "asha max_t",
        VALID + "scheduler: {type: asha, grace_period: 5, max_t: 2}\n",
        "scheduler.max_t",
    ),
    ("bad resources", VALID + "resources: {cpu: -1}\n", "resources.cpu"),
    ("unknown resource", VALID + "resources: {gpus: 1}\n", "resources.gpus"),
    ("max_failures", VALID + "max_failures: -1\n", "max_failures"),
    ("unknown fixed key", VALID.replace("steps: 100", "step: 100"), "fixed.step"),
    ("unknown space key", VALID + "  learning_rate: {grid: [0.1]}\n", "space.learning_rate"),
    ("wrong fixed type", VALID.replace("steps: 100", "steps: many"), "fixed.steps"),
    ("float for int", VALID.replace("steps: 100", "steps: 100.5"), "fixed.steps"),
    ("fixed out of range", VALID.replace("steps: 100", "steps: 0"), "fixed.steps"),
    ("fixed bad choice", VALID.replace("sampler: sgld", "sampler: adam"), "fixed.sampler"),
    ("both fixed and searched", VALID.replace("steps: 100", "steps: 100, lr: 0.1"), "space.lr"),
    (
        "workload in fixed",
        VALID.replace("steps: 100", "steps: 100, workload: gaussian"),
        "fixed.workload",
    ),
    ("empty grid", VALID.replace("[full, low]", "[]"), "space.accumulator.grid"),
    ("grid not a list", VALID.replace("[full, low]", "full"), "space.accumulator.grid"),
    ("bad grid value", VALID.replace("[full, low]", "[full, lo]"), "space.accumulator.grid[1]"),
    (
        "bad format string",
        VALID.replace("'fixed<4,2>'", "'fixed<4;2>'"),
        "space.weight_format.grid[2]",
    ),
    (
        "duplicate grid value",
        VALID.replace("[full, low]", "[full, full]"),
        "space.accumulator.grid",
    ),
    ("constant axis", VALID.replace("{grid: [full, low]}", "full"), "space.accumulator"),
    ("unknown kind", VALID.replace("loguniform: [1.0e-4", "logspace: [1.0e-4"), "space.lr"),
    ("low >= high", VALID.replace("[1.0e-4, 1.0e-2]", "[1.0e-2, 1.0e-4]"), "space.lr.loguniform"),
    ("loguniform <= 0", VALID.replace("[1.0e-4, 1.0e-2]", "[0, 1.0e-2]"), "space.lr.loguniform"),
    ("range length", VALID.replace("[1.0e-4, 1.0e-2]", "[1.0e-4]"), "space.lr.loguniform"),
    ("range of str", VALID + "  rounding: {uniform: [0, 1]}\n", "space.rounding.uniform"),
    ("uniform on int", VALID + "  burn_in: {uniform: [0, 10]}\n", "space.burn_in.uniform"),
    (
        "range below min",
        VALID.replace("loguniform: [1.0e-4, 1.0e-2]", "uniform: [-1, 1]"),
        "space.lr.uniform[0]",
    ),
    ("randint floats", VALID + "  burn_in: {randint: [0.5, 10]}\n", "space.burn_in.randint"),
    # an impossible combination: accumulator low with fp32 weights
    ("impossible combination", VALID.replace("'fixed<4,2>'", "'fp32'"), "space"),
    (
        "impossible fixed",
        VALID.replace("steps: 100", "steps: 100, format: float, bits: 32, exp_bits: 5"),
        "bits",
    ),
]


@pytest.mark.parametrize(("case", "text", "named"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_spec_names_file_and_key(case: str, text: str, named: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "broken.yaml")
    message = str(info.value)
    assert message.startswith("broken.yaml"), message
    assert named in message, f"{case}: {message}"
    assert "\n" not in message.strip() or case in ("impossible combination",)


def test_impossible_combination_is_caught_per_value() -> None:
    # fp32 weights listed in a grid with a fixed `accumulator: low`: the value's own path
    text = (
        VALID.replace("accumulator: {grid: [full, low]}", "tensors: {grid: [WG]}")
        .replace("steps: 100", "steps: 100, accumulator: low")
        .replace("'fixed<4,2>'", "'fp32'")
    )
    with pytest.raises(SpecError, match=r"space\.weight_format\.grid\[2\]: .*accumulator"):
        parse_spec(text, "x.yaml")


def _cli(spec: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.sweep", str(spec), "--dry-run", *extra],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_sweep_cli_exits_2_on_broken_specs(tmp_path: Path) -> None:
    cases = {
        "syntax.yaml": ("name: t\nworkload: [gaussian\n", "line 3"),
        "unknown.yaml": (VALID + "  learning_rate: {grid: [0.1]}\n", "space.learning_rate"),
        "empty_grid.yaml": (VALID.replace("[full, low]", "[]"), "space.accumulator.grid"),
    }
    for name, (text, named) in cases.items():
        out = _cli(write_spec(tmp_path, text, name))
        assert out.returncode == 2, out.stderr
        assert "Traceback" not in out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and named in lines[0], out.stderr


def test_sweep_cli_dry_run_prints_count(tmp_path: Path) -> None:
    out = _cli(write_spec(tmp_path, VALID))
    assert out.returncode == 0, out.stderr
    assert ": 12 trials of workload 'gaussian'" in out.stdout
    assert out.stdout.count("  [") == 5  # the first five trials
    assert not (tmp_path / "results").exists()  # a dry run writes nothing


def test_missing_file() -> None:
    with pytest.raises(SpecError, match=r"nosuch\.yaml: cannot read"):
        load_spec("nosuch.yaml")


def test_reference_point_is_not_an_objective() -> None:
    text = VALID.replace(
        "{w2: min, bits: min}", "{w2: min, bits: min, reference: {w2: 1.0, bits: 32}}"
    )
    spec = parse_spec(text)
    assert spec.objectives == {"w2": "min", "bits": "min"}
    assert spec.reference == {"w2": 1.0, "bits": 32.0}
    bad = textwrap.dedent(VALID).replace("{w2: min, bits: min}", "{w2: min, reference: {ks: 1}}")
    with pytest.raises(SpecError, match=r"objectives\.reference\.ks"):
        parse_spec(bad)
