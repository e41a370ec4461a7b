"""Counter-based random bits: Philox4x32-10 keyed by (key, element index).

The generator (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11;
the same function as Triton's ``tl.randint4x`` and cuRAND's Philox) maps a 128-bit counter
(c0, c1, c2, c3) and a 64-bit key (k0, k1) to four 32-bit words. Ten rounds of

    (c0, c1, c2, c3) <- (hi(M1·c2) ^ c1 ^ k0, lo(M1·c2), hi(M0·c0) ^ c3 ^ k1, lo(M0·c0))
    (k0, k1)         <- (k0 + W0, k1 + W1)   (mod 2^32, between rounds)

with M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85.

Layout (identical in the numba and the Triton kernels, so both give the same bits):

- key: (k0, k1), two 32-bit words drawn ONCE per call from the trial's ``torch.Generator``
  (:func:`draw_key`); all randomness comes from that generator.
- counter of group g under stream s: (g mod 2^32, g div 2^32, s, 0). ``s`` separates the
  independent draws one kernel makes under one key (VC: s, s+1, s+2, s+3); c3 = 0 is left to
  callers that want another axis (the SAMPLERS' fused steps).
- 16-bit draws (``r16``, one rounding each): tiles of 2048 elements = 256 groups x 8 halves.
  Element i: tile t = i >> 11, p = i & 2047, group g = 256·t + (p & 255), half j = p >> 8:
  r16(i) = (word[j >> 1] >> (16·(j & 1))) & 0xFFFF. Every bit of every word serves one
  rounding, and inside a tile each half j is a contiguous run of 256 elements (SIMD on the CPU,
  coalesced on the GPU; the CPU kernels stage one tile's halves in a 4 KB per-thread buffer,
  the GPU kernels keep them in registers; no random tensor is ever allocated).
- 32-bit draws and normals: tiles of 1024 elements = 256 groups x 4 words. Element i: tile
  t = i >> 10, p = i & 1023, group g = 256·t + (p & 255), word j = p >> 8. Normals by
  Box-Muller from the pairs (w0, w1) -> elements j = 0 (cos), 1 (sin) and (w2, w3) -> j = 2, 3:
  u1 = (2·(wa >> 9) + 1)·2^-24 in (0, 1) (23 bits), u2 = (wb >> 8)·2^-24 in [0, 1) (24 bits),
  z = sqrt(-2 ln u1)·(cos, sin)(2π u2); |z| <= sqrt(48 ln 2) = 5.77 (tail mass 8e-9 cut).

Thresholds: a 16-bit draw r gives u = (2r + 1)/2^17, the midpoint of its 2^-16 cell, and a
rounding goes up when u < δ/Δ. P(up) is then δ/Δ to within 2^-17 (it is exact whenever δ/Δ is
a multiple of 2^-16, and the error is symmetric across each cell), so stochastic rounding's bias
is at most 2^-17·Δ per value and averages to zero over δ (docs/numerics.md, "Random bits").
"""

from __future__ import annotations

import torch

__all__ = [
    "GROUPS_PER_TILE",
    "KEY_WORDS",
    "M0",
    "M1",
    "ROUNDS",
    "TILE16",
    "TILE32",
    "W0",
    "W1",
    "draw_key",
]

M0 = 0xD2511F53
M1 = 0xCD9E8D57
W0 = 0x9E3779B9
W1 = 0xBB67AE85
ROUNDS = 10
#: Philox groups per tile; a tile holds 8 (16-bit) or 4 (32-bit) draws per group
GROUPS_PER_TILE = 256
TILE16 = 8 * GROUPS_PER_TILE  # 2048 elements
TILE32 = 4 * GROUPS_PER_TILE  # 1024 elements
KEY_WORDS = 2


def draw_key(generator: torch.Generator) -> torch.Tensor:
    """The call's Philox key (k0, k1): two 32-bit words drawn from ``generator``, as an int64
    tensor of shape (2,) on the generator's device (no host synchronisation on CUDA).

    This is the only draw a fused quantizer makes from the generator, so the same generator
    state gives the same key and the same bits."""
    return torch.randint(
        0, 2**32, (KEY_WORDS,), generator=generator, device=generator.device, dtype=torch.int64
    )


def philox4x32_reference(
    counter: tuple[int, int, int, int], key: tuple[int, int], rounds: int = ROUNDS
) -> tuple[int, int, int, int]:
    """Philox4x32 on Python integers, word for word as the kernels (documentation and checks;
    the tests carry their own independent copy)."""
    c0, c1, c2, c3 = (int(c) & 0xFFFFFFFF for c in counter)
    k0, k1 = (int(k) & 0xFFFFFFFF for k in key)
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + W0) & 0xFFFFFFFF, (k1 + W1) & 0xFFFFFFFF
        p0, p1 = M0 * c0, M1 * c2
        c0, c1, c2, c3 = (
            (p1 >> 32) ^ c1 ^ k0,
            p1 & 0xFFFFFFFF,
            (p0 >> 32) ^ c3 ^ k1,
            p0 & 0xFFFFFFFF,
        )
    return c0, c1, c2, c3
