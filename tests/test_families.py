"""The task registry and the binary statistic families, on tiny hand-built inputs.

The end-to-end oracles (test_metrics_oracle.py, test_comparison_oracle.py) check the numbers
through the warehouse; these check what a metric author relies on: a registry entry per
(task, metric) with its documentation, one sentence for a pair that does not exist, and each
family's point / reweight / redraw / pair on arrays small enough to count by hand.
"""

import numpy as np
import pyarrow as pa
import pytest

from eval_pipelines.errors import SpecError
from eval_pipelines.inference.bootstrap import BUCKET_BOOTSTRAP, CELL_BOOTSTRAP
from eval_pipelines.report import intervals_note
from eval_pipelines.spec import parse_spec
from eval_pipelines.stats.base import RowIndex
from eval_pipelines.stats.binary import (
    HISTOGRAM,
    THRESHOLD,
    PairedCells,
    ScoreHistogram,
    ThresholdBuckets,
)
from eval_pipelines.tasks import TASKS, metric_of, task_named

BASE = {"model": "m", "predictions": {"table": "p"}, "labels": {"table": "l"}}


def test_every_registered_metric_is_documented_and_over_one_of_its_tasks_families():
    for task in TASKS.values():
        assert task.metrics, task.name
        for name, metric in task.metrics.items():
            assert metric.name == name
            assert metric.title and metric.formula and metric.reference, name
            assert metric.direction in (
                "higher is better",
                "lower is better",
                "closer to 0 is better",
            )
            assert metric.family in task.families, name


def test_binary_metrics_sit_on_the_documented_families_and_intervals():
    task = task_named("binary_classification")
    on = {name: metric.family.name for name, metric in task.metrics.items()}
    assert {n for n, f in on.items() if f == "histogram"} == {"roc_auc", "pr_auc", "ece"}
    assert metric_of("binary_classification", "recall").family.bootstrap == BUCKET_BOOTSTRAP
    assert metric_of("binary_classification", "ece").family.bootstrap == CELL_BOOTSTRAP
    assert metric_of("binary_classification", "accuracy").paired_test.name == "McNemar exact"


def test_an_unknown_task_metric_pair_fails_with_one_sentence():
    with pytest.raises(ValueError) as info:
        metric_of("binary_classification", "rocauc")
    message = str(info.value)
    assert message.startswith("unknown metric 'rocauc' for task 'binary_classification'")
    assert "did you mean 'roc_auc'?" in message and "\n" not in message
    with pytest.raises(ValueError, match="unknown metric 'mae' for task 'multiclass_classif"):
        metric_of("multiclass_classification", "mae")
    with pytest.raises(ValueError, match="unknown metric 'mae' for task 'ranking'"):
        metric_of("ranking", "mae")


def test_spec_task_defaults_to_binary_and_its_metrics_to_the_registry():
    spec = parse_spec(BASE)
    assert spec.task == "binary_classification"
    assert spec.metrics == list(TASKS["binary_classification"].metrics)
    with pytest.raises(SpecError, match="did you mean 'binary_classification'"):
        parse_spec({**BASE, "task": "binary_clasification"})
    with pytest.raises(SpecError, match="did you mean 'accuracy'"):
        parse_spec({**BASE, "metrics": ["acuracy"]})


def _spec():
    return parse_spec(
        {
            **BASE,
            "score_bins": 20,
            "calibration_bins": 2,
            "confidence": {"buckets": 8, "score_bins": 10},
        }
    )


