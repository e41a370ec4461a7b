"""Each trial's configuration name for the answer (analysis.predictions.configuration_names):
the recorded ``configuration`` column when every trial has one, else made from the variant,
the weight format and the other keys that vary, as the orchestrator names child runs."""

from __future__ import annotations

import pandas as pd

from analysis.predictions import configuration_names

KEYS = ["format", "bits", "lr", "accumulator", "seed"]


def test_the_recorded_configuration_column_is_the_name() -> None:
    trials = pd.DataFrame({"configuration": ["block<8> vc", "fp32"], "format": ["block", "fp32"]})
    assert configuration_names(trials, KEYS).tolist() == ["block<8> vc", "fp32"]


def test_names_from_the_format_and_the_keys_that_vary() -> None:
    trials = pd.DataFrame(
        {
            "variant": [None, None, "halp"],
            "format": ["fp32", "block", "block"],
            "bits": [None, 8, 4],
            "lr": [0.1, 0.1, 0.000123456],
            "accumulator": ["full", "vc", "vc"],
            "seed": [0, 0, 0],  # the same in every trial: not in the name
            "configuration": ["x", None, "y"],  # not every trial has one: made here
        }
    )
    assert configuration_names(trials, KEYS).tolist() == [
        "fp32 lr=0.1 full",
        "block<8> lr=0.1 vc",
        "halp block<4> lr=0.0001235 vc",
    ]


def test_a_recorded_weight_format_wins_and_nothing_varying_is_all() -> None:
    trials = pd.DataFrame({"format": ["fixed", "fixed"], "bits": [8, 6],
                           "weight_format": ["fixed<8,6>", "fixed<6,4>"]})  # fmt: skip
    assert configuration_names(trials, KEYS).tolist() == ["fixed<8,6>", "fixed<6,4>"]
    same = pd.DataFrame({"lr": [0.1, 0.1], "seed": [0, 1]})
    assert configuration_names(same, ["lr"]).tolist() == ["all", "all"]
