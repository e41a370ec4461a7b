"""Security: no eval/exec/shell of user text, YAML through the safe loader only,
checkpoints read with ``torch.load(weights_only=True)`` (every workload's state loads that way;
a damaged or malicious one runs nothing and names the file), a spec ``name`` cannot leave the
results directory, a sweep writes only under the results directory and the MLflow store, and
the servers the project starts or tells users to start listen on 127.0.0.1 unless told
otherwise."""

from __future__ import annotations

import ast
import io
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from orchestrator.spec import SpecError, parse_spec
from orchestrator.store import ResultsStore
from orchestrator.trainable import load_state
from orchestrator.trial import run_trial
from tests.faults import harness
from tests.orchestrator.helpers import write_spec
from tests.workloads.test_data import fake_cifar, write_cifar

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("lowprec", "workloads", "orchestrator", "analysis", "bench")

# ---------------------------------------------------------------------------------------------
# the code: no eval/exec, no shell, no unsafe loaders


#: call -> why it is refused
FORBIDDEN_CALLS = {
    "eval": "eval of text",
    "exec": "exec of text",
    "compile": "code compiled from text",
    "__import__": "modules imported by name from text",
    "os.system": "a shell command",
    "os.popen": "a shell command",
    "os.execl": "a process image replaced",
    "yaml.unsafe_load": "YAML that constructs objects",
    "yaml.full_load": "YAML that constructs objects",
    "pickle.load": "an unpickler that runs code",
    "pickle.loads": "an unpickler that runs code",
    "marshal.loads": "code objects from bytes",
}
#: (file, call): reviewed exceptions, with the reason they are safe
ALLOWED = {
    # Tune's searcher state in the sweep's own tune/ directory, next to Tune's experiment state
    # (itself a cloudpickle Ray restores): the sweep directory is trusted as Ray's state is
    ("orchestrator/trial_list.py", "pickle.load"),
}


def _name(node: ast.AST) -> str:
    """``a.b.c`` of a call's function (``''`` when it is not a dotted name)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _name(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _findings(path: Path, root: Path = REPO) -> list[str]:
    rel = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(), filename=rel)
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        where = f"{rel}:{node.lineno}"
        keywords = {k.arg: k.value for k in node.keywords}
        if name in FORBIDDEN_CALLS and (rel, name) not in ALLOWED:
            out.append(f"{where}: {name} ({FORBIDDEN_CALLS[name]})")
        shell = keywords.get("shell")
        if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
            out.append(f"{where}: {name}(shell=...) (a shell command line)")
        if name.startswith("subprocess.") and node.args and not isinstance(node.args[0], ast.List):
            out.append(f"{where}: {name} with a command that is not a literal list")
        if name == "yaml.load":
            loader = keywords.get("Loader")
            if loader is None or _name(loader) not in ("YamlLoader", "yaml.SafeLoader"):
                out.append(f"{where}: yaml.load without the safe loader")
        if name == "torch.load":
            only = keywords.get("weights_only")
            if not (isinstance(only, ast.Constant) and only.value is True):
                out.append(f"{where}: torch.load without weights_only=True")
    return out


def test_no_eval_exec_shell_or_unsafe_loaders_in_the_code(fault_log: Callable[..., None]) -> None:
    files = sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))
    assert len(files) > 40
    findings = [f for path in files for f in _findings(path)]
    assert not findings, "\n".join(findings)
    fault_log(
        "security: eval/exec/shell/unsafe loaders in the code (AST scan)",
        tried=len(files),
        tracebacks=0,
        outcome="no file calls them",
    )


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scan is not vacuous: each forbidden form in a file is reported."""
    bad = tmp_path / "probe.py"
    bad.write_text(
        "import os, pickle, subprocess, torch, yaml\n"
        "eval(x)\nexec(x)\nos.system(x)\nsubprocess.run(x, shell=True)\n"
        "yaml.load(x, Loader=yaml.Loader)\ntorch.load(p)\npickle.loads(b)\n"
    )
    found = _findings(bad, tmp_path)
    assert len(found) == 8, found


# ---------------------------------------------------------------------------------------------
# names and paths


SPEC = "name: {name}\nworkload: gaussian\nobjectives: {{w2: min}}\nfixed: {{steps: 10}}\n"


@pytest.mark.parametrize(
    "name", ["../x", "/abs", "a/../../b", "..", ".", "x/y", "~", "~root", "a\\b", "", " x", "x\n"]
)
def test_spec_name_cannot_leave_the_results_directory(
    name: str, tmp_path: Path, fault_log: Callable[..., None]
) -> None:
    text = SPEC.format(name=repr(name).replace("\\\\", "\\\\\\\\"))
    with pytest.raises(SpecError, match=r"^s\.yaml: name: ") as info:
        parse_spec(text, "s.yaml")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="sweep name"):
        ResultsStore(tmp_path / "results", name)
    assert not any(tmp_path.iterdir())
    fault_log(
        "security: spec name escaping the results directory",
        tried=1,
        tracebacks=0,
        outcome="refused in one line (spec) and by the store",
    )


