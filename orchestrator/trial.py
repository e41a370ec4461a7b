"""One trial: a flat config in, metrics (and predictions or samples) out.

    python -m orchestrator.trial workload=gaussian sampler=sgld accumulator=low \\
        weight_format='fixed<8,3>' grad_format='fixed<8,3>' lr=0.002 steps=25000 seed=1

:func:`run_trial` is the one code path both this command and a Ray Tune trial
(``orchestrator.trainable``) go through:

1. ``trial = workloads.config.TrialSpec.from_config(raw)``, the trial's one resolution of its
   config: unknown keys, wrong types and impossible precision combinations raise
   :class:`TrialConfigError` naming the key; everything after reads ``trial`` (its resolved
   config, its record, its typed values), never the raw dict;
2. the trial's only randomness, ``generator = torch.Generator(device).manual_seed(seed)``, with
   ``device`` = ``config['device']`` resolved (``auto``: cuda when present, else cpu);
3. ``workload.run(config, TrialContext(generator, device, restored, report))``;
4. status ``ok``; ``diverged`` when the workload raises ``workloads.base.Diverged`` (its metrics
   kept, ``diverged: true``); ``failed`` when it raises anything else (the error text kept).

Every result carries ``wall_s`` (seconds in the workload) and ``bits``, the word length of the
weight format (:func:`weight_bits`; fp32 -> 32), and the cost panel (:func:`trial_costs`,
docs/costs.md): ``state_bytes``, ``ensemble_bits``, ``bops_per_step``, ``bops_per_prediction``,
``energy_pj_per_step``, ``energy_pj_per_prediction`` (None where the cost model has no figure),
``peak_rss_mb``, on CUDA ``peak_gpu_mb``, and ``ess_per_s`` where the workload reports ``ess``.

The command prints progress on stderr and one JSON object on the last line of stdout. It exits 2
with a one-line message for unknown keys, bad values, impossible combinations and missing data,
0 for status ``ok`` or ``diverged``, and 1 for ``failed`` (the traceback on stderr). Unknown keys,
wrong types, values out of bounds, bad format strings, impossible precision combinations and
the project workloads' own checks are refused before torch is imported
(``workloads.config.check_keys``, with the torch-free ``lowprec.formats``, ``lowprec.precision``
and ``workloads.config.checks``: in a tenth of a second); numpy, torch and the workload
modules load only for the run.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.yamlio import YamlLoader, parse_scalar  # noqa: F401 (re-exported)
from workloads import get_workload

if TYPE_CHECKING:
    import numpy as np
    import torch

STATUSES: tuple[str, ...] = ("ok", "diverged", "failed")
#: the metrics a trial measures rather than computes: two runs of one seed differ only in these
MEASURED_METRICS: tuple[str, ...] = ("wall_s", "ess_per_s", "peak_rss_mb", "peak_gpu_mb")


class TrialConfigError(ValueError):
    """A trial's config cannot run: the message names the key and the reason (exit status 2)."""


# ----------------------------------------------------------------------------------------------
# key=value arguments: each value is one YAML scalar, read by the project's safe loader
# (orchestrator.yamlio: `1e-3` is a float, tags refused, no recursion); not YAML -> the string
# ----------------------------------------------------------------------------------------------


def parse_assignments(args: Sequence[str]) -> dict[str, Any]:
    """``['lr=0.002', "weight_format='fixed<8,3>'"]`` -> ``{'lr': 0.002, 'weight_format': ...}``.

    Raises :class:`TrialConfigError` for an argument without ``=`` or a key given twice.
    """
    raw: dict[str, Any] = {}
    for arg in args:
        key, sep, text = arg.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TrialConfigError(f"argument {arg!r}: expected key=value (e.g. lr=0.002)")
        if key in raw:
            raise TrialConfigError(f"key {key!r}: given twice")
        raw[key] = parse_scalar(text)
    return raw


# ----------------------------------------------------------------------------------------------
# config, device, bits
# ----------------------------------------------------------------------------------------------


