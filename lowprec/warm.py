"""Compile the numba kernels ahead of their first use: ``python -m lowprec.warm``.

numba compiles a kernel for each signature on its first call and keeps the machine code in its
on-disk cache (``cache=True``: ``__pycache__`` beside the sources, or ``$NUMBA_CACHE_DIR``);
later processes load it in well under a second. Compiling the fused SGLD/SGHMC steps and the
quantizers takes minutes on a small machine, and without this it happens in the first trial of
a sweep (or in every Ray worker that reaches a new kernel first, at the same time). ``make
install`` runs this once, so that a sweep's first trials and the test suite start from a
warm cache.

It runs the public entry points on small random tensors, so it compiles what real calls
compile: ``quantize`` (nearest and stochastic) and ``vc_quantize`` for one format of each kind
the kernels know, and one step of SGLD and SGHMC for each accumulator, on the calling thread
and, where numba has more than one thread, on its thread pool (the kernels' ``.serial`` and
parallel twins). A kernel it misses still compiles on first use, as before.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

#: one format per kind of the kernels (lowprec.kernels.encoding): fixed, float, block (per row
#: and in groups), MX, NVFP4 (one- and two-level), scaled integers (per row and in groups)
FORMATS = (
    "fixed<8,3>",
    "float<4,3>",
    "block<8>",
    "block<8,32>",
    "mx<fp4_e2m1>",
    "nvfp4",
    "nvfp4<t>",
    "int<8>",
    "int<4,g32>",
)
#: the formats the fused steps are compiled for (every kind the step kernels take)
STEP_FORMATS = ("fixed<8,3>", "block<8>", "mx<fp4_e2m1>", "int<4,g32>")
#: sizes on either side of the quantizers' serial limit (lowprec.kernels.fused.SERIAL_MAX)
SIZES = ((4, 250), (64, 1024))


def warm(threads: tuple[int, ...], say=print) -> int:  # type: ignore[no-untyped-def]
    """Run every entry point once per thread count; returns how many calls ran."""
    import torch

    from lowprec import PrecisionSpec, parse_format, quantize, vc_quantize
    from lowprec.samplers import SGHMC, SGLD

    generator = torch.Generator().manual_seed(0)
    calls = 0
    for n in threads:
        torch.set_num_threads(n)
        for text in FORMATS:
            fmt = parse_format(text)
            for shape in SIZES:
                x = torch.randn(shape, generator=generator)
                for rounding in ("nearest", "stochastic"):
                    quantize(x, fmt, rounding=rounding, generator=generator)
                    calls += 1
                vc_quantize(x, torch.full_like(x, 1e-3), fmt, generator=generator)
                calls += 1
        for text in STEP_FORMATS:
            fmt = parse_format(text)
            for accumulator in ("full", "low", "vc"):
                for rounding in ("stochastic", "nearest"):
                    spec = PrecisionSpec(
                        weight=fmt, grad=fmt, momentum=fmt, accumulator=accumulator,
                        rounding=rounding,
                    )  # fmt: skip
                    for rule in (SGLD, SGHMC):
                        _one_step(rule, spec, generator)
                        calls += 1
        say(f"  {n} thread(s): {calls} calls so far")
    return calls


def _one_step(rule, spec, generator) -> None:  # type: ignore[no-untyped-def]
    import torch

    params = [torch.randn(64, 1024, generator=generator), torch.randn(250, generator=generator)]
    sampler = rule(params, spec, generator=generator, executor="fused", num_data=100)
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator)
    sampler.prepare()
    sampler.step(1e-3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lowprec.warm", description=__doc__)
    parser.add_argument(
        "--threads",
        default="1",
        help="thread counts to compile for, e.g. 1,4 (default 1: the serial kernels, which "
        "one-core trials and the tests run; more threads add the parallel twins, minutes more)",
    )
    args = parser.parse_args(argv)
    from lowprec.kernels import available

    reason = available("cpu")
    if reason is not None:
        print(f"numba kernels: not compiled ahead ({reason}); the eager path runs instead")
        return 0
    cores = os.cpu_count() or 1
    threads = tuple(sorted({min(int(t), cores) for t in args.threads.split(",")}))
    start = time.perf_counter()
    print(f"compiling the numba kernels into numba's cache (threads {threads}) ...", flush=True)
    calls = warm(threads, say=lambda line: print(line, flush=True))
    print(
        f"numba kernels compiled and cached: {calls} calls in {time.perf_counter() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
