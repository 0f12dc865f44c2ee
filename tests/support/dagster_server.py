"""A throwaway real ``dagster dev`` (webserver + daemon + code server) for end-to-end tests.

Typical use::

    with run_dagster_dev(tmp_path / "dagster_home", {"EVAL_WAREHOUSE_URL": url}) as graphql_url:
        data = graphql(graphql_url, "{ version }")

``run_dagster_dev`` copies ``deploy/dagster.local.yaml`` to ``home/dagster.yaml``, starts
``.venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p PORT`` from the project root in a new
session (its own process group) with ``DAGSTER_HOME=home``, and waits until the GraphQL
endpoint answers *and* the code location is loaded without error (a location that failed to
import raises at once, with its error and the log). Everything the process prints goes to
``home/dagster-dev.log``.

Stopping: ``dagster dev`` handles Ctrl-C (SIGINT, which a terminal sends to the whole
foreground process group) by telling the webserver and daemon to shut down, so SIGINT goes to
the group first; if the process has not exited within ``grace_s``, SIGTERM, then SIGKILL, to the
group. Run workers and code servers can outlive their parent or sit in another process group,
so afterwards every process still carrying this instance's ``DAGSTER_HOME`` in its environment
(Linux ``/proc``; only processes this helper started carry it) is killed by pid, and
:func:`surviving_processes` lets a test assert that nothing was left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml

from support.mlflow_server import free_port

__all__ = [
    "PROJECT_ROOT",
    "DagsterDevError",
    "GraphQLError",
    "graphql",
    "log_tail",
    "run_dagster_dev",
    "surviving_processes",
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOG_NAME = "dagster-dev.log"
_HOST = "127.0.0.1"

WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on PythonError { message }
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
          ... on RepositoryLocation { repositories { name } }
        }
      }
    }
  }
}
"""


class DagsterDevError(RuntimeError):
    """``dagster dev`` did not start, or its code location did not load; ends with its log."""


class GraphQLError(RuntimeError):
    """The GraphQL endpoint answered with ``errors`` (or not with JSON)."""


def graphql(
    url: str, query: str, variables: Mapping | None = None, *, timeout_s: float = 60.0
) -> dict:
    """POST ``query`` to ``url`` and return its ``data``; raise :class:`GraphQLError` on
    ``errors``. Union results (``... on PythonError``) are the caller's to check."""
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    status = 200
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as exc:
        # Query errors come back as 400; a result holding a PythonError (a union member, not
        # a GraphQL error) comes back as 500 with its data.
        status, text = exc.code, exc.read().decode(errors="replace")
    try:
        payload = json.loads(text)
    except ValueError:
        raise GraphQLError(f"HTTP {status} from {url}, not JSON: {text[:2000]}") from None
    if payload.get("errors") or payload.get("data") is None:
        errors = payload.get("errors", payload)
        raise GraphQLError(f"HTTP {status} from {url}: {json.dumps(errors, indent=2)[:4000]}")
    return payload["data"]


