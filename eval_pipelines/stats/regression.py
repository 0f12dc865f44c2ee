"""The regression task's statistic families, computed by ``sql/regression_statistics.sql``.

* ``regression``: per slice, version and resample bucket ``k``, the labeled rows and the exact
  sums of ``e = prediction - label``, ``|e|``, ``e**2``, the centred label ``y - c`` and
  ``(y - c)**2`` (``c``: the window's mean label, one number for every slice, version and
  bucket, so sums still add up), for MAPE the rows with ``y != 0``, the sum of ``|e| / |y|``
  over them and the rows with ``y = 0``, and with a logged interval the labeled rows that have
  one, those whose label lies inside it and the sum of its widths (:class:`RegressionSums`).
  Every metric over it is exact and gets the paired bucket bootstrap: a request's bucket is a
  hash of its id, the same for both versions.
* ``error_histogram``: per slice and version, the labeled rows per bin of ``|e|`` with the
  smallest and largest ``|e|`` in the bin (:class:`ErrorHistogram`): the median absolute
  error within a proven bound. Bins are log-spaced (:data:`BINS_PER_OCTAVE` a factor of 2),
  so they follow the data at any scale without a first pass, and only bins that hold rows
  exist; ``|e| = 0`` has its own bin. It is a *cell* family: a histogram kept per resample
  bucket would be ``confidence.buckets`` times larger (K x slices x versions x bins rows),
  while Poisson draws of the bin counts are the row-level Poisson bootstrap of any statistic
  of the counts. Its deltas compare the two versions as independent (conservative: joint
  cells of both versions' error bins would be a second grid, not built).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from eval_pipelines.inference.bootstrap import BUCKET_BOOTSTRAP, INDEPENDENT_CELL_BOOTSTRAP
from eval_pipelines.stats.base import RowIndex, Rows, accumulate, column

if TYPE_CHECKING:
    from eval_pipelines.spec import EvalSpec

# The sums, in the order of the last axis of :attr:`RegressionSums.sums` (the aggregate's
# column names).
FIELDS = (
    "n",
    "error_sum",
    "abs_error_sum",
    "squared_error_sum",
    "centred_label_sum",
    "centred_squared_label_sum",
    "n_nonzero_label",
    "relative_error_sum",
    "n_zero_label",
    "n_interval",
    "n_covered",
    "interval_width_sum",
)

# Error-histogram bins per factor of 2 of |e|: a bin spans at most 0.54% of its values.
# About 13 octaves of |e| hold rows on typical data: ~1,700 bins per slice and version, the
# size of the binary task's score histogram (2 x 1000).
BINS_PER_OCTAVE = 128
# The ``error_bin`` of |e| = 0 (below every log bin; LN of the smallest double is -745).
ZERO_ERROR_BIN = -(10**9)
# Distinct error bins kept per window (about 64 octaves); the smallest merge beyond that.
MAX_ERROR_BINS = 8192
# Bins the cell bootstrap draws (adjacent fine bins merged).
BOOTSTRAP_ERROR_BINS = 128


@dataclass(frozen=True)
class RegressionSums:
    """The sums of :data:`FIELDS` on the last axis of ``sums[..., F]``, leading axes kept."""

    sums: np.ndarray

    def __getattr__(self, name: str) -> np.ndarray:
        if name in FIELDS:
            return self.sums[..., FIELDS.index(name)]
        raise AttributeError(name)


@dataclass(frozen=True)
class RegressionBuckets:
    """The family as parsed: ``sums[g, v, k, F]`` and ``unlabeled[g, v, k]``."""

    sums: np.ndarray
    unlabeled: np.ndarray


@dataclass(frozen=True)
class RegressionPairs:
    """Labeled requests both versions predicted, per slice group (``pairs[g]``)."""

    pairs: np.ndarray


class RegressionFamily:
    """Exact sums per resample bucket: the bucket bootstrap's family."""

    name = "regression"
    bootstrap = BUCKET_BOOTSTRAP

    def parse(self, table: Rows, index: RowIndex, spec: "EvalSpec") -> RegressionBuckets:
        G, V, K = index.groups, index.versions, spec.confidence.buckets
        kept = index.g >= 0
        cell = (index.g[kept], index.v[kept], column(table, "bucket")[kept])
        sums = np.stack(
            [accumulate((G, V, K), cell, column(table, f, float)[kept]) for f in FIELDS],
            axis=-1,
        )
        unlabeled = accumulate((G, V, K), cell, column(table, "n_unlabeled", float)[kept])
        return RegressionBuckets(sums=sums, unlabeled=unlabeled)

    def point(self, data: RegressionBuckets) -> RegressionSums:
        """Every slice and version on all rows: axes ``[g, v, F]``."""
        return RegressionSums(data.sums.sum(axis=2))

    def buckets(self, data: RegressionBuckets) -> int:
        return data.sums.shape[2]

    def reweight(self, data: RegressionBuckets, weights: np.ndarray) -> RegressionSums:
        """Bucket-bootstrap replicates, axes ``[g, v, B, F]``, for ``weights[B, K]`` (the same
        weights for every slice and version, so version differences stay paired)."""
        g, v, k, f = data.sums.shape
        flat = data.sums.reshape(g * v, k, f)
        return RegressionSums(np.matmul(weights, flat).reshape(g, v, weights.shape[0], f))

    def cells(self, data: RegressionBuckets) -> int:
        return int(data.sums.size)


