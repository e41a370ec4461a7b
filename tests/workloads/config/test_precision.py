"""The precision derivation of the config layer: rules and errors
(workloads/config/precision.py)."""

from __future__ import annotations

import pytest

from lowprec import FP32, PrecisionSpec, parse_format
from workloads.config.precision import default_exp_bits, precision_config, precision_from_config


def spec(**config: object) -> PrecisionSpec:
    return precision_from_config(config)


def test_defaults_are_full_precision() -> None:
    s = spec()
    assert all(getattr(s, k) == FP32() for k in ("weight", "grad", "act", "error", "momentum"))
    assert (s.accumulator, s.rounding) == ("full", "stochastic")
    assert PrecisionSpec() == s


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"format": "fixed", "bits": 8}, "fixed<8,6>"),  # frac_bits = bits - 2: range [-2, 2)
        ({"format": "fixed", "bits": 4}, "fixed<4,2>"),
        ({"format": "fixed", "bits": 8, "frac_bits": 3}, "fixed<8,3>"),
        ({"format": "fixed", "bits": 8, "frac_bits": 8}, "fixed<8,8>"),
        ({"format": "block", "bits": 8}, "block<8>"),
        ({"format": "block", "bits": 6, "block_size": 32}, "block<6,32>"),
        ({"format": "float", "bits": 4}, "float<2,1>"),
        ({"format": "float", "bits": 5}, "float<2,2>"),
        ({"format": "float", "bits": 6}, "float<3,2>"),
        ({"format": "float", "bits": 8}, "float<4,3>"),
        ({"format": "float", "bits": 9}, "float<4,4>"),
        ({"format": "float", "bits": 12}, "float<5,6>"),
        ({"format": "float", "bits": 16}, "float<5,10>"),
        ({"format": "float", "bits": 17}, "float<8,8>"),
        ({"format": "float", "bits": 32}, "float<8,23>"),
        ({"format": "float", "bits": 8, "exp_bits": 5}, "float<5,2>"),
        ({"format": "fixed<8,3>", "bits": 4}, "fixed<8,3>"),  # a full string: bits not read
        ({"format": "block<8,32>"}, "block<8,32>"),
        ({"format": "FLOAT", "bits": 16}, "float<5,10>"),
        ({"format": "fp32", "bits": 4}, "fp32"),
    ],
)
def test_format_derivation(config: dict, expected: str) -> None:
    s = spec(**config)
    assert str(s.weight) == expected and str(s.grad) == expected
    assert s.act == FP32() and s.error == FP32() and s.momentum == FP32()


def test_default_exp_bits_thresholds() -> None:
    table = {2: 2, 5: 2, 6: 3, 7: 4, 9: 4, 10: 5, 16: 5, 17: 8, 32: 8}
    assert {b: default_exp_bits(b) for b in table} == table


def test_tensors_choose_the_kinds() -> None:
    s = spec(format="block", bits=8, tensors="WGAE")
    assert {str(getattr(s, k)) for k in ("weight", "grad", "act", "error")} == {"block<8>"}
    assert s.momentum == FP32()
    s = spec(format="fixed", bits=8, tensors="G")
    assert s.weight == FP32() and str(s.grad) == "fixed<8,6>"
    s = spec(format="fixed", bits=8, tensors="")
    assert s == PrecisionSpec()
    s = spec(format="fixed", bits=8, tensors="WGM")
    assert str(s.momentum) == "fixed<8,6>"


def test_momentum_follows_the_weights_for_low_precision_accumulators() -> None:
    for acc in ("low", "vc"):
        s = spec(format="fixed", bits=8, accumulator=acc)
        assert s.momentum == s.weight == parse_format("fixed<8,6>") and s.accumulator == acc
        s = spec(format="fixed", bits=8, accumulator=acc, weight_format="fixed<10,6>")
        assert str(s.momentum) == "fixed<10,6>"
    assert spec(format="fixed", bits=8, accumulator="full").momentum == FP32()


def test_per_tensor_overrides() -> None:
    s = spec(
        format="fixed",
        bits=8,
        tensors="WGAE",
        act_format="block<8>",
        error_format="fp32",
        grad_format="float<5,2>",
        momentum_format="fixed<16,12>",
        accumulator="vc",
        rounding="nearest",
    )
    assert str(s.weight) == "fixed<8,6>" and str(s.grad) == "float<5,2>"
    assert str(s.act) == "block<8>" and s.error == FP32() and str(s.momentum) == "fixed<16,12>"
    assert s.rounding == "nearest"
    assert precision_from_config(precision_config(s)) == s
    s = spec(weight_format="fixed<8,4>", accumulator="low")  # format fp32, weights overridden
    assert str(s.weight) == "fixed<8,4>" and s.grad == FP32()


def test_bits_per_param() -> None:
    assert spec(format="fixed", bits=8, accumulator="full").bits_per_param == 32
    assert spec(format="block", bits=8, block_size=32, accumulator="vc").bits_per_param == 8.25


@pytest.mark.parametrize(
    ("config", "key", "why"),
    [
        ({"accumulator": "vc"}, "accumulator", "fp32"),
        ({"format": "fixed", "tensors": "G", "accumulator": "low"}, "accumulator", "fp32"),
        ({"format": "fp32", "accumulator": "low"}, "accumulator", "fp32"),
        ({"accumulator": "half"}, "accumulator", "not one of"),
        ({"rounding": "up"}, "rounding", "not one of"),
        ({"format": "float", "bits": 32, "exp_bits": 2}, "bits", "wider than float32"),
        ({"format": "float", "bits": 4, "exp_bits": 4}, "exp_bits", "no mantissa"),
        ({"format": "float", "bits": 8, "exp_bits": 1}, "exp_bits", "exponent bits"),
        ({"format": "fixed", "bits": 8, "frac_bits": 200}, "frac_bits", "2^-149"),
        ({"format": "fixed", "bits": 8, "frac_bits": -1}, "frac_bits", ">= 0"),
        ({"format": "fixed", "bits": 40}, "frac_bits", "word length"),
        ({"format": "block", "bits": 1}, "bits", ">= 2"),
        ({"format": "fixed", "tensors": "WX"}, "tensors", "X"),
        ({"format": "fixed", "tensors": "wg"}, "tensors", "w"),
        ({"format": "fixd<8,3>"}, "format", "unknown family"),
        ({"format": "float<9,30>"}, "format", "exponent bits"),
        ({"format": "fixed<8>"}, "format", "two parameters"),
        ({"weight_format": "fixed<8"}, "weight_format", "does not parse"),
        ({"momentum_format": "float<9,2>"}, "momentum_format", "exponent bits"),
    ],
)
def test_errors_name_the_key(config: dict, key: str, why: str) -> None:
    with pytest.raises(ValueError) as err:
        precision_from_config(config)
    message = str(err.value)
    assert message.startswith(f"key {key!r}"), message
    assert why in message, message
