"""Shared pytest fixtures.

Sections:
  * PostgreSQL -- a real server for ``@pytest.mark.postgres`` tests (see tests/support/postgres.py)
  * MLflow -- a real tracking + registry server (see tests/support/mlflow_server.py)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from support.postgres import PostgresUnavailable, provide_postgres_url

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
# MLflow
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real MLflow tracking + registry server (SQLite backend, proxied artifacts),
    started once per session and stopped at the end (see tests/support/mlflow_server.py)."""
    from support.mlflow_server import run_mlflow_server

    with run_mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url
