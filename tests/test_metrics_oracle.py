"""Engine metrics against scikit-learn (and a hand-written ECE) on random data and slices.

Count-based metrics, log loss and Brier must match to 1e-9. ROC AUC and PR AUC are computed
from score histograms and must lie within the error bound the engine documents, and that
bound must itself be small; with one score per bin they must match exactly.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from support.data import (
    METRICS_COLUMNS,
    WEEK,
    base_spec,
    ece_oracle,
    evaluated_rows,
    random_window,
    write_warehouse,
)

from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec

EXACT = ["accuracy", "precision", "recall", "f1", "log_loss", "brier", "ece"]


def sklearn_value(metric: str, y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    predicted = (p >= threshold).astype(int)
    if metric in ("precision", "recall", "f1"):
        fn = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}
        if metric == "precision" and predicted.sum() == 0:
            return np.nan
        if metric == "recall" and y.sum() == 0:
            return np.nan
        if metric == "f1" and y.sum() + predicted.sum() == 0:
            return np.nan
        return fn[metric](y, predicted, zero_division=np.nan)
    if metric == "accuracy":
        return skm.accuracy_score(y, predicted)
    if metric == "log_loss":
        return skm.log_loss(y, p, labels=[0, 1])
    if metric == "brier":
        return skm.brier_score_loss(y, p, pos_label=1) if len(set(y)) > 1 else np.mean((p - y) ** 2)
    if metric == "roc_auc":
        return skm.roc_auc_score(y, p) if len(set(y)) == 2 else np.nan
    if metric == "pr_auc":
        return skm.average_precision_score(y, p) if y.sum() > 0 else np.nan
    if metric == "ece":
        return ece_oracle(y, p, 10)
    raise ValueError(metric)


def slice_rows(rows: pd.DataFrame, name: str) -> pd.DataFrame:
    if name == "overall":
        return rows
    mask = np.ones(len(rows), dtype=bool)
    for part in name.split(", "):
        column, value = part.split("=", 1)
        mask &= (rows[column].astype(str) == value).to_numpy()
    return rows[mask]


@pytest.mark.parametrize("seed", range(12))
def test_metrics_match_sklearn_on_every_slice(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 3000))
    ties = seed % 3 == 0  # scores rounded to 0.01: many exact ties, as sklearn sees them too
    predictions, labels = random_window(rng, n, ties=ties)
    threshold = float(rng.choice([0.5, 0.3, 0.62]))
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = parse_spec(base_spec(url, threshold=threshold))
    result = evaluate(spec, WEEK)
    rows = evaluated_rows(predictions, labels)
    rows = rows[rows["label"].notna()]

    checked = 0
    parts: dict[tuple[str, str], pd.DataFrame] = {}
    for row in result.metrics.itertuples(index=False):
        key = (row.model_version, row.slice)
        if key not in parts:
            parts[key] = slice_rows(rows[rows["model_version"] == row.model_version], row.slice)
        part = parts[key]
        assert row.n == len(part), (row.slice, row.model_version)
        if len(part) == 0:
            continue
        y = part["label"].to_numpy(dtype=int)
        p = part["score"].to_numpy(dtype=float)
        expected = sklearn_value(row.metric, y, p, threshold)
        where = f"{row.metric} on {row.slice} of {row.model_version} (seed {seed})"
        if np.isnan(expected):
            assert np.isnan(row.value), where
            continue
        if row.metric in EXACT:
            assert row.value == pytest.approx(expected, rel=1e-9, abs=1e-12), where
        else:
            assert abs(row.value - expected) <= row.error_bound + 1e-12, where
            # The documented practical accuracy of 1000 bins, not just the worst case: AUC
            # within 2e-3 from 200 rows, average precision from 200 positives.
            enough = len(part) >= 200 if row.metric == "roc_auc" else y.sum() >= 200
            if not ties and enough:
                assert abs(row.value - expected) <= 2e-3, where
        checked += 1
    assert checked > 100


def test_binned_auc_is_exact_when_every_score_has_its_own_bin(tmp_path):
    rng = np.random.default_rng(99)
    predictions, labels = random_window(rng, 400, versions=("v1",))
    # Distinct bin centres: no two rows share one of the 1000 score bins.
    bins = rng.choice(1000, size=400, replace=False)
    predictions["score"] = (bins + 0.5) / 1000
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = parse_spec(base_spec(url, compare=None, slices=[]))
    result = evaluate(spec, WEEK)
    rows = evaluated_rows(predictions, labels).dropna(subset=["label"])
    y, p = rows["label"].to_numpy(int), rows["score"].to_numpy()
    overall = result.metrics.set_index("metric")
    assert overall.loc["roc_auc", "value"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert overall.loc["pr_auc", "value"] == pytest.approx(
        skm.average_precision_score(y, p), abs=1e-12
    )
    assert overall.loc["roc_auc", "error_bound"] == 0.0


def test_label_coverage_counts_late_and_missing_labels_as_unlabeled(tmp_path):
    rng = np.random.default_rng(5)
    predictions, labels = random_window(rng, 2000, unlabeled=0.3)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    result = evaluate(parse_spec(base_spec(url)), WEEK)
    rows = evaluated_rows(predictions, labels)
    expected = rows[rows["model_version"] == "v2"]["label"].notna().mean()
    coverage = result.coverage.set_index(["model_version", "slice"]).loc[("v2", "overall")]
    assert coverage["coverage"] == pytest.approx(expected, abs=1e-12)
    assert coverage["rows"] == 2000


def test_metrics_artifact_columns_counts_and_status(tmp_path):
    """What a user reads in metrics.parquet besides the values: the documented columns, the
    labeled and positive counts of each slice, and its status against min_slice_size."""
    rng = np.random.default_rng(99)
    predictions, labels = random_window(rng, 1500)
    # One request from a country no other request has: a slice of exactly one labeled row.
    lone = predictions[predictions["prediction_id"] == predictions["prediction_id"].iloc[0]]
    lone = lone.assign(prediction_id="lone0001", country="IS")
    labels = pd.concat(
        [labels, labels.iloc[:1].assign(prediction_id="lone0001", labeled_at=lone["ts"].iloc[0])]
    )
    predictions = pd.concat([predictions, lone], ignore_index=True)
    rows = evaluated_rows(predictions, labels)
    rows = rows[rows["label"].notna()]
    by_slice = {
        (version, f"country={country}"): part
        for (version, country), part in rows.groupby(["model_version", "country"])
    }
    # min_slice_size equal to one slice's labeled rows: that slice is "ok", smaller ones not.
    edge = len(by_slice[("v2", "country=BR")])
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = parse_spec(base_spec(url, slices=["country"], min_slice_size=edge))
    result = evaluate(spec, WEEK)
    frame = result.metrics
    # The same edge in the comparison: a slice of exactly min_slice_size rows is tested.
    compared = result.comparison.set_index(["slice", "metric"]).loc[("country=BR", "recall")]
    assert compared["n"] == edge
    assert compared["outcome"] != "not tested"
    assert list(frame.columns) == METRICS_COLUMNS
    assert frame.index.equals(pd.RangeIndex(len(frame)))
    recall = frame[frame["metric"] == "recall"].set_index(["model_version", "slice"])
    for key, part in by_slice.items():
        row = recall.loc[key]
        assert (row["n"], row["n_positive"]) == (len(part), int(part["label"].sum())), key
        expected = "ok" if len(part) >= edge else "too_small"
        assert row["status"] == expected, key
    assert recall.loc[("v2", "country=IS"), "n"] == 1
    assert recall.loc[("v2", "country=IS"), "status"] == "too_small"
