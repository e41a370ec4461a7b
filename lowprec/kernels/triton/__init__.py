"""The fused kernels in Triton (CUDA; under ``TRITON_INTERPRET=1`` they run on CPU tensors,
which is how CI exercises them, and tests/lowprec/kernels/triton/test_sm90.py compiles them for
sm_90 without a GPU). One concept a module, each formula once:

- ``bits.py``: Philox4x32-10, the 16-bit thresholds and Box-Muller normals in the bit layout of
  lowprec/kernels/rng.py (tiles for the quantizers, windows for the steps);
- ``grid.py``: the grids of the format kinds (lowprec/kernels/encoding.py), rounding to
  nearest and stochastic on a grid, the scaled formats' block scales, Q_vc;
- ``quantize.py``: the quantizer kernels (Q and Q_vc over tiles of 2048, the exponent groups'
  maxima);
- ``launch.py``: their host side (a format encoded once, the launches);
- ``step.py``: the fused SGLD / SGHMC steps and their launchers.

Importing this package does not import Triton; its modules do.
"""
