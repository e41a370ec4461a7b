"""Throughput of the stochastic quantizers, fused kernels against the eager path, side by side.

    python -m bench.quantize [--json] [--n N] [--device cpu|cuda] [--repeats R]
                             [--threads 1,2] [--no-compile-time] [--torch-thp]

On N float32 values (default 10^7) each round times, one after the other: a plain tensor copy
(the memory floor), the plain PyTorch expression clamp(floor(x/Δ + rand_like(x))·Δ) for
fixed<8,3> as a user writes it (``torch_expr``: five new tensors) and the same chain into two
preallocated tensors (``torch_expr out=``), QPyTorch's ``fixed_point_quantize`` when it is
importable (the quantizers the LP-SGLD papers used; a line says when it is not), and our
stochastic rounding of fixed<8,3>, float<4,3>, block<8> (rows of 1000: a max pass, then the
rounding), block<8,32>, mx<fp8_e4m3>, mx<fp4_e2m1>, nvfp4 and int<4,g32> (a scale per run of
32 or 16 values: the block maxima, then the rounding), block<8> and int<8> on the 1-D tensor
(``block_1d``, ``int8_1d``: an exponent or a scale per element), block<8,N> on it
(``block_1d_one``: one exponent for all N values) with ``kernels="fused"`` (into a
preallocated ``out=``, as the copy writes into one, and returning a new tensor as a user calls
it) and ``kernels="eager"``, plus nearest fixed<8,3> fused.

What a new tensor costs: its pages are mapped and zeroed by the kernel at the first write,
unless its memory is reused (lowprec/kernels/outputs.py: the fused path's large outputs are on
2 MiB pages and, once freed, reused). Rows ``write``, ``new 4K pages + write``, ``new 2M pages +
write`` and ``reused + write`` time a write of N floats into an existing tensor, into
``torch.empty_like`` (4 KiB pages: one fault per page), into a new mapping advised to use
2 MiB pages, and into ``outputs.new_output`` as a loop of calls gets it (the buffer the last
call freed); ``first_touch_ms`` is the difference with ``write``. ``fixed fused 4K pages`` and
``fixed fused fresh 2M pages`` are the fused call without reuse, on either page size (what it
cost two rounds and one round ago). With ``--torch-thp`` the fixed-point rows run again in a
child process with THP_MEM_ALLOC_ENABLE=1 (torch then advises huge pages for all its
allocations, torch_expr's included), reported under ``torch_thp``.

On the CPU this runs once per thread count (torch and numba set alike). Medians; GB/s counts
one read and one write of N float32 (8·N bytes, the same nominal traffic for all, so ratios are
ratios of times). Reported: ``sr_vs_copy`` = copy time / our fused time into ``out=`` (per
format and path in ``sr_vs_copy_by_format``; ``sr_vs_copy_allocating`` for a new tensor) and
``sr_vs_torch_expr`` = torch_expr time / our fused fixed-point time, both allocating (as a user
calls them in a loop); ``sr_vs_torch_expr_fresh`` and ``_4k`` the same with our output on new
pages (2 MiB, 4 KiB),
``sr_vs_torch_expr_out`` against ours into ``out=``, ``sr_vs_torch_expr_no_alloc`` = torch_expr
out= / ours into out= (neither allocates). The top-level keys are the fixed<8,3> figures at the
first thread count. The numba compile time of a first call (cold cache) and of a later process
(kernels loaded from numba's cache) is measured in fresh processes and kept out of the
steady-state figures. With --json the last line is one object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator

import torch

from bench.timing import device_name, side_by_side
from lowprec import quantize
from lowprec.formats import FixedPoint
from lowprec.kernels import outputs

#: fused into a preallocated tensor (as the copy is), fused returning a new tensor, eager
PATHS = ("fused out=", "fused", "eager")
FORMATS = {
    "fixed": "fixed<8,3>",
    "float": "float<4,3>",
    "block_rows": "block<8>",
    "block_k32": "block<8,32>",
    # the formats of today's hardware (scale per block of 32 or 16 values along the last dim)
    "mx_fp8": "mx<fp8_e4m3>",
    "mx_fp4": "mx<fp4_e2m1>",
    "nvfp4": "nvfp4",
    "int4_g32": "int<4,g32>",
    # the same values as one 1-D tensor: a block (exponent, scale) per element; no layout may
    # fall off the fused path's speed (it ran ~100x slower than the rows before)
    "block_1d": "block<8>",
    "int8_1d": "int<8>",
    # and as one block: one exponent over all N values (block<8,N>; few long blocks take the
    # chunked parallel maximum)
    "block_1d_one": "block<8,{n}>",
}


def _qpytorch() -> Callable[..., torch.Tensor] | None:
    try:
        from qtorch.quant import fixed_point_quantize
    except Exception:
        return None
    return fixed_point_quantize


@contextlib.contextmanager
def _outputs(reuse: bool, huge_pages: bool = True) -> Iterator[None]:
    """The fused path's output allocation with reuse and huge pages on or off."""
    saved = outputs.POOL_MAX_BYTES, outputs.HUGEPAGE_MIN_BYTES
    outputs.POOL.clear()
    outputs.POOL_MAX_BYTES = saved[0] if reuse else 0
    outputs.HUGEPAGE_MIN_BYTES = saved[1] if huge_pages else 1 << 62
    try:
        yield
    finally:
        outputs.POOL_MAX_BYTES, outputs.HUGEPAGE_MIN_BYTES = saved


