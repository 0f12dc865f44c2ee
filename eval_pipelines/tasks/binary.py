"""The binary-classification task: its metrics, computed from statistics, never from rows.

Every metric here is a function of one of two statistic families that SQL aggregates
(:mod:`eval_pipelines.stats.binary`): :class:`ThresholdStats` (per label and side of the
decision threshold: row count, summed log-loss terms, summed squared errors) or
:class:`ScoreHistogram` (per label and score bin: row count and score sum). The
functions are vectorised over any leading axes
(slices, model versions, bootstrap replicates), so one code path serves point estimates and
every replicate.

Exactness, against scikit-learn on the same rows:

* accuracy, precision, recall, F1, log loss and Brier score are exact (sums of per-row terms);
* ECE is exact for equal-width calibration bins, because calibration bins are unions of score
  bins and each bin carries its score sum;
* ROC AUC and average precision treat rows in the same score bin as tied. The bins follow the
  window's labeled scores (:class:`~eval_pipelines.stats.binary.BinLayout`): a window with at
  most ``score_bins`` distinct scores (at least 1e-5 apart) gets one bin per score, so both are
  exact (error bound 0); otherwise the bins are quantile bins of about ``1 / score_bins`` of
  the window's rows each, cut again at the ``score_bins`` equal-width edges (no bin is coarser
  than an equal-width one). A bin whose rows all share one score is tied exactly as
  scikit-learn ties it and contributes no error. For ROC AUC the error is at most
  ``0.5 * sum_b pos_b * neg_b / (P * N)`` over the other bins (:func:`roc_auc_error_bound`); for
  average precision see :func:`average_precision_error_bound`. Both shrink with more bins
  (spec key ``score_bins``).

References
----------
Hanley & McNeil (1982), "The meaning and use of the area under a ROC curve", Radiology 143.
Brier (1950), "Verification of forecasts expressed in terms of probability", Mon. Wea. Rev. 78.
Naeini, Cooper & Hauskrecht (2015), "Obtaining well calibrated probabilities using Bayesian
binning", AAAI (expected calibration error).
"""

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from eval_pipelines.curves import CurveInputs, histogram_points, points, roc_pr_curves
from eval_pipelines.inference.significance import mcnemar_exact
from eval_pipelines.stats.binary import (
    HISTOGRAM,
    THRESHOLD,
    PairedCells,
    ScoreHistogram,
    ThresholdBuckets,
    ThresholdStats,
    parse_paired_cells,
)
from eval_pipelines.tasks.base import Metric, PairedTest, RowCounts, Task, divide

if TYPE_CHECKING:
    from eval_pipelines.sqlbuild import SqlBuilder
    from eval_pipelines.windows import Window


def accuracy(stats: ThresholdStats) -> np.ndarray:
    """(TP + TN) / N."""
    tn, fp, fn, tp = stats.confusion()
    return divide(tp + tn, tn + fp + fn + tp)


def precision(stats: ThresholdStats) -> np.ndarray:
    """TP / (TP + FP); undefined (NaN) when nothing is predicted positive."""
    _, fp, _, tp = stats.confusion()
    return divide(tp, tp + fp)


def recall(stats: ThresholdStats) -> np.ndarray:
    """TP / (TP + FN); undefined (NaN) when the slice has no positives."""
    _, _, fn, tp = stats.confusion()
    return divide(tp, tp + fn)


def f1(stats: ThresholdStats) -> np.ndarray:
    """2 TP / (2 TP + FP + FN), the harmonic mean of precision and recall (van Rijsbergen 1979)."""
    _, fp, fn, tp = stats.confusion()
    return divide(2 * tp, 2 * tp + fp + fn)


def log_loss(stats: ThresholdStats) -> np.ndarray:
    """Mean of ``-[y log p + (1 - y) log(1 - p)]``, p clipped to [eps, 1 - eps] as scikit-learn."""
    return divide(stats.log_loss_sum.sum(-1), stats.n)


def brier(stats: ThresholdStats) -> np.ndarray:
    """Mean of ``(p - y)**2`` (Brier 1950)."""
    return divide(stats.squared_error_sum.sum(-1), stats.n)


