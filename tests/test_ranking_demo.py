"""The search ranker demo: its tables, its planted truth checked with scikit-learn, and the
truth found end to end by ``eval-pipelines run`` on the demo warehouse."""

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import ndcg_score
from support.mlflow_store import migrated_store

from eval_pipelines.cli import main
from eval_pipelines.demo import DEMO_START, DEMO_WEEKS, build_demo_warehouse
from eval_pipelines.demos import TABLE_WRITERS
from eval_pipelines.demos.ranking import write_tables

SPEC = Path(__file__).resolve().parents[1] / "evals" / "search_ranker.yaml"
WEEK = DEMO_WEEKS[-1]
ROWS = 200_000


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ranking_demo") / "demo.duckdb"
    build_demo_warehouse(path, rows=ROWS)
    return path


def week_lists(path: Path) -> pd.DataFrame:
    """The demo week's rows with their relevance (0 without a label within 14 days)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            """
            SELECT p.*, CASE WHEN l.labeled_at <= p.ts + INTERVAL 14 DAY
                             THEN l.relevance ELSE 0 END AS gain
            FROM search_ranker_logs p
            LEFT JOIN search_ranker_labels l USING (prediction_id)
            WHERE p.ts >= ? AND p.ts < ?
            """,
            [WEEK, WEEK + dt.timedelta(days=7)],
        ).df()
    finally:
        con.close()


def sklearn_ndcg10(rows: pd.DataFrame) -> float:
    """``ndcg_score(k=10)`` over the lists with a relevant result (padded to one width with
    gain-0 results scored below all; scores are continuous, so there are no ties)."""
    lists = [
        (items["gain"].to_numpy(float), items["score"].to_numpy(float))
        for _, items in rows.groupby("search_id")
    ]
    lists = [(g, s) for g, s in lists if (g > 0).any()]
    width = max(len(g) for g, _ in lists)
    low = rows["score"].min() - 1
    y_true = np.array([np.pad(g, (0, width - len(g))) for g, _ in lists])
    y_score = np.array([np.pad(s, (0, width - len(s)), constant_values=low) for _, s in lists])
    return float(ndcg_score(y_true, y_score, k=10))


def test_the_writer_is_registered_fast_sized_and_deterministic():
    assert write_tables in TABLE_WRITERS
    tables = []
    for _ in range(2):
        con = duckdb.connect()
        write_tables(con, DEMO_START, 8, ROWS, 42)
        tables.append(con.execute("SELECT * FROM search_ranker_logs ORDER BY ALL").df())
        con.close()
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert ROWS // 4 - 20 <= len(tables[0]) <= ROWS // 4
    per_list = tables[0].groupby(["model_version", "search_id"])
    assert (per_list["device"].nunique() == 1).all()  # slices are list-level
    assert per_list.size().between(5, 15).all()


def test_planted_truth_in_the_data_web_ndcg_drops_while_overall_improves(warehouse):
    rows = week_lists(warehouse)
    groups = [("overall", rows), *rows.groupby("device")]
    ndcg = {
        (version, device): sklearn_ndcg10(part[part["model_version"] == version])
        for version in ("v1", "v2")
        for device, part in groups
    }
    assert ndcg["v2", "overall"] > ndcg["v1", "overall"] + 0.02
    assert ndcg["v2", "web"] < ndcg["v1", "web"] - 0.1
    for device in ("ios", "android"):
        assert ndcg["v2", device] > ndcg["v1", device]


def test_run_finds_the_planted_truth_and_holds_for_it(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("EVAL_MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "mlflow-artifacts"))
    out, tracking = tmp_path / "out", migrated_store(tmp_path / "mlflow.db")
    args = ["run", "--spec", str(SPEC), "--week", WEEK.isoformat(), "--out", str(out)]
    args += ["--warehouse", f"duckdb:///{warehouse}", "--mlflow", tracking]
    assert main([*args, "--quiet"]) == 0
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["decision"] == "hold"
    held = [r for r in verdict["reasons"] if r["outcome"] == "hold"]
    assert [r["slice"] for r in held] == ["device=web"]
    assert "ndcg@10 on device=web regressed significantly" in held[0]["message"]
    # Coverage is a share of lists (any engaged result), not of rows: no row-level warning.
    coverage = next(r for r in verdict["reasons"] if r["gate"] == "min_label_coverage")
    assert "lists labeled" in coverage["message"] and coverage["outcome"] == "pass"
    checks = json.loads((out / "validation.json").read_text())["checks"]
    assert all(check["passed"] for check in checks)
    comparison = pd.read_parquet(out / "comparison.parquet").set_index(["slice", "metric"])
    assert comparison.loc[("overall", "ndcg@10"), "outcome"] == "improved"
    assert comparison.loc[("device=web", "ndcg@10"), "outcome"] == "regressed"
    # The engine's values are scikit-learn's on the same lists.
    rows = week_lists(warehouse)
    metrics = pd.read_parquet(out / "metrics.parquet").set_index(
        ["model_version", "slice", "metric"]
    )
    for version in ("v1", "v2"):
        part = rows[rows["model_version"] == version]
        assert metrics.loc[(version, "overall", "ndcg@10"), "value"] == pytest.approx(
            sklearn_ndcg10(part), rel=1e-9
        )
    report = (out / "report.md").read_text()
    assert "NDCG@10" in report and "device=web" in report
    # MLflow headline keys read the cutoff: ndcg_at_10/v2, delta/ndcg_at_10/overall.
    client = MlflowClient(tracking)
    experiments = [e.experiment_id for e in client.search_experiments()]
    logged = [r.data.metrics for r in client.search_runs(experiments) if r.data.metrics]
    assert logged and all(key in logged[0] for key in ("ndcg_at_10/v2", "delta/mrr/overall"))
    assert logged[0]["ndcg_at_10/v2"] == pytest.approx(
        metrics.loc[("v2", "overall", "ndcg@10"), "value"]
    )
