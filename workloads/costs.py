"""What a trial costs: memory, bit operations and energy, from its typed spec and its model's
shapes alone (docs/costs.md states every convention and every constant's source).

    costs = trial_costs(TrialSpec.from_config(config), samples=metrics.get("samples"))
    # {"state_bytes": ..., "ensemble_bits": ..., "bops_per_step": ..., ...}

Nothing here measures: the figures follow from the formats (``lowprec.formats``), the
accumulator, the sampler, the batch and the layer shapes, so a trial's figures are the same on
every executor (eager or fused) and device. The module imports no torch and no numpy (the sweep
driver reads :data:`REPORTED` to refuse an objective a workload never reports before torch
loads). A figure the model cannot give for a workload (the mixture's gradient has no matrix
products; svrg/halp keep state the model does not describe) is None, its reason logged once per
process.

Conventions, in brief (docs/costs.md has the argument):

- a layer is a matrix product (linear, conv); BN, ReLU, pooling, softmax and the sampler's
  elementwise update are not counted;
- BOPs of a product = MACs × bits(a) × bits(b), bits the word bits of the operand's format
  (fixed ``wl``, block ``wl`` (the mantissa; the shared exponent is not a multiplier input),
  small float 1 + exp + man, float32 32); forward weights × inputs, backward errors × weights
  (not for the first layer, whose input needs no gradient) and errors × inputs;
- an input that no quantizer touches (the network's input, the pooled features of ResNet's
  head, logistic regression's data) is float32 and counts 32;
- storage bits of a tensor are ``Format.bits_for(shape)``: word bits plus one 8-bit shared
  exponent (E8M0, a power of two) per block for block formats; fixed-point momentum under
  ``momentum_rescale`` adds one float32 scale per tensor.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lowprec.formats import (
    FP32,
    FixedPoint,
    Format,
    ScaledFormat,
    SmallFloat,
)
from workloads.config.checks import parse_hidden

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------
# the energy table: Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC
# 2014, 45 nm, as QKeras' qtools encodes it (qkeras/qtools/settings.py, qenergy/qenergy.py)
# ----------------------------------------------------------------------------------------------

#: integer (fixed-point) add: pJ per bit of the adder's width (32-bit add: 0.1 pJ)
FIXED_ADD_PJ_PER_BIT = 0.003125
#: integer multiply: c2·g² + c1·g pJ, g = sqrt(bits_a · bits_b) (8×8: 0.2 pJ, 32×32: 3.1 pJ)
FIXED_MUL_PJ = (0.002994791667, 0.001041666667)
#: floating-point multiply and add by width (the table has fp16 and fp32 only)
FLOAT_MUL_PJ = {16: 1.1, 32: 3.7}
FLOAT_ADD_PJ = {16: 0.4, 32: 0.9}
#: SRAM read (or write) of one 64-bit word: a·L² + b·L + c pJ, L = log2 of the SRAM's bits
SRAM_WORD_PJ = (0.02455, -0.2656, 0.8661)
SRAM_WORD_BITS = 64
#: the SRAM size qtools' examples assume (``min_sram_size=8*16*1024*1024`` bits, 16 MiB)
MIN_SRAM_BITS = 8 * 16 * 1024 * 1024

#: the cost metrics this module gives, in the order a row lists them
COST_METRICS: tuple[str, ...] = (
    "state_bytes",
    "ensemble_bits",
    "bops_per_step",
    "bops_per_prediction",
    "energy_pj_per_step",
    "energy_pj_per_prediction",
)
#: measured by the trial runner (orchestrator.trial): peak resident memory of the trial's
#: process, and on CUDA the peak of PyTorch's allocated GPU memory
MEMORY_METRICS: tuple[str, ...] = ("peak_rss_mb", "peak_gpu_mb")
#: the chain diagnostics (workloads.diagnostics) of the workloads that run chains
CHAIN_METRICS: tuple[str, ...] = ("ess", "rhat", "ess_per_s")

_RUNNER = ("wall_s", "bits", "bits_per_param", "samples", *MEMORY_METRICS)
_CLASSIFIER = ("test_error", "test_nll", "test_ece", "test_brier", "train_loss")
_CLASSIFIER = (*_CLASSIFIER, *(f"last_{m}" for m in _CLASSIFIER[:4]))
_SYNTHETIC = ("mean", "std", "w2", "ks", *CHAIN_METRICS)

#: the metrics each built-in workload reports (an objective may name only these): read
#: without torch by the spec's validation; a workload registered at run time has no entry
REPORTED: dict[str, frozenset[str]] = {
    "mnist_mlp": frozenset((*_RUNNER, *_CLASSIFIER, "ood_auroc", *COST_METRICS)),
    "cifar_resnet18": frozenset((*_RUNNER, *_CLASSIFIER, *COST_METRICS)),
    "logreg": frozenset((*_RUNNER, *_CLASSIFIER, *COST_METRICS)),
    # the synthetic targets make no predictions
    "gaussian": frozenset((*_RUNNER, *_SYNTHETIC, *COST_METRICS[:3], "energy_pj_per_step")),
    # the mixture's gradient has no matrix product: no BOPs, no energy
    "mixture": frozenset((*_RUNNER, *_SYNTHETIC, *COST_METRICS[:2])),
}


def reported_metrics(workload: str) -> frozenset[str] | None:
    """The metrics ``workload`` reports; None for a workload this table does not know, or a
    name registered to another module than the project's (``workloads.WORKLOADS``)."""
    from workloads import WORKLOADS

    builtin = {"mnist_mlp": "workloads.mlp", "cifar_resnet18": "workloads.resnet"}
    if WORKLOADS.get(workload) != builtin.get(workload, f"workloads.{workload}"):
        return None
    return REPORTED.get(workload)


