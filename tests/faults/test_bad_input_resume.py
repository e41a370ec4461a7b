"""Bad input around a sweep directory: damaged ``sweep.json``,
``spec.yaml`` and ``trials.parquet`` on ``--resume`` say in one line which file and what to do
(exit 2, before Ray or MLflow start), and a sweep larger than ``LARGE_SWEEP`` trials is launched
only with ``--yes``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from orchestrator import driver, sweep
from orchestrator.store import DamagedFile, ResultsStore
from tests.orchestrator.helpers import write_spec

pytestmark = pytest.mark.faults

SPEC = """\
name: damaged
workload: gaussian
objectives: {w2: min}
fixed: {steps: 10, burn_in: 0}
space:
  seed: {grid: [0, 1, 2, 3]}
"""


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = sweep.main(args)
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines()


@pytest.fixture
def swept(tmp_path: Path) -> tuple[Path, Path, ResultsStore]:
    """A spec and its sweep directory as an interrupted sweep leaves it (spec.yaml, sweep.json,
    one row), nothing running."""
    spec = write_spec(tmp_path, SPEC, "damaged.yaml")
    store = ResultsStore(tmp_path / "results", "damaged")
    store.write_spec(spec.read_text())
    store.write_meta({"sweep_id": "abc", "parent_run_id": "r0", "tracking_uri": "sqlite:///x"})
    store.write_trial_row({"trial_id": "t0", "status": "ok", "w2": 0.1})
    return spec, tmp_path / "results", store


SWEEP_JSON = {
    "garbage bytes": b"\x00\xff\xfe garbage",
    "truncated": b'{"sweep_id": "abc", "parent_ru',
    "empty": b"",
    "a list": b"[1, 2, 3]",
    "keys missing": b'{"sweep_id": "abc"}',
}


@pytest.mark.parametrize("case", sorted(SWEEP_JSON))
def test_damaged_sweep_json_on_resume(
    case: str,
    swept: tuple[Path, Path, ResultsStore],
    capsys: pytest.CaptureFixture[str],
    fault_log: Callable[..., None],
) -> None:
    spec, results, store = swept
    (Path(store.path) / "sweep.json").write_bytes(SWEEP_JSON[case])
    code, lines = _cli([str(spec), "--resume", "--results", str(results)], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert f"{store.path}/sweep.json is damaged" in lines[0], lines
    assert "start the sweep again without --resume" in lines[0]
    assert not (results.parent / "mlflow.db").exists()  # refused before MLflow (and Ray)
    fault_log(
        "bad input: damaged sweep.json on --resume",
        tried=1,
        tracebacks=0,
        outcome="exit 2, one line naming the file and what to do",
    )


def test_damaged_spec_yaml_on_resume(
    swept: tuple[Path, Path, ResultsStore],
    capsys: pytest.CaptureFixture[str],
    fault_log: Callable[..., None],
) -> None:
    spec, results, store = swept
    saved = Path(store.path) / "spec.yaml"
    saved.write_bytes(b"name: damaged\n\xff\xfe\x00")
    code, lines = _cli([str(spec), "--resume", "--results", str(results)], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert f"{saved} is damaged (not UTF-8 text at byte 14)" in lines[0], lines
    assert "copy the spec file the sweep ran over it" in lines[0]
    saved.write_text(SPEC[:40])  # readable, but cut short: not the spec the sweep ran
    code, lines = _cli([str(spec), "--resume", "--results", str(results)], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "differs from the spec the sweep ran" in lines[0] and str(saved) in lines[0], lines
    fault_log(
        "bad input: damaged spec.yaml on --resume",
        tried=2,
        tracebacks=0,
        outcome="exit 2, one line naming the file and what to do",
    )


def test_damaged_trials_parquet_is_rebuilt_from_the_rows(
    swept: tuple[Path, Path, ResultsStore], fault_log: Callable[..., None]
) -> None:
    """trials.parquet is never read back on --resume: consolidation rebuilds it from the row
    files, so a damaged copy is replaced, not trusted."""
    _, _, store = swept
    consolidated = Path(store.path) / "trials.parquet"
    consolidated.write_bytes(b"PAR1 this is not a parquet file")
    table = store.consolidate()
    assert table.column("trial_id").to_pylist() == ["t0"]
    assert pq.read_table(consolidated).column("w2").to_pylist() == [0.1]
    fault_log(
        "bad input: damaged trials.parquet on --resume",
        tried=1,
        tracebacks=0,
        outcome="rebuilt from the row files; no row lost",
    )


def test_store_reads_raise_damaged_file_naming_it(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path, "s")
    store.write_bytes("sweep.json", json.dumps({"sweep_id": 1}).encode())
    with pytest.raises(DamagedFile, match=r"s/sweep\.json is damaged \(no parent_run_id\)"):
        store.read_meta()
    store.write_meta({"sweep_id": "a", "parent_run_id": "b"})
    assert store.read_meta() == {"sweep_id": "a", "parent_run_id": "b"}


# ---------------------------------------------------------------------------------------------
# a sweep larger than the safety limit asks for --yes


def test_a_sweep_over_the_limit_needs_yes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fault_log: Callable[..., None],
) -> None:
    """The limit lowered to 3 for a 4-trial spec (the logic, not 10,000 validations): without
    --yes one line and exit 2, nothing written; with --yes the launch goes on (here to the next
    check: nothing to resume); --dry-run lists it either way."""
    monkeypatch.setattr(driver, "LARGE_SWEEP", 3)
    spec = write_spec(tmp_path, SPEC, "big.yaml")
    results = tmp_path / "results"
    code, lines = _cli([str(spec), "--results", str(results)], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0] == (
        f"error: {spec}: space: 4 trials, more than 3: check the search space (--dry-run lists "
        "it), then launch it with --yes"
    )
    assert not results.exists() and not (tmp_path / "mlflow.db").exists()
    code, lines = _cli([str(spec), "--resume", "--yes", "--results", str(results)], capsys)
    assert code == 2 and "no sweep to resume" in lines[0], lines  # past the size check
    assert sweep.main([str(spec), "--dry-run"]) == 0
    assert "4 trials" in capsys.readouterr().out
    fault_log(
        "bad input: a sweep over 10,000 trials without --yes",
        tried=1,
        tracebacks=0,
        outcome="exit 2, one line asking for --yes; nothing written",
    )


def test_the_limit_is_ten_thousand() -> None:
    assert driver.LARGE_SWEEP == 10_000


def test_a_large_grid_is_refused_before_its_trials_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault_log: Callable[..., None]
) -> None:
    """20,000 trials (a 20 x 1,000 grid): the refusal comes from the count, before the trials
    are expanded and resolved one by one (about a millisecond each: 20 s here)."""
    seeds = ", ".join(map(str, range(1000)))
    spec = write_spec(
        tmp_path, SPEC.replace("[0, 1, 2, 3]", f"[{seeds}]") + "  lr: {grid: [" +
        ", ".join(f"{0.001 * (i + 1):.3f}" for i in range(20)) + "]}\n", "big.yaml"
    )  # fmt: skip
    cpu = time.process_time()
    code, lines = _cli([str(spec), "--results", str(tmp_path / "results")], capsys)
    cpu = time.process_time() - cpu
    assert code == 2 and "20,000 trials, more than 10,000" in lines[0] and "--yes" in lines[0]
    assert cpu < 3.0, f"{cpu:.1f} s of CPU before the refusal"
    fault_log(
        "bad input: a sweep over 10,000 trials without --yes",
        tried=1,
        tracebacks=0,
        outcome="exit 2, one line asking for --yes; nothing written",
    )
