"""The cluster's tracking stack, for real, on one machine: PostgreSQL 15 (Debian's server, as the
non-root user ``postgres``, on 127.0.0.1 and a free port, password authentication), a real
``mlflow server --app-name basic-auth`` on it (runs, and its users, in PostgreSQL; artifacts
proxied by the server), and an Optuna sweep with three trials at once whose study lives in the
same PostgreSQL. Every run and every metric must land, unauthenticated requests are refused, and
the study holds every trial. Skipped (one line) only where PostgreSQL is not installed."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import tracking
from tests.orchestrator.helpers import write_spec

pytestmark = pytest.mark.slow

PASSWORD = "pg-test-secret"
ADMIN, ADMIN_PASSWORD = "sweeper", "mlflow-test-secret-1"


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, Any]]:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL not installed (initdb/pg_ctl not found): make system-deps")
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
    root = Path(tempfile.mkdtemp(prefix="lowprec-pg-"))
    if os.geteuid() == 0:
        os.chown(root, account.pw_uid, account.pw_gid)
    (root / "pw").write_text(PASSWORD)
    if os.geteuid() == 0:
        os.chown(root / "pw", account.pw_uid, account.pw_gid)
    port = _free_port()
    data = root / "data"
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                      f"--pwfile={root / 'pw'}", "--no-sync"]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200"
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w",
                      "start"]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=port, user="postgres", password=PASSWORD, dbname="postgres"
        )
        connection.autocommit = True
        with connection.cursor() as cursor:
            for name in ("mlflow", "mlflow_auth", "optuna"):
                cursor.execute(f"CREATE DATABASE {name}")
        connection.close()
        yield {"port": port, "root": root}
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True, timeout=120,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _db(port: int, name: str) -> str:
    """A database URL without the password, as cluster.yaml writes them: libpq reads it from
    ``PGPASSWORD``, so it never shows on a command line."""
    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{name}"


@pytest.fixture(scope="module")
def mlflow_server(postgres: dict[str, Any]) -> Iterator[str]:
    """``mlflow server --app-name basic-auth`` on PostgreSQL, as cluster.yaml starts it (the
    admin user from ``MLFLOW_AUTH_ADMIN_*``, the database password from ``PGPASSWORD``)."""
    root = Path(tempfile.mkdtemp(prefix="lowprec-mlflow-"))
    port, pg = _free_port(), postgres["port"]
    (root / "basic_auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = {_db(pg, 'mlflow_auth')}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(root / "basic_auth.ini"),
        "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN,
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret-key",
        "PGPASSWORD": PASSWORD,
    }
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    log = (root / "server.log").open("w")
    server = subprocess.Popen(
        [mlflow, "server", "--backend-store-uri", _db(pg, "mlflow"),
         "--artifacts-destination", str(root / "artifacts"), "--app-name", "basic-auth",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:  # the server (its whole process group) goes at the end, even when it never answered
        deadline = time.monotonic() + 600  # minutes on a loaded 2-CPU machine
        while time.monotonic() < deadline:
            assert server.poll() is None, (root / "server.log").read_text()[-3000:]
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            time.sleep(0.5)
        else:
            log_tail = (root / "server.log").read_text()[-3000:]
            pytest.fail(f"mlflow server did not answer: {log_tail}")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):  # workers left behind by the parent
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


SPEC = """\
name: pgsweep
workload: fake
objectives: {test_error: min}
search: {algorithm: optuna, num_samples: 6, max_concurrent: 3, seed: 1}
fixed: {reports: 3, sleep_s: 0.3}
space:
  lr: {uniform: [0.01, 1.0]}
"""


def test_sweep_tracks_to_mlflow_on_postgres_with_basic_auth(
    postgres: dict[str, Any], mlflow_server: str, fake_env: dict[str, str], tmp_path: Path
) -> None:
    # without credentials the server refuses: the cluster's runs are not open to its network
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{mlflow_server}/api/2.0/mlflow/experiments/search", timeout=10)
    assert refused.value.code == 401

    spec = write_spec(tmp_path, SPEC)
    optuna_url = _db(postgres["port"], "optuna")  # no password: PGPASSWORD
    env = {
        **fake_env,
        "MLFLOW_TRACKING_USERNAME": ADMIN,
        "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD,
        "PGPASSWORD": PASSWORD,  # libpq's, for the study's storage
        "RAY_AIR_NEW_OUTPUT": "0",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.sweep", str(spec), "--mlflow-uri", mlflow_server,
         "--optuna-storage", optuna_url],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "6/6 trials recorded (ok 6" in proc.stdout, proc.stdout

    import json

    meta = json.loads((tmp_path / "results" / "pgsweep" / "sweep.json").read_text())
    assert meta["tracking_uri"] == mlflow_server and meta["optuna_storage"] == optuna_url
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = (
        ADMIN, ADMIN_PASSWORD,
    )  # fmt: skip
    try:
        children = tracking.find_child_runs(
            mlflow_server, meta["experiment_id"], meta["parent_run_id"]
        )
        mlflow = tracking.client(mlflow_server)
        assert len(children) == 6
        assert mlflow.get_run(meta["parent_run_id"]).info.status == "FINISHED"
        for child in children:
            assert child.info.status == "FINISHED"
            assert "test_error" in child.data.metrics
            steps = [m.step for m in mlflow.get_metric_history(child.info.run_id, "train_loss")]
            assert sorted(steps) == [0, 1, 2]  # every intermediate report landed
        values = sorted(c.data.metrics["test_error"] for c in children)
    finally:
        os.environ.pop("MLFLOW_TRACKING_USERNAME")
        os.environ.pop("MLFLOW_TRACKING_PASSWORD")

    import optuna

    storage = _db(postgres["port"], "optuna").replace("postgres@", f"postgres:{PASSWORD}@")
    loaded = optuna.load_study(study_name="pgsweep", storage=storage)
    complete = [t for t in loaded.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 6 and len(loaded.trials) == 6
    assert sorted(t.value for t in complete) == pytest.approx(values)
