"""Number formats (ALGORITHMS.md §1): immutable values with a canonical string form.

==================  ===============  ========================================================
string              class            grid and range
==================  ===============  ========================================================
``fixed<wl,fl>``    FixedPoint       Δ = 2^-fl; range [-2^(wl-fl-1), 2^(wl-fl-1) - Δ]
``block<wl>``       BlockFloat       one exponent per slice along dim 0;
``block<wl,k>``                      or per run of k values along the last dim (last run padded);
                                     e = floor(log2 max|x|) over the block, Δ = 2^(e+2-wl),
                                     range ±(2^(wl-1) - 1)·Δ; an all-zero block stays zero
``float<exp,man>``  SmallFloat       IEEE-like: bias 2^(exp-1) - 1, subnormals on 2^(emin-man),
                                     saturation at the largest normal (no inf)
``fp32``            FP32             identity
``fp8_e4m3`` ...    ElementFloat     an OCP element (E4M3FN, E5M2, FP6 E2M3/E3M2, FP4 E2M1):
                                     a SmallFloat with OCP's emax and largest value
``mx<E>``           MXFormat         OCP microscaling: K (default 32) values along the last dim
``mx<E,K>``                          share a power-of-two scale 2^s, s = floor(log2 amax) -
                                     emax(E) clamped to [-127, 127]; elements E or int8
``nvfp4``           NVFP4            16 fp4_e2m1 values share an E4M3 scale (``nvfp4<t>``: and
``nvfp4<t>``                         a float32 scale per tensor)
``int<B>``          ScaledInt        symmetric integers, float32 scale amax/(2^(B-1) - 1) per
``int<B,gK>``                        row (dim 0) or per group of K along the last dim
==================  ===============  ========================================================

The last three are scaled formats (:class:`ScaledFormat`): a tensor is mapped onto an element
format by a scale per block (``to_element``), rounded there, and multiplied back.

Every format exposes what the quantizers need: ``spacing(x)`` (the grid step Δ of every element
of ``x``), ``bounds(x)`` (the range, element-wise), ``max_value``, ``bits`` and ``bits_for``.
The papers are low-precision SGLD (Zhang, Wilson, De Sa, ICML 2022) and low-precision SGHMC
(Wang, Chen, Song, Zhang, TMLR 2024), whose formats follow qtorch.

The package imports no torch (and no numpy) at its top: parsing a format string and its range
checks are plain Python, so that a bad format is refused before torch loads; the
methods that compute on tensors import torch when they run.

Modules: ``base`` (the :class:`Format` interface, float32 limits, ``pow2``/``exponent_of``, block
layouts), ``classic`` (fixed, block, float, fp32), ``ocp`` (the OCP elements), ``scaled``
(MX, NVFP4, scaled integers) and ``parse`` (``parse_format``). Import from this package: the
names below are its interface.
"""

from lowprec.formats.base import Format, exponent_of, pow2
from lowprec.formats.classic import FP32, BlockFloat, FixedPoint, SmallFloat
from lowprec.formats.ocp import ELEMENTS, ElementFloat, IntElement
from lowprec.formats.parse import parse_format
from lowprec.formats.scaled import NVFP4, SCALE_RULES, MXFormat, ScaledFormat, ScaledInt

__all__ = [
    "ELEMENTS",
    "FP32",
    "NVFP4",
    "SCALE_RULES",
    "BlockFloat",
    "ElementFloat",
    "FixedPoint",
    "Format",
    "IntElement",
    "MXFormat",
    "ScaledFormat",
    "ScaledInt",
    "SmallFloat",
    "exponent_of",
    "parse_format",
    "pow2",
]
