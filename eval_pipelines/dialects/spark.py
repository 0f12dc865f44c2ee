"""Spark SQL through Spark Connect (tested for real with Spark 4.3 on a standalone cluster).

A warehouse URL ``sc://host:port`` (Spark Connect's own URL; Databricks adds
``/;token=...;x-databricks-cluster-id=...``) names a Spark Connect server; the predictions and
labels are tables or views of its catalog. There is no SQLAlchemy engine: queries go through
a Spark Connect session (``SparkSession.builder.remote(url)``) and results come back as Arrow.

What Spark spells differently from DuckDB and PostgreSQL (each checked row by row against
DuckDB, see ``tests/test_dialects.py`` and ``tests/test_spark_parity.py``):

* ``SUM`` of a BIGINT stays BIGINT and raises ARITHMETIC_OVERFLOW under ANSI mode (on by
  default), where DuckDB widens to HUGEINT: :meth:`Spark.integer_sum` sums in
  ``DECIMAL(38,0)``;
* ``md5`` returns hex text and there is no hex-to-integer cast: ``conv(hex, 16, 10)``;
* string literals take backslash escapes (``'a\\\\b'`` is ``a\\b``): :meth:`Spark.literal`
  escapes them; identifiers are quoted with backticks;
* ``TIMESTAMP`` means an instant (with local time zone) and ``TIMESTAMP_NTZ`` a naive one:
  literals are ``TIMESTAMP_NTZ '...'``, an instant column is read as ``CAST(x AS
  TIMESTAMP_NTZ)`` in the session time zone, which the Warehouse sets to UTC;
* there are no temporary tables: ``CACHE TABLE t AS ...`` (a session-private view whose rows
  are computed once and kept by the executors), or a ``TEMPORARY VIEW`` where caching is
  refused;
* ``DOUBLE PRECISION`` and a ``VARCHAR`` without a length are not Spark types, nor is
  ``TIMESTAMP WITH TIME ZONE`` (Spark's ``TIMESTAMP`` is the instant), a CTE takes no
  ``[NOT] MATERIALIZED`` hint, and Spark's ``grouping`` takes one column: the builder asks
  the dialect for each where it writes the SQL (:attr:`Spark.double_type` ``DOUBLE``,
  :attr:`Spark.text_type` ``STRING``, no :meth:`Spark.materialization_hint`,
  :meth:`Spark.grouping` spelling SQL's ``GROUPING(a, b)`` as ``grouping(a) * 2 +
  grouping(b)``); no SQL text is rewritten, so a string literal or a column named like a
  keyword reaches Spark as written.

The shared SQL already avoids the other traps: ``CAST(double AS INTEGER)`` truncates in Spark
and rounds in DuckDB, so it always casts ``FLOOR(x)``; ``LN(0)`` is NULL in Spark, so logs
take ``GREATEST(x, eps)``; ``1/0`` raises under ANSI, so divisors are ``NULLIF(d, 0)``.
"""

import logging
import os
import re
import warnings
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from eval_pipelines.dialects.base import SqlDialect

if TYPE_CHECKING:
    from eval_pipelines.warehouse import Warehouse

# Spark's type names as ``DataType.simpleString()`` spells them -> family. ``timestamp`` is an
# instant (TIMESTAMP WITH LOCAL TIME ZONE); ``timestamp_ntz`` is naive.
SPARK_TYPE_FAMILIES = {
    "integer": re.compile(r"^(tinyint|smallint|int|integer|bigint|byte|short|long)$"),
    "decimal": re.compile(r"^(decimal|numeric|dec)(\(.*\))?$"),
    "float": re.compile(r"^(float|double|real)$"),
    "text": re.compile(r"^(string|varchar|char)(\(.*\))?$"),
    "timestamptz": re.compile(r"^(timestamp|timestamp_ltz)$"),
    "timestamp": re.compile(r"^(timestamp_ntz|date)$"),
    "boolean": re.compile(r"^boolean$"),
}

# Spark Connect retries an unavailable server for about 10 minutes (its DefaultPolicy: 15
# retries, backoff x4 up to 60 s), which rides out a Databricks cluster starting; fewer here.
RETRIES_ENV = "EVAL_SPARK_CONNECT_RETRIES"

