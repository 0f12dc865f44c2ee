"""DuckDB: a local file opened read-only with DuckDB's own client."""

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from duckdb_engine import ConnectionWrapper

from eval_pipelines.dialects.base import SqlDialect

if TYPE_CHECKING:
    from eval_pipelines.warehouse import Warehouse


def shared_connection(connection: Any) -> Any:
    """A DuckDB connection as duckdb-engine's DBAPI wrapper whose ``close()`` does nothing:
    Great Expectations runs on it, but it belongs to the Warehouse."""

    class SharedConnection(ConnectionWrapper):
        def close(self) -> None:
            pass

    return SharedConnection(connection)


SCRATCH_DATABASE = "eval_scratch"
"""The session's private scratch database: where the run's session tables live (see
:meth:`DuckDB.create_temporary_table`)."""


def _double_quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


MEMORY_LIMIT_ENV = "EVAL_DUCKDB_MEMORY_LIMIT"
# Leaves room for Python, numpy and Great Expectations under the engine's 1 GB target; DuckDB
# spills the rest (the window's session table is the largest allocation) to disk.
DEFAULT_MEMORY_LIMIT = "400MB"

SESSION_FOLDER_PREFIX = "eval-duckdb-"
# A folder is only swept once it is this old and its process is gone: a live session's
# folder is never touched, even one of a process in another PID namespace whose number
# happens to be free here.
_STALE_AFTER_S = 3600.0


def session_folder() -> str:
    """A new private folder for one session's spill files and scratch database, named for
    this process (``eval-duckdb-<pid>-*``) in the system's temporary folder.

    A process killed outright (SIGKILL, the OOM killer) cannot remove its folder, and a
    spill folder can hold gigabytes; so each new session first removes the folders of
    processes that no longer exist (older than an hour, so a folder being created is never
    raced)."""
    _sweep_stale_folders(Path(tempfile.gettempdir()))
    return tempfile.mkdtemp(prefix=f"{SESSION_FOLDER_PREFIX}{os.getpid()}-")


def _sweep_stale_folders(root: Path) -> None:
    now = time.time()
    for folder in root.glob(f"{SESSION_FOLDER_PREFIX}*-*"):
        pid = folder.name[len(SESSION_FOLDER_PREFIX) :].split("-", 1)[0]
        try:
            stale = now - folder.stat().st_mtime > _STALE_AFTER_S and not _alive(int(pid))
        except (OSError, ValueError):
            continue  # not ours (no pid in the name), or removed meanwhile
        if stale:
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def limit_memory(connection: Any, folder: str) -> None:
    """Cap DuckDB's memory (``$EVAL_DUCKDB_MEMORY_LIMIT``, default 400MB; ``none``: DuckDB's
    own default of 80% of RAM) and spill to ``folder``: a read-only database has no writable
    ``<file>.tmp`` folder of its own."""
    limit = os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
    if limit.lower() == "none":
        return
    connection.execute(f"SET memory_limit = {_single_quoted(limit)}")
    connection.execute(f"SET temp_directory = {_single_quoted(folder)}")


def attach_scratch(connection: Any, folder: str) -> None:
    """Attach a new database file in ``folder`` (private to this session) as
    :data:`SCRATCH_DATABASE`, writable although the warehouse is opened read-only, and put it
    on the search path after the warehouse's own schema, so the session tables are queried
    by their bare names and the warehouse's tables keep theirs."""
    database, schema = connection.execute("SELECT current_database(), current_schema()").fetchone()
    path = str(Path(folder) / "scratch.duckdb")
    connection.execute(f"ATTACH {_single_quoted(path)} AS {SCRATCH_DATABASE} (READ_WRITE)")
    search = f"{_double_quoted(database)}.{_double_quoted(schema)},{SCRATCH_DATABASE}.main"
    connection.execute(f"SET search_path = {_single_quoted(search)}")


class DuckDB(SqlDialect):
    """DuckDB 1.x and 2.x.

    Queries run on one read-only connection of DuckDB's own client (results as Arrow, no
    Python object per row); SQLAlchemy (duckdb-engine) is used only to render SQL. Great
    Expectations runs on that same connection (see :mod:`eval_pipelines.gx_compat`), so it
    sees the temporary window table.
    """

    name = "duckdb"
    title = "DuckDB"
    url_example = "duckdb:///:memory:"
    client: ClassVar[str] = "duckdb"
    gx_shares_session: ClassVar[bool] = True

    @classmethod
    def connect_args(cls) -> dict[str, Any]:
        return {"read_only": True}

    def column_type_names(self, warehouse: "Warehouse", source_sql: str) -> dict[str, str]:
        relation = warehouse.duckdb_connection().sql(
            f"SELECT * FROM {source_sql} AS source LIMIT 0"
        )
        return {
            column: str(kind) for column, kind in zip(relation.columns, relation.types, strict=True)
        }

    def add_gx_datasource(self, context: Any, warehouse: "Warehouse", name: str) -> Any:
        """GX on the Warehouse's own read-only connection, through a SQLAlchemy engine whose
        only connection wraps it (GX may not close it: it belongs to the Warehouse)."""
        wrapper = shared_connection(warehouse.duckdb_connection())
        return context.data_sources.add_sql(
            name, connection_string="duckdb:///:memory:", kwargs={"creator": lambda: wrapper}
        )

    # ------------------------------------------------------------------ session-private tables
    def create_temporary_table(self, name: str, sql: str) -> str:
        """A table of the session's scratch database file (:func:`attach_scratch`), not a
        ``TEMPORARY`` one: the window is read about a dozen times per run (checks, statistics,
        paired outcomes), and a temporary table is kept uncompressed in memory, so under the
        memory cap it spilled to disk uncompressed and every scan read it back from there. A
        table in a database file is stored compressed (85 MB instead of about 540 MB for a
        10M-row window) and scanned several times faster; its pages share the same cap."""
        return f"CREATE TABLE {SCRATCH_DATABASE}.main.{name} AS\n{sql}"

    def insert_into_temporary_table(self, name: str, sql: str) -> str | None:
        return f"INSERT INTO {SCRATCH_DATABASE}.main.{name}\n{sql}"

    def drop_temporary_table(self, name: str) -> str:
        return f"DROP TABLE IF EXISTS {SCRATCH_DATABASE}.main.{name}"

    def hash32(self, text_expr: str) -> str:
        # A hexadecimal string literal prefixed 0x casts to an integer.
        return f"CAST('0x' || SUBSTR(MD5({text_expr}), 1, 8) AS BIGINT)"

    def exact_sum(self, expr: str) -> str:
        """``fsum``: a compensated (Kahan-Babuska) sum, correctly rounded in practice, so the
        parallel order of additions does not show in the result."""
        return f"fsum({expr})"

    def integer_sum(self, expr: str) -> str:
        """``SUM`` of a BIGINT is a HUGEINT (128 bits) in DuckDB."""
        return f"SUM({expr})"

    def approx_count_distinct(self, expr: str) -> str | None:
        """``approx_count_distinct``: a HyperLogLog of 64 registers (DuckDB 1.1+, Ertl's
        estimator), about 13% relative standard error; one pass, memory independent of the
        number of distinct values, and the same estimate on 1 or 2 threads."""
        return f"approx_count_distinct({expr})"
