"""Shared pytest fixtures and session checks.

Sections:
  * Isolation -- no test sees the developer's EVAL_* / MLFLOW_* / AWS_* settings, and no test
    writes into the checkout (checked at the end of the session)
  * PostgreSQL -- a real server for ``@pytest.mark.postgres`` tests (see tests/support/postgres.py)
  * Spark -- a real standalone cluster + Spark Connect server for ``@pytest.mark.spark`` tests
    (see tests/support/spark.py)
  * MLflow -- a real tracking + registry server (see tests/support/mlflow_server.py)
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from support.postgres import PG_BIN_ENV, PG_URL_ENV, PostgresUnavailable, provide_postgres_url
from support.s3_server import FAKE_ENV
from support.spark import SPARK_URL_ENV, SparkUnavailable, provide_spark_url

# ----------------------------------------------------------------------------------------------
# Isolation from the developer's machine
# ----------------------------------------------------------------------------------------------

# Product settings a developer may have exported (a real MLflow server, an alert webhook, S3
# credentials or endpoints): a test must never log, post or upload to them.
PRODUCT_ENV_PREFIXES = ("EVAL_", "MLFLOW_", "AWS_")
# The decision log's results store (eval_pipelines.decisions.RESULTS_STORE_ENV): its default,
# out/results.duckdb, is relative to the current folder, so the session points it at a
# temporary file that every test and subprocess shares (a test that needs its own store sets
# the variable or passes --results-store).
RESULTS_STORE_ENV = "EVAL_RESULTS_STORE_URL"
# Settings of the test harness itself (where PostgreSQL is), not of the product.
HARNESS_ENV = frozenset({PG_URL_ENV, PG_BIN_ENV, SPARK_URL_ENV, RESULTS_STORE_ENV})


def _product_env_names() -> list[str]:
    return [
        name
        for name in os.environ
        if name.startswith(PRODUCT_ENV_PREFIXES) and name not in HARNESS_ENV
    ]


_session_env = pytest.MonkeyPatch()


def pytest_configure(config: pytest.Config) -> None:
    """Unset the developer's product settings before anything is imported or started: session
    and module fixtures (MLflow, PostgreSQL, S3 servers, demo runs) and their subprocesses
    (``{**os.environ}``) then never see them either. Restored when the session ends."""
    for name in _product_env_names():
        _session_env.delenv(name)
    store = tempfile.mkdtemp(prefix="eval-results-store-")
    _session_env.setenv(RESULTS_STORE_ENV, f"duckdb:///{store}/results.duckdb")
    _checkout_before[:] = [_checkout_state()]


def pytest_unconfigure(config: pytest.Config) -> None:
    _session_env.undo()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without EVAL_* / MLFLOW_* / AWS_* variables, whatever an earlier test
    or the developer's shell left behind, and with no ~/.aws files.

    Kept: the harness settings (``HARNESS_ENV``) and the fake credentials a running moto server
    set (``support.s3_server.FAKE_ENV``, exactly those values). A test that needs a variable
    sets it with ``monkeypatch.setenv``; a subprocess built from ``{**os.environ}`` inherits
    what the test set and nothing else.
    """
    for name in _product_env_names():
        if FAKE_ENV.get(name) == os.environ[name]:
            continue
        monkeypatch.delenv(name)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        if name not in os.environ:
            monkeypatch.setenv(name, os.devnull)  # boto3 must not read the developer's ~/.aws


