"""The multiclass classifier's statistic families, computed by ``sql/multiclass_statistics.sql``
(and ``sql/multiclass_histogram.sql`` when the spec logs class scores).

* ``confusion``: per slice, version and resample bucket ``k``, the C x C confusion matrix
  (label x predicted class, :class:`ConfusionBuckets`); with class scores also the rank of the
  true class's score among the row's scores (counts per rank 1..C) and the summed log-loss
  terms. Every metric of it is exact and gets the paired bucket bootstrap (a request's bucket
  is a hash of its id, the same for both versions). Rows whose label has not arrived are
  counted per bucket too.
* ``class_histogram``: per slice, version and class ``c``, the rows whose label is ``c`` or
  not, by equal-width fine bin of class ``c``'s score (:class:`ClassHistogram`): one-vs-rest
  ROC AUC per class with its binning error bound; and the same counts at the coarse
  ``confidence.score_bins`` per resample bucket, for the bucket bootstrap
  (:class:`ChunkedBucketBootstrap`). Drawing buckets keeps each row's C class cells together
  (the per-class AUCs are correlated: a Poisson draw per cell, as the binary histogram's, gave
  87% coverage for their mean) and pairs the versions through the id's bucket.

Classes are indexed in the spec's declared order (:func:`classes_of`); the aggregate returns
each row's class index, computed in SQL from the declared values.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from eval_pipelines.inference.bootstrap import BucketBootstrap
from eval_pipelines.inference.resampling import bucket_weights, deviation_scale, deviations
from eval_pipelines.stats.base import RowIndex, Rows, accumulate, column, is_null

if TYPE_CHECKING:
    from eval_pipelines.inference.bootstrap import MetricFunction
    from eval_pipelines.spec import EvalSpec

# The most classes a spec may declare: the confusion family holds C x C cells per slice,
# version and bucket, and the top-k rank expression has C terms per row.
MAX_CLASSES = 50


def classes_of(spec: "EvalSpec") -> tuple[str, ...]:
    """The declared classes, in order: ``classes`` when given, else the keys of
    ``predictions.class_scores`` (the spec requires one of them for this task)."""
    if spec.classes is not None:
        return tuple(spec.classes)
    return tuple(spec.predictions.class_scores or ())


def score_columns(spec: "EvalSpec") -> list[str]:
    """The class score columns in class order; empty without ``predictions.class_scores``."""
    scores = spec.predictions.class_scores
    return [scores[c] for c in classes_of(spec)] if scores else []


@dataclass(frozen=True)
class ConfusionStats:
    """The confusion family with leading axes ``...`` (slices, versions, replicates):

    * ``count[..., C, C]``: labeled rows by label (axis -2) and predicted class (axis -1);
    * ``rank_count[..., C]``: labeled rows whose true class's score ranks ``r + 1`` among the
      row's class scores (ties: the later class in the declared order ranks first, as
      scikit-learn's ``top_k_accuracy_score`` with sorted classes); zeros without scores;
    * ``log_loss_sum[...]``: sum of ``-log(clip(p_true, eps, 1 - eps))``.
    """

    classes: tuple[str, ...]
    count: np.ndarray
    rank_count: np.ndarray
    log_loss_sum: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return self.count.sum(axis=(-1, -2))


@dataclass(frozen=True)
class ConfusionBuckets:
    """The ``confusion`` family as parsed: :class:`ConfusionStats` arrays with a bucket axis
    ``[g, v, k, ...]``, and ``unlabeled[g, v, k]`` (rows whose label has not arrived)."""

    classes: tuple[str, ...]
    count: np.ndarray
    rank_count: np.ndarray
    log_loss_sum: np.ndarray
    unlabeled: np.ndarray


@dataclass(frozen=True)
class ClassHistogram:
    """``count[..., C, 2, bins]``: rows per class ``c``, label == c (index 1) or not (0), and
    equal-width bin of class ``c``'s score, ordered by score."""

    classes: tuple[str, ...]
    count: np.ndarray


@dataclass(frozen=True)
class ClassHistogramBuckets:
    """The ``class_histogram`` family as parsed: ``fine[g, v, C, 2, score_bins]`` and
    ``coarse[g, v, k, C, 2, confidence.score_bins]`` (per resample bucket)."""

    classes: tuple[str, ...]
    fine: np.ndarray
    coarse: np.ndarray


@dataclass(frozen=True)
class MulticlassPairs:
    """Labeled requests both versions predicted, per slice group ``g``: ``outcomes[g, 3]``
    holds the pairs only the baseline classified correctly, only the candidate, and all
    (McNemar's test on accuracy)."""

    outcomes: np.ndarray

    @property
    def pairs(self) -> np.ndarray:
        return self.outcomes[:, 2]


# Numbers of bucket-bootstrap replicates held at once (slice groups are drawn in chunks): the
# confusion replicates grow as C**2 per slice, version and replicate.
REPLICATE_NUMBERS_PER_CHUNK = 2**24


