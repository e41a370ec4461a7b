"""The fused kernels (lowprec/kernels): Philox bits, fused quantizers and VC, on numba (CPU) and
Triton (run by its interpreter, TRITON_INTERPRET=1, on small tensors; on CUDA where present).

Laws, not seeds: nearest rounding equals the eager path bit for bit; stochastic rounding is
unbiased with variance δ(Δ - δ), on the grid and in range (tolerances from the Monte Carlo
standard error); Q_vc has mean μ and variance v (ALGORITHMS.md §4); the bits match an
independent pure-Python Philox and the published Random123 known answers, are the same on numba
and Triton, and pass uniformity tests.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from scipy import stats

import lowprec.kernels
from lowprec import quantize, vc_quantize
from lowprec.formats import BlockFloat, FixedPoint, parse_format
from lowprec.kernels import fused, outputs, resolve
from lowprec.kernels.fused import quantize_fused, vc_quantize_fused
from lowprec.kernels.numba import bits, blocks
from lowprec.kernels.numba import quantize as numba_quantize
from lowprec.kernels.numba import vc as numba_vc
from lowprec.kernels.rng import draw_key

BACKENDS = ["numba", "triton"]
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN arithmetic, on purpose


def _n(backend: str, n: int) -> int:
    """Sample sizes: Triton's interpreter runs about 100x slower than the numba kernels."""
    return n if backend == "numba" else max(n // 10, 2048)


# ------------------------------------------------------------------ an independent reference


def _philox_ref(ctr: list[int], key: list[int], rounds: int = 10) -> list[int]:
    """Philox4x32 from the Random123 paper (SC'11, Fig. 2), written out for this test."""
    mask = (1 << 32) - 1
    x, k = list(ctr), list(key)
    for i in range(rounds):
        if i > 0:
            k = [(k[0] + 0x9E3779B9) & mask, (k[1] + 0xBB67AE85) & mask]
        prod0, prod1 = 0xD2511F53 * x[0], 0xCD9E8D57 * x[2]
        x = [
            (prod1 >> 32) ^ x[1] ^ k[0],
            prod1 & mask,
            (prod0 >> 32) ^ x[3] ^ k[1],
            prod0 & mask,
        ]
    return x


def _r16_ref(i: int, key: tuple[int, int], stream: int) -> int:
    """The layout of lowprec/kernels/rng.py: tile of 2048 = 256 groups x 8 halves."""
    tile, p = divmod(i, 2048)
    g = 256 * tile + p % 256
    j = p // 256
    words = _philox_ref([g & 0xFFFFFFFF, g >> 32, stream, 0], list(key))
    return (words[j // 2] >> (16 * (j % 2))) & 0xFFFF


# Random123's kat_vectors for philox4x32_10: (counter, key) -> output
KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    (
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [0xA4093822, 0x299F31D0],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ),
]
KEY = (0x12345678, 0x9ABCDEF0)
#: the first eight 16-bit draws of stream 0 under KEY (elements 0, 1, 2, ...), computed once by
#: _r16_ref above and written here so a change to either side is caught
FIRST_R16 = [0xB337, 0x7A36, 0x164B, 0x5F39, 0x30F1, 0x0A9D, 0xB71A, 0xA3D7]


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def gpu_interpreted() -> ModuleType:
    """lowprec.kernels.triton.quantize with its kernels run by Triton's interpreter on CPU tensors
    (tests/conftest.py sets TRITON_INTERPRET=1 on machines without a GPU; with a GPU the
    `cuda` tests run these kernels for real)."""
    triton = pytest.importorskip("triton")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the cuda-marked tests run the Triton kernels there")
    assert triton.knobs.runtime.interpret, "TRITON_INTERPRET=1 must be set before importing triton"
    from lowprec.kernels.triton import quantize

    return quantize


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "triton":
        request.getfixturevalue("gpu_interpreted")
    return request.param


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit, any NaN equal to any NaN."""
    a32, b32 = a.float(), b.float()
    bits = a32.view(torch.int32) == b32.view(torch.int32)
    return bool((bits | (a32.isnan() & b32.isnan())).all())


# ------------------------------------------------------------------ random bits


@pytest.mark.parametrize(("ctr", "key", "expected"), KAT)
def test_philox_known_answers(ctr: list[int], key: list[int], expected: list[int]) -> None:
    assert _philox_ref(ctr, key) == expected
    u = [np.uint64(v) for v in (*ctr, *key)]
    assert [int(w) for w in bits.philox4x32(*u)] == expected


def test_first_draws_of_a_fixed_key_match_the_reference() -> None:
    buf = np.empty(2048, np.uint16)
    bits.fill_bits16(buf, 0, *KEY, 0)
    assert [_r16_ref(i, KEY, 0) for i in range(8)] == FIRST_R16
    # elements 0..7 are spread over the tile: element i takes half i // 256 of group i % 256
    assert [int(buf[i]) for i in range(8)] == FIRST_R16
    for i in [0, 255, 256, 2047, 2048, 2048 * 5 + 1000, 2**33 + 7]:
        assert int(bits.bits16_at(i, *KEY, 3)) == _r16_ref(i, KEY, 3)
    bits.fill_bits16(buf, 3, *KEY, 1)
    assert [int(b) for b in buf[::97]] == [
        _r16_ref(3 * 2048 + p, KEY, 1) for p in range(0, 2048, 97)
    ]


def test_numba_and_triton_give_the_same_bits(gpu_interpreted: ModuleType) -> None:
    n = 2 * 2048 + 333
    key = torch.tensor(KEY, dtype=torch.int64)
    for stream in (0, 3):
        out = torch.empty(n, dtype=torch.int32)
        gpu_interpreted.bits16_kernel[(3,)](out, n, key, stream)
        buf = np.empty(2048, np.uint16)
        expect = []
        for t in range(3):
            bits.fill_bits16(buf, t, *KEY, stream)
            expect.append(buf.astype(np.int32).copy())
        assert np.array_equal(out.numpy(), np.concatenate(expect)[:n])


def test_bits_are_uniform() -> None:
    """2^20 draws: chi-square over the 256 values of the top byte and over the low byte, KS
    of the thresholds against U(0, 1), and no correlation between neighbours."""
    buf = np.empty(2048, np.uint16)
    draws = []
    for t in range(512):
        bits.fill_bits16(buf, t, 0xDEADBEEF, 0x0BADF00D, 0)
        draws.append(buf.copy())
    r = np.concatenate(draws).astype(np.int64)
    for byte in (r >> 8, r & 0xFF):
        assert stats.chisquare(np.bincount(byte, minlength=256)).pvalue > 1e-4
    u = (2 * r + 1) / 2.0**17
    assert stats.kstest(u[:200_000], "uniform").pvalue > 1e-4
    # lag-1 correlation of U(0,1) values: sd 1/sqrt(n)
    c = np.corrcoef(u[:-1], u[1:])[0, 1]
    assert abs(c) < 5 / math.sqrt(u.size)


def test_normals_are_standard_normal() -> None:
    z = np.empty(1024, np.float32)
    zs = []
    for t in range(256):
        bits.fill_normals(z, t, 7, 11, 2)
        zs.append(z.copy())
    zs = np.concatenate(zs).astype(np.float64)
    n = zs.size
    assert abs(zs.mean()) < 5 / math.sqrt(n)
    assert abs(zs.var() - 1) < 5 * math.sqrt(2 / n)
    assert stats.kstest(zs[:100_000], "norm").pvalue > 1e-4
    assert np.abs(zs).max() <= math.sqrt(48 * math.log(2)) + 1e-5


def test_normals_are_box_muller_of_their_words() -> None:
    """Each normal is Box-Muller (rng.py's uniforms) of its Philox words, computed in float64
    here: the kernels' polynomial log and sine/cosine stay within 2e-6·(1 + |z|)."""
    z = np.empty(1024, np.float32)
    words = np.empty(1024, np.uint32)
    g = 256  # groups per tile: element j·256 + p takes word j of group p
    for t in (0, 5, 77):
        bits.fill_normals(z, t, 7, 11, 2)
        bits.fill_words(words, t, 7, 11, 2)
        w = words.astype(np.int64).reshape(4, g)
        for pair in (0, 1):
            u1 = (2 * (w[2 * pair] >> 9) + 1) * 2.0**-24
            u2 = (w[2 * pair + 1] >> 8) * 2.0**-24
            rad = np.sqrt(-2 * np.log(u1))
            for k, ref in enumerate((rad * np.cos(2 * np.pi * u2), rad * np.sin(2 * np.pi * u2))):
                got = z[(2 * pair + k) * g : (2 * pair + k + 1) * g].astype(np.float64)
                assert np.all(np.abs(got - ref) <= 2e-6 * (1 + np.abs(ref)))


def test_the_key_is_the_only_draw_and_replays() -> None:
    x = torch.randn(5000, generator=torch.Generator().manual_seed(0))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = quantize(x, "fixed<8,4>", "stochastic", g1, kernels="fused")
    draw_key(g2)
    assert torch.equal(g1.get_state(), g2.get_state())
    b = quantize(x, "fixed<8,4>", "stochastic", torch.Generator().manual_seed(3), kernels="fused")
    assert torch.equal(a, b)
    c = quantize(x, "fixed<8,4>", "stochastic", torch.Generator().manual_seed(4), kernels="fused")
    assert not torch.equal(a, c)
    # nearest rounding draws nothing
    g3 = torch.Generator().manual_seed(3)
    quantize(x, "fixed<8,4>", "nearest", g3, kernels="fused")
    assert torch.equal(g3.get_state(), torch.Generator().manual_seed(3).get_state())


# ------------------------------------------------------------------ nearest: bit for bit


def _values(n: int = 20_000) -> torch.Tensor:
    """Random magnitudes over float32's whole exponent range plus the edge cases."""
    g = torch.Generator().manual_seed(0)
    bits = torch.randint(0, 2**32, (n,), generator=g, dtype=torch.int64) - 2**31
    x = bits.to(torch.int32).view(torch.float32)
    x = torch.where(torch.isnan(x), torch.zeros_like(x), x)
    edges = torch.tensor(
        [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-45, -1e-45, 1.17549435e-38, 65504.0,
         65520.0, -65520.0, 3.4028235e38, 0.5, 1.5, 2.5, -2.5, 0.1, 1e-8, 6e-8, 3e-5, 1.0],
    )  # fmt: skip
    return torch.cat([edges, x, torch.randn(n, generator=g) * 3])


@pytest.mark.parametrize(
    "fmt", ["fixed<8,3>", "fixed<4,4>", "fixed<32,8>", "fixed<16,140>", "float<5,10>",
            "float<8,7>", "float<4,3>", "float<5,2>", "float<8,23>", "float<2,0>"],
)  # fmt: skip
def test_nearest_equals_eager_bit_for_bit(fmt: str, backend: str) -> None:
    x = _values(_n(backend, 20_000))
    eager = quantize(x, fmt, "nearest", kernels="eager")
    assert _same(quantize_fused(x, parse_format(fmt), "nearest", None, backend), eager)


def test_float_nearest_equals_half_and_bfloat16(backend: str) -> None:
    x = _values(_n(backend, 100_000))
    half = x.clamp(-65504, 65504).to(torch.half).float()
    got = quantize_fused(x, parse_format("float<5,10>"), "nearest", None, backend)
    assert _same(got, half)
    bf = x.clamp(-3.3895314e38, 3.3895314e38).to(torch.bfloat16).float()
    assert _same(quantize_fused(x, parse_format("float<8,7>"), "nearest", None, backend), bf)


@pytest.mark.parametrize(
    ("fmt", "shape"),
    [("block<8>", (20, 100)), ("block<8>", (3000,)), ("block<8>", ()), ("block<8>", (2, 5, 7, 3)),
     ("block<8,32>", (20, 100)), ("block<8,32>", (4, 50, 10)), ("block<5,7>", (30, 70)),
     ("block<30>", (30, 70)), ("block<8>", (1, 3000))],
)  # fmt: skip
def test_block_nearest_equals_eager_bit_for_bit(fmt: str, shape: tuple, backend: str) -> None:
    x = _values(5000)[: math.prod(shape)].reshape(shape)
    x = x * torch.logspace(-30, 30, x.numel()).reshape(shape)
    eager = quantize(x, fmt, "nearest", kernels="eager")
    got = quantize_fused(x, parse_format(fmt), "nearest", None, backend)
    assert got.shape == x.shape and _same(got, eager)


def test_out_receives_the_result(backend: str) -> None:
    x = torch.randn(40, 100)
    for fmt in ("fixed<8,3>", "block<8,32>"):
        out = torch.empty_like(x)
        ref = quantize_fused(x, parse_format(fmt), "stochastic", torch.Generator(), backend)
        got = quantize_fused(
            x, parse_format(fmt), "stochastic", torch.Generator(), backend, out=out
        )
        assert got is out and torch.equal(out, ref)
    wide = torch.empty(40, 100, dtype=torch.float64)
    got = quantize(x, "fixed<8,3>", "nearest", kernels="fused", out=wide)
    assert got is wide and torch.equal(wide, quantize(x, "fixed<8,3>", "nearest").double())
    with pytest.raises(ValueError, match="out must be"):
        quantize(x, "fixed<8,3>", "nearest", out=torch.empty(3))


def test_other_dtypes_keep_their_dtype(backend: str) -> None:
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        x = (torch.randn(2048) * 4).to(dtype)
        got = quantize_fused(x, parse_format("fixed<8,3>"), "nearest", None, backend)
        assert got.dtype == dtype
        assert _same(got, quantize(x, "fixed<8,3>", "nearest", kernels="eager"))


# ------------------------------------------------------------------ stochastic rounding


@pytest.mark.parametrize(
    ("fmt", "x0"),
    [("fixed<8,3>", 0.3), ("fixed<8,3>", -1.0 / 3), ("float<4,3>", 0.3), ("float<4,3>", -5.3),
     ("block<8>", 0.3), ("block<8,32>", 0.3), ("fixed<8,3>", 100.0)],
)  # fmt: skip
def test_stochastic_rounding_unbiased_with_variance_delta(
    fmt: str, x0: float, backend: str
) -> None:
    """E[Q(x)] = x and Var = δ(Δ - δ) for one value repeated (block: in a block of max 1, so
    Δ is that of 1.0); out of range: saturates at the range's end, always."""
    n = _n(backend, 96_000)  # rows of 100 or 160
    f = parse_format(fmt)
    x = torch.full((n,), x0)
    if isinstance(f, BlockFloat):
        x = x.reshape(-1, 100) if f.block_size is None else x.reshape(-1, 32 * 5)
        x[:, :: f.block_size or 100] = 1.0  # one 1.0 in every block
    g = torch.Generator().manual_seed(9)
    out = quantize_fused(x, f, "stochastic", g, backend)
    q = out[x != 1.0].double()
    assert _same(quantize(out, f, "nearest", kernels="eager"), out)  # on the grid
    if isinstance(f, BlockFloat):  # the block's max is 1.0: exponent 0
        delta = 2.0 ** (2 - f.wl)
        hi = f.max_units * delta
    else:
        delta = f.spacing(torch.tensor([x0]))[0].item()
        hi = f.bounds(torch.tensor([x0]))[1][0].item()
    if x0 > hi:
        assert bool((q == hi).all())
        return
    lower = math.floor(x0 / delta) * delta
    d = x0 - lower
    var = d * (delta - d)
    m = q.numel()
    assert abs(q.mean().item() - x0) < 5 * math.sqrt(var / m) + 2.0**-17 * delta
    # variance of a two-point law p(1-p)Δ²: sd of the sample variance ≈ Δ² sqrt(p(1-p)(1-4p(1-p))/m)
    p = d / delta
    sd_var = delta**2 * math.sqrt(max(p * (1 - p) * (1 - 4 * p * (1 - p)), 1e-12) / m)
    assert abs(q.var().item() - var) < 5 * sd_var + 1e-12
    assert set(q.unique().tolist()) <= {lower, lower + delta}


def test_stochastic_rounding_stays_in_range_and_keeps_nan(backend: str) -> None:
    x = _values(_n(backend, 5000))
    for fmt in ("fixed<6,2>", "float<4,3>", "block<8,32>"):
        f = parse_format(fmt)
        xs = x[: (x.numel() // 32) * 32].reshape(-1, 32) if isinstance(f, BlockFloat) else x
        out = quantize_fused(xs, f, "stochastic", torch.Generator().manual_seed(1), backend)
        lo, hi = f.bounds(xs)
        finite = ~xs.isnan()
        assert bool(((out >= lo) & (out <= hi))[finite & ~out.isnan()].all())
        assert bool(out[xs.isnan()].isnan().all())
        if not isinstance(f, BlockFloat):
            assert not bool(out[finite].isnan().any())
        assert _same(quantize(out, f, "nearest", kernels="eager"), out)


def test_numba_and_triton_stochastic_results_are_equal(gpu_interpreted: ModuleType) -> None:
    x = _values(1500)[:3000].reshape(30, 100)
    for fmt in ("fixed<8,3>", "float<4,3>", "block<8>", "block<8,32>"):
        f = parse_format(fmt)
        a = quantize_fused(x, f, "stochastic", torch.Generator().manual_seed(5), "numba")
        b = quantize_fused(x, f, "stochastic", torch.Generator().manual_seed(5), "triton")
        assert _same(a, b), fmt


# ------------------------------------------------------------------ VC quantizer


@pytest.mark.parametrize(
    ("fmt", "mu0", "var"),
    [("fixed<8,3>", 0.3, 0.1), ("fixed<8,3>", 0.3, 0.002), ("fixed<8,3>", 0.3, 0.0039),
     ("float<4,3>", 0.3, 0.05), ("float<4,3>", -0.3, 0.0005), ("block<8>", 0.3, 1e-5),
     ("block<8,32>", 0.3, 0.01)],
)  # fmt: skip
def test_vc_mean_and_variance(fmt: str, mu0: float, var: float, backend: str) -> None:
    """Mean μ; variance v when v > v_s (else v_s = δ(Δ - δ)), ALGORITHMS.md §4."""
    n = 200_000 if backend == "numba" else 8000
    f = parse_format(fmt)
    mu = torch.full((n,), mu0)
    if isinstance(f, BlockFloat):
        mu = mu.reshape(-1, 100) if f.block_size is None else mu.reshape(-1, 32 * 5)
    out = vc_quantize_fused(mu, var, f, torch.Generator().manual_seed(2), backend).double()
    assert _same(quantize(out.float(), f, "nearest", kernels="eager"), out.float())  # on the grid
    if isinstance(f, FixedPoint):
        delta = f.delta
        d = mu0 - math.floor(mu0 / delta) * delta
        target = max(var, d * (delta - d)) if var <= delta**2 / 4 else var
    else:  # the draws of these cases stay in one binade: v itself, or v_s when larger
        delta = f.spacing(torch.tensor([abs(mu0) + 4 * math.sqrt(var)]))[0].item()
        if isinstance(f, BlockFloat):
            delta = 2.0 ** (math.floor(math.log2(abs(mu0) + 4 * math.sqrt(var))) + 2 - f.wl)
        d = mu0 - math.floor(mu0 / delta) * delta
        target = max(var, d * (delta - d)) if var <= delta**2 / 4 else var
    m = out.numel()
    assert abs(out.mean().item() - mu0) < 5 * math.sqrt(target / m) + 2.0**-15 * delta
    kurt_bound = 3 * target**2 + delta**4  # E[(X-μ)^4] bound: Gaussian part plus lattice
    assert abs(out.var().item() - target) < 5 * math.sqrt(kurt_bound / m) + 2.0**-15 * delta**2


def test_vc_per_element_variance_and_dispatch() -> None:
    """A variance tensor (broadcast) and the public vc_quantize(kernels=...) route."""
    n = 100_000
    mu = torch.full((n, 2), 0.3)
    var = torch.tensor([0.1, 0.02])
    out = vc_quantize(mu, var, "fixed<8,3>", torch.Generator().manual_seed(0), kernels="fused")
    for col, v in enumerate(var.tolist()):
        assert abs(out[:, col].double().mean().item() - 0.3) < 5 * math.sqrt(v / n)
        assert abs(out[:, col].double().var().item() - v) < 5 * math.sqrt(3 * v**2 / n) + 1e-4
    a = vc_quantize(mu, 0.01, "block<8>", torch.Generator().manual_seed(1), kernels="fused")
    b = vc_quantize(mu, 0.01, "block<8>", torch.Generator().manual_seed(1), kernels="fused")
    assert torch.equal(a, b)


@pytest.mark.slow  # compiles the parallel kernels when the numba cache is cold
def test_parallel_kernels_equal_the_serial_ones() -> None:
    """The bits depend on (key, index) only: the parallel numba kernels (large tensors, more
    than one thread) give exactly the serial kernels' results."""
    x = _values(40_000)[:80_000].reshape(80, 1000)
    results = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)  # the autouse fixture restores it
        for fmt in ("fixed<8,3>", "float<4,3>", "block<8>", "block<8,32>"):
            g = torch.Generator().manual_seed(3)
            results[threads, fmt] = quantize(x, fmt, "stochastic", g, kernels="fused")
            results[threads, fmt, "vc"] = vc_quantize(
                x.clamp(-10, 10), 0.01, fmt, g, kernels="fused"
            )
    for key, value in results.items():
        if key[0] == 1:
            assert _same(value, results[(2, *key[1:])]), key


PARALLEL_KERNELS = [(numba_quantize, "quantize_fixed"), (numba_quantize, "quantize_float"),
                    (blocks, "block_maxbits"), (numba_quantize, "quantize_block"),
                    (numba_vc, "vc_block_maxbits"), (numba_vc, "vc_quantize")]  # fmt: skip


@pytest.mark.parametrize(("module", "name"), PARALLEL_KERNELS)
def test_each_kernel_is_one_body_compiled_parallel_and_serial(
    module: ModuleType, name: str
) -> None:
    """The serial kernel is the parallel kernel's Python body (one source), compiled with
    parallel off, under a name of its own (its own numba cache file)."""
    kernel = getattr(module, name)
    assert kernel.targetoptions.get("parallel") is True
    assert not kernel.serial.targetoptions.get("parallel")
    assert kernel.serial.py_func.__code__ is kernel.py_func.__code__
    assert kernel.serial.py_func.__qualname__ == f"{name}_serial"


_CACHE_PROBE = """
import sys
import numpy as np
from numba.np.ufunc import parallel as pool
sys.path.insert(0, sys.argv[1])
import twins
x = np.arange(100_000, dtype=np.float64)
order = sys.argv[2].split(",")
for which in order:
    k = twins.total if which == "parallel" else twins.total.serial
    assert k(x) == x.sum()
    print(which, len(k.stats.cache_hits), len(k.stats.cache_misses), pool._is_initialized)
"""

_TWINS_MODULE = """
from numba import prange
from lowprec.kernels.numba.jit import parallel_and_serial


@parallel_and_serial
def total(x):
    s = 0.0
    for i in prange(x.size):
        s += x[i]
    return s
"""


def test_parallel_and_serial_are_cached_apart(tmp_path: Path) -> None:
    """numba's cache keys entries by function name, signature and bytecode, not by the
    parallel flag: the two compilations of one body must land in two entries. A first
    process compiles both (two misses); a second loads both (hits, no compilation), and the
    serial one, called first, leaves numba's thread pool unstarted (it would start it if it
    had loaded the parallel code: the failure this guards against)."""
    (tmp_path / "twins.py").write_text(_TWINS_MODULE)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def run(order: str) -> list[list[str]]:
        proc = subprocess.run(
            [sys.executable, "-c", _CACHE_PROBE, str(tmp_path), order],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        return [line.split() for line in proc.stdout.strip().splitlines()]

    assert run("parallel,serial") == [["parallel", "0", "1", "True"], ["serial", "0", "1", "True"]]
    assert run("serial,parallel") == [["serial", "1", "0", "False"], ["parallel", "1", "0", "True"]]
    assert len(list((tmp_path / "cache").rglob("*.nbi"))) == 2


def _vm_flags(address: int) -> list[str]:
    """The VmFlags of the mapping of this process holding ``address`` (/proc/self/smaps)."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(a, 16) for a in head.split("-"))
            inside = lo <= address < hi
        elif inside and head == "VmFlags:":
            return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


def test_new_output_asks_for_huge_pages() -> None:
    """A large CPU output is a contiguous float32 tensor whose mapping carries the
    MADV_HUGEPAGE advice ("hg" in its VmFlags) before the kernel's first write; the quantizer's
    result is the same as into a plain tensor."""
    if not outputs.huge_pages_available() or not Path("/proc/self/smaps").exists():
        pytest.skip("transparent huge pages are off or not Linux: no advice is given")
    outputs.POOL.clear()
    x = torch.randn(3 << 20)  # 12 MiB
    out = outputs.new_output(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.is_contiguous()
    assert "hg" in _vm_flags(out.data_ptr())
    g = torch.Generator().manual_seed(4)
    a = quantize(x, "fixed<8,3>", "stochastic", g, kernels="fused")
    assert "hg" in _vm_flags(a.data_ptr())
    b = quantize(x, "fixed<8,3>", "stochastic", g.manual_seed(4), kernels="fused", out=x.clone())
    assert _same(a, b)


def test_freed_outputs_are_reused_not_while_alive() -> None:
    """A freed large output's memory serves the next output of the same size in 2 MiB; while
    any view of it lives it is not handed out; a stale buffer (NaN-filled) gives the same
    quantization as a fresh tensor; the pool keeps at most POOL_MAX_BYTES."""
    outputs.POOL.clear()
    x = torch.randn(1 << 20)  # 4 MiB: the smallest size that is pooled
    first = outputs.new_output(x)
    address = first.data_ptr()
    view = first[10:20]
    del first
    other = outputs.new_output(x)
    assert other.data_ptr() != address  # the view keeps it
    del view
    assert outputs.POOL.bytes == 4 << 20
    again = outputs.new_output(x.view(1024, 1024))
    assert again.data_ptr() == address and again.shape == (1024, 1024)
    assert outputs.POOL.bytes == 0
    again.fill_(float("nan"))
    del again
    g = torch.Generator().manual_seed(7)
    a = quantize(x, "block<8>", "stochastic", g, kernels="fused")
    assert a.data_ptr() == address
    b = quantize(x, "block<8>", "stochastic", g.manual_seed(7), kernels="fused", out=x.clone())
    assert _same(a, b)
    del a, other
    outputs.POOL.clear()
    saved = outputs.POOL_MAX_BYTES
    outputs.POOL_MAX_BYTES = 6 << 20
    try:
        live = [outputs.new_output(x) for _ in range(3)]
        del live
        assert outputs.POOL.bytes == 4 << 20  # one of the three fits
    finally:
        outputs.POOL_MAX_BYTES = saved
        outputs.POOL.clear()
    assert outputs.new_output(torch.randn(1000)).untyped_storage().resizable()  # torch's own


def test_torch_thread_count_survives_numba_start() -> None:
    """numba's OpenMP pool resets the process's thread count when it starts (first parallel
    launch): the launcher puts torch's count back (a fresh process sees the first launch)."""
    code = (
        "import torch; torch.set_num_threads(1); from lowprec import quantize, vc_quantize; "
        "g = torch.Generator().manual_seed(0); x = torch.randn(5000); "
        "quantize(x, 'fixed<8,3>', 'stochastic', g, kernels='fused'); "
        "vc_quantize(x, 0.1, 'fixed<8,3>', g, kernels='fused'); print(torch.get_num_threads())"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "1"


# ------------------------------------------------------------------ resolve


def test_resolve_modes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert resolve("eager", torch.device("cpu")) == "eager"
    assert resolve("auto", "cpu") == "fused"
    assert resolve("fused", "cpu") == "fused"
    with pytest.raises(ValueError, match="kernels"):
        resolve("fast", "cpu")
    with pytest.raises(ValueError, match="kernels"):
        quantize(torch.ones(3), "fixed<8,3>", "nearest", kernels="fast")
    monkeypatch.setenv("LOWPREC_NO_NUMBA", "1")
    lowprec.kernels._numba_reason.cache_clear()
    monkeypatch.setattr(lowprec.kernels, "_warned", set())
    try:
        with pytest.raises(ValueError, match=r"kernels: 'fused' is unavailable.*LOWPREC_NO_NUMBA"):
            resolve("fused", "cpu")
        assert resolve("auto", "cpu") == "eager"
        assert resolve("auto", "cpu") == "eager"
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "using the eager kernels" in err[0]
        x = torch.randn(100)
        assert torch.equal(
            quantize(x, "fixed<8,3>", "stochastic", torch.Generator().manual_seed(0)),
            quantize(
                x, "fixed<8,3>", "stochastic", torch.Generator().manual_seed(0), kernels="eager"
            ),
        )
    finally:
        lowprec.kernels._numba_reason.cache_clear()
    assert resolve("eager", "meta") == "eager"
    assert "meta" in (lowprec.kernels.available("meta") or "")


# ------------------------------------------------------------------ CUDA


@pytest.mark.cuda
def test_cuda_fused_matches_eager_and_cpu_bits() -> None:
    x = _values(20_000).cuda()
    for fmt in ("fixed<8,3>", "float<5,10>", "float<8,7>", "block<8,32>"):
        f = parse_format(fmt)
        xs = x[: (x.numel() // 32) * 32].reshape(-1, 32)
        got = quantize(xs, f, "nearest", kernels="fused")
        assert _same(got, quantize(xs, f, "nearest", kernels="eager"))
        sr_gpu = quantize_fused(xs, f, "stochastic", torch.Generator("cuda").manual_seed(0))
        key = draw_key(torch.Generator("cuda").manual_seed(0)).cpu()  # the same key on numba
        sr_cpu = torch.empty_like(xs.cpu())
        fused._numba(xs.cpu(), sr_cpu, f, True, key)
        assert _same(sr_gpu.cpu(), sr_cpu), fmt
    mu = torch.full((100_000,), 0.3, device="cuda")
    out = vc_quantize(mu, 0.1, "fixed<8,3>", torch.Generator("cuda").manual_seed(0))
    assert abs(out.double().mean().item() - 0.3) < 5 * math.sqrt(0.1 / 1e5)
