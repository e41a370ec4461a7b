"""``python -m lowprec.warm`` reaches every numba kernel a one-core trial launches: after
it, each kernel's serial twin holds a compiled signature (loaded from numba's cache, or compiled
when the cache is cold), so the first trial of a sweep compiles nothing. Checked in a fresh
process: kernels that earlier tests of this worker launched would hide a kernel it misses."""

from __future__ import annotations

import json
import subprocess
import sys

from lowprec import warm

#: launched only with several threads (a parallel maximum over chunks of a few long blocks)
MULTI_THREAD_ONLY = ("block_maxbits_chunked",)

PROBE = """
import importlib, json, pkgutil
from numba.core.registry import CPUDispatcher
import lowprec.kernels.numba as package
from lowprec import warm

calls = warm.warm((1,), say=lambda line: None)
kernels = {}
for info in pkgutil.iter_modules(package.__path__):
    module = importlib.import_module(package.__name__ + "." + info.name)
    for name, obj in vars(module).items():
        if isinstance(obj, CPUDispatcher) and hasattr(obj, "serial"):  # launched from Python
            kernels[info.name + "." + name] = len(obj.serial.signatures)
print(json.dumps({"calls": calls, "kernels": kernels}))
"""


def test_warm_compiles_every_serial_kernel() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=1500, check=True
    )
    report = json.loads(done.stdout.splitlines()[-1])
    kernels = report["kernels"]
    assert {"step.sgld_step", "step.sghmc_step", "quantize.quantize_block"} <= set(kernels)
    assert report["calls"] == len(warm.FORMATS) * len(warm.SIZES) * 3 + len(warm.STEP_FORMATS) * 12
    cold = [
        name
        for name, signatures in kernels.items()
        if signatures == 0 and name.split(".")[1] not in MULTI_THREAD_ONLY
    ]
    assert not cold, f"not compiled by the warm-up: {cold}"


def test_cli_says_what_it_compiled(capsys) -> None:  # type: ignore[no-untyped-def]
    assert warm.main(["--threads", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "compiling the numba kernels into numba's cache (threads (1,)) ..."
    assert out[-1].startswith("numba kernels compiled and cached: 102 calls in ")