# What the tests may leave in the checkout: nothing. Tests write to tmp_path; a product default
# that is relative to the current folder (out/, data/, ./mlruns of an MLflow store without an
# artifact location, .tmp_dagster_home_*) is a test bug. The check compares the checkout at the
# end of the session with its start, so what `make demo` left (out/, data/) is fine.
CHECKOUT = Path(__file__).resolve().parents[1]
# Not the product's doing: the interpreter's and the tools' caches, the virtualenv, git.
_NOT_CHECKED_DIRS = frozenset(
    {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
)
_checkout_before: list[dict[str, tuple[int, int] | None]] = []


def _tracked_files() -> frozenset[str]:
    try:
        listed = subprocess.run(
            ["git", "-C", str(CHECKOUT), "ls-files", "-z"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()  # not a git checkout (an unpacked sdist): check every file
    return frozenset(name for name in listed.decode(errors="replace").split("\0") if name)


def _checkout_state() -> dict[str, tuple[int, int] | None]:
    """Every folder (value None) and file ({path: (size, mtime)}) of the checkout that a test
    could have written, relative to it.

    Left out, so that people working in the checkout while the tests run are not reported:
    files tracked by git (a test that rewrites one shows up in ``git status``) and Python
    sources (the product never writes a .py file).
    """
    tracked = _tracked_files()
    state: dict[str, tuple[int, int] | None] = {}
    for folder, subfolders, files in os.walk(CHECKOUT):
        subfolders[:] = [
            name
            for name in subfolders
            if name not in _NOT_CHECKED_DIRS and not name.endswith(".egg-info")
        ]
        relative = Path(folder).relative_to(CHECKOUT)
        for name in subfolders:
            state[f"{relative / name}/"] = None
        for name in files:
            path = str(relative / name) if relative != Path(".") else name
            if path in tracked or name.endswith(".py"):
                continue
            try:
                stat = os.lstat(Path(folder) / name)
            except OSError:
                continue  # removed meanwhile
            state[path] = (stat.st_size, stat.st_mtime_ns)
    return {key.removeprefix("./"): value for key, value in state.items()}


def _written_paths(before: dict, after: dict) -> list[str]:
    """New paths (a new folder once, not its contents) and changed untracked files."""
    new = sorted(path for path in after if path not in before)
    new_folders = [path for path in new if path.endswith("/")]
    written = [p for p in new if not any(p != f and p.startswith(f) for f in new_folders)]
    written += [
        f"{path} (changed)"
        for path, value in after.items()
        if value is not None and path in before and before[path] != value
    ]
    return sorted(written)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _checkout_before:
        return
    written = _written_paths(_checkout_before[0], _checkout_state())
    if not written:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [
        f"the tests wrote into the checkout {CHECKOUT} (write to tmp_path instead):",
        *(f"  {path}" for path in written[:50]),
    ]
    if len(written) > 50:
        lines.append(f"  ... and {len(written) - 50} more")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_sep("=", "checkout written by tests", red=True, bold=True)
        for line in lines:
            reporter.write_line(line, red=True)
    else:
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# ----------------------------------------------------------------------------------------------
# PostgreSQL
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a PostgreSQL 15 server, started once per session and stopped at the end.

    Uses $EVAL_PIPELINES_TEST_PG_URL instead when set; skips when no server binaries are found
    (override their location with $EVAL_PIPELINES_PG_BIN).
    """
    with ExitStack() as stack:
        try:
            url = stack.enter_context(provide_postgres_url())
        except PostgresUnavailable as exc:
            pytest.skip(str(exc))
        yield url


# ----------------------------------------------------------------------------------------------
# Spark
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def spark_url() -> Iterator[str]:
    """Spark Connect URL (``sc://127.0.0.1:PORT``) of a standalone cluster (a master, two
    workers of 1 core and 1g) started once per session and stopped at the end.

    Uses $EVAL_PIPELINES_TEST_SPARK_URL instead when set (``.ci/run`` starts one before the
    suite); skips when pyspark or Java is missing.
    """
    with ExitStack() as stack:
        try:
            url = stack.enter_context(provide_spark_url())
        except SparkUnavailable as exc:
            pytest.skip(str(exc))
        yield url


# ----------------------------------------------------------------------------------------------
# MLflow
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real MLflow tracking + registry server (SQLite backend, proxied artifacts),
    started once per session and stopped at the end (see tests/support/mlflow_server.py)."""
    from support.mlflow_server import run_mlflow_server

    with run_mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url
