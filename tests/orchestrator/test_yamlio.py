"""Safe YAML of user text (orchestrator.yamlio): decimal floats in any spelling, timestamps kept
as strings, and every way a file could crash or stall the reader refused in one line naming the
file and where: a key written twice, a tag, nesting past MAX_DEPTH, an alias bomb, a
self-referring alias, a huge integer, bytes that are not UTF-8, a file too long."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import yamlio
from orchestrator.errors import SpecError
from orchestrator.yamlio import decode, load_yaml, parse_scalar, read_text


def _refusal(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        load_yaml(text, "f.yaml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("f.yaml: ")
    return message


def test_floats_in_any_decimal_spelling_and_timestamps_as_written() -> None:
    doc = load_yaml("a: 1e-3\nb: 5E+2\nc: .5\nd: 2024-13-45\ne: 3\nf: -.inf\n", "f.yaml")
    assert doc == {"a": 0.001, "b": 500.0, "c": 0.5, "d": "2024-13-45", "e": 3, "f": -float("inf")}
    assert isinstance(doc["b"], float) and isinstance(doc["e"], int)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("a: 1\nb: 2\na: 3\n", "line 3, column 1: key 'a' written twice in one mapping"),
        ("a: !!python/object/apply:os.system [ls]\n", "line 1, column 4: YAML tags are not"),
        ("a: !custom 1\n", "YAML tags are not allowed (found !custom)"),
        ("[" * (yamlio.MAX_DEPTH + 1), f"nested deeper than {yamlio.MAX_DEPTH} levels"),
        ("a: &x [*x]\n", "alias *x refers to a node containing it"),
        (f"a: {'9' * (yamlio.MAX_INT_DIGITS + 1)}\n", f"an integer of {yamlio.MAX_INT_DIGITS + 1}"),
        ("a: [1, 2\n", "YAML syntax error"),
        ("a: \x00\n", "line 1, column 4: YAML syntax error: unacceptable character 0x00"),
    ],
)
def test_refused_in_one_line_naming_the_file_and_where(text: str, said: str) -> None:
    assert said in _refusal(text)


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    """Ten levels of ten aliases each would be 10^10 values once walked."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]")
    assert f"expands to more than {yamlio.MAX_NODES} values" in _refusal("\n".join(lines))


def test_a_merge_key_may_be_overridden() -> None:
    assert load_yaml("base: &b {x: 1, y: 2}\nc: {<<: *b, y: 3}\n", "f.yaml")["c"] == {
        "x": 1,
        "y": 3,
    }


def test_text_too_long_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlio, "MAX_CHARS", 10)
    assert "11 characters is more than the 10 a file may hold" in _refusal("a: 12345678")


def test_bytes_that_are_not_utf8_are_refused_where_they_stand(tmp_path: Path) -> None:
    assert decode("a: é\n".encode(), "f.yaml") == "a: é\n"
    with pytest.raises(
        SpecError, match=r"^f\.yaml: line 2, column 4: not UTF-8 text \(byte 0xff\)"
    ):
        decode(b"a: 1\nb: \xff\n", "f.yaml")
    path = tmp_path / "s.yaml"
    path.write_bytes(b"a: 1\n")
    assert read_text(path) == "a: 1\n"
    with pytest.raises(SpecError, match="cannot read the file"):
        read_text(tmp_path / "missing.yaml", "missing.yaml")


def test_parse_scalars() -> None:
    assert parse_scalar("2e-3") == 0.002  # YAML 1.1 would read this as a string
    assert parse_scalar("0.5") == 0.5 and parse_scalar("3") == 3
    assert parse_scalar("true") is True and parse_scalar("null") is None
    assert (
        parse_scalar("'fixed<8,3>'") == "fixed<8,3>" and parse_scalar("fixed<8,3>") == "fixed<8,3>"
    )
