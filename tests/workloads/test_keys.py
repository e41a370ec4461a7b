"""The config-key registry: validation names the key, defaults are filled in."""

from __future__ import annotations

import pytest

from workloads.config.resolve import COMMON_KEYS, keys_for, resolve_config


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
        # nothing would be collected: caught before the run, not after it
        ({"workload": "gaussian", "steps": 200, "burn_in": 300}, "burn_in"),
        ({"workload": "gaussian", "steps": 200, "burn_in": 150, "thin": 51}, "burn_in"),
        ({"workload": "logreg", "steps": 100, "burn_in": 200}, "burn_in"),
        ({"workload": "mnist_mlp", "epochs": 1, "burn_in": 5}, "burn_in"),
        ({"workload": "mnist_mlp", "schedule": "cyclical", "cycles": 4, "epochs": 2}, "cycles"),
        (
            {"workload": "mixture", "schedule": "cyclical", "cycles": 2, "explore_fraction": 1.0},
            "explore_fraction",
        ),
    ],
)
def test_errors_name_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        resolve_config(raw)


def test_an_optimiser_needs_no_collected_sample() -> None:
    resolve_config({"workload": "logreg", "sampler": "sgd", "steps": 100, "burn_in": 200})


def test_the_last_possible_sample_is_accepted() -> None:
    resolve_config({"workload": "gaussian", "steps": 200, "burn_in": 150, "thin": 50})
    resolve_config({"workload": "mnist_mlp", "epochs": 5, "burn_in": 4})
