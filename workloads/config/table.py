"""Each built-in workload's keys, defaults and trial shape, readable without importing torch.

``workloads.config.resolve`` validates a config against ``COMMON_KEYS`` plus the table of its
workload (:class:`WorkloadKeys`). The tables of the project's workloads live here, beside nothing
heavy, so that a bad key or value is refused before the workload module (torch, the data loaders) is
imported; each workload module takes its ``KEYS`` and ``DEFAULTS`` from here. A workload registered
at run time (``workloads.WORKLOADS[name] = "pkg.module"``) has no entry: its table is read from its
module's attributes (:meth:`WorkloadKeys.of_module`):

    KEYS: dict[str, Key]             # its own keys beyond workloads.config.COMMON_KEYS
    DEFAULTS: dict[str, Any]         # its defaults in place of the common ones
    SAMPLERS: tuple[str, ...]        # samplers it runs (default DEEP_SAMPLERS)
    OPTIMISERS: tuple[str, ...]      # samplers whose ensemble is their final iterate (no samples)
    RUN_LENGTH: "steps" | "epochs"   # how the run length is counted (default "steps")
    TENSORS: str                     # tensor kinds besides momentum: "WG", or "WGAE" for networks
    MINIBATCHES: bool                # whether it draws minibatches of ``batch_size``
    HAS_PRIOR: bool                  # whether ``prior_std`` adds a prior (False: U is the target)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

from lowprec.precision import VARIANCE_REDUCED
from workloads.config.keyspec import Key

#: the samplers a workload runs unless it says otherwise
DEEP_SAMPLERS: tuple[str, ...] = ("sgld", "sghmc", "sgd")
#: the data sets of the deep workloads (``workloads.data`` loads them)
MNIST_DATASETS: tuple[str, ...] = ("mnist5k", "mnist", "fashion_mnist")
CIFAR_DATASETS: tuple[str, ...] = ("cifar10", "cifar100")


@dataclass(frozen=True)
class WorkloadKeys:
    """What ``workloads.config.resolve`` reads of one workload (the module attributes of the same
    names, upper-case, in the module docstring)."""

    keys: Mapping[str, Key]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    samplers: tuple[str, ...] = DEEP_SAMPLERS
    optimisers: tuple[str, ...] = ()
    run_length: str = "steps"
    tensors: str = "WG"
    minibatches: bool = True
    has_prior: bool = True

    @classmethod
    def of_module(cls, module: ModuleType) -> WorkloadKeys:
        """The table a workload module states in its attributes (missing ones: the defaults)."""
        base = cls(keys={})
        return cls(
            **{
                name: getattr(module, name.upper(), getattr(base, name))
                for name in cls.__dataclass_fields__
            }
        )


# ----------------------------------------------------------------------------------------------
# the synthetic targets (workloads.synthetic): gaussian, mixture
# ----------------------------------------------------------------------------------------------

#: keys shared by the synthetic workloads (each adds its own)
CHAIN_KEYS: dict[str, Key] = {
    "chains": Key(
        int, 1, "independent chains, run as one batched [chains, dim] tensor", min=1, max=2**20
    ),
    "init": Key(float, 0.0, "initial value of every coordinate of every chain", min=-1e6, max=1e6),
    "report_every": Key(
        int, 5000, "steps between ctx.report calls (and checkpoints)", min=1, max=10**9
    ),
}
#: what the synthetic targets' trials have: a step count, weights and gradients only, no
#: minibatches, and U is the whole target (no prior)
SYNTHETIC = WorkloadKeys(
    keys=CHAIN_KEYS, run_length="steps", tensors="WG", minibatches=False, has_prior=False
)


def _multivariate(c: Any) -> str | None:
    """Has an effect with: dim > 1."""
    return None if c["dim"] > 1 else "dim is 1: the target is N(0, 1)"


GAUSSIAN = replace(
    SYNTHETIC,
    keys={
        **CHAIN_KEYS,
        "dim": Key(int, 1, "dimension d of the Gaussian (1: N(0, 1))", min=1, max=4096),
        "grad_noise": Key(
            float, 0.1, "std of the Gaussian noise added to the gradient", min=0.0, max=1e6
        ),
        "condition": Key(
            float,
            10.0,
            "d > 1: ratio of the largest to the smallest variance",
            min=1.0,
            max=1e12,
            applies=_multivariate,
        ),
        "rotate": Key(
            bool,
            True,
            "d > 1: rotate the covariance by a fixed random rotation",
            applies=_multivariate,
        ),
    },
    # the LP-SGLD paper's Gaussian (ALGORITHMS.md §10): lr 1e-3, T = 1
    defaults={"lr": 1e-3, "temperature": 1.0, "steps": 10_000, "burn_in": 0},
)

MIXTURE = replace(
    SYNTHETIC,
    keys={
        **CHAIN_KEYS,
        "dim": Key(int, 1, "independent copies of the 1-D mixture (coordinates)", min=1, max=4096),
        "grad_noise": Key(
            float, 0.0, "std of the Gaussian noise added to the gradient", min=0.0, max=1e6
        ),
    },
    # one chain long enough to cross between the modes many times (relaxation ~1000 steps at
    # lr 0.05, tests/workloads/test_mixture.py)
    defaults={"lr": 0.05, "temperature": 1.0, "steps": 50_000, "burn_in": 4000},
)


# ----------------------------------------------------------------------------------------------
# logistic regression and the HALP/SVRG baselines (workloads.logreg)
# ----------------------------------------------------------------------------------------------


def _variance_reduced(c: Any) -> str | None:
    """Has an effect with: sampler svrg or halp."""
    if c["sampler"] in VARIANCE_REDUCED:
        return None
    return f"sampler {c['sampler']} has no epochs of inner steps (only svrg, halp)"


def _halp(c: Any) -> str | None:
    """Has an effect with: sampler halp."""
    return None if c["sampler"] == "halp" else f"sampler {c['sampler']} is not halp"


LOGREG_OPTIMISERS: tuple[str, ...] = ("sgd", *VARIANCE_REDUCED)
LOGREG = WorkloadKeys(
    keys={
        "dataset": Key(str, "breast_cancer", "data set", choices=("breast_cancer", "mnist5k")),
        "inner_steps": Key(
            int,
            None,
            "svrg/halp: inner steps per epoch (default: one pass, ceil(N/batch_size))",
            optional=True,
            min=1,
            max=10**9,
            applies=_variance_reduced,
        ),
        "halp_mu": Key(
            float,
            None,
            "halp: strong-convexity constant μ of the bit-centering scale (default: λ = 1/(Nσ²))",
            optional=True,
            min=0.0,
            max=1e6,
            applies=_halp,
        ),
        "init_std": Key(
            float, 0.0, "std of the Gaussian initial weights (0: start at zero)", min=0.0, max=1e3
        ),
        "report_every": Key(
            int, 1000, "steps between ctx.report calls (and checkpoints)", min=1, max=10**9
        ),
    },
    samplers=("sgld", "sghmc", *LOGREG_OPTIMISERS),
    optimisers=LOGREG_OPTIMISERS,
    run_length="steps",
    tensors="WG",
    minibatches=True,
    has_prior=True,
)


# ----------------------------------------------------------------------------------------------
# the deep workloads (workloads.train): mnist_mlp, cifar_resnet18
# ----------------------------------------------------------------------------------------------


def _reads_files(c: Any) -> str | None:
    """Has an effect with: a dataset read from files (not mnist5k), or ood."""
    if c["dataset"] != "mnist5k" or c.get("ood"):
        return None
    return "dataset mnist5k is bundled (no files to read)"


def _cyclical(c: Any) -> str | None:
    """Has an effect with: schedule cyclical."""
    return None if c["schedule"] == "cyclical" else f"schedule is {c['schedule']}, not cyclical"


#: keys of the deep workloads beyond ``workloads.config.COMMON_KEYS`` (each adds ``dataset``)
DATA_KEYS: dict[str, Key] = {
    "data_dir": Key(
        str,
        None,
        "directory holding the data files (see docs/deep.md)",
        optional=True,
        applies=_reads_files,
    ),
    "download": Key(
        bool, False, "let torchvision download missing data into data_dir", applies=_reads_files
    ),
    "train_size": Key(
        int,
        None,
        "use only this many training images (a fixed subset; unset = all)",
        optional=True,
        min=1,
        max=10**8,
    ),
    "test_size": Key(
        int,
        None,
        "use only this many test images (a fixed subset; unset = all)",
        optional=True,
        min=1,
        max=10**8,
    ),
    "samples_per_cycle": Key(
        int,
        3,
        "cyclical schedule: samples at the last epoch ends of each cycle's sampling stage",
        min=1,
        max=10_000,
        applies=_cyclical,
    ),
}
#: what the deep workloads' trials have: epochs, activations and errors, minibatches, a prior
DEEP = WorkloadKeys(
    keys=DATA_KEYS, run_length="epochs", tensors="WGAE", minibatches=True, has_prior=True
)

MNIST_MLP = replace(
    DEEP,
    keys={
        "dataset": Key(
            str,
            "mnist5k",
            "mnist5k (bundled 5,000-image MNIST sample, no download), mnist or fashion_mnist "
            "(from data_dir)",
            choices=MNIST_DATASETS,
        ),
        "hidden": Key(str, "100", "hidden layer widths, comma separated (e.g. '100' or '512,256')"),
        "ood": Key(
            bool,
            False,
            "also report ood_auroc: MNIST vs Fashion-MNIST by predictive entropy (needs both)",
        ),
        **DATA_KEYS,
    },
    # the README's float32 MNIST settings (6.7% test error on mnist5k)
    defaults={
        "lr": 0.1,
        "temperature": 0.01,
        "prior_std": 1.0,
        "batch_size": 64,
        "epochs": 10,
        "burn_in": 5,
        "momentum_rescale": True,
    },
)

CIFAR_RESNET18 = replace(
    DEEP,
    keys={
        "dataset": Key(
            str, "cifar10", "cifar10 or cifar100 (from data_dir)", choices=CIFAR_DATASETS
        ),
        **DATA_KEYS,
    },
    # the low-precision SGLD/SGHMC papers' CIFAR settings (ALGORITHMS.md §10): batch 128,
    # lr 0.5, T = 0.001, the decay schedule, weight decay 5e-4 as the prior
    # (σ = 1/√(N·5e-4) = 0.2 with N = 50,000), 245 epochs, the last 50 collected
    defaults={
        "lr": 0.5,
        "temperature": 0.001,
        "schedule": "decay",
        "prior_std": 0.2,
        "batch_size": 128,
        "epochs": 245,
        "burn_in": 195,
        "momentum_rescale": True,
    },
)

#: module (as ``workloads.WORKLOADS`` names it) -> its table; keyed by module, not by workload
#: name, so that a name registered to another module is read from that module
BUILTIN: dict[str, WorkloadKeys] = {
    "workloads.gaussian": GAUSSIAN,
    "workloads.mixture": MIXTURE,
    "workloads.logreg": LOGREG,
    "workloads.mlp": MNIST_MLP,
    "workloads.resnet": CIFAR_RESNET18,
}
