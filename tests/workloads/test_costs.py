"""The cost model (workloads.costs, docs/costs.md): figures that follow from arithmetic stated
here, for the MNIST MLP (784-100-10) and ResNet-18 from their layer shapes, checked against the
torch models' own shapes; independence from executor and device; null figures without a crash;
and an objective the workload does not report refused by ``sweep --dry-run``."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from lowprec.formats import FP32, BlockFloat, FixedPoint, SmallFloat, parse_format
from workloads import costs
from workloads.config.trialspec import TrialSpec
from workloads.costs import costs_of, mac_pj

REPO = Path(__file__).resolve().parents[2]
MLP_PARAMS = 784 * 100 + 100 + 100 * 10 + 10  # 79,510
#: forward MACs of one MNIST image: 784·100 (first layer) + 100·10 (second)
MLP_MACS = (78_400, 1_000)


def mlp(**extra):
    return TrialSpec.from_config({"workload": "mnist_mlp", **extra})


def test_the_mlp_has_79510_parameters_the_shapes_of_the_torch_model():
    from workloads.mlp import MLP

    model = costs.mlp_model(mlp())
    assert MLP_PARAMS == 79_510 == model.num_params
    assert sorted(model.params) == sorted(tuple(p.shape) for p in MLP((100,)).parameters())
    assert tuple(layer.macs for layer in model.layers) == MLP_MACS


@pytest.mark.parametrize("samples", [1, 5])
def test_float32_ensemble_bits_is_samples_times_79510_times_32(samples):
    assert costs_of({"workload": "mnist_mlp"}, samples)["ensemble_bits"] == samples * 79_510 * 32


def test_low_precision_ensemble_bits_counts_the_stored_theta_hat_and_block_exponents():
    """The stored sample is θ̂ = Q_W(θ) for every accumulator (full's float32 master is not
    what predicts): 8 bits a weight for fixed<8,*>; block<8,32> adds one 8-bit shared exponent
    per run of 32 along the last dim: W1 [100, 784] has 100·⌈784/32⌉ = 2,500 blocks, b1 [100]
    4, W2 [10, 100] 10·4 = 40, b2 [10] 1: 2,545 exponents."""
    for acc in ("full", "low"):
        fixed = costs_of({"workload": "mnist_mlp", "weight_format": "fixed<8,4>",
                          "accumulator": acc}, 3)  # fmt: skip
        assert fixed["ensemble_bits"] == 3 * 79_510 * 8
    block = costs_of({"workload": "mnist_mlp", "weight_format": "block<8,32>"}, 2)
    assert block["ensemble_bits"] == 2 * (79_510 * 8 + 2_545 * 8)


def test_scaled_formats_count_their_scales_as_lowprec_formats_define_them():
    """OCP MX: one E8M0 (8-bit) scale per 32 values, as block<8,32> (2,545 scales); NVFP4 with
    a tensor scale: 4-bit elements, one E4M3 (8-bit) scale per 16 values (W1 100·49, b1 7,
    W2 10·7, b2 1: 4,978) and one float32 scale per tensor (4 tensors). A multiplier sees the
    element: 8 bits for mx<fp8_e4m3>, a float element; 4 bits for nvfp4."""
    mx = costs_of({"workload": "mnist_mlp", "weight_format": "mx<fp8_e4m3>"}, 1)
    assert mx["ensemble_bits"] == 79_510 * 8 + 2_545 * 8
    nv = costs_of({"workload": "mnist_mlp", "weight_format": "nvfp4<t>"}, 1)
    assert nv["ensemble_bits"] == 79_510 * 4 + 4_978 * 8 + 4 * 32
    assert costs.word_bits(parse_format("nvfp4")) == 4
    assert costs.is_float(parse_format("mx<fp8_e4m3>")) and not costs.is_float(
        parse_format("mx<int8>")
    )


def test_state_bytes_weights_master_momentum_gradient():
    """SGLD float32: θ (32) + gradient (32) bits a parameter. fixed<8,4> W and G with a full
    accumulator: master 32 + θ̂ 8 + gradient 8. SGHMC low, fixed<8,4> W, G and M with momentum
    rescaling: θ 8 + gradient 8 + momentum 8 bits a parameter and one float32 scale for each
    of the 4 tensors. SGHMC full keeps its momentum in float32."""
    p = MLP_PARAMS
    assert costs_of({"workload": "mnist_mlp"})["state_bytes"] == p * 64 / 8
    fx = {"workload": "mnist_mlp", "format": "fixed", "bits": 8, "frac_bits": 4}
    assert costs_of(fx)["state_bytes"] == p * (32 + 8 + 8) / 8
    sghmc = {**fx, "sampler": "sghmc", "accumulator": "low", "momentum_rescale": True}
    assert costs_of(sghmc)["state_bytes"] == (p * 24 + 4 * 32) / 8
    assert costs_of({**fx, "sampler": "sghmc"})["state_bytes"] == p * (32 + 8 + 8 + 32) / 8


def test_bops_per_step_of_the_mlp_by_hand():
    """BOPs = batch · Σ MACs · bits·bits over forward (W × input), backward errors × inputs
    and errors × weights (not the first layer: the image needs no gradient). Float32: every
    operand 32 bits; batch 64."""
    fp32 = costs_of({"workload": "mnist_mlp"})["bops_per_step"]
    assert fp32 == 64 * (78_400 * 2 + 1_000 * 3) * 32 * 32 == 10_472_652_800


def test_8bit_w_g_a_e_over_float32_is_1_16_for_every_product_of_quantized_operands():
    """8-bit W, G, A, E: every product whose operands are all quantized costs 8·8/(32·32) =
    1/16 of float32's; the first layer's input is the float32 image (no quantizer touches it),
    so its forward (W × x) and weight-gradient (E × x) products cost 8·32/(32·32) = 1/4. The
    whole step: (78,400·(8·32 + 8·32) + 1,000·3·8·8) / ((78,400·2 + 1,000·3)·32·32)."""
    low = {"workload": "mnist_mlp", "format": "fixed", "bits": 8, "tensors": "WGAE"}
    t_low, t_fp = mlp(format="fixed", bits=8, tensors="WGAE"), mlp()
    hidden = costs.Model(params=(), layers=costs.mlp_model(t_low).layers[1:], batch=64)
    assert costs.step_bops(t_low, hidden) / costs.step_bops(t_fp, hidden) == 1 / 16
    first = costs.Model(params=(), layers=costs.mlp_model(t_low).layers[:1], batch=64)
    assert costs.step_bops(t_low, first) / costs.step_bops(t_fp, first) == 1 / 4
    ratio = costs_of(low)["bops_per_step"] / costs_of({"workload": "mnist_mlp"})["bops_per_step"]
    by_hand = (78_400 * (8 * 32 + 8 * 32) + 1_000 * 3 * 64) / ((78_400 * 2 + 1_000 * 3) * 1024)
    assert ratio == pytest.approx(by_hand, rel=1e-12)
    assert ratio == pytest.approx(0.24648, abs=1e-5)


def test_bops_per_prediction_is_the_whole_ensemble_on_one_example():
    assert costs_of({"workload": "mnist_mlp"}, 5)["bops_per_prediction"] == 5 * 79_400 * 1024
    low = costs_of({"workload": "mnist_mlp", "format": "fixed", "bits": 8, "tensors": "WGAE"}, 5)
    assert low["bops_per_prediction"] == 5 * (78_400 * 8 * 32 + 1_000 * 8 * 8)


def _resnet_macs() -> int:
    """ResNet-18 on 32×32 from its layer shapes: the stem 3→64 at 32²; layer1 four 64→64 3×3
    convs at 32²; layers 2-4 (planes p at side s = 16, 8, 4, from p/2 channels): a strided 3×3
    p/2→p, three 3×3 p→p and a 1×1 p/2→p shortcut, all at s²; the 512→10 linear."""
    total = 64 * 32**2 * 3 * 9 + 4 * 64 * 32**2 * 64 * 9
    for p, s in ((128, 16), (256, 8), (512, 4)):
        total += p * s * s * (p // 2) * 9 + 3 * p * s * s * p * 9 + p * s * s * (p // 2)
    return total + 512 * 10


def test_resnet18_figures_follow_from_its_layer_shapes_and_match_the_torch_model():
    from workloads.resnet import ResNet18

    trial = TrialSpec.from_config({"workload": "cifar_resnet18"})
    model = costs.resnet18_model(trial)
    net = ResNet18(10)
    assert model.num_params == 11_173_962 == sum(p.numel() for p in net.parameters())
    assert sorted(model.params) == sorted(tuple(p.shape) for p in net.parameters())
    macs: list[int] = []  # counted by the torch model's own forward pass
    hooks = [
        m.register_forward_hook(
            lambda mod, inp, out: macs.append(
                out.numel() * mod.weight[0].numel() if isinstance(mod, nn.Conv2d)
                else mod.in_features * mod.out_features
            )
        )
        for m in net.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]  # fmt: skip
    with torch.no_grad():
        net(torch.zeros(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert sum(macs) == sum(layer.macs for layer in model.layers) == _resnet_macs()
    assert _resnet_macs() == 555_422_720
    bn = sum(m.num_features for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert model.buffers == 2 * bn == 9_600  # running mean and variance: a sample's buffers
    c = costs_of({"workload": "cifar_resnet18"}, 50)
    assert c["ensemble_bits"] == 50 * (11_173_962 + 9_600) * 32
    assert c["bops_per_prediction"] == 50 * 555_422_720 * 1024
    # backward: errors × inputs for every layer, errors × weights for all but the stem
    stem = 64 * 32**2 * 3 * 9
    assert c["bops_per_step"] == 128 * (3 * 555_422_720 - stem) * 1024


@pytest.mark.parametrize(
    "extra",
    [{}, {"format": "block", "bits": 6, "tensors": "WGAE", "accumulator": "vc"},
     {"sampler": "sghmc", "format": "fixed", "bits": 8, "accumulator": "low"}],
)  # fmt: skip
def test_figures_do_not_depend_on_executor_or_device(extra):
    """Computed from the spec, never from timing: the same for the eager and fused executors
    and for cpu and cuda (the config's device is never read by the model)."""
    base = {"workload": "mnist_mlp", **extra}
    runs = [
        costs_of({**base, "kernels": k, "device": d}, 5)
        for k in ("eager", "fused", "auto")
        for d in ("cpu", "cuda", "auto")
    ]
    assert all(r == runs[0] for r in runs)
    assert all(v is not None for v in runs[0].values())


def test_energy_per_mac_from_the_horowitz_table_as_qtools_encodes_it():
    """Integer 8×8: multiplier 0.002995·64 + 0.001042·8 = 0.2 pJ, adder of 8 + 8 +
    ⌈log2 785⌉ = 26 bits at 0.003125 pJ/bit; float32 3.7 + 0.9 pJ; float16 1.1 + 0.4 pJ
    (small floats up to 16 bits round up to it); a float operand makes the MAC a float one."""
    f8 = FixedPoint(8, 4)
    assert mac_pj(f8, f8, 785) == pytest.approx(0.2 + 26 * 0.003125, rel=1e-9)
    assert mac_pj(FP32(), FP32(), 785) == pytest.approx(4.6)
    assert mac_pj(SmallFloat(5, 2), f8, 10) == pytest.approx(1.5)
    assert mac_pj(f8, FP32(), 10) == pytest.approx(4.6)
    assert mac_pj(BlockFloat(8, 32), f8, 785) == mac_pj(f8, f8, 785)
    # SRAM: 64-bit words at the qtools default size 2^27 bits: 0.02455·27² - 0.2656·27 + 0.8661
    assert costs.sram_pj(640) == pytest.approx(10 * (0.02455 * 729 - 0.2656 * 27 + 0.8661))


def test_energy_shrinks_with_the_formats_and_grows_with_the_ensemble():
    fp = costs_of({"workload": "mnist_mlp"}, 5)
    low = costs_of({"workload": "mnist_mlp", "format": "fixed", "bits": 8, "tensors": "WGAE"}, 5)
    assert 0 < low["energy_pj_per_step"] < fp["energy_pj_per_step"]
    assert 0 < low["energy_pj_per_prediction"] < fp["energy_pj_per_prediction"]
    one = costs_of({"workload": "mnist_mlp"}, 1)
    assert fp["energy_pj_per_prediction"] == pytest.approx(5 * one["energy_pj_per_prediction"])


def test_synthetic_targets_costs_and_nulls_are_logged_once(caplog):
    """gaussian d = 4, 8 chains: θ̂ [8, 4] in W; its gradient Σ⁻¹θ is 16 MACs a chain (W × the
    float32 Σ⁻¹), no backward; no predictions. The mixture has no matrix product: its BOPs and
    energy are null, logged once per process however many trials ask."""
    g = costs_of({"workload": "gaussian", "dim": 4, "chains": 8, "weight_format": "fixed<8,4>",
                  "accumulator": "low"}, 100)  # fmt: skip
    assert g["ensemble_bits"] == 100 * 8 * 4 * 8
    assert g["state_bytes"] == 32 * (8 + 32) / 8  # θ in W, gradient float32
    assert g["bops_per_step"] == 8 * 16 * 8 * 32
    assert g["bops_per_prediction"] is None and g["energy_pj_per_prediction"] is None
    costs._LOGGED.clear()
    with caplog.at_level(logging.WARNING, logger="workloads.costs"):
        for _ in range(3):
            m = costs_of({"workload": "mixture", "chains": 2}, 10)
    assert m["bops_per_step"] is None and m["energy_pj_per_step"] is None
    assert m["ensemble_bits"] == 10 * 2 * 32
    notes = [r for r in caplog.records if "mixture" in r.getMessage()]
    assert len(notes) == 1 and "elementwise" in notes[0].getMessage()


def test_a_cost_that_cannot_be_computed_is_null_never_a_crash():
    halp = {"workload": "logreg", "sampler": "halp", "format": "fixed", "bits": 8,
            "accumulator": "low", "prior_std": 1.0}  # fmt: skip
    assert set(costs_of(halp, 1).values()) == {None}
    assert costs_of({"workload": "mnist_mlp"}, None)["ensemble_bits"] is None  # diverged

    class Odd:  # a workload without a cost model
        workload = "somewhere_else"

    assert set(costs.trial_costs(Odd(), 3).values()) == {None}


def test_logreg_shapes_are_the_data_sets():
    """The model's inputs (features + the ones column) and training sizes are the loaded data's."""
    from workloads.logreg import load_data

    for name, (features, classes) in costs.LOGREG_SHAPES.items():
        data = load_data(name, torch.device("cpu"))
        assert tuple(data["x_train"].shape) == (costs.TRAIN_SIZES[name], features)
        assert int(data["y_train"].max()) + 1 == classes


def test_logreg_costs():
    """breast_cancer: W [31, 1] (30 features + bias, binary); the data and the residual are
    float32; forward x·W, backward xᵀr (errors × inputs) only."""
    t = TrialSpec.from_config({"workload": "logreg"})
    batch = min(int(t.run.batch_size), 398)
    c = costs_of({"workload": "logreg"}, 10)
    assert c["bops_per_step"] == batch * 31 * (32 * 32 + 32 * 32)
    assert c["ensemble_bits"] == 10 * 31 * 32


def test_run_trial_records_the_cost_panel(tmp_path):
    """Through orchestrator.trial.run_trial: the costs, the chain diagnostics with ess_per_s,
    and the measured peak resident memory land in the metrics (the trials.parquet row and the
    MLflow metrics are made of them)."""
    from orchestrator.trial import run_trial

    r = run_trial({"workload": "gaussian", "chains": 4, "steps": 400, "burn_in": 100, "thin": 2})
    m = r.metrics
    for key in ("state_bytes", "ensemble_bits", "bops_per_step", "energy_pj_per_step"):
        assert isinstance(m[key], float) and m[key] >= 0, key
    assert m["ensemble_bits"] == m["samples"] * 4 * 32
    assert m["ess_per_s"] == pytest.approx(m["ess"] / m["wall_s"])
    assert m["rhat"] > 0 and m["peak_rss_mb"] > 50
    assert "peak_gpu_mb" not in m  # cpu


def test_run_trial_figures_are_the_same_on_the_eager_and_the_fused_executor():
    """The same trial run by each executor records the same cost figures (and, here, the same
    chains: the fused step reproduces the eager one)."""
    from orchestrator.trial import run_trial

    base = {"workload": "gaussian", "chains": 2, "steps": 300, "burn_in": 100, "dim": 3,
            "weight_format": "fixed<8,4>", "accumulator": "low"}  # fmt: skip
    eager = run_trial({**base, "kernels": "eager"}).metrics
    other = run_trial({**base, "kernels": "auto"}).metrics
    for key in costs.COST_METRICS:
        assert eager[key] == other[key], key
    assert eager["state_bytes"] == 6 * (8 + 32) / 8
    assert eager["ensemble_bits"] == eager["samples"] * 6 * 8


@pytest.mark.cuda
def test_run_trial_on_cuda_records_peak_gpu_memory_and_the_cpu_figures():
    """On CUDA the row gains peak_gpu_mb (PyTorch's peak allocation during the trial: the
    [chains, dim] chains and the kept-sample buffer at least); the computed figures are the
    CPU's."""
    from orchestrator.trial import run_trial

    base = {"workload": "gaussian", "chains": 64, "dim": 8, "steps": 300, "burn_in": 100}
    gpu = run_trial({**base, "device": "cuda"}).metrics
    cpu = run_trial({**base, "device": "cpu"}).metrics
    assert gpu["peak_gpu_mb"] > 0
    for key in costs.COST_METRICS:
        assert gpu[key] == cpu[key], key


def _dry_run(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.sweep", str(spec), "--dry-run"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_dry_run_refuses_an_objective_the_workload_does_not_report(tmp_path):
    text = "name: t\nworkload: mixture\nobjectives: {w2: min, bops_per_step: min}\n"
    out = _dry_run(tmp_path, text + "fixed: {steps: 100}\n")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "objectives.bops_per_step" in lines[0] and "mixture" in lines[0]
    listed = lines[0].split("it reports: ")[1].split(", ")
    assert {"w2", "ess", "rhat", "state_bytes", "ensemble_bits"} <= set(listed)
    assert "bops_per_step" not in listed


def test_dry_run_accepts_a_cost_objective_and_the_shipped_ensemble_spec(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator.sweep", "search_spaces/ensemble.yaml", "--dry-run"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "15 trials" in out.stdout and "ensemble_bits: min" in out.stdout


def test_every_reported_metric_list_names_only_what_its_workload_can_report():
    """The torch-free lists cover the allowed objectives the runner and the cost model give."""
    from orchestrator.spec import ALLOWED_METRICS

    for name, reported in costs.REPORTED.items():
        assert {"state_bytes", "ensemble_bits", "peak_rss_mb", "wall_s"} <= reported, name
        allowed = reported & ALLOWED_METRICS
        assert allowed, name
    assert "bops_per_prediction" not in costs.REPORTED["gaussian"]
    assert math.isclose(costs.FIXED_ADD_PJ_PER_BIT * 32, 0.1)
