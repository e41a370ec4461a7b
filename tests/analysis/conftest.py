"""Sweep directories shared by the analysis tests (written once per session with pyarrow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.analysis.sweep_fixture import (
    write_classifier_sweep,
    write_failed_sweep,
    write_gaussian_sweep,
    write_optuna_sweep,
)


@pytest.fixture(scope="session")
def classifier_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_classifier_sweep(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="session")
def gaussian_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gaussian_sweep(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="session")
def optuna_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_optuna_sweep(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="session")
def failed_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_failed_sweep(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="session")
def storage_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The classifier grid under the default sweep's objectives {test_error, bits_per_param},
    with bits_per_param as the workloads report it (32 for accumulator full)."""
    return write_classifier_sweep(
        tmp_path_factory.mktemp("results"),
        name="storage",
        objectives={"test_error": "min", "bits_per_param": "min"},
        storage_bits=True,
    )


@pytest.fixture(scope="session")
def cost_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The classifier grid with the cost panel and a cost objective other than bits:
    {test_error: min, ensemble_bits: min}."""
    return write_classifier_sweep(
        tmp_path_factory.mktemp("results"),
        name="costs",
        objectives={"test_error": "min", "ensemble_bits": "min"},
        storage_bits=True,
        costs=True,
    )
