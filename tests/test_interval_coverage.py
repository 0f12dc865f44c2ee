"""Coverage simulation: 95% intervals miss the true value in 2.5% of repeats on each side.

Model (tests/support/coverage.py): ``y ~ Bernoulli(PI)``, score
``sigmoid(INTERCEPT + SEPARATION y + NOISE e)`` with ``e ~ N(0, 1)``, threshold at logit
``CUT``; every metric's population value comes from scipy integration (F1 from tpr and fpr,
average precision = integral of precision dTPR, ECE = sum_b |E[(s - y) 1{s in b}]|). Each
repeat is an independent sample of N rows, one slice of one window, so one engine run yields
every interval.

Checks, per metric: the share of repeats whose interval lies entirely above the truth and
the share entirely below must each lie in a two-sided binomial acceptance band around
(1 - level) / 2, and coverage in one around the level (false-alarm rate 0.2% per band).
With REPEATS = 4000 the coverage band is [93.90%, 96.03%]: a method that covers 93% fails
with probability 0.99, one that misses 4.5% on one side fails with probability >0.999.

Design choices, each measured:

* ``replicates: 1000``. At the default 200 the 2.5% and 97.5% quantiles of the replicates
  (type-7 order statistics) lie on average 2.3% inside the normal quantiles, with 9% noise:
  that alone costs about a point of coverage (measured 93.1-94.6% on the threshold metrics
  with 2000 repeats and three bootstrap seeds), too close to the two points to detect.
* Metrics away from 0 and 1 (PI = 0.5, ROC AUC 0.75, recall 0.68). Percentile intervals are
  first-order accurate: for a skewed estimator whose spread shrinks towards its bound they
  miss more often on one side. With the previous design (recall 0.84 on 300 positives,
  ROC AUC 0.92) the interval lay above the truth in 3.45% (recall) and 4.1% (ROC AUC) of
  repeats and below in 1.7-1.8%: a real O(n^-1/2) property of the method, too large for a
  per-tail band at this sample size.
* Scores overconfident everywhere (NOISE**2 = SEPARATION makes P(y=1 | score) =
  sigmoid(logit(score) - 0.95)), so every calibration bin's E[(s - y) 1{s in b}] is several
  standard errors from 0 at N rows. ECE sums absolute values: a bin near calibration biases
  it upward, and the percentile interval, whose replicates carry the same bias, doubles
  it. With the previous design (two bins within 1 SE of calibration) ECE's bias was 0.18 SD
  and its interval lay above the truth in 6.9% of repeats and below in 0.7%; here the bias
  is 0.02 SD and ECE is tested against its population value like the other metrics.
* PR AUC's interval lies above the truth in 3.4% of repeats rather than 2.5% (3.65%, 3.28%,
  3.17% with seeds 1-3, 12,000 repeats in all; below: 2.2%, coverage 94.2-94.6%): the
  interval narrows as the estimate rises (correlation of width and estimate -0.78), which a
  first-order interval does not correct. Not the binning: 250 bootstrap bins instead of 50
  change nothing. That tail is checked against a band around the measured 3.4% (``KNOWN``);
  its other tail and its coverage against the nominal bands.
* The statistics come from the engine's DuckDB queries and evaluation code; the input checks
  are skipped (``support.coverage.engine_tables``).
* A second run on the same rows uses ``confidence.buckets: 8``, where the small-cluster
  correction ``deviation_scale`` is 1.29 (1.03 at the default 64). With it replaced by 1,
  coverage of the threshold metrics fell to 88.3-89.3%; by sqrt(K/(K-1)) alone, to
  90.0-91.2%; every deviation shrunk by 0.924 (about 93% coverage) failed all three tests.

Measured with this design, 4000 repeats per seed, data seeds 1, 2, 3 and 2024: coverage at
64 buckets 94.2-95.5% for every metric (PR AUC 94.2-94.6%), each tail 2.0-3.1% (PR AUC
above the truth 3.2-3.7%); at 8 buckets 94.1-95.3%, each tail 2.1-3.2%.
"""

