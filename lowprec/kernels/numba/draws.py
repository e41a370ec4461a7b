"""The random numbers of the fused sampler steps (lowprec.kernels.numba.step), under the key
drawn once per step from the trial's generator; every bit drawn serves one draw of one element.
Each quantity has its own Philox4x32-10 stream (counter word c2; bits.group_words) and each
call serves consecutive elements:

    thresholds, stream STREAM + 2 + slot: call q = counter (q, stream, 0) serves elements
        8q .. 8q+7, element 8q + 2k + b takes half b (0 low, 1 high) of word k
        slots: U_G Q_G's rounding; U_TW Q_W's rounding (θ, or θ̂ for full) or θ's VC Cat;
        U_TS θ's VC small-branch rounding; U_VM Q_M's rounding or v's VC Cat; U_VS v's VC
        small-branch rounding
    normals, stream STREAM + n (n = X_T ξ_θ, X_V ξ_v): call q serves elements 4q .. 4q+3,
        Box-Muller (bits.box_muller) of (w0, w1) -> 4q (cos), 4q+1 (sin), of (w2, w3) ->
        4q+2, 4q+3

A step draws only the slots its formats, rounding and accumulator use (:func:`sgld_slots`,
:func:`sghmc_slots`) and the normals only with noise. Thresholds are the unbiased midpoints
(2r + 1)/2^17 of bits.threshold16 (bias at most 2^-17·Δ, docs/numerics.md). The Triton
kernels (lowprec.kernels.triton) draw the same bits.

The draws of a chunk of CHUNK elements are made in vectorized loops into a task's scratch,
then read by the update.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from lowprec.kernels.encoding import FP32, LOW, VC
from lowprec.kernels.numba.bits import box_muller, group_words, hi16, lo16
from lowprec.kernels.numba.jit import INLINE, OPTS

__all__ = [
    "CHUNK",
    "SLOTS",
    "STREAM",
    "U_G",
    "U_TS",
    "U_TW",
    "U_VM",
    "U_VS",
    "X_T",
    "X_V",
    "draws",
    "fill",
    "scratch",
    "sghmc_slots",
    "sgld_slots",
]

#: the Philox stream (counter word c2) of the sampler steps
STREAM = 16
#: elements per chunk (80 KB of thresholds, 33 KB of normals in a task's scratch)
CHUNK = 4096
#: the 16-bit thresholds an element may draw (module docstring), one Philox stream each
U_G, U_TW, U_TS, U_VM, U_VS = 0, 1, 2, 3, 4
SLOTS = 5
#: the normals (ξ_θ, ξ_v), one Philox stream each
X_T, X_V = 0, 1
#: scratch beyond CHUNK: a chunk's first call may start up to 7 elements before it
_PAD = 16
_ZERO = np.float32(0.0)


@njit(**INLINE)
def fill(us, ns, c, m, key, slots, normals):  # type: ignore[no-untyped-def]
    """The draws of elements c .. c+m-1: us[h, (c & 7) + j] = threshold h of element c + j
    for each slot h in the bit mask ``slots``; ns[n, (c & 3) + j] = normal n of element c + j
    for n < ``normals``. Each Philox call is made once and all its bits land in the scratch:
    threshold call q of slot h serves elements 8q .. 8q+7, normal call q elements 4q .. 4q+3."""
    k0, k1 = key
    q0 = c >> 3
    nq = ((c + m + 7) >> 3) - q0
    for h in range(SLOTS):
        if (slots >> h) & 1:
            st = STREAM + 2 + h
            for q in range(nq):
                w0, w1, w2, w3 = group_words(q0 + q, k0, k1, st)
                b = 8 * q
                us[h, b] = lo16(w0)
                us[h, b + 1] = hi16(w0)
                us[h, b + 2] = lo16(w1)
                us[h, b + 3] = hi16(w1)
                us[h, b + 4] = lo16(w2)
                us[h, b + 5] = hi16(w2)
                us[h, b + 6] = lo16(w3)
                us[h, b + 7] = hi16(w3)
    q0 = c >> 2
    nq = ((c + m + 3) >> 2) - q0
    for n in range(normals):
        for q in range(nq):
            w0, w1, w2, w3 = group_words(q0 + q, k0, k1, STREAM + n)
            z0, z1 = box_muller(w0, w1)
            z2, z3 = box_muller(w2, w3)
            b = 4 * q
            ns[n, b] = z0
            ns[n, b + 1] = z1
            ns[n, b + 2] = z2
            ns[n, b + 3] = z3


@njit(**INLINE)
def scratch(slots, normals):  # type: ignore[no-untyped-def]
    """A task's scratch (thresholds [SLOTS, CHUNK + _PAD], normals [2, CHUNK + _PAD]),
    uninitialised but for the rows a step reads without drawing them, which are zeroed: a
    threshold of 0 keeps the VC Cat of a zero variance at 0; a normal of 0 times a zero sd."""
    us = np.empty((SLOTS, CHUNK + _PAD), np.float32)
    ns = np.empty((2, CHUNK + _PAD), np.float32)
    for h in range(SLOTS):
        if not (slots >> h) & 1:
            us[h, :] = _ZERO
    for n in range(normals, 2):
        ns[n, :] = _ZERO
    return us, ns


@njit(**OPTS)
def draws(start, m, key, slots, normals):  # type: ignore[no-untyped-def]
    """(thresholds [SLOTS, m], normals [2, m]) of elements start .. start+m-1 as the step
    kernels see them (chunk by chunk, as they read them); slots not drawn are 0. For tests."""
    us = np.zeros((SLOTS, CHUNK + _PAD), np.float32)
    ns = np.zeros((2, CHUNK + _PAD), np.float32)
    out_u = np.zeros((SLOTS, m), np.float32)
    out_n = np.zeros((2, m), np.float32)
    for c in range(start, start + m, CHUNK):
        mm = min(CHUNK, start + m - c)
        fill(us, ns, c, mm, key, slots, normals)
        o8, o4 = c & 7, c & 3
        for j in range(mm):
            for h in range(SLOTS):
                out_u[h, c - start + j] = us[h, o8 + j] if (slots >> h) & 1 else _ZERO
            for n in range(normals):
                out_n[n, c - start + j] = ns[n, o4 + j]
    return out_u, out_n


@njit(**INLINE)
def sgld_slots(kg, kw, acc, stochastic, var):  # type: ignore[no-untyped-def]
    """The thresholds an SGLD step draws (a bit mask over U_G, U_TW, U_TS)."""
    s = (1 << U_G) if stochastic and kg != FP32 else 0
    if acc == VC:
        s |= 1 << U_TS
        if var > 0.0:
            s |= 1 << U_TW
    elif stochastic and kw != FP32:
        s |= 1 << U_TW
    return s


@njit(**INLINE)
def sghmc_slots(kg, kw, km, acc, stochastic, noisy):  # type: ignore[no-untyped-def]
    """The thresholds an SGHMC step draws (a bit mask over the five slots)."""
    s = (1 << U_G) if stochastic and kg != FP32 else 0
    if acc == VC:
        s |= (1 << U_TS) | (1 << U_VS)
        if noisy:
            s |= (1 << U_TW) | (1 << U_VM)
    else:
        if stochastic and kw != FP32:
            s |= 1 << U_TW
        if acc == LOW and stochastic and km != FP32:
            s |= 1 << U_VM
    return s
