"""Variants (sub-spaces), relevance and data before launch (orchestrator.spec, orchestrator.expand,
workloads.datacheck): a variants spec lists exactly its trials through grid, random and Optuna;
keys without effect are refused with their reason, partially relevant ones deduplicated and
recorded null; missing data is refused before anything starts; the CIFAR table is one file."""

from __future__ import annotations

import gzip
import io
import itertools
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from orchestrator.spec import SpecError, check_data, load_spec, parse_spec
from tests.orchestrator.helpers import write_spec

REPO = Path(__file__).resolve().parents[2]

# the issue's example: 3 + 36 = 39 trials
ISSUE = """\
name: table
workload: mnist_mlp
objectives: {test_error: min, bits_per_param: min}
search: {algorithm: grid, num_samples: 1}
fixed: {sampler: sgld, epochs: 10}
space:
  seed: {grid: [0, 1, 2]}
variants:
  - name: fp32
    format: fp32
    accumulator: full
  - name: lowprec
    format: {grid: [fixed, block]}
    bits: {grid: [4, 8]}
    accumulator: {grid: [full, low, vc]}
"""


def _expected_issue_trials() -> list[dict]:
    """The 39 trials of ISSUE, written out by hand (no key without effect: fp32 has no bits)."""
    base = {"workload": "mnist_mlp", "sampler": "sgld", "epochs": 10}
    out = [
        {**base, "variant": "fp32", "seed": s, "format": "fp32", "accumulator": "full"}
        for s in (0, 1, 2)
    ]
    for s, f, b, a in itertools.product(
        (0, 1, 2), ("fixed", "block"), (4, 8), ("full", "low", "vc")
    ):
        out.append(
            {**base, "variant": "lowprec", "seed": s, "format": f, "bits": b, "accumulator": a}
        )
    return out


def _as_set(configs: list[dict]) -> set[frozenset]:
    return {frozenset(c.items()) for c in configs}


def test_issue_example_grid_lists_exactly_39_trials() -> None:
    spec = parse_spec(ISSUE, "table.yaml")
    configs = spec.trial_configs()
    assert spec.num_trials() == len(configs) == 39
    assert spec.variants == ["fp32", "lowprec"]
    assert spec.trials_per_variant() == {"fp32": 3, "lowprec": 36}
    assert len(_as_set(configs)) == 39  # no duplicates
    assert _as_set(configs) == _as_set(_expected_issue_trials())
    assert spec.searched_keys() == ["seed", "format", "bits", "accumulator"]
    assert spec.param_space() == {} and spec.optuna_space() is None


