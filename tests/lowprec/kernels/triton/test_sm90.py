"""Every Triton kernel compiles for a real GPU (sm_90: H100/H200), without one.

CI has no GPU: the Triton kernels run there under TRITON_INTERPRET=1, which executes their
Python with numpy and never compiles them. A kernel can pass in the interpreter and still fail
to compile (a tuple argument the code generator does not take, a type the interpreter lets
through). Triton compiles ahead of time for a named target with its bundled ptxas: source ->
TTIR -> TTGIR -> LLVM IR -> PTX -> cubin, no driver involved. Each kernel is compiled here with
the argument types and constants its launcher uses (lowprec/kernels/triton/launch.py and
step.py): formats (KIND / KG, KW, KM: fixed, block, float and the scaled MX, INT, NVFP4),
rounding, accumulators, the noise switches and the steps' launches of some of their passes
(momentum rescaling, the per-tensor scale of NVFP4T, nvfp4<t>). When a kernel's parameters
change, this table must be updated with them, and that is the point: it re-checks the GPU
compile.

The compiles run in one child process without TRITON_INTERPRET (tests/conftest.py sets it for
this process, where ``@triton.jit`` then makes interpreted functions, which do not compile):
``python -m tests.lowprec.kernels.triton.test_sm90`` prints one JSON line, case -> error or null.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[4]
P, I32, F32, I64P = "*fp32", "i32", "fp32", "*i64"
#: encoding.triton_format_args: (three float32 constants, three int32 ones)
FORMAT = ("fp32", "fp32", "fp32", "i32", "i32", "i32")
BLOCKS = ("i32", "i32", "i32")
#: the quantizers' format kinds (lowprec/kernels/encoding.py): fixed, block, float, MX, INT,
#: NVFP4, MX_RCEIL, MX_EVEN
KINDS = (1, 2, 3, 4, 5, 6, 8, 9)


def _compile(fn: Any, **args: Any) -> dict[str, Any]:
    """``fn`` compiled for sm_90: a str or tuple value is an argument's type, anything else a
    constexpr's value. Every parameter must be given (a launcher's whole call)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    assert set(args) == set(fn.arg_names), set(fn.arg_names) ^ set(args)
    signature = {n: (v if isinstance(v, str | tuple) else "constexpr") for n, v in args.items()}
    constants = {n: v for n, v in args.items() if signature[n] == "constexpr"}
    source = ASTSource(fn=fn, signature=signature, constexprs=constants)
    return triton.compile(source, target=GPUTarget("cuda", 90, 32)).asm


