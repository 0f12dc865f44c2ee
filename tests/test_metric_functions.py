"""Each metric function on tiny hand-built statistics, against scikit-learn or a hand count.

The end-to-end oracle (tests/test_metrics_oracle.py) checks the whole path from the warehouse;
these check the functions alone, on statistics the test builds from rows itself, including
undefined cases and leading (slice, version, replicate) axes.
"""

import numpy as np
import pytest
from sklearn import metrics as skm

from eval_pipelines.stats.binary import LOG_LOSS_EPS, ScoreHistogram, ThresholdStats
from eval_pipelines.tasks import binary as m

THRESHOLD = 0.5


def threshold_stats(y: np.ndarray, score: np.ndarray) -> ThresholdStats:
    """Counts per label and side of the threshold, and per-label loss sums, from rows."""
    above = (score >= THRESHOLD).astype(int)
    count = np.zeros((2, 2))
    np.add.at(count, (y, above), 1)
    p = np.clip(score, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return ThresholdStats(
        count=count,
        log_loss_sum=np.bincount(y, weights=loss, minlength=2),
        squared_error_sum=np.bincount(y, weights=(score - y) ** 2, minlength=2),
    )


def histogram(y: np.ndarray, score: np.ndarray, bins: int, calibration_bins: int):
    index = np.minimum((score * bins).astype(int), bins - 1)
    count = np.zeros((2, bins))
    score_sum = np.zeros((2, bins))
    np.add.at(count, (y, index), 1)
    np.add.at(score_sum, (y, index), score)
    return ScoreHistogram(count=count, score_sum=score_sum, calibration_bins=calibration_bins)


def rows(seed: int, n: int = 200, bins: int | None = None):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rng.uniform(0.1, 0.6)).astype(int)
    score = 1 / (1 + np.exp(-(rng.normal(-0.5, 1, n) + 1.5 * y)))
    if bins is not None:  # scores at bin centres: no two distinct scores share a bin
        score = (np.minimum((score * bins).astype(int), bins - 1) + 0.5) / bins
    return y, score


@pytest.mark.parametrize("seed", range(6))
def test_threshold_metrics_match_sklearn(seed):
    y, score = rows(seed)
    stats = threshold_stats(y, score)
    predicted = (score >= THRESHOLD).astype(int)
    assert m.accuracy(stats) == pytest.approx(skm.accuracy_score(y, predicted), abs=1e-15)
    assert m.precision(stats) == pytest.approx(skm.precision_score(y, predicted), abs=1e-15)
    assert m.recall(stats) == pytest.approx(skm.recall_score(y, predicted), abs=1e-15)
    assert m.f1(stats) == pytest.approx(skm.f1_score(y, predicted), abs=1e-15)
    assert m.log_loss(stats) == pytest.approx(skm.log_loss(y, score), rel=1e-12)
    assert m.brier(stats) == pytest.approx(skm.brier_score_loss(y, score), rel=1e-12)
    np.testing.assert_array_equal(stats.n, len(y))


def test_confusion_order_is_tn_fp_fn_tp():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    score = np.array([0.1, 0.7, 0.8, 0.2, 0.3, 0.4, 0.9, 0.9, 0.9, 0.9])
    tn, fp, fn, tp = threshold_stats(y, score).confusion()
    assert (tn, fp, fn, tp) == (1, 2, 3, 4)
    stats = threshold_stats(y, score)
    assert m.precision(stats) == 4 / 6
    assert m.recall(stats) == 4 / 7
    assert m.accuracy(stats) == 5 / 10
    assert m.f1(stats) == 8 / 13


def test_undefined_ratios_are_nan_not_zero():
    nothing_predicted = threshold_stats(np.array([0, 1]), np.array([0.1, 0.2]))
    assert np.isnan(m.precision(nothing_predicted))
    assert m.recall(nothing_predicted) == 0.0
    no_positives = threshold_stats(np.array([0, 0]), np.array([0.1, 0.9]))
    assert np.isnan(m.recall(no_positives))
    assert m.precision(no_positives) == 0.0
    assert np.isnan(m.f1(threshold_stats(np.array([0, 0]), np.array([0.1, 0.2]))))
    empty = ThresholdStats(np.zeros((2, 2)), np.zeros(2), np.zeros(2))
    for function in (m.accuracy, m.log_loss, m.brier):
        assert np.isnan(function(empty))


