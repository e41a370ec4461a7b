"""cluster.yaml and cluster-local.yaml pass Ray's own launcher validation, offline
(``ray.autoscaler._private.util.prepare_config`` + ``validate_config``, what ``ray up`` runs)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _validated(config: dict[str, Any]) -> dict[str, Any]:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / name).read_text())


def test_aws_cluster_config_is_valid() -> None:
    config = _load("cluster.yaml")
    prepared = _validated(config)
    types = prepared["available_node_types"]
    assert prepared["head_node_type"] == "head" and types["head"]["resources"] == {"CPU": 0}
    assert {types[t]["resources"]["GPU"] for t in ("gpu_spot", "gpu_ondemand")} == {1}
    assert types["gpu_spot"]["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    head_setup = " ".join(config["head_setup_commands"])
    assert "mlflow server" in head_setup and "--backend-store-uri sqlite:///" in head_setup
    assert "--host 0.0.0.0 --port 5000" in head_setup
    assert any("pip install -e ." in c for c in config["setup_commands"])


def test_local_cluster_config_is_valid() -> None:
    prepared = _validated(_load("cluster-local.yaml"))
    assert prepared["provider"]["type"] == "local"
    assert prepared["max_workers"] == len(prepared["provider"]["worker_ips"])


def test_validation_would_catch_a_mistake() -> None:
    """The check has teeth: an unknown field is refused by Ray's schema."""
    import jsonschema

    config = _load("cluster.yaml")
    config["available_node_types"]["gpu_spot"]["min_worker"] = 1  # typo of min_workers
    with pytest.raises(jsonschema.ValidationError):
        _validated(config)