def check(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``workloads.config.check_keys(raw)``: names, types, bounds and choices checked without
    importing torch; its ``ValueError`` becomes ``TrialConfigError``."""
    from workloads.config.resolve import check_keys

    try:
        return check_keys(dict(raw))
    except (ValueError, TypeError) as exc:
        raise TrialConfigError(str(exc)) from exc


def resolve(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``workloads.config.resolve_config(raw)``; its ``ValueError`` becomes ``TrialConfigError``."""
    from workloads.config.resolve import resolve_config

    try:
        return resolve_config(dict(raw))
    except TrialConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise TrialConfigError(str(exc)) from exc


def trial_spec(raw: Mapping[str, Any]) -> Any:
    """``workloads.config.TrialSpec.from_config(raw)``, built once per trial (a ``TrialSpec``
    is returned as it is: it is never resolved twice); its ``ValueError`` becomes
    ``TrialConfigError``."""
    from workloads.config.trialspec import TrialSpec

    if isinstance(raw, TrialSpec):
        return raw
    try:
        return TrialSpec.from_config(dict(raw))
    except TrialConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise TrialConfigError(str(exc)) from exc


def resolve_kernels(mode: str, device: torch.device) -> str:
    """The code path that runs: ``lowprec.kernels.resolve(mode, device)`` ("fused" or
    "eager"); ``TrialConfigError`` when ``fused`` is asked for and cannot run here."""
    try:
        from lowprec.kernels import resolve as resolve_mode
    except ImportError:  # no kernels package: the eager reference runs
        return "eager"
    try:
        return resolve_mode(mode, device)
    except ValueError as exc:
        raise TrialConfigError(str(exc)) from exc


def ignored_keys(raw: Mapping[str, Any], trial: Any = None) -> dict[str, str]:
    """The keys set in ``raw`` (not None) that have no effect on its trial, with the reason;
    ``trial``: its ``TrialSpec`` when already built (else built here)."""
    from workloads.config.resolve import irrelevant_keys

    trial = trial_spec(raw) if trial is None else trial
    why = irrelevant_keys(trial.values)  # the rules read every key with a value
    return {k: why[k] for k in raw if raw[k] is not None and k in why}


def record_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a trial's row records of its config: every key of the resolved ``config`` (those
    without effect stay None), with ``workloads.config.effective_params`` over it, so the row
    holds the effective format string of each tensor kind and ``bits_per_param`` (never a
    value that did not apply). A ``TrialSpec`` gives its resolved config and cached record (no
    resolution); a config that cannot resolve (a failed trial) is kept as it is."""
    from workloads.config import TrialSpec, effective_params

    if isinstance(config, TrialSpec):
        return {**config.resolved, **config.record}
    try:
        return {**config, **effective_params(config)}
    except (ValueError, TypeError, KeyError):
        return dict(config)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when ``torch.cuda.is_available()``, else cpu; ``cuda`` must exist."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrialConfigError(
            f"key 'device': {name!r} requested but no CUDA device is present; "
            "use device=auto or cpu"
        )
    return torch.device(name)


def weight_bits(config: Mapping[str, Any]) -> int:
    """The metric ``bits``: word bits of the weights' format, as
    ``workloads.config.precision.precision_of(config).weight`` derives it (``weight_format``,
    else ``format`` + ``bits`` when ``tensors`` holds W, else fp32 -> 32); a ``TrialSpec``'s
    own ``precision``."""
    from workloads.config import TrialSpec
    from workloads.config.precision import precision_of

    if isinstance(config, TrialSpec):
        return config.precision.weight.word_bits
    return precision_of(config).weight.word_bits


# ----------------------------------------------------------------------------------------------
# running one trial
# ----------------------------------------------------------------------------------------------


@dataclass
class TrialResult:
    """What one trial produced, whatever happened to it.

    config:  the resolved config (every default filled in).
    status:  ``ok`` | ``diverged`` | ``failed``.
    metrics: final metrics, plus ``wall_s``, ``bits`` and ``diverged``.
    error:   ``failed``/``diverged``: the exception's one-line text; else None.
    traceback: ``failed``: the full traceback text.
    labels, probs, samples: as in ``workloads.base.WorkloadResult`` (None when absent).
    """

    config: dict[str, Any]
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    exception: BaseException | None = None
    labels: np.ndarray | None = None
    probs: np.ndarray | None = None
    samples: np.ndarray | None = None

    @property
    def wall_s(self) -> float:
        return float(self.metrics.get("wall_s", math.nan))

    def summary(self) -> dict[str, Any]:
        """The JSON object the CLI prints: ``status``, every metric, ``error`` when set."""
        out: dict[str, Any] = {"status": self.status}
        out.update({k: _json_safe(v) for k, v in sorted(self.metrics.items())})
        if self.error is not None:
            out["error"] = self.error
        return out


def _json_safe(value: Any) -> Any:
    """numpy scalars -> Python; non-finite floats -> None (strict JSON has no NaN)."""
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch

    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, np.generic | torch.Tensor):
            value = value.item()
        out[str(key)] = value
    return out


def run_trial(
    raw: Mapping[str, Any],
    *,
    report: Callable[..., None] | None = None,
    restored: dict[str, Any] | None = None,
) -> TrialResult:
    """Run one trial of ``raw`` (a flat config, or its ``TrialSpec``) in this process.

    ``report(metrics, state=None)`` receives the workload's intermediate reports; ``restored``
    is the state of an earlier attempt's last report. Config problems raise
    :class:`TrialConfigError` and missing data ``workloads.base.DataUnavailable`` before or
    while the workload starts; any other exception of the workload is caught and returned as
    status ``failed`` (``result.exception`` holds it for callers that retry).
    """
    import torch

    from workloads.base import DataUnavailable, Diverged, TrialContext

    trial = trial_spec(raw)  # the one resolution of this trial
    config = dict(trial.resolved)
    device = resolve_device(trial.device)
    kernels = resolve_kernels(trial.sampler.kernels, device)
    generator = torch.Generator(device=device)
    generator.manual_seed(trial.seed)
    module = get_workload(trial.workload)
    ctx = TrialContext(generator=generator, device=device, restored=restored)
    if report is not None:
        ctx.report = report

    result = TrialResult(config=config, status="ok")
    if device.type == "cuda":  # peak_gpu_mb is this trial's peak, not the process's
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    try:
        out = module.run(trial, ctx)
    except DataUnavailable:
        raise
    except Diverged as exc:
        result.status = "diverged"
        result.metrics = _clean_metrics(exc.metrics)
        result.error = str(exc) or "diverged"
    except Exception as exc:
        result.status = "failed"
        result.error = "".join(traceback.format_exception_only(exc)).strip()
        result.traceback = "".join(traceback.format_exception(exc))
        result.exception = exc
    else:
        result.metrics = _clean_metrics(out.metrics)
        result.labels, result.probs, result.samples = out.labels, out.probs, out.samples
    wall_s = time.perf_counter() - start
    result.metrics.update(
        wall_s=wall_s,
        bits=trial.precision.weight.word_bits,
        diverged=result.status == "diverged",
        kernels=kernels,
    )
    if ctx.step_kernels is not None:  # the path that ran the sampler step (None: svrg, halp)
        result.metrics["step_kernels"] = ctx.step_kernels
    result.metrics.update(trial_costs(trial, result.metrics, device))
    return result


def trial_costs(trial: Any, metrics: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """The cost panel of a trial (docs/costs.md): ``workloads.costs.trial_costs`` from its
    spec and the ensemble's size, ``ess_per_s`` where the workload reports ``ess``, and the
    measured ``peak_rss_mb`` (this process's peak resident memory, MiB) and, on CUDA,
    ``peak_gpu_mb`` (PyTorch's peak allocated GPU memory during the trial, MiB)."""
    import resource

    import torch

    from workloads.costs import trial_costs as costs_of

    out: dict[str, Any] = dict(costs_of(trial, metrics.get("samples")))
    ess, wall_s = metrics.get("ess"), metrics.get("wall_s")
    if isinstance(ess, int | float) and isinstance(wall_s, float) and wall_s > 0:
        out["ess_per_s"] = float(ess) / wall_s
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    out["peak_rss_mb"] = rss / (2**20 if sys.platform == "darwin" else 2**10)
    if device.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------


def _progress(metrics: Mapping[str, Any], state: dict[str, Any] | None = None) -> None:
    """Intermediate reports as one line on stderr."""
    parts = []
    for key, value in metrics.items():
        if isinstance(value, float):
            parts.append(f"{key}={value:.5g}")
        else:
            parts.append(f"{key}={value}")
    print("  ".join(parts), file=sys.stderr, flush=True)


USAGE = """usage: python -m orchestrator.trial key=value [key=value ...]

Runs one trial in this process (no Ray) with the keys of a search-space file; values are YAML
scalars (lr=0.002, weight_format='fixed<8,3>', prior_std=null); every key not given takes the
workload's default (`workload=mnist_mlp` alone runs the README's MNIST settings). Progress goes
to stderr, the metrics as one JSON object to the last line of stdout. `--keys` lists the
workloads; `--keys workload=NAME` lists a workload's keys with its defaults and when each has
an effect (a key without effect on the trial is ignored, with a note on stderr).
Exit status: 0 ok or diverged, 1 failed, 2 bad keys/values or missing data."""


def _list_keys(raw: Mapping[str, Any]) -> int:
    from workloads.config.doc import render_text, render_workloads

    name = raw.get("workload")
    if name is None:
        print(render_workloads())
        return 0
    try:
        print(render_text(str(name)))
    except ValueError as exc:
        print(f"error: key 'workload': {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m orchestrator.trial``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not args else sys.stdout)
        return 0 if args else 2
    list_keys = args[0] == "--keys"
    try:  # nothing heavy imported yet: bad keys and values are refused at once
        raw = parse_assignments(args[1:] if list_keys else args)
        if list_keys:
            return _list_keys(raw)
        check(raw)
    except TrialConfigError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    from workloads.base import DataUnavailable  # imports torch

    try:
        trial = trial_spec(raw)  # resolved once: the notes and the run read it
        for key, why in ignored_keys(raw, trial).items():
            print(f"note: key {key!r} has no effect: {why}", file=sys.stderr)
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the one JSON line
            result = run_trial(trial, report=_progress)
    except (TrialConfigError, DataUnavailable) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if result.traceback:
        print(result.traceback, file=sys.stderr)
    print(json.dumps(result.summary(), sort_keys=True))
    return 1 if result.status == "failed" else 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head`: end quietly, no traceback
    sys.exit(main())
