"""Throwaway real-PostgreSQL servers for tests and CI, plus a fast DuckDB -> PostgreSQL copier.

Typical use::

    with PostgresServer() as pg:             # initdb + start on a free loopback port
        copy_duckdb_tables("warehouse.duckdb", pg.url, ["predictions", "labels"])
        engine = sqlalchemy.create_engine(pg.url)

``provide_postgres_url()`` does the same but yields ``$EVAL_PIPELINES_TEST_PG_URL`` instead of
starting a server when that variable is set.  Binaries are looked up in
``$EVAL_PIPELINES_PG_BIN`` or the usual PostgreSQL 15 install locations; when none are found
``PostgresUnavailable`` is raised (the pytest fixture turns it into a skip).

As a script it wraps a command (for CI)::

    python tests/support/postgres.py [--duckdb FILE --table T ...] -- pytest -m postgres

which starts a server, optionally copies tables into it, runs the command with
``EVAL_PIPELINES_TEST_PG_URL`` set, stops the server and exits with the command's status.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import psycopg2
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg2 import sql
from sqlalchemy.engine import make_url

__all__ = [
    "PG_BIN_ENV",
    "PG_URL_ENV",
    "PostgresServer",
    "PostgresUnavailable",
    "copy_duckdb_tables",
    "duckdb_to_postgres_type",
    "find_pg_bin",
    "provide_postgres_url",
]

PG_BIN_ENV = "EVAL_PIPELINES_PG_BIN"
PG_URL_ENV = "EVAL_PIPELINES_TEST_PG_URL"

# Usual PostgreSQL 15 server binary dirs (Debian/Ubuntu, RHEL/PGDG, Homebrew, Postgres.app).
DEFAULT_PG_BIN_DIRS = (
    "/usr/lib/postgresql/15/bin",
    "/usr/pgsql-15/bin",
    "/opt/homebrew/opt/postgresql@15/bin",
    "/usr/local/opt/postgresql@15/bin",
    "/Applications/Postgres.app/Contents/Versions/15/bin",
)
_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
_SERVER_OS_USER = "postgres"  # used only when we run as root (postgres refuses to run as root)
_SUPERUSER = "postgres"
_HOST = "127.0.0.1"

# Test-only speed settings: durability is irrelevant for a throwaway cluster.
_FAST_SETTINGS = {
    "listen_addresses": _HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}

# Timeouts (seconds) for every subprocess we run.
_INITDB_TIMEOUT = 120
_START_TIMEOUT = 60
_STOP_TIMEOUT = 45


class PostgresUnavailable(RuntimeError):
    """No usable PostgreSQL server binaries (or no OS user to run them as): skip, don't fail."""


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


