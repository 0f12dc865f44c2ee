"""Multiple-testing control and paired tests against independent oracles."""

import numpy as np
import pytest
from scipy import stats

from eval_pipelines.evaluation import SliceMetrics, comparison_table
from eval_pipelines.inference.resampling import (
    bucket_standard_error,
    bucket_weights,
    deviation_scale,
    percentile_interval,
)
from eval_pipelines.inference.significance import benjamini_hochberg, mcnemar_exact, wald_p_value
from eval_pipelines.spec import parse_spec
from eval_pipelines.stats.binary import ThresholdBuckets
from eval_pipelines.stats.parse import SliceKey, Statistics
from eval_pipelines.tasks import BINARY


@pytest.mark.parametrize("seed", range(10))
def test_benjamini_hochberg_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 0.01, size=10)])
    expected = stats.false_discovery_control(p, method="bh")
    np.testing.assert_allclose(benjamini_hochberg(p), expected, rtol=1e-12)


def test_benjamini_hochberg_hand_worked_and_keeps_missing():
    # m = 4 tests: p sorted 0.01, 0.02, 0.03, 0.5 -> m p / rank = 0.04, 0.04, 0.04, 0.5
    q = benjamini_hochberg(np.array([0.03, np.nan, 0.01, 0.5, 0.02]))
    np.testing.assert_allclose(q, [0.04, np.nan, 0.04, 0.5, 0.04], equal_nan=True)


def test_mcnemar_exact_hand_worked():
    # b = 10, c = 2: p = 2 * P(X <= 2 | X ~ Bin(12, 1/2)) = 2 * (1 + 12 + 66) / 4096
    assert mcnemar_exact(10, 2) == pytest.approx(2 * 79 / 4096, rel=1e-12)
    assert mcnemar_exact(2, 10) == pytest.approx(2 * 79 / 4096, rel=1e-12)
    assert mcnemar_exact(0, 0) == 1.0


def test_wald_p_value_is_two_sided_normal():
    assert wald_p_value(np.array(1.96), np.array(1.0)) == pytest.approx(0.04999579, rel=1e-6)
    assert np.isnan(wald_p_value(np.array(0.1), np.array(np.nan)))


def test_bucket_weights_are_seeded_multinomial_draws():
    a = bucket_weights(64, 200, seed=7)
    assert a.shape == (200, 64)
    assert (a.sum(axis=1) == 64).all()
    np.testing.assert_array_equal(a, bucket_weights(64, 200, seed=7))
    assert not np.array_equal(a, bucket_weights(64, 200, seed=8))
    # Each bucket is drawn Binomial(64, 1/64) times: mean 1, variance 63/64.
    assert a.mean() == pytest.approx(1.0, abs=0.02)
    assert a.var() == pytest.approx(63 / 64, rel=0.1)


def test_percentile_interval_is_nan_when_any_replicate_is_undefined():
    deviation = np.array([[-1.0, 0.0, 1.0, np.nan]])
    low, high = percentile_interval(np.array([5.0]), deviation, 0.95)
    assert np.isnan(low[0]) and np.isnan(high[0])


def test_wald_p_value_against_student_t_when_degrees_of_freedom_are_given():
    # t = 2 on 63 df: p = 2 * (1 - F_t63(2)), larger than the normal's 0.0455.
    expected = 2 * (1 - stats.t.cdf(2.0, 63))
    assert wald_p_value(np.array(0.2), np.array(0.1), df=63) == pytest.approx(expected, rel=1e-12)
    assert wald_p_value(np.array(-0.2), np.array(0.1), df=63) == pytest.approx(expected, rel=1e-12)
    assert expected > 2 * stats.norm.sf(2.0)


def test_wald_p_value_edge_cases():
    p = wald_p_value(np.array([0.0, 0.3, 0.3, np.nan]), np.array([0.0, 0.0, np.nan, 1.0]))
    np.testing.assert_array_equal(p[:2], [1.0, 0.0])  # no spread: equal, or surely different
    assert np.isnan(p[2]) and np.isnan(p[3])
    assert wald_p_value(np.array(0.0), np.array(0.5)) == 1.0


@pytest.mark.parametrize("level", [0.8, 0.95, 0.99])
def test_bucket_standard_error_takes_the_interval_factor_back_out(level):
    rng = np.random.default_rng(5)
    raw = rng.normal(0, 0.03, size=(4, 200))  # replicate deviations theta*_r - theta_hat
    scaled = deviation_scale(64, level) * raw
    expected = np.sqrt(64 / 63) * raw.std(axis=-1, ddof=1)
    np.testing.assert_allclose(bucket_standard_error(scaled, 64, level), expected, rtol=1e-12)


def test_mcnemar_exact_is_one_when_the_discordant_pairs_split_evenly():
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 1) == 1.0  # one discordant pair: 2 * P(X <= 0 | Bin(1, 1/2))
    np.testing.assert_array_equal(mcnemar_exact([5, 10], [5, 2]) <= 1.0, True)


def test_benjamini_hochberg_of_a_single_test_is_its_p_value():
    np.testing.assert_array_equal(benjamini_hochberg(np.array([0.03])), [0.03])
    np.testing.assert_array_equal(benjamini_hochberg(np.array([np.nan, 0.2])), [np.nan, 0.2])


@pytest.mark.parametrize("level", [0.8, 0.95])
def test_comparison_p_value_of_a_bucket_bootstrap_metric_is_the_documented_t_test(level):
    """README: delta / (sqrt(K / (K - 1)) x SD of the replicates) against Student's t with
    K - 1 df, whatever the interval level. Built from hand-made replicates of one slice."""
    K, B = 16, 400
    rng = np.random.default_rng(8)
    point = np.array([[0.70, 0.74]])  # [slice, version]: baseline v1, candidate v2
    raw = rng.normal(0, 0.01, size=(1, 2, B))  # replicate deviations theta*_r - theta_hat
    raw[0, 1] += 0.6 * raw[0, 0]  # paired: the versions' replicates move together
    stats_ = Statistics(
        task=BINARY,
        slices=[SliceKey((), ())],
        versions=["v1", "v2"],
        data={
            "threshold": ThresholdBuckets(
                count=np.zeros((1, 2, K, 2, 2)),
                log_loss_sum=np.zeros((1, 2, K, 2)),
                squared_error_sum=np.zeros((1, 2, K, 2)),
                unlabeled=np.zeros((1, 2, K)),
            )
        },
    )
    result = SliceMetrics(
        stats=stats_,
        point={"recall": point},
        deviation={"recall": deviation_scale(K, level) * raw},
        error_bound={"recall": np.zeros((1, 2))},
        n=np.array([[1000.0, 1000.0]]),
        n_positive=np.array([[300.0, 300.0]]),
    )
    spec = parse_spec(
        {
            "model": "m",
            "warehouse": "duckdb:///:memory:",
            "predictions": {"table": "p"},
            "labels": {"table": "l"},
            "metrics": ["recall"],
            "compare": {"baseline": "v1", "candidate": "v2"},
            "confidence": {"level": level, "buckets": K},
        }
    )
    [row] = comparison_table(result, spec, paired=None).itertuples(index=False)
    difference = raw[0, 1] - raw[0, 0]
    se = np.sqrt(K / (K - 1)) * difference.std(ddof=1)
    assert row.delta == pytest.approx(0.04, abs=1e-15)
    assert row.p_value == pytest.approx(2 * stats.t.sf(0.04 / se, K - 1), rel=1e-10)
    assert row.test == "paired bucket bootstrap (t, K - 1 df)"
