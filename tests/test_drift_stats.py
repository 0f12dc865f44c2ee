"""Tests for eval_pipelines.drift_stats against independent oracles.

Oracles: scipy.stats.ks_2samp / wasserstein_distance / chi2_contingency,
scipy.spatial.distance.jensenshannon, scipy.integrate.quad, a quantile-space W1
computation written here, and hand-worked arithmetic.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.spatial import distance

from eval_pipelines.drift_stats import (
    METHODS,
    DriftMethod,
    chi_square,
    default_method,
    drift_decision,
    drifted_rows,
    histogram_std,
    jensen_shannon,
    ks_from_histograms,
    proportions_z_test,
    psi,
    sturges_edges,
    wasserstein_normed,
)

SEEDS = range(20)


def _hist(x, edges):
    return np.histogram(x, bins=edges)[0]


# --------------------------------------------------------------------------------------
# KS
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_ks_integer_grid_matches_ks_2samp_exactly(seed):
    """Integer data at bin centres: histogram KS == raw-data KS (statistic and p)."""
    rng = np.random.default_rng(seed)
    n1 = int(rng.integers(1, 2500))
    n2 = n1 if seed % 4 == 0 else int(rng.integers(1, 2500))
    hi = int(rng.integers(2, 60))
    a = rng.integers(0, hi + 1, n1)
    shift = int(rng.integers(0, 3))
    b = np.minimum(rng.integers(0, hi + 1, n2) + shift, hi)
    edges = np.arange(-0.5, hi + 1.5)
    stat, p = ks_from_histograms(edges, _hist(a, edges), _hist(b, edges))
    ref = stats.ks_2samp(a, b, method="auto")
    assert stat == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [
        (10_000, 9_999, 1),
        (10_000, 10_000, 0),
        (700, 9_000, 5),
        (12_000, 800, 1),
        (15_000, 20_000, 0),
    ],
)
def test_ks_integer_grid_large_samples_exact_and_asymptotic(n1, n2, shift):
    """Around the exact/asymptotic switch at max(n) = 10000, and tiny p-values."""
    rng = np.random.default_rng(n1 + n2)
    a = rng.integers(0, 200, n1)
    b = rng.integers(0, 200, n2) + shift
    edges = np.arange(-0.5, 201.5 + shift)
    stat, p = ks_from_histograms(edges, _hist(a, edges), _hist(b, edges))
    ref = stats.ks_2samp(a, b, method="auto")
    assert stat == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("seed", SEEDS)
def test_ks_continuous_data_on_1000_bins_within_documented_bound(seed):
    """D* - max_j max(p_j, q_j) <= D_hist <= D* for continuous data."""
    rng = np.random.default_rng(1000 + seed)
    n1, n2 = rng.integers(50, 3000, size=2)
    a = rng.normal(0.0, 1.0, n1)
    b = rng.normal(rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.3), n2)
    pooled = np.concatenate([a, b])
    edges = np.linspace(pooled.min(), pooled.max(), 1001)
    r, c = _hist(a, edges), _hist(b, edges)
    stat, _ = ks_from_histograms(edges, r, c)
    exact = stats.ks_2samp(a, b).statistic
    max_mass = max((r / n1).max(), (c / n2).max())
    assert stat <= exact + 1e-12
    assert stat >= exact - max_mass - 1e-12


def test_ks_identical_histograms():
    edges = np.arange(5.0)
    assert ks_from_histograms(edges, [1, 2, 3, 4], [2, 4, 6, 8]) == (0.0, 1.0)


# --------------------------------------------------------------------------------------
# Wasserstein
# --------------------------------------------------------------------------------------


def _w1_quantile_space(edges, ref, cur):
    """Independent exact W1 of two piecewise-uniform histograms: int_0^1 |Q_r(u) - Q_c(u)| du.

    Quantile functions are piecewise linear in u with knots at the cumulative masses; on
    each interval between merged knots both are linear, and |linear| is integrated by
    splitting at its root.
    """
    edges = np.asarray(edges, float)

    def knots(counts):
        counts = np.asarray(counts, float)
        # integer counts: the cumulative sums are exact, so cum[-1] == 1 and zero-mass
        # bins give exactly repeated knots
        cum = np.concatenate([[0.0], np.cumsum(counts)]) / counts.sum()
        return counts / counts.sum(), cum

    p, cp = knots(ref)
    q, cq = knots(cur)

    def quantile(prob, cum, u_mid, u):
        j = min(int(np.searchsorted(cum, u_mid, side="right")) - 1, prob.size - 1)
        return edges[j] + (u - cum[j]) / prob[j] * (edges[j + 1] - edges[j])

    us = np.unique(np.concatenate([cp, cq]))
    total = 0.0
    for u0, u1 in itertools.pairwise(us):
        um = 0.5 * (u0 + u1)
        d0 = quantile(p, cp, um, u0) - quantile(q, cq, um, u0)
        d1 = quantile(p, cp, um, u1) - quantile(q, cq, um, u1)
        length = u1 - u0
        if d0 * d1 >= 0:
            total += length * (abs(d0) + abs(d1)) / 2
        else:
            root = d0 / (d0 - d1)
            total += length * (abs(d0) * root + abs(d1) * (1 - root)) / 2
    return total


def _random_histograms(rng, k, zero_frac=0.2):
    edges = np.cumsum(np.concatenate([[rng.uniform(-5, 5)], rng.uniform(0.1, 2.0, k)]))
    ref = rng.integers(0, 50, k).astype(float)
    cur = rng.integers(0, 50, k).astype(float)
    ref[rng.random(k) < zero_frac] = 0
    cur[rng.random(k) < zero_frac] = 0
    ref[0] += 1  # never empty
    cur[-1] += 1
    return edges, ref, cur


@pytest.mark.parametrize("seed", SEEDS)
def test_wasserstein_exact_against_quantile_space_oracle(seed):
    rng = np.random.default_rng(2000 + seed)
    edges, ref, cur = _random_histograms(rng, int(rng.integers(1, 80)))
    got = wasserstein_normed(edges, ref, cur, ref_std=1.0)
    want = _w1_quantile_space(edges, ref, cur)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_wasserstein_exact_against_numerical_integration(seed):
    rng = np.random.default_rng(3000 + seed)
    edges, ref, cur = _random_histograms(rng, 15)
    fr = np.concatenate([[0.0], np.cumsum(ref) / ref.sum()])
    fc = np.concatenate([[0.0], np.cumsum(cur) / cur.sum()])
    want = sum(
        integrate.quad(
            lambda x: abs(np.interp(x, edges, fr) - np.interp(x, edges, fc)),
            lo,
            hi,
            epsabs=1e-14,
            epsrel=1e-13,
            limit=200,
        )[0]
        for lo, hi in itertools.pairwise(edges)
    )
    assert wasserstein_normed(edges, ref, cur, ref_std=2.5) == pytest.approx(want / 2.5, rel=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_wasserstein_vs_raw_data_within_bin_width_bound(seed):
    """|W_hist - W_raw| / std <= sum_j (p_j + q_j) w_j / 2 / std <= max_j w_j / std."""
    rng = np.random.default_rng(4000 + seed)
    n1, n2 = rng.integers(100, 5000, size=2)
    a = rng.gamma(rng.uniform(1, 5), 1.0, n1)
    b = rng.gamma(rng.uniform(1, 5), rng.uniform(0.8, 1.2), n2) + rng.uniform(-0.5, 0.5)
    pooled = np.concatenate([a, b])
    k = int(rng.choice([20, 100, 1000]))
    edges = np.linspace(pooled.min(), pooled.max(), k + 1)
    r, c = _hist(a, edges), _hist(b, edges)
    std = float(np.std(a))
    got = wasserstein_normed(edges, r, c, ref_std=std)
    raw = stats.wasserstein_distance(a, b) / std
    w = np.diff(edges)
    tight = float(np.sum((r / n1 + c / n2) * w) / 2 / std)
    assert abs(got - raw) <= tight + 1e-12
    assert tight <= w.max() / std + 1e-12


@pytest.mark.parametrize("seed", SEEDS)
def test_histogram_std_within_bound_of_raw_std(seed):
    rng = np.random.default_rng(5000 + seed)
    x = rng.lognormal(0, rng.uniform(0.2, 1.0), int(rng.integers(50, 5000)))
    k = int(rng.choice([10, 50, 1000]))
    edges = np.linspace(x.min(), x.max(), k + 1)
    counts = _hist(x, edges)
    assert abs(histogram_std(edges, counts) - np.std(x)) <= np.diff(edges).max() / math.sqrt(3)
    # ref_std=None uses exactly this estimate
    cur = counts[::-1]
    assert wasserstein_normed(edges, counts, cur) == pytest.approx(
        wasserstein_normed(edges, counts, cur, ref_std=histogram_std(edges, counts)), rel=1e-15
    )


def test_histogram_std_hand_example():
    # two unit bins [0,1), [1,2) with equal mass: uniform on [0, 2] -> var = 4/12
    assert histogram_std([0.0, 1.0, 2.0], [5, 5]) == pytest.approx(math.sqrt(1 / 3), rel=1e-15)


def test_wasserstein_hand_example_and_floor():
    # all mass in [0,1) vs all in [2,3): a shift by 2
    edges = [0.0, 1.0, 2.0, 3.0]
    assert wasserstein_normed(edges, [4, 0, 0], [0, 0, 7], ref_std=1.0) == pytest.approx(2.0)
    assert wasserstein_normed(edges, [4, 0, 0], [0, 0, 7], ref_std=4.0) == pytest.approx(0.5)
    # Evidently floors the std at 1e-3
    assert wasserstein_normed(edges, [4, 0, 0], [0, 0, 7], ref_std=0.0) == pytest.approx(2000.0)
    assert wasserstein_normed(edges, [1, 2, 3], [2, 4, 6]) == 0.0


# --------------------------------------------------------------------------------------
# Jensen-Shannon
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_jensen_shannon_matches_scipy_natural_log_as_evidently(seed):
    rng = np.random.default_rng(6000 + seed)
    k = int(rng.integers(1, 40))
    ref = rng.integers(0, 100, k).astype(float)
    cur = rng.integers(0, 100, k).astype(float)
    ref[rng.random(k) < 0.25] = 0
    cur[rng.random(k) < 0.25] = 0
    ref[0] += 1
    cur[-1] += 1
    # Evidently calls scipy with base=None (natural log); the default here is the same
    got = jensen_shannon(ref, cur)
    assert got == pytest.approx(distance.jensenshannon(ref, cur), abs=1e-12)
    assert 0.0 <= got <= math.sqrt(math.log(2)) + 1e-15
    base2 = jensen_shannon(ref, cur, base=2)
    assert base2 == pytest.approx(distance.jensenshannon(ref, cur, base=2), abs=1e-12)


def test_jensen_shannon_extremes():
    # disjoint supports: sqrt(ln 2) in natural log, 1 in base 2
    assert jensen_shannon([3, 0], [0, 5]) == pytest.approx(math.sqrt(math.log(2)), abs=1e-15)
    assert jensen_shannon([3, 0], [0, 5], base=2) == pytest.approx(1.0, abs=1e-15)
    assert jensen_shannon([1, 2, 3], [10, 20, 30]) == 0.0


# --------------------------------------------------------------------------------------
# chi-square and z-test
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_chi_square_matches_chi2_contingency(seed):
    rng = np.random.default_rng(7000 + seed)
    k = int(rng.integers(2, 15))
    ref = rng.integers(0, 200, k)
    cur = rng.integers(0, 200, k)
    both_empty = rng.random(k) < 0.2
    ref[both_empty] = 0
    cur[both_empty] = 0
    ref[0] += 3
    cur[-1] += 3
    keep = (ref + cur) > 0
    table = np.vstack([ref[keep], cur[keep]])
    for correction in (False, True):
        stat, p = chi_square(ref, cur, correction=correction)
        if table.shape[1] < 2:
            assert (stat, p) == (0.0, 1.0)
            continue
        oracle = stats.chi2_contingency(table, correction=correction)
        assert stat == pytest.approx(oracle.statistic, rel=1e-10, abs=1e-12)
        assert p == pytest.approx(oracle.pvalue, rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("seed", SEEDS)
def test_chi_square_two_categories_yates(seed):
    rng = np.random.default_rng(8000 + seed)
    ref = rng.integers(1, 60, 2)
    cur = rng.integers(1, 60, 2)
    oracle = stats.chi2_contingency(np.vstack([ref, cur]), correction=True)
    stat, p = chi_square(ref, cur, correction=True)
    assert stat == pytest.approx(oracle.statistic, rel=1e-10, abs=1e-12)
    assert p == pytest.approx(oracle.pvalue, rel=1e-10)


def test_chi_square_single_surviving_category():
    assert chi_square([5, 0, 0], [7, 0, 0]) == (0.0, 1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_z_test_equals_uncorrected_chi_square(seed):
    rng = np.random.default_rng(9000 + seed)
    ref = rng.integers(0, 500, 2) + 1
    cur = rng.integers(0, 500, 2) + 1
    z, p = proportions_z_test(ref, cur)
    oracle = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert z * z == pytest.approx(oracle.statistic, rel=1e-10)
    assert p == pytest.approx(oracle.pvalue, rel=1e-9)


def test_z_test_hand_example():
    # ref: 30 of 100 in category 1, cur: 50 of 100. pooled P = 0.4
    # z = (0.3 - 0.5) / sqrt(0.4 * 0.6 * (1/100 + 1/100)) = -0.2 / sqrt(0.0048)
    z, p = proportions_z_test([70, 30], [50, 50])
    assert z == pytest.approx(-0.2 / math.sqrt(0.0048), rel=1e-14)
    assert p == pytest.approx(2 * stats.norm.sf(0.2 / math.sqrt(0.0048)), rel=1e-14)
    assert proportions_z_test([4, 0], [9, 0]) == (0.0, 1.0)


def test_z_test_more_than_two_categories_is_first_category_against_the_rest():
    # Evidently's z-test (z_stattest.py) compares sorted(keys)[0] with the rest: categories
    # (a, b, c) with ref (70, 20, 10) and cur (50, 30, 20) is the binary (70, 30) vs (50, 50)
    # of the hand example above.
    z, p = proportions_z_test([70, 20, 10], [50, 30, 20])
    assert z == pytest.approx(-0.2 / math.sqrt(0.0048), rel=1e-14)
    assert p == pytest.approx(2 * stats.norm.sf(0.2 / math.sqrt(0.0048)), rel=1e-14)
    # a category empty in both windows is dropped before "first" is chosen
    assert proportions_z_test([0, 70, 20, 10], [0, 50, 30, 20]) == (z, p)
    # the split between the other categories does not matter
    assert proportions_z_test([70, 5, 25], [50, 45, 5]) == pytest.approx((z, p), rel=1e-14)


# --------------------------------------------------------------------------------------
# PSI
# --------------------------------------------------------------------------------------


def test_psi_hand_worked_example():
    # ref proportions p = (0.5, 0.3, 0.2), cur proportions q = (0.4, 0.3, 0.3)
    # PSI = (0.4-0.5) ln(0.4/0.5) + (0.3-0.3) ln(1) + (0.3-0.2) ln(0.3/0.2)
    #     = (-0.1)(-0.2231435513) + 0 + (0.1)(0.4054651081)
    #     = 0.0223143551 + 0.0405465108 = 0.0628608659
    assert psi([50, 30, 20], [40, 30, 30]) == pytest.approx(0.0628608659, abs=1e-10)


def test_psi_hand_worked_example_with_empty_bin():
    # ref p = (1.0, 0.0 -> 1e-4), cur q = (0.9, 0.1); filled values not renormalised
    # PSI = (0.9 - 1.0) ln(0.9/1.0) + (0.1 - 0.0001) ln(0.1/0.0001)
    #     = (-0.1)(-0.1053605157) + 0.0999 * 6.9077552790
    #     = 0.0105360516 + 0.6900847524 = 0.7006208040
    assert psi([200, 0], [180, 20]) == pytest.approx(0.7006208040, abs=1e-10)


def test_psi_empty_bin_next_to_a_tiny_share_as_evidently():
    # Evidently (utils.get_binned_data): when the smallest non-zero share is <= 1e-4 an empty
    # bin gets that share / 1e6, and a tiny non-zero share is kept (not floored at 1e-4).
    # ref p = (0.99995, 0.00005, 0 -> 5e-11), cur q = (0.5, 0.25, 0.25)
    p = np.array([0.99995, 0.00005, 5e-11])
    q = np.array([0.5, 0.25, 0.25])
    expected = float(np.sum((q - p) * np.log(q / p)))  # hand formula on the filled shares
    assert psi([199_990, 10, 0], [2, 1, 1]) == pytest.approx(expected, rel=1e-12)
    assert expected > 6.0  # ln(0.25 / 5e-11) = 22.3 dominates


@pytest.mark.parametrize("seed", SEEDS)
def test_psi_symmetry_zero_and_nonnegativity(seed):
    rng = np.random.default_rng(10_000 + seed)
    k = int(rng.integers(1, 30))
    ref = rng.integers(0, 100, k) + 1
    cur = rng.integers(0, 100, k)
    cur[0] += 1
    assert psi(ref, cur) == pytest.approx(psi(cur, ref), rel=1e-14, abs=1e-15)
    assert psi(ref, cur) >= 0.0
    assert psi(ref, ref * 3) == pytest.approx(0.0, abs=1e-15)
    # without empty bins PSI = KL(q||p) + KL(p||q)
    p, q = ref / ref.sum(), (cur + 1) / (cur + 1).sum()
    sym_kl = stats.entropy(q, p) + stats.entropy(p, q)
    assert psi(ref, cur + 1) == pytest.approx(sym_kl, rel=1e-12, abs=1e-15)


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------

_EDGES3 = np.array([0.0, 1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "call",
    [
        lambda r, c: psi(r, c),
        lambda r, c: jensen_shannon(r, c),
        lambda r, c: chi_square(r, c),
        lambda r, c: ks_from_histograms(_EDGES3, r, c),
        lambda r, c: wasserstein_normed(_EDGES3, r, c),
    ],
)
@pytest.mark.parametrize(
    ("ref", "cur", "match"),
    [
        ([1, 2, 3], [1, 2], "same shape"),
        ([1, -2, 3], [1, 2, 3], "negative"),
        ([0, 0, 0], [1, 2, 3], "empty histogram"),
        ([1, 2, 3], [], "non-empty 1-D"),
        ([1, np.nan, 3], [1, 2, 3], "non-finite"),
        ([[1, 2, 3]], [[1, 2, 3]], "1-D"),
    ],
)
def test_invalid_histograms_raise_value_error(call, ref, cur, match):
    with pytest.raises(ValueError, match=match):
        call(ref, cur)


def test_invalid_edges_and_parameters():
    with pytest.raises(ValueError, match="length"):
        ks_from_histograms([0.0, 1.0], [1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="strictly increasing"):
        wasserstein_normed([0.0, 2.0, 1.0, 3.0], [1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        wasserstein_normed([0.0, 1.0, 2.0, np.inf], [1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="integer"):
        ks_from_histograms(_EDGES3, [1.5, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="integer"):
        chi_square([1.5, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="ref_std"):
        wasserstein_normed(_EDGES3, [1, 2, 3], [1, 2, 3], ref_std=-1.0)
    with pytest.raises(ValueError, match="base"):
        jensen_shannon([1, 2], [2, 1], base=1.0)


# --------------------------------------------------------------------------------------
# method registry, defaults, decisions
# --------------------------------------------------------------------------------------


def test_methods_registry():
    assert set(METHODS) == {"psi", "ks", "wasserstein", "jensen_shannon", "chi_square", "z_test"}
    for name, m in METHODS.items():
        assert isinstance(m, DriftMethod)
        assert m.name == name
        assert m.statistic in {"p_value", "distance"}
        assert m.reference
    assert {n for n, m in METHODS.items() if m.statistic == "p_value"} == {
        "ks",
        "chi_square",
        "z_test",
    }
    assert all(METHODS[n].default_threshold == 0.05 for n in ("ks", "chi_square", "z_test"))
    assert all(
        METHODS[n].default_threshold == 0.1 for n in ("wasserstein", "jensen_shannon", "psi")
    )
    assert METHODS["ks"].applies_to("numeric") and not METHODS["ks"].applies_to("categorical")
    assert METHODS["psi"].applies_to("categorical") and METHODS["psi"].applies_to("numeric")


@pytest.mark.parametrize(
    ("kind", "n_ref", "n_unique", "expected"),
    [
        ("numeric", 1, None, "ks"),
        ("numeric", 1000, None, "ks"),
        ("numeric", 1001, None, "wasserstein"),
        ("categorical", 1000, None, "chi_square"),
        ("categorical", 1001, None, "jensen_shannon"),
        # Evidently's n_unique refinements
        ("numeric", 1000, 6, "ks"),
        ("numeric", 1000, 5, "chi_square"),
        ("numeric", 1000, 2, "z_test"),
        ("numeric", 5000, 5, "jensen_shannon"),
        ("numeric", 5000, 6, "wasserstein"),
        ("categorical", 1000, 3, "chi_square"),
        ("categorical", 1000, 2, "z_test"),
        ("categorical", 1000, 1, "z_test"),
        ("categorical", 1001, 2, "jensen_shannon"),
    ],
)
def test_default_method(kind, n_ref, n_unique, expected):
    assert default_method(kind, n_ref, n_unique) == expected
    # low-cardinality numeric columns are treated as categorical (value counts)
    effective_kind = "categorical" if n_unique is not None and n_unique <= 5 else kind
    assert METHODS[expected].applies_to(effective_kind)


@pytest.mark.parametrize(
    ("kind", "n_ref", "n_unique"),
    [("text", 10, None), ("numeric", 0, None), ("numeric", 10.0, None), ("numeric", 10, 0)],
)
def test_default_method_invalid(kind, n_ref, n_unique):
    with pytest.raises(ValueError):
        default_method(kind, n_ref, n_unique)


def test_drift_decision_rules():
    # KS: p <= threshold (Evidently's ks_stattest.py); chi-square and z: p < threshold
    assert drift_decision("ks", 0.3, 0.049)
    assert drift_decision("ks", 0.3, 0.05)
    assert not drift_decision("ks", 0.3, 0.0501)
    assert not drift_decision("chi_square", 10.0, 0.05)
    assert drift_decision("chi_square", 10.0, 0.0499)
    assert not drift_decision("chi_square", 10.0, 0.2)
    assert not drift_decision("z_test", 3.0, 0.02, threshold=0.02)
    assert drift_decision("z_test", 3.0, 0.01, threshold=0.02)
    # distance methods: statistic >= threshold
    assert drift_decision("wasserstein", 0.1, None)
    assert not drift_decision("wasserstein", 0.0999, None)
    assert drift_decision("jensen_shannon", 0.1)
    assert not drift_decision("psi", 0.2, threshold=0.25)
    assert drift_decision("psi", 0.25, threshold=0.25)
    # p_value is ignored for distance methods
    assert not drift_decision("psi", 0.01, p_value=0.0)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("nope", 0.1, 0.1), "unknown"),
        (("ks", 0.1, None), "p_value"),
        (("ks", 0.1, 1.5), "p_value"),
        (("psi", float("nan"), None), "statistic"),
        (("psi", 0.1, None, -1.0), "threshold"),
    ],
)
def test_drift_decision_invalid(args, match):
    with pytest.raises(ValueError, match=match):
        drift_decision(*args)


def test_end_to_end_small_numeric_feature_uses_ks():
    rng = np.random.default_rng(42)
    a = rng.integers(0, 50, 800)
    b = rng.integers(5, 55, 600)
    edges = np.arange(-0.5, 55.5)
    method = default_method("numeric", n_ref=a.size, n_unique=int(np.unique(np.r_[a, b]).size))
    assert method == "ks"
    stat, p = ks_from_histograms(edges, _hist(a, edges), _hist(b, edges))
    assert drift_decision(method, stat, p)


# --------------------------------------------------------------------------------------
# Evidently's bins and the one definition of a drifted feature
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_sturges_edges_equal_numpy_from_count_and_range(seed):
    rng = np.random.default_rng(12_000 + seed)
    n = int(rng.integers(2, 300_000))
    values = rng.lognormal(size=n) * rng.uniform(1e-3, 1e3) - rng.uniform(0, 50)
    integer = seed % 3 == 0
    if integer:
        values = np.round(values / values.max() * 30).astype(np.int64)  # width floored at 1
    oracle = np.histogram_bin_edges(values, bins="sturges")
    got = sturges_edges(values.min(), values.max(), values.size, integer=integer)
    np.testing.assert_array_equal(got, oracle)


def test_sturges_edges_constant_values_and_powers_of_two():
    np.testing.assert_array_equal(
        sturges_edges(3.0, 3.0, 10), np.histogram_bin_edges(np.full(10, 3.0), bins="sturges")
    )
    for n in (2, 1024, 2**20):  # log2(n) + 1 is an integer: no extra bin from rounding
        values = np.linspace(0.0, 1.0, n)
        oracle = np.histogram_bin_edges(values, bins="sturges")
        np.testing.assert_array_equal(sturges_edges(0.0, 1.0, n), oracle)
        assert len(oracle) - 1 == int(np.ceil(np.log2(n))) + 1
    with pytest.raises(ValueError, match="positive"):
        sturges_edges(0.0, 1.0, 0)


def test_drifted_rows_reads_only_deciding_rows():
    drift = pd.DataFrame(
        {
            "feature": ["a", "a", "b", "b", "c"],
            "method": ["wasserstein", "ks", "wasserstein", "psi", "jensen_shannon"],
            "drifted": [False, True, False, True, True],
            "default": [True, False, True, False, True],
            "decides": [True, False, True, True, True],
        }
    )
    # a: only an informational KS row drifted; b: its gated PSI row drifted; c: its default
    got = drifted_rows(drift)
    assert got[["feature", "method"]].to_numpy().tolist() == [["b", "psi"], ["c", "jensen_shannon"]]
    older = drift.drop(columns="decides")  # drift.parquet written before `decides`
    assert list(drifted_rows(older)["feature"]) == ["c"]
    assert drifted_rows(drift.iloc[:0]).empty
