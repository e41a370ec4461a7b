"""The ``scale_rule`` key: the MX scale rule of every MX format of a trial, recorded per trial,
without effect (and unrecorded) where no tensor kind is in an MX format, refused in one line
before torch loads when unknown (workloads/config/resolve.py, precision.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lowprec.formats import MXFormat
from workloads.config.precision import precision_of
from workloads.config.resolve import (
    check_keys,
    effective_params,
    irrelevant_keys,
    resolve_config,
    with_defaults,
)

REPO = Path(__file__).resolve().parents[3]
MLP = {"workload": "mnist_mlp"}


@pytest.mark.parametrize("rule", ["floor", "rceil", "even"])
def test_the_rule_reaches_every_mx_format_and_is_recorded(rule: str) -> None:
    raw = {**MLP, "format": "mx<fp4_e2m1>", "tensors": "WGAE", "scale_rule": rule}
    raw |= {"accumulator": "vc", "sampler": "sghmc"}  # momentum follows the weights under vc
    spec = precision_of(resolve_config(raw))
    for kind in ("weight", "grad", "act", "error", "momentum"):
        assert getattr(spec, kind) == MXFormat("fp4_e2m1", 32, rule), kind
    record = effective_params(raw)
    assert record["scale_rule"] == rule
    suffix = "" if rule == "floor" else f",{rule}"
    assert record["weight_format"] == record["act_format"] == f"mx<fp4_e2m1{suffix}>"


def test_the_mx_family_with_bits_and_an_override_take_it_too() -> None:
    raw = {**MLP, "format": "mx", "bits": 8, "act_format": "mx<fp6_e2m3,16>", "tensors": "WGA"}
    spec = precision_of(resolve_config({**raw, "scale_rule": "even"}))
    assert spec.weight == MXFormat("fp8_e4m3", 32, "even")
    assert spec.act == MXFormat("fp6_e2m3", 16, "even")
    assert spec.error.is_identity  # E not in tensors: fp32


def test_other_formats_ignore_it_and_leave_it_unrecorded() -> None:
    for fmt in ("block", "fp8_e4m3", "nvfp4", "int<4,g32>", "fp32"):
        raw = {**MLP, "format": fmt, "scale_rule": "rceil"}
        config = resolve_config(raw)
        assert config["scale_rule"] is None, fmt
        assert (
            "no tensor kind of this trial is in an mx format"
            in (irrelevant_keys(with_defaults(config))["scale_rule"])
        )
        assert "scale_rule" not in effective_params(raw)
    # an mx format on a kind the trial lacks (logreg has no activations) is no mx format of it
    raw = {"workload": "logreg", "act_format": "mx<fp8_e4m3>", "scale_rule": "even"}
    assert resolve_config(raw)["scale_rule"] is None


def test_a_rule_in_the_format_string_stands_and_may_not_be_contradicted() -> None:
    own = {**MLP, "format": "mx<fp8_e4m3,32,rceil>"}
    # the default (floor) leaves the string's rule, and then has no effect of its own
    assert precision_of(resolve_config(own)).weight.scale_rule == "rceil"
    assert resolve_config(own)["scale_rule"] is None
    assert (
        "names its own scale rule"
        in irrelevant_keys(with_defaults(resolve_config(own)))["scale_rule"]
    )
    assert effective_params({**own, "scale_rule": "rceil"})["scale_rule"] == "rceil"
    with pytest.raises(ValueError, match=r"^key 'scale_rule': 'even' contradicts the rule 'rceil'"):
        check_keys({**own, "scale_rule": "even"})
    # a second mx format without a rule of its own takes the key (the trial records it)
    mixed = {**own, "tensors": "WGAE", "act_format": "mx<fp6_e2m3>", "scale_rule": "rceil"}
    assert precision_of(resolve_config(mixed)).act.scale_rule == "rceil"


def test_an_unknown_rule_is_refused_in_one_line_before_torch_loads() -> None:
    with pytest.raises(ValueError, match=r"^key 'scale_rule': 'ceil' is not one of floor, rceil"):
        check_keys({**MLP, "format": "mx<fp4_e2m1>", "scale_rule": "ceil"})
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "orchestrator.trial", "workload=mnist_mlp",
         "format=mx<fp4_e2m1>", "scale_rule=ceil"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert proc.returncode == 2 and proc.stdout == ""
    assert lines == ["error: key 'scale_rule': 'ceil' is not one of floor, rceil, even"]
    assert "workloads.config.resolve" in imported and "torch" not in imported
