"""Coverage simulation of the ranking task: 95% intervals of NDCG@10 cover the truth.

Model: lists of ``ITEMS`` results, each relevant with probability ``P_RELEVANT`` with a grade
1 or 2 (else 0), scored ``SEPARATION * grade + e`` with ``e ~ N(0, 1)`` (continuous: no
ties). The truth is the population mean of the per-list NDCG@10 over lists with a relevant
item, from ``TRUTH_LISTS`` simulated lists (its Monte Carlo error, about 1e-4, is under 2%
of one repeat's standard error). Each repeat is ``LISTS`` independent lists, one slice value
(``repeat``, a list-level column), so one engine run over ``REPEATS * LISTS * ITEMS`` rows
yields every interval; the bucket bootstrap resamples lists (a bucket is a hash of the list
id). The statistics come from the engine's DuckDB queries and evaluation code, input checks
skipped (``support.coverage.engine_tables``), with 1000 replicates as in
``test_interval_coverage`` (its docstring measures why).

With ``REPEATS`` = 1500 the coverage band (false-alarm rate 0.2%) is about [93.2%, 96.7%]
and each tail's about [1.4%, 3.8%]. Measured with seeds 2024, 1, 2: coverage 94.4%, 93.7%,
95.1%; the interval lies below the truth in 2.7%, 2.4%, 2.0% of repeats and above it in
2.9%, 3.9%, 2.9% (mean 3.2%): per-list NDCG is bounded by 1 and skewed towards it, and a
first-order percentile interval misses more often on one side (as PR AUC's in
``test_interval_coverage``), so that tail is checked against a band around the measured 3.2%
(``KNOWN``). With 300 lists a repeat (1000 repeats, seeds 1, 2, 2024) the tails were
2.6-3.5% above and 1.1-2.3% below: the asymmetry persists at 2.5 times the lists.
"""

import numpy as np
import pandas as pd
import pytest
from support.coverage import band_failures, engine_tables, miss_rates, report
from support.data import WEEK_START, write_warehouse

from eval_pipelines.spec import parse_spec

ITEMS, P_RELEVANT, SEPARATION = 10, 0.25, 0.8
REPEATS, LISTS, TRUTH_LISTS = 1500, 120, 1_000_000
LEVEL, REPLICATES, SEED = 0.95, 1000, 2024
# Measured tail rate of the first-order interval, documented above: (metric, side) -> rate.
KNOWN = {("ndcg@10", "above"): 0.032}


def simulate(rng: np.random.Generator, lists: int) -> tuple[np.ndarray, np.ndarray]:
    """Grades and scores ``[lists, ITEMS]``."""
    relevant = rng.random((lists, ITEMS)) < P_RELEVANT
    grade = np.where(relevant, rng.integers(1, 3, (lists, ITEMS)), 0)
    score = SEPARATION * grade + rng.normal(size=(lists, ITEMS))
    return grade, score


def ndcg_at_10(grade: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Per-list NDCG@10 (linear gain, log2 discount; NaN without a relevant item)."""
    discount = 1 / np.log2(np.arange(2, ITEMS + 2))[:10]
    served = np.take_along_axis(grade, np.argsort(-score, axis=1), axis=1)[:, :10]
    ideal = -np.sort(-grade, axis=1)[:, :10]
    idcg = ideal @ discount
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(idcg > 0, (served @ discount) / idcg, np.nan)


def truth() -> float:
    grade, score = simulate(np.random.default_rng([SEED, 1]), TRUTH_LISTS)
    return float(np.nanmean(ndcg_at_10(grade, score)))


def write_repeats(path) -> str:
    rng = np.random.default_rng(SEED)
    lists = REPEATS * LISTS
    grade, score = simulate(rng, lists)
    list_of = np.repeat(np.arange(lists), ITEMS)
    ids = np.arange(lists * ITEMS, dtype=np.int64)
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, lists)[list_of], unit="s")
    predictions = pd.DataFrame(
        {
            "prediction_id": ids,
            "list_id": list_of,
            "ts": ts,
            "model_version": "v1",
            "score": score.ravel(),
            "repeat": (list_of // LISTS).astype(np.int32),
        }
    )
    # Implicit feedback: only relevant results have a label row.
    relevant = grade.ravel() > 0
    labels = pd.DataFrame(
        {
            "prediction_id": ids[relevant],
            "label": grade.ravel()[relevant],
            "labeled_at": ts[relevant],
        }
    )
    return write_warehouse(path, predictions, labels)


@pytest.mark.slow
def test_95_percent_ndcg_intervals_cover_the_truth_on_each_side(tmp_path):
    url = write_repeats(tmp_path / "w.duckdb")
    spec = parse_spec(
        {
            "model": "coverage",
            "task": "ranking",
            "warehouse": url,
            "predictions": {"table": "inference_logs", "list_id": "list_id"},
            "labels": {"table": "labels"},
            "slices": ["repeat"],
            "min_slice_size": 1,
            "min_label_coverage": 0.0,
            "max_slice_values": 100_000,
            "metrics": ["ndcg@10"],
            "confidence": {"level": LEVEL, "replicates": REPLICATES},
        }
    )
    frame, _ = engine_tables(spec)
    rows = frame[frame["slice"] != "overall"]
    rates = miss_rates(rows, {"ndcg@10": truth()}, "ci_low", "ci_high")
    report("ndcg@10, 64 buckets", rates)
    assert rates["ndcg@10"]["n"] == REPEATS
    failures = band_failures(rates, LEVEL, KNOWN)
    assert not failures, "\n".join(failures)
