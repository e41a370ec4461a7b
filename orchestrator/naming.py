"""How a sweep's child runs are named: by the values of the keys that vary within the sweep."""

from __future__ import annotations

from orchestrator.spec import Spec


def name_keys(spec: Spec) -> tuple[str, ...]:
    """The keys that vary within the sweep: a child run is named by their values."""
    if hasattr(spec, "searched_keys"):
        return tuple(spec.searched_keys())
    return tuple(axis.key for axis in spec.space.values())
