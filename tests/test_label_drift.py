"""Label drift and prediction drift for a regression model, against scipy on the raw rows.

The label's distribution is compared over the labeled rows only (a label that arrived within
``labels.max_delay``); the prediction column is a numeric drift feature like the binary score.
A planted shift of the labels in the evaluated week (the model did not follow it) shows as
label drift without prediction drift; ``drift.include_label: false`` turns label drift off.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from support.data import WEEK, WEEK_START, base_spec, write_warehouse
from support.postgres import copy_duckdb_tables

from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec

REFERENCE_WEEKS = 2


def weeks_of_rows(seed: int, per_week: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two reference weeks and the evaluated week of one version; labels move up by 8 in the
    evaluated week, predictions do not; 10% of labels missing and 10% too late."""
    rng = np.random.default_rng(seed)
    start = WEEK_START - pd.Timedelta(days=7 * REFERENCE_WEEKS)
    n = per_week * (REFERENCE_WEEKS + 1)
    ts = start + pd.to_timedelta(rng.integers(0, n * 7 * 86400 // per_week, n), unit="s")
    current = np.asarray(ts >= WEEK_START)
    y = rng.gamma(4.0, 5.0, n) + np.where(current, 8.0, 0.0)
    ids = np.array([f"r{i:06d}" for i in range(n)])
    predictions = pd.DataFrame(
        {
            "prediction_id": ids,
            "ts": ts,
            "model_version": "v1",
            "prediction": rng.gamma(4.0, 5.0, n),
        }
    )
    delay = np.where(rng.random(n) < 0.1, 20.0, rng.uniform(0, 5, n))
    keep = rng.random(n) >= 0.1
    labels = pd.DataFrame(
        {
            "prediction_id": ids[keep],
            "label": y[keep],
            "labeled_at": (ts + pd.to_timedelta(delay, unit="D"))[keep],
        }
    )
    return predictions, labels


def spec_for(url: str, **drift) -> dict:
    settings = {"reference_weeks": REFERENCE_WEEKS, "methods": ["ks", "wasserstein"], **drift}
    return base_spec(
        url,
        task="regression",
        predictions={"table": "inference_logs", "prediction": "prediction"},
        slices=[],
        compare=None,
        metrics=["mae"],
        drift=settings,
    )


def matured(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    rows = predictions.merge(labels, on="prediction_id")
    ok = (rows["labeled_at"] >= rows["ts"]) & (
        rows["labeled_at"] <= rows["ts"] + pd.Timedelta(days=14)
    )
    return rows[ok]


@pytest.mark.parametrize(
    ("part_rows", "integer_ids"),
    [(None, False), (700, False), (300, True)],
    ids=["one_join", "id_ranges", "id_ranges_integer_ids"],
)
def test_label_drift_reads_labeled_rows_and_prediction_drift_the_output(
    tmp_path, monkeypatch, part_rows, integer_ids
):
    """Also with the labeled join in parts by ranges of the ids (as past 25M predictions:
    here a part per 700 of the version's 1,200 in both periods, so 2 parts, and a part per
    300 over integer ids, so 4), whose rows are the oracle's rows once each."""
    from eval_pipelines import drift as drift_module

    if part_rows is not None:
        monkeypatch.setattr(drift_module, "LABELED_JOIN_PART_ROWS", part_rows)
    predictions, labels = weeks_of_rows(3)
    if integer_ids:
        for frame in (predictions, labels):
            frame["prediction_id"] = frame["prediction_id"].str[1:].astype("int64")
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    result = evaluate(parse_spec(spec_for(url)), WEEK)
    appended = [c for c in result.query_costs if c.purpose.startswith("rows into temporary")]
    parts = -(-1200 // part_rows) if part_rows else 1
    assert len(appended) == parts - 1
    bounded = "label_labeled_join_bounds" in result.queries
    assert bounded == (part_rows is not None)
    first_part = result.queries["label_labeled_predictions"]
    assert ("p.prediction_id <" in first_part) == (part_rows is not None)
    drift = result.drift.set_index(["feature", "method"])
    assert set(drift.index.get_level_values("feature")) == {"prediction", "label"}
    rows = matured(predictions, labels)
    ref = rows[rows["ts"] < WEEK_START]["label"].to_numpy()
    cur = rows[rows["ts"] >= WEEK_START]["label"].to_numpy()
    label = drift.loc["label"]
    assert (label["kind"] == "numeric").all()
    assert (label["n_reference"] == len(ref)).all() and (label["n_current"] == len(cur)).all()
    # Binned KS is exact up to ties within a fine bin: the oracle's p-value on raw rows agrees
    # in decision and size.
    ks_p = stats.ks_2samp(ref, cur).pvalue
    assert label.loc["ks", "drifted"] and ks_p < 1e-6
    assert label.loc["ks", "p_value"] < 1e-6
    normed = stats.wasserstein_distance(ref, cur) / ref.std()
    assert label.loc["wasserstein", "statistic"] == pytest.approx(normed, rel=0.02)
    prediction = drift.loc["prediction"]
    n_pred = predictions["ts"] >= WEEK_START
    assert (prediction["n_current"] == int(n_pred.sum())).all()
    assert not prediction.loc["ks", "drifted"]


def test_a_refused_append_reads_the_whole_labeled_join_not_its_first_part(tmp_path, monkeypatch):
    """Where the engine refuses to append a part (a fault forced here: DuckDB appends), the
    drift queries read the whole join as a query; they used to read the first part's text,
    which silently judged label drift on a k-th of the ids."""
    from eval_pipelines import drift as drift_module
    from eval_pipelines.warehouse import Warehouse

    monkeypatch.setattr(drift_module, "LABELED_JOIN_PART_ROWS", 400)
    monkeypatch.setattr(Warehouse, "insert_into_temporary_table", lambda *args: False)
    predictions, labels = weeks_of_rows(3)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    result = evaluate(parse_spec(spec_for(url)), WEEK)
    rows = matured(predictions, labels)
    label = result.drift.set_index(["feature", "method"]).loc["label"]
    assert (label["n_reference"] == int((rows["ts"] < WEEK_START).sum())).all()
    assert (label["n_current"] == int((rows["ts"] >= WEEK_START).sum())).all()


@pytest.mark.postgres
def test_postgresql_gives_duckdbs_label_and_prediction_drift(tmp_path, postgres_url):
    predictions, labels = weeks_of_rows(6, per_week=300)
    path = tmp_path / "w.duckdb"
    url = write_warehouse(path, predictions, labels)
    copy_duckdb_tables(path, postgres_url, ["inference_logs", "labels"], replace=True)
    duck = evaluate(parse_spec(spec_for(url)), WEEK).drift
    pg = evaluate(parse_spec(spec_for(postgres_url)), WEEK).drift
    # And the labeled join in 3 parts by id ranges on PostgreSQL (bounds in its collation).
    from eval_pipelines import drift as drift_module

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(drift_module, "LABELED_JOIN_PART_ROWS", 300)
        parts = evaluate(parse_spec(spec_for(postgres_url)), WEEK)
    appended = [c for c in parts.query_costs if c.purpose.startswith("rows into temporary")]
    assert len(appended) == 2 and "label_labeled_join_bounds" in parts.queries
    pd.testing.assert_frame_equal(parts.drift, pg)
    assert set(pg["feature"]) == {"prediction", "label"}
    assert list(duck.columns) == list(pg.columns) and len(duck) == len(pg)
    for column in duck.columns:
        a, b = duck[column].to_numpy(), pg[column].to_numpy()
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
        else:
            assert list(a) == list(b), column


def test_include_label_false_turns_label_drift_off(tmp_path):
    predictions, labels = weeks_of_rows(4, per_week=120)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = spec_for(url, include_label=False, include_score=False, features=["prediction"])
    result = evaluate(parse_spec(spec), WEEK)
    assert set(result.drift["feature"]) == {"prediction"}


def test_a_week_without_labels_yet_has_no_label_drift_rows(tmp_path):
    predictions, labels = weeks_of_rows(5, per_week=120)
    labels = labels[labels["labeled_at"] < WEEK_START]  # none of this week's labels arrived
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = spec_for(url)
    spec["labels"]["max_delay"] = "3d"
    result = evaluate(parse_spec(spec), WEEK)
    assert set(result.drift["feature"]) == {"prediction"}


def test_a_label_drift_query_the_warehouse_cannot_run_fails_the_run(tmp_path, monkeypatch):
    """Only "no labeled row yet" turns label drift off; a warehouse error (at 100M rows, the
    labeled join running out of memory) fails the run instead of dropping the label's rows
    without a word. The fault is real: SQL the warehouse rejects when it runs it."""
    from eval_pipelines.errors import WarehouseError
    from eval_pipelines.sqlbuild import SqlBuilder

    predictions, labels = weeks_of_rows(6, per_week=120)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    labeled = SqlBuilder.labeled_predictions

    def failing(self, *args, **kwargs):
        sql = labeled(self, *args, **kwargs)
        return f"SELECT * FROM (\n{sql}\n) AS q WHERE CAST(q.ts AS VARCHAR)::INTEGER > 0"

    monkeypatch.setattr(SqlBuilder, "labeled_predictions", failing)
    with pytest.raises(WarehouseError, match="drift"):
        evaluate(parse_spec(spec_for(url)), WEEK)