@pytest.mark.parametrize("seed", range(6))
def test_histogram_metrics_match_sklearn_when_bins_separate_scores(seed):
    bins = 40
    y, score = rows(seed, bins=bins)
    stats = histogram(y, score, bins, calibration_bins=10)
    assert m.roc_auc(stats) == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    assert m.pr_auc(stats) == pytest.approx(skm.average_precision_score(y, score), abs=1e-12)
    assert m.roc_auc_error_bound(stats.count[0], stats.count[1]) >= 0
    np.testing.assert_array_equal(stats.n, len(y))


def test_expected_calibration_error_by_hand():
    # Two calibration bins over 4 score bins: [0, .5) and [.5, 1].
    y = np.array([0, 0, 1, 0, 1, 1, 1, 0])
    score = np.array([0.1, 0.3, 0.4, 0.2, 0.6, 0.9, 0.7, 0.8])
    stats = histogram(y, score, bins=4, calibration_bins=2)
    low = abs(score[:4].sum() - y[:4].sum())  # |1.0 - 1| = 0
    high = abs(score[4:].sum() - y[4:].sum())  # |3.0 - 3| = 0
    assert m.expected_calibration_error(stats) == pytest.approx((low + high) / 8, abs=1e-15)
    y2 = np.array([0, 0, 0, 1])
    score2 = np.array([0.1, 0.2, 0.6, 0.9])
    stats2 = histogram(y2, score2, bins=4, calibration_bins=2)
    expected = (abs(0.1 + 0.2 - 0) + abs(0.6 + 0.9 - 1)) / 4
    assert m.expected_calibration_error(stats2) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("seed", range(6))
def test_expected_calibration_error_matches_a_row_level_oracle(seed):
    y, score = rows(seed, n=300)
    calibration_bins = 10
    stats = histogram(y, score, bins=100, calibration_bins=calibration_bins)
    bin_of = np.minimum((score * calibration_bins).astype(int), calibration_bins - 1)
    expected = sum(
        abs(score[bin_of == b].sum() - y[bin_of == b].sum()) for b in range(calibration_bins)
    ) / len(y)
    assert m.expected_calibration_error(stats) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_error_bounds_hold_when_scores_share_bins(seed):
    y, score = rows(seed, n=150)
    stats = histogram(y, score, bins=8, calibration_bins=4)
    neg, pos = stats.count[0], stats.count[1]
    auc_error = abs(m.roc_auc(stats) - skm.roc_auc_score(y, score))
    ap_error = abs(m.pr_auc(stats) - skm.average_precision_score(y, score))
    assert auc_error <= m.roc_auc_error_bound(neg, pos) + 1e-12
    assert ap_error <= m.average_precision_error_bound(neg, pos) + 1e-12


def test_error_bounds_are_tight_on_one_shared_bin():
    # One positive and one negative in the same bin: binned AUC 0.5, exact 0 or 1.
    neg, pos = np.array([0.0, 1.0]), np.array([0.0, 1.0])
    assert m.roc_auc_from_histograms(neg, pos) == 0.5
    assert m.roc_auc_error_bound(neg, pos) == 0.5
    # Binned AP = 1/2; exact AP is 1 (positive first) or 1/2 (negative first).
    assert m.average_precision_from_histograms(neg, pos) == 0.5
    assert m.average_precision_error_bound(neg, pos) == 0.5
    # Separate bins: no error possible.
    neg, pos = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert m.roc_auc_from_histograms(neg, pos) == 1.0
    assert m.roc_auc_error_bound(neg, pos) == 0.0
    assert m.average_precision_error_bound(neg, pos) == 0.0


def test_auc_and_ap_hand_worked_with_ties():
    # Cells ordered by score: (neg, pos) = (2, 0), (1, 1), (0, 2).
    neg, pos = np.array([2.0, 1.0, 0.0]), np.array([0.0, 1.0, 2.0])
    # U = pos_1 * (2 + 1/2) + pos_2 * (3 + 0) = 2.5 + 6 = 8.5 of P N = 9.
    assert m.roc_auc_from_histograms(neg, pos) == pytest.approx(8.5 / 9, abs=1e-15)
    # Sweep from the top: cell 2 -> P = 1, R = 2/3; cell 1 -> P = 3/4, R = 1.
    assert m.average_precision_from_histograms(neg, pos) == pytest.approx(
        2 / 3 * 1 + 1 / 3 * 3 / 4, abs=1e-15
    )


