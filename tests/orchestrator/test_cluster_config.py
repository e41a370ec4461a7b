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
    assert any("pip install -e ." in c for c in config["setup_commands"])
    _check_tracking(config)


def test_local_cluster_config_is_valid() -> None:
    config = _load("cluster-local.yaml")
    prepared = _validated(config)
    assert prepared["provider"]["type"] == "local"
    assert prepared["max_workers"] == len(prepared["provider"]["worker_ips"])
    _check_tracking(config)


def _check_tracking(config: dict[str, Any]) -> None:
    """MLflow on the head's PostgreSQL with basic authentication, on the private address only,
    every secret from the credentials file's environment variables, none written in the file."""
    head_setup = " ".join(config["head_setup_commands"])
    assert "apt-get install -y -qq postgresql" in head_setup
    for database in ("mlflow", "mlflow_auth", "optuna"):
        assert database in head_setup
    (server,) = [c for c in config["head_setup_commands"] if "nohup mlflow server" in c]
    assert "--app-name basic-auth" in server
    assert "--backend-store-uri postgresql+psycopg2://lowprec@localhost:5432/mlflow" in server
    assert "--host \"$(hostname -I | cut -d' ' -f1)\"" in server  # the private address
    assert "0.0.0.0" not in server and "sqlite" not in server
    for variable in ("LOWPREC_DB_PASSWORD", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert f"${variable}" in server  # from the environment, never a literal
    assert 'PGPASSWORD="$LOWPREC_DB_PASSWORD"' in server
    secrets = "~/.lowprec/cluster.env"
    assert config["file_mounts"][secrets] == secrets  # the credentials reach every node
    for command in (*config["head_start_ray_commands"], *config["worker_start_ray_commands"]):
        if "ray start" in command:  # trials inherit MLFLOW_TRACKING_* from Ray
            assert command.startswith(f"source {secrets};")


def test_validation_would_catch_a_mistake() -> None:
    """The check has teeth: an unknown field is refused by Ray's schema."""
    import jsonschema

    config = _load("cluster.yaml")
    config["available_node_types"]["gpu_spot"]["min_worker"] = 1  # typo of min_workers
    with pytest.raises(jsonschema.ValidationError):
        _validated(config)
