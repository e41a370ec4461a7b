"""Property-based fuzz of the spec loader.

Every input either loads (a :class:`orchestrator.spec.Spec`) or raises exactly one
:class:`orchestrator.spec.SpecError` whose text is ONE line: ``FILE: line L, column C: reason`` for
YAML that cannot be read, ``FILE: key.path: reason`` (or ``FILE: reason``) for YAML that reads
but cannot run. Any other exception (a traceback for the user) fails the test, and so does an
input that takes a second of CPU ("refused at once, never a hang"; CPU, not wall time, since
the machine is shared) or ten seconds of wall time. Loaded specs also go through ``dry_run``.

Inputs: mangled shipped specs (characters inserted, deleted, replaced, lines swapped, NUL and
binary bytes), spec documents built from the real schema with junk values at any key (wrong
types, junk format strings, huge and negative numbers, NaN and infinities), random mappings,
deep nesting, YAML tags and alias bombs. The examples are derandomized (the same inputs every
run) and counted into the README's reliability table through ``fault_log``.
"""

from __future__ import annotations

import copy
import glob
import io
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.spec import Spec, SpecError, load_spec, parse_spec
from orchestrator.sweep import dry_run
from orchestrator.yamlio import MAX_CHARS, MAX_DEPTH, MAX_NODES, load_yaml
from workloads import WORKLOADS
from workloads.config.resolve import keys_for

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]
SHIPPED = {Path(p).name: Path(p).read_text() for p in sorted(glob.glob(f"{REPO}/search_spaces/*"))}
FILE = "fuzz.yaml"
YAML_ERROR = re.compile(r"fuzz\.yaml: line \d+, column \d+: \S.*")
OTHER_ERROR = re.compile(r"fuzz\.yaml: \S.*")
LIMIT_S = 1.0  # "refused at once": every input well under a second (CPU time)
WALL_S = 10.0  # and no blocking wait


@pytest.fixture(autouse=True)
def _warm() -> None:
    """Import what validation imports (torch, the workloads) before anything is timed."""
    parse_spec(SHIPPED["smoke.yaml"], FILE)


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,  # timed by `outcome` in CPU time (a shared machine's load is no hang)
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def outcome(text: str, counts: Counter[str]) -> Spec | SpecError:
    """``parse_spec(text)``: a Spec, or a SpecError of one line of the right form; either after
    under :data:`LIMIT_S` of CPU time (the machine is shared: wall time there measures the other
    processes; a blocking wait is caught by the :data:`WALL_S` cap)."""
    counts["tried"] += 1
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        result: Spec | SpecError = parse_spec(text, FILE)
    except SpecError as exc:
        result = exc
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert cpu < LIMIT_S and wall < WALL_S, f"{cpu:.2f} s CPU, {wall:.2f} s for {text[:200]!r}"
    if isinstance(result, SpecError):
        exc = result
        message = str(exc)
        assert "\n" not in message and "\r" not in message, message
        try:
            load_yaml(text, FILE)
        except SpecError:
            # unreadable YAML: line and column (a text over the size limit: no place to name)
            assert YAML_ERROR.fullmatch(message) or "a file may hold" in message, message
        else:
            assert OTHER_ERROR.fullmatch(message), message
        counts["refused"] += 1
    else:
        dry_run(result, io.StringIO())  # what --dry-run prints for it: no traceback either
        counts["loaded"] += 1
    return result


def record(fault_log: Callable[..., None], name: str, counts: Counter[str]) -> None:
    fault_log(
        name,
        tried=counts["tried"],
        tracebacks=0,
        outcome=f"{counts['loaded']} loaded, {counts['refused']} refused in one line, "
        "none over 1 s",
    )


# ---------------------------------------------------------------------------------------------
# strategies


