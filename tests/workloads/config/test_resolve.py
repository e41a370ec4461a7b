"""The key table's relevance rules, bounds and the record of a trial
(workloads/config/resolve.py).

The config-key registry: validation names the key, defaults are filled in.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workloads import WORKLOADS
from workloads.config.resolve import (
    COMMON_KEYS,
    effective_params,
    irrelevant_keys,
    keys_for,
    resolve_config,
    with_defaults,
)

# (raw config, key, words of the reason it has no effect)
NO_EFFECT = [
    ({"workload": "gaussian", "bits": 4}, "bits", "format is fp32"),
    ({"workload": "gaussian", "format": "fixed<8,3>", "bits": 4}, "bits", "full format string"),
    ({"workload": "gaussian", "format": "fixed", "frac_bits": 3}, "exp_bits", "not float"),
    ({"workload": "gaussian", "format": "float", "exp_bits": 3}, "frac_bits", "not fixed"),
    ({"workload": "gaussian", "format": "fixed"}, "block_size", "not block"),
    (
        {"workload": "gaussian", "format": "fixed", "weight_format": "fp32", "grad_format": "fp32"},
        "format",
        "overridden",
    ),
    (
        {"workload": "gaussian", "format": "fixed", "weight_format": "fp32", "grad_format": "fp32"},
        "bits",
        "overridden",
    ),
    ({"workload": "gaussian", "format": "fixed", "tensors": "AE"}, "format", "no tensor kind"),
    ({"workload": "gaussian", "tensors": "W"}, "tensors", "format is fp32"),
    ({"workload": "gaussian"}, "rounding", "nothing is rounded"),
    ({"workload": "gaussian", "friction": 2.0}, "friction", "sampler sgld has no friction"),
    ({"workload": "gaussian", "sampler": "sghmc"}, "vc_mode", "not vc"),
    ({"workload": "gaussian", "sampler": "sghmc"}, "momentum_rescale", "accumulator is full"),
    ({"workload": "gaussian", "sampler": "sgld"}, "momentum_format", "has no momentum"),
    ({"workload": "gaussian", "act_format": "fixed<8,3>"}, "act_format", "no activations"),
    ({"workload": "logreg", "error_format": "fixed<8,3>"}, "error_format", "no activations"),
    ({"workload": "logreg", "sampler": "sgd"}, "temperature", "optimiser"),
    ({"workload": "logreg", "sampler": "svrg"}, "temperature", "optimiser"),
    ({"workload": "logreg", "sampler": "sgd"}, "burn_in", "final iterate"),
    ({"workload": "logreg", "sampler": "sgld"}, "inner_steps", "only svrg, halp"),
    ({"workload": "logreg", "sampler": "svrg"}, "halp_mu", "not halp"),
    ({"workload": "gaussian", "cycles": 4}, "cycles", "not cyclical"),
    ({"workload": "gaussian"}, "explore_fraction", "not cyclical"),
    ({"workload": "gaussian", "schedule": "cyclical", "cycles": 2}, "burn_in", "cyclical"),
    ({"workload": "gaussian", "steps": 100}, "epochs", "counts steps"),
    ({"workload": "mnist_mlp", "steps": 100}, "steps", "counts epochs"),
    ({"workload": "gaussian"}, "batch_size", "no minibatches"),
    ({"workload": "gaussian", "prior_std": 1.0}, "prior_std", "no prior"),
    ({"workload": "gaussian", "condition": 5.0}, "condition", "dim is 1"),
    ({"workload": "mnist_mlp", "data_dir": "/x"}, "data_dir", "bundled"),
    ({"workload": "mnist_mlp"}, "samples_per_cycle", "not cyclical"),
]


@pytest.mark.parametrize(("raw", "key", "why"), NO_EFFECT)
def test_a_key_without_effect_is_none_with_its_reason(raw: dict, key: str, why: str) -> None:
    config = resolve_config(raw)
    assert config[key] is None
    assert why in irrelevant_keys(with_defaults(config))[key]
    assert key not in effective_params(raw) or key.endswith("_format")


# (raw config, key that must have an effect)
EFFECT = [
    ({"workload": "gaussian", "format": "fixed"}, "bits"),
    ({"workload": "gaussian", "format": "fixed"}, "tensors"),
    ({"workload": "gaussian", "format": "fixed"}, "rounding"),
    ({"workload": "gaussian", "weight_format": "fixed<8,3>", "accumulator": "low"}, "rounding"),
    ({"workload": "gaussian", "format": "block"}, "block_size"),
    ({"workload": "gaussian", "sampler": "sghmc"}, "friction"),
    (
        {"workload": "gaussian", "sampler": "sghmc", "format": "fixed", "accumulator": "vc"},
        "vc_mode",
    ),
    (
        {"workload": "gaussian", "sampler": "sghmc", "format": "fixed", "accumulator": "low"},
        "momentum_rescale",
    ),
    ({"workload": "gaussian", "sampler": "sghmc"}, "momentum_format"),
    # fp32 for W and G from format, but tensors decides whether M takes the low weights
    (
        {
            "workload": "gaussian",
            "sampler": "sghmc",
            "weight_format": "fixed<8,3>",
            "accumulator": "low",
        },
        "tensors",
    ),
    ({"workload": "mnist_mlp"}, "act_format"),
    ({"workload": "mnist_mlp", "dataset": "mnist"}, "data_dir"),
    ({"workload": "mnist_mlp", "ood": True}, "data_dir"),
    ({"workload": "mnist_mlp", "sampler": "sgd"}, "burn_in"),  # a deep SGD ensemble collects
    ({"workload": "logreg", "sampler": "halp", "format": "fixed", "accumulator": "low"}, "halp_mu"),
    ({"workload": "gaussian", "dim": 3}, "condition"),
]


@pytest.mark.parametrize(("raw", "key"), EFFECT)
def test_a_key_with_an_effect_is_kept(raw: dict, key: str) -> None:
    assert key not in irrelevant_keys(with_defaults(resolve_config(raw)))


def test_tensors_is_written_as_the_kinds_the_trial_has() -> None:
    gaussian = resolve_config({"workload": "gaussian", "format": "fixed", "tensors": "EGAW"})
    assert gaussian["tensors"] == "WG"
    mlp = resolve_config({"workload": "mnist_mlp", "format": "fixed", "tensors": "EGAW"})
    assert mlp["tensors"] == "WGAE"
    with pytest.raises(ValueError, match="key 'tensors'"):
        resolve_config({"workload": "gaussian", "tensors": "WX"})


CONFIGS = [raw for raw, _, _ in NO_EFFECT] + [raw for raw, _ in EFFECT]


@pytest.mark.parametrize("raw", CONFIGS)
def test_resolving_a_resolved_config_changes_nothing(raw: dict) -> None:
    once = resolve_config(raw)
    assert resolve_config(once) == once
    assert effective_params(once) == effective_params(raw)


def test_trials_that_differ_only_in_ignored_keys_have_one_record() -> None:
    base = {"workload": "gaussian", "format": "fp32"}
    records = {
        tuple(sorted(effective_params({**base, "bits": b, "friction": f}).items()))
        for b in (4, 8)
        for f in (1.0, 2.0)
    }
    assert len(records) == 1


def test_effective_params_hold_the_format_of_each_kind_and_no_unused_key() -> None:
    fixed = effective_params({"workload": "gaussian", "format": "fixed", "bits": 8})
    assert fixed["format"] == "fixed" and fixed["bits"] == 8
    assert fixed["weight_format"] == fixed["grad_format"] == "fixed<8,6>"
    assert fixed["bits_per_param"] == 32.0  # accumulator full: a float32 master copy
    assert not {"act_format", "error_format", "momentum_format", "epochs", "friction"} & set(fixed)
    assert None not in fixed.values()

    low = effective_params(
        {"workload": "gaussian", "weight_format": "fixed<8,3>", "grad_format": "fixed<8,3>",
         "accumulator": "low", "sampler": "sghmc", "format": "fixed", "bits": 4}
    )  # fmt: skip
    assert "format" not in low and "bits" not in low  # W and G overridden; M follows W
    assert low["momentum_format"] == "fixed<8,3>" and low["bits_per_param"] == 8.0

    mlp = effective_params({"workload": "mnist_mlp", "format": "block", "tensors": "WGAE"})
    assert mlp["act_format"] == mlp["error_format"] == "block<8>"
    assert "steps" not in mlp and mlp["epochs"] == 10


def test_kernels_and_variant_keys() -> None:
    config = resolve_config({"workload": "gaussian"})
    assert config["kernels"] == "auto" and config["variant"] is None
    record = effective_params({"workload": "gaussian", "variant": "lowprec", "kernels": "eager"})
    assert record["variant"] == "lowprec" and record["kernels"] == "eager"
    with pytest.raises(ValueError, match="key 'kernels'"):
        resolve_config({"workload": "gaussian", "kernels": "gpu"})


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_every_number_has_bounds_a_real_run_could_use(workload: str) -> None:
    for name, key in keys_for(workload).items():
        if key.numeric:
            assert key.min is not None and key.max is not None, name
            assert key.max <= 10**9 or key.type is float or name in ("seed", "block_size"), name


ABSURD = [2**63, 10**400, -(2**63), float("inf"), float("nan"), 1e308]


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_absurd_numbers_are_refused_at_once(workload: str) -> None:
    keys = keys_for(workload)
    started = time.perf_counter()
    for name, key in keys.items():
        if not key.numeric:
            continue
        for value in ABSURD:
            if key.type is int and isinstance(value, float):
                continue
            with pytest.raises(ValueError, match=f"key '{name}'"):
                resolve_config({"workload": workload, name: value})
    assert time.perf_counter() - started < 2.0


def test_workload_defaults_are_valid_keys() -> None:
    from workloads import get_workload

    for workload in WORKLOADS:
        defaults = getattr(get_workload(workload), "DEFAULTS", {})
        keys = keys_for(workload)
        assert set(defaults) <= set(keys), workload
        for name, value in defaults.items():
            assert keys[name].check(name, value) == value


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["fixed", "block", "float", "fp32", "fixed<8,3>", "block<8,4>", "float<4,3>", "WGAEM",
         "WG", "sgld", "sghmc", "sgd", "svrg", "halp", "low", "vc", "full", "cyclical", "decay",
         "eager", "auto", "mnist5k", "x" * 5000, "float<9,30>", "fixed<64,1>", ""]
    ),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    workload=st.sampled_from(sorted(WORKLOADS)),
    data=st.data(),
)
def test_any_config_resolves_idempotently_or_names_a_key(workload: str, data) -> None:
    names = sorted(keys_for(workload))
    raw = data.draw(st.dictionaries(st.sampled_from(names), _VALUES, max_size=6))
    raw["workload"] = workload
    started = time.perf_counter()
    try:
        config = resolve_config(raw)
    except ValueError as exc:
        assert str(exc).startswith("key '"), str(exc)
        assert "\n" not in str(exc) and len(str(exc)) < 1000
    else:
        assert resolve_config(config) == config
        assert None not in effective_params(config).values()
    assert time.perf_counter() - started < 1.0


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
