"""YAML of user text: search-space files and ``key=value`` arguments, loaded safely.

    doc = load_yaml(text, "search_spaces/bits.yaml")   # any problem -> SpecError, one line

The loader is PyYAML's ``SafeLoader`` (plain data only: no object is ever constructed from a
tag) with these changes, each closing a way a file could crash or stall the CLI:

- floats: PyYAML follows YAML 1.1, where ``1e-3`` (no dot) is a *string*. Researchers write step
  sizes that way, so any decimal float spelling (``1e-3``, ``5E+2``, ``.5``) reads as a float;
- timestamps stay the strings they were written as (``2024-13-45`` cannot crash the loader);
- a key written twice in one mapping is refused (YAML would silently keep the last one);
- explicit tags other than the core schema's (``!!str``, ``!!int``, ``!!float``, ``!!bool``,
  ``!!null``, ``!!seq``, ``!!map``) are refused, ``!!python/object/apply:...`` included;
- nesting deeper than :data:`MAX_DEPTH` levels is refused while composing (PyYAML's composer
  and constructor recurse once per level: thousands of ``[`` would end in a RecursionError);
- a document whose aliases expand to more than :data:`MAX_NODES` nodes (the "billion laughs"
  alias bomb) or that refers to itself is refused: PyYAML shares aliased nodes, but whatever
  walks the loaded data (validation, ``repr`` in an error message) would see every copy;
- text longer than :data:`MAX_CHARS` is refused before parsing.

Every error is a :class:`orchestrator.spec.SpecError` whose text is exactly one line:
``FILE: line L, column C: reason`` when the problem has a place in the text (syntax errors,
unacceptable characters such as NUL, tags, depth, bytes that are not UTF-8), else
``FILE: reason``.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent

from orchestrator.errors import SpecError

#: deepest nesting of sequences and mappings a document may have (a spec needs about 5)
MAX_DEPTH = 100
#: most nodes a document may hold with every alias expanded
MAX_NODES = 100_000
#: longest integer (digits) a value may have
MAX_INT_DIGITS = 100
#: longest text parsed (a search-space file is a few kilobytes)
MAX_CHARS = 1 << 20

_CORE_PREFIX = "tag:yaml.org,2002:"
_ALLOWED_TAGS = frozenset(
    {None, "!"} | {_CORE_PREFIX + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}
)


def _error(file: str, where: str, reason: str) -> SpecError:

    return SpecError(file, where, " ".join(reason.split()))


def _where(line: int, column: int) -> str:
    """``line L, column C`` (1-based) from a 0-based mark."""
    return f"line {line + 1}, column {column + 1}"


def _position(text: str, index: int) -> str:
    """``line L, column C`` of character ``index`` of ``text``."""
    line = text.count("\n", 0, index)
    return _where(line, index - (text.rfind("\n", 0, index) + 1))


class _Refused(yaml.MarkedYAMLError):
    """Well-formed YAML this loader refuses (a tag, the depth, an alias bomb, a bad value)."""

    def __init__(self, reason: str, mark: Any):
        super().__init__(problem=reason, problem_mark=mark)


class YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the changes listed in the module docstring."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> its node count with aliases expanded

    # ------------------------------------------------------------------ composing
    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            anchored = self.anchors.get(event.anchor)
            if anchored is not None and id(anchored) not in self._sizes:
                raise _Refused(
                    f"alias *{event.anchor} refers to a node containing it", event.start_mark
                )
            return super().compose_node(parent, index)
        if isinstance(event, ScalarEvent | CollectionStartEvent) and event.tag not in _ALLOWED_TAGS:
            shown = str(event.tag).replace(_CORE_PREFIX, "!!")
            raise _Refused(
                f"YAML tags are not allowed (found {shown}); write plain values",
                event.start_mark,
            )
        if isinstance(event, CollectionStartEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            if isinstance(event, CollectionStartEvent):
                self._depth -= 1
        self._sizes[id(node)] = size = 1 + sum(self._sizes[id(c)] for c in _children(node))
        if size > MAX_NODES:
            raise _Refused(
                f"expands to more than {MAX_NODES} values (aliases repeat their anchor's "
                "content); write the values out or use fewer aliases",
                node.start_mark,
            )
        return node

    # ------------------------------------------------------------------ constructing
    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
            raise _Refused(f"cannot read this value ({exc})", node.start_mark) from None

    def construct_yaml_int(self, node: Any) -> int:
        digits = sum(c.isalnum() for c in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise _Refused(
                f"an integer of {digits} digits (at most {MAX_INT_DIGITS})", node.start_mark
            )
        return super().construct_yaml_int(node)


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _construct_mapping(loader: YamlLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """A mapping, refusing a key written twice (and, as PyYAML does, an unhashable key)."""
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _CORE_PREFIX + "merge":  # `<<: *anchor`: its keys may be overridden
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            raise _Refused(f"a key cannot be a {type(key).__name__}", key_node.start_mark) from None
        if duplicate:
            raise _Refused(f"key {key!r} written twice in one mapping", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _construct_map(loader: YamlLoader, node: yaml.MappingNode) -> Any:
    data: dict[Any, Any] = {}
    yield data
    data.update(_construct_mapping(loader, node))


YamlLoader.add_constructor(_CORE_PREFIX + "map", _construct_map)
YamlLoader.add_constructor(_CORE_PREFIX + "int", YamlLoader.construct_yaml_int)
YamlLoader.add_constructor(_CORE_PREFIX + "timestamp", yaml.SafeLoader.construct_yaml_str)
YamlLoader.add_implicit_resolver(
    _CORE_PREFIX + "float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str, file: str) -> Any:
    """The one YAML document in ``text`` as plain data (dict, list, str, int, float, bool,
    None), or :class:`orchestrator.spec.SpecError` with one line naming ``file`` and where."""
    if len(text) > MAX_CHARS:
        raise _error(
            file, "", f"{len(text)} characters is more than the {MAX_CHARS} a file may hold"
        )
    try:
        loader = YamlLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:
        char = f"{exc.character:#04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise _error(
            file,
            _position(text, exc.position),
            f"YAML syntax error: unacceptable character {char}: {exc.reason}",
        ) from None
    except _Refused as exc:
        raise _error(
            file, _where(exc.problem_mark.line, exc.problem_mark.column), exc.problem
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        where = _where(mark.line, mark.column) if mark is not None else ""
        raise _error(file, where, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise _error(file, "", f"YAML syntax error: {exc}") from None
    except RecursionError:  # not expected (MAX_DEPTH bounds the recursion); never a traceback
        raise _error(file, "", f"YAML nested deeper than {MAX_DEPTH} levels") from None


def read_text(path: str | os.PathLike[str], file: str | None = None) -> str:
    """The UTF-8 text of the file at ``path`` (at most :data:`MAX_CHARS` characters, so that
    ``/dev/zero`` cannot stall the reader), or :class:`SpecError` naming ``file``."""
    file = os.fspath(path) if file is None else file
    try:
        with open(path, "rb") as f:
            data = f.read(4 * MAX_CHARS + 1)
    except OSError as exc:
        raise _error(file, "", f"cannot read the file ({exc.strerror or exc})") from None
    if len(data) > 4 * MAX_CHARS:
        raise _error(file, "", f"more than {4 * MAX_CHARS} bytes; is this the right file?")
    return decode(data, file)


def decode(data: bytes, file: str) -> str:
    """``data`` as UTF-8 text, or :class:`SpecError` at the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[: exc.start]
        line = head.count(b"\n")
        column = len(head[head.rfind(b"\n") + 1 :].decode("utf-8", errors="replace"))
        raise _error(
            file,
            _where(line, column),
            f"not UTF-8 text (byte {data[exc.start]:#04x}); save the file as UTF-8",
        ) from None


def parse_scalar(text: str) -> Any:
    """``text`` as one YAML scalar: ``0.002`` -> float, ``true`` -> bool, ``fixed<8,3>`` -> str.

    A value that is not a scalar (a list or a mapping), or that is not valid YAML at all, is kept
    as the string it was written as (the key's type check then refuses it, naming the key).
    """

    try:
        value = load_yaml(text, "<argument>")
    except SpecError:
        return text
    if isinstance(value, list | dict):
        return text
    return value
