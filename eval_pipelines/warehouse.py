"""Read-only access to the user's warehouse through its URL.

The URL's engine picks its dialect class (:mod:`eval_pipelines.dialects`; another engine is
refused in one sentence naming the supported ones), and the class picks the client queries run
on: DuckDB files are opened read-only with DuckDB's own client so results arrive as Arrow
(fast, no per-row Python objects); PostgreSQL goes through SQLAlchemy; Spark (``sc://``) through
a Spark Connect session, results as Arrow. Errors are rewritten as sentences that never include
a credential (URLs are rendered with the password and any ``;token=`` hidden).
"""

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from eval_pipelines.dialects import SqlDialect, dialect_class
from eval_pipelines.dialects.duckdb import (
    DEFAULT_MEMORY_LIMIT,
    MEMORY_LIMIT_ENV,
    attach_scratch,
    limit_memory,
    session_folder,
)
from eval_pipelines.dialects.spark import spark_session as open_spark_session
from eval_pipelines.errors import WarehouseError
from eval_pipelines.query_cost import (
    QueryCost,
    QueryLog,
    duckdb_scan_metrics,
    enable_duckdb_profiling,
    profiling_enabled,
)

# Credentials passed as ``;name=value`` parameters of a Spark Connect URL (Databricks'
# ``;token=dapi...``): the value is replaced by ``***``.
_SECRET_PARAMETER = re.compile(r"(?i)(;\s*[a-z_-]*(?:token|password|secret)[a-z_-]*\s*=)[^;]*")


def safe_url(url: str | URL) -> str:
    """The URL with any password and any ``;token=`` (Spark Connect) replaced by ``***``."""
    try:
        text = make_url(url).render_as_string(hide_password=True)
    except Exception:
        text = re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", str(url))
    if "%3b" in text.lower():  # SQLAlchemy percent-encodes a Spark Connect URL's ';' and '='
        text = unquote(text)
    return _SECRET_PARAMETER.sub(r"\1***", text)


def url_secrets(url: str | URL) -> list[str]:
    """The credentials written in a URL (its password, ``;token=`` values), to scrub from
    error messages."""
    secrets = []
    try:
        password = make_url(url).password
        if password:
            secrets.append(str(password))
    except Exception:
        pass
    text = unquote(url if isinstance(url, str) else url.render_as_string(hide_password=False))
    for match in _SECRET_PARAMETER.finditer(text):
        value = text[match.end(1) : match.end()].strip()
        if value:
            secrets.append(value)
    return secrets


def _memory_hint(exc: BaseException) -> str:
    """What to do when DuckDB ran out of memory: DuckDB's own advice names its settings,
    not ours (the cap is set per session from the environment)."""
    if type(exc).__name__ != "OutOfMemoryException":
        return ""
    limit = os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
    return (
        f" (DuckDB's memory cap is {MEMORY_LIMIT_ENV}={limit}; raise it, e.g. "
        f"{MEMORY_LIMIT_ENV}=2GB, or set it to none for 80% of RAM)"
    )


class _Measure:
    """What the body of :meth:`Warehouse._measured` reports back."""

    rows_returned: int | None = None
    # Known without the profiler (a statement that reads no rows): (rows, bytes) scanned.
    scanned: tuple[int | None, int | None] | None = None


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


