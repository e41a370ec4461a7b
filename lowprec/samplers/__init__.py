"""Update rules as their equations: SG-MCMC samplers and the optimisation baselines.

Typed constructors only (no config dicts): ``SGLD(params, precision, *, num_data,
temperature, prior_std, generator, executor)``, ``SGD(...)``, ``SGHMC(..., friction,
inverse_mass, vc_mode, momentum_rescale, ...)`` for the step-based rules that read the params'
``.grad``; ``svrg`` and ``halp`` need a gradient oracle rather than ``.grad``:
:class:`lowprec.samplers.halp.VarianceReduced` (the logreg workload builds it). The config layer
(``workloads.config.trialspec.build_sampler``) calls these with a trial's typed values.
"""

from __future__ import annotations

from lowprec.samplers.base import ACCUMULATORS, Sampler
from lowprec.samplers.halp import VarianceReduced
from lowprec.samplers.sghmc import SGHMC, VC_MODES, sghmc_coefficients
from lowprec.samplers.sgld import SGD, SGLD

__all__ = [
    "ACCUMULATORS",
    "SAMPLERS",
    "SGD",
    "SGHMC",
    "SGLD",
    "VC_MODES",
    "Sampler",
    "VarianceReduced",
    "sghmc_coefficients",
]

#: the step-based samplers by name
SAMPLERS: dict[str, type[Sampler]] = {"sgld": SGLD, "sghmc": SGHMC, "sgd": SGD}
