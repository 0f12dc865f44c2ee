"""The binary classifier's statistic families, computed by ``sql/sufficient_statistics.sql``.

* ``threshold``: per slice, version, resample bucket ``k``, label ``y`` and side of the
  decision threshold: row count, summed log-loss terms and squared errors
  (:class:`ThresholdBuckets`); exact accuracy, precision, recall, F1, log loss and Brier, with
  the paired bucket bootstrap. Rows whose label has not arrived are counted per bucket too.
* ``histogram``: per slice, version, label and fine score bin: row count and score sum
  (:class:`ScoreHistogram`); ROC AUC, PR AUC and ECE, with the cell bootstrap, and paired
  across versions through joint cells of both versions' score bins (``sql/paired_counts.sql``,
  :class:`PairedCells`). The fine bins follow the window's labeled scores (:class:`BinLayout`):
  one bin per occupied grid cell when at most ``score_bins`` are occupied, else quantile bins
  of about ``1 / score_bins`` of the rows cut again at the ``score_bins`` equal-width edges, so
  every fine bin lies inside one equal-width bin (and bootstrap and calibration bin).

Parsing is vectorised on Arrow/numpy columns: with many slices the result has up to a few
hundred thousand rows, and no per-row Python object is created.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from eval_pipelines.inference.bootstrap import BUCKET_BOOTSTRAP, CELL_BOOTSTRAP
from eval_pipelines.inference.resampling import merge_bins, poisson_cell_replicates
from eval_pipelines.stats.base import RowIndex, Rows, accumulate, column, is_null

if TYPE_CHECKING:
    from eval_pipelines.spec import EvalSpec

# scikit-learn's log_loss clips probabilities to [eps, 1 - eps] with the float64 machine eps.
LOG_LOSS_EPS = float(np.finfo(np.float64).eps)

# Cells of the score grid the fine bins are drawn on (width about 1e-5): scores closer than a
# cell may share a bin. At a 1M-row window 1e6 cells cost the aggregate 50% more CPU than 1e5.
GRID_CELLS = 100_000


def grid_sub_cells(score_bins: int) -> int:
    """Grid cells per equal-width score bin: ``score_bins * sub_cells`` is about
    :data:`GRID_CELLS` (at least one cell a bin)."""
    return max(1, GRID_CELLS // score_bins)


@dataclass(frozen=True)
class ThresholdStats:
    """Counts at the decision threshold, with leading axes ``...`` (slices, versions, ...).

    * ``count[..., 2, 2]``: rows per label (0, 1) and threshold side (below, at or above);
    * ``log_loss_sum[..., 2]`` and ``squared_error_sum[..., 2]``: per-label sums of
      ``-log p(label)`` and ``(score - label)**2``.
    """

    count: np.ndarray
    log_loss_sum: np.ndarray
    squared_error_sum: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return self.count.sum(axis=(-1, -2))

    def confusion(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(tn, fp, fn, tp) with the leading axes kept."""
        c = self.count
        return c[..., 0, 0], c[..., 0, 1], c[..., 1, 0], c[..., 1, 1]


@dataclass(frozen=True)
class ThresholdBuckets:
    """The ``threshold`` family as parsed: :class:`ThresholdStats` arrays with a bucket axis,
    ``[g, v, k, ...]``, and ``unlabeled[g, v, k]`` (rows whose label has not arrived)."""

    count: np.ndarray
    log_loss_sum: np.ndarray
    squared_error_sum: np.ndarray
    unlabeled: np.ndarray


@dataclass(frozen=True)
class BinLayout:
    """Where the window's fine score bins lie, one entry per bin (``C`` of them):

    * ``coarse[C]``: the equal-width bootstrap bin (of ``coarse_bins``, that is
      ``confidence.score_bins``) holding the bin; non-decreasing, since bins are ordered by score;
    * ``tied[C]``: every labeled row of the bin in the window has the same score, so rows of
      one bin are tied exactly as scikit-learn ties them.
    """

    coarse: np.ndarray
    tied: np.ndarray
    coarse_bins: int

    def merge(self, array: np.ndarray) -> np.ndarray:
        """The last axis summed into the ``coarse_bins`` bootstrap bins."""
        onehot = np.zeros((len(self.coarse), self.coarse_bins))
        onehot[np.arange(len(self.coarse)), self.coarse] = 1.0
        return array @ onehot

    def calibration(self, calibration_bins: int) -> np.ndarray:
        """Each bin's equal-width calibration bin (calibration bins are unions of bootstrap
        bins)."""
        return self.coarse // (self.coarse_bins // calibration_bins)


@dataclass(frozen=True)
class ScoreHistogram:
    """Rows and score sums per label and score bin, ordered by score.

    ``count[..., 2, C]`` and ``score_sum[..., 2, C]``. Without a ``layout`` the bins are equal
    width and each of the ``calibration_bins`` equal-width calibration bins is the union of
    ``C / calibration_bins`` adjacent bins; with one, the bins follow the data
    (:class:`BinLayout`) and each calibration bin is the union of the bins it holds.
    """

    count: np.ndarray
    score_sum: np.ndarray
    calibration_bins: int
    layout: BinLayout | None = None

    @property
    def n(self) -> np.ndarray:
        return self.count.sum(axis=(-1, -2))


