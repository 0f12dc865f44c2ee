"""The same spec on DuckDB and on a real Spark cluster (through Spark Connect) gives the same
numbers, the same input checks and the same verdict.

One cluster serves the session (``spark_url``); the demo warehouse is small and its tables are
loaded once per module as parquet tables (``CREATE TABLE ... USING parquet LOCATION``).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from support.spark import load_duckdb_tables
from test_postgres_parity import _assert_frames_equal

from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.errors import ValidationFailed
from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import load_spec

pytestmark = pytest.mark.spark
WEEK = "2026-11-16"
TABLES = ["inference_logs", "labels"]
# The other tasks' demo specs and their tables (multiclass, regression, ranking).
OTHER_TASKS = {
    "intent_classifier": ["intent_logs", "intent_labels"],
    "eta_regressor": ["eta_predictions", "eta_labels"],
    "search_ranker": ["search_ranker_logs", "search_ranker_labels"],
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory, spark_url):
    """The demo warehouse (DuckDB) and the same tables in Spark."""
    folder = tmp_path_factory.mktemp("spark-demo")
    path = folder / "warehouse.duckdb"
    build_demo_warehouse(path, rows=20_000)
    other = [table for tables in OTHER_TASKS.values() for table in tables]
    load_duckdb_tables(path, spark_url, TABLES + other, folder / "spark-tables")
    return path, spark_url, folder


def _spec(url: str, model: str = "fraud_detector"):
    return load_spec(f"evals/{model}.yaml").model_copy(update={"warehouse": url})


def test_duckdb_and_spark_agree(demo):
    path, spark_url, _ = demo
    duck = evaluate(_spec(f"duckdb:///{path}"), WEEK)
    spark = evaluate(_spec(spark_url), WEEK)

    # Both ran the window join once, into a session-private relation (a cached view on Spark).
    for evaluation in (duck, spark):
        assert "FROM eval_window_" in evaluation.queries["sufficient_statistics"]
    assert duck.fingerprint == spark.fingerprint
    assert duck.fingerprint["rows"] > 1000
    _assert_frames_equal(duck.metrics, spark.metrics)  # values and their intervals
    assert spark.metrics["ci_low"].notna().any()
    _assert_frames_equal(duck.comparison, spark.comparison)
    _assert_frames_equal(duck.drift, spark.drift)
    _assert_frames_equal(duck.coverage, spark.coverage)
    assert duck.decide().to_dict() == spark.decide().to_dict()
    assert duck.decide().decision == "hold"

    # The input checks ran on Spark too (GX's Spark engine on a Connect DataFrame, and ours),
    # with DuckDB's outcomes and reports.
    def checks(evaluation):
        return [
            (r.name, r.passed, r.blocking, r.engine, r.expectation, r.observed)
            for r in evaluation.validation.results
        ]

    assert checks(spark) == checks(duck)
    assert any(r.engine == "gx" for r in spark.validation.results)
    assert spark.validation.per_version == duck.validation.per_version


@pytest.mark.parametrize("model", list(OTHER_TASKS))
def test_every_task_gives_duckdbs_numbers_on_spark(demo, model):
    """Multiclass, regression and ranking: their own aggregate SQL, same rows and verdict."""
    path, spark_url, _ = demo
    duck = evaluate(_spec(f"duckdb:///{path}", model), WEEK)
    spark = evaluate(_spec(spark_url, model), WEEK)
    assert duck.fingerprint == spark.fingerprint
    for part in ("metrics", "comparison", "drift", "coverage"):
        _assert_frames_equal(getattr(duck, part), getattr(spark, part))
    duck_verdict, spark_verdict = duck.decide().to_dict(), spark.decide().to_dict()
    # A gate's severity is a difference of two metrics: equal to about 1e-14, not to the bit
    # (Spark's exact_sum rounds each value to 1e-12, DuckDB's fsum does not).
    for verdict in (duck_verdict, spark_verdict):
        for reason in verdict["reasons"]:
            reason["severity"] = pytest.approx(reason["severity"], rel=1e-9, abs=1e-12)
    assert duck_verdict == spark_verdict


def test_a_planted_fault_blocks_the_run_on_spark_as_on_duckdb(demo, tmp_path):
    """Duplicated labels and a score outside [0, 1] block both runs, with the same checks."""
    path, spark_url, folder = demo
    broken = tmp_path / "broken.duckdb"
    shutil.copy(path, broken)
    with duckdb.connect(str(broken)) as con:
        first = con.sql(
            "SELECT l.prediction_id FROM labels l JOIN inference_logs p USING (prediction_id) "
            "WHERE p.ts >= TIMESTAMP '2026-11-16' AND p.ts < TIMESTAMP '2026-11-23' "
            "ORDER BY 1 LIMIT 3"
        ).fetchall()
        ids = ", ".join(f"'{row[0]}'" for row in first)
        con.execute(f"INSERT INTO labels SELECT * FROM labels WHERE prediction_id IN ({ids})")
        con.execute(f"UPDATE inference_logs SET score = 1.5 WHERE prediction_id IN ({ids})")
    spark_tables = folder / "spark-tables-broken"
    load_duckdb_tables(broken, spark_url, TABLES, spark_tables)
    try:
        failures = []
        for url in (f"duckdb:///{broken}", spark_url):
            with pytest.raises(ValidationFailed) as raised:
                evaluate(_spec(url), WEEK)
            failures.append(raised.value.failures)
    finally:  # the next test reads the demo's tables again
        load_duckdb_tables(path, spark_url, TABLES, folder / "spark-tables")
    duck_failures, spark_failures = failures
    assert len(duck_failures) >= 2
    assert [m.split(":")[0] for m in spark_failures] == [m.split(":")[0] for m in duck_failures]
    assert any("score" in m for m in spark_failures)
    assert any("duplicate" in m.lower() or "unique" in m.lower() for m in spark_failures)


def test_the_cli_runs_a_week_on_spark_as_on_duckdb(demo, tmp_path):
    """README's "Run a week on Spark": ``eval-pipelines run --warehouse sc://...`` writes the
    artifacts and the verdict that the same command writes on DuckDB."""
    path, spark_url, _ = demo
    outputs = {}
    for engine, url in (("duckdb", f"duckdb:///{path}"), ("spark", spark_url)):
        out = tmp_path / engine
        command = ["run", "--spec", "evals/fraud_detector.yaml", "--week", WEEK, "--out", str(out)]
        result = subprocess.run(
            [sys.executable, "-m", "eval_pipelines.cli", *command, "--warehouse", url, "--json"],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[engine] = (json.loads(result.stdout), out)
    (duck, duck_out), (spark, spark_out) = outputs["duckdb"], outputs["spark"]
    assert spark["decision"] == duck["decision"] == "hold"
    assert spark["reasons"] == duck["reasons"]
    for name in ("metrics", "comparison", "drift", "coverage"):
        _assert_frames_equal(
            pd.read_parquet(duck_out / f"{name}.parquet"),
            pd.read_parquet(spark_out / f"{name}.parquet"),
        )
    run = json.loads((spark_out / "run.json").read_text())
    assert {entry["engine"] for entry in run["query_costs"]} >= {"sc"}  # the dialect's name
    assert (spark_out / "report.html").is_file()
