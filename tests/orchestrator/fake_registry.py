"""Registers the fake workload (``tests.orchestrator.fake_workload``) by name, importing nothing
heavy: the tests' ``sitecustomize`` runs this in every Python process they start, Ray's own
helper processes included, which must start fast."""

from __future__ import annotations

import dataclasses

NAME = "fake"
MODULE = "tests.orchestrator.fake_workload"


def register() -> None:
    """Add ``fake`` to ``workloads.WORKLOADS`` and to the ``workload`` key's choices.

    ``workloads.config.resolve`` (which imports torch through lowprec) is patched only when already
    imported: otherwise it reads the choices from ``WORKLOADS`` when it is, and Ray's helper
    processes, which run this too, start without importing torch (under load, a slow dashboard
    agent makes the raylet give up: "timed out during startup")."""
    import sys

    import workloads

    workloads.WORKLOADS[NAME] = MODULE
    keys = sys.modules.get("workloads.config.resolve")
    if keys is not None:
        common = keys.COMMON_KEYS["workload"]
        choices = tuple(workloads.WORKLOADS)
        keys.COMMON_KEYS["workload"] = dataclasses.replace(common, choices=choices)
