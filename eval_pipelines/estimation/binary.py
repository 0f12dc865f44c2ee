"""CBPE for the binary classifier: the expected confusion matrix and expected score histogram
of a week's predictions, from their calibrated scores, without labels.

For a row with calibrated probability ``p`` of being positive, predicted positive when its
score is at or above the spec's ``threshold``, the expected contributions are ``p`` to TP and
``1 - p`` to FP (above the threshold), or ``p`` to FN and ``1 - p`` to TN (below). Summed
over a week these give an expected :class:`~eval_pipelines.stats.binary.ThresholdStats`, on
which the binary task's own accuracy, precision, recall and F1 functions give NannyML's
estimates (``estimate_accuracy``, ``estimate_precision``, ``estimate_recall``,
``estimate_f1`` in ``nannyml/performance_estimation/confidence_based/metrics.py``). The same
sums per score bin, ``p`` as expected positives and ``1 - p`` as expected negatives, form an
expected :class:`~eval_pipelines.stats.binary.ScoreHistogram`, on which the task's ROC AUC
gives NannyML's ``estimate_roc_auc`` (rows ordered by their uncalibrated score, cumulative
calibrated probabilities as true positives), with rows of one bin counted as ties.

The week arrives as cells (threshold side x fine score bin): rows and score sum per cell
(``sql/estimation_histograms.sql``), so a cell's expected positives are its rows times the
calibration at its mean score.

Reference
---------
NannyML, "Confidence-based Performance Estimation (CBPE)", how-it-works documentation and
``nannyml/performance_estimation/confidence_based/`` (0.13.1).
"""

from dataclasses import dataclass

import numpy as np

from eval_pipelines.inference.bootstrap import CELL_BOOTSTRAP
from eval_pipelines.inference.resampling import merge_bins, poisson_cell_replicates
from eval_pipelines.stats.binary import HISTOGRAM, THRESHOLD, ScoreHistogram, ThresholdStats
from eval_pipelines.tasks.binary import BINARY

# The binary metrics CBPE estimates (issue 10 item 5), computed by the task's own functions.
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


@dataclass(frozen=True)
class ExpectedCells:
    """A week's rows per cell with their expected positives: ``count[..., 2, C]`` and
    ``positive[..., 2, C]`` (axis -2: below / at-or-above the threshold; axis -1: score bin),
    ``positive`` being the sum of the rows' calibrated probabilities."""

    count: np.ndarray
    positive: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return self.count.sum(axis=(-1, -2))

    def threshold_stats(self) -> ThresholdStats:
        """Expected counts per label and threshold side (loss sums are not estimated)."""
        pos = self.positive.sum(-1)  # [..., side]
        neg = self.count.sum(-1) - pos
        count = np.stack([neg, pos], axis=-2)  # [..., label, side]
        zeros = np.zeros(count.shape[:-1])
        return ThresholdStats(count=count, log_loss_sum=zeros, squared_error_sum=zeros)

    def score_histogram(self) -> ScoreHistogram:
        """Expected negatives and positives per cell, cells in score order (bin, then side:
        within the bin holding the threshold, the rows below it score lower)."""
        pos = np.moveaxis(self.positive, -2, -1).reshape(*self.positive.shape[:-2], -1)
        rows = np.moveaxis(self.count, -2, -1).reshape(*self.count.shape[:-2], -1)
        count = np.stack([rows - pos, pos], axis=-2)
        return ScoreHistogram(count=count, score_sum=np.zeros(count.shape), calibration_bins=1)


# Which expected statistic stands in for each family of the binary task.
EXPECTED_STATISTIC = {
    THRESHOLD.name: ExpectedCells.threshold_stats,
    HISTOGRAM.name: ExpectedCells.score_histogram,
}


def estimated_function(metric: str):
    """``cells -> estimate``: the task's metric function over the expected statistic of its
    family (the metric registry is the one place a formula lives)."""
    entry = BINARY.metric(metric)
    expected = EXPECTED_STATISTIC[entry.family.name]
    return lambda cells: entry.compute(expected(cells))


def estimated_bound(metric: str):
    """The binning error bound of the task's metric on the expected statistic, else None."""
    entry = BINARY.metric(metric)
    if entry.error_bound is None:
        return None
    expected = EXPECTED_STATISTIC[entry.family.name]
    return lambda cells: entry.error_bound(expected(cells))


class ExpectedCellsFamily:
    """The expected cells as a cell-bootstrap family whose replicates are weeks the
    calibrated model could have produced: each cell's rows are redrawn Poisson(n) (the
    Poisson bootstrap of the week's rows) and their labels Binomial(rows, p) at the cell's
    calibrated probability ``p``, the calibration held fixed. The interval is then one for
    the *realized* metric of a week like this one, not only for the estimate: label noise is
    most of its width, as in NannyML's sampling error (docs/estimation.md)."""

    name = "expected_cells"
    bootstrap = CELL_BOOTSTRAP

    def point(self, data: ExpectedCells) -> ExpectedCells:
        return data

    def cells(self, data: ExpectedCells) -> int:
        return int(data.count.size)

    def coarsen(self, data: ExpectedCells, spec) -> ExpectedCells:
        bins = spec.confidence.score_bins
        return ExpectedCells(merge_bins(data.count, bins), merge_bins(data.positive, bins))

    def redraw(
        self, data: ExpectedCells, chunk: np.ndarray, replicates: int, rng: np.random.Generator
    ) -> ExpectedCells:
        """Replicates ``[g, v, B, 2, C]`` of the slice groups ``chunk``."""
        counts, expected = poisson_cell_replicates(
            data.count[chunk], data.positive[chunk], replicates, rng
        )  # [g, v, 2, B, C]
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(counts > 0, expected / np.where(counts > 0, counts, 1), 0.0)
        positives = rng.binomial(counts.astype(np.int64), np.clip(p, 0.0, 1.0)).astype(float)
        return ExpectedCells(np.moveaxis(counts, -2, 2), np.moveaxis(positives, -2, 2))


EXPECTED_CELLS = ExpectedCellsFamily()
