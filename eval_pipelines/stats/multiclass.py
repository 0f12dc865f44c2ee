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
  ROC AUC per class with its binning error bound, and the cell bootstrap of each version's
  histogram (deltas compared as independent versions: conservative; joint cells of both
  versions are left for later).

Classes are indexed in the spec's declared order (:func:`classes_of`); the aggregate returns
each row's class index, computed in SQL from the declared values.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from eval_pipelines.inference.bootstrap import BUCKET_BOOTSTRAP, CellBootstrap
from eval_pipelines.inference.resampling import merge_bins, poisson_cell_replicates
from eval_pipelines.stats.base import RowIndex, accumulate, column, is_null

if TYPE_CHECKING:
    from eval_pipelines.inference.bootstrap import Delta, MetricFunction
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
class MulticlassPairs:
    """Labeled requests both versions predicted, per slice group ``g``: ``outcomes[g, 3]``
    holds the pairs only the baseline classified correctly, only the candidate, and all
    (McNemar's test on accuracy)."""

    outcomes: np.ndarray

    @property
    def pairs(self) -> np.ndarray:
        return self.outcomes[:, 2]


class ConfusionFamily:
    """Confusion counts, true-class ranks and log-loss sums per resample bucket."""

    name = "confusion"
    bootstrap = BUCKET_BOOTSTRAP

    def parse(self, table: pa.Table, index: RowIndex, spec: "EvalSpec") -> ConfusionBuckets:
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


class IndependentCellBootstrap(CellBootstrap):
    """The cell bootstrap, with deltas always compared as independent versions (Wald on the
    two versions' replicate deviations: conservative when the versions are paired). The class
    histogram has no joint cells of both versions yet."""

    def deltas(
        self,
        family: Any,
        functions: dict[str, "MetricFunction"],
        delta: dict[str, np.ndarray],
        deviation: dict[str, np.ndarray],
        versions: tuple[int, int],
        paired: Any,
        spec: "EvalSpec",
    ) -> dict[str, "Delta"]:
        return super().deltas(family, functions, delta, deviation, versions, None, spec)


INDEPENDENT_CELL_BOOTSTRAP = IndependentCellBootstrap()


class ClassHistogramFamily:
    """Per-class score histograms, one-vs-rest: the cell bootstrap's family."""

    name = "class_histogram"
    bootstrap = INDEPENDENT_CELL_BOOTSTRAP

    def parse(self, table: pa.Table, index: RowIndex, spec: "EvalSpec") -> ClassHistogram:
        classes = classes_of(spec)
        shape = (index.groups, index.versions, len(classes), 2, spec.score_bins)
        if "fine_bin" not in table.column_names:  # no class scores: no histogram rows
            return ClassHistogram(classes, np.zeros(shape))
        keep = (index.g >= 0) & ~is_null(table, "fine_bin")
        cell = (
            index.g[keep],
            index.v[keep],
            column(table, "class_index")[keep],
            column(table, "is_class")[keep],
            column(table, "fine_bin")[keep],
        )
        return ClassHistogram(classes, accumulate(shape, cell, column(table, "n", float)[keep]))

    def point(self, data: ClassHistogram) -> ClassHistogram:
        return data

    def cells(self, data: ClassHistogram) -> int:
        return int(data.count.size)

    def coarsen(self, data: ClassHistogram, spec: "EvalSpec") -> ClassHistogram:
        """The histogram merged to ``confidence.score_bins`` bins, which the bootstrap draws."""
        return ClassHistogram(data.classes, merge_bins(data.count, spec.confidence.score_bins))

    def redraw(
        self, data: ClassHistogram, chunk: np.ndarray, replicates: int, rng: np.random.Generator
    ) -> ClassHistogram:
        """Poisson cell replicates of the slice groups ``chunk``, axes ``[g, v, B, C, 2, bins]``."""
        count = data.count[chunk]
        draws, _ = poisson_cell_replicates(count, np.zeros_like(count), replicates, rng)
        return ClassHistogram(data.classes, np.moveaxis(draws, -2, 2))


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
