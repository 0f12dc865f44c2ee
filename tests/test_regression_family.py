"""The regression family and metric functions on hand-built sums, against scikit-learn.

The end-to-end oracle (test_regression_oracle.py) checks the numbers through the warehouse;
these check what a metric author relies on: each registry function of the sums equals
scikit-learn (or the pinned definition by hand) on the rows the sums came from, the
constant-label R² follows scikit-learn, and a bucket-bootstrap replicate equals the metric on
the rows of the drawn buckets.
"""

import numpy as np
import pytest
from sklearn import metrics as skm

from eval_pipelines.stats.regression import (
    ERROR_HISTOGRAM_FAMILY,
    FIELDS,
    REGRESSION_FAMILY,
    ErrorHistogram,
    RegressionBuckets,
)
from eval_pipelines.tasks.regression import (
    bias,
    mae,
    mape,
    median_absolute_error,
    median_absolute_error_bound,
    mse,
    r2,
    rmse,
)

K = 8


def sums_of(y: np.ndarray, p: np.ndarray, bucket: np.ndarray) -> RegressionBuckets:
    """``sums[1, 1, K, F]`` built row by row, as the SQL defines each column."""
    e = p - y
    nonzero = y != 0
    columns = {
        "n": np.ones_like(y),
        "error_sum": e,
        "abs_error_sum": np.abs(e),
        "squared_error_sum": e * e,
        "centred_label_sum": y - 30.0,  # any constant centre gives the same SST
        "centred_squared_label_sum": (y - 30.0) ** 2,
        "n_nonzero_label": nonzero.astype(float),
        "relative_error_sum": np.where(nonzero, np.abs(e) / np.where(nonzero, np.abs(y), 1), 0),
        "n_zero_label": (~nonzero).astype(float),
        "n_interval": np.zeros_like(y),
        "n_covered": np.zeros_like(y),
        "interval_width_sum": np.zeros_like(y),
    }
    sums = np.zeros((1, 1, K, len(FIELDS)))
    for f, name in enumerate(FIELDS):
        np.add.at(sums[0, 0, :, f], bucket, columns[name])
    return RegressionBuckets(sums=sums, unlabeled=np.zeros((1, 1, K)))


