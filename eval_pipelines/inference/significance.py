"""Significance tests and multiple-testing control for paired model comparisons."""

import numpy as np
from scipy import stats


def mcnemar_exact(baseline_only, candidate_only):
    """Exact two-sided McNemar p-value (McNemar 1947).

    ``baseline_only``: pairs the baseline classified correctly and the candidate did not;
    ``candidate_only``: the reverse. Under H0 (equal accuracy) the discordant pairs split
    Binomial(b + c, 1/2); the p-value is the exact binomial test's (Fagerland, Lydersen &
    Laake 2013 recommend the exact or mid-p form over the chi-square approximation).
    Returns 1.0 when there are no discordant pairs. Vectorised: arrays give arrays.
    For p = 1/2 the binomial is symmetric, so the two-sided p-value is
    ``min(1, 2 * P(X <= min(b, c)))``, which equals ``scipy.stats.binomtest``'s.
    """
    b = np.rint(np.asarray(baseline_only, dtype=float))
    c = np.rint(np.asarray(candidate_only, dtype=float))
    p = np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(b, c), b + c, 0.5))
    p = np.where(b + c == 0, 1.0, p)
    return float(p) if p.ndim == 0 else p


def wald_p_value(
    delta: np.ndarray, standard_error: np.ndarray, df: int | None = None
) -> np.ndarray:
    """Two-sided p-value of ``t = delta / se`` (Wald test with a bootstrap SE).

    The reference is N(0, 1), or Student's t with ``df`` degrees of freedom when given (a
    cluster bootstrap over K buckets estimates the SE with K - 1 degrees of freedom; Cameron &
    Miller 2015, section VI). A reference distribution rather than counting replicates beyond
    zero, so p-values are not floored at ``1 / B`` (which would make a Benjamini-Hochberg
    correction over hundreds of slices unable to find anything). NaN where the SE is
    undefined; 0 where se == 0 and the delta is not (a deterministic difference), 1 where
    both are 0.
    """
    delta = np.asarray(delta, dtype=float)
    se = np.asarray(standard_error, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(delta) / se
        p = 2.0 * (stats.norm.sf(z) if df is None else stats.t.sf(z, df))
    p = np.where((se == 0) & (delta == 0), 1.0, p)
    p = np.where((se == 0) & (delta != 0), 0.0, p)
    return np.where(np.isnan(se) | np.isnan(delta), np.nan, p)


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg (1995) adjusted p-values (q-values); NaN entries stay NaN.

    ``q_(i) = min_{j >= i} min(1, m * p_(j) / j)`` over the m non-missing p-values sorted
    ascending. Controls the false discovery rate at level alpha when rejecting ``q <= alpha``
    for independent or positively dependent tests.
    """
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    present = ~np.isnan(p)
    m = int(present.sum())
    if m == 0:
        return q
    order = np.argsort(p[present], kind="stable")
    ranked = p[present][order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    values = np.empty(m)
    values[order] = adjusted
    q[present] = values
    return q
