"""bench.resnet end to end on tiny sizes, ending with one JSON object (its contract)."""

from __future__ import annotations

import pytest

from bench import resnet
from tests.bench.helpers import last_json


def test_bench_resnet(capsys: pytest.CaptureFixture[str]) -> None:
    resnet.main(["--device", "cpu", "--batch", "2", "--repeats", "1", "--json"])
    assert last_json(capsys)["lp_over_fp32"] > 0