# ----------------------------------------------------------------------------------------------
# operands
# ----------------------------------------------------------------------------------------------


def _element(fmt: Format) -> Format:
    """What a multiplier sees of a scaled format (MX, NVFP4, int<B,gK>): its element; the
    block's scale is applied once per block (its storage is counted by ``bits_for``)."""
    return fmt.element if isinstance(fmt, ScaledFormat) else fmt


def word_bits(fmt: Format) -> int:
    """Bits of one value as a multiplier sees it (``Format.word_bits``: a scaled format's
    element, whose block scale is applied once per block)."""
    return fmt.word_bits


def is_float(fmt: Format) -> bool:
    """Whether a product with this operand needs a floating-point multiplier (small floats, OCP
    float elements and float32); fixed point, block mantissas and integer elements multiply as
    integers."""
    return isinstance(_element(fmt), SmallFloat | FP32)


def storage_bits(fmt: Format, shape: Sequence[int]) -> float:
    """Bits to store a tensor of ``shape`` in ``fmt``: values and block exponents."""
    return fmt.bits_for(tuple(shape)) * math.prod(shape)


def mac_pj(a: Format, b: Format, fan_in: int) -> float:
    """Energy of one multiply-accumulate of operands in ``a`` and ``b``, summed ``fan_in``
    times (qtools: a floating-point multiplier and adder of the widest float operand's width
    when either operand is a float, rounded up to the table's fp16 or fp32; else an integer
    multiplier of gate width sqrt(bits_a·bits_b) and an integer adder of
    bits_a + bits_b + ceil(log2 fan_in) bits)."""
    if is_float(a) or is_float(b):
        width = max(word_bits(f) for f in (a, b) if is_float(f))
        key = 16 if width <= 16 else 32
        return FLOAT_MUL_PJ[key] + FLOAT_ADD_PJ[key]
    ba, bb = word_bits(a), word_bits(b)
    gate = math.sqrt(ba * bb)
    mul = FIXED_MUL_PJ[0] * gate * gate + FIXED_MUL_PJ[1] * gate
    width = ba + bb + math.ceil(math.log2(max(fan_in, 1)))
    return max(mul, 0.0) + FIXED_ADD_PJ_PER_BIT * width


