"""Small warehouses built from arrays, for tests that need exact control over the rows."""

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

WEEK = "2026-11-16"
WEEK_START = pd.Timestamp(WEEK)


def write_warehouse(path: Path, predictions: pd.DataFrame, labels: pd.DataFrame) -> str:
    """Write ``inference_logs`` and ``labels`` to a DuckDB file; return its SQLAlchemy URL."""
    con = duckdb.connect(str(path))
    try:
        con.register("predictions_frame", predictions)
        con.register("labels_frame", labels)
        con.execute("CREATE OR REPLACE TABLE inference_logs AS SELECT * FROM predictions_frame")
        con.execute("CREATE OR REPLACE TABLE labels AS SELECT * FROM labels_frame")
    finally:
        con.close()
    return f"duckdb:///{path}"


def random_window(
    rng: np.random.Generator,
    n: int,
    versions: tuple[str, ...] = ("v1", "v2"),
    unlabeled: float = 0.1,
    ties: bool = False,
    countries: tuple[str, ...] = ("US", "GB", "DE", "BR"),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shadow-scored requests in the test week with some unlabeled and some late labels."""
    ids = np.array([f"r{i:07d}" for i in range(n)])
    y = rng.integers(0, 2, n) if rng.random() < 0.5 else (rng.random(n) < 0.2).astype(int)
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, n), unit="s")
    country = rng.choice(
        countries, n, p=np.linspace(2, 1, len(countries)) / np.linspace(2, 1, len(countries)).sum()
    )
    device = rng.choice(["ios", "android", "web"], n)
    frames = []
    for i, version in enumerate(versions):
        logit = (0.8 + 0.4 * i) * (2 * y - 1) + rng.normal(0, 1.2, n)
        score = 1 / (1 + np.exp(-logit))
        if ties:
            score = np.round(score, 2)
        score = np.clip(score, 1e-6, 1 - 1e-6) if not ties else score
        frames.append(
            pd.DataFrame(
                {
                    "prediction_id": ids,
                    "ts": ts,
                    "model_version": version,
                    "score": score,
                    "country": country,
                    "device": device,
                }
            )
        )
    labeled = rng.random(n) >= unlabeled
    delay_days = rng.uniform(0, 20, n)  # some arrive after the 14-day maximum delay
    labels = pd.DataFrame(
        {
            "prediction_id": ids[labeled],
            "label": y[labeled],
            "labeled_at": (ts + pd.to_timedelta(delay_days, unit="D"))[labeled],
        }
    )
    return pd.concat(frames, ignore_index=True), labels


def base_spec(url: str, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": "test_model",
        "warehouse": url,
        "predictions": {"table": "inference_logs"},
        "labels": {"table": "labels", "max_delay": "14d"},
        "slices": ["country", "device", ["country", "device"]],
        "min_slice_size": 20,
        "compare": {"baseline": "v1", "candidate": "v2"},
    }
    spec.update(overrides)
    return spec


def evaluated_rows(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The rows the engine should evaluate, computed independently with pandas: labeled within
    14 days of the prediction, inside the week."""
    joined = predictions.merge(labels, on="prediction_id", how="left")
    in_week = (joined["ts"] >= WEEK_START) & (joined["ts"] < WEEK_START + pd.Timedelta(days=7))
    mature = (joined["labeled_at"] >= joined["ts"]) & (
        joined["labeled_at"] <= joined["ts"] + pd.Timedelta(days=14)
    )
    out = joined[in_week].copy()
    out["label"] = out["label"].where(mature[in_week])
    return out


# The artifact folder's contract as the README documents it ("Artifacts"): what every run
# writes, written out here independently of the writer.
ARTIFACT_FILES = frozenset(
    {
        "metrics.parquet",
        "comparison.parquet",
        "drift.parquet",
        "coverage.parquet",
        "curves.parquet",
        "validation.json",
        "verdict.json",
        "run.json",
        "queries.json",
        "report.md",
        "report.html",
        "model_card.md",
    }
)


# The artifact columns as the README documents them ("Artifacts"), written out independently of
# the writer's own lists.
METRICS_COLUMNS = [
    "model_version",
    "slice",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "n_positive",
    "status",
    "error_bound",
]
COMPARISON_COLUMNS = [
    "slice",
    "metric",
    "baseline",
    "candidate",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "p_value",
    "q_value",
    "test",
    "n",
    "outcome",
]


def ece_oracle(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error from rows: ``sum_b (n_b / N) |mean score_b - positive
    rate_b|`` over equal-width bins of [0, 1] (Naeini et al. 2015)."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            total += in_bin.sum() / len(y) * abs(p[in_bin].mean() - y[in_bin].mean())
    return total
