"""``python -m tests.faults.driver ARGS``: ``python -m orchestrator.sweep ARGS`` with the
injection point ``LOWPREC_FAULT_PAUSE=report`` added: the driver pauses inside the analysis
report (after its files, before they reach MLflow) until a signal comes. The write points
(``row``, ``consolidate``) come from the tests' ``sitecustomize`` in every process."""

from __future__ import annotations

import os
import sys
from typing import Any

from tests.faults.pause import POINT, pause


def main(argv: list[str]) -> int:
    from orchestrator import sweep

    if os.environ.get(POINT) == "report":
        import analysis.report

        original = analysis.report.write_report

        def write_report(*args: Any, **kwargs: Any) -> Any:
            report = original(*args, **kwargs)
            pause("analysis report")
            return report

        analysis.report.write_report = write_report
    return sweep.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
