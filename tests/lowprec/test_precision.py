"""The precision of a trial (lowprec/precision.py): impossible combinations refused naming the
key, the storage bits per weight, and which precisions the variance-reduced methods take."""

from __future__ import annotations

import pytest

from lowprec.formats import parse_format
from lowprec.precision import PrecisionSpec, check_method

FIXED8 = parse_format("fixed<8,6>")


def test_defaults_are_float32_with_a_full_accumulator() -> None:
    spec = PrecisionSpec()
    assert spec.weight.is_identity and spec.accumulator == "full"
    assert spec.rounding == "stochastic" and spec.bits_per_param == 32.0


def test_storage_bits_are_the_weight_formats_unless_full() -> None:
    assert PrecisionSpec(weight=FIXED8, accumulator="low").bits_per_param == 8
    assert PrecisionSpec(weight=FIXED8, accumulator="vc").bits_per_param == 8
    assert PrecisionSpec(weight=FIXED8, accumulator="full").bits_per_param == 32.0  # the master


@pytest.mark.parametrize(
    ("keys", "said"),
    [
        ({"accumulator": "half"}, "key 'accumulator': 'half' is not one of full, low, vc"),
        ({"rounding": "up"}, "key 'rounding': 'up' is not one of stochastic, nearest"),
        ({"accumulator": "low"}, "keeps the weights in low precision, but the weight format"),
    ],
)
def test_impossible_combinations_name_the_key(keys: dict, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        PrecisionSpec(**keys)


@pytest.mark.parametrize(
    ("mode", "keys", "said"),
    [
        ("sgld", {}, "key 'sampler': 'sgld' is not one of svrg, halp"),
        ("halp", {}, "halp stores its offsets in the weight format's bits"),
        ("halp", {"weight": FIXED8, "accumulator": "full"}, "which is accumulator: low"),
        ("svrg", {"weight": FIXED8, "accumulator": "vc"}, "svrg supports full .* not vc"),
    ],
)
def test_variance_reduced_methods_refuse_what_they_cannot_run(
    mode: str, keys: dict, said: str
) -> None:
    with pytest.raises(ValueError, match=said):
        check_method(mode, PrecisionSpec(**keys))


def test_variance_reduced_methods_accept_their_precisions() -> None:
    check_method("halp", PrecisionSpec(weight=FIXED8, accumulator="low"))
    check_method("svrg", PrecisionSpec())
    check_method("svrg", PrecisionSpec(weight=FIXED8, accumulator="low"))