# ---------------------------------------------------------------------------------------------
# checkpoints: weights_only for every workload's state, damaged ones named


def _states(config: dict[str, Any]) -> list[dict[str, Any]]:
    states: list[dict[str, Any]] = []

    def report(metrics: dict[str, Any], state: dict[str, Any] | None = None) -> None:
        if state is not None:
            states.append(state)

    result = run_trial(config, report=report)
    assert result.status in ("ok", "diverged"), result.error
    return states


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b or (a != a and b != b)  # NaN equals NaN here


CHECKPOINTED = {
    "gaussian-sgld": {"workload": "gaussian", "steps": 20, "burn_in": 0, "report_every": 10},
    "gaussian-sghmc-vc": {
        "workload": "gaussian", "sampler": "sghmc", "accumulator": "vc",
        "weight_format": "fixed<8,3>", "steps": 20, "burn_in": 0, "report_every": 10,
    },
    "mixture": {"workload": "mixture", "steps": 20, "burn_in": 0, "report_every": 10},
    "logreg-halp": {
        "workload": "logreg", "sampler": "halp", "accumulator": "low", "format": "fixed",
        "bits": 8, "prior_std": 1.0, "steps": 40, "report_every": 20,
    },
    "mnist_mlp-sghmc-low": {
        "workload": "mnist_mlp", "sampler": "sghmc", "accumulator": "low", "format": "fixed",
        "bits": 8, "epochs": 2, "burn_in": 0, "train_size": 64, "test_size": 32,
        "batch_size": 32,
    },
    "cifar_resnet18": {
        "workload": "cifar_resnet18", "dataset": "cifar10", "epochs": 1, "burn_in": 0,
        "batch_size": 8,
    },
}  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.slow) if c == "cifar_resnet18" else c  # ResNet-18, ~30 s
        for c in sorted(CHECKPOINTED)
    ],
)
def test_every_workload_state_loads_weights_only(
    case: str, tmp_path: Path, fault_log: Callable[..., None]
) -> None:
    # eager kernels: the state is the same whatever runs the step (the fused executor's numba
    # compilation would add ~20 s here; its state is held to the eager one in tests/lowprec)
    config = {**CHECKPOINTED[case], "device": "cpu", "seed": 3, "kernels": "eager"}
    if config["workload"] == "cifar_resnet18":
        write_cifar(tmp_path, "cifar10", fake_cifar("cifar10", per_batch=4), as_tar=False)
        config["data_dir"] = str(tmp_path)
    states = _states(config)
    assert states, f"{case}: the workload reported no state to checkpoint"
    for i, state in enumerate(states):
        path = tmp_path / f"state-{i}.pt"
        torch.save(state, path)
        loaded = torch.load(path, map_location="cpu", weights_only=True)  # raises if not plain
        assert _same(state, loaded), case
        assert _same(load_state(str(path)), state)
    # the restored state resumes the trial
    resumed = run_trial(config, restored=load_state(str(tmp_path / "state-0.pt")))
    assert resumed.status in ("ok", "diverged"), resumed.error
    fault_log(
        "security: checkpoints read with weights_only=True (every workload)",
        tried=len(states),
        tracebacks=0,
        outcome="every workload's state loads and resumes",
    )


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch SHOULD_NOT_EXIST",))


def _torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


