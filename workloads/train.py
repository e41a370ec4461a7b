"""The training loop the deep workloads share (``mnist_mlp``, ``cifar_resnet18``).

An SG-MCMC sampler (``lowprec.samplers``) drives the network; the step size follows the
trial's schedule (``lowprec.schedules``: constant, decay, cyclical), ALGORITHMS.md §5-§8. With
N training examples, K = epochs · ⌈N/B⌉ steps, and step k in epoch e:

    sampler.prepare()                                  # θ̂ into the network (Q_W(θ) for `full`)
    L̄ = mean over the minibatch of -log softmax(f(x; θ̂))_y      # mean cross-entropy
    backward                                           # errors quantized by the network's Q(A, E)
    sampler.step(lr_k, noise=schedule.is_sampling(k))  # θ ← θ - lr_k(Q_G(∇L̄) + θ/(Nσ²)) + noise

A sample is the network as it computes (θ̂, BN in eval mode) at the end of chosen epochs: after
``burn_in`` epochs, one every ``thin`` epochs (cyclical: the last ``samples_per_cycle`` epoch
ends of each cycle's sampling stage); when ``num_samples`` is set only the latest that many are
kept. Which epochs those are is known before training starts, so each sample's softmax
predictions on the test set are added into a running sum and only the sum is kept: the Bayesian
model average is p̄(y|x) = (1/S) Σ_s softmax(f(x; θ̂_s)) (§8). Metrics: the average's
``test_error``, ``test_nll``, ``test_ece``, ``test_brier``; the same for the last sample
(``last_test_*``), ``ood_auroc`` when an out-of-distribution set is given, ``bits`` (the weight
format's word bits) and ``bits_per_param`` (the stored weights' bits, shared exponents amortised
over all layers; 32 for ``full``, whose accumulator is a float32 master copy), as
:func:`workloads.synthetic.bits_metrics` defines them for every workload.

Every epoch ``ctx.report`` gets the epoch's metrics and a checkpoint (model and sampler state,
ensemble sums, the generator's state), from which ``ctx.restored`` resumes exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lowprec.metrics import classification_metrics, entropy, ood_auroc
from workloads.base import Diverged, TrialContext, WorkloadResult
from workloads.config import checks, trialspec
from workloads.config.checks import collection_epochs
from workloads.data import ImageData, augment_crop_flip, minibatches, normalize
from workloads.synthetic import bits_metrics

#: examples per forward pass when predicting the test set
EVAL_BATCH = {"cpu": 500, "cuda": 2000}
#: check the running loss for NaN/inf every this many steps (a check synchronises the GPU)
CHECK_EVERY = 25


#: checks before anything runs (torch-free: workloads.config.check_keys runs them first)
validate = checks.check_training


def precision_and_quantizer(
    config: Mapping[str, Any], generator: torch.Generator
) -> tuple[Any, Callable[[], nn.Module] | None]:
    """The trial's PrecisionSpec (a ``TrialSpec``'s own, else derived from ``config``) and a
    factory of Quantizer(A, E) modules for the network; the factory is None when activations
    and errors are both fp32 (nothing to insert)."""
    from lowprec import Quantizer
    from workloads.config.precision import precision_of

    if isinstance(config, trialspec.TrialSpec):
        precision = config.precision
    else:
        precision = precision_of(config)
    if precision.act.is_identity and precision.error.is_identity:
        return precision, None

    def factory() -> nn.Module:
        return Quantizer(precision.act, precision.error, precision.rounding, generator)

    return precision, factory


@torch.no_grad()
def init_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation, drawn from ``generator`` instead of the global state:
    conv/linear weights and biases ~ U(-1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5),
    BN weight 1, bias 0, running statistics reset."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            bound = 1.0 / math.sqrt(m.weight[0].numel())
            for p in (m.weight, m.bias):
                if p is not None:
                    u = torch.rand(p.shape, generator=generator, device=generator.device)
                    p.copy_((2.0 * u - 1.0) * bound)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_parameters()


def _batch(
    x: torch.Tensor, data: ImageData, augment: bool, generator: torch.Generator
) -> torch.Tensor:
    if augment:
        x = augment_crop_flip(x, generator)
    return normalize(x, data.mean, data.std)


@torch.no_grad()
def predict(
    model: nn.Module, images: torch.Tensor, data: ImageData, generator: torch.Generator
) -> torch.Tensor:
    """softmax(f(x; θ̂)) of every image, float32 ``[n, classes]``, BN in eval mode."""
    model.eval()
    size = EVAL_BATCH.get(images.device.type, 500)
    out = [
        F.softmax(model(_batch(images[i : i + size], data, False, generator)), dim=1)
        for i in range(0, images.shape[0], size)
    ]
    model.train()
    return torch.cat(out).float()


def _to_cpu(tree: Any) -> Any:
    """A copy of a nested dict/list of tensors with every tensor on the CPU."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu().clone()
    if isinstance(tree, dict):
        return {k: _to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_to_cpu(v) for v in tree)
    return tree


def _to_device(tree: Any, device: torch.device) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree.to(device)
    if isinstance(tree, dict):
        return {k: _to_device(v, device) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_to_device(v, device) for v in tree)
    return tree


def _check_finite(value: torch.Tensor, what: str, epoch: int) -> None:
    if not bool(torch.isfinite(value).all()):
        raise Diverged(f"{what} went non-finite in epoch {epoch}", {"epoch": epoch})


