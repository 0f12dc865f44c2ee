"""CBPE for a multiclass classifier, in numpy (run by ``estimation.multiclass_week``).

NannyML's multiclass CBPE (``nannyml/performance_estimation/confidence_based/cbpe.py``,
``_fit_calibrators`` and ``_calibrate_predicted_probabilities``):

1. per class ``c``, an isotonic calibration of the class-``c`` probability against the
   one-vs-rest label ``y == c``, fitted on the reference rows;
2. each row's calibrated class probabilities divided by their sum (uniform when the sum
   is 0), so they again sum to 1;
3. the estimates from those probabilities and the predicted class: accuracy is the mean
   calibrated probability of the predicted class, macro F1 the mean over classes of the
   one-vs-rest F1 of the expected counts (``estimate_f1`` per class).

Both estimates are functions of one statistic, the *expected confusion matrix*
``E[i, j] = sum over rows predicted j of p_i`` (true class ``i``, predicted ``j``):
``TP_c = E[c, c]``, ``FP_c = sum_i E[i, c] - E[c, c]`` (the rows predicted ``c`` weigh
``1 - p_c`` as false positives because the probabilities sum to 1) and
``FN_c = sum_j E[c, j] - E[c, c]``. That is the C x C confusion the multiclass task
aggregates, so when it lands its own accuracy and macro-F1 functions apply unchanged.

In the warehouse the calibration is fitted from per-class one-vs-rest score histograms of
the reference weeks (:func:`fit_class_calibrations`, as the binary estimator does), and the
week arrives as per-class score histograms per predicted class (:func:`binned_confusion`):
rows and score sum per (predicted class ``j``, class ``i``, bin of class ``i``'s score). From
them ``U[i, j] = sum over bins of rows x cal_i(mean score)`` is the *unnormalised* calibrated
mass of class ``i`` among the rows predicted ``j``, and the normalisation is applied per
predicted class, ``E[i, j] = n_j U[i, j] / sum_k U[k, j]``, instead of per row: a ratio of
sums for a sum of ratios. It is exact when every row's calibrated probabilities sum to the
same value within a predicted class (for instance 1, when the calibration preserves the
simplex); its size on data is measured in tests/test_estimation_parity.py and
docs/estimation.md.

Differences from NannyML, both documented in docs/estimation.md: NannyML skips a class's
calibration when its cross-validated calibration error does not improve
(``needs_calibration``); we always calibrate. And the fit runs on histogram bins, not rows.
"""

import numpy as np

from eval_pipelines.estimation.calibration import IsotonicMap, fit_isotonic
from eval_pipelines.tasks.base import divide

# The multiclass metrics CBPE estimates (issue 10 item 5), by the multiclass task's functions.
ESTIMATED_METRICS = ("accuracy", "macro_f1")


def class_histograms(
    proba: np.ndarray, label: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class one-vs-rest score histograms of labeled rows (what SQL would aggregate).

    Parameters
    ----------
    proba : ``[N, C]`` class probabilities; label : ``[N]`` class indices in ``0..C-1``.

    Returns
    -------
    ``count[C, 2, bins]`` (rows per class, one-vs-rest label, equal-width bin of ``p_c``)
    and ``score_sum[C, bins]``.
    """
    _n, classes = proba.shape
    fine = np.clip(np.floor(proba * bins).astype(np.int64), 0, bins - 1)
    count = np.zeros((classes, 2, bins))
    score_sum = np.zeros((classes, bins))
    for c in range(classes):
        hit = (label == c).astype(np.int64)
        np.add.at(count[c], (hit, fine[:, c]), 1.0)
        np.add.at(score_sum[c], fine[:, c], proba[:, c])
    return count, score_sum


def fit_class_calibrations(count: np.ndarray, score_sum: np.ndarray) -> list[IsotonicMap]:
    """One isotonic map per class from its one-vs-rest histogram (``count[C, 2, bins]``)."""
    return [fit_isotonic(count[c].sum(0), count[c, 1], score_sum[c]) for c in range(len(count))]


def calibrated_probabilities(maps: list[IsotonicMap], proba: np.ndarray) -> np.ndarray:
    """Each class's probability through its map, rows renormalised to sum 1 (uniform where
    every calibrated probability is 0), as NannyML's ``_calibrate_predicted_probabilities``."""
    calibrated = np.column_stack([m(proba[:, c]) for c, m in enumerate(maps)])
    total = calibrated.sum(axis=1, keepdims=True)
    uniform = np.full_like(calibrated, 1.0 / calibrated.shape[1])
    return np.divide(calibrated, total, out=uniform, where=total != 0)


