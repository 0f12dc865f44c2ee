"""Each dialect's SQL pieces, executed for real on DuckDB, on a PostgreSQL server and on a
Spark cluster (through Spark Connect).

Oracles are Python's own: ``int`` arithmetic for the wide sums, ``hashlib.md5`` for the bucket
hash, ``math.fsum`` for the exact sum of doubles, ``datetime`` for literals and time zones.
"""

import hashlib
import math
import socket
from datetime import datetime, timedelta

import pytest
from sqlalchemy.dialects import postgresql

from eval_pipelines.dialects import DuckDB, PostgreSQL, Spark, dialect_class, dialect_for
from eval_pipelines.drift import MAX_VALUE_BINS, SURELY_MANY_DISTINCT
from eval_pipelines.errors import WarehouseError
from eval_pipelines.warehouse import Warehouse, safe_url

ENGINES = [
    "duckdb",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("spark", marks=pytest.mark.spark),
]


@pytest.fixture(params=ENGINES)
def warehouse(request):
    url = "duckdb:///:memory:"
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    if request.param == "spark":
        url = request.getfixturevalue("spark_url")
    with Warehouse(url) as connected:
        yield connected


def _values(rows: list[str], column: str = "x") -> str:
    """A derived table of one column from SQL expressions."""
    return "(" + " UNION ALL ".join(f"SELECT {row} AS {column}" for row in rows) + ") AS t"


def test_integer_sum_near_two_to_the_63_does_not_overflow(warehouse):
    big = 2**63 - 1
    rows = ["CAST(9223372036854775807 AS BIGINT)"] * 3 + ["CAST(-5 AS BIGINT)"]
    total = warehouse.dialect.integer_sum("x")
    frame = warehouse.query(
        f"SELECT CAST({total} AS VARCHAR(40)) AS total FROM {_values(rows)}", "wide sum"
    )
    assert int(frame["total"][0]) == 3 * big - 5


def test_hash32_is_the_first_32_bits_of_md5(warehouse):
    ids = ["", "a", "request-17#7", "é ü", "0123456789" * 10]
    literals = [warehouse.dialect.literal(text) for text in ids]
    expressions = ", ".join(
        f"{warehouse.dialect.hash32(text)} AS h{i}" for i, text in enumerate(literals)
    )
    frame = warehouse.query(f"SELECT {expressions}", "hash")
    expected = [int(hashlib.md5(text.encode()).hexdigest()[:8], 16) for text in ids]
    assert [int(frame[f"h{i}"][0]) for i in range(len(ids))] == expected
    assert max(expected) < 2**32


def test_exact_sum_of_doubles_is_the_correctly_rounded_sum(warehouse):
    values = [1e16, 1.0, -1e16, 1.0, 0.1, 0.2, 0.3]
    rows = [warehouse.dialect.cast_double(f"'{v!r}'") for v in values]
    total = warehouse.dialect.exact_sum("x")
    frame = warehouse.query(f"SELECT {total} AS total FROM {_values(rows)}", "exact sum")
    assert float(frame["total"][0]) == math.fsum(values)
    assert math.fsum(values) != sum(values)  # the naive order loses the ones


def test_an_approximate_distinct_count_where_the_engine_has_one(warehouse):
    """HyperLogLog on DuckDB and Spark, none on PostgreSQL (drift then counts exactly). No
    set of at most MAX_VALUE_BINS values reaches SURELY_MANY_DISTINCT: at most that many
    registers are set, the others bound the estimate (drift.py); checked on every engine
    with 20 values, and on DuckDB on 20,000 random sets."""
    d = warehouse.dialect
    estimate = d.approx_count_distinct("x")
    if isinstance(d, PostgreSQL):
        assert estimate is None
        return
    assert estimate == "approx_count_distinct(x)"  # DuckDB's and Spark SQL's name
    rows = [d.cast_double(f"'{i * 0.37!r}'") for i in range(MAX_VALUE_BINS)] * 3
    frame = warehouse.query(f"SELECT {estimate} AS e FROM {_values(rows)}", "estimate")
    assert 1 <= int(frame["e"][0]) <= SURELY_MANY_DISTINCT
    if not isinstance(d, DuckDB):
        return
    # 64 registers: with at most 20 set, alpha m^2 / z <= 0.7213 * 64^2 / 44 (Ertl's z is at
    # least the number of empty registers).
    bound = 0.7213475 * 64**2 / (64 - MAX_VALUE_BINS)
    sets = warehouse.query(
        f"""SELECT max(e) AS e FROM (
              SELECT g, {d.approx_count_distinct("v")} AS e
              FROM (SELECT g, CAST(hash(g * 1000 + k) AS DOUBLE) / 3 AS v
                    FROM range(20000) AS a(g), range({MAX_VALUE_BINS}) AS b(k)
                    WHERE k <= g % {MAX_VALUE_BINS}) AS s
              GROUP BY g) AS per_set""",
        "small sets",
    )
    assert int(sets["e"][0]) <= bound < SURELY_MANY_DISTINCT


