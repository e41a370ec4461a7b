"""Registers the fake workload (``tests.orchestrator.fake_workload``) by name, importing nothing
heavy: the tests' ``sitecustomize`` runs this in every Python process they start, Ray's own
helper processes included, which must start fast."""

from __future__ import annotations

import dataclasses

NAME = "fake"
MODULE = "tests.orchestrator.fake_workload"


def register() -> None:
    """Add ``fake`` to ``workloads.WORKLOADS`` and to the ``workload`` key's choices."""
    import workloads
    from workloads import keys

    workloads.WORKLOADS[NAME] = MODULE
    common = keys.COMMON_KEYS["workload"]
    keys.COMMON_KEYS["workload"] = dataclasses.replace(common, choices=tuple(workloads.WORKLOADS))
