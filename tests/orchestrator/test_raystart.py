"""Starting or joining Ray (orchestrator.raystart): the address forms understood, the probe
that refuses in one line an address where nothing listens or something that is not Ray
answers, and Ray Tune's error records cut to one line."""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from orchestrator.raystart import OneLineErrors, RayStartError, host_port, probe


def test_address_forms() -> None:
    assert host_port("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert host_port("ray://head:10001") == ("head", 10001)
    assert host_port("auto") is None and host_port("head") is None
    with pytest.raises(RayStartError, match=r"--address head:port: not host:port"):
        host_port("head:port")


def _listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    return server


def test_nothing_listening_is_refused_in_one_line() -> None:
    server = _listener()
    port = server.getsockname()[1]
    server.close()  # the port is free again: a connection is refused
    with pytest.raises(RayStartError) as refused:
        probe(f"127.0.0.1:{port}", timeout_s=2.0)
    message = str(refused.value)
    assert message.startswith(f"--address 127.0.0.1:{port}: no Ray cluster answers there (")
    assert "ray start --head" in message and "\n" not in message


def test_a_program_that_is_not_ray_is_refused() -> None:
    """A peer that answers the HTTP/2 preface with text, not a SETTINGS frame."""
    server = _listener()
    port = server.getsockname()[1]

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(64)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    with pytest.raises(RayStartError, match="the port is taken by a program that is not Ray"):
        probe(f"127.0.0.1:{port}", timeout_s=2.0)
    thread.join(timeout=5)
    server.close()
    probe("auto")  # nothing to probe: Ray resolves it itself


def test_tracebacks_in_tune_records_become_one_line() -> None:
    try:
        raise ValueError("lr must be positive")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "ray.tune", logging.ERROR, "f.py", 1, "Trial t1 errored:", (), sys.exc_info()
        )
    assert OneLineErrors().filter(record) is True
    assert record.getMessage() == (
        "Trial t1 errored: (ValueError: lr must be positive; traceback in the trial's error.txt)"
    )
    assert record.exc_info is None
    plain = logging.LogRecord("ray", logging.INFO, "f.py", 1, "started %s", ("x",), None)
    assert OneLineErrors().filter(plain) and plain.getMessage() == "started x"
