"""PostgreSQL (tested for real with PostgreSQL 15 and psycopg2)."""

import importlib.util
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from eval_pipelines.dialects.base import SqlDialect

if TYPE_CHECKING:
    from eval_pipelines.warehouse import Warehouse


class PostgreSQL(SqlDialect):
    """PostgreSQL through SQLAlchemy and psycopg2.

    The session runs with ``timezone=UTC`` (naive timestamps mean UTC, and so must the
    session's for TIMESTAMPTZ columns) in one transaction that is never committed. Great
    Expectations opens its own connection (read-only by default), so it cannot see the
    session's temporary window table and validates the window join as a query.
    """

    name = "postgresql"
    title = "PostgreSQL"
    url_example = "postgresql+psycopg2://user@host:5432/database"

    @classmethod
    def resolve_url(cls, url: URL) -> URL:
        """``postgresql://`` with the PostgreSQL driver that is installed.

        SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3; this project ships psycopg2
        (``psycopg2-binary``), so without this a plain URL fails with "No module named
        'psycopg'".
        """
        if url.drivername != "postgresql":
            return url
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
            return url.set(drivername="postgresql+psycopg2")
        return url

    @classmethod
    def connect_args(cls) -> dict[str, Any]:
        # Naive timestamps mean UTC; so must the session's (TIMESTAMPTZ columns).
        return {"options": "-c timezone=UTC"}

    def column_type_names(self, warehouse: "Warehouse", source_sql: str) -> dict[str, str]:
        """From the result's type oids, named by ``format_type`` (``double precision``,
        ``timestamp with time zone``)."""
        connection = warehouse.sqlalchemy_connection()
        sql = f"SELECT * FROM {source_sql} AS source LIMIT 0"
        description = connection.execute(sa.text(sql.replace(":", r"\:"))).cursor.description
        oids = ", ".join(str(int(d[1])) for d in description) or "NULL"
        names = dict(
            connection.execute(
                sa.text(
                    "SELECT CAST(oid AS INTEGER), format_type(oid, NULL) FROM pg_type "
                    f"WHERE oid IN ({oids})"
                )
            ).all()
        )
        return {d[0]: names.get(int(d[1]), "unknown") for d in description}

    def add_gx_datasource(self, context: Any, warehouse: "Warehouse", name: str) -> Any:
        """GX natively, on its own connection whose transactions are read-only."""
        url = warehouse.url.render_as_string(hide_password=False)
        kwargs = {"connect_args": {"options": "-c default_transaction_read_only=on"}}
        return context.data_sources.add_sql(name, connection_string=url, kwargs=kwargs)

    def literal(self, value: object) -> str:
        """As the base class, but a string is quoted without doubling ``%``: SQLAlchemy's
        psycopg2 dialect doubles it for parameter interpolation, and the engine's SQL runs
        without parameters, so ``'v1%'`` would have been compared as ``'v1%%'``."""
        if isinstance(value, str):
            return "'" + value.replace("'", "''") + "'"
        return super().literal(value)

    def hash32(self, text_expr: str) -> str:
        # 'x' || hex digits casts to a bit string, and 32 bits cast to an integer.
        return f"CAST(CAST('x' || SUBSTR(MD5({text_expr}), 1, 8) AS BIT(32)) AS BIGINT)"

    def exact_sum(self, expr: str) -> str:
        """The sum in NUMERIC (exact), converted to a double once at the end."""
        return f"CAST(SUM(CAST({expr} AS NUMERIC)) AS DOUBLE PRECISION)"

    def integer_sum(self, expr: str) -> str:
        """``SUM`` of a BIGINT is a NUMERIC (arbitrary precision) in PostgreSQL."""
        return f"SUM({expr})"

    def approx_count_distinct(self, expr: str) -> str | None:
        """None: core PostgreSQL has no HyperLogLog (the ``hll`` and TimescaleDB extensions
        are not assumed), so the caller keeps the exact ``COUNT(DISTINCT)``."""
        return None
