"""Fused kernels for the quantizers: which code path runs, and the launchers.

``kernels`` (the config key, and the keyword of :func:`lowprec.quantize` and
:func:`lowprec.vc_quantize`) chooses the code path:

- ``"eager"``: the readable PyTorch reference in lowprec/quantize.py and lowprec/vc.py;
- ``"fused"``: one kernel per tensor (two for block formats: the block maxima, then the
  rounding), random bits from Philox keyed by (a key drawn once per call from the generator,
  element index): numba on the CPU, Triton on CUDA. Raises ``ValueError`` when unavailable;
- ``"auto"``: fused where a fast path exists for the device, else eager, saying why once.

Both paths round onto the same grid with the same laws (nearest: the same bits; stochastic:
unbiased, variance δ(Δ - δ), on the grid, in range), but they draw different random numbers:
a trial replays exactly from its seed on the same path and device.

Device-level building blocks for other fused kernels: lowprec/kernels/numba/ and
lowprec/kernels/triton/ (Triton), with the bit layout of lowprec/kernels/rng.py.
"""

from __future__ import annotations

import functools
import os
import sys

import torch

from lowprec.precision import KERNEL_MODES

__all__ = ["KERNEL_MODES", "available", "resolve"]

_warned: set[str] = set()


@functools.cache
def _numba_reason() -> str | None:
    """None when the numba kernels import, else why not."""
    if os.environ.get("LOWPREC_NO_NUMBA"):
        return "LOWPREC_NO_NUMBA is set"
    try:
        import lowprec.kernels.numba.quantize  # noqa: F401
    except Exception as exc:  # ImportError, or numba failing to initialise
        return f"numba is not usable ({type(exc).__name__}: {exc})"
    return None


@functools.cache
def _triton_reason() -> str | None:
    """None when the Triton kernels import and pass a smoke check on the GPU (nearest rounding
    equal to the eager path, stochastic rounding and VC run), else why not: a kernel that does
    not compile on this GPU then falls back instead of failing the trial."""
    if os.environ.get("LOWPREC_NO_TRITON"):
        return "LOWPREC_NO_TRITON is set"
    try:
        import lowprec.kernels.triton.launch  # noqa: F401
    except Exception as exc:
        return f"Triton is not usable ({type(exc).__name__}: {exc})"
    try:
        _triton_smoke()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"the Triton kernels failed a smoke check ({type(exc).__name__}: {first})"
    return None


def _triton_smoke() -> None:
    """Triton's nearest rounding equal to numba's (each is held bit for bit to the eager
    reference by the tests), and a stochastic and a VC call that run."""
    from lowprec.formats import BlockFloat, FixedPoint, SmallFloat
    from lowprec.kernels.fused import quantize_fused, vc_quantize_fused

    x = torch.linspace(-3.0, 3.0, 4096, device="cuda").reshape(64, 64)
    g = torch.Generator(device="cuda").manual_seed(0)
    for fmt in (FixedPoint(8, 3), SmallFloat(4, 3), BlockFloat(8), BlockFloat(8, 32)):
        on_cpu = quantize_fused(x.cpu(), fmt, "nearest", None, "numba")
        if not torch.equal(quantize_fused(x, fmt, "nearest", None, "triton").cpu(), on_cpu):
            raise RuntimeError(f"nearest rounding to {fmt} differs from the CPU kernels")
        quantize_fused(x, fmt, "stochastic", g, "triton")
        vc_quantize_fused(x, 0.01, fmt, g, "triton")
    torch.cuda.synchronize()


def available(device: torch.device | str) -> str | None:
    """None when a fused path exists for ``device``, else the reason in one line."""
    kind = torch.device(device).type
    if kind == "cpu":
        return _numba_reason()
    if kind == "cuda":
        return _triton_reason()
    return f"no fused kernels for device type {kind!r}"


def resolve(mode: str, device: torch.device | str) -> str:
    """ "fused" or "eager" for ``mode`` (auto | fused | eager) on ``device``.

    auto: fused when available, else eager with one line on stderr saying why (once per
    process and reason). fused when unavailable: ``ValueError`` naming the key 'kernels'.
    """
    if mode not in KERNEL_MODES:
        raise ValueError(f"kernels: {mode!r} is not one of {', '.join(KERNEL_MODES)}")
    if mode == "eager":
        return "eager"
    reason = available(device)
    if reason is None:
        return "fused"
    if mode == "fused":
        raise ValueError(
            f"kernels: 'fused' is unavailable on {torch.device(device)}: {reason}; "
            "use kernels=auto (falls back to eager) or kernels=eager"
        )
    if reason not in _warned:
        _warned.add(reason)
        print(
            f"lowprec: kernels=auto on {torch.device(device).type}: {reason}; "
            "using the eager kernels",
            file=sys.stderr,
        )
    return "eager"
