"""Bad keys, values, format strings and impossible precision combinations are refused before
torch is imported (each input is refused in well under a second), and the torch-free key
tables agree with the workload modules.

The real ``python -m orchestrator.trial`` runs in subprocesses under ``-X importtime``, which
lists on stderr every module the process imported: a refusal exits 2 with one ``error:`` line
and lists no ``torch`` (the test asserts what was imported, not a wall time, which the shared
machine's load decides).
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from orchestrator.trial import TrialConfigError, parse_assignments, resolve
from tests.pyrun import stdout_lines
from workloads import WORKLOADS, get_workload
from workloads.config.doc import builtin_workloads, render_text
from workloads.config.resolve import check_keys, keys_for, resolve_config, workload_keys
from workloads.config.table import BUILTIN, VARIANCE_REDUCED, WorkloadKeys

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("torch", "ray", "mlflow")
#: the lowprec modules a refusal may import: formats (a package: its modules too), PrecisionSpec,
#: schedules (torch-free)
TORCH_FREE_LOWPREC = {"lowprec", "lowprec.formats", "lowprec.precision", "lowprec.schedules"}

#: key=value arguments the CLI must refuse, each for a different check of ``check_keys``
REFUSED: list[list[str]] = [
    ["workload=cifar_resnet18", "epochs=9223372036854775808"],  # the example
    ["workload=mnist_mlp", "batch_size=1e400"],  # a float (inf) for an int key
    ["workload=gaussian", "lr=.nan"],
    ["workload=logreg", "halp_mu=-1e308"],  # a workload's own key, below its minimum
    ["workload=mixture", "epochz=3"],  # unknown for the workload
    ["workload=mnist_mlp", "sampler=halp"],  # a sampler the workload does not run
    ["workload=gaussian", "tensors=WXZ"],  # unknown tensor kinds
    ["workload=gaussian", "weight_format='fixed<99,3>'"],  # a format string out of range
    ["workload=mnist_mlp", "format=float", "bits=8", "exp_bits=8"],  # a family's keys: no man
    ["workload=logreg", "act_format=blok<8>"],  # a kind logreg lacks: the string is still read
    ["workload=gaussian", "accumulator=vc"],  # low-precision weights needed, the format is fp32
    # the workloads' own checks (workloads.config.checks)
    ["workload=gaussian", "steps=100", "burn_in=200"],  # no step left to collect a sample
    ["workload=mnist_mlp", "schedule=cyclical", "epochs=10", "cycles=3"],  # cycles ∤ epochs
    ["workload=mnist_mlp", "hidden=100,x"],
    ["workload=logreg", "sampler=halp"],  # HALP keeps its offsets in low-precision weights
    ["workload=nope"],
]


def _heavy(modules: set[str]) -> list[str]:
    """The imported modules a refusal must not need: torch, Ray, MLflow, and any lowprec
    module besides the torch-free ones."""
    return sorted(
        m
        for m in modules
        if m.split(".")[0] in HEAVY
        or (
            m.startswith("lowprec")
            and m not in TORCH_FREE_LOWPREC
            and not m.startswith("lowprec.formats.")
        )
    )


def _imported(stderr: str) -> set[str]:
    """The modules ``-X importtime`` listed (``import time: self | cumulative | name``)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


