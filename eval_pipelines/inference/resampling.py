"""Bootstraps whose cost is independent of the row count: buckets, and histogram cells.

Each row belongs to one of ``K`` resample buckets (``md5(id || '#' || seed) mod K``, computed
in SQL), and the aggregate keeps statistics per bucket. A replicate redraws the ``K`` buckets
with replacement (multinomial weights) and recomputes every metric from the reweighted
statistics: a cluster bootstrap (Davison & Hinkley 1997, section 3.8) with buckets as clusters.
Because the assignment depends only on the prediction id, both models' rows of one request
share a bucket and every version difference is paired. Replicates are drawn from
``numpy.random.default_rng(seed)``, so results are reproducible to the bit.

Percentile intervals (Efron & Tibshirani 1993, ch. 13) are built from the replicate deviations
``theta*_r - theta_hat`` scaled by ``sqrt(K / (K - 1)) * t_{K-1} / z`` at the interval's
quantile: resampling K clusters underestimates the variance by the factor ``(K - 1) / K``,
and with few clusters the reference distribution is Student's t with K - 1 degrees of freedom
rather than normal (the usual small-cluster correction; Cameron & Miller 2015, section VI).
For K = 64 at 95% the scale is 1.028. The coverage test (tests/test_interval_coverage.py)
measures the result.

Metrics of the score histogram (ROC AUC, PR AUC, ECE) are not kept per bucket: crossing
buckets with score bins made the aggregate as large as the data on wide slice sets. They use
a Poisson bootstrap of the histogram's cells instead (:func:`poisson_cell_replicates`), on
the fine histogram merged to ``confidence.score_bins`` bins; deviations are added to the
fine point estimate. Deltas between versions of these metrics are paired through joint cells
of both versions' score bins (``evaluation.paired_histogram_deviations``).
"""

from functools import cache

import numpy as np
from scipy import stats


def bucket_weights(buckets: int, replicates: int, seed: int) -> np.ndarray:
    """``weights[B, K]``: how often each bucket is drawn in each replicate (rows sum to K)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(buckets, np.full(buckets, 1.0 / buckets), size=replicates).astype(float)


@cache
def deviation_scale(buckets: int, level: float) -> float:
    """``sqrt(K / (K - 1)) * t_{K-1}((1 + level) / 2) / z((1 + level) / 2)``."""
    q = (1.0 + level) / 2.0
    return float(np.sqrt(buckets / (buckets - 1)) * stats.t.ppf(q, buckets - 1) / stats.norm.ppf(q))


# Cells with more rows than this draw from the normal approximation of Poisson(n).
NORMAL_FROM = 30


def deviations(replicates: np.ndarray, estimate: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Scaled replicate deviations ``scale * (theta*_r - theta_hat)`` along axis -1."""
    return scale * (replicates - estimate[..., None])


def merge_bins(array: np.ndarray, bins: int) -> np.ndarray:
    """Merge the last axis into ``bins`` equal groups of adjacent bins."""
    return array.reshape(*array.shape[:-1], bins, array.shape[-1] // bins).sum(-1)


def poisson_cell_replicates(
    count: np.ndarray, score_sum: np.ndarray, replicates: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson bootstrap of a histogram: ``count[..., C]`` -> ``[..., B, C]`` replicates.

    Giving every row an independent Poisson(1) weight (the Poisson bootstrap; Hanley &
    MacGibbon 2006) makes a cell of ``n`` rows weigh Poisson(n), so for statistics of the
    cell counts alone (ROC AUC, average precision) drawing one Poisson(n) per cell *is* the
    row-level Poisson bootstrap, at a cost independent of the row count. A cell's score sum
    is scaled with its count: exact up to the spread of scores inside one bin (width
    ``1 / confidence.score_bins``), which only ECE uses. Above ``NORMAL_FROM`` rows a cell's
    Poisson draw is replaced by its rounded normal approximation N(n, n) (error in the replicate's
    standard deviation below 0.1%, at a fifth of the cost).
    """
    drawn = np.zeros((replicates, *count.shape))
    small = (count > 0) & (count <= NORMAL_FROM)  # empty cells stay empty
    large = count > NORMAL_FROM
    drawn[:, small] = rng.poisson(count[small], size=(replicates, int(small.sum())))
    lam = count[large]
    normal = rng.standard_normal(size=(replicates, lam.size))
    drawn[:, large] = np.maximum(np.rint(lam + np.sqrt(lam) * normal), 0.0)
    draws = np.moveaxis(drawn, 0, -2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.where(count > 0, score_sum / np.where(count > 0, count, 1), 0.0)
    return draws, draws * np.expand_dims(mean_score, -2)


def percentile_interval(
    point: np.ndarray, deviation: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Interval ``point + quantiles(deviation)`` at ``(1 - level)/2`` and ``(1 + level)/2``.

    Where any replicate is undefined (NaN, e.g. a bucket draw with no positives) the interval
    is NaN: we report no interval rather than one computed on a subset of replicates.
    """
    tail = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        low, high = np.quantile(deviation, [tail, 1.0 - tail], axis=-1)
    bad = np.isnan(deviation).any(axis=-1)
    low = np.where(bad, np.nan, point + low)
    high = np.where(bad, np.nan, point + high)
    return low, high


def standard_error(deviation: np.ndarray) -> np.ndarray:
    """Bootstrap standard error: the sample standard deviation of the replicate deviations."""
    with np.errstate(invalid="ignore"):
        return np.std(deviation, axis=-1, ddof=1)


def bucket_standard_error(deviation: np.ndarray, buckets: int, level: float) -> np.ndarray:
    """Standard error of a bucket-bootstrap statistic from deviations scaled by
    :func:`deviation_scale`: ``sqrt(K / (K - 1)) * sd(theta*_r)``.

    The interval's ``t / z`` factor is taken back out, so a test built on this standard error
    (Student's t with ``K - 1`` degrees of freedom) does not depend on the interval level.
    """
    correction = np.sqrt(buckets / (buckets - 1)) / deviation_scale(buckets, level)
    return standard_error(deviation) * correction
