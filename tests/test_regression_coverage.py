"""Coverage simulation for the regression task: 95% intervals of MAE and RMSE (the paired
bucket bootstrap over exact sums) cover the population value in 93-97% of repeats.

Model: ``y ~ N(0, 1)`` (its distribution does not enter the error metrics), prediction
``y + e`` with ``e ~ N(0, SIGMA**2)``, so MAE's population value is ``SIGMA sqrt(2 / pi)`` and
RMSE's is ``SIGMA``. Each repeat is an independent sample of N rows, one slice of one window,
so one engine run yields every interval (the pattern of ``test_interval_coverage.py``, whose
binomial bands and 1000 replicates this reuses). REPEATS = 2000 gives a coverage band of about
[93.5%, 96.4%] and per-tail bands around 2.5%.

Measured, 2000 repeats per seed, seeds 2024, 1, 2: MAE coverage 95.6%, 94.3%, 95.1% (above
the truth 1.9-2.4%, below 2.5-3.4%); RMSE 95.1%, 94.0%, 94.7%, but its interval lies below the
truth in 3.3%, 4.1%, 3.75% of repeats (above: 1.6-1.9%). That tail is a first-order property
of the percentile interval, not of the buckets: the MSE of N rows is right-skewed (a scaled
chi-square) and its square root biased low, so the replicates' spread is smaller on the side
the estimate falls to. RMSE's lower tail is checked against a band around the measured 3.7%
(``KNOWN``, as ``test_interval_coverage.py`` does for PR AUC); every other tail and both
coverages against the nominal bands, and coverage within 93-97%.
"""

import numpy as np
import pandas as pd
from support.coverage import band_failures, engine_tables, miss_rates, report
from support.data import WEEK_START, write_warehouse

from eval_pipelines.spec import parse_spec

SIGMA = 2.0
REPEATS, N = 2000, 400
LEVEL, REPLICATES = 0.95, 1000
SEED = 2024
# Measured rates of a first-order interval, documented above: (metric, side) -> rate.
KNOWN = {("rmse", "below"): 0.037}


def test_mae_and_rmse_intervals_cover_the_truth_on_each_side(tmp_path):
    rng = np.random.default_rng(SEED)
    total = REPEATS * N
    y = rng.normal(size=total)
    ids = np.arange(total, dtype=np.int64)
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, total), unit="s")
    predictions = pd.DataFrame(
        {
            "prediction_id": ids,
            "ts": ts,
            "model_version": "v1",
            "prediction": y + SIGMA * rng.normal(size=total),
            "repeat": np.repeat(np.arange(REPEATS, dtype=np.int32), N),
        }
    )
    labels = pd.DataFrame({"prediction_id": ids, "label": y, "labeled_at": ts})
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = parse_spec(
        {
            "model": "coverage",
            "task": "regression",
            "warehouse": url,
            "predictions": {"table": "inference_logs", "prediction": "prediction"},
            "labels": {"table": "labels"},
            "slices": ["repeat"],
            "min_slice_size": 1,
            "max_slice_values": 100_000,
            "metrics": ["mae", "rmse"],
            "confidence": {"level": LEVEL, "replicates": REPLICATES},
        }
    )
    frame, _ = engine_tables(spec)
    rows = frame[frame["slice"] != "overall"]
    truths = {"mae": SIGMA * np.sqrt(2 / np.pi), "rmse": SIGMA}
    rates = miss_rates(rows, truths, "ci_low", "ci_high")
    report("regression, 64 buckets", rates)
    assert all(rate["n"] == REPEATS for rate in rates.values())
    assert all(0.93 <= rate["coverage"] <= 0.97 for rate in rates.values())
    failures = band_failures(rates, LEVEL, KNOWN)
    assert not failures, "\n".join(failures)
