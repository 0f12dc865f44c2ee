"""Sliced metrics with confidence intervals, and the paired candidate-vs-baseline comparison.

Both come from one :class:`~eval_pipelines.stats.parse.Statistics`: each metric is computed by
its registry entry's function over its family's point statistic, and its interval, paired
delta and test come from that family's bootstrap (:mod:`eval_pipelines.inference.bootstrap`),
so every interval and every delta of one family is computed from the same replicates (paired
across versions and coherent across slices). Nothing here knows a metric's name.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from eval_pipelines.inference.bootstrap import MetricFunction
from eval_pipelines.inference.resampling import percentile_interval
from eval_pipelines.inference.significance import benjamini_hochberg
from eval_pipelines.spec import EvalSpec
from eval_pipelines.stats.parse import Statistics
from eval_pipelines.tasks import task_of

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

    stats: Statistics
    point: dict[str, np.ndarray]
    deviation: dict[str, np.ndarray]
    error_bound: dict[str, np.ndarray]
    n: np.ndarray
    n_positive: np.ndarray
    # Per metric, the rows it was computed on ``[g, v]`` (``n`` unless the metric says).
    count: dict[str, np.ndarray] = field(default_factory=dict)


def _by_family(spec: EvalSpec) -> dict[str, dict[str, MetricFunction]]:
    """The spec's metrics grouped by their family: family name -> metric name -> function."""
    task = task_of(spec)
    groups: dict[str, dict[str, MetricFunction]] = {f.name: {} for f in task.families}
    for name in spec.metrics:
        metric = task.metric(name)
        groups[metric.family.name][name] = metric.compute
    return groups


def compute_slice_metrics(stats: Statistics, spec: EvalSpec) -> SliceMetrics:
    """Every metric of the spec per slice and version, with its family's bootstrap."""
    task = task_of(spec)
    point: dict[str, np.ndarray] = {}
    deviation: dict[str, np.ndarray] = {}
    error_bound: dict[str, np.ndarray] = {}
    count: dict[str, np.ndarray] = {}
    rows = task.rows(stats)
    for family_name, functions in _by_family(spec).items():
        if not functions:
            continue
        family = task.family(family_name)
        data = stats.data[family_name]
        family_point = family.point(data)
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, function in functions.items():
                point[name] = function(family_point)
                metric = task.metric(name)
                bound = metric.error_bound
                error_bound[name] = bound(family_point) if bound else np.zeros(point[name].shape)
                count[name] = metric.count(family_point) if metric.count else rows.labeled
        deviation.update(family.bootstrap.deviations(family, data, functions, spec))
    return SliceMetrics(
        stats=stats,
        point=point,
        deviation=deviation,
        error_bound={name: error_bound[name] for name in spec.metrics},
        n=rows.labeled,
        n_positive=rows.positives,
        count={name: count[name] for name in spec.metrics},
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
                n = float(result.count.get(name, result.n)[g, v])
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


def comparison_table(
    result: SliceMetrics,
    spec: EvalSpec,
    paired: Any,
) -> pd.DataFrame:
    """Paired deltas (candidate - baseline) with CI, p-value and BH q-value for every test."""
    assert spec.compare is not None
    task = task_of(spec)
    stats = result.stats
    versions = stats.versions
    b = versions.index(spec.compare.baseline)
    c = versions.index(spec.compare.candidate)
    level, alpha = spec.confidence.level, spec.confidence.alpha
    delta = {name: result.point[name][:, c] - result.point[name][:, b] for name in spec.metrics}
    tests = {}
    for family_name, functions in _by_family(spec).items():
        if functions:
            family = task.family(family_name)
            tests.update(
                family.bootstrap.deltas(
                    family, functions, delta, result.deviation, (b, c), paired, spec
                )
            )
    rows = []
    for name in spec.metrics:
        metric = task.metric(name)
        test = tests[name]
        low, high = percentile_interval(delta[name], test.deviation, level)
        label, p, on_pairs = test.test, test.p_value, test.on_pairs
        if metric.paired_test is not None and paired is not None:
            label, p, on_pairs = metric.paired_test.name, metric.paired_test.p_value(paired), True
        for g, key in enumerate(stats.slices):
            # A test on paired requests has as many observations as requests both versions
            # scored; the others compare each version's labeled rows.
            count = result.count.get(name, result.n)
            n = float(paired.pairs[g] if on_pairs else min(count[g, b], count[g, c]))
            row_test = label
            if n < spec.min_slice_size:
                row_test = "not tested (slice too small)"
            elif np.isnan(delta[name][g]):
                row_test = "not tested (delta undefined)"
            testable = not row_test.startswith("not tested")
            rows.append(
                {
                    "slice": str(key),
                    "metric": name,
                    "baseline": float(result.point[name][g, b]),
                    "candidate": float(result.point[name][g, c]),
                    "delta": float(delta[name][g]),
                    "delta_ci_low": float(low[g]),
                    "delta_ci_high": float(high[g]),
                    "p_value": float(p[g]) if testable else np.nan,
                    "n": int(n),
                    "test": row_test,
                    "regression": metric.regression(
                        delta[name][g], result.point[name][g, b], result.point[name][g, c]
                    ),
                }
            )
    frame = pd.DataFrame(rows)
    frame["q_value"] = benjamini_hochberg(frame["p_value"].to_numpy())
    better = frame["regression"] < 0
    significant = frame["q_value"] <= alpha
    frame["outcome"] = np.select(
        [frame["p_value"].isna(), significant & better, significant & ~better],
        ["not tested", "improved", "regressed"],
        "no significant change",
    )
    return frame[COMPARISON_COLUMNS].reset_index(drop=True)
