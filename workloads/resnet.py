"""``cifar_resnet18``: ResNet-18 on CIFAR-10/100, sampled in low precision.

The network is the kuangliu/pytorch-cifar ResNet-18 that the low-precision SGLD and SGHMC papers
used (3×3 stem conv with 64 channels and no max-pool, BasicBlocks [2, 2, 2, 2] with 64, 128,
256, 512 channels, strides 1, 2, 2, 2, 1×1 conv + BN shortcuts where the shape changes, 4×4
average pool, linear classifier; 32×32 inputs), with quantizers Q = Quantizer(A, E) after every
conv/linear layer and after every BN+ReLU (ALGORITHMS.md §3, as the papers' low-precision
ResNet placed them):

    stem:   x → conv → Q → BN → ReLU → Q
    block:  h = conv₁(x) → Q → BN₁ → ReLU → Q → conv₂ → Q → BN₂
            s = x, or conv₁ₓ₁(x) → Q → BN
            out = ReLU(h + s) → Q
    head:   avgpool → linear → Q → logits

Q quantizes activations with A forward and errors with E backward; when both are fp32 an
``nn.Identity`` stands in. The CIFAR training augmentation is the usual random crop 32 with
padding 4 and horizontal flip (:func:`workloads.data.augment_crop_flip`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workloads import data as data_mod
from workloads.base import TrialContext, WorkloadResult
from workloads.config.table import CIFAR_RESNET18 as TABLE
from workloads.config.trialspec import TrialSpec
from workloads.train import precision_and_quantizer, train_classifier
from workloads.train import validate as validate

#: its keys and defaults, the low-precision SGLD/SGHMC papers' CIFAR settings (ALGORITHMS.md
#: §10) (workloads.config.table, where they are read without importing torch)
KEYS, DEFAULTS = TABLE.keys, TABLE.defaults

QuantizerFactory = Callable[[], nn.Module] | None


def _q(quantizer: QuantizerFactory) -> nn.Module:
    return quantizer() if quantizer is not None else nn.Identity()


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual connection (He et al. 2016), quantizers per §3."""

    def __init__(self, in_planes: int, planes: int, stride: int, quantizer: QuantizerFactory):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.q_conv1 = _q(quantizer)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.q_relu1 = _q(quantizer)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.q_conv2 = _q(quantizer)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                _q(quantizer),
                nn.BatchNorm2d(planes),
            )
        self.relu2 = nn.ReLU()
        self.q_relu2 = _q(quantizer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.q_relu1(self.relu1(self.bn1(self.q_conv1(self.conv1(x)))))
        h = self.bn2(self.q_conv2(self.conv2(h)))
        return self.q_relu2(self.relu2(h + self.shortcut(x)))


class ResNet18(nn.Module):
    """The kuangliu CIFAR ResNet-18 (11.2M parameters for 10 classes), quantizers per §3."""

    def __init__(
        self,
        num_classes: int = 10,
        quantizer: QuantizerFactory = None,
        blocks: Sequence[int] = (2, 2, 2, 2),
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.q_conv1 = _q(quantizer)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu1 = nn.ReLU()
        self.q_relu1 = _q(quantizer)
        layers = []
        in_planes = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
            strides = [1 if i == 0 else 2] + [1] * (n - 1)
            stage = []
            for stride in strides:
                stage.append(BasicBlock(in_planes, planes, stride, quantizer))
                in_planes = planes
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.linear = nn.Linear(512, num_classes)
        self.q_linear = _q(quantizer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.q_relu1(self.relu1(self.bn1(self.q_conv1(self.conv1(x)))))
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        h = F.avg_pool2d(h, 4).flatten(1)
        return self.q_linear(self.linear(h))


def run(config: TrialSpec | dict[str, Any], ctx: TrialContext) -> WorkloadResult:
    """Sample ResNet-18's posterior on CIFAR (see the module docstring)."""
    config = TrialSpec.of(config)
    dataset = data_mod.load_dataset(config["dataset"], config["data_dir"], config["download"])
    dataset = data_mod.subset(dataset, config["train_size"], config["test_size"])
    _, quantizer = precision_and_quantizer(config, ctx.generator)
    model = ResNet18(dataset.num_classes, quantizer)
    return train_classifier(config, ctx, model, dataset, augment=True)
