"""Drift statistics computed from histograms.

The warehouse aggregates each feature into counts and never ships the rows, so every
function here takes *histograms*:

* numeric feature: a shared grid ``edges`` of length ``k + 1`` (strictly increasing) and two
  count vectors of length ``k``, one for the reference window and one for the current
  window. Bins follow the ``numpy.histogram`` / SQL ``width_bucket`` convention
  ``[e_j, e_{j+1})``; every observation must fall inside ``[e_0, e_k]`` (clip or add
  open-ended outer bins with finite edges upstream).
* categorical feature: two count vectors aligned over the union of category values
  (a category absent from one window has count 0 there).

Counts may be floats (e.g. weighted counts) except where a test needs sample sizes
(:func:`ks_from_histograms`, :func:`chi_square`, :func:`proportions_z_test`), which
require integer-valued counts.

Defaults for method choice and thresholds follow Evidently's documented data-drift
algorithm; see :func:`default_method` and :data:`METHODS`.

References
----------
.. [Evidently-algo] Evidently AI, "Data drift algorithm",
   https://docs.evidentlyai.com/reference/data-drift-algorithm
.. [Evidently-methods] Evidently AI, "Customize data drift" (table of methods, drift
   conditions and default thresholds),
   https://docs.evidentlyai.com/metrics/customize_data_drift
.. [Evidently-src] evidentlyai/evidently, ``src/evidently/legacy/calculations/stattests/``
   (``registry.py::_get_default_stattest``, ``psi.py``, ``wasserstein_distance_norm.py``,
   ``jensenshannon.py``, ``chisquare_stattest.py``, ``z_stattest.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "METHODS",
    "DriftMethod",
    "chi_square",
    "default_method",
    "drift_comparison",
    "drift_decision",
    "drift_evidence",
    "drifted_rows",
    "histogram_std",
    "jensen_shannon",
    "ks_from_histograms",
    "proportions_z_test",
    "psi",
    "sturges_edges",
    "wasserstein_normed",
]

# scipy.stats.ks_2samp(method="auto") uses the exact null distribution when
# max(n_ref, n_cur) <= this, and the asymptotic kstwo approximation otherwise.
KS_MAX_EXACT_N = 10_000

# Evidently floors the normalising standard deviation of the normed Wasserstein distance.
WASSERSTEIN_MIN_STD = 1e-3


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------


def _counts(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of counts, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite counts")
    if np.any(arr < 0):
        raise ValueError(f"{name} contains negative counts")
    if arr.sum() <= 0:
        raise ValueError(f"{name} is an empty histogram (total count is 0)")
    return arr


def _pair(ref, cur) -> tuple[np.ndarray, np.ndarray]:
    r = _counts(ref, "ref")
    c = _counts(cur, "cur")
    if r.shape != c.shape:
        raise ValueError(f"ref and cur must have the same shape, got {r.shape} and {c.shape}")
    return r, c


def _edges(edges, k: int) -> np.ndarray:
    e = np.asarray(edges, dtype=float)
    if e.ndim != 1 or e.size != k + 1:
        raise ValueError(
            f"edges must be a 1-D array of length len(counts) + 1 = {k + 1}, got shape {e.shape}"
        )
    if not np.all(np.isfinite(e)):
        raise ValueError("edges must be finite")
    if np.any(np.diff(e) <= 0):
        raise ValueError("edges must be strictly increasing")
    return e


def _integer_total(arr: np.ndarray, name: str) -> int:
    if np.any(arr != np.round(arr)):
        raise ValueError(f"{name} must hold integer counts for this test")
    return int(np.round(arr).astype(np.int64).sum())


# --------------------------------------------------------------------------------------
# PSI
# --------------------------------------------------------------------------------------


PSI_EMPTY_SHARE = 1e-4


def _fill_empty(shares: np.ndarray) -> np.ndarray:
    """Evidently's replacement of empty bins (``utils.get_binned_data(feel_zeroes=True)``)."""
    smallest = float(shares[shares > 0].min())
    fill = smallest / 1e6 if smallest <= PSI_EMPTY_SHARE else PSI_EMPTY_SHARE
    return np.where(shares == 0, fill, shares)


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    r"""Population Stability Index between two aligned histograms.

    .. math::

        \mathrm{PSI} = \sum_j (q_j - p_j)\,\ln\frac{q_j}{p_j},\qquad
        p_j = \frac{r_j}{\sum r},\quad q_j = \frac{c_j}{\sum c}

    where ``r``/``c`` are the reference/current counts. An empty bin's share is replaced, in
    each window separately, by ``1e-4``, or by ``min(non-zero share) / 1e6`` when the
    smallest non-zero share is itself at most ``1e-4``; shares are not renormalised. This is
    Evidently's rule (``legacy/calculations/stattests/utils.py::get_binned_data`` with
    ``feel_zeroes=True``), so the values agree with Evidently's ``psi`` on the same bins.
    PSI is symmetric, non-negative and 0 iff the (filled) shares coincide; it equals the
    symmetrised Kullback-Leibler divergence ``KL(q||p) + KL(p||q)``. Evidently's default
    threshold is 0.1 (drift if ``PSI >= 0.1``); the credit-scoring rule of thumb reads
    ``< 0.1`` stable, ``0.1-0.25`` moderate shift, ``>= 0.25`` major shift.

    Parameters
    ----------
    ref, cur : array of shape (k,)
        Non-negative counts (or weights) per bin/category, aligned.

    Returns
    -------
    float
        The PSI value (>= 0).

    References
    ----------
    .. [1] N. Siddiqi, *Credit Risk Scorecards: Developing and Implementing Intelligent
       Credit Scoring*, Wiley, 2006 (ch. 8, "System stability report").
    .. [2] B. Yurdakul, "Statistical Properties of Population Stability Index",
       PhD thesis, Western Michigan University, 2018.
    """
    r, c = _pair(ref, cur)
    p = _fill_empty(r / r.sum())
    q = _fill_empty(c / c.sum())
    return float(np.sum((q - p) * np.log(q / p)))


