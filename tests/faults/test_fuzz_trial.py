"""Bad input to ``python -m orchestrator.trial KEY=VALUE`` and to every number a key takes.


In process (many inputs): :func:`orchestrator.trial.parse_assignments` then
:func:`orchestrator.trial.resolve` either gives a config or raises ONE
:class:`orchestrator.trial.TrialConfigError` whose one-line text names the key; never another
exception, never more than a second. For every numeric key of every workload, absurd values
(2**63, ±10**19, ±inf, NaN, 1e308) are refused at once naming that key, and the key has both
bounds. In subprocesses (a sample): the real CLIs exit 2 with exactly one line on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.trial import TrialConfigError, parse_assignments, resolve
from workloads import WORKLOADS
from workloads.config.resolve import keys_for

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]
LIMIT_S = 1.0  # CPU seconds: "refused at once"
ABSURD = (2**63, 10**19, -(10**19), 2**1000, float("inf"), -float("inf"), float("nan"), 1e308)


def timed_resolve(raw: dict[str, Any]) -> tuple[Any, float]:
    """``resolve(raw)`` or the exception it raised, and the CPU seconds it took (the machine is
    shared: wall time there measures the other processes; a 10 s wall cap catches a blocking
    wait)."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        result: Any = resolve(raw)
    except Exception as exc:
        result = exc
    assert time.perf_counter() - wall < 10.0, f"blocked on {raw!r}"
    return result, time.process_time() - cpu


def numeric_keys() -> list[tuple[str, str]]:
    return sorted(
        (workload, name)
        for workload in WORKLOADS
        for name, key in keys_for(workload).items()
        if key.type in (int, float)
    )


@pytest.fixture(autouse=True, scope="module")
def _warm() -> None:
    """Import what validation imports before anything is timed."""
    for workload in WORKLOADS:
        resolve({"workload": workload})


def test_every_numeric_key_refuses_absurd_values_at_once(fault_log: Callable[..., None]) -> None:
    keys = numeric_keys()
    assert len(keys) > 50  # every workload's numeric keys, not a handful
    tried = 0
    for workload, name in keys:
        key = keys_for(workload)[name]
        assert key.min is not None and key.max is not None, f"{workload}.{name}: unbounded"
        assert key.max <= 10**12, f"{workload}.{name}: max {key.max} no real run uses"
        for value in ABSURD:
            if key.type is int and isinstance(value, float):
                continue  # a float for an int key is a type error, tested below
            tried += 1
            result, elapsed = timed_resolve({"workload": workload, name: value})
            assert isinstance(result, TrialConfigError), (workload, name, value, result)
            message = str(result)
            assert f"key {name!r}" in message and "\n" not in message, message
            assert len(message) < 300, message  # the value is shown short, not 300 digits
            assert elapsed < LIMIT_S, f"{workload} {name}={value}: {elapsed:.2f} s"
        for bound in (key.min, key.max)[int(key.min_open) :]:  # the bounds pass their check
            assert key.check(name, key.type(bound)) == key.type(bound)
    fault_log(
        "trial: absurd number for every numeric key of every workload",
        tried=tried,
        tracebacks=0,
        outcome=f"all refused naming the key, < 1 s each ({len(keys)} workload keys)",
    )


def test_huge_epochs_from_the_issue_is_refused_at_once() -> None:
    result, elapsed = timed_resolve(
        parse_assignments(["workload=cifar_resnet18", "epochs=9223372036854775808"])
    )
    assert isinstance(result, TrialConfigError) and "key 'epochs'" in str(result)
    assert elapsed < LIMIT_S


# ---------------------------------------------------------------------------------------------
# hypothesis: key=value argument lists

JUNK_TEXT = (
    "", "null", "~", "[[[[", "]]", "{a: 1}", "[1, 2]", "!!python/object/apply:os.system [ls]",
    "!!binary aGVsbG8=", "&a [*a]", "\x00", "\x1b[31m", "nan", ".nan", "-.inf", "1e999",
    "9223372036854775808", "-9223372036854775809", "0x_", "0b2", "1_000", "1:30", "2024-13-45",
    "fixed<8,3>", "fixed<0,0>", "float<0,99>", "block<-1>", "fp32", "yes", "no", "on", "'",
    '"', "a: b: c", "- x", "#", "=", "==", "é", "\udcff", "9" * 5000,
)  # fmt: skip


