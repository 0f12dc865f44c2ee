"""The multiclass task against scikit-learn on random data.

Slices, late and missing labels, tied class scores (within and across rows), classes absent
from small slices; every exact metric to 1e-9 and ROC AUC (one-vs-rest) within its reported
bound, on DuckDB and on PostgreSQL (same numbers and fingerprint as DuckDB).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from support.data import WEEK, WEEK_START, base_spec, evaluated_rows, write_warehouse
from support.postgres import copy_duckdb_tables

from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec

CLASSES = ("bird", "cat", "dog", "fox")
FIXED = [
    "accuracy",
    "balanced_accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "micro_f1",
    "weighted_f1",
    "log_loss",
    "roc_auc_ovr",
]
PER_CLASS = [f"{kind}.{c}" for kind in ("precision", "recall", "f1") for c in CLASSES]
METRICS = [*FIXED, "top_2_accuracy", "top_3_accuracy", *PER_CLASS]


def multiclass_window(
    rng: np.random.Generator, n: int, classes: tuple[str, ...] = CLASSES
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shadow predictions of two versions (v2 better) with class scores summing to 1, tied
    scores (logits on a half-integer grid), some labels missing and some late."""
    C = len(classes)
    ids = np.array([f"r{i:07d}" for i in range(n)])
    y = rng.choice(C, n, p=np.linspace(3, 1, C) / np.linspace(3, 1, C).sum())
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, n), unit="s")
    country = rng.choice(["US", "GB", "DE"], n, p=[0.5, 0.3, 0.2])
    device = rng.choice(["ios", "android", "web"], n)
    frames = []
    for i, version in enumerate(["v1", "v2"]):
        logits = np.round(2 * (np.eye(C)[y] * (1.0 + 0.5 * i) + rng.normal(0, 1, (n, C)))) / 2
        scores = np.exp(logits)
        scores /= scores.sum(1, keepdims=True)
        predicted = scores.argmax(1)
        flip = rng.random(n) < 0.1  # a prediction is not always the top score
        predicted[flip] = rng.integers(0, C, int(flip.sum()))
        frame = pd.DataFrame(
            {
                "prediction_id": ids,
                "ts": ts,
                "model_version": version,
                "predicted": np.array(classes)[predicted],
                "country": country,
                "device": device,
            }
        )
        for c, name in enumerate(classes):
            frame[f"p_{name}"] = scores[:, c]
        frames.append(frame)
    labeled = rng.random(n) >= 0.1
    delay_days = rng.uniform(0, 20, n)
    labels = pd.DataFrame(
        {
            "prediction_id": ids[labeled],
            "label": np.array(classes)[y[labeled]],
            "labeled_at": (ts + pd.to_timedelta(delay_days, unit="D"))[labeled],
        }
    )
    return pd.concat(frames, ignore_index=True), labels


def multiclass_spec(url: str, classes=CLASSES, **overrides) -> dict:
    predictions = {
        "table": "inference_logs",
        "prediction": "predicted",
        "class_scores": {c: f"p_{c}" for c in classes},
    }
    return base_spec(url, task="multiclass_classification", predictions=predictions, **overrides)