def _with(fn: Callable[[], object], reuse: bool, huge_pages: bool = True) -> Callable[[], object]:
    """``fn`` run under :func:`_outputs`."""

    def run() -> object:
        with _outputs(reuse, huge_pages):
            return fn()

    return run


def measure(
    n: int, device: torch.device, repeats: int, seed: int = 0, fixed_only: bool = False
) -> dict[str, object]:
    """Median seconds per method over ``repeats`` rounds, every method once per round
    (``fixed_only``: the copy, write and fixed-point rows only)."""
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(n, generator=g, device=device)
    rows = x.view(-1, 1000) if n % 1000 == 0 else x.view(1, -1)
    dst = torch.empty_like(x)
    tmp = torch.empty_like(x)
    fixed = FixedPoint(8, 3)
    delta, lo, hi = fixed.delta, fixed.min_value, fixed.max_value

    def peer() -> torch.Tensor:
        return torch.clamp(torch.floor(x / delta + torch.rand_like(x)) * delta, lo, hi)

    def peer_out() -> torch.Tensor:
        torch.div(x, delta, out=dst)
        torch.rand(x.shape, generator=g, device=device, out=tmp)
        return dst.add_(tmp).floor_().mul_(delta).clamp_(lo, hi)

    methods: dict[str, Callable[[], object]] = {
        "copy": lambda: dst.copy_(x),
        "write": lambda: dst.fill_(0.5),
        "new 4K pages + write": _with(lambda: outputs.new_output(x).fill_(0.5), False, False),
        "new 2M pages + write": _with(lambda: outputs.new_output(x).fill_(0.5), False),
        "reused + write": lambda: outputs.new_output(x).fill_(0.5),
        "torch_expr": peer,
        "torch_expr out=": peer_out,
    }
    qpt = _qpytorch()
    if qpt is not None and not fixed_only:
        methods["qpytorch fixed<8,3>"] = lambda: qpt(x, 8, 3, rounding="stochastic")
    out_rows = dst.view(rows.shape)
    for name, fmt_of_n in FORMATS.items():
        if fixed_only and name != "fixed":
            continue
        fmt = fmt_of_n.format(n=n)
        data, into = (rows, out_rows) if name == "block_rows" else (x, dst)
        methods[f"{name} fused out="] = lambda d=data, f=fmt, o=into: quantize(
            d, f, "stochastic", g, kernels="fused", out=o
        )
        for path in ("fused", "eager"):
            methods[f"{name} {path}"] = lambda d=data, f=fmt, p=path: quantize(
                d, f, "stochastic", g, kernels=p
            )
    for label, huge in (("4K pages", False), ("fresh 2M pages", True)):
        methods[f"fixed fused {label}"] = _with(
            lambda: quantize(x, fixed, "stochastic", g, kernels="fused"), False, huge
        )
    methods["fixed nearest fused out="] = lambda: quantize(
        x, fixed, "nearest", kernels="fused", out=dst
    )
    median = side_by_side(methods, device, repeats, warmup=1)
    names = ["fixed"] if fixed_only else list(FORMATS)
    sr_vs_copy = {
        f"{name} {path}": median["copy"] / median[f"{name} {path}"]
        for name in names
        for path in PATHS
    }
    out: dict[str, object] = {
        "threads": torch.get_num_threads(),
        "median_s": median,
        "gb_per_s": {name: 8 * n / t / 1e9 for name, t in median.items()},
        "first_touch_ms": {
            pages: (median[row] - median["write"]) * 1e3
            for pages, row in (
                ("4K", "new 4K pages + write"),
                ("2M", "new 2M pages + write"),
                ("reused", "reused + write"),
            )
        },
        "torch_expr_allocations_ms": (median["torch_expr"] - median["torch_expr out="]) * 1e3,
        "sr_vs_copy_by_format": sr_vs_copy,
        "sr_vs_copy": sr_vs_copy["fixed fused out="],
        "sr_vs_copy_allocating": sr_vs_copy["fixed fused"],
        "sr_vs_torch_expr": median["torch_expr"] / median["fixed fused"],
        "sr_vs_torch_expr_fresh": median["torch_expr"] / median["fixed fused fresh 2M pages"],
        "sr_vs_torch_expr_4k": median["torch_expr"] / median["fixed fused 4K pages"],
        "sr_vs_torch_expr_out": median["torch_expr"] / median["fixed fused out="],
        "sr_vs_torch_expr_no_alloc": median["torch_expr out="] / median["fixed fused out="],
        "fused_over_eager": {
            name: median[f"{name} eager"] / median[f"{name} fused"] for name in names
        },
    }
    if qpt is not None:
        out["sr_vs_qpytorch"] = median["qpytorch fixed<8,3>"] / median["fixed fused"]
    return out


