"""Isotonic calibration of scores from a score histogram (weighted PAVA over bins).

NannyML's CBPE calibrates a binary score with scikit-learn's
``IsotonicRegression(out_of_bounds="clip", increasing=True)`` fitted on every reference row
(``nannyml/calibration.py``, ``IsotonicCalibrator``). Here the rows never leave the warehouse:
the reference weeks arrive as a histogram (rows, positives and score sum per fine score bin),
and the isotonic fit runs on the bins. A bin of ``n`` rows with ``k`` positives is one point
at its mean score with target ``k / n`` and weight ``n``; the pool-adjacent-violators
algorithm on these points gives the weighted least-squares non-decreasing fit, which is the
row-level fit whenever no block boundary of the row-level fit falls inside a bin. Between bin
means the map is linear and beyond the outermost means it is clipped, as scikit-learn
interpolates between its thresholds and clips out of bounds. The error against the row-level
fit is measured in ``docs/estimation.md``.

References
----------
Ayer, Brunk, Ewing, Reid & Silverman (1955), "An empirical distribution function for sampling
with incomplete information", Ann. Math. Statist. 26 (pool-adjacent-violators).
Zadrozny & Elkan (2002), "Transforming classifier scores into accurate multiclass probability
estimates", KDD (isotonic calibration).
"""

from dataclasses import dataclass

import numpy as np


def weighted_pava(target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The non-decreasing ``fit`` minimising ``sum_i weight_i (target_i - fit_i)**2``.

    Pool adjacent violators: scan left to right keeping blocks of pooled points; whenever a
    block's weighted mean falls below its left neighbour's, merge the two (Ayer et al. 1955).

    Parameters
    ----------
    target, weight : 1-d arrays of the same length, ordered by score; weights > 0.

    Returns
    -------
    The fitted values, one per point.

    Examples
    --------
    >>> weighted_pava(np.array([0.0, 1.0, 0.5]), np.array([1.0, 1.0, 1.0])).tolist()
    [0.0, 0.75, 0.75]
    """
    means: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for value, w in zip(target.tolist(), weight.tolist(), strict=True):
        means.append(value)
        weights.append(w)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            total = weights[-2] + weights[-1]
            means[-2] = (means[-2] * weights[-2] + means[-1] * weights[-1]) / total
            weights[-2] = total
            sizes[-2] += sizes[-1]
            del means[-1], weights[-1], sizes[-1]
    return np.repeat(np.asarray(means, dtype=float), sizes)


@dataclass(frozen=True)
class IsotonicMap:
    """A fitted calibration: knots ``score`` (bin mean scores, increasing) and their
    calibrated probabilities ``probability`` (non-decreasing); linear between, clipped
    beyond. ``rows`` and ``positives``: the reference rows it was fitted on."""

    score: np.ndarray
    probability: np.ndarray
    rows: int
    positives: int

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of ``scores`` (any shape)."""
        return np.interp(scores, self.score, self.probability)


def fit_isotonic(count: np.ndarray, positives: np.ndarray, score_sum: np.ndarray) -> IsotonicMap:
    """The isotonic calibration of a reference histogram.

    Parameters
    ----------
    count, positives, score_sum : ``[C]`` per score bin (ordered by score): rows, positive
        labels and the sum of the rows' scores.

    Returns
    -------
    :class:`IsotonicMap` over the non-empty bins. The caller checks there are rows of both
    classes (with one class the fit is constant and estimates nothing).
    """
    present = count > 0
    n = count[present].astype(float)
    mean_score = score_sum[present] / n
    rate = positives[present] / n
    fitted = weighted_pava(rate, n)
    return IsotonicMap(
        score=mean_score,
        probability=fitted,
        rows=round(float(count.sum())),
        positives=round(float(positives.sum())),
    )