def find_pg_bin(bin_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the directory holding initdb/pg_ctl/postgres or raise ``PostgresUnavailable``.

    Order: explicit ``bin_dir``, then ``$EVAL_PIPELINES_PG_BIN`` (exclusively, if set), then
    ``DEFAULT_PG_BIN_DIRS``.
    """
    if bin_dir is not None:
        candidates = [str(bin_dir)]
    elif os.environ.get(PG_BIN_ENV):
        candidates = [os.environ[PG_BIN_ENV]]
    else:
        candidates = list(DEFAULT_PG_BIN_DIRS)
    for cand in candidates:
        path = Path(cand)
        if all(os.access(path / exe, os.X_OK) for exe in _REQUIRED_BINARIES):
            return path
    raise PostgresUnavailable(
        "PostgreSQL 15 server binaries not found (looked in "
        + ", ".join(candidates)
        + "); install postgresql-15 (Debian/Ubuntu: apt-get install postgresql-15; macOS: "
        f"brew install postgresql@15) to run these tests, set {PG_BIN_ENV} to the directory "
        f"containing initdb/pg_ctl/postgres, or set {PG_URL_ENV} to use an existing server"
    )


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return sock.getsockname()[1]


def _world_traversable(path: Path) -> bool:
    """True when every component of ``path`` is o+x, i.e. another OS user can reach inside."""
    path = path.resolve()
    return all(os.stat(p).st_mode & 0o001 for p in (path, *path.parents))


def _clean_env() -> dict[str, str]:
    """Environment without libpq/server variables that could redirect our commands."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port (context manager).

    Attributes (after ``start()``): ``url`` (SQLAlchemy URL, psycopg2 driver), ``dsn`` (libpq
    URI, for psycopg2.connect / psql), ``host``, ``port``, ``database``, ``base_dir``,
    ``data_dir``, ``log_path``, ``bin_dir``.  Authentication is ``trust`` for user ``postgres``.
    Everything lives in one temp dir that is removed by ``stop()``.
    """

    def __init__(
        self,
        bin_dir: str | os.PathLike[str] | None = None,
        *,
        database: str = "eval",
        start_attempts: int = 3,
    ) -> None:
        self.bin_dir = find_pg_bin(bin_dir)
        self.database = database
        self.host = _HOST
        self.port: int | None = None
        self.base_dir: Path | None = None
        self._start_attempts = start_attempts
        self._as_root = _running_as_root()
        self._os_user = None
        if self._as_root:
            import pwd

            try:
                self._os_user = pwd.getpwnam(_SERVER_OS_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root but there is no {_SERVER_OS_USER!r} OS user to run the "
                    "PostgreSQL server as (the server refuses to run as root); create that user "
                    "(the postgresql-15 package does) or run the tests as an unprivileged user"
                ) from None
        self._env = _clean_env()

    # -- public API -------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "postgres.log"

    @property
    def dsn(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"postgresql://{_SUPERUSER}@{self.host}:{self.port}/{self.database}"

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"postgresql+psycopg2://{_SUPERUSER}@{self.host}:{self.port}/{self.database}"

    def start(self) -> PostgresServer:
        if self.base_dir is not None:
            raise RuntimeError("server already started")
        atexit.register(self.stop)
        try:
            self._make_base_dir()
            self._initdb()
            self._start_server()
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (fast, then immediate, then SIGKILL) and delete the temp dir."""
        atexit.unregister(self.stop)
        base = self.base_dir
        if base is None:
            return
        try:
            pidfile = self.data_dir / "postmaster.pid"
            if pidfile.exists():
                self._shutdown(pidfile)
        finally:
            self.base_dir = self.port = None
            shutil.rmtree(base, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except (OSError, AssertionError):
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self.port}" if self.port else "stopped"
        return f"<PostgresServer {state} bin={self.bin_dir}>"

    # -- internals --------------------------------------------------------------------------

    def _cmd(self, exe: str, *args: str) -> list[str]:
        cmd = [str(self.bin_dir / exe), *args]
        if self._as_root:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            cmd = [runuser, "-u", _SERVER_OS_USER, "--", *cmd]
        return cmd

    def _run(self, exe: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        cmd = self._cmd(exe, *args)
        try:
            return subprocess.run(
                cmd,
                cwd=self.base_dir,
                env=self._env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(
                f"{exe} timed out after {timeout}s: {shlex.join(cmd)}\n"
                f"last server log lines:\n{self.log_tail()}"
            ) from exc

    def _make_base_dir(self) -> None:
        parent = Path(tempfile.gettempdir())
        if self._as_root and not _world_traversable(parent):
            parent = Path("/tmp")  # the postgres user must be able to reach the directory
        self.base_dir = Path(tempfile.mkdtemp(prefix="eval-pg-", dir=parent))
        if self._os_user is not None:
            os.chown(self.base_dir, self._os_user.pw_uid, self._os_user.pw_gid)
        os.chmod(self.base_dir, 0o700)

    def _initdb(self) -> None:
        proc = self._run(
            "initdb",
            *("-D", str(self.data_dir), "-A", "trust", "-U", _SUPERUSER),
            *("-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"),
            timeout=_INITDB_TIMEOUT,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}".rstrip()
            )

    def _start_server(self) -> None:
        assert self.base_dir is not None
        for attempt in range(1, self._start_attempts + 1):
            port = _free_port()
            opts = [f"-p {port}", f"-k {shlex.quote(str(self.base_dir))}"]
            opts += [f"-c {k}={shlex.quote(v)}" for k, v in _FAST_SETTINGS.items()]
            proc = self._run(
                "pg_ctl",
                *("-D", str(self.data_dir), "-l", str(self.log_path), "-w"),
                *("-t", str(_START_TIMEOUT - 10), "-o", " ".join(opts), "start"),
                timeout=_START_TIMEOUT,
            )
            if proc.returncode == 0:
                self.port = port
                return
            tail = self.log_tail()
            # Someone grabbed the port between _free_port() and bind: try another one.
            port_taken = "could not bind" in tail or "already in use" in tail
            if port_taken and attempt < self._start_attempts:
                continue
            raise RuntimeError(
                f"PostgreSQL failed to start (pg_ctl exit {proc.returncode}):\n"
                f"{proc.stdout}{proc.stderr}\n"
                f"last lines of {self.log_path}:\n{tail}"
            )

    def _create_database(self) -> None:
        if self.database == "postgres":
            return
        dsn = f"postgresql://{_SUPERUSER}@{self.host}:{self.port}/postgres"
        conn = psycopg2.connect(dsn, connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        finally:
            conn.close()

    def _shutdown(self, pidfile: Path) -> None:
        for mode, wait in (("fast", 30), ("immediate", 10)):
            try:
                proc = self._run(
                    "pg_ctl",
                    *("-D", str(self.data_dir), "-m", mode, "-w", "-t", str(wait), "stop"),
                    timeout=wait + 15,
                )
                if proc.returncode == 0 or not pidfile.exists():
                    return
            except RuntimeError:
                pass
        # Last resort: SIGKILL the postmaster recorded in *our* data dir.
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                os.kill(pid, 0)  # raises ProcessLookupError once it is gone
                time.sleep(0.1)


@contextlib.contextmanager
def provide_postgres_url() -> Iterator[str]:
    """Yield ``$EVAL_PIPELINES_TEST_PG_URL`` if set, else the URL of a fresh ``PostgresServer``.

    Raises ``PostgresUnavailable`` (on entry) when a server is needed but cannot be started for
    lack of binaries.
    """
    url = os.environ.get(PG_URL_ENV)
    if url:
        yield url
        return
    with PostgresServer() as server:
        yield server.url


# --------------------------------------------------------------------------------------------
# DuckDB -> PostgreSQL copy
# --------------------------------------------------------------------------------------------

_TIMESTAMP = "timestamp without time zone"
# DuckDB type -> PostgreSQL type.  Values are streamed as CSV written by Arrow, whose text forms
# PostgreSQL parses directly, except for the types in _VIA_DUCKDB_TEXT / BLOB (see below).
_TYPE_MAP = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20,0)",
    "HUGEINT": "numeric(39,0)",
    "UHUGEINT": "numeric(39,0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "JSON": "json",
    "UUID": "uuid",
    "BLOB": "bytea",
    "DATE": "date",
    "TIME": "time without time zone",
    "TIME WITH TIME ZONE": "time with time zone",
    "TIMESTAMP": _TIMESTAMP,
    "TIMESTAMP_S": _TIMESTAMP,
    "TIMESTAMP_MS": _TIMESTAMP,
    "TIMESTAMP_NS": _TIMESTAMP,
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "INTERVAL": "interval",
}
# Cast to VARCHAR inside DuckDB: Arrow has no (PostgreSQL-compatible) CSV form for these.
_VIA_DUCKDB_TEXT = {
    "HUGEINT",
    "UHUGEINT",
    "JSON",
    "UUID",
    "TIME",
    "TIME WITH TIME ZONE",
    "TIMESTAMP WITH TIME ZONE",
    "INTERVAL",
}
_DECIMAL_RE = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def duckdb_to_postgres_type(duckdb_type: str) -> str:
    """PostgreSQL column type for a DuckDB ``data_type`` string; ``TypeError`` if unsupported."""
    t = duckdb_type.strip().upper()
    if t in _TYPE_MAP:
        return _TYPE_MAP[t]
    if m := _DECIMAL_RE.fullmatch(t):
        return f"numeric({m[1]},{m[2]})"
    if t.startswith("ENUM("):
        return "text"
    raise TypeError(
        f"copy_duckdb_tables: DuckDB type {duckdb_type!r} is not supported (only scalar types; "
        "cast LIST/STRUCT/MAP/ARRAY columns to VARCHAR or JSON in a view first)"
    )


def _duck_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duck_select_expr(column: str, duckdb_type: str) -> str:
    col = _duck_ident(column)
    t = duckdb_type.strip().upper()
    if t == "BLOB":
        return f"'\\x' || hex({col})"  # PostgreSQL bytea hex input format
    if t in _VIA_DUCKDB_TEXT or t.startswith("ENUM("):
        return f"CAST({col} AS VARCHAR)"
    return col


class _ChunkReader:
    """File-like ``read(size)`` over an iterator of byte chunks (what ``copy_expert`` needs)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        while self._pos >= len(self._buf):
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buf, self._pos = chunk, 0
        end = len(self._buf) if size is None or size < 0 else self._pos + size
        out = self._buf[self._pos : end]
        self._pos += len(out)
        return out

    def readline(self, size: int = -1) -> bytes:  # pragma: no cover - not used by COPY
        return self.read(size)


def _csv_chunks(reader: pa.RecordBatchReader) -> Iterator[bytes]:
    # quoting_style="needed" (default) quotes every string value and leaves NULLs as unquoted
    # empty fields, which is exactly how PostgreSQL's CSV COPY tells '' from NULL.
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    for batch in reader:
        if batch.num_rows:
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(batch, sink, options)
            yield sink.getvalue().to_pybytes()


def _libpq_dsn(pg_url: str) -> str:
    url = make_url(pg_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def copy_duckdb_tables(
    duckdb_path: str | os.PathLike[str] | duckdb.DuckDBPyConnection,
    pg_url: str,
    tables: Sequence[str],
    *,
    replace: bool = False,
    batch_rows: int = 65_536,
) -> dict[str, int]:
    """Copy whole DuckDB tables (or views) into PostgreSQL; return ``{table: rows copied}``.

    ``duckdb_path`` is a DuckDB file (opened read-only) or an open connection (use that when
    this process already holds the file open read-write).  Tables are looked up in DuckDB's
    current schema and created under the same name in PostgreSQL's default schema with DDL
    derived from the DuckDB schema (quoted identifiers, NOT NULL kept; VARCHAR->text,
    TIMESTAMP->timestamp without time zone, DOUBLE->double precision, INTEGER->integer,
    BIGINT->bigint, ... see ``duckdb_to_postgres_type``).  Rows are streamed in Arrow batches
    as CSV through a single ``COPY ... FROM STDIN`` per table.  With ``replace=True`` existing
    PostgreSQL tables of the same name are dropped first.  All tables are copied in one
    transaction and ANALYZEd.
    """
    if isinstance(tables, str):
        raise TypeError("tables must be a list of table names, not a string")
    if isinstance(duckdb_path, duckdb.DuckDBPyConnection):
        duck_ctx: contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]
        duck_ctx = contextlib.nullcontext(duckdb_path)
    else:
        duck_ctx = contextlib.closing(duckdb.connect(str(duckdb_path), read_only=True))

    counts: dict[str, int] = {}
    with duck_ctx as duck:
        schemas = {table: _duckdb_columns(duck, table) for table in tables}
        pg = psycopg2.connect(_libpq_dsn(pg_url), connect_timeout=10)
        try:
            pg.set_client_encoding("UTF8")
            with pg, pg.cursor() as cur:  # one transaction; rolled back on error
                for table, columns in schemas.items():
                    counts[table] = _copy_table(duck, cur, table, columns, replace, batch_rows)
        finally:
            pg.close()
    return counts


def _duckdb_columns(duck: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, bool]]:
    rows = duck.execute(
        """
        SELECT column_name, data_type, is_nullable
        FROM duckdb_columns()
        WHERE database_name = current_database() AND schema_name = current_schema()
          AND table_name = ?
        ORDER BY column_index
        """,
        [table],
    ).fetchall()
    if not rows:
        available = [
            r[0]
            for r in duck.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
                " AND schema_name = current_schema() ORDER BY 1"
            ).fetchall()
        ]
        raise KeyError(f"DuckDB table {table!r} not found; available: {available}")
    for _, dtype, _ in rows:
        duckdb_to_postgres_type(dtype)  # fail before touching PostgreSQL
    return rows


def _copy_table(
    duck: duckdb.DuckDBPyConnection,
    cur: psycopg2.extensions.cursor,
    table: str,
    columns: list[tuple[str, str, bool]],
    replace: bool,
    batch_rows: int,
) -> int:
    target = sql.Identifier(table)
    col_idents = [sql.Identifier(name) for name, _, _ in columns]
    ddl_cols = [
        sql.SQL("{} {}{}").format(
            ident,
            sql.SQL(duckdb_to_postgres_type(dtype)),
            sql.SQL("" if nullable else " NOT NULL"),
        )
        for ident, (_, dtype, nullable) in zip(col_idents, columns, strict=True)
    ]
    if replace:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(ddl_cols)))

    select = "SELECT {} FROM {}".format(
        ", ".join(_duck_select_expr(name, dtype) for name, dtype, _ in columns),
        _duck_ident(table),
    )
    reader = duck.sql(select).to_arrow_reader(batch_rows)
    copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        target, sql.SQL(", ").join(col_idents)
    )
    cur.copy_expert(copy.as_string(cur), _ChunkReader(_csv_chunks(reader)), size=1 << 20)
    rows = cur.rowcount
    cur.execute(sql.SQL("ANALYZE {}").format(target))
    return rows


# --------------------------------------------------------------------------------------------
# CLI (for CI scripts)
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Start a throwaway PostgreSQL, optionally load DuckDB tables, run COMMAND "
        f"with {PG_URL_ENV} set (or print the URL and wait for Ctrl-C), then stop it.",
        usage="%(prog)s [--duckdb FILE --table NAME ...] [-- COMMAND ...]",
    )
    parser.add_argument("--duckdb", help="DuckDB file to copy tables from")
    parser.add_argument("--table", action="append", default=[], help="table to copy (repeat)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    with PostgresServer() as server:
        if args.duckdb and args.table:
            counts = copy_duckdb_tables(args.duckdb, server.url, args.table)
            print(f"copied {counts}", file=sys.stderr)
        if not command:
            print(server.url, flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
            return 0
        env = {**os.environ, PG_URL_ENV: server.url}
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