def test_threshold_family_parses_rows_into_buckets_and_sums_them_for_the_point():
    # Two rows of slice 0, version 0: bucket 0 (label 1, above) x3, bucket 1 (label 0, below)
    # x2; one unlabeled row count of 4 in bucket 1; one row of no configured slice (g = -1).
    table = pa.table(
        {
            "label": pa.array([1, 0, None, 1], pa.int64()),
            "n": [3, 2, 4, 100],
            "bucket": [0, 1, 1, 0],
            "above": [1, 0, 0, 1],
            "log_loss_sum": [0.3, 0.2, None, 9.0],
            "squared_error_sum": [0.03, 0.02, None, 9.0],
        }
    )
    index = RowIndex(np.array([0, 0, 0, -1]), np.array([0, 0, 0, 0]), groups=1, versions=1)
    data = THRESHOLD.parse(table, index, _spec())
    assert data.count[0, 0, 0, 1, 1] == 3 and data.count[0, 0, 1, 0, 0] == 2
    assert data.count.sum() == 5 and data.unlabeled[0, 0].tolist() == [0, 4, 0, 0, 0, 0, 0, 0]
    point = THRESHOLD.point(data)
    assert point.count[0, 0].tolist() == [[2, 0], [0, 3]]
    assert point.log_loss_sum[0, 0].tolist() == pytest.approx([0.2, 0.3])


def test_threshold_reweight_draws_each_bucket_as_often_as_its_weight():
    count = np.zeros((1, 1, 2, 2, 2))
    count[0, 0, 0, 1, 1] = 3  # bucket 0: 3 true positives
    count[0, 0, 1, 0, 0] = 2  # bucket 1: 2 true negatives
    data = ThresholdBuckets(count, np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), None)
    weights = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # [B, K]
    replicates = THRESHOLD.reweight(data, weights)
    assert replicates.count.shape == (1, 1, 3, 2, 2)
    assert replicates.count[0, 0, :, 1, 1].tolist() == [6, 0, 3]
    assert replicates.count[0, 0, :, 0, 0].tolist() == [0, 4, 2]


def test_histogram_family_coarsens_redraws_and_pairs_joint_cells():
    count = np.arange(40, dtype=float).reshape(1, 1, 2, 20)
    count[0, 0, 0, :2] = [1, 0]  # first coarse cell: 1 row
    data = ScoreHistogram(count, count * 0.5, calibration_bins=2)
    coarse = HISTOGRAM.coarsen(data, _spec())
    assert coarse.count[0, 0, 0, :4].tolist() == [1, 5, 9, 13]  # pairs of adjacent fine bins
    drawn = HISTOGRAM.redraw(coarse, np.array([0]), 7, np.random.default_rng(0))
    assert drawn.count.shape == (1, 1, 7, 2, 10)
    # A score sum is redrawn with its cell: the mean score of a drawn cell (0.5) is kept.
    occupied = drawn.count > 0
    np.testing.assert_allclose(drawn.score_sum[occupied] / drawn.count[occupied], 0.5)
    assert (drawn.count == np.rint(drawn.count)).all()
    # Joint cells [g, y, a, b]: 2 requests with the baseline in bin 0 and the candidate in
    # bin 1, one negative in bins (1, 1).
    joint = np.zeros((1, 2, 2, 2))
    joint[0, 1, 0, 1] = 2
    joint[0, 0, 1, 1] = 1
    paired = PairedCells(np.zeros((1, 3)), joint, joint * 0.4, joint * 0.7)
    baseline, candidate = HISTOGRAM.joint_point(paired, _spec())
    assert baseline.count[0].tolist() == [[0, 1], [2, 0]]
    assert candidate.count[0].tolist() == [[0, 1], [0, 2]]
    assert candidate.score_sum[0, 1].tolist() == pytest.approx([0, 1.4])


def test_the_report_says_how_each_metric_was_resampled_from_the_registry():
    spec = parse_spec({**BASE, "metrics": ["recall", "ece", "roc_auc"]})
    note = intervals_note(spec)
    assert "over 64 resample buckets (paired across versions) for Recall;" in note
    assert "over histogram cells (deltas paired through joint cells of both versions) for " in note
    assert "Expected calibration error, ROC AUC." in note
    assert "ROC AUC use 1000 score bins" in note  # only the metric with an error bound
