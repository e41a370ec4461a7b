"""Workloads: one module per target distribution or model, behind ``workloads.base``'s contract."""

from __future__ import annotations

import importlib
from types import ModuleType

#: workload name -> module implementing ``KEYS`` and ``run(config, ctx)``
WORKLOADS: dict[str, str] = {
    "gaussian": "workloads.gaussian",
    "mixture": "workloads.mixture",
    "logreg": "workloads.logreg",
    "mnist_mlp": "workloads.mlp",
    "cifar_resnet18": "workloads.resnet",
}


def get_workload(name: str) -> ModuleType:
    """The module of workload ``name``; ``ValueError`` naming the choices when unknown."""
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; choose one of {', '.join(WORKLOADS)}")
    return importlib.import_module(WORKLOADS[name])
