"""The numba (CPU) backend of the fused kernels, one concept a module (each formula once):

- ``jit``: compile options (on-disk cache) and each parallel kernel's serial twin;
- ``bits``: Philox4x32-10, 16-bit draws and thresholds, Box-Muller (lowprec.kernels.rng's layout);
- ``grid``: the formats' grids and the rounding onto them per element, Q_vc (vc_lattice);
- ``blocks``: block maxima and the walk from a tile's elements to their blocks;
- ``quantize``: fixed, float and block quantizers; ``scaled``: MX, NVFP4, scaled integers;
- ``vc``: the VC quantizer; ``draws`` and ``step``: the fused SGLD / SGHMC steps.

The codes of format kinds and accumulators, and the packing of a format into the constants a
kernel takes, are lowprec.kernels.encoding's; the launchers are lowprec.kernels.fused's.
"""
