"""The one place that knows how Great Expectations 1.x meets our warehouses.

GX is imported here, lazily (about 3 s): metrics-only code paths and the ``gate`` command never
pay for it.

**The DuckDB patch.** GX 1.24's ``SqlAlchemyExecutionEngine.execute_query`` runs a query inside
``with engine.connect()`` and returns the ``CursorResult`` *after* that block has closed the
connection. psycopg2 has already fetched the rows client-side, so PostgreSQL works. DuckDB has
not: returning the connection to the pool resets it (a rollback), which discards the pending
result, so ``fetchall()`` sees no rows and every expectation fails with a
``MetricResolutionError`` ("list index out of range"). GX keeps one persisted connection (no
close between queries) only for the dialects in the module-level tuple
``_PERSISTED_CONNECTION_DIALECTS`` (sqlite, mssql, bigquery, databricks). :func:`patch_gx` adds
DuckDB to it. The tuple holds ``GXSqlDialect`` members and is read two ways: ``name in tuple``
(equality with the engine's dialect name, a string) and ``member.value`` (a prefix test on the
URL), so the entry is a ``str`` equal to ``"duckdb"`` that also has ``.value == "duckdb"``.
``tests/test_expectations.py::test_duckdb_patch_is_needed_and_works`` fails when a GX upgrade
makes the patch unnecessary or ineffective.

**Sharing the session.** On DuckDB, GX gets a SQLAlchemy engine whose only connection is the
engine's own read-only DuckDB connection (duckdb-engine's ``ConnectionWrapper`` through
``creator=``, built by :meth:`eval_pipelines.dialects.DuckDB.add_gx_datasource`; the patch
makes GX use a ``StaticPool``). GX therefore sees the window's
session-private temporary table, nothing rescans the sources to validate the window, and
nothing can write to the file. ``close()`` on the wrapper is a no-op: GX disposes its engine
when it is garbage collected, and the connection belongs to :class:`Warehouse`.

On other warehouses (PostgreSQL) GX runs natively on its own connection, opened with
``default_transaction_read_only=on``; it cannot see the temporary table (another session), so
its window asset is the window join as a query.
"""

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from eval_pipelines.warehouse import Warehouse

GX_VERSION_PATCHED = "1.24"
_patched = False
_background: threading.Thread | None = None


class _DuckDBDialectName(str):
    """A ``_PERSISTED_CONNECTION_DIALECTS`` entry for DuckDB (see the module docstring)."""

    value = "duckdb"


def start_import() -> None:
    """Begin importing GX on a background thread (idempotent). The input checks call this
    before the window join: the join runs in DuckDB without the GIL, so the import (3-6 s of
    Python) overlaps it instead of following it. :func:`import_gx` waits for it."""
    global _background
    if _background is not None or "great_expectations" in sys.modules:
        return
    _background = threading.Thread(target=_import_quietly, name="eval-gx-import", daemon=True)
    _background.start()


def _import_quietly() -> None:
    # An import error is raised again by the foreground import_gx(), where it is reported.
    with suppress(Exception):
        import_gx(wait=False)


def import_gx(wait: bool = True) -> Any:
    """``great_expectations``, imported once, analytics off, progress bars quiet, patched.
    Waits for an import begun by :func:`start_import` rather than racing it."""
    if wait and _background is not None:
        _background.join()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.ERROR)
    patch_gx()
    return gx


def _engine_module() -> Any:
    from great_expectations.execution_engine import sqlalchemy_execution_engine

    return sqlalchemy_execution_engine


def patch_gx() -> None:
    """Let GX keep one persisted connection on DuckDB (idempotent)."""
    global _patched
    if _patched:
        return
    module = _engine_module()
    dialects = getattr(module, "_PERSISTED_CONNECTION_DIALECTS", None)
    if dialects is None:
        raise RuntimeError(
            "great_expectations changed: sqlalchemy_execution_engine."
            "_PERSISTED_CONNECTION_DIALECTS is gone; revisit eval_pipelines/gx_compat.py"
        )
    if "duckdb" not in dialects:
        module._PERSISTED_CONNECTION_DIALECTS = (*dialects, _DuckDBDialectName("duckdb"))
    _patched = True


def unpatched_dialects() -> tuple:
    """GX's own tuple, without our entry (for the test that the patch is still needed)."""
    module = _engine_module()
    return tuple(d for d in module._PERSISTED_CONNECTION_DIALECTS if d != "duckdb")


def gx_context(gx: Any) -> Any:
    """An ephemeral data context: nothing is written to disk, no progress bars."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def add_warehouse_datasource(context: Any, warehouse: Warehouse, name: str = "warehouse") -> Any:
    """A GX SQL data source on ``warehouse``, built by its dialect (sharing the session on
    DuckDB, a read-only connection of its own on PostgreSQL)."""
    return warehouse.dialect.add_gx_datasource(context, warehouse, name)


def shares_session(warehouse: Warehouse) -> bool:
    """Whether GX sees the Warehouse's session (and so its temporary window table)."""
    return warehouse.dialect_class.gx_shares_session


@contextmanager
def count_statements() -> Iterator[list[int]]:
    """Count the statements sent through SQLAlchemy inside the ``with`` body (``[n]``, filled
    in as they run): GX's part of the input checks' query profile. GX builds its execution
    engine per batch, so the count listens on every engine for the duration."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    sent = [0]

    def count(*_: Any) -> None:
        sent[0] += 1

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", count)
