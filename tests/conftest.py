"""Shared pytest fixtures.

Sections:
  * PostgreSQL -- a real server for ``@pytest.mark.postgres`` tests (see tests/support/postgres.py)
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