def test_duckdbs_approximate_distinct_count_is_the_same_on_any_threads_and_order():
    """HyperLogLog registers are maxima of hashed values and merging takes maxima again, so
    the estimate does not depend on how rows are split across threads or ordered: drift's
    decision (and so its bins) is reproducible to the bit."""
    with Warehouse("duckdb:///:memory:") as warehouse:
        con = warehouse.duckdb_connection()
        count = DuckDB().approx_count_distinct("x")
        table = "(SELECT random() * 1000 AS x FROM range(400000)) AS t"
        con.execute("SELECT setseed(0.25)")
        con.execute(f"CREATE TEMPORARY TABLE rows_in_order AS SELECT x FROM {table}")
        con.execute(
            "CREATE TEMPORARY TABLE rows_shuffled AS SELECT x FROM rows_in_order ORDER BY hash(x)"
        )
        found = set()
        for threads in (1, 2, 4):
            con.execute(f"SET threads = {threads}")
            for source in ("rows_in_order", "rows_shuffled"):
                for _ in range(2):
                    found.add(con.execute(f"SELECT {count} FROM {source}").fetchone()[0])
        exact = con.execute("SELECT COUNT(DISTINCT x) FROM rows_in_order").fetchone()[0]
    assert len(found) == 1
    assert abs(found.pop() - exact) < 0.5 * exact  # an estimate (13% standard error)


def test_string_literals_read_back_as_written(warehouse):
    """Quotes, percent signs (psycopg2's parameter marker), backslashes and colons."""
    texts = ["v1", "it's", "50%", "v1%%", "a\\b", "x:y", "%(name)s", "é"]
    expressions = ", ".join(
        f"{warehouse.dialect.literal(text)} AS t{i}" for i, text in enumerate(texts)
    )
    frame = warehouse.query(f"SELECT {expressions}", "literals")
    assert [frame[f"t{i}"][0] for i in range(len(texts))] == texts


def test_timestamp_and_interval_literals(warehouse):
    d = warehouse.dialect
    start = datetime(2026, 11, 16, 23, 59, 30)
    sql = f"SELECT {d.literal(start)} + {d.interval_seconds(90)} AS later"
    later = warehouse.query(sql, "literals")["later"][0]
    assert later.to_pydatetime().replace(tzinfo=None) == start + timedelta(seconds=90)


def test_utc_timestamp_reads_an_instant_as_naive_utc(warehouse):
    d = warehouse.dialect
    column = f"CAST('2026-11-16 12:00:00+02:00' AS {d.timestamptz_type})"
    sql = (
        f"SELECT {d.utc_timestamp(column, 'timestamptz')} AS utc, "
        f"{d.utc_timestamp(d.literal(datetime(2026, 1, 1)), 'timestamp')} AS naive"
    )
    frame = warehouse.query(sql, "utc")
    assert frame["utc"][0].to_pydatetime() == datetime(2026, 11, 16, 10, 0)
    assert frame["naive"][0].to_pydatetime() == datetime(2026, 1, 1)
    assert frame["utc"][0].to_pydatetime().tzinfo is None


def test_temporary_table_lives_in_the_session_and_is_dropped(warehouse):
    assert warehouse.create_temporary_table("eval_window_test", "SELECT 1 AS x UNION ALL SELECT 2")
    assert int(warehouse.query("SELECT SUM(x) AS s FROM eval_window_test", "temp")["s"][0]) == 3
    warehouse.drop_temporary_table("eval_window_test")
    with pytest.raises(WarehouseError, match="the temp query failed"):
        warehouse.query("SELECT * FROM eval_window_test", "temp")