# --------------------------------------------------------------------------------------
# Jensen-Shannon
# --------------------------------------------------------------------------------------


def jensen_shannon(ref: np.ndarray, cur: np.ndarray, base: float = math.e) -> float:
    r"""Jensen-Shannon *distance* between two aligned histograms.

    .. math::

        \mathrm{JS}(p, q) = \sqrt{\tfrac12 \mathrm{KL}(p\,\|\,m) + \tfrac12 \mathrm{KL}(q\,\|\,m)},
        \qquad m = \tfrac12 (p + q),

    with ``p``/``q`` the normalised counts and ``KL(a||b) = sum_j a_j log_base(a_j / b_j)``
    (terms with ``a_j = 0`` are 0); this is ``scipy.spatial.distance.jensenshannon(p, q,
    base)``. The default is the natural log, as in Evidently's ``jensenshannon`` stat test
    (scipy with ``base=None``), so Evidently's default threshold 0.1 means the same here; the
    distance then lies in ``[0, sqrt(ln 2)] ~ [0, 0.833]``. With ``base=2`` it lies in
    ``[0, 1]`` and is larger by ``1/sqrt(ln 2) ~ 1.201`` (0.1 in natural log is 0.1201 in
    base 2). It is a metric (Endres & Schindelin 2003) and needs no smoothing of empty bins
    (Evidently does not fill them for this method either).

    Parameters
    ----------
    ref, cur : array of shape (k,)
        Non-negative counts (or weights), aligned.
    base : float, default e
        Logarithm base (> 0 and != 1).

    Returns
    -------
    float

    References
    ----------
    .. [1] J. Lin, "Divergence measures based on the Shannon entropy", IEEE Trans.
       Information Theory 37(1):145-151, 1991.
    .. [2] D. M. Endres, J. E. Schindelin, "A new metric for probability distributions",
       IEEE Trans. Information Theory 49(7):1858-1860, 2003.
    """
    r, c = _pair(ref, cur)
    if not (base > 0 and base != 1 and math.isfinite(base)):
        raise ValueError(f"base must be positive, finite and != 1, got {base}")
    p = r / r.sum()
    q = c / c.sum()
    m = 0.5 * (p + q)

    def _kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / m[nz])))

    div = 0.5 * (_kl(p) + _kl(q)) / math.log(base)
    return math.sqrt(max(div, 0.0))


# --------------------------------------------------------------------------------------
# Pearson chi-square and two-proportion z-test
# --------------------------------------------------------------------------------------