def oracle(metric: str, y: np.ndarray, p: np.ndarray, scores: np.ndarray) -> float:
    """The metric from scikit-learn on one slice's labeled rows (NaN where undefined)."""
    if len(y) == 0:
        return np.nan
    labels = list(CLASSES)
    if metric == "accuracy":
        return skm.accuracy_score(y, p)
    if metric == "balanced_accuracy":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return skm.balanced_accuracy_score(y, p)
    if metric == "micro_f1":
        return skm.f1_score(y, p, labels=labels, average="micro", zero_division=0)
    if metric == "weighted_f1":
        return skm.f1_score(y, p, labels=labels, average="weighted", zero_division=0)
    if metric.startswith("macro_"):
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            y, p, labels=labels, average="macro", zero_division=0
        )
        return {"macro_precision": precision, "macro_recall": recall, "macro_f1": f1}[metric]
    if metric == "log_loss":
        return skm.log_loss(y, scores, labels=labels)
    if metric.startswith("top_"):
        k = int(metric.split("_")[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return skm.top_k_accuracy_score(y, scores, k=k, labels=labels)
    if metric == "roc_auc_ovr":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return skm.roc_auc_score(y, scores, multi_class="ovr", labels=labels, average="macro")
    kind, cls = metric.split(".")
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y, p, labels=labels, average=None, zero_division=0
    )
    values = {"precision": precision, "recall": recall, "f1": f1}[kind]
    return float(values[labels.index(cls)])


def slice_rows(rows: pd.DataFrame, name: str) -> pd.DataFrame:
    if name == "overall":
        return rows
    mask = np.ones(len(rows), dtype=bool)
    for part in name.split(", "):
        column, value = part.split("=", 1)
        mask &= (rows[column].astype(str) == value).to_numpy()
    return rows[mask]


def check_against_oracle(metrics: pd.DataFrame, predictions, labels) -> int:
    rows = evaluated_rows(predictions, labels)
    rows = rows[rows["label"].notna()]
    score_columns = [f"p_{c}" for c in CLASSES]
    checked = 0
    for row in metrics.itertuples(index=False):
        part = slice_rows(rows[rows["model_version"] == row.model_version], row.slice)
        y = part["label"].to_numpy(str)
        expected = oracle(
            row.metric, y, part["predicted"].to_numpy(str), part[score_columns].to_numpy(float)
        )
        assert row.n == len(part), (row.slice, row.metric)
        where = (row.model_version, row.slice, row.metric)
        if np.isnan(expected):
            assert np.isnan(row.value), where
            continue
        if row.metric == "roc_auc_ovr":  # binned: within the reported bound
            assert abs(row.value - expected) <= row.error_bound + 1e-12, where
        else:
            assert row.value == pytest.approx(expected, rel=1e-9, abs=1e-9), where
            assert row.error_bound == 0.0
        checked += 1
    return checked


@pytest.mark.parametrize("seed", range(3))
def test_multiclass_metrics_match_sklearn_on_every_slice(tmp_path, seed):
    rng = np.random.default_rng(seed)
    predictions, labels = multiclass_window(rng, int(rng.integers(400, 2000)))
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    result = evaluate(parse_spec(multiclass_spec(url, metrics=METRICS)), WEEK)
    assert set(result.metrics["metric"]) == set(METRICS)
    assert check_against_oracle(result.metrics, predictions, labels) > 500
    ci = result.metrics.dropna(subset=["value", "ci_low"])
    assert (ci["ci_low"] <= ci["value"] + 1e-12).all()
    assert (ci["value"] <= ci["ci_high"] + 1e-12).all()
    accuracy = result.comparison.query("slice == 'overall' and metric == 'accuracy'").iloc[0]
    assert accuracy.test == "McNemar exact" and accuracy.delta > 0


def test_default_metrics_and_integer_classes_without_scores(tmp_path):
    """Integer class columns, ``classes:`` declared, no class scores: the confusion metrics
    only (score metrics are not defaults), still exact."""
    rng = np.random.default_rng(9)
    predictions, labels = multiclass_window(rng, 800)
    code = {c: i for i, c in enumerate(CLASSES)}
    predictions["predicted"] = predictions["predicted"].map(code).astype("int64")
    labels["label"] = labels["label"].map(code).astype("int64")
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = base_spec(
        url,
        task="multiclass_classification",
        classes=[0, 1, 2, 3],
        predictions={"table": "inference_logs", "prediction": "predicted"},
    )
    parsed = parse_spec(spec)
    assert parsed.metrics == FIXED[:7]
    result = evaluate(parsed, WEEK)
    rows = evaluated_rows(predictions, labels)
    rows = rows[rows["label"].notna()]
    overall = result.metrics.query("slice == 'overall' and model_version == 'v2'")
    part = rows[rows["model_version"] == "v2"]
    y, p = part["label"].to_numpy(int), part["predicted"].to_numpy(int)
    values = overall.set_index("metric")["value"]
    assert values["accuracy"] == pytest.approx(skm.accuracy_score(y, p), rel=1e-12)
    assert values["macro_f1"] == pytest.approx(
        skm.f1_score(y, p, average="macro", labels=[0, 1, 2, 3], zero_division=0), rel=1e-12
    )


@pytest.mark.postgres
def test_postgresql_gives_the_oracle_values_and_duckdbs_numbers(tmp_path, postgres_url):
    rng = np.random.default_rng(21)
    predictions, labels = multiclass_window(rng, 1200)
    path = tmp_path / "w.duckdb"
    url = write_warehouse(path, predictions, labels)
    copy_duckdb_tables(path, postgres_url, ["inference_logs", "labels"], replace=True)
    duck = evaluate(parse_spec(multiclass_spec(url, metrics=METRICS)), WEEK)
    pg = evaluate(parse_spec(multiclass_spec(postgres_url, metrics=METRICS)), WEEK)
    assert check_against_oracle(pg.metrics, predictions, labels) > 500
    assert duck.fingerprint == pg.fingerprint
    for frame in ("metrics", "comparison"):
        left, right = getattr(duck, frame), getattr(pg, frame)
        assert list(left.columns) == list(right.columns) and len(left) == len(right)
        for column in left.columns:
            a, b = left[column].to_numpy(), right[column].to_numpy()
            if np.issubdtype(a.dtype, np.floating):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
            else:
                assert list(a) == list(b), (frame, column)
