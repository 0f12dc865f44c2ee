"""What each warehouse query cost (eval_pipelines/query_cost.py), checked against tables whose
sizes the test sets, a demo evaluation's run.json and queries.json, and a real PostgreSQL.

The oracles are the tables' own row counts (chosen here, or counted on a separate DuckDB
connection), never the numbers our code computed.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from eval_pipelines.artifacts import write_artifacts
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.errors import WarehouseError
from eval_pipelines.pipeline import evaluate
from eval_pipelines.query_cost import PROFILING_ENV, QueryCost, cost_totals
from eval_pipelines.report_model import cost_line
from eval_pipelines.spec import load_spec
from eval_pipelines.warehouse import Warehouse

WEEK = "2026-11-16"
SPEC_PATH = Path(__file__).resolve().parent.parent / "evals" / "fraud_detector.yaml"
ROWS_A = 5_000  # one row group (DuckDB's hold 122,880 rows): no scan skips a part of it
ROWS_B = 300
ENTRY_KEYS = {"purpose", "seconds", "rows_returned", "rows_scanned", "bytes_scanned", "engine"}


@pytest.fixture
def sized(tmp_path: Path) -> str:
    """A DuckDB file with two tables of known sizes; k runs 0 .. ROWS_A - 1."""
    path = tmp_path / "sized.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE a AS SELECT CAST(range AS INTEGER) AS k, range * 0.5 AS x, "
            f"CAST(range % 7 AS VARCHAR) AS s FROM range({ROWS_A})"
        )
        con.execute(f"CREATE TABLE b AS SELECT range * 2.0 AS x FROM range({ROWS_B})")
    return f"duckdb:///{path}"


def test_duckdb_reports_the_rows_each_query_scanned(sized):
    with Warehouse(sized) as warehouse:
        warehouse.query("SELECT SUM(x) AS total FROM a", "sum of a")
        warehouse.query_arrow("SELECT * FROM b", "all of b")
        warehouse.query_arrow("SELECT x FROM a UNION ALL SELECT x FROM b", "a and b")
        # Every grouping set comes from one scan of the table.
        warehouse.query_arrow(
            "SELECT k % 3 AS g, s, COUNT(*) AS n FROM a GROUP BY GROUPING SETS ((g), (s), ())",
            "grouping sets",
        )
        assert warehouse.create_temporary_table("w", "SELECT * FROM a WHERE k < 1000")
        warehouse.query_arrow("SELECT k FROM w", "the temporary table")
        warehouse.column_types("a", "types of a")
        log = list(warehouse.query_log)

    by_purpose = {entry.purpose: entry for entry in log}
    assert [e.purpose for e in log] == [
        "sum of a",
        "all of b",
        "a and b",
        "grouping sets",
        "temporary table w",
        "the temporary table",
        "types of a",
    ]
    expected = {  # purpose: (rows returned, rows scanned)
        "sum of a": (1, ROWS_A),
        "all of b": (ROWS_B, ROWS_B),
        "a and b": (ROWS_A + ROWS_B, ROWS_A + ROWS_B),
        "grouping sets": (3 + 7 + 1, ROWS_A),
        "temporary table w": (0, ROWS_A),  # the rows stay in DuckDB
        "the temporary table": (1000, 1000),
        "types of a": (0, 0),  # bound, never run
    }
    for purpose, (returned, scanned) in expected.items():
        entry = by_purpose[purpose]
        assert (entry.rows_returned, entry.rows_scanned) == (returned, scanned), purpose
        assert entry.engine == "duckdb" and entry.seconds >= 0
    # Bytes come from the database file: the first read of a is cold; the session table's
    # pages are still in memory.
    assert by_purpose["sum of a"].bytes_scanned > 0
    assert by_purpose["the temporary table"].bytes_scanned == 0


def test_session_tables_live_in_a_private_scratch_file_removed_on_close(tmp_path):
    """The window's session table is a table of a scratch database file private to the
    session (compressed, unlike DuckDB's in-memory temporary tables), queried by its bare
    name; the warehouse file is never written and the scratch file is gone after close."""
    path = tmp_path / "my-warehouse.v2.duckdb"  # a database name SQL must quote
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE a AS SELECT range AS k FROM range(100)")
    before = path.read_bytes()
    with Warehouse(f"duckdb:///{path}") as warehouse:
        assert warehouse.create_temporary_table("w", "SELECT * FROM a WHERE k < 10")
        assert warehouse.query("SELECT COUNT(*) AS n FROM w", "bare name")["n"][0] == 10
        assert warehouse.query("SELECT COUNT(*) AS n FROM a", "warehouse")["n"][0] == 100
        databases = warehouse.query(
            "SELECT database_name, path FROM duckdb_databases() WHERE NOT internal", "databases"
        )
        tables = warehouse.query("SELECT database_name, table_name FROM duckdb_tables()", "t")
        warehouse.drop_temporary_table("w")
        with pytest.raises(WarehouseError):
            warehouse.query("SELECT * FROM w", "dropped")
    scratch = Path(databases.set_index("database_name").loc["eval_scratch", "path"])
    assert scratch.parent != tmp_path and scratch.parent.name.startswith("eval-duckdb-")
    assert ("eval_scratch", "w") in set(tables.itertuples(index=False, name=None))
    assert not scratch.parent.exists()
    assert path.read_bytes() == before
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("a",)]


def test_a_new_session_removes_the_folders_of_killed_processes_only(tmp_path, monkeypatch):
    """A process killed outright leaves its spill folder behind; the next session removes
    it, but never a live process's folder, a fresh one, or a folder that is not ours."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(finished.stdout)
    hour_ago = time.time() - 2 * 3600
    folders = {
        "killed": tmp_path / f"eval-duckdb-{dead}-a1",
        "fresh": tmp_path / f"eval-duckdb-{dead}-b2",
        "alive": tmp_path / f"eval-duckdb-{os.getpid()}-c3",
        "other": tmp_path / "eval-duckdb-spill-d4",
    }
    for name, folder in folders.items():
        folder.mkdir()
        (folder / "spill.tmp").write_bytes(b"x" * 1000)
        if name != "fresh":
            os.utime(folder, (hour_ago, hour_ago))
    database = tmp_path / "w.duckdb"
    duckdb.connect(str(database)).close()
    with Warehouse(f"duckdb:///{database}") as warehouse:
        warehouse.query("SELECT 1 AS one", "open")
        assert not folders["killed"].exists()
        assert all(folders[name].exists() for name in ("fresh", "alive", "other"))
        own = [f for f in tmp_path.glob(f"eval-duckdb-{os.getpid()}-*") if f != folders["alive"]]
        assert len(own) == 1
    assert not own[0].exists()


def test_a_query_out_of_duckdbs_memory_names_the_setting_that_raises_the_cap(tmp_path, monkeypatch):
    """DuckDB's own advice names its settings; ours is the environment variable that sets
    the session's cap. The fault is real: a list aggregate, which cannot spill, over 2MB."""
    monkeypatch.setenv("EVAL_DUCKDB_MEMORY_LIMIT", "2MB")
    database = tmp_path / "w.duckdb"
    duckdb.connect(str(database)).close()
    with Warehouse(f"duckdb:///{database}") as warehouse, pytest.raises(WarehouseError) as failure:
        warehouse.query("SELECT list(range) AS l FROM range(5000000)", "big list")
    message = str(failure.value)
    assert "the big list query failed: Out of Memory Error" in message
    assert "EVAL_DUCKDB_MEMORY_LIMIT=2MB; raise it" in message


def test_without_the_profiler_wall_time_and_rows_returned_remain(sized, monkeypatch):
    monkeypatch.setenv(PROFILING_ENV, "off")
    with Warehouse(sized) as warehouse:
        warehouse.query("SELECT * FROM b", "all of b")
        [entry] = warehouse.query_log
    assert entry.rows_returned == ROWS_B and entry.seconds >= 0
    assert entry.rows_scanned is None and entry.bytes_scanned is None


def test_a_failed_query_is_not_logged_and_gx_work_is_one_entry(sized):
    with Warehouse(sized) as warehouse:
        with pytest.raises(WarehouseError, match="the missing table query failed"):
            warehouse.query("SELECT * FROM missing", "missing table")
        with warehouse.measured("expectations on window", "gx"):
            pass
        [entry] = warehouse.query_log
    assert (entry.purpose, entry.engine, entry.rows_returned, entry.rows_scanned) == (
        "expectations on window",
        "gx",
        None,
        None,
    )


def test_totals_sum_what_is_known_and_count_what_is_not():
    entries = [
        QueryCost("a", 0.5, 1, 100, 4096, "duckdb"),
        QueryCost("b", 0.25, 10, 20, 0, "duckdb"),
        QueryCost("gx", 1.0, None, None, None, "gx"),
    ]
    assert cost_totals(entries) == {
        "queries": 3,
        "seconds": 1.75,
        "rows_scanned": 120,
        "bytes_scanned": 4096,
        "unmeasured": 1,
    }
    unknown = cost_totals([QueryCost("q", 0.125, 5, None, None, "postgresql")])
    assert (unknown["rows_scanned"], unknown["bytes_scanned"], unknown["unmeasured"]) == (
        None,
        None,
        1,
    )
    assert cost_totals([])["queries"] == 0
    assert cost_line({"queries": 3, "seconds": 1.75, "rows_scanned": 120, "unmeasured": 1}) == (
        "3 queries, 1.8 s, 120 rows scanned (1 not counted)"
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cost")
    path = root / "warehouse.duckdb"
    build_demo_warehouse(path, rows=20_000)
    url = f"duckdb:///{path}"
    spec = load_spec(SPEC_PATH).model_copy(update={"warehouse": url, "warehouse_template": url})
    evaluation = evaluate(spec, WEEK)
    folder = write_artifacts(evaluation, evaluation.decide(), root / "out")
    return path, folder


def test_run_json_and_queries_json_record_every_query(demo_run):
    path, folder = demo_run
    run = json.loads((folder / "run.json").read_text())
    logged = json.loads((folder / "queries.json").read_text())
    assert logged == {"cost": run["cost"], "queries": run["query_costs"]}
    entries = run["query_costs"]
    assert entries and all(set(entry) == ENTRY_KEYS for entry in entries)
    assert {entry["engine"] for entry in entries} == {"duckdb", "gx"}
    assert set(run["cost"]) == {
        "queries",
        "seconds",
        "rows_scanned",
        "bytes_scanned",
        "unmeasured",
        "slice_sets",
    }
    assert run["cost"]["queries"] == len(entries)
    assert "GROUPING SETS" in run["queries"]["sufficient_statistics"]  # the texts stay

    # The window is materialised in two statements: the labels of the window's predictions
    # (each source table read once in full), then the window join of the predictions with
    # those labels. The oracle is the row counts on a connection of our own.
    with duckdb.connect(str(path), read_only=True) as con:
        [(logs,)] = con.execute("SELECT COUNT(*) FROM inference_logs").fetchall()
        [(labels,)] = con.execute("SELECT COUNT(*) FROM labels").fetchall()
        [(window_labels,)] = con.execute(
            "SELECT COUNT(*) FROM labels WHERE prediction_id IN (SELECT prediction_id "
            "FROM inference_logs WHERE ts >= TIMESTAMP '2026-11-16' "
            "AND ts < TIMESTAMP '2026-11-23')"
        ).fetchall()
        [(distinct_country, distinct_device, distinct_plan, pairs)] = con.execute(
            "SELECT COUNT(DISTINCT country), COUNT(DISTINCT device), COUNT(DISTINCT plan), "
            "COUNT(DISTINCT (country, device)) FROM inference_logs "
            "WHERE ts >= TIMESTAMP '2026-11-16' AND ts < TIMESTAMP '2026-11-23'"
        ).fetchall()
    [window] = [e for e in entries if e["purpose"].startswith("temporary table eval_window_")]
    [of_window] = [e for e in entries if e["purpose"].startswith("temporary table eval_labels_")]
    assert of_window["rows_scanned"] == logs + labels
    assert window["rows_scanned"] == logs + window_labels < logs + labels
    assert window["rows_returned"] == of_window["rows_returned"] == 0

    statistics = {e["purpose"]: e for e in entries}["sufficient statistics"]
    assert statistics["rows_returned"] > 0 and statistics["rows_scanned"] > 0

    sets = {s["slice_set"]: s for s in run["cost"]["slice_sets"]}
    assert {name: s["groups"] for name, s in sets.items()} == {
        "overall": 1,
        "country": distinct_country,
        "device": distinct_device,
        "plan": distinct_plan,
        "country, device": pairs,
    }
    assert sum(s["result_rows"] for s in sets.values()) <= statistics["rows_returned"]
    assert all(s["result_rows"] > 0 for s in sets.values())


def test_the_html_footer_shows_the_total(demo_run):
    _, folder = demo_run
    run = json.loads((folder / "run.json").read_text())
    html = (folder / "report.html").read_text()
    assert "warehouse cost" in html
    assert f"{run['cost']['queries']:,} queries" in html
    assert "warehouse cost" not in (folder / "report.md").read_text()


@pytest.mark.postgres
def test_postgresql_records_wall_time_and_rows_returned(postgres_url):
    url = make_url(postgres_url).set(password="cost-secret-7")  # trust auth ignores it
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS cost_sized"))
        connection.execute(
            sa.text("CREATE TABLE cost_sized AS SELECT g AS k FROM generate_series(1, 250) AS g")
        )
    engine.dispose()
    with Warehouse(url.render_as_string(hide_password=False)) as warehouse:
        warehouse.query("SELECT k FROM cost_sized", "all rows")
        warehouse.query_arrow("SELECT SUM(k) AS total FROM cost_sized", "sum")
        assert warehouse.create_temporary_table("w", "SELECT k FROM cost_sized WHERE k <= 40")
        warehouse.query_arrow("SELECT k FROM w", "temporary rows")
        with pytest.raises(WarehouseError) as failed:
            warehouse.query("SELECT * FROM no_such_table", "missing")
        entries = list(warehouse.query_log)
    assert "cost-secret-7" not in str(failed.value)
    assert [(e.purpose, e.rows_returned) for e in entries] == [
        ("all rows", 250),
        ("sum", 1),
        ("temporary table w", 0),
        ("temporary rows", 40),
    ]
    for entry in entries:
        assert entry.engine == "postgresql" and entry.seconds > 0
        assert entry.rows_scanned is None and entry.bytes_scanned is None  # not measured
    logged = json.dumps([entry.to_dict() for entry in entries])
    assert "cost-secret-7" not in logged and "postgresql://" not in logged