# pyspark logs every failed query's server message (with the JVM stack) as JSON on stderr
# before raising it; the Warehouse turns the exception into one sentence instead.
_PYSPARK_ERROR_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


def spark_session(url: str) -> Any:
    """A new Spark Connect session on ``url`` (its own temporary views), in UTC, and the
    thread's active session.

    Active, because Great Expectations' Spark engine takes ``getOrCreate()``'s session: the
    active one, else the process's first (perhaps stopped, or another Warehouse's), else a
    local classic Spark it would start itself. ``stop()`` clears it again.
    """
    from pyspark.logger import PySparkLogger
    from pyspark.sql.connect.session import SparkSession

    for name in _PYSPARK_ERROR_LOGGERS:
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
    # The exception that follows says it in our one sentence.
    warnings.filterwarnings("ignore", message=r"\[RETRIES_EXCEEDED\]")
    session = SparkSession.builder.remote(url).create()
    retries = os.environ.get(RETRIES_ENV, "").strip()
    if retries:
        from pyspark.sql.connect.client.retries import DefaultPolicy

        session.client.set_retry_policies([DefaultPolicy(max_retries=int(retries))])
    session.conf.set("spark.sql.session.timeZone", "UTC")
    SparkSession._active_session.session = session  # create() sets it only when unset
    return session


