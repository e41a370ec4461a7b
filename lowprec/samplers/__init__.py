"""Update rules as their equations: SG-MCMC samplers and the optimisation baselines.

``from_config(config, params, num_data=N, generator=g)`` builds the step-based samplers
(``sgld``, ``sghmc``, ``sgd``) that read the params' ``.grad``. ``svrg`` and ``halp`` need a
gradient oracle rather than ``.grad``: build them with
:class:`lowprec.samplers.halp.VarianceReduced` (the logreg workload does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from lowprec import PrecisionSpec
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
    "from_config",
    "sghmc_coefficients",
]

#: the step-based samplers ``from_config`` builds
SAMPLERS: dict[str, type[Sampler]] = {"sgld": SGLD, "sghmc": SGHMC, "sgd": SGD}


def from_config(
    config: Mapping[str, Any],
    params: Iterable[torch.Tensor],
    num_data: int = 1,
    generator: torch.Generator | None = None,
    default_momentum_rescale: bool = False,
) -> Sampler:
    """The sampler a flat validated config names, over ``params``.

    Reads ``sampler``, ``temperature``, ``prior_std``, ``friction``, ``inverse_mass``,
    ``vc_mode``, ``momentum_rescale`` (None: ``default_momentum_rescale``; deep workloads pass
    True) and the precision keys (``PrecisionSpec.from_config``). The step size is passed to
    each ``step`` (see :mod:`lowprec.schedules`).
    """
    name = config.get("sampler", "sgld")
    if name in ("svrg", "halp"):
        raise ValueError(
            f"key 'sampler': {name!r} needs a gradient oracle, not .grad: use "
            "lowprec.samplers.VarianceReduced (workload logreg)"
        )
    if name not in SAMPLERS:
        raise ValueError(f"key 'sampler': {name!r} is not one of {', '.join(SAMPLERS)}")
    precision = PrecisionSpec.from_config(config)
    common: dict[str, Any] = {
        "num_data": num_data,
        "temperature": float(config.get("temperature", 1.0)),
        "prior_std": config.get("prior_std"),
        "generator": generator,
    }
    if name == "sghmc":
        rescale = config.get("momentum_rescale")
        return SGHMC(
            params,
            precision,
            friction=float(config.get("friction", 3.0)),
            inverse_mass=float(config.get("inverse_mass", 1.0)),
            vc_mode=str(config.get("vc_mode", "joint")),
            momentum_rescale=default_momentum_rescale if rescale is None else bool(rescale),
            **common,
        )
    return SAMPLERS[name](params, precision, **common)
