"""The multiclass metric functions on hand-built statistics, against scikit-learn, and the
registry's parametric names as the spec, gates and hints see them."""

import numpy as np
import pytest
from sklearn import metrics as skm
from support.data import base_spec

from eval_pipelines.errors import SpecError
from eval_pipelines.spec import parse_spec
from eval_pipelines.stats import multiclass as multiclass_stats
from eval_pipelines.stats.multiclass import CONFUSION, ConfusionBuckets, ConfusionStats
from eval_pipelines.tasks import metric_of, task_named
from eval_pipelines.tasks import multiclass as mc

CLASSES = ("a", "b", "c")


def confusion_of(y: np.ndarray, p: np.ndarray, C: int = 3) -> np.ndarray:
    count = np.zeros((C, C))
    np.add.at(count, (y, p), 1)
    return count


def stats_of(y, p) -> ConfusionStats:
    return ConfusionStats(CLASSES, confusion_of(y, p), np.zeros(3), np.zeros(()))


def test_confusion_metrics_equal_sklearn_with_a_class_never_predicted():
    y = np.array([0, 0, 1, 1, 1, 2, 2, 0, 1, 2])
    p = np.array([0, 1, 1, 1, 0, 1, 0, 0, 1, 1])  # class c never predicted: precision 0
    stats = stats_of(y, p)
    labels = [0, 1, 2]
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y, p, labels=labels, zero_division=0
    )
    np.testing.assert_allclose(mc.class_precision(stats), precision, rtol=1e-12)
    np.testing.assert_allclose(mc.class_recall(stats), recall, rtol=1e-12)
    np.testing.assert_allclose(mc.class_f1(stats), f1, rtol=1e-12)
    assert mc.accuracy(stats) == pytest.approx(skm.accuracy_score(y, p), rel=1e-12)
    assert mc.balanced_accuracy(stats) == pytest.approx(
        skm.balanced_accuracy_score(y, p), rel=1e-12
    )
    for average in ("macro", "micro", "weighted"):
        expected = skm.f1_score(y, p, labels=labels, average=average, zero_division=0)
        assert getattr(mc, f"{average}_f1")(stats) == pytest.approx(expected, rel=1e-12)
    assert mc.macro_precision(stats) == pytest.approx(
        skm.precision_score(y, p, labels=labels, average="macro", zero_division=0), rel=1e-12
    )


def test_a_class_absent_from_labels_and_predictions_counts_zero_in_macro_means():
    y = np.array([0, 1, 0, 1])
    p = np.array([0, 1, 1, 1])
    stats = stats_of(y, p)  # class c: no label, no prediction
    expected = skm.f1_score(y, p, labels=[0, 1, 2], average="macro", zero_division=0)
    assert mc.macro_f1(stats) == pytest.approx(expected, rel=1e-12)
    # balanced accuracy averages only the classes with labels, as scikit-learn
    assert mc.balanced_accuracy(stats) == pytest.approx(skm.balanced_accuracy_score(y, p))


def test_an_empty_slice_is_undefined_not_zero():
    empty = ConfusionStats(CLASSES, np.zeros((3, 3)), np.zeros(3), np.zeros(()))
    for function in (mc.accuracy, mc.macro_f1, mc.weighted_f1, mc.balanced_accuracy):
        assert np.isnan(function(empty))
    assert np.isnan(mc.class_precision(empty)).all()


def test_top_k_and_log_loss_from_ranks_and_sums():
    ranks = np.array([5.0, 3.0, 2.0])  # 5 rows ranked 1st, 3 second, 2 third
    stats = ConfusionStats(CLASSES, np.diag([4.0, 3.0, 3.0]), ranks, np.array(2.5))
    assert mc.top_k_accuracy(stats, 2) == pytest.approx(0.8)
    assert mc.top_k_accuracy(stats, 3) == 1.0
    assert mc.log_loss(stats) == pytest.approx(0.25)