@dataclass
class PairedCells:
    """Requests scored by both baseline and candidate, per slice group ``g``:

    * ``outcomes[g, 3]``: pairs only the baseline classified correctly, only the candidate,
      and all labeled pairs (McNemar's test);
    * ``count[g, y, a, b]`` with ``baseline_score_sum`` / ``candidate_score_sum``: joint cells
      of the baseline's score bin ``a`` and the candidate's ``b`` (paired cell bootstrap).
    """

    outcomes: np.ndarray
    count: np.ndarray
    baseline_score_sum: np.ndarray
    candidate_score_sum: np.ndarray

    @property
    def pairs(self) -> np.ndarray:
        """Labeled requests both versions scored, per slice group."""
        return self.outcomes[:, 2]


class ThresholdFamily:
    """Confusion counts and loss sums per resample bucket: the bucket bootstrap's family."""

    name = "threshold"
    bootstrap = BUCKET_BOOTSTRAP

    def parse(self, table: Rows, index: RowIndex, spec: "EvalSpec") -> ThresholdBuckets:
        G, V, K = index.groups, index.versions, spec.confidence.buckets
        label_null = is_null(table, "label")
        label = column(table, "label")
        n = column(table, "n", float)
        kept = index.g >= 0
        lab, unl = kept & ~label_null, kept & label_null
        k = column(table, "bucket")
        cell = (index.g[lab], index.v[lab], k[lab], label[lab], column(table, "above")[lab])
        by_label = cell[:4]
        return ThresholdBuckets(
            count=accumulate((G, V, K, 2, 2), cell, n[lab]),
            log_loss_sum=accumulate(
                (G, V, K, 2), by_label, column(table, "log_loss_sum", float)[lab]
            ),
            squared_error_sum=accumulate(
                (G, V, K, 2), by_label, column(table, "squared_error_sum", float)[lab]
            ),
            unlabeled=accumulate((G, V, K), (index.g[unl], index.v[unl], k[unl]), n[unl]),
        )

    def point(self, data: ThresholdBuckets) -> ThresholdStats:
        """Every slice and version on all rows: axes ``[g, v, ...]``."""
        return ThresholdStats(
            count=data.count.sum(axis=2),
            log_loss_sum=data.log_loss_sum.sum(axis=2),
            squared_error_sum=data.squared_error_sum.sum(axis=2),
        )

    def buckets(self, data: ThresholdBuckets) -> int:
        return data.count.shape[2]

    def reweight(self, data: ThresholdBuckets, weights: np.ndarray) -> ThresholdStats:
        """Bucket-bootstrap replicates, axes ``[g, v, B, ...]``, for ``weights[B, K]``.

        Every slice and version uses the same weights, so version differences stay paired
        (both models' rows of one request share a bucket).
        """

        def reweighted(array: np.ndarray) -> np.ndarray:
            g, v, k, *rest = array.shape
            flat = array.reshape(g * v, k, -1)
            return np.matmul(weights, flat).reshape(g, v, weights.shape[0], *rest)

        return ThresholdStats(
            count=reweighted(data.count),
            log_loss_sum=reweighted(data.log_loss_sum),
            squared_error_sum=reweighted(data.squared_error_sum),
        )

    def cells(self, data: ThresholdBuckets) -> int:
        return int(data.count.size)