def test_random_search_draws_num_samples_per_grid_point_in_each_variant() -> None:
    text = ISSUE.replace("algorithm: grid, num_samples: 1", "algorithm: random, num_samples: 2")
    text = text.replace("  seed: {grid: [0, 1, 2]}\n", "  seed: {grid: [0, 1, 2]}\n"
                        "  lr: {loguniform: [1.0e-3, 0.3]}\n")  # fmt: skip
    spec = parse_spec(text)
    configs = spec.trial_configs()
    assert spec.trials_per_variant() == {"fp32": 6, "lowprec": 72}
    assert len(_as_set(configs)) == 78
    assert all(1e-3 <= c["lr"] <= 0.3 for c in configs)
    # each grid point twice, with two different draws
    points: dict[tuple, list[float]] = {}
    for c in configs:
        point = tuple(sorted((k, v) for k, v in c.items() if k != "lr"))
        points.setdefault(point, []).append(c["lr"])
    assert len(points) == 39 and all(len(set(v)) == 2 for v in points.values())
    assert parse_spec(text).trial_configs() == configs  # drawn from search.seed (default 0)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_optuna_space_proposes_exactly_the_union_and_flat_configs() -> None:
    """Optuna's brute-force sampler walks every branch of the define-by-run space: the variant
    first, then that variant's keys. It must visit exactly the 39 trials of the grid, each
    once, through Ray's OptunaSearch (whose wrapper must not leak parameter names)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    text = ISSUE.replace("algorithm: grid, num_samples: 1", "algorithm: optuna, num_samples: 39")
    spec = parse_spec(text)
    assert spec.num_trials() == 39
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = OptunaSearch(
        space=spec.optuna_space(),
        metric="test_error",
        mode="min",
        sampler=optuna.samplers.BruteForceSampler(seed=0),
    )
    proposed = []
    for i in range(39):
        config = search.suggest(f"t{i}")
        proposed.append(config)
        search.on_trial_complete(f"t{i}", {"test_error": 0.5})
    assert len(_as_set(proposed)) == 39  # no duplicates
    assert _as_set(proposed) == _as_set(_expected_issue_trials())
    # the study saw the variant as a categorical and each variant's keys under its name
    params = set().union(*(t.params for t in search._ot_study.trials))
    assert params == {"variant", "seed", "lowprec.format", "lowprec.bits", "lowprec.accumulator"}


def test_study_search_runs_no_effective_config_twice(tmp_path: Path) -> None:
    """The sweep's searcher (orchestrator.study.StudySearch) under a random sampler: 20 Tune
    trials of the 39-config space get 20 different effective configs (a plain random sampler
    repeats one within 20 draws with probability 1 - 39!/(19!·39^20) > 0.99), all of the grid."""
    import optuna

    from orchestrator.study import StudySearch

    spec = parse_spec(
        ISSUE.replace("algorithm: grid, num_samples: 1", "algorithm: optuna, num_samples: 39")
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = StudySearch(
        space=spec.optuna_space(),
        metric="test_error",
        mode="min",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    proposed = []
    for i in range(20):
        proposed.append(search.suggest(f"t{i}"))
        search.on_trial_complete(f"t{i}", {"test_error": 0.5})
    assert len(_as_set(proposed)) == 20
    assert _as_set(proposed) <= _as_set(_expected_issue_trials())


NO_OP = [
    # (fixed, space, path and reason the message must hold)
    ("{sampler: sgld, format: fp32}", "bits: {grid: [4, 8]}",
     "space.bits: no effect: format is fp32 in every trial"),
    ("{sampler: sgld, friction: 2.0}", "seed: {grid: [0, 1]}",
     "fixed.friction: no effect: sampler sgld has no friction in every trial"),
    ("{sampler: sgld, steps: 100}", "seed: {grid: [0, 1]}", "fixed.steps: no effect: "),
    ("{sampler: sgd}", "temperature: {grid: [0.1, 1.0]}", "space.temperature: no effect: "),
]  # fmt: skip


@pytest.mark.parametrize(("fixed", "space", "message"), NO_OP, ids=[n[2][:16] for n in NO_OP])
def test_key_without_effect_in_any_trial_is_refused(fixed: str, space: str, message: str) -> None:
    text = (
        f"name: t\nworkload: mnist_mlp\nobjectives: {{test_error: min}}\nfixed: {fixed}\n"
        f"space:\n  {space}\n"
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text, "noop.yaml")
    assert str(info.value).startswith(f"noop.yaml: {message}"), str(info.value)
    assert "\n" not in str(info.value)


def test_key_without_effect_in_its_variant_is_refused() -> None:
    text = ISSUE.replace("    format: fp32\n", "    format: fp32\n    bits: 8\n")
    with pytest.raises(SpecError, match=r"variants\.fp32\.bits: no effect: format is fp32"):
        parse_spec(text, "v.yaml")
    # a key with an effect in some trials only is not refused: it is set where it applies
    text = ISSUE.replace("epochs: 10}", "epochs: 10, rounding: nearest}")
    spec = parse_spec(text)
    rounding = {c["variant"]: c.get("rounding") for c in spec.trial_configs()}
    assert rounding == {"fp32": None, "lowprec": "nearest"}  # fp32 rounds nothing


def test_partially_relevant_keys_are_deduplicated() -> None:
    text = """\
name: t
workload: gaussian
objectives: {w2: min}
fixed: {steps: 100, friction: 2.0, format: fixed}
space:
  sampler: {grid: [sgld, sghmc]}
  vc_mode: {grid: [joint, independent]}
  accumulator: {grid: [full, vc]}
