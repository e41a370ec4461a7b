"""The key table as text: docs/keys.md and ``python -m orchestrator.trial --keys``.

    python -m workloads.config.doc > docs/keys.md     # regenerate the docs' key table

Everything here is read from ``workloads.config.resolve`` (names, types, defaults per workload,
choices, bounds, relevance rules); tests/workloads/test_keys_doc.py fails when docs/keys.md differs.
A workload's keys (``render_text``) need no torch; the workload list and the Markdown read each
workload module's docstring, so they import the modules.
"""

from __future__ import annotations

import sys

from workloads import WORKLOADS, get_workload
from workloads.config.resolve import COMMON_KEYS, Key, keys_for, workload_keys


def builtin_workloads() -> list[str]:
    """The project's workloads (not ones registered at run time, such as the tests' fake)."""
    return [name for name, module in WORKLOADS.items() if module.startswith("workloads.")]


def _number(key: Key, value: float) -> str:
    return str(int(value)) if key.type is int else f"{value:g}"


def _values(key: Key) -> str:
    if key.choices is not None:
        choices = builtin_workloads() if key is COMMON_KEYS["workload"] else key.choices
        return " \\| ".join(map(str, choices))
    if key.min is not None or key.max is not None:
        low = "-∞" if key.min is None else _number(key, key.min)
        high = "∞" if key.max is None else _number(key, key.max)
        return f"{'(' if key.min_open else '['}{low}, {high}]"
    return ""


def _when(key: Key) -> str:
    if key.applies is None:
        return "always"
    doc = (key.applies.__doc__ or "").strip().removeprefix("Has an effect with:").strip()
    return doc.rstrip(".")


def _default(value: object) -> str:
    return "unset" if value is None else f"`{value}`"


def _table(keys: dict[str, Key]) -> list[str]:
    lines = [
        "| key | type | default | values | has an effect with | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for name, key in keys.items():
        help_text = key.help.replace("|", "\\|")
        lines.append(
            f"| `{name}` | {key.type.__name__} | {_default(key.default)} | {_values(key)} | "
            f"{_when(key)} | {help_text} |"
        )
    return lines


def render_markdown() -> str:
    """docs/keys.md: the common keys, then each workload's defaults and its own keys."""
    out = [
        "# Config keys",
        "",
        "Generated from `workloads/config/` by `python -m workloads.config.doc > docs/keys.md`;",
        "do not edit by hand. A key that has no effect on a trial (the column *has an effect",
        "with*) is set to null in its resolved config and left out of its record.",
        "",
        "## Common keys",
        "",
        *_table(COMMON_KEYS),
    ]
    for workload in builtin_workloads():
        module = get_workload(workload)
        keys = keys_for(workload)
        out += ["", f"## `{workload}`", ""]
        first = (module.__doc__ or "").strip().splitlines()
        if first:
            out += [first[0], ""]
        defaults = workload_keys(workload).defaults
        if defaults:
            shown = ", ".join(f"`{k}: {v}`" for k, v in defaults.items())
            out += [f"Defaults in place of the common ones: {shown}.", ""]
        own = {k: v for k, v in keys.items() if k not in COMMON_KEYS}
        if own:
            out += _table(own)
    return "\n".join(out) + "\n"


def render_workloads() -> str:
    """The workloads, one a line with the first line of its module docstring."""
    lines = []
    for workload in builtin_workloads():
        doc = (get_workload(workload).__doc__ or "").strip().splitlines()
        lines.append(f"{workload:16s} {doc[0] if doc else ''}")
    lines.append("")
    lines.append("python -m orchestrator.trial --keys workload=NAME: its keys and defaults")
    return "\n".join(lines)


def render_text(workload: str) -> str:
    """The keys of ``workload`` with its defaults, one a line (``--keys workload=NAME``)."""
    lines = []
    for name, key in keys_for(workload).items():
        default = "unset" if key.default is None else repr(key.default)
        values = _values(key).replace("\\|", "|")
        lines.append(
            f"{name:18s} {key.type.__name__:5s} {default:14s} {values:28s} {key.help}"
            + ("" if key.applies is None else f"  [has an effect with: {_when(key)}]")
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
