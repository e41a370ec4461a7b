"""How child runs and configurations are named (orchestrator.naming): the varying keys' values,
the precision keys shown as the one weight format they make, the seed last and only on the
child run, distinct names over the default sweep, params without unset keys."""

from __future__ import annotations

from pathlib import Path

from orchestrator.naming import (
    child_name,
    configuration_name,
    name_keys,
    run_name,
    trial_params,
)
from orchestrator.spec import load_spec, parse_spec
from tests.orchestrator.test_specmodel import GRID
from workloads.config import TrialSpec
from workloads.config.resolve import resolve_config

REPO = Path(__file__).resolve().parents[2]
SEARCHED = ["format", "bits", "accumulator", "seed"]


def _mlp(**keys: object) -> dict:
    return resolve_config({"workload": "mnist_mlp", **keys})


def test_run_names_known_answers() -> None:
    assert run_name(_mlp(format="block", bits=8, accumulator="vc", seed=1), SEARCHED) == (
        "block<8> vc seed=1"
    )
    assert run_name(_mlp(format="fixed", bits=6, accumulator="low", seed=0), SEARCHED) == (
        "fixed<6,4> low seed=0"
    )
    # a key that does not apply to the trial is left out; floats with 4 significant digits
    fp32 = _mlp(format="fp32", accumulator="full", lr=0.0123456)
    assert run_name(fp32, ["format", "bits", "lr"]) == "fp32 lr=0.01235"
    assert run_name({"variant": "halp", "seed": 2, "x": None}, ["seed", "x"]) == ("halp seed=2")
    assert run_name({"lr": 0.1}, []) == "trial"


def test_run_names_of_the_default_sweep_are_distinct() -> None:
    spec = load_spec(REPO / "search_spaces" / "bits.yaml")
    keys = name_keys(spec)
    configs = spec.trial_configs() if hasattr(spec, "trial_configs") else None
    if configs is None:  # the grid by hand
        import itertools

        axes = {a.key: list(a.values) for a in spec.space.values()}
        configs = [
            {**spec.base_config(), **dict(zip(axes, values, strict=True))}
            for values in itertools.product(*axes.values())
        ]
    names = [run_name(resolve_config(c), keys) for c in configs]
    assert len(names) == spec.num_trials() == len(set(names))
    assert all("None" not in n and n != "trial" for n in names)


def test_params_hold_no_unset_keys() -> None:
    params = trial_params(_mlp(format="fixed", bits=8, accumulator="low"))
    assert params and all(v is not None for v in params.values())
    assert "weight_format" not in params or params["weight_format"] == "fixed<8,6>"
    assert "friction" not in params  # SGLD has no friction


def test_child_run_is_its_configuration_and_its_seed() -> None:
    spec = parse_spec(GRID)
    keys = name_keys(spec)
    config = spec.trial_configs()[4]
    assert configuration_name(config, keys) == "fixed<8,3> low"
    assert child_name(config, keys) == "fixed<8,3> low seed=1"
    # the seed goes last whatever the order of the searched keys, and only when it varies
    assert child_name(config, ["seed", "weight_format"]) == "fixed<8,3> seed=1"
    assert run_name(config, ["seed", "weight_format"]) == "fixed<8,3> seed=1"  # progress lines
    assert child_name(config, ["weight_format"]) == configuration_name(config, ["weight_format"])
    assert child_name({"seed": 3}, ["seed"]) == "seed=3"
    assert configuration_name({"seed": 3}, ["seed"]) == "trial"


def test_values_are_written_by_their_type() -> None:
    """Booleans lower case, floats with 4 significant digits, ints whole, choices as they are."""
    config = {"flag": True, "lr": 0.000123456, "epochs": 10, "sampler": "sghmc"}
    assert run_name(config, ["flag", "lr", "epochs", "sampler"]) == (
        "flag=true lr=0.0001235 epochs=10 sghmc"
    )


def test_a_trial_spec_is_named_as_its_config() -> None:
    """A TrialSpec's name is its resolved config's: keys without effect (None there) left out."""
    raw = {"workload": "gaussian", "format": "fp32", "bits": 4, "seed": 2}
    keys = ["format", "bits", "seed"]
    spec = TrialSpec.from_config(raw)
    assert run_name(spec, keys) == run_name(resolve_config(raw), keys) == "fp32 seed=2"
    assert child_name(spec, keys) == "fp32 seed=2" and configuration_name(spec, keys) == "fp32"


def test_a_variant_named_as_its_format_is_said_once() -> None:
    config = {"variant": "fp32", "format": "fp32", "seed": 0}
    assert run_name(config, ["variant", "format"]) == "fp32"
    assert run_name({"variant": "halp", "format": "fp32"}, ["format"]) == "halp fp32"
