"""The regression task against scikit-learn (and by hand for bias and MAPE) on random data.

Slices, late and missing labels, tied predictions and zero labels; every metric exact to
1e-9, on DuckDB here and on PostgreSQL in ``test_postgres_parity``-style below; MAPE's ``n``
counts the rows with a non-zero label, and the paired deltas' intervals agree in sign with a
row-level paired bootstrap.
"""

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from sklearn import metrics as skm
from support.data import WEEK, WEEK_START, base_spec, evaluated_rows, write_warehouse
from support.postgres import copy_duckdb_tables

from eval_pipelines.cli import main
from eval_pipelines.errors import SpecError, ValidationFailed
from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec

METRICS = ["mae", "mse", "rmse", "r2", "bias", "mape", "median_absolute_error"]
INTERVAL_METRICS = ["interval_coverage", "interval_width"]
BUCKETS, LEVEL = 512, 0.95


def regression_window(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shadow predictions of two versions (v2 better), integer labels with zeros and ties,
    some labels missing and some late."""
    ids = np.array([f"r{i:07d}" for i in range(n)])
    y = np.round(rng.gamma(2.0, 20.0, n))  # integers: ties and some zeros
    y[rng.random(n) < 0.05] = 0.0
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, n), unit="s")
    country = rng.choice(["US", "GB", "DE"], n, p=[0.5, 0.3, 0.2])
    device = rng.choice(["ios", "android", "web"], n)
    frames = []
    for i, version in enumerate(["v1", "v2"]):
        noise = rng.normal(1.0 - 0.5 * i, 8.0 - 3.0 * i, n)
        prediction = np.round(y + noise, 1)  # rounded: tied predictions
        # Interval half-widths from their own stream (the other draws stay as they were);
        # rounded, so some bounds tie the label.
        half_width = np.round(np.random.default_rng([n, i]).gamma(4.0, 2.0 + i, n), 1)
        frames.append(
            pd.DataFrame(
                {
                    "prediction_id": ids,
                    "ts": ts,
                    "model_version": version,
                    "prediction": prediction,
                    "low": prediction - half_width,
                    "high": prediction + half_width,
                    "country": country,
                    "device": device,
                }
            )
        )
    labeled = rng.random(n) >= 0.1
    delay_days = rng.uniform(0, 20, n)
    labels = pd.DataFrame(
        {
            "prediction_id": ids[labeled],
            "label": y[labeled],
            "labeled_at": (ts + pd.to_timedelta(delay_days, unit="D"))[labeled],
        }
    )
    return pd.concat(frames, ignore_index=True), labels


def regression_spec(url: str, interval: bool = False, **overrides) -> dict:
    predictions = {"table": "inference_logs", "prediction": "prediction"}
    if interval:
        predictions["interval"] = {"lower": "low", "upper": "high"}
    return base_spec(url, task="regression", predictions=predictions, **overrides)


def oracle(metric: str, y: np.ndarray, p: np.ndarray, part: pd.DataFrame) -> tuple[float, int]:
    """The metric and its n, from scikit-learn, numpy or by hand."""
    if metric == "median_absolute_error":
        return (skm.median_absolute_error(y, p) if len(y) else np.nan), len(y)
    if metric == "interval_coverage":
        inside = (part["low"] <= part["label"]) & (part["label"] <= part["high"])
        return (float(inside.mean()) if len(y) else np.nan), len(y)
    if metric == "interval_width":
        return (float(np.mean(part["high"] - part["low"])) if len(y) else np.nan), len(y)
    if metric == "mae":
        return skm.mean_absolute_error(y, p), len(y)
    if metric == "mse":
        return skm.mean_squared_error(y, p), len(y)
    if metric == "rmse":
        return float(np.sqrt(skm.mean_squared_error(y, p))), len(y)
    if metric == "r2":
        return (skm.r2_score(y, p) if len(y) >= 2 else np.nan), len(y)
    if metric == "bias":
        return float(np.mean(p - y)) if len(y) else np.nan, len(y)
    if metric == "mape":
        nonzero = y != 0
        value = float(np.mean(np.abs(p - y)[nonzero] / np.abs(y[nonzero])))
        return (value if nonzero.any() else np.nan), int(nonzero.sum())
    raise ValueError(metric)


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
    checked = 0
    for row in metrics.itertuples(index=False):
        part = slice_rows(rows[rows["model_version"] == row.model_version], row.slice)
        y = part["label"].to_numpy(float)
        p = part["prediction"].to_numpy(float)
        expected, n = oracle(row.metric, y, p, part)
        assert row.n == n, (row.slice, row.metric)
        if np.isnan(expected):
            assert np.isnan(row.value), (row.slice, row.metric)
        elif row.metric == "median_absolute_error":  # binned: within its reported bound
            assert abs(row.value - expected) <= row.error_bound + 1e-12, (row.slice, row.value)
            assert row.error_bound <= 0.0055 * expected + 1e-12, (row.slice, row.error_bound)
            checked += 1
        else:
            assert row.value == pytest.approx(expected, rel=1e-9, abs=1e-9), (row.slice, row.metric)
            checked += 1
    return checked


@pytest.mark.parametrize("seed", range(4))
def test_regression_metrics_match_sklearn_on_every_slice(tmp_path, seed):
    rng = np.random.default_rng(seed)
    predictions, labels = regression_window(rng, int(rng.integers(400, 2500)))
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    result = evaluate(parse_spec(regression_spec(url, interval=True)), WEEK)
    assert set(result.metrics["metric"]) == set(METRICS + INTERVAL_METRICS)
    assert check_against_oracle(result.metrics, predictions, labels) > 100
    ci = result.metrics.dropna(subset=["value"])
    assert (ci["ci_low"] <= ci["value"]).all() and (ci["value"] <= ci["ci_high"]).all()


@pytest.mark.postgres
def test_postgresql_gives_the_oracle_values_and_duckdbs_numbers(tmp_path, postgres_url):
    rng = np.random.default_rng(21)
    predictions, labels = regression_window(rng, 1500)
    path = tmp_path / "w.duckdb"
    url = write_warehouse(path, predictions, labels)
    copy_duckdb_tables(path, postgres_url, ["inference_logs", "labels"], replace=True)
    duck = evaluate(parse_spec(regression_spec(url, interval=True)), WEEK)
    pg = evaluate(parse_spec(regression_spec(postgres_url, interval=True)), WEEK)
    assert check_against_oracle(pg.metrics, predictions, labels) > 100
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


def test_constant_label_r2_follows_sklearn(tmp_path):
    rng = np.random.default_rng(5)
    predictions, labels = regression_window(rng, 300)
    labels["label"] = 7.0
    exact = predictions["model_version"] == "v1"
    predictions.loc[exact, "prediction"] = 7.0  # v1 perfect: R² 1.0; v2 imperfect: 0.0
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    result = evaluate(parse_spec(regression_spec(url, metrics=["r2", "mae"])), WEEK)
    overall = result.metrics.query("slice == 'overall' and metric == 'r2'").set_index(
        "model_version"
    )["value"]
    y = np.full(10, 7.0)
    assert overall["v1"] == skm.r2_score(y, y) == 1.0
    assert overall["v2"] == skm.r2_score(y, y + np.arange(10)) == 0.0


def test_paired_mae_delta_agrees_with_a_row_level_paired_bootstrap(tmp_path):
    rng = np.random.default_rng(11)
    predictions, labels = regression_window(rng, 3000)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    # 512 buckets and 2000 replicates: the bucket-bootstrap SE's own noise is about 3%
    # (``1 / sqrt(2 (K - 1))``), as in test_comparison_oracle.
    confidence = {"buckets": BUCKETS, "replicates": 2000, "level": LEVEL}
    spec = regression_spec(url, metrics=["mae", "rmse", "bias"], confidence=confidence)
    result = evaluate(parse_spec(spec), WEEK)
    rows = evaluated_rows(predictions, labels)
    rows = rows[rows["label"].notna()]
    wide = rows.pivot(index="prediction_id", columns="model_version", values="prediction")
    y = rows.drop_duplicates("prediction_id").set_index("prediction_id")["label"]
    wide = wide.join(y)
    err1 = np.abs(wide["v1"] - wide["label"]).to_numpy()
    err2 = np.abs(wide["v2"] - wide["label"]).to_numpy()
    draws = np.random.default_rng(0).integers(0, len(err1), (1000, len(err1)))
    boot = err2[draws].mean(1) - err1[draws].mean(1)
    row = result.comparison.query("slice == 'overall' and metric == 'mae'").iloc[0]
    assert row.delta == pytest.approx(err2.mean() - err1.mean(), rel=1e-9)
    assert row.delta < 0 and row.delta_ci_high < 0
    assert row.outcome == "improved"  # lower MAE is better
    # The interval is 2 t SE wide, with the SE of a row-level paired bootstrap (the oracle's
    # own noise about 2% at 1000 replicates): within [0.8, 1.25].
    t = stats.t.isf((1 - LEVEL) / 2, BUCKETS - 1)
    ratio = (row.delta_ci_high - row.delta_ci_low) / (2 * t * boot.std(ddof=1))
    assert 0.8 <= ratio <= 1.25


def test_boolean_label_is_refused_naming_the_column(tmp_path):
    rng = np.random.default_rng(2)
    predictions, labels = regression_window(rng, 200)
    labels["label"] = labels["label"] > 20
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    with pytest.raises(Exception, match=r"labels\.label: column 'label'.*BOOLEAN"):
        evaluate(parse_spec(regression_spec(url)), WEEK)


def test_regression_spec_requires_a_prediction_column_and_an_interval_for_its_metrics():
    spec = base_spec("duckdb:///w.duckdb", task="regression")
    with pytest.raises(SpecError, match=r"predictions\.prediction: required"):
        parse_spec(spec)
    assert parse_spec(regression_spec("duckdb:///w.duckdb")).metrics == METRICS
    with_interval = parse_spec(regression_spec("duckdb:///w.duckdb", interval=True))
    assert with_interval.metrics == METRICS + INTERVAL_METRICS
    spec = regression_spec("duckdb:///w.duckdb", metrics=["mae", "interval_coverage"])
    with pytest.raises(SpecError, match=r"'interval_coverage' needs predictions\.interval"):
        parse_spec(spec)


def test_r2_keeps_its_digits_for_labels_far_from_zero(tmp_path):
    """Labels around 1e6 with noise of 1: ``sum y**2 - (sum y)**2 / n`` would lose every
    digit of SST (1e12-sized terms); the centred sums give scikit-learn's R² to 1e-9."""
    rng = np.random.default_rng(9)
    predictions, labels = regression_window(rng, 2000)
    labels["label"] = 1e6 + rng.normal(0, 1, len(labels))
    good = predictions["model_version"] == "v2"
    truth = labels.set_index("prediction_id")["label"]
    near = predictions["prediction_id"].map(truth).fillna(1e6).to_numpy()
    noise = rng.normal(0, np.where(good, 0.3, 0.8))
    predictions["prediction"] = near + noise
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    result = evaluate(parse_spec(regression_spec(url, metrics=["r2", "mae"])), WEEK)
    assert check_against_oracle(result.metrics, predictions, labels) > 50
    overall = result.metrics.query("slice == 'overall' and metric == 'r2'")
    assert overall["value"].between(0.2, 1.0).all()


def test_run_writes_rows_report_and_a_verdict_gated_on_mae(tmp_path, capsys):
    """`eval-pipelines run` end to end: v2 is worse on one planted slice (device=web), and a
    max_regression gate on mae (lower is better) holds on that slice only."""
    rng = np.random.default_rng(8)
    predictions, labels = regression_window(rng, 3000)
    web = (predictions["model_version"] == "v2") & (predictions["device"] == "web")
    predictions.loc[web, "prediction"] += 12.0
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = regression_spec(url, gates=[{"metric": "mae", "max_regression": 0.5}])
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    assert main(["run", "--spec", str(path), "--week", WEEK, "--out", str(out), "--quiet"]) == 0
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["decision"] == "hold"
    held = [r for r in verdict["reasons"] if r["outcome"] == "hold"]
    assert held and all("device=web" in r["slice"] for r in held)
    comparison = pd.read_parquet(out / "comparison.parquet")
    web_mae = comparison.query("slice == 'device=web' and metric == 'mae'").iloc[0]
    assert web_mae.outcome == "regressed" and web_mae.delta > 0.5
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert set(metrics["metric"]) == set(METRICS)
    mape_n = metrics.query("metric == 'mape'").set_index(["model_version", "slice"])["n"]
    mae_n = metrics.query("metric == 'mae'").set_index(["model_version", "slice"])["n"]
    rows = evaluated_rows(predictions, labels)
    zero = rows[rows["label"] == 0].groupby("model_version").size()
    assert (mae_n - mape_n).xs("overall", level="slice").to_dict() == zero.to_dict()
    report = (out / "report.md").read_text()
    assert "Mean absolute error" in report and "device=web" in report


def test_nan_predictions_and_infinite_labels_fail_the_input_checks(tmp_path):
    rng = np.random.default_rng(4)
    predictions, labels = regression_window(rng, 400)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    rows = evaluated_rows(predictions, labels)
    labeled = rows[rows["label"].notna()]["prediction_id"].unique()[:2].tolist()
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(
        "UPDATE inference_logs SET prediction = 'nan'::DOUBLE "
        "WHERE model_version = 'v2' AND prediction_id IN ('r0000001', 'r0000002', 'r0000003')"
    )
    con.execute("UPDATE labels SET label = 'inf'::DOUBLE WHERE prediction_id IN (?, ?)", labeled)
    con.close()
    with pytest.raises(ValidationFailed) as info:
        evaluate(parse_spec(regression_spec(url)), WEEK)
    message = str(info.value)
    assert "predictions.prediction: 3 rows of version 'v2' have a 'prediction' that is NaN" in (
        message
    )
    assert "labels.label: 2 labels joined to version 'v1' are NaN or infinite" in message


def test_an_inverted_or_infinite_interval_fails_the_input_checks(tmp_path):
    rng = np.random.default_rng(6)
    predictions, labels = regression_window(rng, 400)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(
        "UPDATE inference_logs SET low = high + 1 "
        "WHERE model_version = 'v1' AND prediction_id IN ('r0000001', 'r0000002')"
    )
    con.execute(
        "UPDATE inference_logs SET high = 'inf'::DOUBLE "
        "WHERE model_version = 'v2' AND prediction_id = 'r0000005'"
    )
    con.close()
    with pytest.raises(ValidationFailed) as info:
        evaluate(parse_spec(regression_spec(url, interval=True)), WEEK)
    message = str(info.value)
    assert "predictions.interval: 2 rows of version 'v1' have 'low' > 'high'" in message
    assert "predictions.interval.upper: 1 rows of version 'v2' have a 'high' that is NaN" in (
        message
    )