def rows(seed: int, n: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.round(rng.normal(30, 10, n))
    y[:20] = 0.0
    return y, y + rng.normal(0.5, 4, n), rng.integers(0, K, n)


@pytest.mark.parametrize("seed", range(3))
def test_metric_functions_of_the_sums_equal_sklearn(seed):
    y, p, bucket = rows(seed)
    point = REGRESSION_FAMILY.point(sums_of(y, p, bucket))
    nonzero = y != 0
    expected = {
        mae: skm.mean_absolute_error(y, p),
        mse: skm.mean_squared_error(y, p),
        rmse: np.sqrt(skm.mean_squared_error(y, p)),
        r2: skm.r2_score(y, p),
        bias: np.mean(p - y),
        mape: np.mean(np.abs(p - y)[nonzero] / np.abs(y[nonzero])),
    }
    for function, value in expected.items():
        assert function(point)[0, 0] == pytest.approx(value, rel=1e-12), function.__name__
    zeros = int((y == 0).sum())
    assert zeros >= 20
    assert point.n_zero_label[0, 0] == zeros and point.n_nonzero_label[0, 0] == len(y) - zeros
    # Without zero labels, MAPE is scikit-learn's.
    kept = REGRESSION_FAMILY.point(sums_of(y[nonzero], p[nonzero], bucket[nonzero]))
    expected_mape = skm.mean_absolute_percentage_error(y[nonzero], p[nonzero])
    assert mape(kept)[0, 0] == pytest.approx(expected_mape, rel=1e-12)


def test_constant_label_r2_and_small_samples_follow_sklearn():
    y = np.full(6, 3.25)
    bucket = np.arange(6) % K
    perfect = REGRESSION_FAMILY.point(sums_of(y, y.copy(), bucket))
    off = REGRESSION_FAMILY.point(sums_of(y, y + 0.5, bucket))
    assert r2(perfect)[0, 0] == skm.r2_score(y, y) == 1.0
    assert r2(off)[0, 0] == skm.r2_score(y, y + 0.5) == 0.0
    one = REGRESSION_FAMILY.point(sums_of(y[:1], y[:1] + 1, bucket[:1]))
    assert np.isnan(r2(one)[0, 0]) and mae(one)[0, 0] == 1.0
    empty = REGRESSION_FAMILY.point(sums_of(y[:0], y[:0], bucket[:0]))
    assert all(np.isnan(f(empty)[0, 0]) for f in (mae, mse, rmse, r2, bias, mape))


def test_a_bucket_replicate_is_the_metric_on_the_drawn_buckets_rows():
    y, p, bucket = rows(7)
    weights = np.zeros((2, K))
    weights[0, [1, 3]] = 1.0  # replicate 0: buckets 1 and 3 once
    weights[1, 2] = 2.0  # replicate 1: bucket 2 twice (a twice-drawn row counts twice)
    replicates = REGRESSION_FAMILY.reweight(sums_of(y, p, bucket), weights)  # [g, v, B, F]
    drawn = np.isin(bucket, [1, 3])
    assert r2(replicates)[0, 0, 0] == pytest.approx(skm.r2_score(y[drawn], p[drawn]), rel=1e-12)
    twice = np.repeat(np.flatnonzero(bucket == 2), 2)
    assert mse(replicates)[0, 0, 1] == pytest.approx(
        skm.mean_squared_error(y[twice], p[twice]), rel=1e-12
    )


def error_histogram(abs_error: np.ndarray) -> ErrorHistogram:
    """``count[1, 1, C]`` with each bin's smallest and largest value, binned as the SQL bins
    (128 log-spaced bins per factor of 2, zero apart), only the bins that hold rows."""
    with np.errstate(divide="ignore"):
        bins = np.where(abs_error == 0, -(10**9), np.floor(np.log2(abs_error) * 128))
    unique, position = np.unique(bins, return_inverse=True)
    C = len(unique)
    count = np.bincount(position, minlength=C).astype(float)
    low = np.full(C, np.inf)
    high = np.full(C, -np.inf)
    np.minimum.at(low, position, abs_error)
    np.maximum.at(high, position, abs_error)
    return ErrorHistogram(count[None, None], low[None, None], high[None, None])


@pytest.mark.parametrize("n", [1, 2, 3, 10, 501, 2000])
def test_median_absolute_error_is_within_its_bound_of_sklearn(n):
    rng = np.random.default_rng(n)
    y = rng.normal(50, 20, n)
    p = y + rng.standard_t(3, n) * 5
    p[: n // 10] = y[: n // 10]  # exact predictions: |e| = 0
    hist = error_histogram(np.abs(p - y))
    value = median_absolute_error(hist)[0, 0]
    bound = median_absolute_error_bound(hist)[0, 0]
    exact = skm.median_absolute_error(y, p)
    assert abs(value - exact) <= bound + 1e-12
    assert bound <= 0.0055 * exact + 1e-12  # a bin spans at most a factor 2**(1/128)


def test_median_absolute_error_is_exact_on_few_distinct_errors():
    abs_error = np.array([0.0, 0.0, 1.5, 1.5, 1.5, 3.0, 7.0, 7.0])
    hist = error_histogram(abs_error)
    assert median_absolute_error(hist)[0, 0] == np.median(abs_error) == 1.5
    assert median_absolute_error_bound(hist)[0, 0] == 0.0
    empty = ErrorHistogram(np.zeros((1, 1, 3)), hist.low[..., :3], hist.high[..., :3])
    assert np.isnan(median_absolute_error(empty)[0, 0])


def test_error_histogram_replicates_redraw_counts_and_keep_bin_ranges():
    hist = error_histogram(np.abs(np.random.default_rng(1).normal(0, 3, 800)))
    coarse = ERROR_HISTOGRAM_FAMILY.coarsen(hist, None)
    assert coarse.count.sum() == 800 and coarse.count.shape[-1] <= 128
    assert (np.diff(coarse.low[0, 0]) > 0).all()  # merged bins stay ordered
    drawn = ERROR_HISTOGRAM_FAMILY.redraw(coarse, np.array([0]), 300, np.random.default_rng(2))
    values = median_absolute_error(drawn)  # [g, v, B]
    assert values.shape == (1, 1, 300)
    # The replicates' spread is the row-level bootstrap's (both noisy: within 0.7-1.4).
    rows = np.abs(np.random.default_rng(1).normal(0, 3, 800))
    draws = np.random.default_rng(3).integers(0, 800, (300, 800))
    row_sd = np.median(rows[draws], axis=1).std()
    assert 0.7 <= values.std() / row_sd <= 1.4