def _cases() -> list[tuple[str, Any, dict[str, Any]]]:
    from lowprec.kernels.triton import quantize, step

    cases = []
    for stochastic in (False, True):
        for kind in KINDS:
            cases.append((
                f"quantize kind={kind} stochastic={stochastic}", quantize.quantize_kernel,
                dict(x_ptr=P, out_ptr=P, n=I32, key_ptr=I64P, stream=I32, f=FORMAT,
                     maxbits_ptr="*i32", blocks=BLOCKS, ts_ptr=P, KIND=kind,
                     STOCHASTIC=stochastic),
            ))  # fmt: skip
    cases.append((
        "block maxima", quantize.block_maxbits_kernel,
        dict(x_ptr=P, maxbits_ptr="*i32", nblocks=I32, nb=I32, length=I32, width=I32, BB=4,
             CW=1024),
    ))  # fmt: skip
    cases.append((
        "bits16", quantize.bits16_kernel, dict(out_ptr="*i32", n=I32, key_ptr=I64P, stream=I32)
    ))  # fmt: skip
    for per in (False, True):
        cases.append((
            f"vc block maxima var_per={per}", quantize.vc_block_maxbits_kernel,
            dict(mu_ptr=P, var_ptr=P, vscalar=F32, sd=F32, maxbits_ptr="*i32", nblocks=I32,
                 nb=I32, length=I32, width=I32, VAR_PER=per, BB=4, CW=1024),
        ))  # fmt: skip
        for kind in KINDS:
            cases.append((
                f"vc kind={kind} var_per={per}", quantize.vc_quantize_kernel,
                dict(mu_ptr=P, var_ptr=P, vscalar=F32, sd=F32, out_ptr=P, n=I32,
                     key_ptr=I64P, f=FORMAT, maxbits_ptr="*i32", blocks=BLOCKS, ts_ptr=P,
                     KIND=kind, VAR_PER=per),
            ))  # fmt: skip
    # (KG, KW, accumulator 0 full / 1 low / 2 vc, stochastic, passes (first, last))
    # (4 MX, 5 INT, 6 NVFP4, 7 NVFP4T: the scaled kinds; NVFP4T W in two launches)
    for kg, kw, acc, stochastic, (first, last) in [
        (1, 1, 1, True, (1, 2)), (2, 2, 0, True, (1, 2)), (3, 3, 2, True, (1, 2)),
        (2, 2, 2, False, (1, 2)), (0, 0, 0, False, (1, 2)), (4, 4, 1, True, (1, 2)),
        (5, 5, 2, True, (1, 2)), (6, 6, 0, False, (1, 2)), (7, 7, 1, True, (1, 1)),
        (7, 7, 2, True, (2, 2)), (8, 8, 1, True, (1, 2)), (9, 9, 2, True, (1, 2)),
    ]:  # fmt: skip
        cases.append((
            f"sgld kg={kg} kw={kw} acc={acc} stochastic={stochastic} passes={first}-{last}",
            step._sgld_kernel,
            dict(theta_ptr=P, hat_ptr=P, grad_ptr=P, gstart_ptr=I64P, glen_ptr=I64P,
                 key_ptr=I64P, scale_ptr="*fp64", gmax_ptr="*i32", coef=(F32,) * 5, fg=FORMAT,
                 fw=FORMAT, KG=kg, KW=kw, ACC=acc, STOCHASTIC=stochastic, NOISY=acc != 2,
                 NORMALS=True, FIRST=first, LAST=last, BLOCK_=step.BLOCK),
        ))  # fmt: skip
    # (KG, KW, KM, accumulator, passes (first, last), momentum rescaling)
    for kg, kw, km, acc, (first, last), rescale in [
        (2, 2, 0, 0, (1, 3), False), (1, 1, 1, 2, (1, 3), False), (1, 1, 1, 1, (1, 1), True),
        (1, 1, 1, 2, (2, 3), True), (3, 3, 3, 1, (1, 3), False), (2, 2, 2, 2, (1, 3), False),
        (4, 4, 4, 2, (1, 3), False), (5, 5, 5, 1, (1, 3), False), (6, 6, 6, 2, (1, 3), False),
        (7, 7, 7, 1, (1, 1), False), (7, 7, 7, 2, (2, 2), False), (7, 7, 7, 2, (3, 3), False),
        (1, 7, 1, 2, (2, 2), True), (8, 8, 8, 2, (1, 3), False), (9, 9, 9, 1, (1, 3), False),
    ]:  # fmt: skip
        cases.append((
            f"sghmc kg={kg} kw={kw} km={km} acc={acc} passes={first}-{last} rescale={rescale}",
            step._sghmc_kernel,
            dict(theta_ptr=P, hat_ptr=P, mom_ptr=P, grad_ptr=P, gstart_ptr=I64P,
                 glen_ptr=I64P, key_ptr=I64P, scale_ptr="*fp64", gmax_ptr="*i32",
                 coef=(F32,) * 12, fg=FORMAT, fw=FORMAT, fm=FORMAT, KG=kg, KW=kw, KM=km,
                 ACC=acc, STOCHASTIC=True, NOISY=True, FIRST=first, LAST=last,
                 RESCALE=rescale, BLOCK_=step.BLOCK),
        ))  # fmt: skip
    return cases


def _compile_all() -> dict[str, str | None]:
    """Each case's compile error (None: it compiled to PTX for sm_90 and a ptxas cubin)."""
    errors: dict[str, str | None] = {}
    for name, fn, args in _cases():
        try:
            asm = _compile(fn, **args)
            assert ".target sm_90" in asm["ptx"], "no sm_90 PTX"
            assert len(asm["cubin"]) > 1000, "no cubin"
            errors[name] = None
        except Exception as exc:  # reported per case by the test
            errors[name] = f"{type(exc).__name__}: {str(exc).strip()[-2000:]}"
    return errors


NAMES = [name for name, _, _ in _cases()]


@pytest.fixture(scope="module")
def compiled() -> dict[str, str | None]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.lowprec.kernels.triton.test_sm90"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_kernel_compiles_for_sm90(compiled: dict[str, str | None], name: str) -> None:
    assert compiled[name] is None, compiled[name]


if __name__ == "__main__":
    print(json.dumps(_compile_all()))
