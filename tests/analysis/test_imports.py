"""analysis reads files only: importing it loads neither torch nor workloads nor lowprec, and
its one ECE agrees with the trials' own metrics."""

from __future__ import annotations

import subprocess
import sys

from analysis.load import COMMON_KEY_NAMES


def test_importing_analysis_loads_no_torch() -> None:
    code = (
        "import sys, analysis, analysis.report, analysis.load, analysis.plots, analysis.pareto\n"
        "import analysis.answer, analysis.stats\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'workloads', 'lowprec', 'ray', 'mlflow', 'orchestrator'))\n"
        "print(' '.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "", out.stdout[:300]


def test_common_key_names_are_the_key_table() -> None:
    from workloads.config.resolve import COMMON_KEYS

    assert set(COMMON_KEYS) == COMMON_KEY_NAMES
