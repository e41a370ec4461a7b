"""The fused executor: θ, θ̂, ∇ and the momentum in flat buffers, one kernel launch per step.

Building it moves the model's tensors into flat buffers (:mod:`lowprec.flat`): every parameter
becomes a view of θ (``low``, ``vc``: θ̂ = θ) or of θ̂ (``full``, whose master copy θ is a
second flat buffer); the sampler's ``theta`` (and SGHMC's ``momentum``) become views too, so
``state_dict`` / ``load_state_dict`` and everything that reads them are unchanged. Gradients
are gathered into a flat buffer each step (a copy, skipped when ``.grad`` already is a view of
it, as it is after the first step unless the caller sets ``.grad = None``).

Each step draws one 64-bit key from the trial's generator and launches one kernel
(:mod:`lowprec.kernels.numba.step` with numba on CPU, :mod:`lowprec.kernels.triton.step` on CUDA)
that runs the rule's equation with the coefficients of :meth:`Sampler.coefficients`; or a few
launches, each some of the step's passes, where a scale needs a maximum over a whole tensor of
a value the step computes: momentum rescaling's S' (ALGORITHMS.md §6), and the per-tensor
scale T of an ``nvfp4<t>`` W or M (§11), which the host makes between the launches from the
groups' maxima. An ``nvfp4<t>`` G's T comes from the gradient before the launch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from lowprec.flat import FlatLayout, block_structure
from lowprec.formats import NVFP4, BlockFloat, FixedPoint, Format
from lowprec.kernels.encoding import (
    ACCUMULATOR_CODES,
    NVFP4T,
    S_NEW,
    S_OLD,
    SCALES,
    T_G,
    T_M,
    T_W,
    VAR_NEW,
    format_params,
)
from lowprec.kernels.fused import has_fused
from lowprec.kernels.rng import draw_key

__all__ = ["FusedExecutor", "format_params", "unsupported"]

#: below this many values a step runs on one thread (a parallel launch costs more than it saves)
PARALLEL_MIN = 1 << 15


def _rule(sampler: Any) -> str:
    """The fused step the sampler's rule declares (its class's ``fused_rule``)."""
    return getattr(sampler, "fused_rule", None) or type(sampler).__name__


def _formats(sampler: Any) -> list[Format]:
    fmts = [sampler.precision.grad, sampler.precision.weight]
    if _rule(sampler) == "sghmc":
        fmts.append(sampler.momentum_format)
    return fmts


def _passes(cuts: set[int], last: int) -> list[tuple[int, int]]:
    """The launches (first pass, last pass) of a step of passes 1..``last`` cut after each
    pass in ``cuts``."""
    out, first = [], 1
    for cut in sorted(cuts):
        out.append((first, cut))
        first = cut + 1
    return [*out, (first, last)]


def _backend(device: torch.device) -> str | None:
    """Why the device has no fused step (None: it has one)."""
    from lowprec import kernels

    return kernels.available(device)


def structure_of(fmts: list[Format]) -> tuple[str | None, tuple[str, int] | None]:
    """(why not, the shared block structure): the block formats among ``fmts`` must share one
    exponent-group structure (all dim-0 or all the same k) and have wl <= 25."""
    structures = {block_structure(f) for f in fmts} - {None}
    for f in fmts:
        if isinstance(f, BlockFloat) and f.wl > 25:
            return f"block formats wider than 25 bits ({f}) run eager", None
    if len(structures) > 1:
        names = ", ".join(str(f) for f in fmts)
        return f"the block formats {names} have different exponent groups", None
    return None, next(iter(structures), None)


def unsupported(sampler: Any) -> str | None:
    """Why the fused step cannot run ``sampler`` (None when it can)."""
    rule = _rule(sampler)
    if rule not in ("sgld", "sghmc"):
        return f"no fused step for {rule}"
    params = sampler.params
    device = params[0].device
    if any(p.device != device for p in params):
        return "the parameters are on different devices"
    if any(p.dtype != torch.float32 for p in params):
        return "fused steps need float32 parameters"
    ptrs = [p.data_ptr() for p in params if p.numel()]
    if len(set(ptrs)) != len(ptrs):
        return "some parameters share storage (tied weights)"
    for f in _formats(sampler):
        if not has_fused(f, device, "step"):
            return f"no fused step for the format {f} on {device.type} (it runs eager)"
    why, _ = structure_of(_formats(sampler))
    if why is not None:
        return why
    return _backend(device)


class FusedExecutor:
    """Flat buffers and one kernel per step (module docstring)."""

    name = "fused"

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler
        self.rule = _rule(sampler)
        params = sampler.params
        self.device = params[0].device
        _, structure = structure_of(_formats(sampler))
        self.layout = FlatLayout.build([tuple(p.shape) for p in params], structure)
        n = self.layout.numel
        with torch.no_grad():
            theta = torch.empty(n, dtype=torch.float32, device=self.device)
            self.layout.gather(sampler.theta, theta)
            if sampler.accumulator == "full":
                hat = torch.empty(n, dtype=torch.float32, device=self.device)
                self.layout.gather([p.detach() for p in params], hat)
            else:
                hat = theta  # θ̂ = θ: the params are views of θ itself
            for p, view in zip(params, self.layout.views(hat), strict=True):
                p.data = view
            sampler.theta = self.layout.views(theta)
            self.grad = torch.zeros(n, dtype=torch.float32, device=self.device)
            self._grad_views = self.layout.views(self.grad)
            if self.rule == "sghmc":
                self.mom = torch.empty(n, dtype=torch.float32, device=self.device)
                self.layout.gather(sampler.momentum, self.mom)
                sampler.momentum = self.layout.views(self.mom)
        self.theta, self.hat = theta, hat
        self.formats = [format_params(f) for f in _formats(sampler)]  # tuples: no refcounts
        self.acc = ACCUMULATOR_CODES[sampler.accumulator]
        #: share the step out over threads only when there are several tasks to share
        self.parallel = len(self.layout.task_start) > 2 and n >= PARALLEL_MIN
        self.stochastic = sampler.rounding == "stochastic"
        #: momentum rescaling (ALGORITHMS.md §6): only fixed-point momentum formats rescale
        ngroups = self.layout.group_start.size
        self.rescale = (
            self.rule == "sghmc"
            and bool(sampler.momentum_rescale)
            and isinstance(sampler.momentum_format, FixedPoint)
            and ngroups > 0
        )
        #: the scale columns of the nvfp4<t> formats among G, W, M (a per-tensor T each)
        columns = (T_G, T_W, T_M)[: len(self.formats)]
        self._per_tensor = {
            col for col, (kind, _) in zip(columns, self.formats, strict=True) if kind == NVFP4T
        }
        if ngroups == 0:  # no values: nothing to scale
            self._per_tensor = set()
        #: the step's last pass, and the passes after which a launch ends for a tensor-wide
        #: maximum: the momentum's (rescaling's S', an nvfp4<t> M's T) after pass 1, W's T
        #: after the pass that computes θ (1 for SGLD, 2 for SGHMC)
        self._last = 3 if self.rule == "sghmc" else 2
        self._w_cut = self._last - 1
        cuts = {self._w_cut} if T_W in self._per_tensor else set()
        if self.rescale or T_M in self._per_tensor:
            cuts.add(1)
        self._calls = _passes(cuts, self._last)
        if self.rescale:
            top = float(sampler.momentum_format.max_value)
            self._top = top if math.isfinite(top) and top > 0 else None
        if self.rescale or self._per_tensor:
            self._scale = np.ones((ngroups, SCALES), dtype=np.float64)
            self._scale[:, T_G:] = 0.0  # no per-tensor scale unless an nvfp4<t> format's
            self._gmax = np.zeros(ngroups, dtype=np.int32)
            owners = self.layout.group_tensor
            self._tensor_first = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
            self._tensors = owners[self._tensor_first]
            sizes = [n for n in self.layout.sizes if n]
            self._lengths = torch.tensor(sizes, dtype=torch.int64, device=self.device)
        else:  # placeholders the kernel does not read
            self._scale = np.ones((1, SCALES), dtype=np.float64)
            self._gmax = np.zeros(1, dtype=np.int32)
        if self.device.type == "cpu":
            self._np = {
                "theta": theta.numpy(),
                "hat": hat.numpy(),
                "grad": self.grad.numpy(),
                "tstart": self.layout.task_start,
                "gstart": self.layout.group_start,
                "glen": self.layout.group_len,
            }
            if self.rule == "sghmc":
                self._np["mom"] = self.mom.numpy()
        else:
            self._cuda_groups = (
                torch.as_tensor(self.layout.group_start, device=self.device),
                torch.as_tensor(self.layout.group_len, device=self.device),
            )

    def _key(self) -> torch.Tensor:
        """The step's Philox key (k0, k1), drawn once per step from the trial's generator (the
        only randomness): an int64 tensor of shape (2,) on the generator's device."""
        gen = self.sampler.generator
        if gen is None:
            raise ValueError(
                "stochastic rounding and noise need an explicit torch.Generator (pass "
                "generator=...); randomness never comes from global state"
            )
        return draw_key(gen)

    def step(self, lr: float, noise: bool) -> bool:
        """One step; returns True: θ̂ is in the params."""
        s = self.sampler
        for g, view in zip(s.check_grads(), self._grad_views, strict=True):
            if g.data_ptr() != view.data_ptr():
                view.copy_(g)
        coef = s.coefficients(lr, noise)
        if self.rule == "sghmc" and s.accumulator == "vc" and s.vc_mode == "independent":
            # the paper's literal form is the joint draw of θ' given v' with Cov taken as 0:
            # θ' = Q_vc(mean_θ, Var_θ), independent of v'
            coef = coef._replace(cov=0.0)
        key = self._key()
        if self.device.type == "cpu":
            self._step_cpu(coef, key)
        else:
            self._step_cuda(coef, key)
        # the grads become views of the flat buffer: an accumulating backward writes there
        for p, v in zip(s.params, self._grad_views, strict=True):
            if p.grad is not None and p.grad.data_ptr() != v.data_ptr():
                p.grad = v
        return True

    def _step_cpu(self, coef: Any, key: torch.Tensor) -> None:
        # one numba launch at a time, on torch's thread count (lowprec.kernels.fused: numba's
        # OpenMP pool would otherwise reset the thread count torch reads)
        from lowprec.kernels.fused import _numba_launch

        with _numba_launch():
            self._launch_cpu(coef, key)

    def _launch_cpu(self, coef: Any, key: torch.Tensor) -> None:
        import numba

        from lowprec.kernels.numba import step as k

        a = self._np
        parallel = self.parallel and numba.get_num_threads() > 1
        key_words = tuple(int(w) for w in key.tolist())
        tasks = (a["tstart"], a["gstart"], a["glen"])
        rule = (self.acc, self.stochastic)
        formats = tuple(self.formats)
        if self.rule == "sgld":
            step = k.sgld_step if parallel else k.sgld_step.serial
            bufs = (a["theta"], a["hat"], a["grad"])
            c = (float(coef.lr), float(coef.weight_decay), float(coef.var))

            def run(first: int, last: int) -> np.ndarray:
                split = (first, last, self._scale, self._gmax)
                step(bufs, tasks, formats, rule, c, key_words, split)
                return self._gmax

        else:
            c = np.asarray(coef, dtype=np.float64)
            step = k.sghmc_step if parallel else k.sghmc_step.serial
            bufs = (a["theta"], a["hat"], a["mom"], a["grad"])

            def run(first: int, last: int) -> np.ndarray:
                split = (first, last, self.rescale, self._scale, self._gmax)
                step(bufs, tasks, formats, rule, c, key_words, split)
                return self._gmax

        self._run_passes(run, coef)

    def _run_passes(self, run: Any, coef: Any) -> None:
        """The step's launches (``run(first, last)`` returns the groups' maxima as int32 bit
        patterns), the per-tensor scales made between them: T of an nvfp4<t> G before the
        first; after pass 1 momentum rescaling's S' (and Var_v/S'²) and an nvfp4<t> M's T;
        after the pass that computes θ an nvfp4<t> W's T."""
        owners = self.layout.group_tensor
        if T_G in self._per_tensor:
            peaks = torch.segment_reduce(self.grad.abs(), "max", lengths=self._lengths)
            self._scale[:, T_G] = self._tensor_scales(peaks)
        if self.rescale:
            self._scale[:, S_OLD] = np.asarray(self.sampler.momentum_scale)[owners]
        scales = None
        for first, last in self._calls:
            gmax = run(first, last)
            if last == self._last:
                break
            peaks = np.maximum.reduceat(gmax, self._tensor_first).view(np.float32)
            if last == 1 and self.rescale:
                scales = self._new_scales(peaks)
                self._scale[:, S_NEW] = scales[owners]
                self._scale[:, VAR_NEW] = float(coef.var_v) / self._scale[:, S_NEW] ** 2
            if last == 1 and T_M in self._per_tensor:
                self._scale[:, T_M] = self._tensor_scales(torch.from_numpy(peaks))
            if last == self._w_cut and T_W in self._per_tensor:
                self._scale[:, T_W] = self._tensor_scales(torch.from_numpy(peaks))
        if scales is not None:
            self.sampler.momentum_scale = scales.tolist()

    def _tensor_scales(self, peaks: torch.Tensor) -> np.ndarray:
        """T per group from the max|value| of each tensor with values (float32, in the
        layout's order): NVFP4.tensor_scale on the parameters' device (the eager format's
        float32 operations, where they run)."""
        t = NVFP4.tensor_scale(peaks.to(self.device)).cpu().numpy()
        out = np.zeros(len(self.layout.sizes), dtype=np.float64)
        out[self._tensors] = t
        return out[self.layout.group_tensor]

    def _new_scales(self, peak: np.ndarray) -> np.ndarray:
        """S' per tensor from the max|x| of each tensor with values (float32, the layout's
        order; lowprec.samplers.accumulators.rescale_factor): max|x| / (largest value of Q_M);
        1 where that max is 0 or not finite. Tensors without values keep S = 1."""
        peak = peak.astype(np.float64)
        out = np.ones(len(self.layout.sizes), dtype=np.float64)
        if self._top is None:
            return out
        ok = np.isfinite(peak) & (peak > 0)
        out[self._tensors[ok]] = peak[ok] / self._top
        return out

    def _step_cuda(self, coef: Any, key: torch.Tensor) -> None:
        from lowprec.kernels.triton import step as t

        gstart, glen = self._cuda_groups
        per_group = self.rescale or bool(self._per_tensor)
        # the groups' maxima a launch leaves for the next (a placeholder without cuts)
        gmax = (
            torch.zeros(self._gmax.shape, dtype=torch.int32, device=self.device)
            if per_group
            else None
        )

        def run(first: int, last: int) -> np.ndarray:
            # the host's scales, made before this launch, on the device (a placeholder when
            # no rescaling or nvfp4<t> format reads them)
            scale = torch.as_tensor(self._scale, device=self.device) if per_group else None
            if self.rule == "sgld":
                t.sgld_step(
                    self.theta, self.hat, self.grad, gstart, glen, self.formats, self.acc,
                    self.stochastic, coef, key, (first, last), scale, gmax,
                )  # fmt: skip
            else:
                t.sghmc_step(
                    self.theta, self.hat, self.mom, self.grad, gstart, glen, self.formats,
                    self.acc, self.stochastic, coef, key, (first, last), self.rescale, scale,
                    gmax,
                )  # fmt: skip
            return gmax.cpu().numpy() if gmax is not None and last != self._last else self._gmax

        self._run_passes(run, coef)
