"""Sliced metrics with confidence intervals, and the paired candidate-vs-baseline comparison.

Both come from one :class:`SufficientStatistics` and one set of bucket-bootstrap weights, so
every interval and every delta is computed from the same replicates (paired across versions
and coherent across slices).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval_pipelines import metrics as m
from eval_pipelines.resampling import (
    bucket_weights,
    deviations,
    percentile_interval,
    standard_error,
)
from eval_pipelines.significance import benjamini_hochberg, mcnemar_exact, wald_p_value
from eval_pipelines.spec import EvalSpec
from eval_pipelines.sufficient import SliceKey, SufficientStatistics

METRIC_COLUMNS = [
    "model_version",
    "slice",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "n_positive",
    "status",
    "error_bound",
]
COMPARISON_COLUMNS = [
    "slice",
    "metric",
    "baseline",
    "candidate",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "p_value",
    "q_value",
    "test",
    "n",
    "outcome",
]


@dataclass
class SliceMetrics:
    """Point estimates ``[g, v]`` and scaled replicate deviations ``[g, v, B]`` per metric."""

    stats: SufficientStatistics
    point: dict[str, np.ndarray]
    deviation: dict[str, np.ndarray]
    error_bound: dict[str, np.ndarray]
    n: np.ndarray
    n_positive: np.ndarray


def compute_slice_metrics(stats: SufficientStatistics, spec: EvalSpec) -> SliceMetrics:
    names = spec.metrics
    conf = spec.confidence
    weights = bucket_weights(stats.buckets, conf.replicates, conf.seed)
    point_stats = stats.point()
    G, V = len(stats.slices), len(stats.versions)
    point = {name: m.METRICS[name].compute(point_stats) for name in names}
    error_bound = {name: np.zeros((G, V)) for name in names}
    coarse_point = dict(point)
    neg, pos = stats.fine[:, :, 0, :], stats.fine[:, :, 1, :]
    if "roc_auc" in point:
        point["roc_auc"] = m.roc_auc_from_histograms(neg, pos)
        error_bound["roc_auc"] = m.roc_auc_error_bound(neg, pos)
    if "pr_auc" in point:
        point["pr_auc"] = m.average_precision_from_histograms(neg, pos)
        error_bound["pr_auc"] = m.average_precision_error_bound(neg, pos)

    deviation = {name: np.empty((G, V, conf.replicates)) for name in names}
    with np.errstate(invalid="ignore", divide="ignore"):
        for g in range(G):
            replicate_stats = stats.replicates(g, weights)
            for name in names:
                values = m.METRICS[name].compute(replicate_stats)  # [v, B]
                deviation[name][g] = deviations(
                    values, coarse_point[name][g], stats.buckets, conf.level
                )
    return SliceMetrics(
        stats=stats,
        point=point,
        deviation=deviation,
        error_bound=error_bound,
        n=point_stats.n,
        n_positive=point_stats.count[..., 1, :].sum(-1),
    )


def _status(n: float, spec: EvalSpec) -> str:
    if n == 0:
        return "empty"
    return "too_small" if n < spec.min_slice_size else "ok"


def metrics_table(result: SliceMetrics, spec: EvalSpec) -> pd.DataFrame:
    """One row per (model_version, slice, metric): value, CI, n, status."""
    rows = []
    level = spec.confidence.level
    for name in spec.metrics:
        low, high = percentile_interval(result.point[name], result.deviation[name], level)
        for g, key in enumerate(result.stats.slices):
            for v, version in enumerate(result.stats.versions):
                n = float(result.n[g, v])
                rows.append(
                    {
                        "model_version": version,
                        "slice": str(key),
                        "metric": name,
                        "value": float(result.point[name][g, v]),
                        "ci_low": float(low[g, v]),
                        "ci_high": float(high[g, v]),
                        "n": int(n),
                        "n_positive": int(result.n_positive[g, v]),
                        "status": _status(n, spec),
                        "error_bound": float(result.error_bound[name][g, v]),
                    }
                )
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    return frame.sort_values(["model_version", "slice", "metric"], kind="stable").reset_index(
        drop=True
    )


def discordant_pairs(paired: pd.DataFrame, slices: list[SliceKey], key_of) -> np.ndarray:
    """``[g, 3]``: pairs only the baseline got right, only the candidate got right, and all
    labeled pairs (requests scored by both versions)."""
    out = np.zeros((len(slices), 3))
    index = {key: i for i, key in enumerate(slices)}
    for row in paired.itertuples(index=False):
        g = index.get(key_of(row))
        if g is None:
            continue
        label = int(row.label)
        baseline_right = int(row.baseline_above) == label
        candidate_right = int(row.candidate_above) == label
        out[g, 2] += row.n
        if baseline_right and not candidate_right:
            out[g, 0] += row.n
        elif candidate_right and not baseline_right:
            out[g, 1] += row.n
    return out


def comparison_table(
    result: SliceMetrics,
    spec: EvalSpec,
    discordant: np.ndarray | None,
) -> pd.DataFrame:
    """Paired deltas (candidate - baseline) with CI, p-value and BH q-value for every test."""
    assert spec.compare is not None
    stats = result.stats
    versions = stats.versions
    b = versions.index(spec.compare.baseline)
    c = versions.index(spec.compare.candidate)
    level, alpha = spec.confidence.level, spec.confidence.alpha
    rows = []
    for name in spec.metrics:
        metric = m.METRICS[name]
        delta = result.point[name][:, c] - result.point[name][:, b]
        dev = result.deviation[name][:, c] - result.deviation[name][:, b]
        low, high = percentile_interval(delta, dev, level)
        p = wald_p_value(delta, standard_error(dev))
        for g, key in enumerate(stats.slices):
            n = float(min(result.n[g, b], result.n[g, c]))
            test = "paired bucket bootstrap (Wald)"
            p_value = float(p[g])
            if name == "accuracy" and discordant is not None:
                test = "McNemar exact"
                p_value = mcnemar_exact(discordant[g, 0], discordant[g, 1])
            testable = n >= spec.min_slice_size and not np.isnan(delta[g])
            rows.append(
                {
                    "slice": str(key),
                    "metric": name,
                    "baseline": float(result.point[name][g, b]),
                    "candidate": float(result.point[name][g, c]),
                    "delta": float(delta[g]),
                    "delta_ci_low": float(low[g]),
                    "delta_ci_high": float(high[g]),
                    "p_value": p_value if testable else np.nan,
                    "n": int(n),
                    "test": test if testable else "not tested (slice too small)",
                    "higher_is_better": metric.higher_is_better,
                }
            )
    frame = pd.DataFrame(rows)
    frame["q_value"] = benjamini_hochberg(frame["p_value"].to_numpy())
    better = np.where(frame["higher_is_better"], frame["delta"] > 0, frame["delta"] < 0)
    significant = frame["q_value"] <= alpha
    frame["outcome"] = np.select(
        [frame["p_value"].isna(), significant & better, significant & ~better],
        ["not tested", "improved", "regressed"],
        "no significant change",
    )
    return frame[COMPARISON_COLUMNS].reset_index(drop=True)
