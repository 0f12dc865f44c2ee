"""Read-only access to the user's warehouse through a SQLAlchemy URL.

The URL's engine picks its dialect class (:mod:`eval_pipelines.dialects`; another engine is
refused in one sentence naming the supported ones). DuckDB files are opened read-only with
DuckDB's own client so results arrive as Arrow (fast, no per-row Python objects); PostgreSQL
goes through SQLAlchemy. Errors are rewritten as sentences that never include the password
(URLs are rendered with the password hidden).
"""

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from eval_pipelines.dialects import SqlDialect, dialect_class
from eval_pipelines.errors import WarehouseError


def safe_url(url: str | URL) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", str(url))


MEMORY_LIMIT_ENV = "EVAL_DUCKDB_MEMORY_LIMIT"
# Leaves room for Python, numpy and Great Expectations under the engine's 1 GB target; DuckDB
# spills the rest (the window's temporary table is the largest allocation) to disk.
DEFAULT_MEMORY_LIMIT = "400MB"


def _limit_memory(connection: Any) -> str | None:
    """Cap DuckDB's memory (``$EVAL_DUCKDB_MEMORY_LIMIT``, default 400MB; ``none``: DuckDB's
    own default of 80% of RAM) and spill to a private temporary folder, which is returned: a
    read-only database has no writable ``<file>.tmp`` folder of its own."""
    limit = os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
    if limit.lower() == "none":
        return None
    spill = tempfile.mkdtemp(prefix="eval-duckdb-spill-")
    connection.execute(f"SET memory_limit = {sql_string(limit)}")
    connection.execute(f"SET temp_directory = {sql_string(spill)}")
    return spill


