"""The regression task: metrics of a numeric prediction, computed from exact sums.

Every metric is a function of :class:`~eval_pipelines.stats.regression.RegressionSums` (per
slice, version and resample bucket: labeled rows ``n`` and the sums of ``e = prediction -
label``, ``|e|``, ``e**2``, ``y``, ``y**2``, plus ``|e| / |y|`` over the rows with ``y != 0``),
vectorised over any leading axes, so one code path serves point estimates and every
bootstrap replicate. All are exact, against scikit-learn on the same rows, up to the rounding
of the sums:

* ``mae``, ``mse``, ``rmse``: ``mean_absolute_error``, ``mean_squared_error``, its root;
* ``r2``: ``r2_score``, ``1 - SSE / SST`` with ``SST = sum u**2 - (sum u)**2 / n`` over the
  centred labels ``u = y - c`` (``c`` the window's mean label: the same SST for any constant
  ``c``, without the cancellation of ``sum y**2 - (sum y)**2 / n`` when labels sit far from
  0, such as 1e6 + noise). As scikit-learn (``force_finite=True``), a constant label
  (``SST = 0``) gives 1.0 when every prediction is exact and 0.0 otherwise; fewer than two
  rows give NaN (undefined). ``SST`` is taken as 0 when it is below ``1e-12 * sum u**2`` (the
  rounding of the two sums);
* ``bias``: the mean of ``prediction - label`` (positive: the model over-predicts);
* ``mape``: the mean of ``|e| / |y|`` over the rows with ``y != 0``; rows with a zero label are
  excluded (their relative error is undefined), so the metric's ``n`` in ``metrics.parquet``
  is the rows it averaged and the label-0 rows are the other metrics' ``n`` minus it.
  scikit-learn's ``mean_absolute_percentage_error`` divides by ``max(|y|, eps)`` instead,
  which turns a zero label into a huge term; the two agree when no label is 0;
* ``interval_coverage`` and ``interval_width`` (with ``predictions.interval``): the share of
  labeled rows whose label lies in the logged interval, ``lower <= y <= upper``, and the mean
  ``upper - lower`` over the same rows (their ``n``: labeled rows with both bounds);
* ``median_absolute_error``: scikit-learn's ``median_absolute_error``, the median of ``|e|``,
  from the ``error_histogram`` family (log-spaced bins of ``|e|``, each with its smallest and
  largest value): the median's order statistics lie in known bins, between those bins' end
  values, which bounds the error (:func:`median_absolute_error_bound`), reported in
  ``error_bound`` as ROC AUC's is. The estimate interpolates linearly by rank inside the bin;
  it is exact when the bins hold one distinct value, and otherwise within 0.55% of the value
  (a bin spans at most a factor of 2**(1/128)).

References
----------
Pedregosa et al. (2011), "Scikit-learn: machine learning in Python", JMLR 12; user guide,
section "Regression metrics" (3.4.6): MAE, MSE, R², MAPE, median absolute error.
Hyndman & Koehler (2006), "Another look at measures of forecast accuracy", International
Journal of Forecasting 22(4) (MAPE and its undefined zero labels).
Gneiting & Raftery (2007), "Strictly proper scoring rules, prediction, and estimation", JASA
102 (coverage and width of prediction intervals).
"""

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from eval_pipelines.curves import CurveInputs, histogram_points, points
from eval_pipelines.stats.base import accumulate, column
from eval_pipelines.stats.regression import (
    ERROR_HISTOGRAM_FAMILY,
    REGRESSION_FAMILY,
    ErrorHistogram,
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
    syy = np.asarray(stats.centred_squared_label_sum, dtype=float)
    sst = syy - divide(stats.centred_label_sum**2, n)
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


def interval_coverage(stats: RegressionSums) -> np.ndarray:
    """Share of labeled rows with a logged interval whose label lies in it,
    ``#{lower <= y <= upper} / n_interval``."""
    return divide(stats.n_covered, stats.n_interval)


def interval_width(stats: RegressionSums) -> np.ndarray:
    """Mean width ``upper - lower`` of the logged intervals of the same rows."""
    return divide(stats.interval_width_sum, stats.n_interval)


def interval_rows(stats: RegressionSums) -> np.ndarray:
    """The interval metrics' ``n``: labeled rows with both bounds logged."""
    return stats.n_interval


def _order_statistic(
    hist: ErrorHistogram, position: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``position``-th smallest ``|e|`` (1-based), estimated by linear interpolation by
    rank between its bin's smallest and largest value, and those two values (which bound
    it: bins are ordered and the value is one of the bin's rows)."""
    count = hist.count
    cum = np.cumsum(count, axis=-1)
    b = np.minimum((cum < position[..., None]).sum(-1), count.shape[-1] - 1)[..., None]

    def at(array: np.ndarray) -> np.ndarray:
        return np.take_along_axis(np.broadcast_to(array, count.shape), b, axis=-1)[..., 0]

    c, low, high = at(count), at(hist.low), at(hist.high)
    rank_in_bin = position - (at(cum) - c)  # 1 .. c
    fraction = np.clip(divide(rank_in_bin - 1, c - 1), 0.0, 1.0)
    fraction = np.where(c > 1, fraction, 0.0)
    return low + (high - low) * fraction, low, high


def _median_and_range(hist: ErrorHistogram) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The median estimate and the interval ``[low, high]`` proven to hold the median:
    the mean of the order statistics ``floor((n + 1) / 2)`` and ``ceil((n + 1) / 2)``."""
    n = hist.n
    middle = (n + 1) / 2
    first, low1, high1 = _order_statistic(hist, np.floor(middle))
    second, low2, high2 = _order_statistic(hist, np.ceil(middle))
    empty = n < 1
    estimate = np.where(empty, np.nan, (first + second) / 2)
    return estimate, (low1 + low2) / 2, (high1 + high2) / 2


def median_absolute_error(hist: ErrorHistogram) -> np.ndarray:
    """Median of ``|e|`` (scikit-learn's ``median_absolute_error``), within
    :func:`median_absolute_error_bound` of the exact value."""
    return _median_and_range(hist)[0]


def median_absolute_error_bound(hist: ErrorHistogram) -> np.ndarray:
    """Largest possible |estimate - exact median|: the exact median lies between the means
    of the smallest and of the largest ``|e|`` of the bins of its two order statistics."""
    estimate, low, high = _median_and_range(hist)
    return np.where(np.isnan(estimate), np.nan, np.maximum(estimate - low, high - estimate))


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
SKLEARN = "scikit-learn user guide, Regression metrics: "
METRICS = [
    Metric(
        "mae",
        "Mean absolute error",
        F,
        mae,
        "mean(|p - y|)",
        False,
        SKLEARN + "mean_absolute_error",
    ),
    Metric(
        "mse",
        "Mean squared error",
        F,
        mse,
        "mean((p - y)^2)",
        False,
        SKLEARN + "mean_squared_error",
    ),
    Metric(
        "rmse",
        "Root mean squared error",
        F,
        rmse,
        "sqrt(mean((p - y)^2))",
        False,
        SKLEARN + "root_mean_squared_error",
    ),
    Metric(
        "r2",
        "R² (coefficient of determination)",
        F,
        r2,
        "1 - SSE / SST",
        True,
        "scikit-learn r2_score",
    ),
    Metric(
        "bias",
        "Bias (mean error)",
        F,
        bias,
        "mean(p - y)",
        False,
        "Hyndman & Koehler (2006), mean error (ME)",
        toward_zero=True,
    ),
    Metric(
        "mape",
        "Mean absolute percentage error",
        F,
        mape,
        "mean(|p - y| / |y|) over y != 0",
        False,
        "Hyndman & Koehler (2006), MAPE; zero labels excluded (scikit-learn divides by eps)",
        count=nonzero_labels,
    ),
    Metric(
        "median_absolute_error",
        "Median absolute error",
        ERROR_HISTOGRAM_FAMILY,
        median_absolute_error,
        "median(|p - y|)",
        False,
        SKLEARN + "median_absolute_error",
        error_bound=median_absolute_error_bound,
    ),
    Metric(
        "interval_coverage",
        "Prediction interval coverage",
        F,
        interval_coverage,
        "mean(lower <= y <= upper)",
        True,
        "Gneiting & Raftery (2007), prediction interval coverage",
        count=interval_rows,
        requires="interval",
    ),
    Metric(
        "interval_width",
        "Mean prediction interval width",
        F,
        interval_width,
        "mean(upper - lower)",
        False,
        "Gneiting & Raftery (2007), prediction interval width (sharpness)",
        count=interval_rows,
        requires="interval",
    ),
]

# Equal-width bins of the regression curves (signed error; prediction), over the window's range.
CURVE_BINS = 30


def curves(inputs: CurveInputs) -> pd.DataFrame:
    """The residual histogram and predicted vs actual (``curves.parquet``; docs/curves.md),
    from one small aggregate of the labeled rows (``sql/regression_curves.sql``): no family
    holds the signed error or the prediction by bin.

    * residual_histogram: labeled rows per equal-width bin of ``e = prediction - label``
      (:data:`CURVE_BINS` bins from the window's smallest to largest ``e``, as
      ``numpy.histogram(e, CURVE_BINS)``), ``y`` the bin's share;
    * predicted_vs_actual: per equal-width bin of the prediction, the mean prediction (``x``)
      and the mean label (``y``) of its labeled rows (bins with rows).
    """
    stats = inputs.stats
    sql = inputs.builder.regression_curves(inputs.window, CURVE_BINS)
    inputs.queries["regression_curves"] = sql
    table, index = inputs.query(sql, "regression curves")
    kind = table.column("kind").to_numpy(zero_copy_only=False)
    shape = (index.groups, index.versions, CURVE_BINS)
    parts = []
    for name in ("residual", "predicted"):
        rows = (kind == name) & (index.g >= 0) & (index.v >= 0)
        if not rows.any():
            continue
        cell = (index.g[rows], index.v[rows], column(table, "bin")[rows])
        n = accumulate(shape, cell, column(table, "n", float)[rows])
        low, high = column(table, "low", float)[rows][0], column(table, "high", float)[rows][0]
        edges = np.linspace(low, high, CURVE_BINS + 1)
        if name == "residual":
            parts.append(histogram_points(stats, "residual_histogram", n, edges))
            continue
        prediction = accumulate(shape, cell, column(table, "prediction_sum", float)[rows])
        label = accumulate(shape, cell, column(table, "label_sum", float)[rows])
        parts.append(
            points(
                stats,
                "predicted_vs_actual",
                n > 0,
                x=divide(prediction, n),
                y=divide(label, n),
                n=n,
                x_low=edges[:-1],
                x_high=edges[1:],
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def fingerprint_value(builder: "SqlBuilder") -> str:
    """Both numbers to 1e-6 as integers: a double's text differs between engines ('12.0' in
    DuckDB, '12' in PostgreSQL); values beyond 1e9 in size hash as empty."""
    return " || '|' || ".join(
        "COALESCE("
        + builder.as_text(
            f"CAST(ROUND(CASE WHEN {c} >= -1e9 AND {c} <= 1e9 THEN {c} END * 1000000) AS BIGINT)"
        )
        + ", '')"
        for c in ("prediction", "label")
    )


REGRESSION = Task(
    name="regression",
    families=(REGRESSION_FAMILY, ERROR_HISTOGRAM_FAMILY),
    metrics={metric.name: metric for metric in METRICS},
    rows=row_counts,
    parse_paired=parse_pairs,
    output="prediction",
    statistics_query=statistics_query,
    paired_query=paired_query,
    fingerprint_value=fingerprint_value,
    output_types=frozenset({"integer", "decimal", "float"}),
    output_wording="a numeric column (the predicted number)",
    label_types=frozenset({"integer", "decimal", "float"}),
    label_wording=(
        "a numeric column (integer, DECIMAL or floating point; task 'regression' does not "
        "take a BOOLEAN label)"
    ),
    curves=curves,
)