JUNK_FORMATS = (
    "fixed<8,3>", "fixed<0,0>", "fixed<99,-3>", "fixed<8,3", "fixed<>", "fixed<1e9,2>",
    "float<5,10>", "float<0,99>", "float<9,9>", "float<-1,2>", "block<8>", "block<-1>",
    "block<100000000000000000000>", "fp32", "fp16", "fixed", "float", "block", "<<<>>>", "",
    " ", "\x00", "nan", "fixed<8,3>,fixed<8,3>", "FIXED<8,3>", "fixed<８,３>",
)  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**31, 2**32, 2**63, 2**64, 10**30, -(2**63), -1, 0, 1]),
    st.floats(),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 5e-324, -0.0]),
    st.text(max_size=20),
    st.sampled_from(JUNK_FORMATS),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def spec_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A spec built from the real schema (top-level keys, the workload's keys, the axis kinds),
    with junk drawn anywhere: most documents get past the YAML and reach the validator."""
    workload = draw(st.sampled_from(sorted(WORKLOADS)) | values)
    known = isinstance(workload, str) and workload in WORKLOADS
    keys = sorted(keys_for(workload)) if known else ["lr", "bits"]
    key = st.sampled_from(keys) | st.text(max_size=8)
    axis = st.one_of(
        st.fixed_dictionaries({"grid": st.lists(values, max_size=4)}),
        st.fixed_dictionaries({"choice": st.lists(values, max_size=4)}),
        st.dictionaries(
            st.sampled_from(["uniform", "loguniform", "randint"]),
            st.lists(scalars, min_size=2, max_size=2),
            min_size=1,
            max_size=1,
        ),
        values,
    )
    doc: dict[str, Any] = {
        "name": draw(st.sampled_from(["fuzz", "../escape", "/abs", "a b", ""]) | values),
        "workload": workload,
        "objectives": draw(
            st.dictionaries(
                st.sampled_from(["test_error", "w2", "bits", "nll", "reference"]) | st.text(),
                st.sampled_from(["min", "max"]) | values,
                max_size=3,
            )
            | values
        ),
    }
    optional = {
        "search": st.fixed_dictionaries(
            {},
            optional={
                "algorithm": st.sampled_from(["grid", "random", "optuna"]) | values,
                "num_samples": scalars,
                "max_concurrent": scalars,
                "seed": scalars,
            },
        )
        | values,
        "scheduler": st.sampled_from(["none", "asha"])
        | st.dictionaries(st.sampled_from(["type", "grace_period", "max_t", "metric"]), scalars)
        | values,
        "resources": st.dictionaries(st.sampled_from(["cpu", "gpu", "custom"]), values) | values,
        "max_failures": scalars,
        "fixed": st.dictionaries(key, values, max_size=5) | values,
        "space": st.dictionaries(key, axis, max_size=4) | values,
        "junk": values,
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            doc[name] = draw(strategy)
    return doc


VALID_DOCS = [load_yaml(text, name) for name, text in SHIPPED.items() if name.endswith(".yaml")]


def _slots(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) of a loaded document, depth first."""
    out: list[tuple[Any, Any]] = []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    )
    for key, value in items:
        out.append((doc, key))
        out.extend(_slots(value))
    return out


@st.composite
def mutated_documents(draw: st.DrawFn) -> Any:
    """A shipped spec (as data) with up to three edits at random key paths: a value replaced by
    junk, a key deleted, a junk key added."""
    doc = copy.deepcopy(draw(st.sampled_from(VALID_DOCS)))
    for _ in range(draw(st.integers(0, 3))):
        slots = _slots(doc)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if op == "replace":
            container[key] = draw(values)
        elif op == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.text(max_size=8))] = draw(values)
        else:
            container.append(draw(values))
    return doc


SPECIAL = ["\x00", "\t", ":", "- ", "[", "{", "&a", "*a", "!!", "'", '"', "\ufeff", "\x85"]