REGRESSION_FAMILY = RegressionFamily()


@dataclass(frozen=True)
class ErrorHistogram:
    """Labeled rows per bin of ``|e|`` in increasing order, ``count[..., C]``, with the
    smallest and largest ``|e|`` of each bin, ``low[..., C]`` and ``high[..., C]`` (+inf and
    -inf where empty). ``low``/``high`` may have fewer leading axes than ``count`` (a
    replicate axis); they broadcast."""

    count: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return self.count.sum(-1)


def _merge_bins(hist: ErrorHistogram, bins: int) -> ErrorHistogram:
    """Adjacent bins merged into ``bins`` runs of (nearly) equal length."""
    C = hist.count.shape[-1]
    starts = np.flatnonzero(np.diff(np.arange(C) * bins // C, prepend=-1))
    return ErrorHistogram(
        count=np.add.reduceat(hist.count, starts, axis=-1),
        low=np.minimum.reduceat(hist.low, starts, axis=-1),
        high=np.maximum.reduceat(hist.high, starts, axis=-1),
    )


class ErrorHistogramFamily:
    """Rows of each log-spaced bin of ``|e|`` with the bin's smallest and largest ``|e|``:
    a cell family (the module docstring says why), deltas as independent versions."""

    name = "error_histogram"
    bootstrap = INDEPENDENT_CELL_BOOTSTRAP

    def parse(self, table: Rows, index: RowIndex, spec: "EvalSpec") -> ErrorHistogram:
        kept = index.g >= 0
        error_bin = column(table, "error_bin")[kept]
        # Only the bins that hold rows, in order (the zero bin sorts first).
        bins, position = np.unique(error_bin, return_inverse=True)
        if len(bins) > MAX_ERROR_BINS:  # the smallest bins merge into the lowest kept one
            position = np.maximum(position - (len(bins) - MAX_ERROR_BINS), 0)
        C = max(1, min(len(bins), MAX_ERROR_BINS))
        shape = (index.groups, index.versions, C)
        cell = (index.g[kept], index.v[kept], position.ravel())
        flat = np.ravel_multi_index(cell, shape)
        low = np.full(int(np.prod(shape)), np.inf)
        high = np.full(int(np.prod(shape)), -np.inf)
        np.minimum.at(low, flat, column(table, "min_abs_error", float, np.inf)[kept])
        np.maximum.at(high, flat, column(table, "max_abs_error", float, -np.inf)[kept])
        return ErrorHistogram(
            count=accumulate(shape, cell, column(table, "n", float)[kept]),
            low=low.reshape(shape),
            high=high.reshape(shape),
        )

    def point(self, data: ErrorHistogram) -> ErrorHistogram:
        return data

    def cells(self, data: ErrorHistogram) -> int:
        return int(data.count.size)

    def coarsen(self, data: ErrorHistogram, spec: "EvalSpec") -> ErrorHistogram:
        """At most :data:`BOOTSTRAP_ERROR_BINS` bins, adjacent fine bins merged."""
        return _merge_bins(data, min(data.count.shape[-1], BOOTSTRAP_ERROR_BINS))

    def redraw(
        self, data: ErrorHistogram, chunk: np.ndarray, replicates: int, rng: np.random.Generator
    ) -> ErrorHistogram:
        """Poisson draws of each bin's count for the slice groups ``chunk``, axes
        ``[g, v, B, C]``; a bin's smallest and largest ``|e|`` stay (they bound its rows)."""
        count = data.count[chunk]
        shape = (*count.shape[:2], replicates, count.shape[-1])
        drawn = rng.poisson(np.broadcast_to(count[:, :, None, :], shape))
        return ErrorHistogram(
            count=drawn.astype(float),
            low=data.low[chunk][:, :, None, :],
            high=data.high[chunk][:, :, None, :],
        )


ERROR_HISTOGRAM_FAMILY = ErrorHistogramFamily()


def parse_pairs(table: pa.Table, g: np.ndarray, spec: "EvalSpec", groups: int) -> RegressionPairs:
    """The paired query's rows (``g``: each row's slice group, -1 for none) as pair counts."""
    keep = g >= 0
    return RegressionPairs(accumulate((groups,), (g[keep],), column(table, "n", float)[keep]))
