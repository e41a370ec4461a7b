"""The config-key registry: validation names the key, defaults are filled in."""

from __future__ import annotations

import pytest

from workloads.keys import COMMON_KEYS, keys_for, resolve_config


def test_defaults_are_filled_in() -> None:
    config = resolve_config({"workload": "gaussian"})
    assert set(config) == set(keys_for("gaussian"))
    assert config["sampler"] == "sgld" and config["accumulator"] == "full"
    assert config["lr"] == COMMON_KEYS["lr"].default


def test_ints_become_floats_for_float_keys() -> None:
    config = resolve_config({"workload": "gaussian", "lr": 1})
    assert config["lr"] == 1.0 and isinstance(config["lr"], float)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({}, "workload"),
        ({"workload": "nope"}, "workload"),
        ({"workload": "gaussian", "lrr": 0.1}, "lrr"),
        ({"workload": "gaussian", "lr": "fast"}, "lr"),
        ({"workload": "gaussian", "lr": -1.0}, "lr"),
        ({"workload": "gaussian", "bits": 8.5}, "bits"),
        ({"workload": "gaussian", "accumulator": "half"}, "accumulator"),
        ({"workload": "gaussian", "ood": True}, "ood"),  # a deep-workload key
        ({"workload": "gaussian", "sampler": "svrg"}, "sampler"),
        ({"workload": "mnist_mlp", "sampler": "halp"}, "sampler"),
        ({"workload": "gaussian", "accumulator": "vc"}, "accumulator"),  # vc needs low-precision W
        ({"workload": "logreg", "sampler": "halp", "format": "fixed"}, "accumulator"),
    ],
)
def test_errors_name_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        resolve_config(raw)