@st.composite
def argument_lists(draw: st.DrawFn) -> list[str]:
    workload = draw(st.sampled_from(sorted(WORKLOADS)) | st.text(max_size=8))
    names = sorted(keys_for(workload)) if workload in WORKLOADS else ["lr"]
    args = [f"workload={workload}"] if draw(st.booleans()) or workload in WORKLOADS else []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(names) | st.text(max_size=6))
        value = draw(
            st.sampled_from(JUNK_TEXT)
            | st.integers().map(str)
            | st.floats().map(repr)
            | st.text(max_size=12)
        )
        args.append(f"{name}={value}" if draw(st.integers(0, 9)) else name + value)
    return args


def test_key_value_arguments_resolve_or_fail_in_one_line(fault_log: Callable[..., None]) -> None:
    counts: Counter[str] = Counter()

    @settings(
        max_examples=500,
        deadline=None,  # timed by timed_resolve
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(argument_lists())
    def check(args: list[str]) -> None:
        counts["tried"] += 1
        try:
            raw = parse_assignments(args)
        except TrialConfigError as exc:
            result: Any = exc
        else:
            result, elapsed = timed_resolve(raw)
            assert elapsed < LIMIT_S, f"{elapsed:.2f} s for {args!r}"
        if isinstance(result, Exception):
            assert isinstance(result, TrialConfigError), (args, repr(result))
            message = " ".join(str(result).split())  # as the CLI prints it
            assert message.startswith(("key ", "argument ")), message
            counts["refused"] += 1
        else:
            counts["resolved"] += 1

    check()
    assert counts["refused"] > 0 and counts["resolved"] > 0
    fault_log(
        "trial: key=value junk (tags, NaN, huge numbers, NUL, mangled YAML)",
        tried=counts["tried"],
        tracebacks=0,
        outcome=f"{counts['resolved']} resolved, {counts['refused']} refused in one line "
        "naming the key, none over 1 s",
    )


# ---------------------------------------------------------------------------------------------
# the real CLIs, in subprocesses, on a sample

SPEC_HEAD = "name: t\nworkload: gaussian\nobjectives: {w2: min}\n"
BOMB = ["a0: &a0 [" + ", ".join(["x"] * 10) + "]\n"] + [
    f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]\n" for k in range(1, 9)
]
SWEEP_FILES: dict[str, bytes] = {
    "deep.yaml": ("[" * 5000 + "]" * 5000).encode(),
    "tag.yaml": (SPEC_HEAD + "fixed: {lr: !!python/object/apply:os.system [ls]}\n").encode(),
    "bomb.yaml": (SPEC_HEAD + "".join(BOMB)).encode(),
    "binary.yaml": bytes(range(256)),
    "huge.yaml": (SPEC_HEAD + "fixed: {steps: 9223372036854775808}\n").encode(),
}
TRIAL_ARGS: list[list[str]] = [
    ["workload=cifar_resnet18", "epochs=9223372036854775808"],
    ["workload=gaussian", "lr=.nan", "x=!!python/object/apply:os.system [ls]"],
    ["workload=gaussian", "steps=" + "[" * 5000],
]


@pytest.mark.slow  # ~20 s of interpreter start-ups on two cores (the sweep CLI imports torch, Ray)
def test_real_clis_exit_2_with_one_line(tmp_path: Path, fault_log: Callable[..., None]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = []
    for name, data in SWEEP_FILES.items():
        (tmp_path / name).write_bytes(data)
        cmd = [sys.executable, "-m", "orchestrator.sweep", str(tmp_path / name), "--dry-run"]
        procs.append((name, cmd))
    for args in TRIAL_ARGS:
        procs.append((" ".join(args)[:60], [sys.executable, "-m", "orchestrator.trial", *args]))
    running = [
        (label, subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, errors="replace"))
        for label, cmd in procs
    ]  # fmt: skip
    for label, proc in running:
        _, err = proc.communicate(timeout=300)
        lines = err.strip().splitlines()
        assert proc.returncode == 2, (label, proc.returncode, err[-2000:])
        assert len(lines) == 1 and "Traceback" not in err, (label, err[-2000:])
        assert lines[0].startswith("error: "), (label, lines)
        if label.endswith(".yaml"):
            assert label in lines[0], lines[0]  # the file is named
    fault_log(
        "CLI: orchestrator.sweep --dry-run and orchestrator.trial on bad input",
        tried=len(running),
        tracebacks=0,
        outcome="exit 2, exactly one line on stderr",
    )
