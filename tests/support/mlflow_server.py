"""A throwaway real MLflow tracking + registry server for tests.

Typical use::

    with run_mlflow_server(tmp_path) as url:   # http://127.0.0.1:PORT
        client = MlflowClient(tracking_uri=url, registry_uri=url)

The server is ``mlflow server`` from the running interpreter's environment, backed by SQLite
in ``tmp_path/mlflow.db``, serving artifacts itself (proxied ``mlflow-artifacts:`` URIs,
stored under ``tmp_path/artifacts``) the way a team server does, on a free loopback port
with one worker. MLflow 3.17's loopback defaults need no ``--allowed-hosts`` (localhost and
private IPs are allowed). Its background job runner (huey consumers for GenAI jobs) is
switched off with ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: five extra processes the tests
do not use. Startup (database migrations included) took 10-20 s on a busy 2-core machine; a
new backend store therefore starts as a copy of the session's migrated empty store
(``support.mlflow_store``), and a restart on the same folder keeps its store.

The server runs in its own process group and is stopped with SIGTERM to the group, then
SIGKILL if it has not exited in time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from support.mlflow_store import migrated_store

__all__ = ["MlflowServerError", "free_port", "run_mlflow_server"]

_HOST = "127.0.0.1"


class MlflowServerError(RuntimeError):
    """The server did not start; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((_HOST, 0))
        return sock.getsockname()[1]


def _mlflow_executable() -> list[str]:
    script = Path(sys.executable).parent / "mlflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlflow"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    # Kill whatever is left in the group (uvicorn workers outlive a hung parent).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def run_mlflow_server(tmp_path: str | os.PathLike, *, timeout_s: float = 120.0) -> Iterator[str]:
    """Start ``mlflow server`` in ``tmp_path``, yield its URL, stop it on exit."""
    root = Path(tmp_path)
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://{_HOST}:{port}"
    log_path = root / "mlflow-server.log"
    database = (root / "mlflow.db").resolve()
    if not database.exists():
        migrated_store(database)
    command = [
        *_mlflow_executable(),
        "server",
        "--backend-store-uri",
        f"sqlite:///{database}",
        "--artifacts-destination",
        str((root / "artifacts").resolve()),
        "--host",
        _HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "PYTHONUNBUFFERED": "1",
    }
    for inherited in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(inherited, None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(url):
            if process.poll() is not None:
                raise MlflowServerError(
                    f"mlflow server exited with code {process.returncode} before answering "
                    f"{url}/health; log {log_path}:\n{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise MlflowServerError(
                    f"mlflow server did not answer {url}/health within {timeout_s:.0f} s; "
                    f"log {log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.25)
        yield url
    finally:
        _stop(process)
