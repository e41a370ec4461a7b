"""docs/keys.md is generated from the key table; the trial CLI's --keys listings."""

from __future__ import annotations

from pathlib import Path

from orchestrator.trial import main
from workloads.config.doc import builtin_workloads, render_markdown
from workloads.config.resolve import keys_for

DOC = Path(__file__).resolve().parents[3] / "docs" / "keys.md"


def test_docs_keys_md_is_the_generated_table() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/keys.md differs from the key table: "
        "run `python -m workloads.config.doc > docs/keys.md`"
    )


def test_every_key_of_every_workload_is_documented() -> None:
    text = render_markdown()
    for workload in builtin_workloads():
        assert f"## `{workload}`" in text
        for name in keys_for(workload):
            assert f"| `{name}` |" in text, (workload, name)


def test_keys_alone_lists_the_workloads(capsys) -> None:
    assert main(["--keys"]) == 0
    out = capsys.readouterr().out
    assert all(w in out for w in builtin_workloads())


def test_keys_of_a_workload_show_its_defaults(capsys) -> None:
    assert main(["--keys", "workload=mnist_mlp"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["lr"].split()[2] == "0.1" and lines["temperature"].split()[2] == "0.01"
    assert "has an effect with: sampler sghmc" in lines["friction"]
    assert main(["--keys", "workload=nope"]) == 2