def chi_square(ref: np.ndarray, cur: np.ndarray, correction: bool = False) -> tuple[float, float]:
    r"""Pearson chi-square test of homogeneity on the ``2 x k`` table ``[ref; cur]``.

    Categories that are empty in *both* windows are dropped first (they carry no
    information and would give zero expected counts). With observed ``O_ij`` and
    expected ``E_ij = R_i C_j / N`` (row total x column total / grand total):

    .. math::

        X^2 = \sum_{i \in \{ref, cur\}} \sum_j \frac{(O_{ij} - E_{ij})^2}{E_{ij}},
        \qquad X^2 \sim \chi^2_{k-1} \text{ under } H_0,

    and the p-value is ``P(chi2_{k-1} >= X^2)``. Same semantics as
    ``scipy.stats.chi2_contingency(np.vstack([ref, cur]), correction=correction)``:
    when ``correction=True`` *and* ``dof == 1`` Yates' continuity correction moves each
    observed count towards its expectation by ``min(0.5, |O - E|)``; for ``dof > 1`` the
    flag has no effect. The default is ``False`` (plain Pearson statistic) so that the
    statistic is the familiar uncorrected one Evidently reports and so that, for ``k = 2``,
    ``X^2 = z^2`` of :func:`proportions_z_test`. If only one category remains after
    dropping, the two windows are identical in distribution: returns ``(0.0, 1.0)``.

    Note: Evidently's ``chisquare`` test is instead a goodness-of-fit test of ``cur``
    against ``ref`` scaled to ``n_cur`` (``scipy.stats.chisquare``), which treats the
    reference proportions as exact and fails when a category is new in ``cur``. The
    contingency (homogeneity) form used here accounts for sampling noise in both windows.

    Parameters
    ----------
    ref, cur : array of shape (k,)
        Non-negative integer counts per category, aligned.
    correction : bool, default False
        Apply Yates' correction when ``dof == 1``.

    Returns
    -------
    statistic : float
    p_value : float

    References
    ----------
    .. [1] K. Pearson, "On the criterion that a given system of deviations from the
       probable ...", Philosophical Magazine, Series 5, 50(302):157-175, 1900.
    .. [2] F. Yates, "Contingency tables involving small numbers and the chi-square
       test", Suppl. J. R. Stat. Soc. 1(2):217-235, 1934.
    """
    r, c = _pair(ref, cur)
    _integer_total(r, "ref")
    _integer_total(c, "cur")
    keep = (r + c) > 0
    obs = np.vstack([r[keep], c[keep]])
    k = obs.shape[1]
    if k < 2:
        return 0.0, 1.0
    expected = np.outer(obs.sum(axis=1), obs.sum(axis=0)) / obs.sum()
    dof = k - 1
    if correction and dof == 1:
        diff = expected - obs
        obs = obs + np.sign(diff) * np.minimum(0.5, np.abs(diff))
    statistic = float(np.sum((obs - expected) ** 2 / expected))
    p_value = float(stats.chi2.sf(statistic, dof))
    return statistic, p_value


def proportions_z_test(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    r"""Two-sided z-test for equality of two proportions: the first category against the rest.

    ``ref`` and ``cur`` are counts over the same categories, in sorted category order.
    Categories empty in both windows are dropped; one surviving category gives
    ``(0.0, 1.0)``. The tested proportion is the share of rows *not* in the first category
    (for a binary feature: the share of the second), as Evidently's ``z`` stat test does
    (``z_stattest.py``: ``sorted(keys)[0]`` against the rest, so a feature with more than two
    categories is tested as "first category or not"). With ``p_1 = 1 - ref[0]/n_ref``,
    ``p_2 = 1 - cur[0]/n_cur`` and the pooled ``P = (n_ref p_1 + n_cur p_2) / (n_ref + n_cur)``:

    .. math::

        z = \frac{p_1 - p_2}{\sqrt{P(1-P)\,(1/n_{ref} + 1/n_{cur})}}, \qquad
        p = 2\,\bar\Phi(|z|).

    Evidently's default for binary categorical columns with ``<= 1000`` reference rows. For
    two categories ``z^2`` equals the uncorrected Pearson statistic of :func:`chi_square`, so
    the p-values coincide.

    Returns
    -------
    z : float
    p_value : float

    References
    ----------
    .. [1] A. Agresti, *Categorical Data Analysis*, 3rd ed., Wiley, 2013, sec. 3.1.
    """
    r, c = _pair(ref, cur)
    n1 = _integer_total(r, "ref")
    n2 = _integer_total(c, "cur")
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    if r.size < 2:
        return 0.0, 1.0
    p1 = 1 - r[0] / n1
    p2 = 1 - c[0] / n2
    pooled = (n1 * p1 + n2 * p2) / (n1 + n2)
    z = float((p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)))
    return z, float(2 * stats.norm.sf(abs(z)))