def test_histogram_metrics_are_undefined_without_both_classes():
    only_negatives = ScoreHistogram(
        count=np.array([[3.0, 1.0], [0.0, 0.0]]), score_sum=np.zeros((2, 2)), calibration_bins=2
    )
    assert np.isnan(m.roc_auc(only_negatives))
    assert np.isnan(m.pr_auc(only_negatives))
    only_positives = ScoreHistogram(
        count=np.array([[0.0, 0.0], [1.0, 2.0]]), score_sum=np.zeros((2, 2)), calibration_bins=2
    )
    assert np.isnan(m.roc_auc(only_positives))
    assert m.pr_auc(only_positives) == 1.0


def test_functions_vectorise_over_leading_axes():
    cases = [rows(seed, bins=20) for seed in range(3)]
    threshold = [threshold_stats(y, s) for y, s in cases]
    hist = [histogram(y, s, 20, 5) for y, s in cases]
    stacked_t = ThresholdStats(
        count=np.stack([t.count for t in threshold]),
        log_loss_sum=np.stack([t.log_loss_sum for t in threshold]),
        squared_error_sum=np.stack([t.squared_error_sum for t in threshold]),
    )
    stacked_h = ScoreHistogram(
        count=np.stack([h.count for h in hist]),
        score_sum=np.stack([h.score_sum for h in hist]),
        calibration_bins=5,
    )
    for metric in m.BINARY.metrics.values():
        one_by_one = [
            metric.compute(t if metric.family.name == "threshold" else h)
            for t, h in zip(threshold, hist, strict=True)
        ]
        together = metric.compute(stacked_t if metric.family.name == "threshold" else stacked_h)
        np.testing.assert_allclose(together, one_by_one, rtol=1e-14, err_msg=metric.name)


def test_catalogue_directions():
    higher = {name for name, metric in m.BINARY.metrics.items() if metric.higher_is_better}
    assert higher == {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"}
    assert {n for n, x in m.BINARY.metrics.items() if x.family.name == "histogram"} == {
        "roc_auc",
        "pr_auc",
        "ece",
    }


def test_error_bounds_hand_worked_where_each_side_dominates():
    # Two positives, two negatives, one of each per bin: 2 tied pairs of P N = 4.
    assert m.roc_auc_error_bound(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.25
    # One bin, p = 2, n = 1, nothing above: binned precision 2/3; exact between 1/2 (the
    # negative first) and 1 (both positives first): the upper side dominates, 1/3.
    bound = m.average_precision_error_bound(np.array([1.0]), np.array([2.0]))
    assert bound == pytest.approx(1 / 3, abs=1e-15)
    # Cells by ascending score: (p, n) = (10, 10) below (0, 100). In the lower cell, after
    # fp0 = 100 negatives: binned 10/120, at best 10/110, at worst 1/111: the lower side.
    bound = m.average_precision_error_bound(np.array([10.0, 100.0]), np.array([10.0, 0.0]))
    assert bound == pytest.approx(10 / 120 - 1 / 111, abs=1e-15)


def test_average_precision_with_a_single_row_in_the_top_cell():
    assert m.average_precision_from_histograms(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == 1.0
    # The top cell holds one negative: precision 0 there, then 1/2 when the positive comes.
    assert m.average_precision_from_histograms(np.array([0.0, 1.0]), np.array([1.0, 0.0])) == 0.5


def test_counts_over_leading_axes():
    count = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    np.testing.assert_array_equal(
        ThresholdStats(count, np.zeros((2, 3, 2)), np.zeros((2, 3, 2))).n,
        count.sum(axis=(2, 3)),
    )
    hist = np.arange(2 * 3 * 2 * 5, dtype=float).reshape(2, 3, 2, 5)
    np.testing.assert_array_equal(ScoreHistogram(hist, hist, 5).n, hist.sum(axis=(2, 3)))