def test_column_type_names_and_families(warehouse):
    d = warehouse.dialect
    sql = (
        f"(SELECT CAST(1 AS BIGINT) AS id, {d.cast_double('0.5')} AS score, "
        f"CAST('a' AS VARCHAR(10)) AS name, {d.cast_text(d.literal('b'))} AS note, TRUE AS flag, "
        f"CAST('2026-01-01 00:00:00+00' AS {d.timestamptz_type}) AS at_tz, "
        f"{d.literal(datetime(2026, 1, 1))} AS at)"  # naive on every engine
    )
    names = warehouse.column_types(sql, "types")
    families = {column: warehouse.dialect.type_family(kind) for column, kind in names.items()}
    assert families == {
        "id": "integer",
        "score": "float",
        "name": "text",
        "note": "text",
        "flag": "boolean",
        "at_tz": "timestamptz",
        "at": "timestamp",
    }


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("duckdb:///w.duckdb", DuckDB),
        ("duckdb:///:memory:", DuckDB),
        ("postgresql://eval@db:5432/wh", PostgreSQL),
        ("postgresql+psycopg2://eval:secret@db/wh", PostgreSQL),
        ("sc://localhost:15002", Spark),
        ("sc://adb-1.azuredatabricks.net:443/;token=dapi1;x-databricks-cluster-id=0101", Spark),
    ],
)
def test_a_url_finds_its_dialect(url, dialect):
    assert dialect_class(url) is dialect


@pytest.mark.parametrize("url", ["mysql://root:hunter22@db/x", "sqlite:///w.db", "snowflake://a/b"])
def test_an_unsupported_engine_is_refused_in_one_sentence(url):
    with pytest.raises(WarehouseError) as raised:
        Warehouse(url)
    message = str(raised.value)
    engine = url.split(":")[0]
    assert message == (
        f"warehouse: the engine {engine!r} is not supported; use DuckDB (duckdb://...), "
        "PostgreSQL (postgresql://...) or Spark (sc://...)"
    )
    assert "hunter22" not in message


def test_a_sqlalchemy_dialect_is_wrapped_and_keeps_its_rendering():
    wrapped = dialect_for(postgresql.psycopg2.dialect())
    assert isinstance(wrapped, PostgreSQL)
    assert wrapped.quote("Score") == '"Score"'
    assert wrapped.literal("o'k") == "'o''k'"
    assert dialect_for(wrapped) is wrapped


def test_spark_quotes_and_renders_literals_without_sqlalchemy():
    """Backticks; backslash-escaped strings (Spark reads ``\\`` as an escape); doubles with the
    ``D`` suffix (a bare ``0.5`` is a DECIMAL in Spark); naive timestamps as TIMESTAMP_NTZ."""
    spark = Spark()
    assert spark.sqlalchemy is None
    assert spark.quote("Score") == "`Score`"
    assert spark.quote("a`b") == "`a``b`"
    assert spark.literal("it's") == "'it\\'s'"
    assert spark.literal("a\\b") == "'a\\\\b'"
    assert spark.literal(True) == "TRUE"
    assert spark.literal(3) == "3"
    assert spark.literal(0.5) == "0.5D"
    assert spark.literal(float("inf")) == "CAST('inf' AS DOUBLE)"
    assert spark.literal(None) == "NULL"
    assert spark.literal(datetime(2026, 11, 16)) == "TIMESTAMP_NTZ '2026-11-16 00:00:00'"


def test_grouping_gives_sql_1999_bits_on_every_engine(warehouse):
    """``GROUPING(a, b, c)``: a bit per column, ``a`` the most significant, 1 where the row's
    grouping set leaves the column out (SQL:1999; written out by hand per set below)."""
    d = warehouse.dialect
    rows = "(SELECT 'x' AS a, 'y' AS b, 'z' AS c) AS t"
    sql = (
        f"SELECT {d.grouping(['a', 'b', 'c'])} AS g, {d.grouping(['b'])} AS g_b, "
        f"COUNT(*) AS n FROM {rows} "
        "GROUP BY GROUPING SETS ((a, b, c), (a, c), (b), ())"
    )
    frame = warehouse.query(sql, "grouping")
    found = sorted((int(g), int(g_b)) for g, g_b in zip(frame["g"], frame["g_b"], strict=True))
    # (a, b, c) -> 000; (a, c) -> 010; (b) -> 101; () -> 111
    assert found == [(0b000, 0), (0b010, 1), (0b101, 0), (0b111, 1)]
    with pytest.raises(ValueError, match="at least one column"):
        d.grouping([])