import numpy as np
import pandas as pd
import pytest
from support.coverage import (
    band_failures,
    engine_tables,
    miss_rates,
    population_values,
    report,
    sigmoid,
)
from support.data import WEEK_START, write_warehouse

from eval_pipelines.spec import parse_spec

PI, INTERCEPT, SEPARATION = 0.5, 0.5, 0.9
NOISE = float(np.sqrt(SEPARATION))
CUT = INTERCEPT + SEPARATION / 2  # the threshold's logit: recall = specificity
REPEATS, N = 4000, 1000
LEVEL, REPLICATES = 0.95, 1000
SEED = 2024

THRESHOLD_METRICS = ["accuracy", "precision", "recall", "f1", "log_loss", "brier"]
# Measured rates of a first-order interval, documented above: (metric, side) -> rate.
KNOWN = {("pr_auc", "above"): 0.034}


def truth() -> dict[str, float]:
    return population_values(PI, INTERCEPT, SEPARATION, NOISE, CUT)


def write_repeats(path, seed: int, repeats: int = REPEATS, n: int = N) -> str:
    """``repeats`` independent samples of ``n`` rows, one slice value each, in one week."""
    rng = np.random.default_rng(seed)
    total = repeats * n
    y = (rng.random(total) < PI).astype(np.int8)
    score = sigmoid(INTERCEPT + SEPARATION * y + NOISE * rng.normal(size=total))
    ids = np.arange(total, dtype=np.int64)
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, total), unit="s")
    predictions = pd.DataFrame(
        {
            "prediction_id": ids,
            "ts": ts,
            "model_version": "v1",
            "score": score,
            "repeat": np.repeat(np.arange(repeats, dtype=np.int32), n),
        }
    )
    labels = pd.DataFrame({"prediction_id": ids, "label": y, "labeled_at": ts})
    return write_warehouse(path, predictions, labels)


def repeat_intervals(
    url: str, metrics: list[str], buckets: int = 64, score_bins: int = 50
) -> pd.DataFrame:
    """The engine's rows of ``metrics`` for every repeat (one slice per repeat)."""
    spec = parse_spec(
        {
            "model": "coverage",
            "warehouse": url,
            "predictions": {"table": "inference_logs"},
            "labels": {"table": "labels"},
            "slices": ["repeat"],
            "min_slice_size": 1,
            "max_slice_values": 100_000,
            "threshold": float(sigmoid(CUT)),
            "metrics": metrics,
            "confidence": {
                "level": LEVEL,
                "replicates": REPLICATES,
                "buckets": buckets,
                "score_bins": score_bins,
            },
        }
    )
    frame, _ = engine_tables(spec)
    return frame[frame["slice"] != "overall"]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> str:
    return write_repeats(tmp_path_factory.mktemp("coverage") / "w.duckdb", SEED)


@pytest.mark.slow
def test_95_percent_intervals_cover_the_truth_on_each_side(warehouse):
    """Every metric at the default 64 buckets."""
    truths = truth()
    rows = repeat_intervals(warehouse, list(truths))
    rates = miss_rates(rows, truths, "ci_low", "ci_high")
    report("64 buckets", rates)
    assert all(rate["n"] == REPEATS for rate in rates.values())
    failures = band_failures(rates, LEVEL, KNOWN)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_t_corrected_intervals_cover_with_eight_buckets(warehouse):
    """Threshold metrics with 8 buckets, where the t correction matters (histogram metrics
    do not use buckets; their bootstrap runs anyway, on 10 bins to keep it cheap)."""
    truths = {name: value for name, value in truth().items() if name in THRESHOLD_METRICS}
    rows = repeat_intervals(warehouse, list(truths), buckets=8, score_bins=10)
    rates = miss_rates(rows, truths, "ci_low", "ci_high")
    report("8 buckets", rates)
    assert all(rate["n"] == REPEATS for rate in rates.values())
    failures = band_failures(rates, LEVEL)
    assert not failures, "\n".join(failures)