def _create_within_memory(connection: Any, statement: str) -> None:
    """Run ``statement`` (a ``CREATE TEMPORARY TABLE ... AS``) on DuckDB; if it runs out of
    memory, once more on one thread. Each thread of the join that fills the table holds its
    own buffers, which do not spill: under a cap of 30MB a 10M-row window failed on 2 threads
    and fit on one, and a failure here used to send every check back to re-joining the sources
    (the window checks query then ran out of memory too, as at 100M rows under 400MB)."""
    import duckdb

    try:
        connection.execute(statement)
    except duckdb.OutOfMemoryException:
        threads = connection.execute("SELECT current_setting('threads')").fetchone()[0]
        connection.execute("SET threads = 1")
        try:
            connection.execute(statement)
        finally:
            connection.execute(f"SET threads = {int(threads)}")


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Warehouse:
    """A read-only connection factory for one warehouse URL."""

    def __init__(self, url: str) -> None:
        try:
            written = make_url(url)
        except Exception:
            raise WarehouseError(f"warehouse: {safe_url(url)!r} is not a SQLAlchemy URL") from None
        self.dialect_class = dialect_class(written)
        self.url = self.dialect_class.resolve_url(written)
        self.safe_url = safe_url(written)  # as the user wrote it, password masked
        self._dialect: SqlDialect | None = None
        self._engine: sa.Engine | None = None
        self._duckdb_connection: Any = None
        self._spill: str | None = None
        # Statements this Warehouse ran (queries, type probes, temporary tables): the input
        # checks' profile counts them.
        self.statements = 0
        self._connection: sa.Connection | None = None

    @property
    def native_client(self) -> bool:
        """Whether queries run on DuckDB's own client (else on one SQLAlchemy connection)."""
        return self.dialect_class.native_client

    @property
    def dialect(self) -> SqlDialect:
        """The engine's dialect object, rendering with the engine's SQLAlchemy dialect."""
        if self._dialect is None:
            self._dialect = self.dialect_class(self.engine.dialect)
        return self._dialect

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            try:
                connect_args = self.dialect_class.connect_args()
                self._engine = sa.create_engine(self.url, connect_args=connect_args)
            except Exception as exc:
                raise WarehouseError(
                    f"warehouse {self.safe_url}: cannot create a connection "
                    f"({type(exc).__name__}: {self._scrub(exc)})"
                ) from None
        return self._engine

    def _scrub(self, exc: BaseException) -> str:
        """The error as one line: no SQL echo, no caret diagram, never the password."""
        text = str(exc).split("\n[SQL:")[0].strip().split("\n\n")[0]
        password = self.url.password
        if password:
            text = text.replace(str(password), "***")
        return " ".join(text.split())[:500]

    @contextmanager
    def _duckdb(self) -> Iterator[Any]:
        """One read-only DuckDB connection per Warehouse, reused by every query."""
        import duckdb

        if self._duckdb_connection is None:
            database = self.url.database or ":memory:"
            if database != ":memory:" and not Path(database).exists():
                raise WarehouseError(f"warehouse {self.safe_url}: DuckDB file {database} not found")
            try:
                self._duckdb_connection = duckdb.connect(database, read_only=database != ":memory:")
                # Naive timestamps mean UTC; TIMESTAMPTZ columns are compared with them in the
                # session time zone, which DuckDB takes from the machine unless told.
                self._duckdb_connection.execute("SET TimeZone = 'UTC'")
                self._spill = _limit_memory(self._duckdb_connection)
            except duckdb.Error as exc:
                raise WarehouseError(f"warehouse {self.safe_url}: {self._scrub(exc)}") from None
        yield self._duckdb_connection

    def duckdb_connection(self) -> Any:
        """The read-only DuckDB connection every query uses (for GX to share the session)."""
        with self._duckdb() as con:
            return con

    def sqlalchemy_connection(self) -> sa.Connection:
        """One connection per Warehouse (so temporary tables live across queries). Its
        transaction is never committed: closing rolls back, and nothing is ever written."""
        if self._connection is None:
            self._connection = self.engine.connect()
        return self._connection

    def close(self) -> None:
        if self._duckdb_connection is not None:
            self._duckdb_connection.close()
            self._duckdb_connection = None
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)
            self._spill = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._engine is not None:
            self._engine.dispose()

    def create_temporary_table(self, name: str, sql: str) -> bool:
        """The dialect's session-private table of ``sql``'s rows (``CREATE TEMPORARY TABLE
        name AS sql``); False if the warehouse refuses it (for example no TEMP privilege), in
        which case callers keep querying the sources."""
        statement = self.dialect.create_temporary_table(name, sql)
        self.statements += 1
        try:
            if self.native_client:
                with self._duckdb() as con:
                    _create_within_memory(con, statement)
            else:
                self.sqlalchemy_connection().execute(sa.text(statement.replace(":", r"\:")))
            return True
        except Exception:
            if self._connection is not None:
                self._connection.rollback()
            return False

    def drop_temporary_table(self, name: str) -> None:
        """Best effort: the table is private to this session and ends with it anyway, and a
        failure here must not hide the error that is being raised."""
        try:
            statement = self.dialect.drop_temporary_table(name)
            if self.native_client and self._duckdb_connection is not None:
                self._duckdb_connection.execute(statement)
            elif self._connection is not None:
                self._connection.execute(sa.text(statement))
        except Exception:
            pass

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _failing(self, purpose: str) -> Iterator[None]:
        """Any failure of a query as one WarehouseError sentence naming its ``purpose``; the
        SQLAlchemy connection is rolled back so the session's temporary tables stay usable."""
        self.statements += 1
        try:
            yield
        except WarehouseError:
            raise
        except Exception as exc:
            if self._connection is not None:
                self._connection.rollback()
            raise WarehouseError(
                f"warehouse {self.safe_url}: the {purpose} query failed: {self._scrub(exc)}"
            ) from None

    def query(self, sql: str, purpose: str) -> pd.DataFrame:
        """Run one complete SQL statement; ``purpose`` names it in error messages."""
        with self._failing(purpose):
            if self.native_client:
                with self._duckdb() as con:
                    return con.execute(sql).fetch_df()
            return pd.read_sql_query(sa.text(sql.replace(":", r"\:")), self.sqlalchemy_connection())

    def query_arrow(self, sql: str, purpose: str) -> pa.Table:
        """Like :meth:`query`, as an Arrow table (no Python objects per row on DuckDB)."""
        if not self.native_client:
            return pa.Table.from_pandas(self.query(sql, purpose), preserve_index=False)
        with self._failing(purpose), self._duckdb() as con:
            return con.sql(sql).to_arrow_table()

    def column_types(self, source_sql: str, purpose: str) -> dict[str, str]:
        """Column name -> the warehouse's type name (``DOUBLE``, ``character varying``), without
        reading rows; empty where the dialect's type names are not known."""
        with self._failing(purpose):
            return self.dialect.column_type_names(self, source_sql)

    def columns(self, source_sql: str, purpose: str) -> list[str]:
        """Column names of a table reference or parenthesised query, without reading rows."""
        frame = self.query(f"SELECT * FROM {source_sql} AS source LIMIT 0", purpose)
        return list(frame.columns)
