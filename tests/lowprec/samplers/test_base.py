"""The samplers' common contract (lowprec/samplers/base.py, ALGORITHMS.md §5, §6): every
sampler × accumulator × format, prepare, checkpoints that resume exactly, and clear errors."""

from __future__ import annotations

import pytest
import torch

from lowprec import parse_format, quantize
from lowprec import samplers as S
from tests.lowprec.samplers.helpers import COMBOS, SHAPES, _build, _config, _run
from workloads.config.precision import precision_from_config


@pytest.mark.parametrize(("sampler", "accumulator", "fmt"), COMBOS)
def test_contract(sampler: str, accumulator: str, fmt: str) -> None:
    config = _config(sampler, accumulator, fmt)
    out, s = _run(config)
    assert [tuple(t.shape) for t in out] == SHAPES
    assert all(t.dtype == torch.float32 for t in out)
    assert all(bool(torch.isfinite(t).all()) for t in out)
    # θ̂ lies on W's grid: nearest rounding leaves it unchanged
    w = parse_format(fmt)
    for t in out:
        assert torch.equal(quantize(t, w, rounding="nearest"), t)
    # the params hold θ̂, and sample() returns copies
    for t, p in zip(out, s.params, strict=True):
        assert torch.equal(t, p.detach())
        assert t.data_ptr() != p.data_ptr()
    # same seed, same result; another seed, another result (noise or stochastic rounding)
    again, _ = _run(config)
    assert all(torch.equal(a, b) for a, b in zip(out, again, strict=True))
    other, _ = _run(config, seed=1)
    if not (sampler == "sgd" and fmt == "fp32"):
        assert not all(torch.equal(a, b) for a, b in zip(out, other, strict=True))


def test_prepare_is_idempotent_and_full_keeps_a_master_copy() -> None:
    p = torch.nn.Parameter(torch.linspace(-1, 1, 101))
    gen = torch.Generator().manual_seed(0)
    s = _build(_config("sgld", "full", "fixed<8,3>"), [p], num_data=1, generator=gen)
    s.prepare()
    first = p.detach().clone()
    s.prepare()
    assert torch.equal(first, p.detach())
    assert torch.equal(s.theta[0], torch.linspace(-1, 1, 101))  # the master is untouched
    assert not torch.equal(first, s.theta[0])


@pytest.mark.parametrize("sampler", ["sgld", "sghmc"])
@pytest.mark.parametrize("accumulator", ["full", "low", "vc"])
def test_state_dict_resumes_exactly(sampler: str, accumulator: str) -> None:
    config = _config(sampler, accumulator, "fixed<8,4>", momentum_rescale=True)
    _, s = _run(config, steps=3)
    state, gen_state = s.state_dict(), s.generator.get_state()
    straight, _ = _continue(s, config, 3)
    # a fresh sampler over fresh params, restored
    params = [torch.nn.Parameter(torch.zeros(sh)) for sh in SHAPES]
    gen = torch.Generator()
    fresh = _build(config, params, num_data=10, generator=gen)
    fresh.load_state_dict(state)
    gen.set_state(gen_state)
    resumed, _ = _continue(fresh, config, 3)
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed, strict=True))


def _continue(s: S.Sampler, config: dict, steps: int) -> tuple[list[torch.Tensor], S.Sampler]:
    for _ in range(steps):
        s.prepare()
        for p in s.params:
            p.grad = p.detach().clone()
        s.step(config["lr"])
    return s.sample(), s


def test_load_state_dict_rejects_another_sampler() -> None:
    _, a = _run(_config("sgld", "full", "fp32"), steps=1)
    _, b = _run(_config("sghmc", "full", "fp32"), steps=1)
    with pytest.raises(ValueError, match="checkpoint is for sampler 'sghmc'"):
        a.load_state_dict(b.state_dict())


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"sampler": "sghmc", "friction": 0.0}, "friction"),
        ({"sampler": "sghmc", "inverse_mass": 0.0}, "inverse_mass"),
        ({"sampler": "sghmc", "vc_mode": "both"}, "vc_mode"),
        ({"sampler": "sgld", "accumulator": "vc"}, "accumulator"),
        ({"sampler": "sgld", "temperature": -1.0}, "temperature"),
        ({"sampler": "sgld", "prior_std": 0.0}, "prior_std"),
    ],
)
def test_bad_config_names_the_key(config: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _build(config, [torch.zeros(3)])


def test_step_without_grad_says_so() -> None:
    s = _build({"sampler": "sgld"}, [torch.zeros(3)], generator=torch.Generator())
    with pytest.raises(ValueError, match=r"no \.grad"):
        s.step(0.1)


def test_precision_spec_direct() -> None:
    spec = precision_from_config({"format": "fixed", "bits": 8, "accumulator": "low"})
    s = S.SGLD([torch.zeros(4)], spec, generator=torch.Generator().manual_seed(0))
    assert s.accumulator == "low" and s.precision.weight == parse_format("fixed<8,6>")
