"""The ETA regressor's demo end to end: the demo warehouse's regression tables, evaluated by
``eval-pipelines run`` with ``evals/eta_regressor.yaml``, find the planted truth (v2 better
overall, worse on bikes: HOLD on vehicle=bike; v2's intervals cover less), and the writer
stays small and fast."""

import datetime as dt
import json
import time
from pathlib import Path

import duckdb
import pandas as pd

from eval_pipelines.cli import main
from eval_pipelines.demo import DEMO_NUM_WEEKS, DEMO_START, build_demo_warehouse
from eval_pipelines.demos.regression import write_tables

SPEC = Path(__file__).resolve().parents[1] / "evals" / "eta_regressor.yaml"
LAST_WEEK = (DEMO_START + dt.timedelta(weeks=DEMO_NUM_WEEKS - 1)).isoformat()


def test_writer_is_a_quarter_of_the_rows_and_fast():
    con = duckdb.connect()
    began = time.perf_counter()
    write_tables(con, DEMO_START, DEMO_NUM_WEEKS, 200_000, 42)
    elapsed = time.perf_counter() - began
    rows = con.execute("SELECT COUNT(*) FROM eta_predictions").fetchone()[0]
    assert rows <= 200_000 // 4
    assert elapsed < 5.0  # about 0.2 s; generous for a shared machine
    again = duckdb.connect()
    write_tables(again, DEMO_START, DEMO_NUM_WEEKS, 200_000, 42)
    query = "SELECT * FROM eta_predictions ORDER BY request_id, model_version"
    pd.testing.assert_frame_equal(con.execute(query).df(), again.execute(query).df())


def test_demo_spec_finds_the_planted_slice_and_holds(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    build_demo_warehouse(path, rows=60_000)
    out = tmp_path / "out"
    argv = ["run", "--spec", str(SPEC), "--warehouse", f"duckdb:///{path}"]
    assert main([*argv, "--week", LAST_WEEK, "--out", str(out), "--quiet"]) == 0
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["decision"] == "hold"
    held = [r for r in verdict["reasons"] if r["outcome"] == "hold"]
    assert held and all("vehicle=bike" in r["slice"] for r in held)
    comparison = pd.read_parquet(out / "comparison.parquet").set_index(["slice", "metric"])
    assert comparison.loc[("overall", "mae"), "outcome"] == "improved"
    assert comparison.loc[("vehicle=bike", "mae"), "outcome"] == "regressed"
    metrics = pd.read_parquet(out / "metrics.parquet")
    coverage = metrics.query("slice == 'overall' and metric == 'interval_coverage'")
    by_version = coverage.set_index("model_version")["value"]
    assert 0.85 <= by_version["v1"] <= 0.95 and by_version["v2"] < by_version["v1"] - 0.05
    median = metrics.query("metric == 'median_absolute_error'")
    assert (median["error_bound"] <= 0.0055 * median["value"] + 1e-9).all()
    drift = pd.read_parquet(out / "drift.parquet")
    assert {"eta_minutes", "actual_minutes", "distance_km"} <= set(drift["feature"])