def expected_calibration_error(stats: ScoreHistogram) -> np.ndarray:
    """ECE = sum_b (n_b / N) |mean score_b - positive rate_b| over equal-width bins.

    Equivalently ``sum_b |sum of scores_b - positives_b| / N`` (Naeini et al. 2015).
    """
    score_sum = stats.score_sum.sum(-2)
    positive = stats.count[..., 1, :]
    if stats.layout is not None:  # bins that follow the data: sum each calibration bin's own
        onehot = np.zeros((score_sum.shape[-1], stats.calibration_bins))
        onehot[np.arange(score_sum.shape[-1]), stats.layout.calibration(stats.calibration_bins)] = 1
        scores, positives = score_sum @ onehot, positive @ onehot
    else:
        shape = (*stats.count.shape[:-2], stats.calibration_bins)
        groups = stats.count.shape[-1] // stats.calibration_bins
        scores = score_sum.reshape((*shape, groups)).sum(-1)
        positives = positive.reshape((*shape, groups)).sum(-1)
    return divide(np.abs(scores - positives).sum(-1), stats.n)


def roc_auc_from_histograms(negatives: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """ROC AUC from per-cell counts ordered by score (Mann-Whitney U / (P N), ties count 1/2).

    ``AUC = sum_c pos_c * (neg_{<c} + neg_c / 2) / (P * N)``; Hanley & McNeil (1982).
    """
    below = np.cumsum(negatives, axis=-1) - negatives
    u = (positives * (below + 0.5 * negatives)).sum(-1)
    return divide(u, positives.sum(-1) * negatives.sum(-1))


def roc_auc_error_bound(
    negatives: np.ndarray, positives: np.ndarray, tied: np.ndarray | None = None
) -> np.ndarray:
    """Largest possible |binned AUC - exact AUC|: every within-bin pair counted as a tie.

    Each bin contributes ``pos_b * neg_b`` pairs scored 1/2 whose exact value is 0 or 1,
    except a bin whose rows all share one score (``tied[b]``): its pairs are true ties.
    """
    within = positives * negatives
    if tied is not None:
        within = np.where(tied, 0.0, within)
    return divide(0.5 * within.sum(-1), positives.sum(-1) * negatives.sum(-1))


def average_precision_from_histograms(negatives: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Average precision, ``AP = sum_c (R_c - R_{c-1}) P_c``, thresholds at cell boundaries.

    Cells are swept from the highest score down, as scikit-learn's
    ``average_precision_score`` sweeps distinct scores (Zhu 2004; Manning et al. 2008, 8.4).
    """
    pos = positives[..., ::-1]
    neg = negatives[..., ::-1]
    tp = np.cumsum(pos, axis=-1)
    fp = np.cumsum(neg, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision_at = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1), 0.0)
    return divide((pos * precision_at).sum(-1), pos.sum(-1))


def average_precision_error_bound(
    negatives: np.ndarray, positives: np.ndarray, tied: np.ndarray | None = None
) -> np.ndarray:
    """Largest possible |binned AP - exact AP| given only per-bin counts.

    Within a bin with ``p`` positives and ``n`` negatives, after ``tp0, fp0`` rows above it,
    each positive's exact precision lies between ``(tp0 + 1) / (tp0 + fp0 + 1 + n)`` (every
    negative first) and ``(tp0 + p) / (tp0 + fp0 + p)`` (every positive first); binned AP uses
    ``(tp0 + p) / (tp0 + fp0 + p + n)``. The bound sums the worse gap, weighted by ``p / P``.
    A bin whose rows all share one score (``tied[b]``) is one threshold of scikit-learn's
    sweep, where binned AP is exact: no gap.
    """
    pos = positives[..., ::-1].astype(float)
    neg = negatives[..., ::-1].astype(float)
    tp0 = np.cumsum(pos, axis=-1) - pos
    fp0 = np.cumsum(neg, axis=-1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        used = (tp0 + pos) / (tp0 + fp0 + pos + neg)
        high = (tp0 + pos) / (tp0 + fp0 + pos)
        low = (tp0 + 1) / (tp0 + fp0 + 1 + neg)
        gap = np.where(pos > 0, np.maximum(high - used, used - low), 0.0)
    if tied is not None:
        gap = np.where(tied[::-1], 0.0, gap)
    return divide((pos * gap).sum(-1), pos.sum(-1))


def roc_auc(stats: ScoreHistogram) -> np.ndarray:
    return roc_auc_from_histograms(stats.count[..., 0, :], stats.count[..., 1, :])


def pr_auc(stats: ScoreHistogram) -> np.ndarray:
    return average_precision_from_histograms(stats.count[..., 0, :], stats.count[..., 1, :])


def _tied(stats: ScoreHistogram) -> np.ndarray | None:
    return stats.layout.tied if stats.layout is not None else None


def roc_auc_bound(stats: ScoreHistogram) -> np.ndarray:
    return roc_auc_error_bound(stats.count[..., 0, :], stats.count[..., 1, :], _tied(stats))


def pr_auc_bound(stats: ScoreHistogram) -> np.ndarray:
    return average_precision_error_bound(
        stats.count[..., 0, :], stats.count[..., 1, :], _tied(stats)
    )


def mcnemar(paired: PairedCells) -> np.ndarray:
    """McNemar's exact test on the requests both versions classified (per slice group)."""
    return mcnemar_exact(paired.outcomes[:, 0], paired.outcomes[:, 1])


def row_counts(statistics) -> RowCounts:
    """Labeled rows and positives from the threshold family, unlabeled rows beside them."""
    data: ThresholdBuckets = statistics.data[THRESHOLD.name]
    point = THRESHOLD.point(data)
    return RowCounts(
        labeled=point.n,
        positives=point.count[..., 1, :].sum(-1),
        unlabeled=data.unlabeled.sum(axis=2),
    )


METRICS = [
    Metric(
        "accuracy",
        "Accuracy",
        THRESHOLD,
        accuracy,
        "(TP + TN) / N",
        True,
        "scikit-learn accuracy_score; McNemar 1947 (paired test)",
        paired_test=PairedTest("McNemar exact", mcnemar),
    ),
    Metric(
        "precision",
        "Precision",
        THRESHOLD,
        precision,
        "TP / (TP + FP)",
        True,
        "Manning et al., Introduction to Information Retrieval, 8.3; scikit-learn precision_score",
    ),
    Metric(
        "recall",
        "Recall",
        THRESHOLD,
        recall,
        "TP / (TP + FN)",
        True,
        "Manning et al., Introduction to Information Retrieval, 8.3; scikit-learn recall_score",
    ),
    Metric("f1", "F1 score", THRESHOLD, f1, "2TP / (2TP + FP + FN)", True, "van Rijsbergen 1979"),
    Metric(
        "roc_auc",
        "ROC AUC",
        HISTOGRAM,
        roc_auc,
        "P(score+ > score-) + P(tie) / 2",
        True,
        "Hanley & McNeil 1982",
        error_bound=roc_auc_bound,
    ),
    Metric(
        "pr_auc",
        "PR AUC (average precision)",
        HISTOGRAM,
        pr_auc,
        "sum (R_n - R_n-1) P_n",
        True,
        "Zhu 2004",
        error_bound=pr_auc_bound,
    ),
    Metric(
        "log_loss",
        "Log loss",
        THRESHOLD,
        log_loss,
        "-mean(y log p + (1-y) log(1-p))",
        False,
        "Good 1952; scikit-learn log_loss; Bishop 2006, p. 209",
    ),
    Metric("brier", "Brier score", THRESHOLD, brier, "mean((p - y)^2)", False, "Brier 1950"),
    Metric(
        "ece",
        "Expected calibration error",
        HISTOGRAM,
        expected_calibration_error,
        "sum_b n_b/N |mean(p)_b - mean(y)_b|",
        False,
        "Naeini et al. 2015",
    ),
]


# The most points of a ROC or PR line: fine bins beyond it merge into runs (a line per slice
# and version; 1000 fine bins made the demo's curves.parquet 2.6 MB at 400k rows).
ROC_POINTS = 200


def curves(inputs: CurveInputs) -> pd.DataFrame:
    """ROC and PR points, reliability bins and score histograms by label, all from the
    histogram family's point statistic (``curves.parquet``; docs/curves.md).

    * ROC / PR: one point per occupied fine bin (:func:`~eval_pipelines.curves.roc_pr_curves`),
      or with more than :data:`ROC_POINTS` fine bins, per occupied run of adjacent fine bins
      (each point still an exact point of the curve: every row of the run and above it
      counts as positive); a point's threshold is the mean score of its (lowest occupied) bin
      in that slice and version, the exact score when the bin's rows share one (every bin of
      a window with at most ``score_bins`` distinct scores);
    * reliability: the ``calibration_bins`` equal-width bins ECE reads (unions of fine bins):
      mean score (``x``), observed positive rate (``y``) and rows (``n``) per bin with rows;
    * score_histogram: rows per label (``series`` "0", "1") in the ``confidence.score_bins``
      equal-width bins (unions of fine bins), ``y`` the share of the label's rows.
    """
    stats, spec = inputs.stats, inputs.spec
    hist: ScoreHistogram = HISTOGRAM.point(stats.data[HISTOGRAM.name])
    assert hist.layout is not None  # the family always parses its bins' layout
    negatives, positives = hist.count[..., 0, :], hist.count[..., 1, :]
    score_sum = hist.score_sum.sum(-2)
    threshold = divide(score_sum, negatives + positives)
    bins = negatives.shape[-1]
    if bins > ROC_POINTS:  # runs of adjacent fine bins; NaN (empty) bins skipped by fmin
        starts = np.flatnonzero(np.diff(np.arange(bins) * ROC_POINTS // bins, prepend=-1))
        parts = roc_pr_curves(
            stats,
            np.add.reduceat(negatives, starts, axis=-1),
            np.add.reduceat(positives, starts, axis=-1),
            np.fmin.reduceat(threshold, starts, axis=-1),
        )
    else:
        parts = roc_pr_curves(stats, negatives, positives, threshold)

    bins = spec.calibration_bins
    onehot = np.zeros((len(hist.layout.coarse), bins))
    onehot[np.arange(len(hist.layout.coarse)), hist.layout.calibration(bins)] = 1.0
    rows = (negatives + positives) @ onehot
    edges = np.linspace(0.0, 1.0, bins + 1)
    parts.append(
        points(
            stats,
            "reliability",
            rows > 0,
            x=divide(score_sum @ onehot, rows),
            y=divide(positives @ onehot, rows),
            n=rows,
            x_low=edges[:-1],
            x_high=edges[1:],
        )
    )
    merged = hist.layout.merge(hist.count)
    score_edges = np.linspace(0.0, 1.0, hist.layout.coarse_bins + 1)
    for label in (0, 1):
        parts.append(
            histogram_points(
                stats, "score_histogram", merged[..., label, :], score_edges, str(label)
            )
        )
    return pd.concat(parts, ignore_index=True)


def statistics_query(builder: "SqlBuilder", window: "Window") -> str:
    return builder.binary_statistics(window)


def paired_query(builder: "SqlBuilder", window: "Window", baseline: str, candidate: str) -> str:
    return builder.binary_paired_counts(window, baseline, candidate)


def fingerprint_value(builder: "SqlBuilder") -> str:
    """The score (to 1e-9) and the label. Out-of-range, NaN and infinite scores (which fail
    the checks) hash as empty instead of overflowing the cast and failing the query that
    reports them."""
    score = builder.as_text(
        "CAST(ROUND(CASE WHEN score >= 0 AND score <= 1 THEN score END * 1000000000) AS BIGINT)"
    )
    return f"COALESCE({score}, '') || '|' || COALESCE({builder.as_text('label')}, '')"


BINARY = Task(
    name="binary_classification",
    families=(THRESHOLD, HISTOGRAM),
    metrics={metric.name: metric for metric in METRICS},
    rows=row_counts,
    parse_paired=parse_paired_cells,
    output="score",
    statistics_query=statistics_query,
    paired_query=paired_query,
    fingerprint_value=fingerprint_value,
    output_types=frozenset({"integer", "decimal", "float"}),
    output_wording="a numeric column (a probability in [0, 1])",
    label_types=frozenset({"integer", "decimal", "float", "boolean"}),
    label_wording="BOOLEAN, an integer or a DECIMAL/floating-point column holding 0 or 1",
    curves=curves,
)
