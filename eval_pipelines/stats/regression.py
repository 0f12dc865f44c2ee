"""The regression task's statistic family, computed by ``sql/regression_statistics.sql``.

``regression``: per slice, version and resample bucket ``k``, the labeled rows and the exact
sums of ``e = prediction - label``, ``|e|``, ``e**2``, ``y``, ``y**2``, and for MAPE the rows
with ``y != 0``, the sum of ``|e| / |y|`` over them and the rows with ``y = 0``
(:class:`RegressionSums`). Every regression metric of the registry is a function of these
sums, so each is exact and gets the paired bucket bootstrap: a request's bucket is a hash of
its id, the same for both versions.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from eval_pipelines.inference.bootstrap import BUCKET_BOOTSTRAP
from eval_pipelines.stats.base import RowIndex, accumulate, column

if TYPE_CHECKING:
    from eval_pipelines.spec import EvalSpec

# The sums, in the order of the last axis of :attr:`RegressionSums.sums` (the aggregate's
# column names).
FIELDS = (
    "n",
    "error_sum",
    "abs_error_sum",
    "squared_error_sum",
    "label_sum",
    "squared_label_sum",
    "n_nonzero_label",
    "relative_error_sum",
    "n_zero_label",
)


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

    def parse(self, table: pa.Table, index: RowIndex, spec: "EvalSpec") -> RegressionBuckets:
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


def parse_pairs(table: pa.Table, g: np.ndarray, spec: "EvalSpec", groups: int) -> RegressionPairs:
    """The paired query's rows (``g``: each row's slice group, -1 for none) as pair counts."""
    keep = g >= 0
    return RegressionPairs(accumulate((groups,), (g[keep],), column(table, "n", float)[keep]))
