"""What every SQL dialect provides: the engine asks its dialect object, never a name.

The engine's SQL is written once, in ``sql/*.sql`` and :mod:`eval_pipelines.sqlbuild`, in the
SQL both DuckDB and PostgreSQL accept. The few places where engines disagree are methods of
:class:`SqlDialect`, one subclass per engine (Evidently's ``add_stattest_impl(stattest,
engine, impl)`` pattern: the implementation is registered with the engine, the caller never
branches on it):

* SQL text: the resample-bucket hash, exact sums (of doubles, and of integers without
  overflow), an approximate distinct count where the engine has one, the UTC reading of a
  timestamp column per type family, timestamp and interval literals, type names (a double,
  text, a timestamp with time zone), a CTE's planner hint, SQL's ``GROUPING(a, b)``, and how
  a session-private temporary relation is created and dropped. The builder renders these
  where it writes the SQL (templates take ``{double}``, ``{text}`` and
  ``{not_materialized}``), so each engine receives SQL written for it and no SQL text is
  rewritten afterwards;
* the connection: SQLAlchemy ``connect_args``, which client runs the queries (a SQLAlchemy
  connection, DuckDB's own client, or a Spark Connect session),
  how column types are read without a row, and the type family of each type name;
* Great Expectations: how its SQL data source is built, and whether it shares our session.

A dialect wraps the SQLAlchemy dialect of the warehouse's engine for quoting identifiers and
rendering string literals, so the rendered text is exactly what SQLAlchemy would render.
"""

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Dialect

if TYPE_CHECKING:
    from eval_pipelines.warehouse import Warehouse

# Type name -> family (a column's family decides how it is read: see column_types.py), for
# DuckDB's and PostgreSQL's spellings. One table serves both: no name means one thing on one
# and another on the other (``timestamp`` is naive on both). An engine whose names mean
# something else sets its own ``type_families`` (Spark's ``timestamp`` has a time zone).
TYPE_FAMILIES = {
    "integer": re.compile(
        r"^(u?(tiny|small|big|huge)?int(eger)?|u?int\d+|hugeint|uhugeint|smallserial|serial|"
        r"bigserial|long|short)$"
    ),
    "decimal": re.compile(r"^(decimal|numeric)(\(.*\))?$"),
    "float": re.compile(r"^(float\d?|double( precision)?|real)$"),
    "text": re.compile(
        r"^(varchar|text|string|char|bpchar|character( varying)?|nvarchar)(\(.*\))?$"
    ),
    # Every precision, with and without time zone (DuckDB: TIMESTAMP_S/_MS/_NS, TIMESTAMPTZ,
    # TIMESTAMPTZ_NS, TIMESTAMP WITH TIME ZONE; PostgreSQL: timestamp(p) with[out] time zone).
    "timestamptz": re.compile(
        r"^(timestamptz(_s|_ms|_us|_ns)?(\(\d\))?|timestamp(_s|_ms|_us|_ns)?(\(\d\))? "
        r"with time zone)$"
    ),
    "timestamp": re.compile(
        r"^(timestamp(_s|_ms|_us|_ns)?(\(\d\))?( without time zone)?|date|datetime)$"
    ),
    "uuid": re.compile(r"^uuid$"),
    "boolean": re.compile(r"^bool(ean)?$"),
}


def type_family(type_name: str, families: dict[str, re.Pattern[str]] = TYPE_FAMILIES) -> str | None:
    """``integer``, ``decimal``, ``float``, ``text``, ``timestamp`` (naive), ``timestamptz``,
    ``uuid``, ``boolean``; ``None`` for anything else (DuckDB's and PostgreSQL's names)."""
    name = " ".join(type_name.strip().lower().split())
    for family, pattern in families.items():
        if pattern.match(name):
            return family
    return None