class Spark(SqlDialect):
    """Spark SQL 4.x over Spark Connect (``sc://host:port``), results as Arrow.

    Great Expectations validates a DataFrame of the same session (its Spark engine), so it
    sees the cached window view.
    """

    name = "sc"
    title = "Spark"
    url_example = "sc://localhost:15002"
    client: ClassVar[str] = "spark-connect"
    gx_shares_session: ClassVar[bool] = True
    type_families: ClassVar[dict[str, re.Pattern[str]]] = SPARK_TYPE_FAMILIES
    # Spark's names: ``VARCHAR`` must have a length, ``TIMESTAMP`` is an instant.
    double_type: ClassVar[str] = "DOUBLE"
    text_type: ClassVar[str] = "STRING"
    timestamptz_type: ClassVar[str] = "TIMESTAMP"

    def __init__(self, sqlalchemy_dialect: Any = None) -> None:
        self.sqlalchemy = None  # no SQLAlchemy dialect: quoting and literals are our own

    # ------------------------------------------------------------------ connection
    def column_type_names(self, warehouse: "Warehouse", source_sql: str) -> dict[str, str]:
        """From the analysed schema (no job runs): ``bigint``, ``double``, ``timestamp_ntz``."""
        frame = warehouse.spark_session().sql(f"SELECT * FROM {source_sql} AS source LIMIT 0")
        return {field.name: field.dataType.simpleString() for field in frame.schema.fields}

    def add_gx_datasource(self, context: Any, warehouse: "Warehouse", name: str) -> Any:
        """GX's Spark data source on the Warehouse's own session (so it sees the cached window
        view); batches are DataFrames of that session."""
        session = warehouse.spark_session()  # the active session: GX's getOrCreate() takes it
        source = context.data_sources.add_spark(name)
        source._spark = session  # what GX's execution engine is built with
        return source

    def gx_batch(self, source: Any, warehouse: "Warehouse", asset: str, query: str) -> Any:
        """A GX batch of ``query`` as a Spark Connect DataFrame of our session."""
        frame = warehouse.spark_session().sql(query)
        definition = source.add_dataframe_asset(asset).add_batch_definition_whole_dataframe(
            "window"
        )
        return definition.get_batch(batch_parameters={"dataframe": frame})

    # ------------------------------------------------------------------ quoting and literals
    def quote(self, name: str) -> str:
        """Always backticks (a backtick inside is doubled)."""
        return "`" + name.replace("`", "``") + "`"

    def literal(self, value: object) -> str:
        """Rendered here (no SQLAlchemy): ``'it\\'s'``, ``TRUE``, ``3``, ``0.5D``,
        ``TIMESTAMP_NTZ '2026-11-16 00:00:00'``, ``NULL``."""
        if value is None:
            return "NULL"
        if isinstance(value, datetime):
            return self.timestamp_literal(value)
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            # A bare 0.5 is a DECIMAL literal in Spark; the D suffix makes it a DOUBLE.
            text = repr(value)
            return f"{text}D" if text not in ("inf", "-inf", "nan") else f"CAST('{text}' AS DOUBLE)"
        if isinstance(value, str):
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        raise TypeError(f"no Spark literal for {type(value).__name__}")

    def timestamp_literal(self, value: datetime) -> str:
        """A naive ``TIMESTAMP_NTZ`` (Spark's ``TIMESTAMP`` would be an instant)."""
        return f"TIMESTAMP_NTZ '{value.strftime('%Y-%m-%d %H:%M:%S')}'"

    # ------------------------------------------------------------------ types and clauses
    def materialization_hint(self, materialized: bool) -> str:
        """None: a CTE takes no hint in Spark, whose optimizer decides on its own."""
        return ""

    def grouping(self, columns: Sequence[str]) -> str:
        """SQL:1999 ``GROUPING(a, b, c)`` (a bit per column, 1 where the row is not grouped
        by it, ``a`` most significant) from Spark's one-column ``grouping``. Spark's
        ``grouping_id`` is not it: it must name every grouping column of the query, in
        order."""
        if not columns:
            raise ValueError("GROUPING takes at least one column")
        if len(columns) == 1:
            return f"CAST(grouping({columns[0]}) AS INT)"
        last = len(columns) - 1
        terms = [
            f"CAST(grouping({column}) AS BIGINT) * {2 ** (last - i)}"
            for i, column in enumerate(columns)
        ]
        return "(" + " + ".join(terms) + ")"

    # ------------------------------------------------------------------ typed columns
    def utc_timestamp(self, column_expr: str, family: str | None) -> str:
        """An instant as its wall clock in the session time zone (UTC, set by the Warehouse)."""
        if family == "timestamptz":
            return f"CAST({column_expr} AS TIMESTAMP_NTZ)"
        return column_expr

    # ------------------------------------------------------------------ expressions
    def hash32(self, text_expr: str) -> str:
        # md5 is hex text; conv reads 8 hex digits as a decimal string, cast to BIGINT.
        return f"CAST(conv(substr(md5({text_expr}), 1, 8), 16, 10) AS BIGINT)"

    def exact_sum(self, expr: str) -> str:
        """The sum of the doubles rounded to 1e-12, in ``DECIMAL(38,12)`` (exact: order free),
        as a DOUBLE.

        Spark has no compensated sum; ``DECIMAL(38,12)`` holds the doubles the engine sums
        (bounded statistics and label sums below 1e26) to 12 decimals. DuckDB's ``fsum`` is
        exact to the last bit; the difference is at most 1e-12 per row before rounding.
        """
        return f"CAST(SUM(CAST({expr} AS DECIMAL(38,12))) AS DOUBLE)"

    def integer_sum(self, expr: str) -> str:
        """``SUM`` in ``DECIMAL(38,0)``: Spark's ``SUM`` of a BIGINT is a BIGINT that raises
        ARITHMETIC_OVERFLOW under ANSI mode."""
        return f"SUM(CAST({expr} AS DECIMAL(38,0)))"

    def approx_count_distinct(self, expr: str) -> str | None:
        """Spark SQL's ``approx_count_distinct`` (HyperLogLog++, default relative standard
        deviation 0.05: 512 registers)."""
        return f"approx_count_distinct({expr})"

    # ------------------------------------------------------------------ session-private tables
    def create_temporary_table(self, name: str, sql: str) -> str:
        """``CACHE TABLE``: a temporary view of this session whose rows are computed once."""
        return f"CACHE TABLE {name} AS\n{sql}"

    def create_temporary_view(self, name: str, sql: str) -> str | None:
        """Where caching is refused (Databricks serverless): a plain temporary view."""
        return f"CREATE OR REPLACE TEMPORARY VIEW {name} AS\n{sql}"

    def insert_into_temporary_table(self, name: str, sql: str) -> str | None:
        return None  # a cached view takes no more rows (Spark's joins spill without parts)

    def random(self) -> str:
        return "rand()"

    def drop_temporary_table(self, name: str) -> str:
        return f"DROP VIEW IF EXISTS {name}"
