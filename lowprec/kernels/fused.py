"""Launchers of the fused quantizers: a tensor in, the numba (CPU) or Triton kernel run on it.

``quantize_fused(x, fmt, rounding, generator)`` computes the same function as the eager
``lowprec.quantize._round`` (ALGORITHMS.md §2; the nearest results are bit for bit the same),
with the random bits of lowprec/kernels/rng.py: the key (two 32-bit words) is the only draw
from ``generator``. ``backend`` is "numba" or "triton" (default: numba for CPU tensors,
Triton otherwise; Triton on CPU tensors needs TRITON_INTERPRET=1, which is how CI runs it).
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import torch

from lowprec.formats import NVFP4, BlockFloat, Format, ScaledFormat
from lowprec.kernels.encoding import (  # the one encoding of formats (re-exported here)
    BLOCK,
    FIXED,
    FLOAT,
    element_params,
    format_params,
    scaled_params,
)
from lowprec.kernels.outputs import new_output
from lowprec.kernels.rng import TILE16, draw_key

__all__ = [
    "block_layout",
    "element_params",
    "format_params",
    "has_fused",
    "new_output",
    "quantize_fused",
    "quantize_small",
    "scaled_params",
]

#: the stream the quantizers use (others: lowprec/kernels/vc.py)
QUANTIZE_STREAM = 0
#: numba's parallel kernels are launched from one Python thread at a time
NUMBA_LOCK = threading.Lock()
#: up to this many values (or on one thread) the CPU kernels run on the calling thread: a
#: parallel launch costs more than the work
SERIAL_MAX = 1 << 15
#: the chunk of a parallel block maximum (block_maxbits_chunked) over few long blocks
MAX_CHUNK = 1 << 16
#: the block maxima of a layout with a block per element (not read: the kernels take |x|)
_NO_BITS = np.zeros(1, np.int32)


def _cpu_kernel(kernel, n: int):  # type: ignore[no-untyped-def]
    """The numba ``kernel`` (lowprec.kernels.numba), or its serial compilation (``.serial``,
    the same body) for small ``n`` or one thread."""
    return kernel.serial if n <= SERIAL_MAX or torch.get_num_threads() == 1 else kernel


def _pick(kernel, serial: bool):  # type: ignore[no-untyped-def]
    """The numba ``kernel``'s serial compilation (``.serial``) or the parallel one."""
    return kernel.serial if serial else kernel


def _in_tile(length: int, width: int) -> bool:
    """Whether the numba quantizers take a block layout's maxima in each tile: every tile of
    TILE16 values holds whole blocks (of more than one value), so a tile's maxima come from
    the values in cache and no pass over the tensor precedes the rounding."""
    return width > 1 and length % width == 0 and TILE16 % width == 0


def has_fused(fmt: Format, device: torch.device | str | None = None, op: str = "quantize") -> bool:
    """Whether the fused kernels take ``fmt`` for ``op`` (quantize | vc | step) on ``device``'s
    backend: fixed, block and float formats everywhere (the OCP elements are floats); the
    scaled formats (MX with its scale rules, NVFP4 and nvfp4<t>, scaled integers) in the numba
    and Triton quantizers and steps, and Triton's VC. The others run the eager reference."""
    if isinstance(fmt, ScaledFormat):
        cpu = device is None or torch.device(device).type == "cpu"
        if op == "step":  # the numba and Triton steps: MX, int, nvfp4, nvfp4<t>
            try:
                format_params(fmt)
            except ValueError:
                return False
            return True
        # quantize: numba and Triton; vc: Triton (numba's VC runs the element fused)
        return (op == "quantize" or not cpu) and scaled_params(fmt) is not None
    try:
        format_params(fmt)
    except ValueError:
        return False
    return True


def block_layout(fmt: BlockFloat, shape: torch.Size) -> tuple[int, int, int]:
    """(rows, length, width) of a block format over a contiguous tensor of ``shape``: the
    tensor is ``rows`` rows of ``length`` values, each cut into runs of ``width`` (the last
    shorter); one exponent per run. Dim-0 blocks: width = length = numel/shape[0]; k-blocks:
    length = shape[-1], width = k; a 0-d tensor is one block of one value."""
    n = math.prod(shape)
    if len(shape) == 0:
        return 1, 1, 1
    if fmt.block_size is None:
        rows = int(shape[0])
        length = n // rows
        return rows, length, length
    length = int(shape[-1])
    return n // length, length, fmt.block_size


