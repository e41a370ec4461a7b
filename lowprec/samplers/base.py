"""What every update rule shares: the accumulator, the executor, the prior and the protocol.

A sampler is three parts (docs/ARCHITECTURE.md, "Packages"):

- the **update rule** (:class:`SGLD`, :class:`SGHMC`): the equation, written once, as the
  scalar coefficients of one step (:meth:`Sampler.coefficients`) and the per-tensor update
  that reads as the equation (:meth:`Sampler._update`);
- the **accumulator** (``full`` / ``low`` / ``vc``, :mod:`lowprec.samplers.accumulators`): how
  θ is stored and rounded, a strategy the rule calls ("draw N(mean, var) and keep it");
- the **executor** (:mod:`lowprec.samplers.executors`): ``eager`` runs the rule per tensor
  with torch ops (the readable reference); ``fused`` runs the same equation over flat buffers
  in one kernel launch per step (numba on CPU, Triton on GPU).

A sampler owns a list of tensors ``params`` (the ``torch.nn.Parameter`` s of a model, or one
plain ``[chains, dim]`` tensor for batched synthetic chains) whose ``.grad`` the caller fills.
It keeps the accumulator θ (ALGORITHMS.md §3):

- ``full`` (LP-F): θ is a float32 master copy; the network computes with θ̂ = Q_W(θ);
- ``low`` (naive LP-L): θ is stored on the grid of W; after the whole update (noise included)
  the result is rounded with Q_W; θ̂ = θ;
- ``vc`` (VC LP-L): θ is stored on the grid; the update's mean and noise variance go to the
  variance-corrected quantizer Q_vc (§4); θ̂ = θ.

Protocol: ``prepare()`` writes θ̂ into the params (call before the forward pass; idempotent:
θ̂ is drawn once per θ), the caller runs forward and backward, ``step(lr)`` reads the params'
``.grad``, quantizes it with Q_G, updates θ and leaves θ̂ of the new θ in the params.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from lowprec import Format, PrecisionSpec
from lowprec.precision import ACCUMULATORS, KERNEL_MODES
from lowprec.samplers.accumulators import Accumulator, make_accumulator
from lowprec.samplers.rounding import Rounding

__all__ = ["ACCUMULATORS", "EXECUTORS", "Sampler"]

EXECUTORS = KERNEL_MODES


class Sampler:
    """Base class: state, accumulator, executor and the prior. Subclasses (the update rules)
    implement :meth:`coefficients` and :meth:`_update`.

    Args:
        params: tensors updated in place (their ``.data``); their ``.grad`` is read by ``step``.
        precision: the formats of W, G, M and the accumulator mode.
        num_data: N, the training-set size (1 for synthetic targets): noise 2·lr·T/N and the
            prior's weight decay 1/(N σ²) (ALGORITHMS.md §5).
        temperature: T.
        prior_std: σ of a Gaussian prior N(0, σ²) on every parameter; None is a flat prior.
        generator: the only source of randomness (quantization and Langevin noise).
        executor: ``auto`` (fused when a fused step exists for this device and precision, else
            eager with one line on stderr), ``fused`` (ValueError naming ``kernels`` when it
            cannot run) or ``eager``. ``executor_name`` says which one runs.
    """

    #: the fused step kernel that runs this rule (``lowprec.samplers.fused``), None: eager only;
    #: each rule names its own, so the fused executor needs no list of the rules
    fused_rule: str | None = None

    #: the name used in configs (``sampler: ...``)
    name = "base"
    #: whether ``step(noise=True)`` adds Langevin noise at all (False for the SGD baselines)
    adds_noise = True

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        precision: PrecisionSpec,
        *,
        num_data: int = 1,
        temperature: float = 1.0,
        prior_std: float | None = None,
        generator: torch.Generator | None = None,
        executor: str = "auto",
    ) -> None:
        self.params: list[torch.Tensor] = list(params)
        if not self.params:
            raise ValueError("the sampler got an empty list of parameters")
        for i, p in enumerate(self.params):
            if not isinstance(p, torch.Tensor) or not p.is_floating_point():
                raise ValueError(f"parameter {i} must be a floating-point tensor, got {p!r:.60}")
        if precision.accumulator not in ACCUMULATORS:
            raise ValueError(
                f"key 'accumulator': {precision.accumulator!r} is not one of "
                f"{', '.join(ACCUMULATORS)}"
            )
        if precision.accumulator == "vc" and precision.weight.is_identity:
            raise ValueError(
                "key 'accumulator': vc needs a low-precision weight format; with fp32 weights "
                "use accumulator: full"
            )
        if not num_data >= 1:
            raise ValueError(f"num_data must be >= 1, got {num_data!r}")
        if not temperature >= 0:
            raise ValueError(f"key 'temperature': must be >= 0, got {temperature!r}")
        if prior_std is not None and not prior_std > 0:
            raise ValueError(
                f"key 'prior_std': must be > 0 (or unset for a flat prior), got {prior_std!r}"
            )
        if executor not in EXECUTORS:
            raise ValueError(f"key 'kernels': {executor!r} is not one of {', '.join(EXECUTORS)}")
        self.precision = precision
        self.accumulator: str = precision.accumulator
        self.rounding: str = precision.rounding
        self.num_data = int(num_data)
        self.temperature = float(temperature)
        self.prior_std = prior_std
        #: weight decay 1/(N σ²) of the Gaussian prior, 0 for a flat prior
        self.weight_decay = 0.0 if prior_std is None else 1.0 / (num_data * prior_std**2)
        self.generator = generator
        self.executor_mode = executor
        #: the quantizers and noise of the eager update
        self.q = Rounding(self.rounding, generator, "eager" if executor == "eager" else "auto")
        self.acc: Accumulator = self._make_accumulator()
        # the accumulator θ: float32 master copy (full) or values on W's grid (low, vc)
        with torch.no_grad():
            w = self.precision.weight
            self.theta = [self.acc.store(p.detach().clone(), w) for p in self.params]
        self._prepared = False
        self.steps_done = 0
        self._init_state()
        from lowprec.samplers.executors import build_executor

        self._executor = build_executor(self, executor)

    def _init_state(self) -> None:
        """Extra state of the rule (SGHMC's momentum), created before the executor."""
        return None

    def _make_accumulator(self) -> Accumulator:
        return make_accumulator(self.accumulator, self.q)

    @property
    def executor_name(self) -> str:
        """``fused`` or ``eager``: the executor that runs this sampler's steps."""
        return self._executor.name

    # -- quantizers (eager reference) --------------------------------------------------------
    def q_weight(self, x: torch.Tensor) -> torch.Tensor:
        """Q_W(x) with the configured rounding."""
        return self.q.quantize(x, self.precision.weight)

    def q_grad(self, g: torch.Tensor) -> torch.Tensor:
        """Q_G(g) with the configured rounding."""
        return self.q.quantize(g, self.precision.grad)

    def q_vc(self, mean: torch.Tensor, var: float, fmt: Format) -> torch.Tensor:
        """Q_vc(mean, var) on ``fmt``'s grid (ALGORITHMS.md §4); stochastic rounding if var = 0."""
        return self.q.vc(mean, var, fmt)

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        """ξ ~ N(0, I) of x's shape, from the sampler's generator."""
        return self.q.randn_like(x)

    # -- gradients and the prior -----------------------------------------------------------
    def check_grads(self) -> list[torch.Tensor]:
        """The params' ``.grad`` (detached); ValueError naming the parameter without one."""
        out = []
        for i, p in enumerate(self.params):
            if p.grad is None:
                raise ValueError(
                    f"parameter {i} has no .grad: run backward (or fill .grad) before step()"
                )
            out.append(p.grad.detach())
        return out

    def gradients(self) -> list[torch.Tensor]:
        """g = Q_G(∇L̄(θ̂)) + ∇(-log p(θ))/N = Q_G(p.grad) + θ/(N σ²) for every parameter."""
        out = []
        for grad, th in zip(self.check_grads(), self.theta, strict=True):
            g = self.q_grad(grad)
            if self.weight_decay:
                g = g + self.weight_decay * th
            out.append(g)
        return out

    # -- the rule: its coefficients and its per-tensor update ---------------------------------
    def coefficients(self, lr: float, noise: bool) -> Any:
        """The scalars of one step (the equation's coefficients), shared by both executors."""
        raise NotImplementedError

    def _update(self, lr: float, grads: list[torch.Tensor], noise: bool) -> None:
        raise NotImplementedError

    # -- protocol --------------------------------------------------------------------------
    @torch.no_grad()
    def prepare(self) -> None:
        """Write θ̂ (Q_W(θ) for ``full``, θ otherwise) into the params; θ̂ is drawn once per θ."""
        if self._prepared:
            return
        for p, th in zip(self.params, self.theta, strict=True):
            hat = self.acc.hat(th, self.precision.weight)
            if hat.data_ptr() != p.data_ptr():
                p.data.copy_(hat)
        self._prepared = True

    @torch.no_grad()
    def step(self, lr: float, noise: bool = True) -> None:
        """One update with step size ``lr`` from the params' ``.grad``; noise only when
        ``noise`` (and the sampler adds noise at all, and T > 0). Leaves θ̂ in the params."""
        if not lr >= 0 or not math.isfinite(lr):
            raise ValueError(f"step size must be finite and >= 0, got {lr!r}")
        noise = noise and self.adds_noise and self.temperature > 0
        self._prepared = self._executor.step(lr, noise)
        self.steps_done += 1
        self.prepare()

    @torch.no_grad()
    def sample(self) -> list[torch.Tensor]:
        """Copies of the weights as the network computes with them (θ̂)."""
        self.prepare()
        return [p.detach().clone() for p in self.params]

    # -- checkpoints -----------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        """θ, θ̂ (so a resumed run computes with the same weights), momentum, step count.
        The same layout for both executors: a checkpoint of one resumes on the other."""
        return {
            "sampler": self.name,
            "accumulator": self.accumulator,
            "theta": [t.detach().clone() for t in self.theta],
            "theta_hat": [p.detach().clone() for p in self.params],
            "prepared": self._prepared,
            "steps_done": self.steps_done,
            **self._extra_state(),
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (same sampler, accumulator and shapes)."""
        if state.get("sampler") != self.name or state.get("accumulator") != self.accumulator:
            raise ValueError(
                f"checkpoint is for sampler {state.get('sampler')!r} with accumulator "
                f"{state.get('accumulator')!r}, not {self.name!r} with {self.accumulator!r}"
            )
        if [tuple(t.shape) for t in state["theta"]] != [tuple(t.shape) for t in self.theta]:
            raise ValueError("checkpoint parameter shapes do not match the sampler's parameters")
        for th, saved in zip(self.theta, state["theta"], strict=True):
            th.copy_(saved)
        for p, saved in zip(self.params, state["theta_hat"], strict=True):
            p.data.copy_(saved)
        self._prepared = bool(state["prepared"])
        self.steps_done = int(state["steps_done"])
        self._load_extra_state(state)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(accumulator={self.accumulator}, "
            f"W={self.precision.weight}, G={self.precision.grad}, T={self.temperature}, "
            f"N={self.num_data}, prior_std={self.prior_std}, executor={self.executor_mode})"
        )
