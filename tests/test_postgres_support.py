"""Tests for the real-PostgreSQL harness in tests/support/postgres.py."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from support.postgres import (
    PG_BIN_ENV,
    PostgresUnavailable,
    copy_duckdb_tables,
    duckdb_to_postgres_type,
    find_pg_bin,
)

# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def pg(postgres_url: str):
    """Engine on the session server; drops every table it saw created by the test."""
    engine = sa.create_engine(postgres_url)
    before = set(sa.inspect(engine).get_table_names())
    yield engine
    created = set(sa.inspect(engine).get_table_names()) - before
    with engine.begin() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP TABLE "{name.replace(chr(34), chr(34) * 2)}"'))
    engine.dispose()


def _pg_column_types(engine: sa.Engine, table: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns"
                    " WHERE table_schema = current_schema() AND table_name = :t"
                    " ORDER BY ordinal_position"
                ),
                {"t": table},
            )
        ]


def _pg_rows(engine: sa.Engine, table: str, order_by: str) -> list[tuple]:
    with engine.connect() as conn:
        result = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order_by}"))
        return [tuple(r) for r in result]


def _duck_column_types(path: Path, table: str) -> list[tuple[str, str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?"
            " ORDER BY column_index",
            [table],
        ).fetchall()


def _duck_rows(path: Path, table: str, order_by: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY {order_by}").fetchall()


def _nan_safe(rows: list[tuple]) -> list[tuple]:
    return [tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in r) for r in rows]


# ----------------------------------------------------------------------------------------------
# binary discovery (no server needed)
# ----------------------------------------------------------------------------------------------


def test_missing_binaries_raise_unavailable_with_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv(PG_BIN_ENV, str(tmp_path))
    with pytest.raises(PostgresUnavailable) as excinfo:
        find_pg_bin()
    message = str(excinfo.value)
    assert str(tmp_path) in message
    assert "install postgresql-15" in message


def test_unsupported_duckdb_type_is_rejected():
    assert duckdb_to_postgres_type("DECIMAL(18,3)") == "numeric(18,3)"
    with pytest.raises(TypeError, match="not supported"):
        duckdb_to_postgres_type("INTEGER[]")


# ----------------------------------------------------------------------------------------------
# server + copy (real PostgreSQL)
# ----------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_server_serves_eval_database(pg):
    with pg.connect() as conn:
        version = conn.execute(sa.text("SHOW server_version_num")).scalar_one()
        encoding = conn.execute(sa.text("SHOW server_encoding")).scalar_one()
    assert int(version) >= 150000
    assert encoding == "UTF8"


@pytest.mark.postgres
def test_copy_preserves_values_and_types(tmp_path, pg, postgres_url):
    path = tmp_path / "src.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            """
            CREATE TABLE samples (
                id INTEGER NOT NULL, big BIGINT, label VARCHAR, score DOUBLE, created_at TIMESTAMP
            )
            """
        )
        con.executemany(
            "INSERT INTO samples VALUES (?, ?, ?, ?, ?)",
            [
                (1, 2**53 + 1, "plain", 0.1, dt.datetime(2024, 2, 29, 23, 59, 59, 999999)),
                (2, None, None, None, None),
                (3, -1, "", 0.0, dt.datetime(1970, 1, 1)),
                (4, 0, 'He said "hi", then left', 1e300, dt.datetime(2000, 1, 1, 12, 0, 0, 1)),
                (5, 2**62, "O'Brien; Zürich — 東京 🙂", -1.5e-300, dt.datetime(1999, 12, 31)),
                (6, 7, "multi\nline,\r\nwith\ttab", float("inf"), dt.datetime(2030, 6, 15)),
                (7, 8, "\\N", float("-inf"), dt.datetime(2024, 1, 1, 0, 0, 0, 500000)),
                (8, 9, "\\.", float("nan"), dt.datetime(2024, 1, 1)),
                (9, 10, "C:\\path\\to", 3.141592653589793, dt.datetime(2024, 1, 1)),
                (10, 11, "NULL", 2.0**-1074, dt.datetime(2024, 1, 1)),
            ],
        )

    counts = copy_duckdb_tables(path, postgres_url, ["samples"])

    assert counts == {"samples": 10}
    assert _duck_column_types(path, "samples") == [
        ("id", "INTEGER"),
        ("big", "BIGINT"),
        ("label", "VARCHAR"),
        ("score", "DOUBLE"),
        ("created_at", "TIMESTAMP"),
    ]
    assert _pg_column_types(pg, "samples") == [
        ("id", "integer"),
        ("big", "bigint"),
        ("label", "text"),
        ("score", "double precision"),
        ("created_at", "timestamp without time zone"),
    ]
    duck_rows = _duck_rows(path, "samples", "id")
    pg_rows = _pg_rows(pg, "samples", "id")
    assert _nan_safe(pg_rows) == _nan_safe(duck_rows)
    assert pg_rows[1] == (2, None, None, None, None)  # NULLs stay NULL ...
    assert pg_rows[2][2] == ""  # ... and '' stays ''
    with pg.connect() as conn:
        nullable = conn.execute(
            sa.text(
                "SELECT is_nullable FROM information_schema.columns"
                " WHERE table_name = 'samples' AND column_name = 'id'"
            )
        ).scalar_one()
    assert nullable == "NO"


@pytest.mark.postgres
def test_copy_quotes_identifiers_and_replaces(tmp_path, pg, postgres_url):
    path = tmp_path / "odd.duckdb"
    table = 'Odd "Name"'
    quoted = '"Odd ""Name"""'
    with duckdb.connect(str(path)) as con:
        con.execute(f'CREATE TABLE {quoted} ("select" INTEGER, "Mixed Case" VARCHAR)')
        con.execute(f"INSERT INTO {quoted} VALUES (1, 'a'), (2, NULL)")
    url = postgres_url

    assert copy_duckdb_tables(path, url, [table]) == {table: 2}
    with pytest.raises(Exception, match="already exists"):
        copy_duckdb_tables(path, url, [table])
    assert copy_duckdb_tables(path, url, [table], replace=True) == {table: 2}

    assert _pg_column_types(pg, table) == [("select", "integer"), ("Mixed Case", "text")]
    assert _pg_rows(pg, quoted, '"select"') == [(1, "a"), (2, None)]


