"""The fused variance-corrected quantizer Q_vc(μ, v) in numba (ALGORITHMS.md §4; the eager
reference is lowprec/vc.py): each element's grid (Δ of the reach |μ| + 4·sqrt(v)), then
grid.vc_lattice, and for float formats a stochastic re-rounding onto the grid of the result's
binade. Tiles of 2048 in parallel.

Arguments, grouped: ``var`` = (values, vmask, sd): float32 variances read at index i & vmask
(vmask 0: one scalar, -1: per element), sd = sqrt of the scalar; ``fmt`` = (kind, f) as
lowprec.kernels.encoding.format_params (fixed, float or block); block formats ``layout`` =
(length, width) and ``maxbits`` from vc_block_maxbits (the blocks' max reach); ``key`` =
(k0, k1). The random bits: four Philox streams under the call's key (VC_CAT the Cat draw,
VC_SR the small-variance rounding, VC_NORMAL the normals, VC_REROUND the float re-rounding).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from lowprec.kernels import rng
from lowprec.kernels.encoding import FIXED, FLOAT
from lowprec.kernels.numba.bits import fill_bits16, fill_normals, threshold16
from lowprec.kernels.numba.blocks import block_span, spread
from lowprec.kernels.numba.grid import (
    absbits,
    block_delta,
    float_delta,
    round_stochastic,
    vc_lattice,
    vc_reach,
)
from lowprec.kernels.numba.jit import OPTS, parallel_and_serial

__all__ = ["VC_CAT", "VC_NORMAL", "VC_REROUND", "VC_SR", "vc_block_maxbits", "vc_quantize"]

#: streams under one call's key
VC_CAT, VC_SR, VC_NORMAL, VC_REROUND = 0, 1, 2, 3
_T16 = rng.TILE16
_T32 = rng.TILE32
_F = np.float32
_QUARTER = _F(0.25)


@parallel_and_serial
def vc_block_maxbits(mu, var, layout, maxbits):  # type: ignore[no-untyped-def]
    """maxbits[b] = bit pattern of max over block b of vc_reach (``layout`` = (rows, length,
    width), as blocks.block_maxbits)."""
    values, vmask, sd = var
    rows, length, width = layout
    per = vmask != 0
    nb = (length + width - 1) // width
    for b in prange(rows * nb):
        s, e = block_span(b, length, width, nb)
        acc = np.int32(0)
        for i in range(s, e):
            a = absbits(vc_reach(mu[i], values[i & vmask], sd, per))
            acc = max(acc, a)  # the builtin: LLVM vectorizes it (the select form: 2x slower)
        maxbits[b] = acc


@njit(**OPTS)
def _vc_tile(mu, var, out, s, kind, f, maxbits, layout, key):  # type: ignore[no-untyped-def]
    """One tile (mu, out: its slices, flat start s): the grid of each element, then the bits
    of the branches some element takes, then vc_lattice (and for float formats the stochastic
    re-rounding onto the grid of the result's binade). One function: a helper of its own for
    the grid cost 0.2-0.5 s more cold compile."""
    values, vmask, sd = var
    k0, k1 = key
    m = mu.size
    t = s // _T16
    # the grid of each element, (Δ, lo, hi): fixed f's constants; float Δ from the binade of
    # the reach, range ±max_value; block Δ per block (blocks.spread), ±max_units·Δ
    delta = np.empty(m, np.float32)
    lo = np.empty(m, np.float32)
    hi = np.empty(m, np.float32)
    if kind == FIXED:
        for p in range(m):
            delta[p], lo[p], hi[p] = _F(f[0]), _F(f[1]), _F(f[2])
    elif kind == FLOAT:
        emin, emax, man, maxv = int(f[0]), int(f[1]), int(f[2]), _F(f[3])
        per = vmask != 0
        for p in range(m):
            reach = vc_reach(mu[p], values[(s + p) & vmask], sd, per)
            delta[p], lo[p], hi[p] = float_delta(reach, emin, emax, man), -maxv, maxv
    else:
        wl, maxu = int(f[0]), _F(f[1])
        length, width = layout
        mb = np.empty(m, np.int32)
        spread(mb, s, length, width, maxbits)
        for p in range(m):
            d = block_delta(mb[p], wl)
            h = d * maxu
            delta[p], lo[p], hi[p] = d, -h, h
    any_big = False
    any_small = False
    for p in range(m):
        big = values[(s + p) & vmask] / delta[p] / delta[p] > _QUARTER
        any_big |= big
        any_small |= not big
    cat = np.empty(_T16, np.uint16)
    fill_bits16(cat, t, k0, k1, VC_CAT)
    sr = np.zeros(_T16, np.uint16)
    if any_small:
        fill_bits16(sr, t, k0, k1, VC_SR)
    z = np.zeros(_T16, np.float32)
    if any_big:
        fill_normals(z[:_T32], 2 * t, k0, k1, VC_NORMAL)
        fill_normals(z[_T32:], 2 * t + 1, k0, k1, VC_NORMAL)
    for p in range(m):
        v = values[(s + p) & vmask]
        out[p] = vc_lattice(
            mu[p], v, delta[p], lo[p], hi[p], z[p], threshold16(sr[p]), threshold16(cat[p])
        )  # fmt: skip
    if kind == FLOAT:  # results in a coarser binade than Δ's: stochastic rounding onto the grid
        emin, emax, man = int(f[0]), int(f[1]), int(f[2])
        rr = np.empty(_T16, np.uint16)
        fill_bits16(rr, t, k0, k1, VC_REROUND)
        for p in range(m):
            o = out[p]
            out[p] = round_stochastic(o, float_delta(o, emin, emax, man), lo[p], hi[p], rr[p])


@parallel_and_serial
def vc_quantize(mu, var, out, fmt, maxbits, layout, key):  # type: ignore[no-untyped-def]
    """out = Q_vc(mu, var) (module docstring), tiles of 2048 in parallel."""
    n = mu.size
    kind, f = fmt  # a nested tuple is no argument of numba's parallel region: its parts are
    for t in prange((n + _T16 - 1) // _T16):
        s = t * _T16
        e = min(n, s + _T16)
        _vc_tile(mu[s:e], var, out[s:e], s, kind, f, maxbits, layout, key)
