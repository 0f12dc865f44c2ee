"""Shared pieces of the coverage simulations (tests/test_interval_coverage.py and
tests/test_delta_coverage.py): population values of the binormal logit model by numerical
integration, the engine's statistics path, and binomial acceptance bands per tail.

Model: ``y ~ Bernoulli(pi)``, score ``sigmoid(intercept + separation y + noise e)`` with
``e ~ N(0, 1)``, decision threshold at logit ``cut``.
"""

import itertools

import numpy as np
import pandas as pd
from scipy import integrate, stats

from eval_pipelines.evaluation import comparison_table, compute_slice_metrics, metrics_table
from eval_pipelines.pipeline import collect_paired_cells, collect_statistics
from eval_pipelines.spec import EvalSpec
from eval_pipelines.sqlbuild import SqlBuilder
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import week_window
from support.data import WEEK

ALPHA = 0.002  # false-alarm rate of each acceptance band


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def logit(p):
    return np.log(p / (1 - p))


def population_values(
    pi: float,
    intercept: float,
    separation: float,
    noise: float,
    cut: float,
    calibration_bins: int = 10,
) -> dict[str, float]:
    """Every metric's population value in the binormal logit model.

    recall = Phi((intercept + separation - cut) / noise), fpr = Phi((intercept - cut) / noise),
    F1 = 2 pi tpr / (pi tpr + pi + (1 - pi) fpr), ROC AUC = Phi(separation / (noise sqrt 2)),
    average precision = integral of precision(c) dTPR(c) over the logit threshold c, Brier and
    log loss integrals over e, ECE = sum_b |E[(s - y) 1{s in b}]| over equal-width bins.
    """
    phi, pdf = stats.norm.cdf, stats.norm.pdf
    tpr = phi((intercept + separation - cut) / noise)
    fpr = phi((intercept - cut) / noise)

    def expect(function, y, low=-np.inf, high=np.inf):
        # E[function(s, y) 1{low <= e < high} | y]
        return integrate.quad(
            lambda e: function(sigmoid(intercept + separation * y + noise * e), y) * pdf(e),
            max(low, -12),
            min(high, 12),
            limit=200,
        )[0]

    def brier(s, y):
        return (s - y) ** 2

    def log_loss(s, y):
        return -np.log(s) if y == 1 else -np.log(1 - s)

    def precision_at(c):
        # pi TPR(c) / (pi TPR(c) + (1 - pi) FPR(c)), in logs so that far tails do not underflow
        log_tpr = stats.norm.logcdf((intercept + separation - c) / noise)
        log_fpr = stats.norm.logcdf((intercept - c) / noise)
        return 1 / (1 + (1 - pi) / pi * np.exp(log_fpr - log_tpr))

    # TPR(c) = Phi((centre - c) / noise), so -dTPR(c) = pdf((centre - c) / noise) / noise dc
    centre = intercept + separation
    average_precision = integrate.quad(
        lambda c: precision_at(c) * pdf((centre - c) / noise) / noise,
        centre - 12 * noise,
        centre + 12 * noise,
        limit=200,
    )[0]

    ece = 0.0
    edges = np.linspace(0, 1, calibration_bins + 1)
    for low, high in itertools.pairwise(edges):
        gap = 0.0
        for y, weight in ((1, pi), (0, 1 - pi)):
            # s in [low, high)  <=>  e in [(logit(low) - mean), (logit(high) - mean)) / noise
            mean = intercept + separation * y
            e_low = -np.inf if low == 0 else (logit(low) - mean) / noise
            e_high = np.inf if high == 1 else (logit(high) - mean) / noise
            gap += weight * expect(lambda s, y: s - y, y, e_low, e_high)
        ece += abs(gap)

    return {
        "accuracy": pi * tpr + (1 - pi) * (1 - fpr),
        "precision": pi * tpr / (pi * tpr + (1 - pi) * fpr),
        "recall": tpr,
        "f1": 2 * pi * tpr / (pi * tpr + pi + (1 - pi) * fpr),
        "log_loss": pi * expect(log_loss, 1) + (1 - pi) * expect(log_loss, 0),
        "brier": pi * expect(brier, 1) + (1 - pi) * expect(brier, 0),
        "roc_auc": phi(separation / (noise * np.sqrt(2))),
        "pr_auc": average_precision,
        "ece": ece,
    }


def engine_tables(spec: EvalSpec) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The metrics table and (with ``compare``) the comparison table of the week ``WEEK``.

    The engine's own statistics path (``pipeline._evaluate_valid``): the aggregate and paired
    queries through the warehouse, then ``compute_slice_metrics``, ``metrics_table`` and
    ``comparison_table``. The input checks are skipped: they cost as much as the statistics
    on these millions of rows and do not touch the numbers.
    """
    window = week_window(WEEK)
    with Warehouse(spec.warehouse) as warehouse:
        builder = SqlBuilder(spec, warehouse.dialect)
        statistics, _ = collect_statistics(spec, window, warehouse, builder)
        result = compute_slice_metrics(statistics, spec)
        metrics = metrics_table(result, spec)
        comparison = None
        if spec.compare is not None:
            paired, _ = collect_paired_cells(spec, window, warehouse, builder, statistics.slices)
            comparison = comparison_table(result, spec, paired)
    return metrics, comparison


def binomial_band(p: float, trials: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Two-sided acceptance band for a Binomial(trials, p) share: false-alarm rate alpha."""
    low = stats.binom.ppf(alpha / 2, trials, p)
    high = stats.binom.isf(alpha / 2, trials, p)
    return low / trials, high / trials


def miss_rates(
    rows: pd.DataFrame, truths: dict[str, float], low: str, high: str
) -> dict[str, dict[str, float]]:
    """Per metric: share of intervals entirely above the truth, entirely below, coverage."""
    out = {}
    for metric, value in truths.items():
        these = rows[rows["metric"] == metric]
        assert these[[low, high]].notna().all().all(), f"{metric}: undefined intervals"
        above = float((these[low] > value).mean())
        below = float((these[high] < value).mean())
        out[metric] = {"n": len(these), "above": above, "below": below}
        out[metric]["coverage"] = 1 - above - below
    return out


def band_failures(
    rates: dict[str, dict[str, float]],
    level: float,
    known: dict[tuple[str, str], float] | None = None,
) -> list[str]:
    """Every tail and every coverage outside its binomial band, described.

    Each tail's band is around (1 - level) / 2 and coverage's around the level, except where
    ``known[(metric, "above" | "below" | "coverage")]`` gives a measured rate documented in
    the test's docstring.
    """
    failures = []
    for metric, rate in rates.items():
        n = int(rate["n"])
        cover_low, cover_high = binomial_band((known or {}).get((metric, "coverage"), level), n)
        for side in ("above", "below"):
            expected = (known or {}).get((metric, side), (1 - level) / 2)
            tail_low, tail_high = binomial_band(expected, n)
            if not tail_low <= rate[side] <= tail_high:
                failures.append(
                    f"{metric}: the interval lies {side} the truth in {rate[side]:.2%} of {n} "
                    f"repeats, outside [{tail_low:.2%}, {tail_high:.2%}]"
                )
        if not cover_low <= rate["coverage"] <= cover_high:
            failures.append(
                f"{metric}: coverage {rate['coverage']:.2%} of {n} repeats outside "
                f"[{cover_low:.2%}, {cover_high:.2%}]"
            )
    return failures


def report(title: str, rates: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    for metric, rate in rates.items():
        print(
            f"  {metric:10s} coverage {rate['coverage']:.2%}   interval above the truth "
            f"{rate['above']:.2%}, below {rate['below']:.2%}"
        )
