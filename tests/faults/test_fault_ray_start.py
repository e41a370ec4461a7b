"""Fault 8: Ray itself fails to start or join. The sweep CLI says so in one line, exits 1, and
leaves no process behind; nothing hangs (Ray's own client would retry for minutes).

Cases: ``--address`` where nothing listens (connection refused); ``--address`` on a port taken
by a program that is not Ray (a silent TCP listener), plain and ``ray://``; a local Ray whose
temporary directory cannot be made (``RAY_TMPDIR`` is a file)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.faults import harness
from tests.orchestrator.helpers import write_spec

pytestmark = pytest.mark.faults

SPEC = """\
name: nostart
workload: fake
objectives: {test_error: min}
fixed: {reports: 1}
space:
  lr: {grid: [0.1, 0.2]}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_that_cannot_start_says_so_in_one_line(
    fault_env: dict[str, str], tmp_path: Path, fault_log
) -> None:
    spec = write_spec(tmp_path, SPEC)
    taken = socket.socket()  # a program that is not Ray holds this port: accepts, says nothing
    taken.bind(("127.0.0.1", 0))
    taken.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        taken.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(taken.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    port = taken.getsockname()[1]
    not_a_dir = tmp_path / "not-a-directory"
    not_a_dir.write_text("")
    cases = {
        "refused": ([f"--address=127.0.0.1:{_free_port()}"], {}, "connection refused"),
        "taken": ([f"--address=127.0.0.1:{port}"], {}, "taken by a program that is not Ray"),
        "taken ray://": ([f"--address=ray://127.0.0.1:{port}"], {}, "not Ray"),
        "no temp dir": ([], {"RAY_TMPDIR": str(not_a_dir)}, "Ray: could not start a local Ray"),
    }
    procs = {}
    started = time.monotonic()
    for name, (args, extra, _) in cases.items():
        cwd = tmp_path / name.replace(" ", "_").replace(":", "").replace("/", "")
        cwd.mkdir()
        env = {**fault_env, **extra, "LOWPREC_RAY_PROBE_TIMEOUT_S": "3"}
        procs[name] = harness.start([str(spec), *args], cwd, env)
    try:
        outputs = {name: proc.communicate(timeout=120) for name, proc in procs.items()}
    finally:
        stop.set()
        for conn in accepted:
            conn.close()
        taken.close()
    elapsed = time.monotonic() - started
    failures = []
    for name, (_, _, expected) in cases.items():
        out, err = outputs[name]
        lines = [line for line in err.splitlines() if line.strip()]
        if procs[name].returncode != 1 or len(lines) != 1 or expected not in lines[0]:
            failures.append(f"{name}: rc {procs[name].returncode}, stderr {err!r}, stdout {out!r}")
        elif not lines[0].startswith("error: "):
            failures.append(f"{name}: {lines[0]!r}")
    fault_log(
        "Ray fails to start (port taken, address unreachable, no temp dir)",
        tried=len(cases),
        recorded=0,
        duplicates=0,
        lost=0,
        tracebacks=sum(harness.tracebacks(o + e) for o, e in outputs.values()),
        outcome="one line `error: ...`, exit 1, no process left; nothing hangs",
    )
    assert not failures, "\n".join(failures)
    assert elapsed < 100, f"refusals took {elapsed:.0f} s"


LISTEN_SPEC = """\
name: loopback
workload: fake
objectives: {test_error: min}
resources: {cpu: 0.5}
fixed: {reports: 3, sleep_s: 0.4}
space:
  lr: {grid: [0.1, 0.2]}
"""


def _listening(pids: list[int]) -> dict[str, str]:
    """``{"ip:port": "pid name"}`` of the TCP sockets the processes ``pids`` listen on."""
    found = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            name = " ".join(proc.cmdline()[:1] or [proc.name()])
            conns = proc.net_connections(kind="inet")
        except psutil.Error:  # gone meanwhile
            continue
        for conn in conns:
            if conn.status == psutil.CONN_LISTEN:
                found[f"{conn.laddr.ip}:{conn.laddr.port}"] = f"{pid} {name}"
    return found


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket bound to ::ffff:127.0.0.1
    return address.is_loopback


@pytest.mark.slow
def test_a_local_ray_listens_on_loopback_only(
    fault_env: dict[str, str], tmp_path: Path, fault_log
) -> None:
    """Every server a local sweep's Ray starts (GCS, raylet, object manager, agents, the driver's
    and the trials' workers) listens on 127.0.0.1 only, sampled while two trials run
    (orchestrator.raystart.loopback_node; without it they listen on every interface)."""
    spec = write_spec(tmp_path, LISTEN_SPEC)
    args = [str(spec), "--results", str(tmp_path / "results")]
    args += ["--mlflow-uri", str(tmp_path / "mlflow.db")]
    proc = harness.start(args, tmp_path, fault_env, log=tmp_path / "sweep")
    sockets: dict[str, str] = {}
    while proc.poll() is None:
        sockets.update(_listening(harness.tagged_pids(fault_env[harness.TAG])))
        time.sleep(0.2)
    out, err = harness.output(tmp_path / "sweep")
    assert proc.returncode == 0, (out, err)
    owners = {owner.split(" ", 1)[1] for owner in sockets.values()}
    wide = {addr: owner for addr, owner in sockets.items() if not _loopback(addr.rsplit(":", 1)[0])}
    fault_log(
        "security: a local Ray's servers listen on 127.0.0.1",
        tried=1,
        tracebacks=harness.tracebacks(out + err),
        outcome=f"{len(sockets)} listening sockets of {len(owners)} kinds of Ray process "
        f"sampled during a sweep: {len(wide)} not on loopback",
    )
    # the GCS and the raylet at least, and a trial's worker (ray::ImplicitFunc) or the driver
    assert any("gcs_server" in o for o in owners) and any("raylet" in o for o in owners), sockets
    assert len(sockets) >= 4, sockets
    assert not wide, f"listening beyond the loopback interface: {wide}"