# --------------------------------------------------------------------------------------
# Kolmogorov-Smirnov
# --------------------------------------------------------------------------------------


def _ks_exact_sf(m: int, n: int, h: int) -> float:
    """P(D_{m,n} >= d) under H0, with ``h = d * lcm(m, n)`` an integer.

    A uniformly random lattice path from (0, 0) to (m, n) (x: reference, y: current
    observations in pooled sorted order) is propagated anti-diagonal by anti-diagonal as a
    probability mass (step to x+1 with probability (m-x)/(m+n-t)). Mass reaching a cell
    with ``|x/m - y/n| >= d``, i.e. ``|(n x - m y)/g| >= h``, is absorbed and summed. All
    terms are positive, so small p-values keep full relative precision (no ``1 - p``
    cancellation). Same null distribution as scipy's exact ``ks_2samp`` (Hodges 1958).
    """
    if h <= 0:
        return 1.0
    g = math.gcd(m, n)
    mg, ng = m // g, n // g
    step = mg + ng

    def band(t: int) -> tuple[int, int]:
        # cells (x, t - x) strictly inside: |ng*x - mg*(t - x)| < h, 0 <= x <= m, 0 <= t-x <= n
        lo = max(0, t - n, (mg * t - h) // step + 1)
        hi = min(m, t, -(-(mg * t + h) // step) - 1)
        return lo, hi

    xs_all = np.arange(m + 2, dtype=float)
    mass = np.zeros(m + 2)
    mass[0] = 1.0
    absorbed: list[float] = []
    lo, hi = 0, 0  # (0, 0) is inside because h >= 1
    for t in range(m + n):
        rem = m + n - t
        cur = mass[lo : hi + 1].copy()
        xs = xs_all[lo : hi + 1]
        mass[lo : hi + 1] = cur * ((n - t + xs) / rem)  # y += 1 (cell index unchanged)
        mass[lo + 1 : hi + 2] += cur * ((m - xs) / rem)  # x += 1
        nlo, nhi = band(t + 1)
        if nhi < nlo:
            absorbed.append(float(mass[lo : hi + 2].sum()))
            break
        if nlo > lo:
            absorbed.append(float(mass[lo:nlo].sum()))
            mass[lo:nlo] = 0.0
        if nhi < hi + 1:
            absorbed.append(float(mass[nhi + 1 : hi + 2].sum()))
            mass[nhi + 1 : hi + 2] = 0.0
        lo, hi = nlo, nhi
    return min(1.0, math.fsum(absorbed))


def ks_from_histograms(edges: np.ndarray, ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    r"""Two-sample Kolmogorov-Smirnov test from histograms on a shared grid.

    .. math::

        D = \max_{0 \le j \le k} \left| F_{ref}(e_j) - F_{cur}(e_j) \right|,
        \qquad F(e_j) = \frac{1}{n}\sum_{i<j} \text{counts}_i ,

    i.e. the empirical CDFs are compared at the bin edges only (``D`` is computed in exact
    integer arithmetic when ``n_ref * n_cur < 2**62``).

    Relation to ``scipy.stats.ks_2samp`` on the raw rows (``D*``):

    * ``D <= D*`` always (a supremum over a subset of points);
    * ``D >= D* - max_j max(r_j / n_ref, c_j / n_cur)`` (within a bin the CDF difference
      moves by at most the larger bin mass);
    * ``D == D*`` whenever the raw ECDFs only jump inside distinct bins, e.g. integer data
      on the grid ``edges = arange(lo - 0.5, hi + 1.5)``.

    The p-value follows ``ks_2samp(method='auto', alternative='two-sided')``: exact null
    distribution of ``D`` (Smirnov 1939, Hodges 1958) when ``max(n_ref, n_cur) <= 10000``,
    else the asymptotic ``scipy.stats.kstwo.sf(D, round(n_ref n_cur / (n_ref + n_cur)))``.
    The exact path is computed here independently of scipy (absorbing-mass recursion).
    As with ``ks_2samp``, the null distribution assumes continuous data; with heavy ties
    the test is conservative.

    Parameters
    ----------
    edges : array of shape (k + 1,)
        Strictly increasing bin edges (only their order matters for the statistic).
    ref, cur : array of shape (k,)
        Non-negative integer counts per bin.

    Returns
    -------
    statistic : float
    p_value : float

    References
    ----------
    .. [1] A. Kolmogorov, "Sulla determinazione empirica di una legge di distribuzione",
       Giornale dell'Istituto Italiano degli Attuari 4:83-91, 1933.
    .. [2] N. Smirnov, "Table for estimating the goodness of fit of empirical
       distributions", Ann. Math. Statist. 19(2):279-281, 1948.
    .. [3] J. L. Hodges Jr., "The significance probability of the Smirnov two-sample
       test", Arkiv for Matematik 3(43):469-486, 1958.
    """
    r, c = _pair(ref, cur)
    _edges(edges, r.size)
    n1 = _integer_total(r, "ref")
    n2 = _integer_total(c, "cur")
    cr = np.concatenate([[0], np.cumsum(np.round(r).astype(np.int64))])
    cc = np.concatenate([[0], np.cumsum(np.round(c).astype(np.int64))])
    if n1 * n2 < 2**62:
        d_int = int(np.max(np.abs(n2 * cr - n1 * cc)))
        statistic = d_int / (n1 * n2)
    else:
        d_int = -1
        statistic = float(np.max(np.abs(cr / n1 - cc / n2)))
    if max(n1, n2) <= KS_MAX_EXACT_N:
        h = d_int // math.gcd(n1, n2)  # = D * lcm(n1, n2), exactly
        p_value = _ks_exact_sf(n1, n2, h)
    else:
        en = round(n1 * n2 / (n1 + n2))
        p_value = float(stats.kstwo.sf(statistic, en))
    return float(statistic), float(np.clip(p_value, 0.0, 1.0))


# --------------------------------------------------------------------------------------
# Wasserstein
# --------------------------------------------------------------------------------------


def histogram_std(edges: np.ndarray, counts: np.ndarray) -> float:
    r"""Standard deviation of the piecewise-uniform density defined by a histogram.

    With masses ``p_j``, centres ``m_j`` and widths ``w_j``:
    ``Var = sum_j p_j [ (m_j - mu)^2 + w_j^2 / 12 ]``, ``mu = sum_j p_j m_j``
    (between-bin plus within-bin variance). For the raw rows the histogram came from,
    ``|histogram_std - np.std(raw)| <= max_j w_j / sqrt(3)`` (couple each row with a
    uniform point of its bin: ``E[(U - x)^2] <= w^2 / 3``, then Minkowski).
    """
    c = _counts(counts, "counts")
    e = _edges(edges, c.size)
    p = c / c.sum()
    mid = 0.5 * (e[:-1] + e[1:])
    w = np.diff(e)
    mu = float(np.sum(p * mid))
    var = float(np.sum(p * ((mid - mu) ** 2 + w**2 / 12.0)))
    return math.sqrt(max(var, 0.0))


def wasserstein_normed(
    edges: np.ndarray,
    ref: np.ndarray,
    cur: np.ndarray,
    ref_std: float | None = None,
) -> float:
    r"""Normed first Wasserstein distance between two histograms on a shared grid.

    Each histogram is read as a piecewise-uniform density (mass spread evenly over its
    bin), so both CDFs are piecewise linear with knots at the edges and the 1-D
    Wasserstein-1 distance is computed *exactly*:

    .. math::

        W_1 = \int_{e_0}^{e_k} |F_{ref}(x) - F_{cur}(x)|\,dx
            = \sum_j w_j\, I(\Delta_j, \Delta_{j+1}),\qquad
        I(a, b) = \begin{cases} \tfrac12(|a|+|b|) & ab \ge 0\\
                  \dfrac{a^2+b^2}{2(|a|+|b|)} & ab < 0 \end{cases}

    with ``Delta_j = F_ref(e_j) - F_cur(e_j)`` and ``w_j = e_{j+1} - e_j``. The result is
    divided by the reference standard deviation (Evidently's "Wasserstein distance
    (normed)", floored at ``1e-3`` like Evidently's ``max(np.std(reference), 0.001)``),
    making it unit-free: 0.1 means "the distributions are on average 0.1 reference
    standard deviations apart".

    Binning error: compared with ``scipy.stats.wasserstein_distance`` on the raw rows,
    ``|W_1 - W_1^{raw}| <= sum_j (p_j + q_j) w_j / 2 <= max_j w_j`` (each row moves by at
    most half its bin width on average), so with the same ``ref_std`` the normed values
    differ by at most ``max_j w_j / ref_std``.

    Parameters
    ----------
    edges : array of shape (k + 1,)
        Strictly increasing, finite bin edges.
    ref, cur : array of shape (k,)
        Non-negative counts (or weights) per bin.
    ref_std : float, optional
        Standard deviation of the reference rows (e.g. ``stddev_pop`` from SQL). If
        ``None``, :func:`histogram_std` of the reference histogram is used (error
        ``<= max_j w_j / sqrt(3)`` versus the raw population std).

    Returns
    -------
    float

    References
    ----------
    .. [1] L. N. Vaserstein, "Markov processes over denumerable products of spaces,
       describing large systems of automata", Problems Inform. Transmission 5(3):47-52,
       1969.
    .. [2] L. V. Kantorovich, "On the translocation of masses", Dokl. Akad. Nauk SSSR
       37:199-201, 1942.
    .. [3] S. S. Vallender, "Calculation of the Wasserstein distance between probability
       distributions on the line", Theory Probab. Appl. 18(4):784-786, 1974.
    """
    r, c = _pair(ref, cur)
    e = _edges(edges, r.size)
    if ref_std is None:
        ref_std = histogram_std(e, r)
    elif not (math.isfinite(ref_std) and ref_std >= 0):
        raise ValueError(f"ref_std must be finite and >= 0, got {ref_std}")
    delta = np.concatenate([[0.0], np.cumsum(r) / r.sum() - np.cumsum(c) / c.sum()])
    delta[-1] = 0.0  # both CDFs reach 1 at the last edge
    a, b = delta[:-1], delta[1:]
    abs_a, abs_b = np.abs(a), np.abs(b)
    same = a * b >= 0
    denom = abs_a + abs_b
    crossing = np.divide(a * a + b * b, 2.0 * denom, out=np.zeros_like(a), where=denom > 0)
    per_bin = np.where(same, 0.5 * denom, crossing)
    w1 = float(np.sum(np.diff(e) * per_bin))
    return w1 / max(float(ref_std), WASSERSTEIN_MIN_STD)


# --------------------------------------------------------------------------------------
# method registry, defaults and decisions
# --------------------------------------------------------------------------------------

_EVIDENTLY_DOCS = (
    "https://docs.evidentlyai.com/reference/data-drift-algorithm; "
    "https://docs.evidentlyai.com/metrics/customize_data_drift"
)


@dataclass(frozen=True)
class DriftMethod:
    """A drift detection method and how its output is turned into a decision.

    Attributes
    ----------
    name : str
        Key in :data:`METHODS`.
    kinds : tuple of str
        Feature kinds it applies to: ``"numeric"`` and/or ``"categorical"``.
    statistic : str
        ``"p_value"`` (the decision reads the p-value: drift when it is below the threshold)
        or ``"distance"`` (drift when the statistic reaches the threshold).
    default_threshold : float
        Evidently's default.
    evidently_name : str
        The stat-test name Evidently uses.
    reference : str
        Paper and documentation the method and its default follow.
    drifts_at_threshold : bool
        Whether a value exactly at the threshold is drift, as in Evidently's stat test:
        ``p <= t`` for ``ks``, ``p < t`` for ``chi_square`` and ``z_test``,
        ``statistic >= t`` for the distances.
    binned : bool
        Whether the method reads Evidently's bins (:func:`sturges_edges`, or one bin per
        value) on numeric features; ``ks`` and ``wasserstein`` read the fine grid instead.
    """

    name: str
    kinds: tuple[str, ...]
    statistic: str
    default_threshold: float
    evidently_name: str
    reference: str
    drifts_at_threshold: bool = True
    binned: bool = False

    def applies_to(self, kind: str) -> bool:
        return kind in self.kinds


METHODS: dict[str, DriftMethod] = {
    m.name: m
    for m in (
        DriftMethod(
            "ks",
            ("numeric",),
            "p_value",
            0.05,
            "ks",
            "Kolmogorov 1933; Smirnov 1948. " + _EVIDENTLY_DOCS,
            drifts_at_threshold=True,
        ),
        DriftMethod(
            "wasserstein",
            ("numeric",),
            "distance",
            0.1,
            "wasserstein",
            "Vaserstein 1969; Kantorovich 1942; normed by reference std as in Evidently. "
            + _EVIDENTLY_DOCS,
        ),
        DriftMethod(
            "psi",
            ("numeric", "categorical"),
            "distance",
            0.1,
            "psi",
            "Siddiqi 2006; Yurdakul 2018. " + _EVIDENTLY_DOCS,
            binned=True,
        ),
        DriftMethod(
            "jensen_shannon",
            ("numeric", "categorical"),
            "distance",
            0.1,
            "jensenshannon",
            "Lin 1991; natural log, as Evidently's. " + _EVIDENTLY_DOCS,
            binned=True,
        ),
        DriftMethod(
            "chi_square",
            ("categorical",),
            "p_value",
            0.05,
            "chisquare",
            "Pearson 1900 (homogeneity; Evidently's is goodness of fit). " + _EVIDENTLY_DOCS,
            drifts_at_threshold=False,
        ),
        DriftMethod(
            "z_test",
            ("categorical",),
            "p_value",
            0.05,
            "z",
            "Two-proportion z-test, first category against the rest (Agresti 2013, "
            "sec. 3.1). " + _EVIDENTLY_DOCS,
            drifts_at_threshold=False,
        ),
    )
}

_KINDS = ("numeric", "categorical")


def default_method(kind: str, n_ref: int, n_unique: int | None = None) -> str:
    """Size-aware default drift method, following Evidently's data-drift algorithm.

    Evidently ("Data drift algorithm", https://docs.evidentlyai.com/reference/data-drift-algorithm,
    and ``registry.py::_get_default_stattest`` in the evidently repository):

    ======================  ===========================  ==============================
    reference rows          numeric column               categorical column
    ======================  ===========================  ==============================
    ``n_ref <= 1000``       ``ks`` (p < 0.05)            ``chi_square`` (p < 0.05)
    ``n_ref > 1000``        ``wasserstein`` (>= 0.1)     ``jensen_shannon`` (>= 0.1)
    ======================  ===========================  ==============================

    Refinements by ``n_unique`` (distinct non-null values over reference *and* current,
    as Evidently counts them), applied only when ``n_unique`` is given:

    * numeric with ``n_unique <= 5`` is treated as categorical;
    * with ``n_ref <= 1000`` and ``n_unique <= 2`` the two-proportion ``z_test`` is used
      instead of ``chi_square``.

    Parameters
    ----------
    kind : {"numeric", "categorical"}
    n_ref : int
        Number of (non-null) reference rows, ``>= 1``.
    n_unique : int, optional
        Distinct values over both windows.

    Returns
    -------
    str
        A key of :data:`METHODS`.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    if isinstance(n_ref, bool) or not isinstance(n_ref, int | np.integer) or n_ref < 1:
        raise ValueError(f"n_ref must be a positive integer, got {n_ref!r}")
    if n_unique is not None and (
        isinstance(n_unique, bool) or not isinstance(n_unique, int | np.integer) or n_unique < 1
    ):
        raise ValueError(f"n_unique must be a positive integer or None, got {n_unique!r}")
    small = n_ref <= 1000
    if kind == "numeric" and (n_unique is None or n_unique > 5):
        return "ks" if small else "wasserstein"
    if not small:
        return "jensen_shannon"
    if n_unique is not None and n_unique <= 2:
        return "z_test"
    return "chi_square"


def drift_decision(
    method: str,
    statistic: float,
    p_value: float | None = None,
    threshold: float | None = None,
) -> bool:
    """Whether a method's result signals drift: the one comparison every output uses.

    * ``ks``: drift iff ``p_value <= threshold`` (``ks_stattest.py``);
    * ``chi_square``, ``z_test``: drift iff ``p_value < threshold``
      (``chisquare_stattest.py``, ``z_stattest.py``);
    * distances (``wasserstein``, ``jensen_shannon``, ``psi``): drift iff
      ``statistic >= threshold`` (``wasserstein_distance_norm.py``, ``jensenshannon.py``,
      ``psi.py``).

    These are Evidently 0.7's comparisons (:attr:`DriftMethod.drifts_at_threshold`). The
    drift rows (``drift.parquet``'s ``drifted``), the drift gates (with the gate's bound as
    the threshold), the report, the alert and the Dagster ``no_drift`` check all decide
    through this function; :func:`drifted_rows` says which rows decide for a feature.

    Parameters
    ----------
    method : str
        Key of :data:`METHODS`.
    statistic : float
        Test statistic or distance (must be finite; for p-value methods it is not used
        in the decision).
    p_value : float, optional
        Required for p-value methods, must lie in ``[0, 1]``.
    threshold : float, optional
        Defaults to ``METHODS[method].default_threshold``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown drift method {method!r}; expected one of {sorted(METHODS)}")
    spec = METHODS[method]
    thr = spec.default_threshold if threshold is None else float(threshold)
    if not math.isfinite(thr) or thr < 0:
        raise ValueError(f"threshold must be finite and >= 0, got {threshold!r}")
    if statistic is None or not math.isfinite(float(statistic)):
        raise ValueError(f"statistic must be a finite number, got {statistic!r}")
    if spec.statistic == "p_value":
        if p_value is None or not (0.0 <= float(p_value) <= 1.0):
            raise ValueError(f"{method} needs a p_value in [0, 1], got {p_value!r}")
        p = float(p_value)
        return p <= thr if spec.drifts_at_threshold else p < thr
    return float(statistic) >= thr


def drift_comparison(method: str, drifted: bool) -> str:
    """The comparison sign a message shows, e.g. ``"<="`` for a drifted ``ks`` p-value."""
    spec = METHODS[method]
    if spec.statistic == "p_value":
        if spec.drifts_at_threshold:
            return "<=" if drifted else ">"
        return "<" if drifted else ">="
    return ">=" if drifted else "<"


def drift_evidence(row) -> str:
    """The numbers behind a row's decision, e.g. ``"ks p=0.003 <= 0.05"`` or
    ``"wasserstein 0.31 >= 0.1"`` (``row`` has method, statistic, p_value, threshold, drifted).
    """
    sign = drift_comparison(row.method, bool(row.drifted))
    if METHODS[row.method].statistic == "p_value":
        return f"{row.method} p={row.p_value:.2g} {sign} {row.threshold:g}"
    return f"{row.method} {row.statistic:.3g} {sign} {row.threshold:g}"


def drifted_rows(drift: pd.DataFrame) -> pd.DataFrame:
    """The rows that make their feature drifted: the one definition of a drifted feature.

    A feature drifted when a row that *decides* for it drifted (``decides & drifted``): its
    default method (:func:`default_method`) at its threshold (``drift.thresholds`` or the
    method's default), or a method a drift gate applies to it, at the gate's bound. Other
    rows (methods listed in ``drift.methods`` for information) never make a feature drifted.
    The report's summary, the alert and the Dagster ``no_drift`` check read this; the drift
    gates hold exactly on their own deciding rows.
    """
    if drift is None or drift.empty or "drifted" not in drift:
        return pd.DataFrame(columns=list(drift.columns) if drift is not None else [])
    # drift.parquet written before the `decides` column: the default method decided.
    column = "decides" if "decides" in drift else "default" if "default" in drift else None
    decides = drift[column] if column else pd.Series(True, index=drift.index)
    keep = decides.eq(True) & drift["drifted"].eq(True)
    return drift[keep]


def sturges_edges(low: float, high: float, n: int, integer: bool = False) -> np.ndarray:
    r"""Bin edges of ``numpy.histogram_bin_edges(values, bins="sturges")`` from aggregates.

    Evidently bins a numeric feature with more than 20 distinct reference values this way
    for PSI and Jensen-Shannon (``utils.get_binned_data``), over reference and current
    values together. Only the ``n`` values, their minimum and maximum are needed:

    .. math::

        w = \frac{\max - \min}{\log_2 n + 1},\qquad
        k = \left\lceil \frac{\max - \min}{w} \right\rceil,\qquad
        e_i = \min + i\,\frac{\max - \min}{k}\ (i = 0..k),\ e_k = \max

    (``k = ceil(log2 n) + 1`` up to rounding), computed with numpy's own operations so the
    edges are identical to numpy's. For integer data numpy floors ``w`` at 1; when all
    values are equal the single bin is ``[v - 0.5, v + 0.5]``. Values fall in
    ``[e_i, e_{i+1})``, the last bin is closed.

    References
    ----------
    .. [1] H. A. Sturges, "The choice of a class interval", J. Amer. Statist. Assoc.
       21(153):65-66, 1926.
    .. [2] numpy, ``lib/_histograms_impl.py`` (``_hist_bin_sturges``, ``_get_bin_edges``).
    """
    if n < 1:
        raise ValueError(f"n must be a positive count of values, got {n}")
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"need finite low <= high, got {low} and {high}")
    if low == high:
        return np.linspace(low - 0.5, high + 0.5, 2)
    width = (high - low) / (np.log2(n) + 1.0)
    if integer and width < 1:
        width = 1
    k = int(np.ceil((high - low) / width))
    return np.linspace(low, high, k + 1)
