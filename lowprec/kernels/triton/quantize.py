"""The fused quantizers in Triton: Q_F(x) (ALGORITHMS.md §2) and Q_vc(μ, v) (§4), on fixed,
block, float and scaled formats (MX, INT, NVFP4: §11), the transcription of the numba kernels
(lowprec/kernels/numba; the same bits for the same key, the same results).

One program is a tile of 2048 elements, its 256 Philox groups computed once (bits.py): element
256·j + p of the tile takes half j of group p, as on the CPU. Formats whose grid depends on an
exponent group (block, scaled) take two launches: the groups' maxima (``block_maxbits_kernel``,
``vc_block_maxbits_kernel``: a [blocks, columns] tile reduced along its columns), then the
rounding, each element reading its group's maximum. The tensor is rows of ``length`` values
cut into runs of ``width`` (the last shorter), ``blocks`` = (nb, length, width), nb runs a
row. ``ts``: the per-tensor scale (T, 1/T) of ``nvfp4<t>`` as float32[2] (T = 0: none).

VC streams under one call's key (as the numba kernels): Cat, rounding of μ, normals, the
re-rounding of float results onto their own binade's grid.
"""

from __future__ import annotations

import triton
import triton.language as tl

from lowprec.kernels.triton import bits as B
from lowprec.kernels.triton import grid as Q

VC_CAT: tl.constexpr = tl.constexpr(0)
VC_SR: tl.constexpr = tl.constexpr(1)
VC_NORMAL: tl.constexpr = tl.constexpr(2)
VC_REROUND: tl.constexpr = tl.constexpr(3)


