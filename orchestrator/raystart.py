"""Starting or joining Ray, failing in one line.

``ray.init(address=...)`` towards an address where no Ray cluster answers does not fail: it
retries for minutes, printing C++ warnings. So before joining, :func:`probe` opens a TCP
connection to ``host:port`` and speaks the first words of HTTP/2 (the transport of Ray's gRPC
GCS and of the Ray client server): the client preface ``PRI * HTTP/2.0...`` and an empty
SETTINGS frame (RFC 9113 §3.4). A gRPC server answers with a SETTINGS frame (type 0x4) at
once; nothing listening (connection refused), no answer, or an answer that is not HTTP/2 (the
port taken by another program) -> :class:`RayStartError` with one line, before Ray starts
anything. Whatever else stops ``ray.init`` is caught and said in one line as well, after
shutting down what it had started.

A local Ray (no ``--address``) listens on the loopback interface only (:func:`loopback_node`):
its GCS, raylet, object manager, agents and every worker's gRPC server bind 127.0.0.1, not every
interface. ``LOWPREC_RAY_NODE_IP=ADDR`` starts it on another address of this machine instead
(reachable from the network: Ray's token authentication then guards it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

#: HTTP/2 client connection preface and an empty SETTINGS frame (length 0, type 4, flags 0)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
SETTINGS = 4
TIMEOUT_S = float(os.environ.get("LOWPREC_RAY_PROBE_TIMEOUT_S", "5"))
LOOPBACK = "127.0.0.1"
#: the address a local Ray's servers listen on instead of the loopback one ("told otherwise")
ENV_NODE_IP = "LOWPREC_RAY_NODE_IP"


class RayStartError(RuntimeError):
    """Ray could not be started or joined (exit status 1)."""


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``ray://host:port``; None for ``auto`` and other
    forms Ray resolves itself."""
    text = address if "://" in address else f"gcs://{address}"
    try:
        parsed = urllib.parse.urlsplit(text)
        port = parsed.port
    except ValueError:
        raise RayStartError(
            f"--address {address}: not host:port, ray://host:port or auto"
        ) from None
    if parsed.scheme not in ("gcs", "ray") or not parsed.hostname or port is None:
        return None
    return parsed.hostname, port


def probe(address: str, timeout_s: float = TIMEOUT_S) -> None:
    """Raise :class:`RayStartError` unless a gRPC (HTTP/2) server answers at ``address``."""
    where = host_port(address)
    if where is None:
        return
    fix = "start one there (ray start --head) or leave --address out for a local Ray"
    try:
        conn = socket.create_connection(where, timeout=timeout_s)
    except TimeoutError:
        raise RayStartError(
            f"--address {address}: no Ray cluster answers there (no connection in "
            f"{timeout_s:g} s); {fix}"
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RayStartError(
            f"--address {address}: no Ray cluster answers there ({reason.lower()}); {fix}"
        ) from None
    header = b""
    with conn, contextlib.suppress(OSError):  # a silent or closing peer: header stays short
        conn.settimeout(timeout_s)
        conn.sendall(PREFACE)
        while len(header) < 9:
            chunk = conn.recv(9 - len(header))
            if not chunk:
                break
            header += chunk
    if len(header) < 9 or header[3] != SETTINGS:
        raise RayStartError(
            f"--address {address}: the port is taken by a program that is not Ray (no gRPC "
            f"answer in {timeout_s:g} s); check the Ray head's address and port, or {fix}"
        )


class OneLineErrors(logging.Filter):
    """Ray Tune's error records in one line: the first line of the message and the last line of
    the error (a trial's failure carries the worker's whole traceback in its text). The full
    traceback stays in the trial's ``error.txt`` under ``tune/``; the sweep's own lines say what
    happened to each trial."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info is None and "Traceback (most recent call last)" not in text:
            return True
        lines = [line for line in text.strip().splitlines() if line.strip()]
        first = lines[0].split("Traceback (most recent call last)")[0].rstrip() if lines else ""
        if record.exc_info is not None and record.exc_info[1] is not None:
            error = traceback.format_exception_only(record.exc_info[1])[-1].strip()
        else:
            error = lines[-1].strip() if len(lines) > 1 else ""
        last = error.splitlines()[-1] if error else ""
        record.msg = f"{first} ({last}; traceback in the trial's error.txt)" if last else first
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        return True


def quiet_tracebacks() -> None:
    """Put :class:`OneLineErrors` on the handlers Ray's loggers write through (once)."""
    for name in ("ray", "ray.tune", "ray.train", ""):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, OneLineErrors) for f in handler.filters):
                handler.addFilter(OneLineErrors())