def log_tail(home: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of ``dagster dev``'s log in ``home``."""
    try:
        text = (Path(home) / LOG_NAME).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _location_state(url: str) -> tuple[bool, str | None]:
    """(loaded, error) of the workspace: loaded when every location is LOADED; an error
    when a location loaded with a PythonError (it will not recover by waiting)."""
    data = graphql(url, WORKSPACE_QUERY, timeout_s=10)["workspaceOrError"]
    if data["__typename"] != "Workspace":
        return False, None  # e.g. a PythonError while the workspace is being built
    entries = data["locationEntries"]
    if not entries:
        return False, None
    for entry in entries:
        if entry["loadStatus"] != "LOADED":
            return False, None
        location = entry["locationOrLoadError"] or {}
        if location.get("__typename") == "PythonError":
            return False, f"{entry['name']}: {location['message']}\n{''.join(location['stack'])}"
        if location.get("__typename") != "RepositoryLocation":
            return False, None
    return True, None


def _wait_until_loaded(process: subprocess.Popen, url: str, home: Path, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    last_problem = "no answer yet"
    while True:
        if process.poll() is not None:
            raise DagsterDevError(
                f"dagster dev exited with code {process.returncode} before loading the code "
                f"location; log {home / LOG_NAME}:\n{log_tail(home)}"
            )
        try:
            loaded, error = _location_state(url)
        except (urllib.error.URLError, OSError, GraphQLError, ValueError) as exc:
            loaded, error, last_problem = False, None, f"{type(exc).__name__}: {exc}"
        else:
            last_problem = "code location not LOADED yet"
        if error:
            raise DagsterDevError(
                f"the code location failed to load: {error}\nlog {home / LOG_NAME}:\n"
                f"{log_tail(home)}"
            )
        if loaded:
            return
        if time.monotonic() > deadline:
            raise DagsterDevError(
                f"dagster dev did not load the code location within {timeout_s:.0f} s "
                f"({last_problem}); log {home / LOG_NAME}:\n{log_tail(home)}"
            )
        time.sleep(1.0)


def surviving_processes(home: Path) -> list[int]:
    """Pids of live processes whose environment has ``DAGSTER_HOME=home`` (zombies excluded).

    Only processes started by :func:`run_dagster_dev` (and their descendants) carry this
    ``DAGSTER_HOME``, a fresh temporary folder. Empty where ``/proc`` does not exist.
    """
    marker = f"DAGSTER_HOME={Path(home)}".encode()
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone, or not ours to read
            continue
        if state != "Z" and marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return sorted(found)


def _merged(base: Mapping, overrides: Mapping) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait(process: subprocess.Popen, timeout_s: float) -> bool:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout_s)
    return process.poll() is not None


def stop_dagster_dev(
    process: subprocess.Popen, home: Path, *, grace_s: float = 20.0, term_grace_s: float = 10.0
) -> list[str]:
    """Stop ``dagster dev`` and everything it started; return what had to be forced.

    SIGINT to the group (an orderly shutdown), then SIGTERM, then SIGKILL to the group, then
    SIGKILL to any process still carrying this ``DAGSTER_HOME``. Raises when something
    survives even that.
    """
    forced: list[str] = []
    pgid = process.pid  # start_new_session=True: the leader's pid is the group id
    _signal_group(pgid, signal.SIGINT)
    if not _wait(process, grace_s):
        forced.append(f"dagster dev ignored SIGINT for {grace_s:.0f} s")
        _signal_group(pgid, signal.SIGTERM)
        if not _wait(process, term_grace_s):
            forced.append(f"dagster dev ignored SIGTERM for {term_grace_s:.0f} s")
    # Whatever the leader did, nothing of its group may outlive it.
    deadline = time.monotonic() + 5
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(pgid):
        forced.append("process group still alive after the leader exited: SIGKILL")
        _signal_group(pgid, signal.SIGKILL)
    _wait(process, 5)
    # Processes that left the group (a new session) but inherited this DAGSTER_HOME.
    strays = surviving_processes(home)
    if strays:
        forced.append(f"killed processes outside the group: {strays}")
        for pid in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (_group_alive(pgid) or surviving_processes(home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = surviving_processes(home)
    if left or _group_alive(pgid):
        raise DagsterDevError(f"processes of dagster dev survived SIGKILL: {left}")
    return forced


@contextlib.contextmanager
def run_dagster_dev(
    home: str | os.PathLike,
    env: Mapping[str, str | None] | None = None,
    port: int | None = None,
    *,
    instance_overrides: Mapping | None = None,
    timeout_s: float = 120.0,
    stop_report: list[str] | None = None,
) -> Iterator[str]:
    """Run ``dagster dev`` on loopback with ``DAGSTER_HOME=home``; yield its GraphQL URL.

    ``env`` is added to ``os.environ``; a value of ``None`` removes that variable. ``port``
    defaults to a free one. ``instance_overrides``, when given, is merged key by key into the
    copied ``dagster.yaml`` (e.g. a run-queue limit that holds a sensor's runs). ``stop_report``,
    when given, receives what the shutdown had to force (empty after an orderly Ctrl-C
    shutdown).
    """
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    local_yaml = PROJECT_ROOT / "deploy" / "dagster.local.yaml"
    if instance_overrides:
        config = _merged(yaml.safe_load(local_yaml.read_text()) or {}, instance_overrides)
        (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    else:
        shutil.copyfile(local_yaml, home / "dagster.yaml")
    port = port or free_port()
    url = f"http://{_HOST}:{port}/graphql"
    child_env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    for name, value in (env or {}).items():
        if value is None:
            child_env.pop(name, None)
        else:
            child_env[name] = value
    dagster = PROJECT_ROOT / ".venv" / "bin" / "dagster"
    command = [str(dagster), "dev", "-w", "workspace.yaml", "-h", _HOST, "-p", str(port)]
    with open(home / LOG_NAME, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_until_loaded(process, url, home, timeout_s)
        yield url
    finally:
        forced = stop_dagster_dev(process, home)
        if stop_report is not None:
            stop_report.extend(forced)