@pytest.mark.postgres
def test_copy_missing_table_reports_available(tmp_path, pg, postgres_url):
    path = tmp_path / "one.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE present AS SELECT 1 AS x")
    with pytest.raises(KeyError, match="present"):
        copy_duckdb_tables(path, postgres_url, ["absent"])


@pytest.mark.postgres
def test_copy_other_scalar_types_from_open_connection(pg, postgres_url):
    con = duckdb.connect()  # in-memory; an open connection is accepted as the source
    con.execute(
        """
        CREATE TABLE misc AS SELECT * FROM (VALUES
          (1, true, DATE '2024-03-01', 12.50::DECIMAL(10,2), 3::SMALLINT, 1.5::FLOAT,
           '\\xAA\\x00'::BLOB, UUID '12345678-1234-5678-1234-567812345678',
           INTERVAL '1 day 2 hours', TIME '12:34:56.5', TIMESTAMPTZ '2024-01-01 00:00:00+02',
           170141183460469231731687303715884105727::HUGEINT, 18446744073709551615::UBIGINT),
          (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
        ) v(id, flag, day, amount, small, ratio, raw, uid, span, clock, at_tz, huge, ubig)
        """
    )
    counts = copy_duckdb_tables(con, postgres_url, ["misc"])
    assert counts == {"misc": 2}
    assert [t for _, t in _pg_column_types(pg, "misc")] == [
        "integer",
        "boolean",
        "date",
        "numeric",
        "smallint",
        "real",
        "bytea",
        "uuid",
        "interval",
        "time without time zone",
        "timestamp with time zone",
        "numeric",
        "numeric",
    ]
    row, empty = _pg_rows(pg, "misc", "id")
    assert row == (
        1,
        True,
        dt.date(2024, 3, 1),
        Decimal("12.50"),
        3,
        1.5,
        row[6],  # memoryview, checked below
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        dt.timedelta(days=1, hours=2),
        dt.time(12, 34, 56, 500000),
        dt.datetime(2023, 12, 31, 22, 0, tzinfo=dt.UTC),
        Decimal(2**127 - 1),
        Decimal(2**64 - 1),
    )
    assert bytes(row[6]) == b"\xaa\x00"
    assert empty == (2, *([None] * 12))
    con.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_copy_200k_rows(tmp_path, pg, postgres_url):
    path = tmp_path / "big.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            """
            CREATE TABLE big AS
            SELECT range::INTEGER AS id,
                   (range * 7919)::BIGINT AS b,
                   'model_' || (range % 13) AS model,
                   'slice_' || (range % 101) AS slice,
                   CASE WHEN range % 17 = 0 THEN NULL ELSE 'lbl ' || range END AS label,
                   hash(range) / 1e19 AS score,
                   sqrt(range)::DOUBLE AS sq,
                   (range % 2)::INTEGER AS y_true,
                   (range % 3 = 0)::INTEGER AS y_pred,
                   TIMESTAMP '2024-01-01' + to_microseconds(range * 1234567) AS ts,
                   range::DOUBLE / 3 AS third,
                   CASE WHEN range % 5 = 0 THEN NULL ELSE range % 1000 END::BIGINT AS bucket,
                   md5(range::VARCHAR) AS digest,
                   'région "' || (range % 7) || '"' AS region,
                   (range % 11)::DOUBLE * 0.1 AS tenths
            FROM range(200000)
            """
        )
    counts = copy_duckdb_tables(path, postgres_url, ["big"])
    assert counts == {"big": 200_000}

    check = """
        SELECT count(*), count(label), count(bucket), sum(b), min(ts), max(ts),
               count(DISTINCT digest), sum(y_true * y_pred), max(length(region))
        FROM big
    """
    with duckdb.connect(str(path), read_only=True) as con:
        expected = con.execute(check).fetchone()
        sample = con.execute("SELECT * FROM big WHERE id % 997 = 0 ORDER BY id").fetchall()
    with pg.connect() as conn:
        actual = tuple(conn.execute(sa.text(check)).one())
    pg_sample = _pg_rows(pg, "big WHERE id % 997 = 0", "id")
    assert actual == expected
    assert pg_sample == sample  # includes exact float round-trips