class Warehouse:
    """A read-only connection factory for one warehouse URL.

    Every query it runs is appended to :attr:`query_log` with its cost
    (:mod:`eval_pipelines.query_cost`).
    """

    def __init__(self, url: str) -> None:
        try:
            written = make_url(url)
        except Exception:
            raise WarehouseError(f"warehouse: {safe_url(url)!r} is not a SQLAlchemy URL") from None
        self.dialect_class = dialect_class(written)
        self.url = self.dialect_class.resolve_url(written)
        self.safe_url = safe_url(written)  # as the user wrote it, credentials masked
        self._written = str(url)  # Spark Connect reads its own URL syntax, unencoded
        self._secrets = url_secrets(url)
        self._dialect: SqlDialect | None = None
        self._spark: Any = None
        self._engine: sa.Engine | None = None
        self._duckdb_connection: Any = None
        self._folder: str | None = None  # DuckDB's spill files and scratch database
        # Statements this Warehouse ran (queries, type probes, temporary tables): the input
        # checks' profile counts them.
        self.statements = 0
        self._connection: sa.Connection | None = None
        self.query_log = QueryLog()
        self._profiled = False  # DuckDB's profiler reports rows and bytes scanned

    @property
    def client(self) -> str:
        """The client queries run on: ``duckdb``, ``sqlalchemy`` or ``spark-connect``."""
        return self.dialect_class.client

    @property
    def native_client(self) -> bool:
        """Whether queries run on DuckDB's own client."""
        return self.client == "duckdb"

    @property
    def dialect(self) -> SqlDialect:
        """The engine's dialect object, rendering with the engine's SQLAlchemy dialect (Spark
        has none: it renders its own)."""
        if self._dialect is None:
            if self.client == "spark-connect":
                self._dialect = self.dialect_class()
            else:
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
        """The error as one line: no SQL echo, no caret diagram, no JVM stack, never a
        credential."""
        text = str(exc).split("\n[SQL:")[0].strip().split("\n\n")[0]
        text = text.split("\n== SQL")[0].split("\nJVM stacktrace:")[0]
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return " ".join(text.split())[:500]

    def spark_session(self) -> Any:
        """One Spark Connect session per Warehouse (its own temporary views), in UTC."""
        if self._spark is None:
            try:
                self._spark = open_spark_session(self._written)
            except ImportError:
                raise WarehouseError(
                    f"warehouse {self.safe_url}: Spark needs pyspark with Spark Connect "
                    "(pip install 'eval-pipelines[spark]')"
                ) from None
            except Exception as exc:
                raise WarehouseError(
                    f"warehouse {self.safe_url}: cannot open a Spark Connect session "
                    f"({type(exc).__name__}: {self._scrub(exc)})"
                ) from None
        return self._spark

    def _spark_arrow(self, sql: str) -> pa.Table:
        return self.spark_session().sql(sql).toArrow()

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
                # One private folder per session holds its spill files and scratch database.
                self._folder = session_folder()
                limit_memory(self._duckdb_connection, self._folder)
                attach_scratch(self._duckdb_connection, self._folder)
                if profiling_enabled():
                    self._profiled = enable_duckdb_profiling(self._duckdb_connection)
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
        if self._spark is not None:
            with suppress(Exception):
                self._spark.stop()  # releases the server-side session and its views
            self._spark = None
        if self._duckdb_connection is not None:
            self._duckdb_connection.close()
            self._duckdb_connection = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
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
        if self.client == "spark-connect":
            self.statements += 1
            for candidate in (statement, self.dialect.create_temporary_view(name, sql)):
                try:
                    if candidate is not None:
                        with self._measured(f"temporary table {name}") as measure:
                            self._spark_arrow(candidate)
                            measure.rows_returned = 0  # the rows stay in the warehouse
                        return True
                except Exception:
                    continue
            return False
        return self._store(statement, f"temporary table {name}")

    @property
    def appends_rows(self) -> bool:
        """Whether a table made by :meth:`create_temporary_table` takes more rows (a Spark
        cached view does not)."""
        probe = self.dialect.insert_into_temporary_table("t", "SELECT 1")
        return probe is not None and self.client != "spark-connect"

    def insert_into_temporary_table(self, name: str, sql: str) -> bool:
        """Append ``sql``'s rows to a table made by :meth:`create_temporary_table`; False if
        the engine cannot (a Spark view) or the statement failed."""
        statement = self.dialect.insert_into_temporary_table(name, sql)
        if statement is None or not self.appends_rows:
            return False
        return self._store(statement, f"rows into temporary table {name}")

    def _store(self, statement: str, purpose: str) -> bool:
        self.statements += 1
        try:
            with self._measured(purpose) as measure:
                if self.native_client:
                    with self._duckdb() as con:
                        _create_within_memory(con, statement)
                else:
                    self.sqlalchemy_connection().execute(sa.text(statement.replace(":", r"\:")))
                measure.rows_returned = 0  # the rows stay in the warehouse
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
            if self.client == "spark-connect" and self._spark is not None:
                self._spark_arrow(statement)
            elif self.native_client and self._duckdb_connection is not None:
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
                + _memory_hint(exc)
            ) from None

    @contextmanager
    def _measured(self, purpose: str) -> Iterator["_Measure"]:
        """Time the ``with`` body (one query on this warehouse's session) and, if it
        completes, append its cost to :attr:`query_log`; the body sets ``rows_returned``."""
        measure = _Measure()
        started = time.perf_counter()
        yield measure
        seconds = time.perf_counter() - started
        rows, read = (None, None)
        if measure.scanned is not None:
            rows, read = measure.scanned
        elif self._profiled and self._duckdb_connection is not None:
            rows, read = duckdb_scan_metrics(self._duckdb_connection)
        self.query_log.append(
            QueryCost(purpose, seconds, measure.rows_returned, rows, read, self.dialect_class.name)
        )

    @contextmanager
    def measured(self, purpose: str, engine: str) -> Iterator[None]:
        """Record work that runs its own queries (a Great Expectations validation) as one
        :attr:`query_log` entry: wall time only, rows and bytes unknown."""
        started = time.perf_counter()
        yield
        self.query_log.append(
            QueryCost(purpose, time.perf_counter() - started, None, None, None, engine)
        )

    def query(self, sql: str, purpose: str) -> pd.DataFrame:
        """Run one complete SQL statement; ``purpose`` names it in error messages and in
        :attr:`query_log`."""
        with self._failing(purpose), self._measured(purpose) as measure:
            if self.client == "spark-connect":
                frame = self._spark_arrow(sql).to_pandas()
                measure.rows_returned = len(frame)
                return frame
            if self.native_client:
                with self._duckdb() as con:
                    frame = con.execute(sql).fetch_df()
            else:
                frame = pd.read_sql_query(
                    sa.text(sql.replace(":", r"\:")), self.sqlalchemy_connection()
                )
            measure.rows_returned = len(frame)
            return frame

    def query_arrow(self, sql: str, purpose: str) -> pa.Table:
        """Like :meth:`query`, as an Arrow table (no Python objects per row on DuckDB and
        Spark)."""
        if self.client == "spark-connect":
            with self._failing(purpose), self._measured(purpose) as measure:
                table = self._spark_arrow(sql)
                measure.rows_returned = table.num_rows
                return table
        if not self.native_client:
            return pa.Table.from_pandas(self.query(sql, purpose), preserve_index=False)
        with self._failing(purpose), self._measured(purpose) as measure, self._duckdb() as con:
            table = con.sql(sql).to_arrow_table()
            measure.rows_returned = table.num_rows
            return table

    def column_types(self, source_sql: str, purpose: str) -> dict[str, str]:
        """Column name -> the warehouse's type name (``DOUBLE``, ``character varying``), without
        reading rows; empty where the dialect's type names are not known."""
        with self._failing(purpose), self._measured(purpose) as measure:
            types = self.dialect.column_type_names(self, source_sql)
            measure.rows_returned = 0
            if self.native_client:  # DuckDB binds the LIMIT 0 relation without running it
                measure.scanned = (0, 0)
            return types

    def columns(self, source_sql: str, purpose: str) -> list[str]:
        """Column names of a table reference or parenthesised query, without reading rows."""
        frame = self.query(f"SELECT * FROM {source_sql} AS source LIMIT 0", purpose)
        return list(frame.columns)
