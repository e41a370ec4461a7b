"""cifar_resnet18: the kuangliu layout, quantizers where ALGORITHMS.md §3 puts them, and one
epoch on a tiny subset of CIFAR files written in the official format, for every accumulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lowprec import Quantizer
from tests.workloads.test_data import fake_cifar, write_cifar
from workloads import resnet
from workloads.base import DataUnavailable, TrialContext
from workloads.config.resolve import resolve_config
from workloads.train import precision_and_quantizer

LEAVES = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.ReLU, Quantizer, nn.Identity)


def call_order(model: nn.Module, x: torch.Tensor) -> list[nn.Module]:
    """The leaf modules in the order a forward pass calls them."""
    order: list[nn.Module] = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: order.append(mod))
        for m in model.modules()
        if isinstance(m, LEAVES)
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return order


def _config(**extra) -> dict:
    return resolve_config({"workload": "cifar_resnet18", "burn_in": 0, **extra})


def test_resnet18_is_the_kuangliu_layout():
    model = resnet.ResNet18(10)
    # 11,173,962 parameters: the count of kuangliu/pytorch-cifar's ResNet18() for CIFAR-10
    assert sum(p.numel() for p in model.parameters()) == 11_173_962
    assert sum(p.numel() for p in resnet.ResNet18(100).parameters()) == 11_220_132
    stem = model.conv1
    assert (stem.kernel_size, stem.stride, stem.padding, stem.in_channels) == (
        (3, 3),
        (1, 1),
        (1, 1),
        3,
    )
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert [len(s) for s in stages] == [2, 2, 2, 2]
    assert [s[0].conv1.stride for s in stages] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert [s[0].conv2.out_channels for s in stages] == [64, 128, 256, 512]
    assert [len(s[0].shortcut) for s in stages] == [0, 3, 3, 3]  # 1x1 conv, Q, BN where needed
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_quantizers_sit_after_every_conv_linear_and_relu():
    """§3: Q(A, E) after each conv/linear and after BN+ReLU, with the trial's A and E formats."""
    config = _config(format="block", bits=8, tensors="WGAE")
    precision, factory = precision_and_quantizer(config, torch.Generator())
    model = resnet.ResNet18(10, factory)
    order = call_order(model, torch.randn(2, 3, 32, 32))
    quantizers = [m for m in order if isinstance(m, Quantizer)]
    # stem 2 + 8 blocks x 4 + 3 shortcut convs + the classifier = 38
    assert len(quantizers) == 38 == sum(isinstance(m, Quantizer) for m in model.modules())
    assert len(set(map(id, quantizers))) == 38  # each called once
    for i, m in enumerate(order):
        if isinstance(m, nn.Conv2d | nn.Linear | nn.ReLU):
            assert isinstance(order[i + 1], Quantizer), f"{m} at {i} is not followed by a Quantizer"
        if isinstance(m, nn.BatchNorm2d):  # BN reads a quantized conv output
            assert isinstance(order[i - 1], Quantizer)
            assert isinstance(order[i - 2], nn.Conv2d)
    assert isinstance(order[-1], Quantizer) and isinstance(order[-2], nn.Linear)
    for q in quantizers:
        assert q.forward_format == precision.act == precision.error == q.backward_format
        assert str(q.forward_format) == "block<8>"
    assert not any(isinstance(m, nn.Identity) for m in order)


def test_no_quantizer_when_activations_and_errors_are_fp32():
    config = _config(format="fixed", bits=8, tensors="WG")  # the papers' fixed-point runs
    precision, factory = precision_and_quantizer(config, torch.Generator())
    assert factory is None and precision.act.is_identity and precision.error.is_identity
    model = resnet.ResNet18(10, factory)
    assert not any(isinstance(m, Quantizer) for m in model.modules())
    # only A quantized: quantizers present, identity on the way back
    _, factory = precision_and_quantizer(_config(format="fixed", bits=8, tensors="A"), None)
    q = factory()
    assert str(q.forward_format) == "fixed<8,6>" and q.backward_format.is_identity


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory) -> Path:
    """Official-format CIFAR-10 batches: 5 train batches of 4 images, a test batch of 16."""
    root = tmp_path_factory.mktemp("cifar")
    batches = fake_cifar("cifar10", per_batch=16, seed=5)
    write_cifar(root, "cifar10", batches, as_tar=True)
    return root


