"""The baseline rule and what a cost is (analysis.baseline): by default the one configuration
whose recorded formats are all fp32; else the spec's variant name or mapping of keys to values,
numbers matched by value; costs by name or prefix."""

from __future__ import annotations

import pytest

from analysis.baseline import is_cost, select_baseline
from tests.analysis.test_answer import CONFIGS


def test_default_baseline_is_the_one_all_fp32_configuration():
    # two seeds of the fp32 configuration are one configuration: its first index
    assert select_baseline(None, CONFIGS) == [0]
    two = [*CONFIGS, {**CONFIGS[0], "accumulator": "vc"}]
    assert select_baseline(None, two) == []  # two fp32 configurations: none by default
    assert select_baseline(None, CONFIGS[2:]) == []  # none is fp32
    # recorded weight/grad formats count: an fp32 'format' with a block gradient is not fp32
    mixed = [{**CONFIGS[0], "grad_format": "block<8>"}, CONFIGS[2]]
    assert select_baseline(None, mixed) == []
    named = [{"weight_format": "fp32", "grad_format": None}, {"weight_format": "fixed<8,3>"}]
    assert select_baseline(None, named) == [0]


def test_explicit_baseline_by_variant_or_keys():
    variants = [
        {"variant": "fp32", "format": "fp32"},
        {"variant": "lp", "format": "block", "bits": 8},
        {"variant": "lp", "format": "block", "bits": 4},
    ]
    assert select_baseline("fp32", variants) == [0]
    assert select_baseline("lp", variants) == [1, 2]  # the caller refuses two
    assert select_baseline("nope", variants) == []
    assert select_baseline({"format": "block", "bits": 8.0}, variants) == [1]  # 8 == 8.0
    assert select_baseline({"format": "fp32", "accumulator": "full"}, CONFIGS) == [0]
    assert select_baseline({"accumulator": "vc"}, CONFIGS) == [2, 4]
    assert select_baseline({"missing_key": 1}, CONFIGS) == []
    with pytest.raises(ValueError, match="baseline"):
        select_baseline(3, CONFIGS)


def test_costs_by_name_or_prefix() -> None:
    assert [is_cost(m) for m in ("bits", "bits_per_param", "bops_per_step", "energy_j")] == [
        True, True, True, True
    ]  # fmt: skip
    assert [is_cost(m) for m in ("test_error", "test_nll", "orbits", "ood_auroc")] == [
        False, False, False, False
    ]  # fmt: skip
