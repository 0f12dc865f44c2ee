"""CBPE for a multiclass classifier, in numpy: ready for the multiclass task to wire.

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

Wiring into the warehouse (left for the multiclass task): the calibration is fitted here
from per-class one-vs-rest score histograms of the reference weeks
(:func:`fit_class_calibrations`, as the binary estimator does), and the week's expected
confusion is one aggregate, ``SUM(p_i) GROUP BY slice, version, predicted class``, where
``p_i`` is the normalised calibrated probability computed in SQL from the maps' knots.

Differences from NannyML, both documented in docs/estimation.md: NannyML skips a class's
calibration when its cross-validated calibration error does not improve
(``needs_calibration``); we always calibrate. And the fit runs on histogram bins, not rows.
"""

import numpy as np

from eval_pipelines.estimation.calibration import IsotonicMap, fit_isotonic
from eval_pipelines.tasks.base import divide


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