def train_classifier(
    config: trialspec.TrialSpec | dict[str, Any],
    ctx: TrialContext,
    model: nn.Module,
    data: ImageData,
    *,
    augment: bool,
    ood: ImageData | None = None,
) -> WorkloadResult:
    """Sample ``model``'s posterior on ``data`` and return the ensemble's test predictions.

    ``config`` is resolved (every key of ``workloads.config.resolve`` and ``table.DATA_KEYS``
    present);
    ``augment`` turns on the CIFAR crop-and-flip augmentation for training batches; ``ood``
    (test images of another data set of the same shape) adds ``ood_auroc``.
    """
    started = time.perf_counter()
    trial = trialspec.TrialSpec.of(config)
    device, gen = torch.device(ctx.device), ctx.generator
    if gen.device.type != device.type:
        raise ValueError(f"the trial's generator is on {gen.device}, its device is {device}")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    precision = trial.precision
    data = data.to(device)
    ood = ood.to(device) if ood is not None else None
    model.to(device)
    init_parameters(model, gen)
    params = list(model.parameters())

    n_train, batch_size, epochs = data.num_train, trial.run.batch_size, trial.run.epochs
    spe = math.ceil(n_train / batch_size)
    cycles = trial.schedule.cycles
    if trial.schedule.kind == "cyclical" and epochs % cycles:
        raise ValueError(
            f"key 'cycles': epochs ({epochs}) must be a multiple of cycles ({cycles}) "
            "so that every cycle ends at the end of an epoch"
        )
    schedule = trial.schedule.build(epochs * spe, steps_per_epoch=spe)
    run = trial.run
    collect = set(collection_epochs(schedule, epochs, spe, run.burn_in, run.thin, run.num_samples))
    sampler = trialspec.build_sampler(trial, params, num_data=n_train, generator=gen)
    ctx.step_kernels = sampler.executor_name

    start_epoch, count = 0, 0
    ens_sum = torch.zeros(data.num_test, data.num_classes, dtype=torch.float64, device=device)
    ood_sum = None
    if ood is not None:
        ood_sum = torch.zeros(ood.num_test, data.num_classes, dtype=torch.float64, device=device)
    last = None
    if ctx.restored is not None:
        state = _to_device(ctx.restored, device)
        model.load_state_dict(state["model"])
        sampler.load_state_dict(state["sampler"])
        gen.set_state(ctx.restored["generator"])
        start_epoch, count = int(state["epoch"]), int(state["count"])
        ens_sum, ood_sum = state["ens_sum"], state["ood_sum"]
        last = state["last"]

    metrics: dict[str, Any] = {}
    for epoch in range(start_epoch + 1, epochs + 1):
        model.train()
        loss_sum = torch.zeros((), device=device)
        wrong = torch.zeros((), device=device, dtype=torch.long)
        k = (epoch - 1) * spe
        for i, idx in enumerate(minibatches(n_train, batch_size, gen)):
            x = _batch(data.train_x[idx], data, augment, gen)
            y = data.train_y[idx]
            sampler.prepare()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            for p in params:
                p.grad = None
            loss.backward()
            sampler.step(schedule.lr(k), noise=schedule.is_sampling(k))
            loss_sum += loss.detach() * y.shape[0]
            wrong += (logits.detach().argmax(1) != y).sum()
            k += 1
            if (i + 1) % CHECK_EVERY == 0:
                _check_finite(loss_sum, "the training loss", epoch)
        _check_finite(loss_sum, "the training loss", epoch)
        metrics = {
            "epoch": epoch,
            "train_loss": float(loss_sum) / n_train,
            "train_error": float(wrong) / n_train,
            "lr": schedule.lr(k - 1),
        }
        if epoch in collect:
            sampler.prepare()
            last = predict(model, data.test_x, data, gen)
            _check_finite(last, "the test predictions", epoch)
            ens_sum += last
            if ood is not None:
                ood_sum += predict(model, ood.test_x, data, gen)
            count += 1
        if count:
            metrics.update(
                classification_metrics(
                    (ens_sum / count).float().cpu().numpy(), data.test_y.cpu().numpy()
                )
            )
        metrics["samples"] = count
        state = {
            "epoch": epoch,
            "count": count,
            "model": model.state_dict(),
            "sampler": sampler.state_dict(),
            "ens_sum": ens_sum,
            "ood_sum": ood_sum,
            "last": last,
            "generator": gen.get_state(),
        }
        ctx.report(dict(metrics), state=_to_cpu(state))

    if count == 0 or last is None:  # a checkpoint of another config (collection is never empty)
        raise ValueError("no sample was collected; check burn_in, thin and num_samples")
    labels = data.test_y.cpu().numpy().astype(np.int64)
    probs = (ens_sum / count).float().cpu().numpy()
    final: dict[str, Any] = {
        "epochs": epochs,
        "samples": count,
        "train_loss": metrics.get("train_loss", float("nan")),
        **classification_metrics(probs, labels, prefix="test_"),
        **classification_metrics(last.cpu().numpy(), labels, prefix="last_test_"),
        **bits_metrics(precision, [tuple(p.shape) for p in params]),
        "num_params": int(sum(p.numel() for p in params)),
        "train_s": time.perf_counter() - started,
    }
    if ood is not None and ood_sum is not None:
        ood_probs = (ood_sum / count).float().cpu().numpy()
        final["ood_auroc"] = ood_auroc(entropy(probs), entropy(ood_probs))
    return WorkloadResult(metrics=final, labels=labels, probs=probs.astype(np.float32))