def test_a_bucket_replicate_is_the_metric_on_the_drawn_buckets_rows():
    rng = np.random.default_rng(0)
    K = 8
    count = rng.integers(0, 5, (1, 1, K, 3, 3)).astype(float)
    data = ConfusionBuckets(
        CLASSES, count, np.zeros((1, 1, K, 3)), np.zeros((1, 1, K)), np.zeros((1, 1, K))
    )
    weights = rng.multinomial(K, np.full(K, 1 / K), size=5).astype(float)
    replicates = CONFUSION.reweight(data, weights)
    for b in range(5):
        drawn = (weights[b][:, None, None] * count[0, 0]).sum(0)
        manual = ConfusionStats(CLASSES, drawn, np.zeros(3), np.zeros(()))
        assert mc.macro_f1(replicates)[0, 0, b] == pytest.approx(mc.macro_f1(manual), rel=1e-12)


def test_parametric_names_resolve_in_the_registry():
    task = task_named("multiclass_classification")
    assert task.metric("recall.cat").title == "Recall of class cat"
    assert task.metric("top_5_accuracy").higher_is_better
    assert metric_of("multiclass_classification", "f1.a").family is CONFUSION
    with pytest.raises(ValueError, match=r"did you mean 'top_<k>_accuracy'\?"):
        task.metric("top_k_accuracy")
    with pytest.raises(ValueError, match="unknown metric 'top_1_accuracy'"):
        task.metric("top_1_accuracy")  # that is accuracy
    with pytest.raises(ValueError, match=r"unknown metric 'recall\.cat' for task 'binary"):
        metric_of("binary_classification", "recall.cat")


def spec_with(**overrides) -> dict:
    predictions = {
        "table": "inference_logs",
        "prediction": "predicted",
        "class_scores": {"cat": "p_cat", "dog": "p_dog", "fox": "p_fox"},
    }
    overrides.setdefault("predictions", predictions)
    return base_spec("duckdb:///w.duckdb", task="multiclass_classification", **overrides)


def test_a_gate_on_a_per_class_metric_is_accepted():
    spec = parse_spec(
        spec_with(
            metrics=["accuracy", "recall.dog", "top_2_accuracy"],
            gates=[{"metric": "recall.dog", "max_regression": 0.02}],
        )
    )
    assert spec.metric_gates[0].metric == "recall.dog"
    assert parse_spec(spec_with()).metrics[-3:] == ["log_loss", "roc_auc_ovr", "top_2_accuracy"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"metrics": ["recall.dgo"]},
            r"metrics: 'recall.dgo' names no declared class \(did you mean 'recall.dog'\?\)",
        ),
        (
            {"classes": ["cat", "dog", "fox", "owl"]},
            r"predictions.class_scores: has no column for class 'owl'",
        ),
        (
            {
                "classes": [f"c{i}" for i in range(51)],
                "predictions": {"table": "t", "prediction": "predicted"},
            },
            r"classes: 51 classes declared; task 'multiclass_classification' takes at most 50",
        ),
        (
            {"predictions": {"table": "t", "prediction": "predicted"}},
            r"classes: task 'multiclass_classification' needs its class set",
        ),
        (
            {
                "classes": ["cat", "dog"],
                "predictions": {"table": "t", "prediction": "predicted"},
                "metrics": ["log_loss"],
            },
            r"metrics: 'log_loss' needs predictions.class_scores",
        ),
        (
            {"gates": [{"metric": "recal.dog", "min": 0.5}]},
            r"unknown metric 'recal.dog'",
        ),
    ],
)
def test_bad_multiclass_specs_fail_with_one_sentence(overrides, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(spec_with(**overrides))


def test_bootstrap_chunks_do_not_change_the_deviations(monkeypatch):
    """Slice groups drawn a chunk at a time (bounded memory) give the numbers of one draw."""
    spec = parse_spec(spec_with())
    rng = np.random.default_rng(1)
    K = spec.confidence.buckets
    shape = (5, 2, K)
    data = ConfusionBuckets(
        CLASSES,
        rng.integers(0, 4, (*shape, 3, 3)).astype(float),
        np.zeros((*shape, 3)),
        np.zeros(shape),
        np.zeros(shape),
    )
    functions = {"macro_f1": mc.macro_f1, "accuracy": mc.accuracy}
    whole = CONFUSION.bootstrap.deviations(CONFUSION, data, functions, spec)
    monkeypatch.setattr(multiclass_stats, "REPLICATE_NUMBERS_PER_CHUNK", 1)
    chunked = CONFUSION.bootstrap.deviations(CONFUSION, data, functions, spec)
    for name in functions:
        assert whole[name].shape == (5, 2, spec.confidence.replicates)
        np.testing.assert_array_equal(whole[name], chunked[name])