@triton.jit
def _group_bits(maxbits_ptr, offs, mask, KIND: tl.constexpr, blocks):
    """The max|x| bit pattern of the exponent group of each flat index ``offs`` (block and
    scaled kinds; 0 otherwise)."""
    if KIND == Q.BLOCK or KIND >= Q.MX:
        nb, length, width = blocks
        r = offs // length
        c = offs - r * length
        return tl.load(maxbits_ptr + r * nb + c // width, mask=mask, other=0)
    else:
        return 0


@triton.jit
def _tensor_scale(ts_ptr, KIND: tl.constexpr):
    """(T, 1/T) of nvfp4<t> from its float32[2] tensor (zeros: no per-tensor scale)."""
    if KIND == Q.NVFP4:
        return tl.load(ts_ptr), tl.load(ts_ptr + 1)
    else:
        return 0.0, 0.0


@triton.jit
def _tile(tile, j: tl.constexpr, n):
    """(offs, mask) of row j of a 2048-element tile: elements 2048·tile + 256·j + p."""
    offs = tile * B.TILE16 + j * B.G + tl.arange(0, B.G)
    return offs, offs < n


@triton.jit
def quantize_kernel(
    x_ptr, out_ptr, n, key_ptr, stream, f, maxbits_ptr, blocks, ts_ptr,
    KIND: tl.constexpr, STOCHASTIC: tl.constexpr,
):  # fmt: skip
    """One tile of 2048 elements: out = Q_F(x), F = (KIND, f) (grid.quantize_value); block and
    scaled kinds read their group's max from ``maxbits`` (block_maxbits_kernel)."""
    tile = tl.program_id(0).to(tl.int64)
    if STOCHASTIC:
        k0, k1 = B.load_key(key_ptr)
        words = B.tile_words(tile, k0, k1, stream)
    ts = _tensor_scale(ts_ptr, KIND)
    for j in tl.static_range(8):
        offs, mask = _tile(tile, j, n)
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        mb = _group_bits(maxbits_ptr, offs, mask, KIND, blocks)
        u = B.tile_u(words, j) if STOCHASTIC else 0.0
        tl.store(out_ptr + offs, Q.quantize_value(x, KIND, f, mb, u, STOCHASTIC, ts), mask=mask)


@triton.jit
def _block_tile(nblocks, nb, length, width, BB: tl.constexpr, CW: tl.constexpr):
    """(b, offs, mask, valid) of program (i, c): blocks BB·i .. BB·i + BB - 1 (b), their
    columns CW·c .. CW·c + CW - 1 as flat indices ``offs`` [BB, CW]."""
    b = tl.program_id(0).to(tl.int64) * BB + tl.arange(0, BB)
    cols = tl.program_id(1).to(tl.int64) * CW + tl.arange(0, CW)
    r = b // nb
    j = b - r * nb
    offs = (r * length + j * width)[:, None] + cols[None, :]
    valid = b < nblocks
    mask = valid[:, None] & (cols[None, :] < tl.minimum(width, length - j * width)[:, None])
    return b, offs, mask, valid


@triton.jit
def block_maxbits_kernel(
    x_ptr, maxbits_ptr, nblocks, nb, length, width, BB: tl.constexpr, CW: tl.constexpr
):
    """maxbits[b] = max over block b of absbits(x) (atomic max into a zeroed int32 tensor)."""
    b, offs, mask, valid = _block_tile(nblocks, nb, length, width, BB, CW)
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    tl.atomic_max(maxbits_ptr + b, tl.max(Q.absbits(x), axis=1), mask=valid)


@triton.jit
def vc_block_maxbits_kernel(
    mu_ptr, var_ptr, vscalar, sd, maxbits_ptr, nblocks, nb, length, width,
    VAR_PER: tl.constexpr, BB: tl.constexpr, CW: tl.constexpr,
):  # fmt: skip
    """maxbits[b] = max over block b of absbits(vc_reach) (as block_maxbits_kernel)."""
    vscalar, sd = tl.cast(vscalar, tl.float32), tl.cast(sd, tl.float32)
    b, offs, mask, valid = _block_tile(nblocks, nb, length, width, BB, CW)
    mu = tl.load(mu_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if VAR_PER:  # noqa: SIM108 (a constexpr branch)
        v = tl.load(var_ptr + offs, mask=mask, other=0.0)
    else:
        v = tl.zeros_like(mu) + vscalar
    reach = tl.where(mask, Q.vc_reach(mu, v, sd, VAR_PER), 0.0)
    tl.atomic_max(maxbits_ptr + b, tl.max(Q.absbits(reach), axis=1), mask=valid)


@triton.jit
def bits16_kernel(out_ptr, n, key_ptr, stream):
    """out[i] = r16 of element i (int32): the bits themselves, for tests against numba."""
    tile = tl.program_id(0).to(tl.int64)
    k0, k1 = B.load_key(key_ptr)
    words = B.tile_words(tile, k0, k1, stream)
    for j in tl.static_range(8):
        offs, mask = _tile(tile, j, n)
        tl.store(out_ptr + offs, B.tile_r16(words, j).to(tl.int32), mask=mask)


@triton.jit
def _vc_operands(mu, v, sd, KIND: tl.constexpr, f, mb, ts, VAR_PER: tl.constexpr):
    """(m, w, Δ, lo, hi, up) of Q_vc: μ and v in the grid's units (scaled kinds: the block's
    scales from the max reach ``mb``, μ·into, v·into²: lowprec/vc.py _vc_scaled), the grid
    (float elements: Δ from the binade of the reach |m| + 4·sqrt(w)), and the scale back."""
    if KIND >= Q.MX:
        into, up = Q.block_scale(mb, KIND, f, ts)
        m = Q.to_element(mu, into, KIND)
        w = Q.to_element(Q.to_element(v, into, KIND), into, KIND)
        d, lo, hi = Q.grid(Q.vc_reach(m, w, 0.0, True), Q.FLOAT, f, mb)
        return m, w, d, lo, hi, up
    elif KIND == Q.FLOAT:
        d, lo, hi = Q.grid(Q.vc_reach(mu, v, sd, VAR_PER), KIND, f, mb)
        return mu, v, d, lo, hi, 1.0
    else:
        d, lo, hi = Q.grid(mu, KIND, f, mb)
        return mu, v, d, lo, hi, 1.0


@triton.jit
def vc_quantize_kernel(
    mu_ptr, var_ptr, vscalar, sd, out_ptr, n, key_ptr, f, maxbits_ptr, blocks, ts_ptr,
    KIND: tl.constexpr, VAR_PER: tl.constexpr,
):  # fmt: skip
    """One tile of 2048 elements of Q_vc(mu, var) (grid.vc_on_grid), format F = (KIND, f) as
    in quantize_kernel (block and scaled kinds: the maxima of the reach); float grids (float
    formats, scaled formats' elements) then round the result stochastically onto the grid of
    its own binade."""
    vscalar, sd = tl.cast(vscalar, tl.float32), tl.cast(sd, tl.float32)
    tile = tl.program_id(0).to(tl.int64)
    k0, k1 = B.load_key(key_ptr)
    cat = B.tile_words(tile, k0, k1, VC_CAT)
    sr = B.tile_words(tile, k0, k1, VC_SR)
    REROUND: tl.constexpr = KIND == Q.FLOAT or KIND >= Q.MX
    if REROUND:
        rr = B.tile_words(tile, k0, k1, VC_REROUND)
    za = B.tile_normals(2 * tile, k0, k1, VC_NORMAL)
    zb = B.tile_normals(2 * tile + 1, k0, k1, VC_NORMAL)
    ts = _tensor_scale(ts_ptr, KIND)
    for j in tl.static_range(8):
        offs, mask = _tile(tile, j, n)
        mu = tl.load(mu_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        if VAR_PER:
            v = tl.load(var_ptr + offs, mask=mask, other=0.0)
        else:
            v = tl.zeros_like(mu) + vscalar
        mb = _group_bits(maxbits_ptr, offs, mask, KIND, blocks)
        m, w, d, lo, hi, up = _vc_operands(mu, v, sd, KIND, f, mb, ts, VAR_PER)
        z = za[j] if j < 4 else zb[j - 4]
        q = Q.vc_on_grid(m, w, d, lo, hi, z, B.tile_u(sr, j), B.tile_u(cat, j))
        if REROUND:
            dq = Q.float_delta(q, f[3], f[4], f[5])
            q = Q.round_on_grid(q, dq, lo, hi, B.tile_u(rr, j), True)
        if KIND >= Q.MX:
            q = q * up
        tl.store(out_ptr + offs, q, mask=mask)