"""
    spec = parse_spec(text)
    configs = spec.trial_configs()
    # sgld: no friction, no vc_mode -> full, vc; sghmc: vc_mode only with vc -> full, vc x 2
    assert len(configs) == 5 and spec.expansion().merged == {None: 3}
    sgld = [c for c in configs if c["sampler"] == "sgld"]
    assert {c["accumulator"] for c in sgld} == {"full", "vc"}
    assert all("friction" not in c and "vc_mode" not in c for c in sgld)
    sghmc = [c for c in configs if c["sampler"] == "sghmc"]
    assert all(c["friction"] == 2.0 for c in sghmc)
    assert sorted(c.get("vc_mode") or "-" for c in sghmc) == ["-", "independent", "joint"]


BAD_BASE = "name: t\nworkload: gaussian\nobjectives: {w2: min}\nfixed: {steps: 100}\n"
BAD_VARIANTS = [
    ("variants: []\n", "variants: expected a list"),
    ("variants: {a: 1}\n", "variants: expected a list"),
    ("variants:\n  - format: fp32\n", "variants[0]: missing name"),
    ("variants:\n  - {name: a, format: fp32}\n  - {name: a, format: fixed}\n", "variants[1].name"),
    ("variants:\n  - {name: 'a b'}\n", "variants[0].name"),
    ("variants:\n  - {name: a, steps: 10}\n", "variants.a.steps: is also in fixed"),
    ("space: {seed: {grid: [0, 1]}}\nvariants:\n  - {name: a, seed: {grid: [2]}}\n",
     "variants.a.seed: is also in space"),
    ("variants:\n  - {name: a, variant: b}\n", "variants.a.variant: set by variants"),
    ("variants:\n  - {name: a, nosuch: 1}\n", "variants.a.nosuch: unknown key"),
    ("variants:\n  - {name: a, weight_format: {grid: ['fixed<8,3>', 'fixed<8;3>']}}\n",
     "variants.a.weight_format.grid[1]"),
    # fp32 weights cannot be kept in a low-precision accumulator: named with its variant
    ("variants:\n  - {name: a, weight_format: fp32, accumulator: low, lr: {grid: [0.1, 0.2]}}\n",
     "(variant a)"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "named"), BAD_VARIANTS, ids=[b[1][:24] for b in BAD_VARIANTS])
def test_bad_variants_are_refused_with_their_path(extra: str, named: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(BAD_BASE + extra, "bad.yaml")
    assert named in str(info.value), str(info.value)
    assert str(info.value).startswith("bad.yaml: ") and "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------------
# data before launch
# ----------------------------------------------------------------------------------------------


def _idx(path: Path, shape: tuple[int, ...], compress: bool = True) -> None:
    header = bytes([0, 0, 8, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)
    data = header + bytes(int(pd.Series(shape).prod()))
    path.write_bytes(gzip.compress(data) if compress else data)


MNIST_SPEC = """\
name: mnist
workload: mnist_mlp
objectives: {test_error: min}
fixed: {dataset: mnist, data_dir: DATA}
space:
  seed: {grid: [0, 1]}
"""


def test_missing_data_is_refused_before_anything_starts(tmp_path: Path) -> None:
    from orchestrator.sweep import run_sweep

    data = tmp_path / "data"
    data.mkdir()
    spec_file = write_spec(tmp_path, MNIST_SPEC.replace("DATA", str(data)))
    results, mlflow_db = tmp_path / "results", tmp_path / "mlflow.db"
    with pytest.raises(SpecError) as info:
        run_sweep(str(spec_file), results=str(results), mlflow_uri=str(mlflow_db))
    message = str(info.value)
    assert message.startswith(f"{spec_file}: fixed.data_dir: key 'data_dir': mnist: ")
    assert str(data) in message and "train-images-idx3-ubyte" in message
    # nothing started: no MLflow database, no sweep record, no Tune state
    assert not mlflow_db.exists() and not list(results.glob("*/sweep.json"))
    assert not list(results.glob("*/tune"))

    # the files present with the right shapes: accepted; a wrong shape: refused naming it
    for prefix, n in (("train", 6), ("t10k", 2)):
        _idx(data / f"{prefix}-images-idx3-ubyte.gz", (n, 28, 28))
        _idx(data / f"{prefix}-labels-idx1-ubyte", (n,), compress=False)
    check_data(load_spec(spec_file))
    _idx(data / "t10k-labels-idx1-ubyte", (3,), compress=False)
    with pytest.raises(SpecError, match=r"t10k images have shape \[2, 28, 28\] and labels \[3\]"):
        check_data(load_spec(spec_file))
    (data / "t10k-labels-idx1-ubyte").write_bytes(b"not idx")
    with pytest.raises(SpecError, match="t10k-labels-idx1-ubyte: not an IDX file"):
        check_data(load_spec(spec_file))


def test_data_check_names_the_variant_and_cifar_files(tmp_path: Path) -> None:
    text = """\