@contextlib.contextmanager
def loopback_node() -> Iterator[None]:
    """While a local Ray starts in it, its node address is the loopback one, so that every server
    of the node listens on 127.0.0.1 only.

    Ray 2.60 binds a node's servers to the loopback interface when the node's IP address is a
    loopback one and to every interface (``0.0.0.0`` / ``::``) otherwise (``dashboard/agent.py``:
    ``get_localhost_ip() if is_localhost(self.ip) else get_all_interfaces_ip()``; the GCS, raylet
    and core workers alike; the runtime-env agent binds the node address itself). But
    ``ray.init(_node_ip_address="127.0.0.1")`` alone does not give a loopback node:
    ``services.resolve_ip_for_localhost`` turns a loopback address into this machine's routable
    one, unless ``ray_constants.ENABLE_RAY_CLUSTER`` is false (the switch Ray reads from
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` at import: a single-machine Ray, as on Windows and
    macOS by default), when ``services.get_node_ip_address`` answers the loopback address. Ray
    reads the switch only while ``ray.init`` resolves the node address (afterwards the started
    node's address is used), so it is set for that call alone and restored."""
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


@contextlib.contextmanager
def _quiet_token_notice() -> Iterator[None]:
    """While a local Ray starts, its line that token authentication is on (Ray 2.60's default
    for a new local cluster, kept) is not printed: a notice at every sweep, not a problem."""
    log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    saved = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(saved)


def start(
    init: Callable[..., Any],
    shutdown: Callable[[], None],
    address: str | None,
    attempts: int = 2,
    **kwargs: Any,
) -> None:
    """``init(address=..., **kwargs)`` (``ray.init``) after :func:`probe`; any failure ->
    ``shutdown()`` (what it had started goes) and :class:`RayStartError` in one line. A local
    start that timed out (Ray gives its raylet 30 s, which a loaded machine can miss) is tried
    again, ``attempts`` times in all, saying so on stderr. A local start listens on 127.0.0.1
    only (:func:`loopback_node`), or on ``$LOWPREC_RAY_NODE_IP`` when set."""
    if address:
        probe(address)
    local_ip = os.environ.get(ENV_NODE_IP) or None
    for attempt in range(1, attempts + 1):
        try:
            # no address: always a new local instance ("local"); ray.init() alone would join a
            # cluster someone started with `ray start` on this machine
            if address:
                init(address=address, **kwargs)
            elif local_ip:
                init(address="local", _node_ip_address=local_ip, **kwargs)
            else:
                with loopback_node(), _quiet_token_notice():
                    init(address="local", _node_ip_address=LOOPBACK, **kwargs)
            quiet_tracebacks()
            return
        except Exception as exc:
            with contextlib.suppress(Exception):
                shutdown()
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            detail = lines[0] if lines else type(exc).__name__
            if not address and "timed out during startup" in detail and attempt < attempts:
                print(f"Ray: the local start timed out ({detail}); trying again", file=sys.stderr)
                continue
            where = f"join {address}" if address else "start a local Ray"
            raise RayStartError(f"Ray: could not {where}: {type(exc).__name__}: {detail}") from None