def expected_confusion(calibrated: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """``E[i, j] = sum over rows predicted j of p_i``: ``[C, C]``, true class by predicted."""
    classes = calibrated.shape[1]
    onehot = np.eye(classes)[predicted]  # [N, C_pred]
    return calibrated.T @ onehot


def binned_confusion(
    count: np.ndarray, score_sum: np.ndarray, maps: list[IsotonicMap]
) -> tuple[np.ndarray, np.ndarray]:
    """The expected confusion from per-predicted-class, per-class score histograms.

    Parameters
    ----------
    count, score_sum : ``[..., C_i, C_j, bins]``: rows predicted ``j`` by the bin of class
        ``i``'s score (each row counted once per class ``i``), and their class-``i`` score sum.
    maps : one isotonic map per class ``i``.

    Returns
    -------
    ``confusion[..., C_i, C_j]`` (``E[i, j] = n_j U[i, j] / sum_k U[k, j]``, uniform
    ``n_j / C`` where every calibrated mass is 0, as NannyML's per-row fallback) and
    ``calibrated[..., C_i, C_j, bins]``, the unnormalised calibrated mass per cell (rows x
    ``cal_i`` at the cell's mean score).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, score_sum / np.where(count > 0, count, 1), 0.0)
    calibrated = np.zeros(count.shape)
    for i, fitted in enumerate(maps):
        calibrated[..., i, :, :] = count[..., i, :, :] * fitted(mean[..., i, :, :])
    mass = calibrated.sum(-1)  # U[..., i, j]
    rows = np.diagonal(count.sum(-1), axis1=-2, axis2=-1)  # n_j: rows predicted j, class j
    total = mass.sum(-2, keepdims=True)
    classes = len(maps)
    share = np.divide(mass, total, out=np.full(mass.shape, 1.0 / classes), where=total > 0)
    return share * rows[..., None, :], calibrated


def estimated_accuracy(confusion: np.ndarray) -> np.ndarray:
    """``trace(E) / sum(E)`` over the trailing ``[C, C]`` axes."""
    return divide(np.trace(confusion, axis1=-2, axis2=-1), confusion.sum(axis=(-1, -2)))


def estimated_macro_f1(confusion: np.ndarray) -> np.ndarray:
    """Mean over classes of ``2 TP / (2 TP + FP + FN)`` of the expected counts; a class with
    no expected or predicted rows scores 0 (NannyML's ``estimate_f1``)."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    fp = confusion.sum(axis=-2) - tp
    fn = confusion.sum(axis=-1) - tp
    f1 = np.nan_to_num(divide(2 * tp, 2 * tp + fp + fn), nan=0.0)
    return f1.mean(axis=-1)


def estimate_multiclass(
    reference_proba: np.ndarray,
    reference_label: np.ndarray,
    proba: np.ndarray,
    predicted: np.ndarray,
    bins: int = 1000,
) -> dict[str, float]:
    """Estimated accuracy and macro F1 of ``proba``/``predicted`` (no labels), calibrated on
    the labeled reference rows through ``bins``-bin histograms."""
    count, score_sum = class_histograms(reference_proba, reference_label, bins)
    maps = fit_class_calibrations(count, score_sum)
    confusion = expected_confusion(calibrated_probabilities(maps, proba), predicted)
    return {
        "accuracy": float(estimated_accuracy(confusion)),
        "macro_f1": float(estimated_macro_f1(confusion)),
    }