name: c
workload: cifar_resnet18
objectives: {test_error: min}
variants:
  - {name: here, data_dir: HERE}
  - {name: nowhere, data_dir: NOWHERE}
"""
    here = tmp_path / "here"
    (here / "cifar-10-batches-py").mkdir(parents=True)
    for m in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (here / "cifar-10-batches-py" / m).write_bytes(b"x")
    text = text.replace("NOWHERE", str(tmp_path / "nowhere")).replace("HERE", str(here))
    spec = parse_spec(text, "c.yaml")
    with pytest.raises(SpecError) as info:
        check_data(spec)
    message = str(info.value)
    assert message.startswith("c.yaml: variants.nowhere.data_dir: key 'data_dir': cifar10: ")
    assert "cifar-10-python.tar.gz" in message, message
    assert f"in {tmp_path / 'nowhere'}, not found" in message, message
    (tmp_path / "nowhere").mkdir()
    (tmp_path / "nowhere" / "cifar-10-python.tar.gz").write_bytes(gzip.compress(b"tar"))
    check_data(spec)
    # data_dir not set at all: the key is named, with what it must hold
    with pytest.raises(SpecError, match=r"c\.yaml: key 'data_dir': cifar10: not set; it must"):
        check_data(parse_spec("name: c\nworkload: cifar_resnet18\nobjectives: {test_error: min}\n",
                              "c.yaml"))  # fmt: skip


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``python -m orchestrator.sweep ARGS`` in this process: (exit status, stdout, stderr)."""
    from orchestrator.sweep import main

    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# (format, method) of ALGORITHMS.md §10's table -> the keys of its trial
METHODS = {
    "SGD": ("sgd", "full"), "SGLD": ("sgld", "full"), "SGHMC": ("sghmc", "full"),
    "SGLDLP-F": ("sgld", "full"), "VC SGLDLP-L": ("sgld", "vc"), "SGDLP-L": ("sgd", "low"),
    "SGHMCLP-L": ("sghmc", "low"), "VC SGHMCLP-L": ("sghmc", "vc"),
}  # fmt: skip
FORMATS = {
    "float32": "format=fp32",
    "fixed 8": "format=fixed bits=8 frac_bits=8 tensors=WG",
    "block 8": "format=block bits=8 tensors=WGAE",
}