@pytest.mark.parametrize(
    "extra",
    [
        {"accumulator": "full", "format": "block", "bits": 8, "tensors": "WGAE"},
        {"accumulator": "low", "format": "block", "bits": 8, "tensors": "WGAE"},
        {"accumulator": "vc", "format": "block", "bits": 8, "tensors": "WGAE"},
        {"accumulator": "vc", "format": "fixed", "bits": 8, "frac_bits": 8, "sampler": "sghmc"},
    ],
    ids=["block8-full", "block8-low", "block8-vc", "fixed8-vc-sghmc"],
)
def test_one_epoch_on_a_tiny_subset(cifar_dir: Path, extra: dict):
    config = _config(
        data_dir=str(cifar_dir),
        train_size=16,
        test_size=16,
        batch_size=8,
        epochs=1,
        lr=0.05,
        temperature=1e-3,
        prior_std=1.0,
        **extra,
    )
    reports = []
    ctx = TrialContext(
        generator=torch.Generator().manual_seed(0),
        report=lambda metrics, state=None: reports.append((metrics, state)),
    )
    result = resnet.run(config, ctx)
    assert result.labels.shape == (16,) and result.labels.dtype == np.int64
    assert result.probs.shape == (16, 10) and result.probs.dtype == np.float32
    np.testing.assert_allclose(result.probs.sum(1), 1.0, rtol=1e-5)
    m = result.metrics
    assert m["samples"] == 1 and m["epochs"] == 1
    assert all(np.isfinite(m[k]) for k in ("test_error", "test_nll", "test_ece", "test_brier"))
    assert m["bits"] == 8
    if config["accumulator"] == "full":
        assert m["bits_per_param"] == 32.0  # the float32 master copy is what is stored
    elif config["format"] == "block":
        # per-output-channel exponents amortised: a little above 8 bits
        assert 8.0 < m["bits_per_param"] < 8.1
    else:
        assert m["bits_per_param"] == 8.0
    assert len(reports) == 1 and reports[0][0]["epoch"] == 1
    state = reports[0][1]
    assert state["epoch"] == 1 and state["count"] == 1 and "generator" in state


def test_missing_cifar_is_data_unavailable(tmp_path: Path):
    config = _config(data_dir=str(tmp_path), epochs=1)
    with pytest.raises(DataUnavailable, match="cifar-10-batches-py"):
        resnet.run(config, TrialContext(generator=torch.Generator()))


def test_resnet_keys_are_validated():
    with pytest.raises(ValueError, match="key 'dataset'"):
        _config(dataset="mnist")
    assert _config()["dataset"] == "cifar10" and _config()["download"] is False


@pytest.mark.cuda
def test_two_epochs_on_cuda_then_resume(cifar_dir: Path):
    """The CUDA path: data on the GPU, the generator there, augmentation and quantizers on the
    device; a checkpoint taken on the GPU restores (cuDNN autotuning makes the floats differ
    run to run, so this checks the path, not bit equality)."""
    config = _config(
        data_dir=str(cifar_dir), train_size=64, test_size=16, batch_size=16, epochs=2,
        lr=0.05, temperature=1e-3, prior_std=1.0, device="cuda",
        format="block", bits=8, tensors="WGAE", accumulator="vc",
    )  # fmt: skip
    cuda = torch.device("cuda")
    reports = []
    ctx = TrialContext(
        generator=torch.Generator(device=cuda).manual_seed(0),
        device=cuda,
        report=lambda metrics, state=None: reports.append((metrics, state)),
    )
    result = resnet.run(config, ctx)
    assert result.probs.shape == (16, 10) and np.isfinite(result.probs).all()
    assert [m["samples"] for m, _ in reports] == [1, 2]
    state = reports[0][1]
    assert all(t.device.type == "cpu" for t in state["sampler"]["theta"])
    later = []
    ctx = TrialContext(
        generator=torch.Generator(device=cuda).manual_seed(9),
        device=cuda,
        restored=state,
        report=lambda metrics, state=None: later.append(metrics),
    )
    resumed = resnet.run(config, ctx)
    assert [m["epoch"] for m in later] == [2] and resumed.metrics["samples"] == 2
