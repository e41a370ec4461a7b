"""lowprec: the numerics of low-precision Bayesian deep learning, in plain torch.

Number formats (``parse_format``), quantizers (``quantize``, the autograd ``Quantizer``), the
variance-corrected quantizer (``vc_quantize``) and the per-trial ``PrecisionSpec``; see
docs/numerics.md and ALGORITHMS.md §1-4.
"""

from lowprec.formats import FP32, BlockFloat, FixedPoint, Format, SmallFloat, parse_format
from lowprec.precision import PrecisionSpec
from lowprec.quantize import Quantizer, quantize, quantize_act_error
from lowprec.vc import vc_quantize

__all__ = [
    "FP32",
    "BlockFloat",
    "FixedPoint",
    "Format",
    "PrecisionSpec",
    "Quantizer",
    "SmallFloat",
    "parse_format",
    "quantize",
    "quantize_act_error",
    "vc_quantize",
]