DAMAGED: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda raw: raw[: len(raw) // 2],
    "empty": lambda raw: b"",
    "random bytes": lambda raw: os.urandom(len(raw)),
    "a plain pickle": lambda raw: pickle.dumps({"step": 1}),
    "code in the pickle": lambda raw: _torch_bytes({"step": 1, "x": _Evil()}),
    "not a dict": lambda raw: _torch_bytes([torch.zeros(2)]),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_checkpoint_names_the_file_and_runs_nothing(
    case: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fault_log: Callable[..., None],
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "state.pt"
    path.write_bytes(DAMAGED[case](_torch_bytes({"step": 3, "x": torch.arange(100)})))
    assert load_state(str(path)) is None
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], lines
    assert "starts again from its seed" in lines[0]
    assert not (tmp_path / "SHOULD_NOT_EXIST").exists()
    fault_log(
        "bad input: damaged or malicious checkpoint",
        tried=1,
        tracebacks=0,
        outcome="one line naming the file; the trial restarts from its seed; nothing runs",
    )


# ---------------------------------------------------------------------------------------------
# where a sweep writes, what it listens on

SWEEP = """\
name: written
workload: fake
objectives: {test_error: min}
search: {max_concurrent: 1}
resources: {cpu: 0.5}
fixed: {reports: 2, sleep_s: 0.1}
space:
  lr: {grid: [0.1, 0.2]}
"""


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")} if root.exists() else set()


@pytest.mark.slow  # a real sweep: Ray, MLflow, two trials (~30 s on two busy cores)
def test_a_sweep_writes_only_under_results_and_the_mlflow_store(
    fault_env: dict[str, str], tmp_path: Path, fault_log: Callable[..., None]
) -> None:
    """The sweep runs in an empty working directory with an empty HOME and its own TMPDIR
    (Ray's session files go there; matplotlib may build its font cache under HOME);
    afterwards the working directory holds only the spec, ``results/`` and the MLflow store
    (``mlflow.db`` and its artifacts), HOME holds no more than that cache, and the repository
    gained nothing."""
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    tmp = Path(tempfile.mkdtemp(prefix="bi-", dir="/tmp"))  # short: Ray's socket paths
    for d in (cwd, home):
        d.mkdir()
    spec = write_spec(cwd, SWEEP, "written.yaml")
    repo_before = _untracked_repo_files()
    env = {**fault_env, "HOME": str(home), "TMPDIR": str(tmp)}
    try:
        proc = harness.start([spec.name], cwd, env)
        out, err = proc.communicate(timeout=400)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert proc.returncode == 0, f"{out}\n{err}"
    # the MLflow store: the database, its WAL/lock siblings, the artifacts next to it
    store = re.compile(r"\.?mlflow\.db([-.][\w-]+)?|mlruns|mlartifacts")
    outside = {p.name for p in cwd.iterdir()} - {"written.yaml", "results"}
    outside = {name for name in outside if not store.fullmatch(name)}
    assert not outside, f"written outside results/ and the MLflow store: {outside}"
    assert (cwd / "results" / "written" / "trials.parquet").exists()
    # matplotlib (the report's figures) builds its font cache in a fresh HOME: a cache, no data
    cache = re.compile(r"\.cache(/matplotlib(/fontlist-v[\d.]+\.json)?)?|\.config(/matplotlib)?")
    in_home = {p for p in _tree(home) if not cache.fullmatch(p)}
    assert not in_home, f"written under HOME: {sorted(in_home)[:10]}"
    new_in_repo = _untracked_repo_files() - repo_before
    assert not {f for f in new_in_repo if "written" in f or f.startswith("results")}, new_in_repo
    fault_log(
        "security: files written only under results/ and the MLflow store",
        tried=1,
        recorded=2,
        tracebacks=harness.tracebacks(err),
        outcome="nothing else in the working directory, HOME or the repository",
    )


def _untracked_repo_files() -> set[str]:
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {line[3:] for line in out.stdout.splitlines() if line.startswith("??")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(pid: int) -> set[tuple[str, int]]:
    import psutil

    found = set()
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return found
    for proc in procs:
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((conn.laddr.ip, conn.laddr.port))
        except psutil.Error:
            continue
    return found


def _external_ips() -> list[str]:
    import psutil

    return [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.slow  # an MLflow server starts (~30-100 s on two busy cores)
def test_the_mlflow_ui_command_the_sweep_prints_listens_on_loopback(
    tmp_path: Path, fault_log: Callable[..., None]
) -> None:
    """Run the command the sweep prints for browsing its runs (``tracking.ui_command``; a free
    port, one worker): it answers on 127.0.0.1, refuses on this machine's other addresses, and
    every socket it listens on is a loopback one."""
    from orchestrator import tracking

    command = tracking.ui_command(f"sqlite:///{tmp_path / 'mlflow.db'}").split()
    assert command[0] == "mlflow"
    port = _free_port()
    command[command.index("--port") + 1] = str(port)
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [str(mlflow), *command[1:], "--workers", "1"], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not _connects("127.0.0.1", port):
            assert proc.poll() is None, f"mlflow ui ended with {proc.returncode}"
            assert time.monotonic() < deadline, "mlflow ui did not answer on 127.0.0.1"
            time.sleep(1)
        others = _external_ips()
        assert not [ip for ip in others if _connects(ip, port)], others
        sockets = _listening(proc.pid)
        assert {ip for ip, _ in sockets} <= {"127.0.0.1", "::1"}, sockets
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
    fault_log(
        "security: servers the project starts listen on 127.0.0.1",
        tried=1 + len(others),
        tracebacks=0,
        outcome="mlflow ui as printed: answers on 127.0.0.1 only",
    )


BIND = re.compile(r"(--host|--dashboard-host|--bind|--node-ip-address)[= ]+(\S+)")


def test_configs_and_docs_bind_servers_to_loopback_or_a_private_address() -> None:
    """No server command in the cluster configs, Makefile or docs binds every interface
    (0.0.0.0, ::): 127.0.0.1 (mlflow's and Ray's default) locally, the head's private address on
    a cluster (alongside the behavioural check above)."""
    files = [REPO / "cluster.yaml", REPO / "cluster-local.yaml", REPO / "Makefile"]
    files += [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]
    offenders = []
    for path in files:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for _, address in BIND.findall(line):
                if address.strip("'\"") in ("0.0.0.0", "::", "[::]", "*"):
                    offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
