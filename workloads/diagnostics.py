"""How well chains sample: bulk effective sample size and rank-normalised split R-hat, computed
with ArviZ (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021) on the thinned draws a trial
keeps.

    chain_diagnostics(samples)   # samples [draws, chains, dim], as workloads.synthetic keeps them
    -> {"ess": ..., "rhat": ...}

- ``ess``: ``arviz.ess(method="bulk")`` of every coordinate over all chains together (ArviZ's
  estimate pools the chains: with C chains of n independent draws it is about C·n), the worst
  (smallest) coordinate;
- ``rhat``: ``arviz.rhat(method="rank")`` (each chain split in halves, ranks normalised), the
  worst (largest) coordinate; None with a single chain (ArviZ needs two chains; a single
  chain's halves are not independent starts);
- ``ess_per_s`` (the trial runner adds it): ``ess`` per second of the trial's wall clock.

Both are None when there are fewer than four draws per chain, or the draws are not finite.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: ArviZ's smallest shape for its diagnostics: draws per chain
MIN_DRAWS = 4


def _dataset(chains_first: np.ndarray) -> Any:
    import arviz as az

    return az.convert_to_dataset(chains_first)


def chain_diagnostics(samples: np.ndarray) -> dict[str, float | None]:
    """``ess`` and ``rhat`` of ``samples`` ``[draws, chains, dim]`` (or ``[draws, chains]``,
    or ``[draws]`` for one chain of one coordinate); see the module docstring."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3:
        raise ValueError(f"samples: expected [draws, chains, dim], got shape {x.shape}")
    draws, chains = x.shape[0], x.shape[1]
    out: dict[str, float | None] = {"ess": None, "rhat": None}
    if draws < MIN_DRAWS or not np.all(np.isfinite(x)):
        log.warning("ess and rhat are null: %d draws per chain, or non-finite draws", draws)
        return out
    import arviz as az

    data = _dataset(np.ascontiguousarray(x.transpose(1, 0, 2)))  # ArviZ wants (chain, draw)
    ess = np.asarray(az.ess(data, method="bulk")["x"].values, dtype=np.float64)
    out["ess"] = _worst(ess, min)
    if chains >= 2:
        rhat = np.asarray(az.rhat(data, method="rank")["x"].values, dtype=np.float64)
        out["rhat"] = _worst(rhat, max)
    return out


def _worst(values: np.ndarray, pick: Any) -> float | None:
    """The worst coordinate; a constant coordinate (NaN from ArviZ) is skipped, all NaN: None."""
    finite = [float(v) for v in values.ravel() if math.isfinite(float(v))]
    return pick(finite) if finite else None
