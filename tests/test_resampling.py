"""Unit tests of the resampling helpers (eval_pipelines/inference/resampling.py) against hand-worked
values and independent oracles (scipy's t and normal quantiles, Poisson moments).

The coverage simulations (tests/test_interval_coverage.py, tests/test_delta_coverage.py)
measure what these pieces add up to; here each piece is pinned down on its own.
"""

import itertools

import numpy as np
import pytest
from scipy import stats

from eval_pipelines.inference.resampling import (
    NORMAL_FROM,
    bucket_weights,
    deviation_scale,
    deviations,
    merge_bins,
    percentile_interval,
    poisson_cell_replicates,
    standard_error,
)

# ------------------------------------------------------------------------------------------
# deviation_scale: sqrt(K / (K - 1)) * t_{K-1}((1 + level) / 2) / z((1 + level) / 2)
# ------------------------------------------------------------------------------------------


def scipy_scale(buckets: int, level: float) -> float:
    q = (1 + level) / 2
    return np.sqrt(buckets / (buckets - 1)) * stats.t.ppf(q, buckets - 1) / stats.norm.ppf(q)


@pytest.mark.parametrize(
    ("buckets", "level"),
    [(64, 0.95), (8, 0.95), (8, 0.90), (8, 0.99), (16, 0.8), (1024, 0.95), (9, 0.975)],
)
def test_deviation_scale_matches_scipy_quantiles(buckets, level):
    assert deviation_scale(buckets, level) == pytest.approx(scipy_scale(buckets, level), rel=1e-12)


def test_deviation_scale_hand_worked_from_printed_tables():
    # Printed t table: t_{7, 0.975} = 2.365, t_{63, 0.975} = 1.998 (interpolated); z = 1.960.
    # K = 8: sqrt(8/7) * 2.365 / 1.960 = 1.0690 * 1.2066 = 1.2899
    assert deviation_scale(8, 0.95) == pytest.approx(1.2899, abs=5e-4)
    # K = 64: sqrt(64/63) * 1.998 / 1.960 = 1.0079 * 1.0194 = 1.0274 (the docs quote 1.028)
    assert deviation_scale(64, 0.95) == pytest.approx(1.0274, abs=5e-4)
    # K = 8 at 90%: t_{7, 0.95} = 1.895, z = 1.645: 1.0690 * 1.1520 = 1.2315
    assert deviation_scale(8, 0.90) == pytest.approx(1.2315, abs=5e-4)


def test_deviation_scale_tends_to_one_with_many_buckets():
    # Both factors tend to 1: sqrt(K/(K-1)) = 1 + 1/(2K) + ..., t_{K-1} / z = 1 + O(1/K).
    values = [deviation_scale(k, 0.95) for k in (8, 16, 64, 256, 10_000, 1_000_000)]
    assert all(a > b for a, b in itertools.pairwise(values))
    assert values[-1] == pytest.approx(1.0, abs=1e-5)
    assert values[-2] == pytest.approx(1.0, abs=1e-3)
    assert values[-2] > 1.0


def test_deviation_scale_grows_with_the_level_and_exceeds_the_variance_factor_alone():
    # Student's t has heavier tails than the normal, so t/z grows towards the tails.
    levels = [0.6, 0.8, 0.9, 0.95, 0.99]
    for buckets in (8, 64):
        values = [deviation_scale(buckets, level) for level in levels]
        assert all(a < b for a, b in itertools.pairwise(values))
        assert values[0] > np.sqrt(buckets / (buckets - 1))


def test_scaled_bucket_bootstrap_variance_is_the_unbiased_variance_of_the_mean():
    # Why sqrt(K/(K-1)): resampling K buckets gives the mean a variance (K-1)/K * s^2 / K;
    # the scaled deviations restore s^2 / K with s^2 the (ddof=1) variance of bucket means.
    buckets, replicates = 8, 200_000
    rng = np.random.default_rng(11)
    x = rng.normal(size=buckets)
    weights = bucket_weights(buckets, replicates, seed=3)
    means = weights @ x / buckets
    scale = np.sqrt(buckets / (buckets - 1))
    dev = deviations(means[None, :], np.array([x.mean()]), scale)
    expected = x.var(ddof=1) / buckets
    assert dev.var() == pytest.approx(expected, rel=0.01)
    assert means.var() == pytest.approx(expected * (buckets - 1) / buckets, rel=0.01)


