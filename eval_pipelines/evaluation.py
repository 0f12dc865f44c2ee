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
    bucket_standard_error,
    bucket_weights,
    deviation_scale,
    deviations,
    merge_bins,
    percentile_interval,
    poisson_cell_replicates,
    standard_error,
)
from eval_pipelines.significance import benjamini_hochberg, mcnemar_exact, wald_p_value
from eval_pipelines.spec import EvalSpec
from eval_pipelines.sufficient import PairedCells, SufficientStatistics

TESTS = {
    "threshold": "paired bucket bootstrap (t, K - 1 df)",
    "paired cells": "paired cell bootstrap (Wald)",
    "histogram": "bootstrap of each version's histogram (Wald; conservative when paired)",
}

# Slice groups whose histogram replicates are drawn together (bounds memory to ~tens of MB).
GROUPS_PER_DRAW = 32

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
    conf = spec.confidence
    G, V = len(stats.slices), len(stats.versions)
    threshold_names = [n for n in spec.metrics if m.METRICS[n].source == "threshold"]
    histogram_names = [n for n in spec.metrics if m.METRICS[n].source == "histogram"]
    point: dict[str, np.ndarray] = {}
    deviation: dict[str, np.ndarray] = {}
    error_bound = {name: np.zeros((G, V)) for name in spec.metrics}

    threshold = stats.threshold_point()
    replicates = stats.threshold_replicates(
        bucket_weights(stats.buckets, conf.replicates, conf.seed)
    )
    scale = deviation_scale(stats.buckets, conf.level)
    with np.errstate(invalid="ignore", divide="ignore"):
        for name in threshold_names:
            point[name] = m.METRICS[name].compute(threshold)
            values = m.METRICS[name].compute(replicates)  # [g, v, B]
            deviation[name] = deviations(values, point[name], scale)

        histogram = stats.histogram()
        neg, pos = histogram.count[..., 0, :], histogram.count[..., 1, :]
        error_bound["roc_auc"] = m.roc_auc_error_bound(neg, pos)
        error_bound["pr_auc"] = m.average_precision_error_bound(neg, pos)
        coarse = m.ScoreHistogram(
            count=merge_bins(histogram.count, conf.score_bins),
            score_sum=merge_bins(histogram.score_sum, conf.score_bins),
            calibration_bins=histogram.calibration_bins,
        )
        coarse_point = {}
        for name in histogram_names:
            point[name] = m.METRICS[name].compute(histogram)
            coarse_point[name] = m.METRICS[name].compute(coarse)
            deviation[name] = np.empty((G, V, conf.replicates))
        rng = np.random.default_rng([conf.seed, 1])
        for chunk in np.array_split(np.arange(G), max(1, G // GROUPS_PER_DRAW)):
            counts, scores = poisson_cell_replicates(
                coarse.count[chunk], coarse.score_sum[chunk], conf.replicates, rng
            )  # [g, v, 2, B, C]
            drawn = m.ScoreHistogram(
                count=np.moveaxis(counts, -2, 2),
                score_sum=np.moveaxis(scores, -2, 2),
                calibration_bins=histogram.calibration_bins,
            )  # [g, v, B, 2, C]
            for name in histogram_names:
                values = m.METRICS[name].compute(drawn)
                deviation[name][chunk] = deviations(values, coarse_point[name][chunk])
    return SliceMetrics(
        stats=stats,
        point=point,
        deviation=deviation,
        error_bound={name: error_bound[name] for name in spec.metrics},
        n=threshold.n,
        n_positive=threshold.count[..., 1, :].sum(-1),
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


def paired_histogram_deviations(
    paired: PairedCells, spec: EvalSpec, names: list[str]
) -> dict[str, np.ndarray]:
    """Scaled deviations ``[g, B]`` of candidate - baseline for histogram metrics, paired.

    One Poisson draw per joint cell (baseline bin x candidate bin x label) reweights both
    models' histograms at once, so each replicate's delta keeps the pairing: the Poisson
    bootstrap of requests, on ``confidence.paired_bins`` bins per model.
    """
    conf = spec.confidence
    G = paired.count.shape[0]
    out = {name: np.empty((G, conf.replicates)) for name in names}
    rng = np.random.default_rng([conf.seed, 2])

    def histograms(count, baseline_sum, candidate_sum):
        # count[..., y, a, b]: the baseline's histogram sums over b, the candidate's over a
        baseline = m.ScoreHistogram(count.sum(-1), baseline_sum.sum(-1), spec.calibration_bins)
        candidate = m.ScoreHistogram(count.sum(-2), candidate_sum.sum(-2), spec.calibration_bins)
        return baseline, candidate

    with np.errstate(invalid="ignore", divide="ignore"):
        point_b, point_c = histograms(
            paired.count, paired.baseline_score_sum, paired.candidate_score_sum
        )
        point = {n: m.METRICS[n].compute(point_c) - m.METRICS[n].compute(point_b) for n in names}
        R = paired.count.shape[-1]
        for chunk in np.array_split(np.arange(G), max(1, G // GROUPS_PER_DRAW)):
            shape = (len(chunk), 2 * R * R)
            count = paired.count[chunk].reshape(shape)
            draws, baseline_sum = poisson_cell_replicates(
                count, paired.baseline_score_sum[chunk].reshape(shape), conf.replicates, rng
            )  # [g, B, cells]
            # The candidate's score sums scale with the same draws.
            ratio = np.where(count > 0, 1.0 / np.where(count > 0, count, 1), 0.0)
            candidate_sum = (
                draws * (ratio * paired.candidate_score_sum[chunk].reshape(shape))[:, None, :]
            )
            full = (len(chunk), conf.replicates, 2, R, R)
            drawn_b, drawn_c = histograms(
                draws.reshape(full), baseline_sum.reshape(full), candidate_sum.reshape(full)
            )
            for name in names:
                delta = m.METRICS[name].compute(drawn_c) - m.METRICS[name].compute(drawn_b)
                out[name][chunk] = deviations(delta, point[name][chunk])
    return out


def comparison_table(
    result: SliceMetrics,
    spec: EvalSpec,
    paired: PairedCells | None,
) -> pd.DataFrame:
    """Paired deltas (candidate - baseline) with CI, p-value and BH q-value for every test."""
    assert spec.compare is not None
    stats = result.stats
    versions = stats.versions
    b = versions.index(spec.compare.baseline)
    c = versions.index(spec.compare.candidate)
    level, alpha = spec.confidence.level, spec.confidence.alpha
    rows = []
    mcnemar = None
    paired_deviation: dict[str, np.ndarray] = {}
    if paired is not None:
        mcnemar = mcnemar_exact(paired.outcomes[:, 0], paired.outcomes[:, 1])
        histogram_names = [n for n in spec.metrics if m.METRICS[n].source == "histogram"]
        paired_deviation = paired_histogram_deviations(paired, spec, histogram_names)
    for name in spec.metrics:
        metric = m.METRICS[name]
        delta = result.point[name][:, c] - result.point[name][:, b]
        if name in paired_deviation:
            dev = paired_deviation[name]
        else:
            dev = result.deviation[name][:, c] - result.deviation[name][:, b]
        low, high = percentile_interval(delta, dev, level)
        if name in paired_deviation or metric.source == "histogram":
            p = wald_p_value(delta, standard_error(dev))
        else:  # bucket bootstrap: Student's t on K - 1 df, whatever the interval level
            K = stats.buckets
            p = wald_p_value(delta, bucket_standard_error(dev, K, level), df=K - 1)
        on_pairs = name in paired_deviation or (name == "accuracy" and mcnemar is not None)
        for g, key in enumerate(stats.slices):
            # A test on paired requests has as many observations as requests both versions
            # scored; the others compare each version's labeled rows.
            if on_pairs:
                n = float(paired.outcomes[g, 2])
            else:
                n = float(min(result.n[g, b], result.n[g, c]))
            test = TESTS["paired cells" if name in paired_deviation else metric.source]
            p_value = float(p[g])
            if name == "accuracy" and mcnemar is not None:
                test = "McNemar exact"
                p_value = float(mcnemar[g])
            if n < spec.min_slice_size:
                test = "not tested (slice too small)"
            elif np.isnan(delta[g]):
                test = "not tested (delta undefined)"
            testable = not test.startswith("not tested")
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
                    "test": test,
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
