"""Sweep directories shared by the analysis tests (written once per session with pyarrow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.analysis.sweep_fixture import (
    write_classifier_sweep,
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
