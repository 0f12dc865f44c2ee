"""The window join and the labels of the window in parts by ranges of the ids (past
``WINDOW_JOIN_PART_LABELS`` labels and ``WINDOW_LABELS_PART_PREDICTIONS`` predictions of the
window, as at 100M rows a week): every prediction of the window once, with the label that
counts (a label found twice would fail the blocking label uniqueness check), checked
against pandas and scikit-learn on the raw rows. The rows are stored shuffled, so no part
can rely on the ids being in order."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from support.data import WEEK, base_spec, evaluated_rows, random_window, write_warehouse
from support.postgres import copy_duckdb_tables

from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec


def shuffled_window(seed: int, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    predictions, labels = random_window(rng, n)
    return (
        predictions.sample(frac=1.0, random_state=seed).reset_index(drop=True),
        labels.sample(frac=1.0, random_state=seed + 1).reset_index(drop=True),
    )


def evaluate_in_parts(url: str, monkeypatch, part_labels: int):
    from eval_pipelines import validation

    monkeypatch.setattr(validation, "WINDOW_JOIN_PART_LABELS", part_labels)
    monkeypatch.setattr(validation, "WINDOW_LABELS_PART_PREDICTIONS", 2 * part_labels)
    return evaluate(parse_spec(base_spec(url)), WEEK)


def assert_matches_oracle(result, predictions: pd.DataFrame, labels: pd.DataFrame) -> None:
    rows = evaluated_rows(predictions, labels)
    per_version = {row["model_version"]: row for row in result.validation.per_version}
    metrics = result.metrics.set_index(["model_version", "slice", "metric"])
    for version, group in rows.groupby("model_version"):
        labeled = group[group["label"].notna()]
        late = group["labeled_at"] > group["ts"] + pd.Timedelta(days=14)
        assert per_version[version]["n"] == len(group)
        assert per_version[version]["n_labeled"] == len(labeled)
        assert per_version[version]["n_label_too_late"] == int(late.sum())
        auc = roc_auc_score(labeled["label"].astype(int), labeled["score"])
        # Exact up to its reported binning error (score_bins).
        row = metrics.loc[(version, "overall", "roc_auc")]
        assert row["value"] == pytest.approx(auc, abs=row["error_bound"] + 1e-12)


def test_the_window_join_in_parts_holds_every_prediction_once(tmp_path, monkeypatch):
    predictions, labels = shuffled_window(11, 1500)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    whole = evaluate(parse_spec(base_spec(url)), WEEK)
    parts = evaluate_in_parts(url, monkeypatch, part_labels=300)
    appended = [c for c in parts.query_costs if c.purpose.startswith("rows into temporary")]
    # About 1,350 labels of the window (5 parts) and 3,000 predictions (5 parts).
    assert len(appended) >= 6
    assert not [c for c in whole.query_costs if c.purpose.startswith("rows into temporary")]
    assert_matches_oracle(parts, predictions, labels)
    assert parts.fingerprint["content_hash"] == whole.fingerprint["content_hash"]
    pd.testing.assert_frame_equal(parts.metrics, whole.metrics, rtol=1e-12)
    pd.testing.assert_frame_equal(parts.comparison, whole.comparison, rtol=1e-12)


@pytest.mark.postgres
def test_postgresql_joins_the_window_in_parts_too(tmp_path, monkeypatch, postgres_url):
    predictions, labels = shuffled_window(12, 900)
    path = tmp_path / "w.duckdb"
    write_warehouse(path, predictions, labels)
    copy_duckdb_tables(path, postgres_url, ["inference_logs", "labels"], replace=True)
    result = evaluate_in_parts(postgres_url, monkeypatch, part_labels=250)
    appended = [c for c in result.query_costs if c.purpose.startswith("rows into temporary")]
    assert len(appended) >= 4
    assert_matches_oracle(result, predictions, labels)
