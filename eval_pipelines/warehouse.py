"""Read-only access to the user's warehouse through a SQLAlchemy URL.

DuckDB files are opened read-only with DuckDB's own client so results arrive as Arrow (fast,
no per-row Python objects); every other URL goes through SQLAlchemy. Errors are rewritten as
sentences that never include the password (URLs are rendered with the password hidden).
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL, Dialect, make_url

from eval_pipelines.errors import WarehouseError


def safe_url(url: str | URL) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", str(url))


class Warehouse:
    """A read-only connection factory for one warehouse URL."""

    def __init__(self, url: str) -> None:
        try:
            self.url = make_url(url)
        except Exception:
            raise WarehouseError(f"warehouse: {safe_url(url)!r} is not a SQLAlchemy URL") from None
        self.safe_url = safe_url(self.url)
        self._engine: sa.Engine | None = None
        self._duckdb_connection: Any = None
        self._connection: sa.Connection | None = None

    @property
    def is_duckdb(self) -> bool:
        return self.url.get_backend_name() == "duckdb"

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            try:
                connect_args = {"read_only": True} if self.is_duckdb else {}
                self._engine = sa.create_engine(self.url, connect_args=connect_args)
            except Exception as exc:
                raise WarehouseError(
                    f"warehouse {self.safe_url}: cannot create a connection "
                    f"({type(exc).__name__}: {self._scrub(exc)})"
                ) from None
        return self._engine

    def _scrub(self, exc: BaseException) -> str:
        text = str(exc).split("\n[SQL:")[0].strip()
        password = self.url.password
        if password:
            text = text.replace(str(password), "***")
        return text[:500]

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
            except duckdb.Error as exc:
                raise WarehouseError(f"warehouse {self.safe_url}: {self._scrub(exc)}") from None
        yield self._duckdb_connection

    def _sqlalchemy(self) -> sa.Connection:
        """One connection per Warehouse (so temporary tables live across queries). Its
        transaction is never committed: closing rolls back, and nothing is ever written."""
        if self._connection is None:
            self._connection = self.engine.connect()
        return self._connection

    def close(self) -> None:
        if self._duckdb_connection is not None:
            self._duckdb_connection.close()
            self._duckdb_connection = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._engine is not None:
            self._engine.dispose()

    def create_temporary_table(self, name: str, sql: str) -> bool:
        """``CREATE TEMPORARY TABLE name AS sql``; False if the warehouse refuses it (for
        example no TEMP privilege), in which case callers keep querying the sources."""
        statement = f"CREATE TEMPORARY TABLE {name} AS\n{sql}"
        try:
            if self.is_duckdb:
                with self._duckdb() as con:
                    con.execute(statement)
            else:
                self._sqlalchemy().execute(sa.text(statement.replace(":", r"\:")))
            return True
        except Exception:
            if self._connection is not None:
                self._connection.rollback()
            return False

    def drop_temporary_table(self, name: str) -> None:
        """Best effort: the table is private to this session and ends with it anyway, and a
        failure here must not hide the error that is being raised."""
        statement = f"DROP TABLE IF EXISTS {name}"
        try:
            if self.is_duckdb and self._duckdb_connection is not None:
                self._duckdb_connection.execute(statement)
            elif self._connection is not None:
                self._connection.execute(sa.text(statement))
        except Exception:
            pass

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def query(self, sql: str, purpose: str) -> pd.DataFrame:
        """Run one complete SQL statement; ``purpose`` names it in error messages."""
        try:
            if self.is_duckdb:
                with self._duckdb() as con:
                    return con.execute(sql).fetch_df()
            return pd.read_sql_query(sa.text(sql.replace(":", r"\:")), self._sqlalchemy())
        except WarehouseError:
            raise
        except Exception as exc:
            if self._connection is not None:
                self._connection.rollback()
            raise WarehouseError(
                f"warehouse {self.safe_url}: the {purpose} query failed: {self._scrub(exc)}"
            ) from None

    def query_arrow(self, sql: str, purpose: str) -> pa.Table:
        """Like :meth:`query`, as an Arrow table (no Python objects per row on DuckDB)."""
        if not self.is_duckdb:
            return pa.Table.from_pandas(self.query(sql, purpose), preserve_index=False)
        try:
            with self._duckdb() as con:
                return con.sql(sql).to_arrow_table()
        except WarehouseError:
            raise
        except Exception as exc:
            raise WarehouseError(
                f"warehouse {self.safe_url}: the {purpose} query failed: {self._scrub(exc)}"
            ) from None

    def columns(self, source_sql: str, purpose: str) -> list[str]:
        """Column names of a table reference or parenthesised query, without reading rows."""
        frame = self.query(f"SELECT * FROM {source_sql} AS source LIMIT 0", purpose)
        return list(frame.columns)
