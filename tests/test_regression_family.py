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

from eval_pipelines.stats.regression import FIELDS, REGRESSION_FAMILY, RegressionBuckets
from eval_pipelines.tasks.regression import bias, mae, mape, mse, r2, rmse

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
        "label_sum": y,
        "squared_label_sum": y * y,
        "n_nonzero_label": nonzero.astype(float),
        "relative_error_sum": np.where(nonzero, np.abs(e) / np.where(nonzero, np.abs(y), 1), 0),
        "n_zero_label": (~nonzero).astype(float),
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