_COMPILE_PROBE = """
import time, torch
t0 = time.perf_counter()
from lowprec import quantize, vc_quantize
x = torch.randn(4096).reshape(4, -1)
g = torch.Generator().manual_seed(0)
for fmt in ("fixed<8,3>", "float<4,3>", "block<8>"):
    quantize(x, fmt, "stochastic", g, kernels="fused")
    quantize(x, fmt, "nearest", kernels="fused")
    vc_quantize(x, 0.01, fmt, g, kernels="fused")
print(time.perf_counter() - t0)
"""


def compile_times() -> dict[str, float]:
    """Seconds of import + the first fused calls (SR, nearest, VC of three formats) in a fresh
    process: with an empty numba cache (every kernel compiled) and again with that cache."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("first_call_cold_cache_s", "first_call_cached_s"):
            out[label] = float(_child(_COMPILE_PROBE, env))
    return out


def _child(code: str, env: dict[str, str], *args: object) -> str:
    """The last line ``python -c code args`` prints in a fresh process under ``env``."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child process failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip().splitlines()[-1]


def _set_threads(n: int) -> None:
    """torch's and numba's thread counts (numba's first: starting its OpenMP pool resets the
    process-wide count torch reads)."""
    try:
        from lowprec.kernels.numba.jit import set_threads

        set_threads(n)
    except Exception:  # numba absent: the fused rows then run eager (resolve says so)
        pass
    torch.set_num_threads(n)