def test_bucket_weights_have_multinomial_moments():
    buckets, replicates = 8, 100_000
    w = bucket_weights(buckets, replicates, seed=5)
    assert w.shape == (replicates, buckets)
    np.testing.assert_array_equal(w.sum(1), buckets)
    assert np.all(w == np.round(w)) and w.min() >= 0
    # Multinomial(K, 1/K): mean 1, variance (K-1)/K, covariance -1/K.
    cov = np.cov(w, rowvar=False)
    np.testing.assert_allclose(w.mean(0), 1.0, atol=0.01)
    np.testing.assert_allclose(np.diag(cov), (buckets - 1) / buckets, rtol=0.02)
    off = cov[~np.eye(buckets, dtype=bool)]
    np.testing.assert_allclose(off, -1 / buckets, atol=0.01)


# ------------------------------------------------------------------------------------------
# deviations, merge_bins
# ------------------------------------------------------------------------------------------


def test_deviations_subtract_the_estimate_along_the_last_axis_then_scale():
    replicates = np.array([[1.0, 2.0, 4.0], [10.0, 10.0, 13.0]])
    estimate = np.array([2.0, 10.0])
    np.testing.assert_array_equal(
        deviations(replicates, estimate), [[-1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]
    )
    np.testing.assert_array_equal(
        deviations(replicates, estimate, 1.5), [[-1.5, 0.0, 3.0], [0.0, 0.0, 4.5]]
    )


def test_merge_bins_sums_adjacent_groups_of_the_last_axis():
    array = np.arange(24.0).reshape(2, 2, 6)
    merged = merge_bins(array, 3)
    # [0, 1 | 2, 3 | 4, 5] -> [1, 5, 9]; the next row starts at 6 -> [13, 17, 21]
    np.testing.assert_array_equal(merged[0], [[1, 5, 9], [13, 17, 21]])
    np.testing.assert_array_equal(merged[1], [[25, 29, 33], [37, 41, 45]])
    np.testing.assert_array_equal(merge_bins(array, 2)[0, 0], [3, 12])
    np.testing.assert_array_equal(merge_bins(array, 6), array)
    np.testing.assert_array_equal(merge_bins(array, 1)[..., 0], array.sum(-1))


# ------------------------------------------------------------------------------------------
# poisson_cell_replicates
# ------------------------------------------------------------------------------------------


def test_poisson_cell_replicates_have_poisson_moments():
    # Cells below, at and above NORMAL_FROM, and an empty cell; mean score per cell known.
    count = np.array([[0.0, 1.0, 3.0, float(NORMAL_FROM), NORMAL_FROM + 1.0, 400.0]])
    mean_score = np.array([[0.5, 0.1, 0.25, 0.6, 0.9, 0.35]])
    replicates = 100_000
    draws, score = poisson_cell_replicates(
        count, count * mean_score, replicates, np.random.default_rng(2)
    )
    assert draws.shape == score.shape == (1, replicates, 6)
    d = draws[0]
    assert np.all(d == np.round(d)) and d.min() >= 0
    np.testing.assert_array_equal(d[:, 0], 0.0)  # empty cells stay empty
    # Poisson(n): mean n and variance n (within 5 standard errors of each moment).
    n = count[0, 1:]
    mean, var = d[:, 1:].mean(0), d[:, 1:].var(0, ddof=1)
    assert np.all(np.abs(mean - n) < 5 * np.sqrt(n / replicates)), mean
    # var of the sample variance of Poisson(n) is about (n + 2 n^2) / replicates
    assert np.all(np.abs(var - n) < 5 * np.sqrt((n + 2 * n**2) / replicates) + 1 / 12), var
    # score sums scale with the drawn count at the cell's mean score
    np.testing.assert_allclose(score[0], d * mean_score[0], rtol=1e-12)


def test_small_cells_are_exact_poisson_draws():
    # A cell of 3 rows: frequencies of 0..6 against the Poisson(3) probabilities, and the
    # third central moment (n for Poisson(n)) at the NORMAL_FROM boundary, where a normal
    # approximation would give 0.
    count = np.array([3.0, float(NORMAL_FROM)])
    replicates = 200_000
    draws, _ = poisson_cell_replicates(count, count, replicates, np.random.default_rng(4))
    small = draws[:, 0]
    frequency = np.bincount(small.astype(int), minlength=7)[:7] / replicates
    pmf = stats.poisson.pmf(np.arange(7), 3)
    assert np.all(np.abs(frequency - pmf) < 5 * np.sqrt(pmf * (1 - pmf) / replicates)), frequency
    at_limit = draws[:, 1]
    third = ((at_limit - NORMAL_FROM) ** 3).mean()
    # sd of the third-moment estimate: sqrt(15 n^3 / replicates) ~ 1.4 for n = 30
    assert third == pytest.approx(NORMAL_FROM, abs=8.0)


def test_poisson_cell_replicates_keep_leading_axes():
    rng = np.random.default_rng(0)
    count = rng.integers(0, 50, size=(3, 2, 2, 5)).astype(float)
    draws, score = poisson_cell_replicates(count, count * 0.5, 7, rng)
    assert draws.shape == score.shape == (3, 2, 2, 7, 5)
    np.testing.assert_array_equal(draws[count[..., None, :].repeat(7, -2) == 0], 0.0)


# ------------------------------------------------------------------------------------------
# percentile_interval, standard_error
# ------------------------------------------------------------------------------------------


def test_percentile_interval_adds_the_tail_quantiles_of_the_deviations():
    # Deviations -0.5, -0.499, ..., 0.5 (1001 values): the q-quantile is q - 0.5 exactly.
    deviation = np.stack([np.arange(1001) / 1000 - 0.5, 2 * (np.arange(1001) / 1000 - 0.5)])
    point = np.array([10.0, 0.0])
    low, high = percentile_interval(point, deviation, 0.95)
    np.testing.assert_allclose(low, [10 - 0.475, -0.95], atol=1e-12)
    np.testing.assert_allclose(high, [10 + 0.475, 0.95], atol=1e-12)
    low, high = percentile_interval(point, deviation, 0.80)
    np.testing.assert_allclose(low, [10 - 0.4, -0.8], atol=1e-12)
    np.testing.assert_allclose(high, [10 + 0.4, 0.8], atol=1e-12)


def test_percentile_interval_keeps_skewness_and_nan_is_per_row():
    # A skewed set of deviations gives an asymmetric interval around the point.
    deviation = np.array([[-1.0, 0.0, 0.0, 0.0, 5.0], [0.0, np.nan, 1.0, 2.0, 3.0]])
    low, high = percentile_interval(np.array([1.0, 1.0]), deviation, 0.5)
    # quantiles 0.25 and 0.75 of (-1, 0, 0, 0, 5) are 0 and 0
    assert (low[0], high[0]) == (1.0, 1.0)
    low, high = percentile_interval(np.array([1.0, 1.0]), deviation, 0.9)
    # 0.05 -> -1 + 0.2 * 1 = -0.8; 0.95 -> 0 + 0.8 * 5 = 4
    np.testing.assert_allclose([low[0], high[0]], [0.2, 5.0])
    assert np.isnan(low[1]) and np.isnan(high[1])


def test_standard_error_is_the_sample_standard_deviation():
    deviation = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    # sum of squares about the mean 2.5 is 5; 5 / (4 - 1) = 5/3
    np.testing.assert_allclose(standard_error(deviation), [np.sqrt(5 / 3), 0.0], rtol=1e-12)
    rng = np.random.default_rng(1)
    sample = rng.normal(size=(3, 50))
    np.testing.assert_allclose(standard_error(sample), np.std(sample, axis=-1, ddof=1))


def test_score_sums_scale_with_the_drawn_count_even_for_one_row_cells():
    count = np.array([1.0, 4.0, 0.0])
    score_sum = np.array([0.3, 2.0, 0.0])
    draws, scores = poisson_cell_replicates(count, score_sum, 500, np.random.default_rng(3))
    np.testing.assert_allclose(scores, draws * np.array([0.3, 0.5, 0.0]), rtol=1e-15)
    assert draws[:, 0].max() > 1  # the one-row cell is really redrawn


def test_standard_error_runs_along_the_replicate_axis_of_any_shape():
    deviation = np.random.default_rng(4).normal(size=(3, 2, 50))
    np.testing.assert_allclose(standard_error(deviation), deviation.std(axis=2, ddof=1), rtol=1e-15)