def _run_clis(arg_lists: list[list[str]]) -> list[tuple[int, str, str]]:
    """Run ``python -X importtime -m orchestrator.trial ARGS`` for each list, side by side."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "orchestrator.trial", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in arg_lists
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        out.append((proc.returncode, stdout, stderr))
    return out


def test_cli_refuses_bad_keys_and_values_before_torch_is_imported() -> None:
    results = _run_clis([*REFUSED, ["--keys", "workload=cifar_resnet18"]])
    for args, (code, stdout, stderr) in zip(REFUSED, results, strict=False):
        imported = _imported(stderr)
        # -X importtime listed
        assert {"orchestrator.yamlio", "workloads.config.resolve"} <= imported
        heavy = _heavy(imported)
        assert not heavy, (args, heavy[:5])
        lines = [line for line in stderr.splitlines() if not line.startswith("import time:")]
        assert code == 2 and stdout == "", (args, code, stdout, lines)
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, lines)
        if args == ["workload=nope"]:  # in this process the tests' fake workload may be listed
            assert lines[0].startswith("error: key 'workload': 'nope' is not one of gaussian, ")
            continue
        # the same one line as the full validation in process gives (messages unchanged)
        with pytest.raises(TrialConfigError) as exc:
            resolve(parse_assignments(args))
        assert lines[0] == f"error: {' '.join(str(exc.value).split())}", args
    code, stdout, stderr = results[-1]  # --keys workload=NAME: the table, no torch either
    assert code == 0 and stdout.strip() == render_text("cifar_resnet18").strip()
    assert not _heavy(_imported(stderr))


def test_spec_validation_refuses_a_bad_value_before_torch_is_imported(tmp_path: Path) -> None:
    """``orchestrator.spec.load_spec`` checks keys and values with the torch-free tables (the
    sweep CLI itself imports Ray and MLflow at its top)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: t\nworkload: cifar_resnet18\nobjectives: {test_error: min}\n"
        "fixed: {epochs: 9223372036854775808}\nspace: {seed: {grid: [0, 1]}}\n"
    )
    code = (
        "import sys\n"
        "from orchestrator.spec import SpecError, load_spec\n"
        "try:\n"
        f"    load_spec({str(bad)!r})\n"
        "except SpecError as exc:\n"
        "    print(exc)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    ).replace("{HEAVY!r}", repr(set(HEAVY)))
    out = stdout_lines(code)
    assert out == [
        f"{bad}: fixed.epochs: key 'epochs': 9223372036854775808 is above the maximum 10000",
        "[]",
    ]


def test_check_keys_is_the_first_part_of_resolve() -> None:
    """What ``check_keys`` accepts it fills as ``resolve_config`` does before the formats and
    the workload's checks: same keys, same values for every key that has an effect."""
    for workload in builtin_workloads():
        checked = check_keys({"workload": workload, "tensors": "EAGW", "lr": 1})
        network = workload in ("mnist_mlp", "cifar_resnet18")
        assert checked["tensors"] == ("WGAE" if network else "WG")
        assert checked["lr"] == 1.0 and isinstance(checked["lr"], float)
        resolved = resolve({"workload": workload, "tensors": "EAGW", "lr": 1})
        assert set(checked) == set(resolved) == set(keys_for(workload))
        assert all(checked[k] == v for k, v in resolved.items() if v is not None)


def test_workload_modules_agree_with_their_tables() -> None:
    """Each project workload's module states no attribute that disagrees with its table in
    ``workloads.config.table`` (the table is what validation reads); logreg's variance-reduced
    samplers are ``lowprec.samplers.halp.MODES``."""
    from lowprec.samplers.halp import MODES

    assert VARIANCE_REDUCED == MODES
    builtin = {name: WORKLOADS[name] for name in builtin_workloads()}  # not the tests' fake
    assert set(BUILTIN) == set(builtin.values())
    for workload, module_name in builtin.items():
        module, table = get_workload(workload), BUILTIN[module_name]
        assert module.KEYS is table.keys  # the module takes its keys from the table
        for name in WorkloadKeys.__dataclass_fields__:
            if hasattr(module, name.upper()):
                assert getattr(module, name.upper()) == getattr(table, name), (workload, name)
        assert workload_keys(workload) is table


def test_a_workload_registered_at_run_time_is_read_from_its_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType("tests_keys_fast_workload")
    module.KEYS = {}
    module.RUN_LENGTH, module.TENSORS, module.SAMPLERS = "epochs", "WGAE", ("sgld",)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(WORKLOADS, "runtime", module.__name__)
    table = workload_keys("runtime")
    assert (table.run_length, table.tensors, table.samplers) == ("epochs", "WGAE", ("sgld",))
    assert (table.minibatches, table.has_prior, table.optimisers, table.defaults) == (
        True,
        True,
        (),
        {},
    )
    with pytest.raises(ValueError, match="unknown workload 'nope'"):
        workload_keys("nope")


SEEDS = "space: {seed: {grid: [0, 1]}}"
#: (workload, the spec's keys, the path its refusal names, then the reason: a string, or the
#: config whose ``resolve_config`` error is the reason, with the same words)
SWEEP_REFUSED: list[tuple[str, str, str, str | dict[str, Any]]] = [
    (
        "cifar_resnet18",
        f"fixed: {{epochs: 9223372036854775808}}\n{SEEDS}",
        "fixed.epochs",
        "key 'epochs': 9223372036854775808 is above the maximum 10000",
    ),
    # a format string out of range, in fixed: the error names the key where the spec sets it
    (
        "gaussian",
        f"fixed: {{format: 'fixed<8,300>'}}\n{SEEDS}",
        "fixed.format",
        {"format": "fixed<8,300>"},
    ),
    # an impossible combination: low-precision weights needed, the format is fp32
    (
        "gaussian",
        f"fixed: {{accumulator: vc}}\n{SEEDS}",
        "fixed.accumulator",
        {"accumulator": "vc"},
    ),
    # a workload's own check (workloads.config.checks): cyclical epochs not a multiple of cycles
    (
        "mnist_mlp",
        f"fixed: {{schedule: cyclical, epochs: 10, cycles: 3}}\n{SEEDS}",
        "fixed.cycles",
        {"schedule": "cyclical", "epochs": 10, "cycles": 3},
    ),
    # a bad format as the second value of an axis, after a first one that runs
    (
        "gaussian",
        "space: {seed: {grid: [0, 1]}, weight_format: {grid: ['fixed<8,3>', 'blok<8>']}}",
        "space.weight_format.grid[1]",
        {"weight_format": "blok<8>"},
    ),
    # every value runs with the other axis's first value; one combination cannot run
    (
        "gaussian",
        "space: {accumulator: {grid: [full, vc]}, format: {grid: [fixed, fp32]}}",
        "space",
        {"accumulator": "vc", "format": "fp32"},
    ),
]


@pytest.mark.parametrize(("workload", "keys", "path", "reason"), SWEEP_REFUSED)
def test_sweep_cli_refuses_a_bad_spec_before_torch_is_imported(
    tmp_path: Path, workload: str, keys: str, path: str, reason: str | dict[str, Any]
) -> None:
    """``python -m orchestrator.sweep FILE --dry-run`` with an absurd value, a bad format string
    or an impossible precision combination, in ``fixed``, in an axis or across two axes: exit
    2, the one line ``FILE: key.path: reason``, and no torch, Ray or MLflow imported to say it
    (the trainable, which needs torch, is imported only once a sweep runs)."""
    bad = tmp_path / "bad.yaml"
    objective = "w2" if workload in ("gaussian", "mixture") else "test_error"  # one it reports
    bad.write_text(f"name: t\nworkload: {workload}\nobjectives: {{{objective}: min}}\n{keys}\n")
    if isinstance(reason, dict):
        with pytest.raises(ValueError) as exc:
            resolve_config({"workload": workload, **reason})
        combo = ", ".join(f"{k}={v!r}" for k, v in reason.items())
        reason = (
            f"the combination {combo} cannot run: {exc.value}"
            if path == "space"
            else str(exc.value)
        )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "orchestrator.sweep", str(bad), "--dry-run"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert done.returncode == 2 and lines == [f"error: {bad}: {path}: {reason}"]
    imported = _imported(done.stderr)
    assert "orchestrator.spec" in imported
    assert not _heavy(imported)