class ChunkedBucketBootstrap(BucketBootstrap):
    """The bucket bootstrap, slice groups a chunk at a time (at most
    :data:`REPLICATE_NUMBERS_PER_CHUNK` replicate numbers held at once), each replicate's
    deviation taken against the family's ``centre``: the point statistic for the confusion
    family; for the class histograms, kept per bucket at coarse bins, the coarse histogram of
    all buckets, the deviations then added to the fine point estimate (as the cell bootstrap
    does). The weights are every bucket family's (same seed), so a row's classes move
    together and version differences stay paired; deltas are the bucket bootstrap's."""

    def deviations(
        self,
        family: Any,
        data: Any,
        functions: dict[str, "MetricFunction"],
        spec: "EvalSpec",
    ) -> dict[str, np.ndarray]:
        conf = spec.confidence
        buckets = family.buckets(data)
        weights = bucket_weights(buckets, conf.replicates, conf.seed)
        scale = deviation_scale(buckets, conf.level)
        groups = family.groups(data)
        per_group = max(1, conf.replicates * family.cells(data) // max(1, groups * buckets))
        size = max(1, REPLICATE_NUMBERS_PER_CHUNK // per_group)
        out: dict[str, np.ndarray] = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            for first in range(0, groups, size):
                chunk = np.arange(first, min(groups, first + size))
                part = family.subset(data, chunk)
                replicates = family.reweight(part, weights)
                centre = family.centre(part)
                for name, function in functions.items():
                    value = deviations(function(replicates), function(centre), scale)
                    if name not in out:
                        out[name] = np.empty((groups, *value.shape[1:]))
                    out[name][chunk] = value
        return out


CHUNKED_BUCKET_BOOTSTRAP = ChunkedBucketBootstrap()


class ConfusionFamily:
    """Confusion counts, true-class ranks and log-loss sums per resample bucket."""

    name = "confusion"
    bootstrap = CHUNKED_BUCKET_BOOTSTRAP

    def parse(self, table: Rows, index: RowIndex, spec: "EvalSpec") -> ConfusionBuckets:
        classes = classes_of(spec)
        G, V, K, C = index.groups, index.versions, spec.confidence.buckets, len(classes)
        kept = index.g >= 0
        confusion = kept & (column(table, "part", str, "") == "confusion")
        ranks = kept & ~confusion & ~is_null(table, "true_rank")
        labeled = confusion & ~is_null(table, "label_class")
        unlabeled = confusion & is_null(table, "label_class")
        n = column(table, "n", float)
        k = column(table, "bucket")
        g, v = index.g, index.v
        cell = (g[labeled], v[labeled], k[labeled])
        return ConfusionBuckets(
            classes=classes,
            count=accumulate(
                (G, V, K, C, C),
                (
                    *cell,
                    column(table, "label_class")[labeled],
                    column(table, "predicted_class")[labeled],
                ),
                n[labeled],
            ),
            rank_count=accumulate(
                (G, V, K, C),
                (g[ranks], v[ranks], k[ranks], column(table, "true_rank")[ranks] - 1),
                n[ranks],
            ),
            log_loss_sum=accumulate((G, V, K), cell, column(table, "log_loss_sum", float)[labeled]),
            unlabeled=accumulate(
                (G, V, K), (g[unlabeled], v[unlabeled], k[unlabeled]), n[unlabeled]
            ),
        )

    def point(self, data: ConfusionBuckets) -> ConfusionStats:
        """Every slice and version on all rows: axes ``[g, v, ...]``."""
        return ConfusionStats(
            classes=data.classes,
            count=data.count.sum(axis=2),
            rank_count=data.rank_count.sum(axis=2),
            log_loss_sum=data.log_loss_sum.sum(axis=2),
        )

    def buckets(self, data: ConfusionBuckets) -> int:
        return data.count.shape[2]

    def groups(self, data: ConfusionBuckets) -> int:
        return data.count.shape[0]

    def subset(self, data: ConfusionBuckets, chunk: np.ndarray) -> ConfusionBuckets:
        return ConfusionBuckets(
            data.classes,
            data.count[chunk],
            data.rank_count[chunk],
            data.log_loss_sum[chunk],
            data.unlabeled[chunk],
        )

    def centre(self, data: ConfusionBuckets) -> ConfusionStats:
        """The replicates' centre: the point statistic."""
        return self.point(data)

    def reweight(self, data: ConfusionBuckets, weights: np.ndarray) -> ConfusionStats:
        """Bucket-bootstrap replicates, axes ``[g, v, B, ...]``, for ``weights[B, K]`` (the same
        weights for every slice and version, so version differences stay paired)."""

        def reweighted(array: np.ndarray) -> np.ndarray:
            g, v, k, *rest = array.shape
            flat = array.reshape(g * v, k, -1)
            return np.matmul(weights, flat).reshape(g, v, weights.shape[0], *rest)

        return ConfusionStats(
            classes=data.classes,
            count=reweighted(data.count),
            rank_count=reweighted(data.rank_count),
            log_loss_sum=reweighted(data.log_loss_sum),
        )

    def cells(self, data: ConfusionBuckets) -> int:
        return int(data.count.size + data.rank_count.size + data.log_loss_sum.size)


def _class_counts(
    table: Rows, rows: np.ndarray, shape: tuple[int, ...], *keys: np.ndarray | str
) -> np.ndarray:
    """The class histogram rows ``rows`` of ``table`` as ``count[*shape[:-1], 2, bins]``:
    rows whose label is not the cell's class (index 0 of axis -2) and is (1), by ``keys``
    (index arrays or column names) then the ``bin`` column.

    The flat cell index is built one key at a time (row-major, as ``np.ravel_multi_index``),
    each column read, used and dropped: this family returns the most rows of any (slices x
    versions x buckets x classes x bins), and holding every key column at once set the
    evaluation's peak memory at 10M rows."""
    flat = np.zeros(int(rows.sum()), dtype=np.int64)
    for key, size in zip([*keys, "bin"], shape, strict=True):
        values = (column(table, key) if isinstance(key, str) else key)[rows]
        flat *= size
        flat += values
        del values
    size = int(np.prod(shape))
    of_class = np.bincount(flat, weights=column(table, "n_class", float)[rows], minlength=size)
    rest = np.bincount(flat, weights=column(table, "n", float)[rows], minlength=size) - of_class
    return np.stack([rest.reshape(shape), of_class.reshape(shape)], axis=-2)


class ClassHistogramFamily:
    """Per-class one-vs-rest score histograms: fine bins for the point estimate, coarse bins
    per resample bucket for the bootstrap."""

    name = "class_histogram"
    bootstrap = CHUNKED_BUCKET_BOOTSTRAP

    def parse(self, table: Rows, index: RowIndex, spec: "EvalSpec") -> ClassHistogramBuckets:
        classes = classes_of(spec)
        G, V, C, K = index.groups, index.versions, len(classes), spec.confidence.buckets
        fine_shape = (G, V, C, spec.score_bins)
        coarse_shape = (G, V, K, C, spec.confidence.score_bins)
        if "n_class" not in table.column_names:  # no class scores: no histogram rows
            return ClassHistogramBuckets(
                classes,
                np.zeros((G, V, C, 2, spec.score_bins)),
                np.zeros((G, V, K, C, 2, spec.confidence.score_bins)),
            )
        kept = (index.g >= 0) & (index.v >= 0)
        per_bucket = ~is_null(table, "bucket")
        return ClassHistogramBuckets(
            classes,
            _class_counts(table, kept & ~per_bucket, fine_shape, index.g, index.v, "class_index"),
            _class_counts(
                table, kept & per_bucket, coarse_shape, index.g, index.v, "bucket", "class_index"
            ),
        )

    def point(self, data: ClassHistogramBuckets) -> ClassHistogram:
        """The fine histogram, axes ``[g, v, C, 2, bins]``."""
        return ClassHistogram(data.classes, data.fine)

    def centre(self, data: ClassHistogramBuckets) -> ClassHistogram:
        """The coarse histogram of all buckets, the bootstrap's centre."""
        return ClassHistogram(data.classes, data.coarse.sum(axis=2))

    def buckets(self, data: ClassHistogramBuckets) -> int:
        return data.coarse.shape[2]

    def groups(self, data: ClassHistogramBuckets) -> int:
        return data.fine.shape[0]

    def subset(self, data: ClassHistogramBuckets, chunk: np.ndarray) -> ClassHistogramBuckets:
        return ClassHistogramBuckets(data.classes, data.fine[chunk], data.coarse[chunk])

    def reweight(self, data: ClassHistogramBuckets, weights: np.ndarray) -> ClassHistogram:
        """Replicates ``[g, v, B, C, 2, coarse bins]`` for bucket ``weights[B, K]``."""
        g, v, k, *rest = data.coarse.shape
        flat = data.coarse.reshape(g * v, k, -1)
        return ClassHistogram(
            data.classes, np.matmul(weights, flat).reshape(g, v, weights.shape[0], *rest)
        )

    def cells(self, data: ClassHistogramBuckets) -> int:
        return int(data.fine.size + data.coarse.size)


CONFUSION = ConfusionFamily()
CLASS_HISTOGRAM = ClassHistogramFamily()


def parse_pairs(table: pa.Table, g: np.ndarray, spec: "EvalSpec", groups: int) -> MulticlassPairs:
    """The paired query's rows (``g``: each row's slice group, -1 for none) as outcomes."""
    keep = g >= 0
    outcomes = np.stack(
        [
            accumulate((groups,), (g[keep],), column(table, name, float)[keep])
            for name in ("baseline_only", "candidate_only", "n")
        ],
        axis=-1,
    )
    return MulticlassPairs(outcomes)