def sram_pj(bits: float) -> float:
    """Energy to read (or write) ``bits`` from SRAM (qtools' ``memory_read_energy`` in its
    ``sram`` mode: one word energy per 64 bits, the word energy from the SRAM's size, at least
    :data:`MIN_SRAM_BITS`)."""
    if bits <= 0:
        return 0.0
    size = math.log2(max(bits, MIN_SRAM_BITS))
    a, b, c = SRAM_WORD_PJ
    return math.ceil(bits / SRAM_WORD_BITS) * max(a * size * size + b * size + c, 0.0)


# ----------------------------------------------------------------------------------------------
# models: the sampled tensors and the matrix products of one example
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One matrix product, per example.

    macs: multiply-accumulates of the forward product; fan_in: products summed per output;
    weight: the weight operand's format, or None for the trial's W (the sampled weights);
    weight_shapes: the sampled tensors it reads (weight, bias); inputs/outputs: values per
    example; input: the input operand's format, or None for the trial's A (a quantized
    activation); backward: whether errors flow back through it (False: a gradient given in
    closed form); input_grad: whether its input needs a gradient (not the first layer's);
    positions: output positions per example (a conv's H·W), which the weight gradient sums.
    """

    macs: int
    fan_in: int
    weight_shapes: tuple[tuple[int, ...], ...]
    inputs: int
    outputs: int
    input: Format | None = None
    weight: Format | None = None
    backward: bool = True
    input_grad: bool = True
    positions: int = 1


@dataclass(frozen=True)
class Model:
    """What the cost model reads of a workload: ``params``, the shapes of the sampled tensors;
    ``layers``, the matrix products of one example (of one chain for the synthetic targets);
    ``buffers``, float32 values a stored sample needs besides its parameters (BN's running
    statistics); ``batch``, examples (or chains) per step."""

    params: tuple[tuple[int, ...], ...]
    layers: tuple[Layer, ...]
    batch: int
    buffers: int = 0
    predicts: bool = True

    @property
    def num_params(self) -> int:
        return sum(math.prod(s) for s in self.params)


def linear(n_in: int, n_out: int, *, input: Format | None = None, first: bool = False) -> Layer:
    """``nn.Linear(n_in, n_out)`` with a bias."""
    return Layer(
        macs=n_in * n_out,
        fan_in=n_in + 1,  # the bias is one more addend (qtools counts it)
        weight_shapes=((n_out, n_in), (n_out,)),
        inputs=n_in,
        outputs=n_out,
        input=FP32() if first else input,
        input_grad=not first,
    )


def conv(
    c_in: int, c_out: int, k: int, size_in: int, stride: int, *, first: bool = False
) -> tuple[Layer, int]:
    """``nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=False)`` on a square input of
    side ``size_in``; returns the layer and its output side."""
    size_out = (size_in + 2 * (k // 2) - k) // stride + 1
    positions = size_out * size_out
    layer = Layer(
        macs=c_out * positions * c_in * k * k,
        fan_in=c_in * k * k,
        weight_shapes=((c_out, c_in, k, k),),
        inputs=c_in * size_in * size_in,
        outputs=c_out * positions,
        input=FP32() if first else None,
        input_grad=not first,
        positions=positions,
    )
    return layer, size_out


#: training-set sizes of the data sets (a step's batch is at most this)
TRAIN_SIZES = {"mnist5k": 4000, "mnist": 60000, "fashion_mnist": 60000}
TRAIN_SIZES |= {"cifar10": 50000, "cifar100": 50000, "breast_cancer": 398}
#: logistic regression's inputs (features + the ones column) and classes
LOGREG_SHAPES = {"breast_cancer": (31, 2), "mnist5k": (785, 10)}


def _batch(trial: Any) -> int:
    n = TRAIN_SIZES[str(trial["dataset"])]
    if trial.get("train_size"):
        n = min(n, int(trial["train_size"]))
    return min(int(trial.run.batch_size or n), n)


def mlp_model(trial: Any) -> Model:
    """``workloads.mlp.MLP``: 784 → hidden… → 10, Linear layers with biases; the first
    layer's input is the float32 image, every other layer's an activation quantized by A."""
    widths = [784, *parse_hidden(trial["hidden"]), 10]
    layers = tuple(
        linear(a, b, first=i == 0) for i, (a, b) in enumerate(itertools.pairwise(widths))
    )
    params = tuple(s for layer in layers for s in layer.weight_shapes)
    return Model(params=params, layers=layers, batch=_batch(trial))


def resnet18_model(trial: Any) -> Model:
    """``workloads.resnet.ResNet18`` on 32×32 inputs: its convs and linear layer, its BN
    parameters (sampled, no MACs) and running statistics (float32 buffers of a sample)."""
    classes = 100 if trial["dataset"] == "cifar100" else 10
    layers: list[Layer] = []
    bn: list[int] = []  # channels of every BN layer
    stem, size = conv(3, 64, 3, 32, 1, first=True)
    layers.append(stem)
    bn.append(64)
    in_planes = 64
    for i, planes in enumerate((64, 128, 256, 512)):
        for stride in (1 if i == 0 else 2, 1):
            c1, out = conv(in_planes, planes, 3, size, stride)
            c2, _ = conv(planes, planes, 3, out, 1)
            layers += [c1, c2]
            bn += [planes, planes]
            if stride != 1 or in_planes != planes:
                sc, _ = conv(in_planes, planes, 1, size, stride)
                layers.append(sc)
                bn.append(planes)
            in_planes, size = planes, out
    # the 4×4 average pool's output is not quantized again: a float32 input
    layers.append(linear(512, classes, input=FP32()))
    params = tuple(s for layer in layers for s in layer.weight_shapes)
    params += tuple((c,) for c in bn for _ in range(2))  # BN weight and bias
    return Model(params=params, layers=tuple(layers), batch=_batch(trial), buffers=2 * sum(bn))


def logreg_model(trial: Any) -> Model:
    """``workloads.logreg``: W [features + 1, columns] (binary: one column); the data and the
    residual p - onehot(y) are float32 (no A or E); the gradient xᵀr is the backward product
    errors × inputs (x needs no gradient)."""
    features, classes = LOGREG_SHAPES[str(trial["dataset"])]
    columns = 1 if classes == 2 else classes
    layer = Layer(
        macs=features * columns,
        fan_in=features,
        weight_shapes=((features, columns),),
        inputs=features,
        outputs=columns,
        input=FP32(),
        input_grad=False,
    )
    batch = min(int(trial.run.batch_size or 1), TRAIN_SIZES[str(trial["dataset"])])
    return Model(params=((features, columns),), layers=(layer,), batch=batch)


def gaussian_model(trial: Any) -> Model:
    """``workloads.gaussian``: θ [chains, dim]; the gradient Σ⁻¹θ is dim² MACs per chain of the
    float32 Σ⁻¹ by θ̂ (W) for dim > 1, none for dim 1 (∇U = θ); no backward pass."""
    dim, chains = int(trial["dim"]), int(trial["chains"])
    layers: tuple[Layer, ...] = ()
    if dim > 1:
        layers = (
            Layer(
                macs=dim * dim,
                fan_in=dim,
                weight_shapes=((dim, dim),),
                inputs=dim,
                outputs=dim,
                input=trial.precision.weight,
                weight=FP32(),
                backward=False,
            ),
        )
    return Model(params=((chains, dim),), layers=layers, batch=chains, predicts=False)


def mixture_model(trial: Any) -> Model:
    """``workloads.mixture``: θ [chains, dim]; its gradient is elementwise (no matrix product)."""
    return Model(
        params=((int(trial["chains"]), int(trial["dim"])),), layers=(), batch=1, predicts=False
    )


MODELS = {
    "mnist_mlp": mlp_model,
    "cifar_resnet18": resnet18_model,
    "logreg": logreg_model,
    "gaussian": gaussian_model,
    "mixture": mixture_model,
}


# ----------------------------------------------------------------------------------------------
# the figures
# ----------------------------------------------------------------------------------------------


def state_bits(trial: Any, model: Model) -> float:
    """Bits the sampler keeps between steps: the weights as the network computes with them
    (θ̂ in W, with block exponents), the float32 master θ where ``accumulator: full`` and W is
    not fp32 (with fp32 W the master is θ̂), the gradient buffer in G, and SGHMC's momentum (in M
    for low/vc, float32 for full, plus one float32 scale per tensor when fixed-point momentum
    is rescaled)."""
    p = trial.precision
    bits = sum(storage_bits(p.weight, s) for s in model.params)
    if p.accumulator == "full" and not p.weight.is_identity:
        bits += 32.0 * model.num_params
    bits += sum(storage_bits(p.grad, s) for s in model.params)
    if str(trial.sampler.name) == "sghmc":
        if p.accumulator == "full":
            bits += 32.0 * model.num_params
        else:
            bits += sum(storage_bits(p.momentum, s) for s in model.params)
            if trial.sampler.momentum_rescale and isinstance(p.momentum, FixedPoint):
                bits += 32.0 * len(model.params)
    return bits


def sample_bits(trial: Any, model: Model) -> float:
    """Bits of one stored sample: the weights θ̂ the network computes with, in W (the sample a
    trial collects is θ̂ = Q_W(θ) for every accumulator: ``full``'s float32 master is not
    what predicts), plus float32 buffers (BN running statistics)."""
    w = trial.precision.weight
    return sum(storage_bits(w, s) for s in model.params) + 32.0 * model.buffers


def _layer_ops(trial: Any, layer: Layer) -> tuple[Format, Format, Format]:
    p = trial.precision
    w = layer.weight if layer.weight is not None else p.weight
    x = layer.input if layer.input is not None else p.act
    return w, x, p.error


def step_bops(trial: Any, model: Model) -> float:
    """Bit operations of one step (all ``batch`` examples or chains)."""
    total = 0.0
    for layer in model.layers:
        w, x, e = _layer_ops(trial, layer)
        bw, bx, be = word_bits(w), word_bits(x), word_bits(e)
        per = bw * bx
        if layer.backward:
            per += be * bx
            if layer.input_grad:
                per += be * bw
        total += layer.macs * per
    return float(model.batch * total)


def prediction_bops(trial: Any, model: Model, samples: int) -> float:
    """Bit operations of one test example through every sample of the ensemble."""
    total = 0.0
    for layer in model.layers:
        w, x, _ = _layer_ops(trial, layer)
        total += layer.macs * word_bits(w) * word_bits(x)
    return float(samples * total)


def _weight_bits(trial: Any, layer: Layer) -> float:
    fmt = layer.weight if layer.weight is not None else trial.precision.weight
    return sum(storage_bits(fmt, s) for s in layer.weight_shapes)


def step_energy_pj(trial: Any, model: Model) -> float:
    """Energy of one step: every product's MACs at :func:`mac_pj`, each product reading its
    two operands from SRAM once (qtools' inputs and parameters), and the sampler's state read
    and written once."""
    b = model.batch
    total = 2.0 * sram_pj(state_bits(trial, model))
    for layer in model.layers:
        w, x, e = _layer_ops(trial, layer)
        # activations and errors in memory: bits per value with block scales amortised
        x_bits = b * layer.inputs * float(x.bits)
        e_bits = b * layer.outputs * float(e.bits)
        w_bits = _weight_bits(trial, layer)
        total += b * layer.macs * mac_pj(w, x, layer.fan_in) + sram_pj(x_bits) + sram_pj(w_bits)
        if not layer.backward:
            continue
        # errors × inputs: the weight gradient sums over the batch and the output positions
        fan = b * layer.positions
        total += b * layer.macs * mac_pj(e, x, fan) + sram_pj(e_bits) + sram_pj(x_bits)
        if layer.input_grad:  # errors × weights: the input's gradient
            fan = max(layer.macs // max(layer.inputs, 1), 1)
            total += b * layer.macs * mac_pj(e, w, fan) + sram_pj(e_bits) + sram_pj(w_bits)
    return total


def prediction_energy_pj(trial: Any, model: Model, samples: int) -> float:
    """Energy of one test example through every sample: forward products, each reading its
    input and its weights from SRAM (qtools' inference estimate, one example at a time)."""
    total = 0.0
    for layer in model.layers:
        w, x, _ = _layer_ops(trial, layer)
        total += layer.macs * mac_pj(w, x, layer.fan_in)
        total += sram_pj(layer.inputs * float(x.bits)) + sram_pj(_weight_bits(trial, layer))
    return samples * total


_LOGGED: set[tuple[str, str]] = set()


def _null(workload: str, metric: str, reason: str) -> None:
    """Log once per process why ``metric`` is null for ``workload``."""
    if (workload, metric) not in _LOGGED:
        _LOGGED.add((workload, metric))
        log.warning("cost %s is null for workload %s: %s", metric, workload, reason)


def ensemble_size(trial: Any, samples: int | None) -> int | None:
    """Samples the ensemble keeps: the workload's ``samples`` metric (for the synthetic
    targets, draws kept per chain: one sample is then the state of every chain, θ̂ [chains,
    dim], as the model's ``params`` say)."""
    return None if samples is None else int(samples)


def trial_costs(trial: Any, samples: int | None = None) -> dict[str, float | None]:
    """Every cost metric of ``trial`` (a ``workloads.config.trialspec.TrialSpec``) with ``samples``
    the number of samples its ensemble kept (the workload's ``samples`` metric; None when it
    produced none, e.g. diverged: then the ensemble's figures are None). Never raises: a
    figure that cannot be computed is None and its reason logged once."""
    out: dict[str, float | None] = dict.fromkeys(COST_METRICS)
    workload = trial.workload
    builder = MODELS.get(workload)
    if builder is None:
        _null(workload, "all costs", "no cost model for this workload (workloads.costs.MODELS)")
        return out
    if str(trial.sampler.name) in ("svrg", "halp"):
        _null(workload, "all costs", f"sampler {trial.sampler.name}: no cost model yet")
        return out
    try:
        model = builder(trial)
    except (KeyError, ValueError, TypeError) as exc:
        _null(workload, "all costs", f"its model could not be built: {exc}")
        return out
    kept = ensemble_size(trial, samples)
    out["state_bytes"] = state_bits(trial, model) / 8.0
    if kept is not None:
        out["ensemble_bits"] = kept * sample_bits(trial, model)
    if not model.layers and workload == "mixture":
        _null(workload, "bops/energy", "its gradient is elementwise, no matrix products")
    else:
        out["bops_per_step"] = step_bops(trial, model)
        out["energy_pj_per_step"] = step_energy_pj(trial, model)
    if model.predicts and kept is not None:
        out["bops_per_prediction"] = prediction_bops(trial, model, kept)
        out["energy_pj_per_prediction"] = prediction_energy_pj(trial, model, kept)
    return out


def costs_of(config: Mapping[str, Any], samples: int | None = None) -> dict[str, float | None]:
    """:func:`trial_costs` of a flat config (resolved here)."""
    from workloads.config.trialspec import TrialSpec

    return trial_costs(TrialSpec.of(config), samples)