@st.composite
def mangled_texts(draw: st.DrawFn) -> str:
    """A shipped spec with a few random edits: characters inserted, deleted or replaced (NUL,
    control and non-ASCII characters included), lines swapped or re-indented."""
    text = SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "swap", "indent", "bytes"]))
        i = draw(st.integers(0, max(len(text) - 1, 0)))
        junk = draw(
            st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=4)
            | st.sampled_from(SPECIAL)
        )
        if op == "insert":
            text = text[:i] + junk + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 20)) :]
        elif op == "replace":
            text = text[:i] + junk + text[i + len(junk) :]
        elif op == "bytes":
            raw = draw(st.binary(min_size=1, max_size=6))
            text = text[:i] + raw.decode("latin-1") + text[i:]
        else:
            lines = text.splitlines()
            j = draw(st.integers(0, len(lines) - 1))
            k = draw(st.integers(0, len(lines) - 1))
            if op == "swap":
                lines[j], lines[k] = lines[k], lines[j]
            else:
                lines[j] = " " * draw(st.integers(1, 5)) + lines[j]
            text = "\n".join(lines)
    return text


# ---------------------------------------------------------------------------------------------
# the fuzz


def test_mangled_shipped_specs_load_or_fail_in_one_line(fault_log: Callable[..., None]) -> None:
    counts: Counter[str] = Counter()

    @fuzz_settings(400)
    @given(mangled_texts())
    def check(text: str) -> None:
        outcome(text, counts)

    check()
    assert counts["refused"] > 0 and counts["loaded"] > 0  # the edits reach both outcomes
    record(fault_log, "spec: mangled YAML (shipped specs edited)", counts)


def test_junk_values_anywhere_in_a_spec_fail_in_one_line(fault_log: Callable[..., None]) -> None:
    counts: Counter[str] = Counter()

    @fuzz_settings(600)
    @given(spec_documents() | mutated_documents())
    def check(doc: dict[str, Any]) -> None:
        outcome(yaml.safe_dump(doc, allow_unicode=True), counts)

    check()
    assert counts["refused"] > 0 and counts["loaded"] > 0
    record(fault_log, "spec: junk values, wrong types, huge/negative numbers", counts)


def test_random_text_and_mappings_fail_in_one_line(fault_log: Callable[..., None]) -> None:
    counts: Counter[str] = Counter()

    @fuzz_settings(300)
    @given(st.text(max_size=200) | values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)))
    def check(text: str) -> None:
        outcome(text, counts)

    check()
    record(fault_log, "spec: random text and mappings", counts)


def test_binary_files_fail_in_one_line(tmp_path: Path, fault_log: Callable[..., None]) -> None:
    """Bytes on disk (not UTF-8, NUL, control bytes) through :func:`load_spec`."""
    counts: Counter[str] = Counter()
    path = tmp_path / FILE

    @fuzz_settings(200)
    @given(st.binary(max_size=300) | mangled_texts().map(lambda t: t.encode("utf-8", "replace")))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        counts["tried"] += 1
        try:
            load_spec(path)
        except SpecError as exc:
            message = str(exc)
            assert "\n" not in message and message.startswith(f"{path}: "), message
            counts["refused"] += 1
        else:
            counts["loaded"] += 1

    check()
    assert counts["refused"] > 0
    record(fault_log, "spec: binary bytes on disk", counts)


# ---------------------------------------------------------------------------------------------
# the named attacks, each refused at once with its line and column


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs": level k lists ``width`` aliases of level k-1 (width**levels leaves)."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for k in range(1, levels):
        lines.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


