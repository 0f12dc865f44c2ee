"""The same spec on DuckDB and on a real PostgreSQL server gives the same numbers."""

import numpy as np
import pandas as pd
import pytest
from support.postgres import copy_duckdb_tables

from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import load_spec

pytestmark = pytest.mark.postgres
WEEK = "2026-11-16"


def _evaluate(url: str):
    spec = load_spec("evals/fraud_detector.yaml").model_copy(update={"warehouse": url})
    evaluation = evaluate(spec, WEEK)
    verdict = evaluation.decide()
    return evaluation, verdict


def _assert_frames_equal(left: pd.DataFrame, right: pd.DataFrame) -> None:
    assert list(left.columns) == list(right.columns)
    assert len(left) == len(right)
    for column in left.columns:
        a, b = left[column].to_numpy(), right[column].to_numpy()
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
        else:
            assert list(a) == list(b), column


def test_duckdb_and_postgresql_agree(tmp_path, postgres_url):
    path = tmp_path / "warehouse.duckdb"
    build_demo_warehouse(path, rows=60_000)
    copy_duckdb_tables(path, postgres_url, ["inference_logs", "labels"], replace=True)

    duck, duck_verdict = _evaluate(f"duckdb:///{path}")
    pg, pg_verdict = _evaluate(postgres_url)

    # Both engines ran the window join once, into a session-private temporary table.
    for evaluation in (duck, pg):
        assert "FROM eval_window_" in evaluation.queries["sufficient_statistics"]
        assert "JOIN" in evaluation.queries["window"]
    assert duck.fingerprint == pg.fingerprint
    _assert_frames_equal(duck.metrics, pg.metrics)
    _assert_frames_equal(duck.comparison, pg.comparison)
    _assert_frames_equal(duck.drift, pg.drift)
    _assert_frames_equal(duck.coverage, pg.coverage)
    assert duck_verdict.to_dict() == pg_verdict.to_dict()
    assert duck_verdict.decision == "hold"


def test_multiclass_estimates_agree_on_duckdb_and_postgresql(tmp_path, postgres_url):
    """The intent classifier demo (estimation on): every metric row, the label-free
    ``estimated_accuracy`` and ``estimated_macro_f1`` among them, is the same on both."""
    path = tmp_path / "warehouse.duckdb"
    build_demo_warehouse(path, rows=60_000)
    copy_duckdb_tables(path, postgres_url, ["intent_logs", "intent_labels"], replace=True)
    spec = load_spec("evals/intent_classifier.yaml")
    duck = evaluate(spec.model_copy(update={"warehouse": f"duckdb:///{path}"}), WEEK)
    pg = evaluate(spec.model_copy(update={"warehouse": postgres_url}), WEEK)
    estimated = duck.metrics[duck.metrics["metric"].str.startswith("estimated_")]
    assert set(estimated["metric"]) == {"estimated_accuracy", "estimated_macro_f1"}
    assert (estimated["status"] != "no_reference").all()
    _assert_frames_equal(duck.metrics, pg.metrics)