class SqlDialect(ABC):
    """One SQL engine's spelling of the engine's few engine-specific pieces.

    Subclasses set the class attributes and implement the abstract methods: the pieces known
    to differ between engines, which a new engine must therefore state (a Spark class that
    forgot ``integer_sum`` would overflow silently). The SQL that is standard and the same on
    every supported engine is implemented once, here, and overridden where an engine differs.
    """

    # The SQLAlchemy backend name (``URL.get_backend_name()``), e.g. ``duckdb``.
    name: ClassVar[str]
    # How users and messages call the engine, and a URL that connects to it.
    title: ClassVar[str]
    url_example: ClassVar[str]
    # Which client the Warehouse runs queries on: ``sqlalchemy`` (one SQLAlchemy connection),
    # ``duckdb`` (DuckDB's own Python client, results as Arrow) or ``spark-connect`` (a Spark
    # Connect session, results as Arrow; the engine has no SQLAlchemy dialect).
    client: ClassVar[str] = "sqlalchemy"
    # True: Great Expectations runs on our own session, so it sees the temporary window table.
    gx_shares_session: ClassVar[bool] = False
    # The engine's type names (lower case, single spaces) -> family; first match wins.
    type_families: ClassVar[dict[str, re.Pattern[str]]] = TYPE_FAMILIES
    # Type names of the engine's SQL (DuckDB and PostgreSQL share them): a 64-bit float,
    # text of any length, and an instant (a timestamp with time zone).
    double_type: ClassVar[str] = "DOUBLE PRECISION"
    text_type: ClassVar[str] = "VARCHAR"
    timestamptz_type: ClassVar[str] = "TIMESTAMP WITH TIME ZONE"

    def __init__(self, sqlalchemy_dialect: Dialect | None = None) -> None:
        self.sqlalchemy = sqlalchemy_dialect or self.default_sqlalchemy_dialect()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # ------------------------------------------------------------------ connection
    @classmethod
    def default_sqlalchemy_dialect(cls) -> Dialect:
        """A SQLAlchemy dialect for rendering, when no engine has been created."""
        return sa.create_engine(cls.url_example).dialect

    @classmethod
    def resolve_url(cls, url: URL) -> URL:
        """The URL SQLAlchemy should open (a driver chosen, for example)."""
        return url

    @classmethod
    def connect_args(cls) -> dict[str, Any]:
        """SQLAlchemy ``connect_args`` of the engine's read-only session."""
        return {}

    @abstractmethod
    def column_type_names(self, warehouse: "Warehouse", source_sql: str) -> dict[str, str]:
        """Column name -> the engine's type name for ``SELECT * FROM source_sql`` without
        reading a row."""

    def type_family(self, type_name: str) -> str | None:
        """The family of one of this engine's type names (see :data:`TYPE_FAMILIES`)."""
        return type_family(type_name, self.type_families)

    @abstractmethod
    def add_gx_datasource(self, context: Any, warehouse: "Warehouse", name: str) -> Any:
        """A Great Expectations SQL data source on ``warehouse`` (GX already imported)."""

    def gx_batch(self, source: Any, warehouse: "Warehouse", asset: str, query: str) -> Any:
        """A GX batch of ``query``'s rows from ``source`` (a query asset of a SQL source)."""
        return (
            source.add_query_asset(asset, query=query)
            .add_batch_definition_whole_table("window")
            .get_batch()
        )

    # ------------------------------------------------------------------ quoting and literals
    def quote(self, name: str) -> str:
        """An identifier, quoted when it needs to be."""
        return self.sqlalchemy.identifier_preparer.quote(name)

    def literal(self, value: object) -> str:
        """A literal of a datetime (naive, UTC), float, string, integer or boolean."""
        if isinstance(value, datetime):
            return self.timestamp_literal(value)
        if isinstance(value, float):
            return repr(value)
        clause = sa.literal(value)
        return str(clause.compile(dialect=self.sqlalchemy, compile_kwargs={"literal_binds": True}))

    def timestamp_literal(self, value: datetime) -> str:
        """A naive timestamp (meaning UTC), to the second, with no offset."""
        return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S')}'"

    def interval_seconds(self, seconds: int) -> str:
        """An interval of ``seconds`` seconds, to add to a timestamp."""
        return f"INTERVAL '{int(seconds)} seconds'"

    # ------------------------------------------------------------------ types and clauses
    def cast_double(self, expr: str) -> str:
        """``expr`` as a 64-bit float."""
        return f"CAST({expr} AS {self.double_type})"

    def cast_text(self, expr: str) -> str:
        """``expr`` as text (no length limit)."""
        return f"CAST({expr} AS {self.text_type})"

    def materialization_hint(self, materialized: bool) -> str:
        """A CTE's planner hint, put between ``name AS`` and ``(``, with its trailing space:
        ``NOT MATERIALIZED `` (inline the CTE where it is read) or ``MATERIALIZED `` (compute
        it once); DuckDB and PostgreSQL 12+ take both."""
        return "MATERIALIZED " if materialized else "NOT MATERIALIZED "

    def grouping(self, columns: Sequence[str]) -> str:
        """SQL:1999 ``GROUPING(a, b, ...)`` of grouping columns (at least one): an integer
        with a bit per column, ``a`` the most significant, 1 where the row's grouping set does
        not group by it. See :func:`eval_pipelines.sqlbuild.grouping_mask`."""
        if not columns:
            raise ValueError("GROUPING takes at least one column")
        return f"GROUPING({', '.join(columns)})"

    # ------------------------------------------------------------------ typed columns
    def utc_timestamp(self, column_expr: str, family: str | None) -> str:
        """``column_expr`` of type family ``family`` as a naive timestamp meaning UTC: a
        timestamp with time zone converted, a naive timestamp or date as it is."""
        if family == "timestamptz":
            return f"({column_expr} AT TIME ZONE 'UTC')"
        return column_expr

    # ------------------------------------------------------------------ expressions
    @abstractmethod
    def hash32(self, text_expr: str) -> str:
        """The first 32 bits of ``md5(text_expr)`` (hex digits) as a BIGINT in [0, 2^32)."""

    @abstractmethod
    def exact_sum(self, expr: str) -> str:
        """An aggregate: the sum of a DOUBLE expression that does not depend on the order rows
        are added in, as a DOUBLE."""

    @abstractmethod
    def integer_sum(self, expr: str) -> str:
        """An aggregate: the sum of a BIGINT expression, widened so that it cannot overflow
        (an exact integer type wider than 64 bits)."""

    @abstractmethod
    def approx_count_distinct(self, expr: str) -> str | None:
        """An aggregate: a HyperLogLog estimate of ``COUNT(DISTINCT expr)``, or ``None`` where
        the engine has none (the caller then counts exactly).

        Used only where the estimate decides between an exact count and "far more than a few
        values" (:data:`eval_pipelines.drift.SURELY_MANY_DISTINCT`), so it must be
        deterministic: the same rows give the same estimate whatever the order and the number
        of threads (an HLL is a per-register maximum of hashed values, and merging sketches
        takes the maximum again, which is order-free)."""

    # ------------------------------------------------------------------ session-private tables
    def create_temporary_table(self, name: str, sql: str) -> str:
        """The statement that stores ``sql``'s rows in a relation private to this session."""
        return f"CREATE TEMPORARY TABLE {name} AS\n{sql}"

    def create_temporary_view(self, name: str, sql: str) -> str | None:
        """A second choice where the temporary table is refused (``None``: none)."""
        return None

    def insert_into_temporary_table(self, name: str, sql: str) -> str | None:
        """The statement that appends ``sql``'s rows to a session relation made by
        :meth:`create_temporary_table` (``None``: it cannot take more rows)."""
        return f"INSERT INTO {name}\n{sql}"

    def random(self) -> str:
        """A uniform random number in [0, 1), drawn per row."""
        return "random()"

    def drop_temporary_table(self, name: str) -> str:
        return f"DROP TABLE IF EXISTS {name}"