DEEP = "spec: deep nesting (thousands of levels)"
TAGS = "spec: YAML tags (!!python/object/apply, local tags)"
ALIASES = "spec: alias bombs and recursive aliases"
CHARS = "spec: NUL, control characters, lone surrogates"
SYNTAX = "spec: huge integers, duplicate keys, bad syntax"
#: case -> (class in the README table, text, what the one line must say)
ATTACKS = {
    "nested 5,000 deep (flow)": (DEEP, "[" * 5000 + "]" * 5000, f"nested deeper than {MAX_DEPTH}"),
    "nested 3,000 deep (block)": (DEEP, "- " * 3000 + "x", f"nested deeper than {MAX_DEPTH}"),
    "nested 300 deep (indented)": (
        DEEP,
        "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "x",
        f"nested deeper than {MAX_DEPTH}",
    ),
    "nested 2,000 deep (mappings)": (DEEP, "{a: " * 2000 + "1" + "}" * 2000, "nested deeper"),
    "python tag (object/apply)": (
        TAGS,
        "name: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
        "YAML tags are not allowed (found !!python/object/apply:os.system)",
    ),
    "python tag (name)": (TAGS, "x: !!python/name:os.system\n", "YAML tags are not allowed"),
    "local tag": (TAGS, "x: !custom 3\n", "YAML tags are not allowed (found !custom)"),
    "set tag": (TAGS, "x: !!set {a, b}\n", "YAML tags are not allowed (found !!set)"),
    "alias bomb (billion laughs)": (ALIASES, alias_bomb(), f"more than {MAX_NODES} values"),
    "recursive alias": (ALIASES, "a: &x [1, *x]\n", "refers to a node containing it"),
    "NUL byte": (CHARS, "name: fuzz\nworkload: gau\x00ssian\n", "unacceptable character 0x00"),
    "escape character": (CHARS, "name: \x1b[31m\n", "unacceptable character 0x1b"),
    "lone surrogate": (CHARS, "name: \udcff\n", "unacceptable character"),
    "huge integer": (SYNTAX, "x: " + "9" * 5000 + "\n", "an integer of 5000 digits"),
    "bad hex integer": (SYNTAX, "x: 0x_\n", "cannot read this value"),
    "key twice": (SYNTAX, "name: a\nname: b\n", "key 'name' written twice"),
    "unhashable key": (SYNTAX, "? [a, b]\n: 1\n", "a key cannot be a list"),
    "two documents": (SYNTAX, "name: a\n---\nname: b\n", "YAML syntax error"),
    "tab indentation": (SYNTAX, "name: a\n\tworkload: b\n", "YAML syntax error"),
    "more than a file may hold": (SYNTAX, "#" * (MAX_CHARS + 1), "more than"),
}


@pytest.mark.parametrize("case", sorted(ATTACKS))
def test_attacks_refused_at_once_with_line_and_column(
    case: str, fault_log: Callable[..., None]
) -> None:
    kind, text, reason = ATTACKS[case]
    result = outcome(text, Counter())  # timed: under LIMIT_S of CPU
    assert isinstance(result, SpecError), case
    message = str(result)
    assert (YAML_ERROR if "more than" not in reason else OTHER_ERROR).fullmatch(message), message
    assert reason in message, message
    fault_log(kind, tried=1, tracebacks=0, outcome="refused in one line (line, column), < 1 s")


def test_line_and_column_point_at_the_problem() -> None:
    text = "name: t\nworkload: gaussian\nobjectives: {w2: min}\nfixed: {lr: !!python/none x}\n"
    with pytest.raises(SpecError, match=r"^fuzz\.yaml: line 4, column 13: YAML tags"):
        parse_spec(text, FILE)
    with pytest.raises(SpecError, match=r"^fuzz\.yaml: line 2, column 7: .*0x00"):
        parse_spec("name: t\nwork: \x00\n", FILE)


def test_anchors_and_merge_keys_within_limits_still_load() -> None:
    """The limits refuse bombs, not ordinary YAML: a shared anchor and a merge key load."""
    text = SHIPPED["smoke.yaml"].replace("fixed:\n", "fixed: &fixed\n")
    spec = parse_spec(text, FILE)
    assert spec.fixed["steps"] == 1500
    doc = load_yaml("base: &b {lr: 1, steps: 2}\nrun:\n  <<: *b\n  lr: 3\n", FILE)
    assert doc["run"] == {"lr": 3, "steps": 2}
    assert len(load_yaml(alias_bomb(levels=4), FILE)["a3"]) == 9  # 9**4 leaves: allowed
    nested = load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH, FILE)
    for _ in range(MAX_DEPTH - 1):
        (nested,) = nested
    assert nested == []
    with pytest.raises(SpecError, match=f"line 1, column {MAX_DEPTH + 1}: nested deeper"):
        load_yaml("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), FILE)