def test_a_cte_hint_is_given_only_where_the_engine_takes_it(warehouse):
    d = warehouse.dialect
    hint = d.materialization_hint(False)
    sql = f"WITH w AS {hint}(SELECT 2 AS x) SELECT x FROM w"
    assert int(warehouse.query(sql, "hint")["x"][0]) == 2
    assert hint == ("" if isinstance(d, Spark) else "NOT MATERIALIZED ")
    assert d.materialization_hint(True) == ("" if isinstance(d, Spark) else "MATERIALIZED ")


@pytest.mark.parametrize(
    "text",
    [
        "DOUBLE PRECISION",
        "x AS VARCHAR",
        "w AS NOT MATERIALIZED (",
        "GROUPING(a, b)",
        "TIMESTAMP WITH TIME ZONE",
        "it's \\ 50%",
    ],
)
def test_a_literal_and_an_identifier_named_like_sql_reach_the_engine_as_written(warehouse, text):
    """Nothing rewrites the SQL text once rendered: a string literal or a column named like a
    type, a hint or GROUPING reads back as written (Spark's old regex rewrite changed them)."""
    d = warehouse.dialect
    sql = (
        f"SELECT {d.quote(text)} AS value, {d.literal(text)} AS named "
        f"FROM (SELECT {d.literal(text)} AS {d.quote(text)}) AS t"
    )
    frame = warehouse.query(sql, "as written")
    assert frame["value"][0] == text
    assert frame["named"][0] == text


@pytest.mark.parametrize(
    "url",
    [
        "sc://adb-1.azuredatabricks.net:443/;token=dapiSECRET42;x-databricks-cluster-id=0101",
        "sc://spark.example.com:15002/;user_id=eval;token=dapiSECRET42",
        "sc://spark.example.com:15002/;TOKEN = dapiSECRET42",
    ],
)
def test_a_spark_connect_token_never_leaks(url):
    shown = safe_url(url)
    assert "dapiSECRET42" not in shown and "SECRET42" not in shown
    assert "***" in shown and shown.startswith("sc://")
    warehouse = Warehouse(url)
    assert "SECRET42" not in warehouse.safe_url
    assert warehouse._scrub(RuntimeError(f"failed on {url}")).count("SECRET42") == 0


def test_a_databricks_url_keeps_its_cluster_id_when_shown():
    shown = safe_url("sc://w:443/;token=dapiX;x-databricks-cluster-id=0101-abc")
    assert shown == "sc://w:443/;token=***;x-databricks-cluster-id=0101-abc"


def test_a_spark_query_error_is_one_sentence_naming_its_purpose(warehouse):
    """Spark's errors carry the query and the JVM stack: only the first line is kept."""
    with pytest.raises(WarehouseError) as raised:
        warehouse.query("SELECT * FROM no_such_table_anywhere", "probe")
    message = str(raised.value)
    assert message.startswith(f"warehouse {warehouse.safe_url}: the probe query failed: ")
    assert "\n" not in message and "JVM" not in message and "\tat " not in message


def test_an_unreachable_spark_server_is_one_sentence_without_the_token(monkeypatch):
    """Spark Connect's retries are bounded by ``$EVAL_SPARK_CONNECT_RETRIES`` (0: at once)."""
    pytest.importorskip("pyspark.sql.connect.session")
    monkeypatch.setenv("EVAL_SPARK_CONNECT_RETRIES", "0")
    with socket.socket() as closed:  # a loopback port that nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"sc://127.0.0.1:{port}/;token=dapiSECRET42;x-databricks-cluster-id=0101"
    with Warehouse(url) as warehouse, pytest.raises(WarehouseError) as raised:
        warehouse.query("SELECT 1", "probe")
    message = str(raised.value)
    assert message.startswith(
        f"warehouse sc://127.0.0.1:{port}/;token=***;x-databricks-cluster-id=0101: "
        "cannot open a Spark Connect session"
    )
    assert "SECRET42" not in message and "\n" not in message
