"""Evidently's size- and cardinality-aware default drift method, end to end."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from support.data import write_warehouse

from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec

START = pd.Timestamp("2026-10-19")  # four reference weeks, then the evaluated week 2026-11-16


def build(tmp_path, rows_per_week: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    frames = []
    for week in range(5):
        n = rows_per_week
        ts = START + pd.Timedelta(weeks=week) + pd.to_timedelta(rng.integers(0, 7 * 86400, n), "s")
        frames.append(
            pd.DataFrame(
                {
                    "prediction_id": [f"w{week}-{i}" for i in range(n)],
                    "ts": ts,
                    "model_version": "v1",
                    "score": rng.uniform(0.01, 0.99, n),
                    # binary numeric: its share of ones drifts in the evaluated week
                    "is_new": (rng.random(n) < (0.6 if week == 4 else 0.3)).astype(int),
                    "never_set": np.where(week == 4, 1.0, np.nan),
                }
            )
        )
    predictions = pd.concat(frames, ignore_index=True)
    labels = pd.DataFrame(
        {
            "prediction_id": predictions["prediction_id"],
            "label": (rng.random(len(predictions)) < 0.3).astype(int),
            "labeled_at": predictions["ts"],
        }
    )
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = parse_spec(
        {
            "model": "m",
            "warehouse": url,
            "predictions": {"table": "inference_logs"},
            "labels": {"table": "labels"},
            "drift": {"reference_weeks": 4, "features": ["is_new", "never_set"]},
        }
    )
    return predictions, evaluate(spec, "2026-11-16").drift


def test_binary_numeric_feature_gets_the_z_test_up_to_1000_reference_rows(tmp_path):
    predictions, drift = build(tmp_path, rows_per_week=200)
    rows = drift[drift["feature"] == "is_new"].set_index("method")
    assert rows.loc["z_test", "default"]
    assert rows["default"].sum() == 1
    current = predictions["ts"] >= pd.Timestamp("2026-11-16")
    table = np.array(
        [
            np.bincount(predictions.loc[~current, "is_new"], minlength=2),
            np.bincount(predictions.loc[current, "is_new"], minlength=2),
        ]
    )
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    assert rows.loc["z_test", "statistic"] ** 2 == pytest.approx(chi2, rel=1e-9)
    assert rows.loc["z_test", "p_value"] == pytest.approx(p, rel=1e-9)
    assert rows.loc["z_test", "drifted"]


def test_above_1000_reference_rows_a_binary_feature_gets_jensen_shannon(tmp_path):
    _, drift = build(tmp_path, rows_per_week=400)
    rows = drift[drift["feature"] == "is_new"].set_index("method")
    assert rows.loc["jensen_shannon", "default"]
    assert rows["default"].sum() == 1


def test_a_feature_missing_in_every_reference_row_is_reported_not_a_crash(tmp_path):
    _, drift = build(tmp_path, rows_per_week=200)
    rows = drift[drift["feature"] == "never_set"]
    assert (rows["n_reference"] == 0).all()
    assert (rows["missing_reference"] == 800).all()
    assert rows["statistic"].isna().all() and not rows["drifted"].any()