def test_cifar_table_is_one_file_whose_dry_run_lists_every_row(
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = (REPO / "docs" / "ALGORITHMS.md").read_text()
    rows = re.findall(r"^\| (float32|fixed 8|block 8) \| ([A-Za-z -]+?) \| [\d.]+ \|", table, re.M)
    assert len(rows) == 12
    spec = str(REPO / "search_spaces" / "cifar_resnet18.yaml")
    status, _, err = _cli(capsys, spec, "--dry-run")
    assert status == 2 and "fixed.data_dir" in err  # /data/cifar is absent here
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    status, out, err = _cli(capsys, spec, "--dry-run", "--skip-data-check")
    assert status == 0, err
    assert ": 12 trials of workload 'cifar_resnet18'" in out
    lines = [line.split("] ", 1)[1] for line in out.splitlines() if "] " in line]
    assert len(lines) == 12
    for fmt, method in rows:
        sampler, accumulator = METHODS[method]
        keys = [*FORMATS[fmt].split(), f"sampler={sampler}"]
        keys += [f"accumulator={accumulator}"] if fmt != "float32" else []
        assert sum(set(keys) <= set(line.split()) for line in lines) == 1, (fmt, method)
    assert out.count("variant ") == 12


# ----------------------------------------------------------------------------------------------
# end to end
# ----------------------------------------------------------------------------------------------

E2E = """\
name: variants_e2e
workload: gaussian
objectives: {w2: min, bits_per_param: min}
search: {algorithm: grid, num_samples: 1}
resources: {cpu: 1, gpu: 0}
fixed: {lr: 2.0e-3, friction: 3.0, chains: 64, steps: 1500, burn_in: 500, thin: 10, device: cpu}
variants:
  - {name: fp32, format: fp32}
  - name: lp8
    format: fixed
    bits: 8
    frac_bits: 3
    accumulator: {grid: [full, low]}
  - {name: sghmc8, sampler: sghmc, format: fixed, bits: 8, frac_bits: 3, accumulator: low}
"""


@pytest.mark.slow
def test_variants_sweep_end_to_end(ray_env: None, tmp_path: Path) -> None:
    """A variants spec on the real Gaussian workload through Ray Tune: one row per trial with its
    variant, keys without effect null, MLflow children tagged, the report's front per variant."""
    import ray

    from orchestrator import tracking
    from orchestrator.sweep import run_sweep
    from orchestrator.tune_setup import init_ray as _init_ray

    spec_file = write_spec(tmp_path, E2E)
    assert load_spec(spec_file).num_trials() == 4
    assert not ray.is_initialized()
    # address="local": a Ray of our own, even when another process's cluster is running here
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
    )
    try:
        _init_ray(None)
        outcome = run_sweep(
            str(spec_file),
            results=str(tmp_path / "results"),
            mlflow_uri=str(tmp_path / "mlflow.db"),
            out=io.StringIO(),
            err=io.StringIO(),
        )
    finally:
        ray.shutdown()
    assert outcome.complete
    rows = pq.read_table(tmp_path / "results" / "variants_e2e" / "trials.parquet").to_pylist()
    assert sorted(r["variant"] for r in rows) == ["fp32", "lp8", "lp8", "sghmc8"]
    assert {r["status"] for r in rows} == {"ok"}
    by = {(r["variant"], r["accumulator"]): r for r in rows}
    assert by[("fp32", "full")]["bits"] is None or by[("fp32", "full")]["bits"] == 32
    assert by[("fp32", "full")].get("frac_bits") is None
    assert by[("lp8", "low")]["bits_per_param"] == 8 and by[("lp8", "full")]["bits_per_param"] == 32
    # the row holds the effective format of each tensor kind, derived from format + bits
    assert by[("lp8", "low")]["weight_format"] == "fixed<8,3>"
    assert by[("lp8", "low")]["grad_format"] == "fixed<8,3>"
    assert by[("fp32", "full")]["weight_format"] == "fp32"
    assert by[("sghmc8", "low")]["momentum_format"] == "fixed<8,3>"
    assert by[("lp8", "low")].get("momentum_format") is None  # sgld has no momentum
    # friction applies to the sghmc trial only: null elsewhere
    assert by[("sghmc8", "low")]["friction"] == 3.0
    assert all(r.get("friction") is None for r in rows if r["variant"] != "sghmc8")
    children = tracking.find_child_runs(
        outcome.tracking_uri, outcome.experiment_id, outcome.parent_run_id
    )
    assert sorted(c.data.tags.get("variant") for c in children) == ["fp32", "lp8", "lp8", "sghmc8"]
    assert all(
        "friction" not in c.data.params for c in children if c.data.tags["variant"] != "sghmc8"
    )
    report = tmp_path / "results" / "variants_e2e" / "report"
    fronts = pd.read_csv(report / "pareto_by_variant.csv")
    assert set(fronts["variant"]) == {"fp32", "lp8", "sghmc8"}
    assert (report / "w2_vs_bits_per_param.png").is_file()
