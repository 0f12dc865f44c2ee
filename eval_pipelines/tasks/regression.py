"""The regression task: metrics of a numeric prediction, computed from exact sums.

Every metric is a function of :class:`~eval_pipelines.stats.regression.RegressionSums` (per
slice, version and resample bucket: labeled rows ``n`` and the sums of ``e = prediction -
label``, ``|e|``, ``e**2``, ``y``, ``y**2``, plus ``|e| / |y|`` over the rows with ``y != 0``),
vectorised over any leading axes, so one code path serves point estimates and every
bootstrap replicate. All are exact, against scikit-learn on the same rows, up to the rounding
of the sums:

* ``mae``, ``mse``, ``rmse``: ``mean_absolute_error``, ``mean_squared_error``, its root;
* ``r2``: ``r2_score``, ``1 - SSE / SST`` with ``SST = sum y**2 - (sum y)**2 / n``. As
  scikit-learn (``force_finite=True``), a constant label (``SST = 0``) gives 1.0 when every
  prediction is exact and 0.0 otherwise; fewer than two rows give NaN (undefined). ``SST`` is
  taken as 0 when it is below ``1e-12 * sum y**2`` (the rounding of the two sums);
* ``bias``: the mean of ``prediction - label`` (positive: the model over-predicts);
* ``mape``: the mean of ``|e| / |y|`` over the rows with ``y != 0``; rows with a zero label are
  excluded (their relative error is undefined), so the metric's ``n`` in ``metrics.parquet``
  is the rows it averaged and the label-0 rows are the other metrics' ``n`` minus it.
  scikit-learn's ``mean_absolute_percentage_error`` divides by ``max(|y|, eps)`` instead,
  which turns a zero label into a huge term; the two agree when no label is 0.
"""

from typing import TYPE_CHECKING, Any

import numpy as np

from eval_pipelines.stats.regression import (
    REGRESSION_FAMILY,
    RegressionBuckets,
    RegressionSums,
    parse_pairs,
)
from eval_pipelines.tasks.base import Metric, RowCounts, Task, divide

if TYPE_CHECKING:
    from eval_pipelines.sqlbuild import SqlBuilder
    from eval_pipelines.windows import Window

# SST below this share of sum y**2 is the rounding of a constant label's sums.
CONSTANT_LABEL_TOLERANCE = 1e-12


def mae(stats: RegressionSums) -> np.ndarray:
    """Mean absolute error, ``sum |e| / n``."""
    return divide(stats.abs_error_sum, stats.n)


def mse(stats: RegressionSums) -> np.ndarray:
    """Mean squared error, ``sum e**2 / n``."""
    return divide(stats.squared_error_sum, stats.n)


def rmse(stats: RegressionSums) -> np.ndarray:
    """Root mean squared error, ``sqrt(sum e**2 / n)``."""
    return np.sqrt(mse(stats))


def bias(stats: RegressionSums) -> np.ndarray:
    """Mean error, ``sum (prediction - label) / n``."""
    return divide(stats.error_sum, stats.n)


def r2(stats: RegressionSums) -> np.ndarray:
    """Coefficient of determination ``1 - SSE / SST`` (scikit-learn's ``r2_score``; the
    constant-label and small-sample cases as in the module docstring)."""
    n = np.asarray(stats.n, dtype=float)
    sse = np.asarray(stats.squared_error_sum, dtype=float)
    syy = np.asarray(stats.squared_label_sum, dtype=float)
    sst = syy - divide(stats.label_sum**2, n)
    constant = sst <= CONSTANT_LABEL_TOLERANCE * syy
    value = 1.0 - divide(sse, np.where(constant, 0.0, sst))
    value = np.where(constant, np.where(sse == 0, 1.0, 0.0), value)
    return np.where(n >= 2, value, np.nan)


def mape(stats: RegressionSums) -> np.ndarray:
    """Mean absolute percentage error over the rows with a non-zero label,
    ``sum_{y != 0} |e| / |y|`` divided by their count (a fraction: 0.1 is 10%)."""
    return divide(stats.relative_error_sum, stats.n_nonzero_label)


def nonzero_labels(stats: RegressionSums) -> np.ndarray:
    """MAPE's ``n``: the rows it averages (labeled, label not 0)."""
    return stats.n_nonzero_label


def row_counts(statistics: Any) -> RowCounts:
    """Labeled and unlabeled rows; a regression has no positives (reported as 0)."""
    data: RegressionBuckets = statistics.data[REGRESSION_FAMILY.name]
    labeled = REGRESSION_FAMILY.point(data).n
    return RowCounts(
        labeled=labeled, positives=np.zeros_like(labeled), unlabeled=data.unlabeled.sum(axis=2)
    )


def statistics_query(builder: "SqlBuilder", window: "Window") -> str:
    return builder.regression_statistics(window)


def paired_query(builder: "SqlBuilder", window: "Window", baseline: str, candidate: str) -> str:
    return builder.regression_pairs(window, baseline, candidate)


F = REGRESSION_FAMILY
METRICS = [
    Metric("mae", "Mean absolute error", F, mae, "mean(|p - y|)", False, "-"),
    Metric("mse", "Mean squared error", F, mse, "mean((p - y)^2)", False, "-"),
    Metric("rmse", "Root mean squared error", F, rmse, "sqrt(mean((p - y)^2))", False, "-"),
    Metric(
        "r2",
        "R² (coefficient of determination)",
        F,
        r2,
        "1 - SSE / SST",
        True,
        "scikit-learn r2_score",
    ),
    Metric("bias", "Bias (mean error)", F, bias, "mean(p - y)", False, "-", toward_zero=True),
    Metric(
        "mape",
        "Mean absolute percentage error",
        F,
        mape,
        "mean(|p - y| / |y|) over y != 0",
        False,
        "-",
        count=nonzero_labels,
    ),
]

REGRESSION = Task(
    name="regression",
    families=(REGRESSION_FAMILY,),
    metrics={metric.name: metric for metric in METRICS},
    rows=row_counts,
    parse_paired=parse_pairs,
    output="prediction",
    statistics_query=statistics_query,
    paired_query=paired_query,
    # Both numbers to 1e-6 as integers: a double's text differs between engines ('12.0' in
    # DuckDB, '12' in PostgreSQL); values beyond 1e9 in size hash as empty.
    fingerprint_value=" || '|' || ".join(
        f"COALESCE(CAST(CAST(ROUND(CASE WHEN {c} >= -1e9 AND {c} <= 1e9 THEN {c} END "
        f"* 1000000) AS BIGINT) AS VARCHAR), '')"
        for c in ("prediction", "label")
    ),
    output_types=frozenset({"integer", "decimal", "float"}),
    output_wording="a numeric column (the predicted number)",
    label_types=frozenset({"integer", "decimal", "float"}),
    label_wording=(
        "a numeric column (integer, DECIMAL or floating point; task 'regression' does not "
        "take a BOOLEAN label)"
    ),
)