@contextlib.contextmanager
def _numba_launch() -> Iterator[None]:
    """One numba launch at a time, on torch's thread count. numba's OpenMP pool, started by
    its first parallel launch, resets the process-wide OpenMP thread count (which torch reads)
    to all cores: torch's count is put back, so a trial pinned to one thread stays pinned."""
    from lowprec.kernels.numba.jit import set_threads

    with NUMBA_LOCK:
        threads = torch.get_num_threads()
        set_threads(threads)
        try:
            yield
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)


def _default_backend(x: torch.Tensor) -> str:
    return "numba" if x.device.type == "cpu" else "triton"


def quantize_fused(
    x: torch.Tensor,
    fmt: Format,
    rounding: str,
    generator: torch.Generator | None,
    backend: str | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Q(x) by the fused kernels: float32 contiguous computation, ``x``'s shape and dtype back.

    ``x`` non-empty, ``fmt`` not fp32, ``generator`` already checked for stochastic rounding.
    ``out``: a float32 contiguous tensor of ``x``'s shape and device to write into (no new
    allocation; x float32), returned.
    """
    backend = backend or _default_backend(x)
    stochastic = rounding == "stochastic"
    xf = x.detach()
    xf = (xf if xf.dtype == torch.float32 else xf.float()).contiguous()
    direct = (
        out is not None
        and x.dtype == torch.float32
        and out.dtype == torch.float32
        and out.is_contiguous()
        and out.shape == x.shape
        and out.device == x.device
    )
    result = out if direct else new_output(xf)
    _quantize_into(xf, result, fmt, stochastic, generator, backend)
    if out is not None and not direct:
        out.copy_(result)
        return out
    return result if x.dtype == torch.float32 else result.to(x.dtype)


def _quantize_into(
    xf: torch.Tensor,
    out: torch.Tensor,
    fmt: Format,
    stochastic: bool,
    generator: torch.Generator | None,
    backend: str,
) -> None:
    key = draw_key(generator) if stochastic else torch.zeros(2, dtype=torch.int64)
    if backend == "numba":
        if xf.numel() <= SERIAL_MAX:
            # serial kernels only (_cpu_kernel): no thread pool to size, nothing to hold the
            # lock for; a small tensor's kernel costs less than the launch's bookkeeping
            _numba(xf, out, fmt, stochastic, key)
            return
        with _numba_launch():
            _numba(xf, out, fmt, stochastic, key)
    elif backend == "triton":
        _triton(xf, out, fmt, stochastic, key.to(xf.device))
    else:
        raise ValueError(f"backend {backend!r}: expected numba or triton")


def _numba(xf: torch.Tensor, out: torch.Tensor, fmt: Format, stochastic: bool, key) -> None:
    k0, k1 = key.tolist()  # Python ints
    xn, on = xf.numpy().reshape(-1), out.numpy().reshape(-1)
    serial = xn.size <= SERIAL_MAX or torch.get_num_threads() == 1
    _launch(fmt, xf.shape)(xn, on, (stochastic, k0, k1, QUANTIZE_STREAM), serial)


def quantize_small(x: torch.Tensor, fmt: Format, stochastic: bool, generator) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """quantize_fused(x, fmt) on the numba backend for a float32 contiguous CPU tensor of at
    most SERIAL_MAX values (a batch of activations, a layer's errors): the same kernel and key,
    with only the per-call work (the key, the arrays, the new output; :func:`_launch` holds
    what depends on the format and shape), which costs as much as such a tensor's kernel."""
    k0, k1 = draw_key(generator).tolist() if stochastic else (0, 0)
    on = np.empty(tuple(x.shape), np.float32)
    run = _launch(fmt, x.shape)
    run(x.detach().numpy().reshape(-1), on.reshape(-1), (stochastic, k0, k1, QUANTIZE_STREAM), True)
    return torch.from_numpy(on)


@functools.lru_cache(maxsize=512)
def _launch(fmt: Format, shape: torch.Size) -> Callable[..., None]:
    """run(xn, on, draw, serial): on = Q(xn) by the numba kernels (flat float32 arrays of a
    contiguous tensor of ``shape``; ``serial``: the kernels' ``.serial`` compilations, else the
    parallel ones). The format's constants, its block layout and the kernels are decided here
    once per format and shape: the Python work of a call is then its arrays and the key."""
    from lowprec.kernels.numba import quantize as kq

    if isinstance(fmt, ScaledFormat):
        return _scaled_launch(fmt, shape)
    kind, f = format_params(fmt)
    if kind in (FIXED, FLOAT):
        kernel = kq.quantize_fixed if kind == FIXED else kq.quantize_float

        def run_elementwise(xn, on, draw, serial):  # type: ignore[no-untyped-def]
            _pick(kernel, serial)(xn, on, f, draw)

        return run_elementwise
    if kind != BLOCK:
        raise ValueError(f"no fused kernel for format {fmt}")
    rows, length, width = block_layout(fmt, shape)  # type: ignore[arg-type]
    width = min(width, length)  # a run longer than the row is the row (the same blocks)
    in_tile = _in_tile(length, width)
    # blocks of one element: the kernel takes each maximum from |x| itself
    pre = width > 1 and not in_tile
    layout = (length, width, in_tile)

    maxima = _maxima(rows, length, width) if pre else None

    def run_block(xn, on, draw, serial):  # type: ignore[no-untyped-def]
        maxbits = maxima(xn, serial) if maxima is not None else _NO_BITS
        _pick(kq.quantize_block, serial)(xn, on, maxbits, layout, f, draw)

    return run_block


def _maxima(rows: int, length: int, width: int) -> Callable[[np.ndarray, bool], np.ndarray]:
    """maxima(xn, serial): :func:`_numba_maxbits` of a layout, the serial case's kernel and
    arguments chosen once (a small tensor's maxima cost less than choosing them)."""
    from lowprec.kernels.numba import blocks as kb

    nblocks = rows * -(-length // width)
    if length % width == 0:
        kernel, arg = kb.block_maxbits_regular.serial, width
    else:
        kernel, arg = kb.block_maxbits.serial, (rows, length, width)

    def maxima(xn: np.ndarray, serial: bool) -> np.ndarray:
        if not serial:
            return _numba_maxbits(xn, rows, length, width, serial)
        maxbits = np.empty(nblocks, np.int32)
        kernel(xn, arg, maxbits)
        return maxbits

    return maxima


def _numba_maxbits(xn: np.ndarray, rows: int, length: int, width: int, serial: bool) -> np.ndarray:
    """The bit pattern of each block's max|x| (rows of ``length`` in runs of ``width``): by
    whole runs when the runs tile the rows (short vectorized loops), else run by run;
    ``serial``: on the calling thread."""
    from lowprec.kernels.numba import blocks as kb

    nblocks = rows * -(-length // width)
    if not serial and nblocks < 4 * torch.get_num_threads() and width >= 2 * MAX_CHUNK:
        # few long blocks: a parallel max over chunks of each, then the max of its chunks
        cpb = -(-width // MAX_CHUNK)
        partial = np.empty(nblocks * cpb, np.int32)
        layout = (rows, length, width)
        kb.block_maxbits_chunked(xn, layout, MAX_CHUNK, partial)
        return partial.reshape(nblocks, cpb).max(axis=1)
    maxbits = np.empty(nblocks, np.int32)
    if length % width == 0:
        # whole runs (rows of whole blocks, one block per row, or one per element): a short
        # loop per block, no slice and call per block
        _pick(kb.block_maxbits_regular, serial)(xn, width, maxbits)
    else:
        _pick(kb.block_maxbits, serial)(xn, (rows, length, width), maxbits)
    return maxbits


def _scaled_launch(fmt: ScaledFormat, shape: torch.Size) -> Callable[..., None]:
    """:func:`_launch` of a scaled format: the scaled rounding, after the block maxima where a
    tile cannot take them itself (the per-tensor scale of nvfp4<t> from the largest block
    maximum: float32 operations as the eager code's)."""
    from lowprec.kernels.numba import scaled as ks

    params = scaled_params(fmt)
    if params is None:
        raise ValueError(f"no fused kernel for format {fmt}")
    f, g0 = params
    rows, length, width = block_layout(fmt, shape)
    width = min(width, length)  # a run longer than the row is the row (the same blocks)
    per_tensor = isinstance(fmt, NVFP4) and fmt.per_tensor
    in_tile = _in_tile(length, width) and not per_tensor
    # blocks of one element: the kernel takes each scale from |x| itself (no maxima, no scales
    # arrays of the tensor's size before the tiles)
    blocks = (width > 1 and not in_tile) or per_tensor
    layout = (length, width, in_tile)
    maxima = _maxima(rows, length, width) if blocks else None

    def run_scaled(xn, on, draw, serial):  # type: ignore[no-untyped-def]
        g = g0
        maxbits = maxima(xn, serial) if maxima is not None else _NO_BITS
        if per_tensor:
            amax = maxbits.max().view(np.float32)
            t = np.float32(amax) / np.float32(448.0 * 6.0)
            t = np.float32(1.0) if t == 0 else t
            g = (g[0], float(t), float(np.float32(1.0) / t), 0.0)
        binto = np.empty(maxbits.size, np.float32)
        bup = np.empty(maxbits.size, np.float32)
        if width > 1 and blocks:
            few = serial or maxbits.size <= SERIAL_MAX
            _pick(ks.block_scales, few)(maxbits, g, binto, bup)
        _pick(ks.quantize_scaled, serial)(xn, on, (binto, bup), layout, f, g, draw)

    return run_scaled


def _triton(xf: torch.Tensor, out: torch.Tensor, fmt: Format, stochastic: bool, key) -> None:
    from lowprec.kernels.triton import launch

    launch.quantize(xf, out, fmt, stochastic, key, _triton_groups(fmt, xf.shape))


def _triton_groups(fmt: Format, shape: torch.Size) -> tuple[int, int, int] | None:
    """The exponent groups of a block or scaled format (block_layout), else None."""
    return block_layout(fmt, shape) if isinstance(fmt, BlockFloat | ScaledFormat) else None  # type: ignore[arg-type]


def vc_quantize_fused(
    mu: torch.Tensor,
    var: torch.Tensor | float,
    fmt: Format,
    generator: torch.Generator,
    backend: str | None = None,
) -> torch.Tensor:
    """Q_vc(mu, var) by the fused kernels (lowprec/vc.py's law, ALGORITHMS.md §4): one kernel
    for fixed and float formats, two for block formats (the maxima of |μ| + 4·sqrt(v) per
    block, then the draw). ``fmt`` not fp32; ``var`` a number >= 0 or a tensor broadcastable
    to ``mu`` (negative entries act as 0). The key is the only draw from ``generator``."""
    backend = backend or _default_backend(mu)
    m32 = mu.detach()
    m32 = (m32 if m32.dtype == torch.float32 else m32.float()).contiguous()
    out = new_output(m32)
    if isinstance(var, torch.Tensor):
        v = var.detach().to(device=m32.device, dtype=torch.float32).expand(m32.shape)
        v = _Variance(v.contiguous(), 0.0, 0.0, True)
    else:
        vscalar = float(np.float32(var))
        sd = float(np.float32(np.sqrt(np.float32(var))))
        v = _Variance(torch.full((1,), vscalar, device=m32.device), vscalar, sd, False)
    # scaled formats: Triton's kernels take them by the format itself (triton.launch)
    triton_scaled = backend == "triton" and isinstance(fmt, ScaledFormat)
    kind, f = (-1, None) if triton_scaled else format_params(fmt)
    if kind == 0:
        raise ValueError(f"no fused VC kernel for format {fmt}")
    key = draw_key(generator)
    if backend == "numba":
        with _numba_launch():
            _vc_numba(m32, v, out, fmt, kind, f, key)
    elif backend == "triton":
        _vc_triton(m32, v, out, fmt, kind, f, key.to(m32.device))
    else:
        raise ValueError(f"backend {backend!r}: expected numba or triton")
    return out if mu.dtype == torch.float32 else out.to(mu.dtype)


class _Variance(NamedTuple):
    """The variance of a VC draw: a float32 tensor (per element when ``per``, else one value
    ``scalar``, of square root ``sd``)."""

    values: torch.Tensor
    scalar: float
    sd: float
    per: bool


def _vc_numba(m32, v: _Variance, out, fmt: Format, kind: int, f, key) -> None:  # type: ignore[no-untyped-def]
    from lowprec.kernels.numba import vc as kv

    k0, k1 = (int(k) for k in key.tolist())
    mn, on, vn = m32.numpy().reshape(-1), out.numpy().reshape(-1), v.values.numpy().reshape(-1)
    var = (vn, -1 if v.per else 0, np.float32(v.sd))
    rows, length, width = block_layout(fmt, m32.shape) if kind == BLOCK else (1, 1, 1)
    maxbits = np.zeros(rows * -(-length // width) if kind == BLOCK else 1, np.int32)
    if kind == BLOCK:
        _cpu_kernel(kv.vc_block_maxbits, mn.size)(mn, var, (rows, length, width), maxbits)
    _cpu_kernel(kv.vc_quantize, mn.size)(mn, var, on, (kind, f), maxbits, (length, width), (k0, k1))


def _vc_triton(m32, v: _Variance, out, fmt: Format, kind: int, f, key) -> None:  # type: ignore[no-untyped-def]
    from lowprec.kernels.triton import launch

    launch.vc_quantize(m32, v, out, fmt, key, _triton_groups(fmt, m32.shape))