class HistogramFamily:
    """Rows and score sums per fine score bin: the cell bootstrap's family, paired through
    joint cells of both versions' score bins."""

    name = "histogram"
    bootstrap = CELL_BOOTSTRAP

    def parse(self, table: Rows, index: RowIndex, spec: "EvalSpec") -> ScoreHistogram:
        # The bins' own rows (no slice group, no label) carry each bin's layout.
        layout = ~is_null(table, "coarse_bin")
        fine_bin = column(table, "fine_bin")
        bins = int(fine_bin[layout].max()) + 1 if layout.any() else 1
        coarse = np.zeros(bins, dtype=np.int64)
        tied = np.zeros(bins, dtype=bool)
        coarse[fine_bin[layout]] = column(table, "coarse_bin")[layout]
        tied[fine_bin[layout]] = column(table, "tied")[layout] == 1
        keep = (index.g >= 0) & ~is_null(table, "label")
        fine = (index.g[keep], index.v[keep], column(table, "label")[keep], fine_bin[keep])
        shape = (index.groups, index.versions, 2, bins)
        return ScoreHistogram(
            count=accumulate(shape, fine, column(table, "n", float)[keep]),
            score_sum=accumulate(shape, fine, column(table, "score_sum", float)[keep]),
            calibration_bins=spec.calibration_bins,
            layout=BinLayout(coarse, tied, spec.confidence.score_bins),
        )

    def point(self, data: ScoreHistogram) -> ScoreHistogram:
        return data

    def cells(self, data: ScoreHistogram) -> int:
        return int(data.count.size)

    def coarsen(self, data: ScoreHistogram, spec: "EvalSpec") -> ScoreHistogram:
        """The histogram merged to the ``confidence.score_bins`` equal-width bins the
        bootstrap draws."""
        if data.layout is not None:
            merge = data.layout.merge
        else:
            bins = spec.confidence.score_bins

            def merge(array: np.ndarray) -> np.ndarray:
                return merge_bins(array, bins)

        return ScoreHistogram(
            count=merge(data.count),
            score_sum=merge(data.score_sum),
            calibration_bins=data.calibration_bins,
        )

    def redraw(
        self, data: ScoreHistogram, chunk: np.ndarray, replicates: int, rng: np.random.Generator
    ) -> ScoreHistogram:
        """Poisson cell replicates of the slice groups ``chunk`` of ``count[g, v, 2, C]``,
        axes ``[g, v, B, 2, C]``."""
        counts, scores = poisson_cell_replicates(
            data.count[chunk], data.score_sum[chunk], replicates, rng
        )
        return ScoreHistogram(
            count=np.moveaxis(counts, -2, 2),
            score_sum=np.moveaxis(scores, -2, 2),
            calibration_bins=data.calibration_bins,
        )

    def pair(
        self, count: np.ndarray, baseline_sum: np.ndarray, candidate_sum: np.ndarray, bins: int
    ) -> tuple[ScoreHistogram, ScoreHistogram]:
        """Each version's histogram out of joint cells ``count[..., y, a, b]``: the
        baseline's sums over the candidate's bin ``b``, the candidate's over ``a``."""
        baseline = ScoreHistogram(count.sum(-1), baseline_sum.sum(-1), bins)
        candidate = ScoreHistogram(count.sum(-2), candidate_sum.sum(-2), bins)
        return baseline, candidate

    def joint_point(
        self, paired: PairedCells, spec: "EvalSpec"
    ) -> tuple[ScoreHistogram, ScoreHistogram]:
        return self.pair(
            paired.count,
            paired.baseline_score_sum,
            paired.candidate_score_sum,
            spec.calibration_bins,
        )

    def redraw_joint(
        self,
        paired: PairedCells,
        chunk: np.ndarray,
        replicates: int,
        rng: np.random.Generator,
        spec: "EvalSpec",
    ) -> tuple[ScoreHistogram, ScoreHistogram]:
        """One Poisson draw per joint cell (baseline bin x candidate bin x label) reweights
        both versions' histograms at once, so each replicate's delta keeps the pairing.
        Axes ``[g, B, 2, R]`` for the slice groups of ``chunk``."""
        R = paired.count.shape[-1]
        shape = (len(chunk), 2 * R * R)
        count = paired.count[chunk].reshape(shape)
        draws, baseline_sum = poisson_cell_replicates(
            count, paired.baseline_score_sum[chunk].reshape(shape), replicates, rng
        )  # [g, B, cells]
        # The candidate's score sums scale with the same draws.
        ratio = np.where(count > 0, 1.0 / np.where(count > 0, count, 1), 0.0)
        candidate_mean = ratio * paired.candidate_score_sum[chunk].reshape(shape)
        candidate_sum = draws * candidate_mean[:, None, :]
        full = (len(chunk), replicates, 2, R, R)
        return self.pair(
            draws.reshape(full),
            baseline_sum.reshape(full),
            candidate_sum.reshape(full),
            spec.calibration_bins,
        )


THRESHOLD = ThresholdFamily()
HISTOGRAM = HistogramFamily()


def parse_paired_cells(
    table: pa.Table, g: np.ndarray, spec: "EvalSpec", groups: int
) -> PairedCells:
    """The paired query's rows (``g``: each row's slice group of the main statistics, -1 for
    none) as McNemar outcomes and joint histogram cells."""
    keep = g >= 0
    label = column(table, "label")
    baseline_right = column(table, "baseline_above") == label
    candidate_right = column(table, "candidate_above") == label
    n = column(table, "n", float)
    R = spec.confidence.paired_bins

    def per_slice(mask: np.ndarray) -> np.ndarray:
        return accumulate((groups,), (g[keep & mask],), n[keep & mask])

    outcomes = np.stack(
        [
            per_slice(baseline_right & ~candidate_right),
            per_slice(candidate_right & ~baseline_right),
            per_slice(np.ones(len(g), dtype=bool)),
        ],
        axis=1,
    )
    cell = (
        g[keep],
        label[keep],
        column(table, "baseline_bin")[keep],
        column(table, "candidate_bin")[keep],
    )
    return PairedCells(
        outcomes=outcomes,
        count=accumulate((groups, 2, R, R), cell, n[keep]),
        baseline_score_sum=accumulate(
            (groups, 2, R, R), cell, column(table, "baseline_score_sum", float)[keep]
        ),
        candidate_score_sum=accumulate(
            (groups, 2, R, R), cell, column(table, "candidate_score_sum", float)[keep]
        ),
    )