def _print_table(result: dict[str, object], run: dict[str, object]) -> None:
    print(
        f"\n{result['device']} ({result['device_name']}), {run['threads']} threads, "
        f"{result['n']:.0e} float32, median of {result['repeats']}"
    )
    print(f"{'method':<26} {'median ms':>10} {'GB/s':>8} {'vs copy':>8}")
    copy = run["median_s"]["copy"]
    for name, seconds in run["median_s"].items():
        print(
            f"{name:<26} {seconds * 1e3:>10.2f} {run['gb_per_s'][name]:>8.2f} "
            f"{copy / seconds:>8.3f}"
        )
    fused_ = run["sr_vs_copy_by_format"]
    touch = run["first_touch_ms"]
    print(
        "sr_vs_copy fused out=: "
        + "  ".join(
            f"{k[: -len(' fused out=')]} {v:.3f}" for k, v in fused_.items() if k.endswith(" out=")
        )
        + "   fused/eager speed-up: "
        + "  ".join(f"{k} {v:.1f}x" for k, v in run["fused_over_eager"].items())
    )
    print(
        f"sr_vs_torch_expr = {run['sr_vs_torch_expr']:.1f} (both allocating; ours on fresh "
        f"2M pages: {run['sr_vs_torch_expr_fresh']:.1f}, 4K pages: "
        f"{run['sr_vs_torch_expr_4k']:.1f}, ours into out=: {run['sr_vs_torch_expr_out']:.1f}, "
        f"neither allocating: {run['sr_vs_torch_expr_no_alloc']:.1f})   first touch of a new "
        f"tensor: {touch['4K']:.1f} ms on 4K pages, {touch['2M']:.1f} ms on 2M pages, "
        f"{touch['reused']:.1f} ms reused; torch_expr's allocations: "
        f"{run['torch_expr_allocations_ms']:.1f} ms"
    )


_THP_CHILD = """
import json, sys, torch
from bench import quantize as q
q._set_threads(int(sys.argv[2]))
run = q.measure(int(sys.argv[1]), torch.device("cpu"), int(sys.argv[3]), fixed_only=True)
print(json.dumps(run))
"""


def torch_thp(n: int, threads: int, repeats: int) -> dict[str, object]:
    """The fixed-point rows in a child process with THP_MEM_ALLOC_ENABLE=1 (read by torch at
    its first allocation, so it cannot be switched in this process)."""
    env = {**os.environ, "THP_MEM_ALLOC_ENABLE": "1"}
    return json.loads(_child(_THP_CHILD, env, n, threads, repeats))


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.quantize", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--n", type=int, default=10**7, help="values per tensor (default 1e7)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; medians reported")
    parser.add_argument("--threads", default="1,2", help="CPU thread counts (default 1,2)")
    parser.add_argument(
        "--no-compile-time", action="store_true", help="skip the fresh-process compile probes"
    )
    parser.add_argument(
        "--torch-thp",
        action="store_true",
        help="also run the fixed-point rows with THP_MEM_ALLOC_ENABLE=1 (a child process)",
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        parser.error("--n and --repeats must be >= 1")
    if args.device not in ("cpu", "cuda"):
        parser.error(f"--device {args.device!r}: expected cpu or cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads {args.threads!r}: expected comma-separated integers")
    if not threads or min(threads) < 1:
        parser.error("--threads: each count must be >= 1")
    device = torch.device(args.device)
    if device.type == "cuda":
        threads = threads[:1]
    result: dict[str, object] = {
        "n": args.n,
        "device": str(device),
        "device_name": device_name(device),
        "repeats": args.repeats,
        "torch": torch.__version__,
    }
    if _qpytorch() is None:
        print("qpytorch: not importable, its row is skipped (pip install qtorch to add it)")
    before = torch.get_num_threads()
    runs = {}
    try:
        for t in threads:
            _set_threads(t)
            runs[str(t)] = measure(args.n, device, args.repeats)
            _print_table(result, runs[str(t)])
            if args.torch_thp and device.type == "cpu":
                thp = torch_thp(args.n, t, args.repeats)
                runs[str(t)]["torch_thp"] = thp
                print(f"\nthe same rows under THP_MEM_ALLOC_ENABLE=1 ({t} threads, child process)")
                _print_table(result, thp)
    finally:
        _set_threads(before)
    result["by_threads"] = runs
    first = runs[str(threads[0])]
    for key in (
        "sr_vs_copy",
        "sr_vs_copy_allocating",
        "sr_vs_torch_expr",
        "sr_vs_torch_expr_4k",
        "sr_vs_torch_expr_out",
        "sr_vs_torch_expr_no_alloc",
        "threads",
    ):
        result[key] = first[key]
    if device.type == "cpu" and not args.no_compile_time:
        result["numba_compile"] = compile_times()
        c = result["numba_compile"]
        print(
            f"\nnumba, first fused calls in a fresh process (import included): "
            f"{c['first_call_cold_cache_s']:.1f} s with an empty cache, "
            f"{c['first_call_cached_s']:.1f} s from the cache (what each later trial pays)"
        )
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
