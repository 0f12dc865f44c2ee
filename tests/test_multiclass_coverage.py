"""Coverage simulation for the multiclass task: 95% intervals of accuracy, balanced accuracy
and macro F1 cover the population value in 93-97% of independent repeats.

Model: C = 3 equiprobable classes; the prediction is the true class with probability Q and
each other class with probability (1 - Q) / (C - 1). By symmetry every class's precision and
recall is Q, so the population accuracy, balanced accuracy and macro F1 are all exactly Q.
Each repeat is an independent sample of N rows in its own slice (one engine run yields every
interval), through the engine's DuckDB aggregate and bucket bootstrap (input checks skipped:
``support.coverage.engine_tables``), with 1000 replicates as in test_interval_coverage.

With REPEATS = 1500, coverage's acceptance band (false-alarm rate 0.2%) is [93.2%, 96.7%]
and each tail's [1.3%, 3.8%]. Measured with data seeds 1, 2, 3: coverage 94.1-95.3% for the
three metrics, each tail 2.0-3.1%.

The class-score metrics (``roc_auc_ovr``, ``log_loss``, ``top_2_accuracy``) are checked on a
second model, scores ``softmax(MU * onehot(y) + N(0, I))``, against population values from a
2,000,000-row sample (their Monte Carlo error, below 0.001, is a tenth of one repeat's
standard error). ``roc_auc_ovr`` is the mean of C correlated one-vs-rest AUCs: drawing each
class's histogram cells independently (a Poisson draw per cell, as the binary ROC AUC's cell
bootstrap) ignored that correlation and covered 86.8% (above the truth 7.9%, below 5.3%);
drawing resample buckets, which keep a row's classes together, covers 94.4%, 95.1%, 94.5%
(data seeds 1, 2, 3; 1500 repeats of 400 rows, 50 bootstrap bins); log loss and top-2
accuracy 94.0-95.1% there. This test: 1000 repeats of 300 rows, 20 bootstrap bins (coverage
band [92.7%, 97.0%]): 94.4-94.7% for the three.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score, top_k_accuracy_score
from support.coverage import band_failures, engine_tables, miss_rates, report
from support.data import WEEK_START, write_warehouse

from eval_pipelines.spec import parse_spec

C, Q = 3, 0.7
REPEATS, N = 1500, 400
LEVEL, REPLICATES = 0.95, 1000
SEED = 2
METRICS = ["accuracy", "balanced_accuracy", "macro_f1"]


def write_repeats(path, seed: int) -> str:
    rng = np.random.default_rng(seed)
    total = REPEATS * N
    y = rng.integers(0, C, total)
    wrong = rng.random(total) >= Q
    # A wrong prediction is one of the other classes, uniformly.
    predicted = np.where(wrong, (y + rng.integers(1, C, total)) % C, y)
    ids = np.arange(total, dtype=np.int64)
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, total), unit="s")
    predictions = pd.DataFrame(
        {
            "prediction_id": ids,
            "ts": ts,
            "model_version": "v1",
            "predicted": predicted.astype(np.int64),
            "repeat": np.repeat(np.arange(REPEATS, dtype=np.int32), N),
        }
    )
    labels = pd.DataFrame({"prediction_id": ids, "label": y.astype(np.int64), "labeled_at": ts})
    return write_warehouse(path, predictions, labels)


@pytest.mark.slow
def test_95_percent_intervals_of_multiclass_metrics_cover_the_truth(tmp_path):
    url = write_repeats(tmp_path / "w.duckdb", SEED)
    spec = parse_spec(
        {
            "model": "coverage",
            "task": "multiclass_classification",
            "classes": list(range(C)),
            "warehouse": url,
            "predictions": {"table": "inference_logs", "prediction": "predicted"},
            "labels": {"table": "labels"},
            "slices": ["repeat"],
            "min_slice_size": 1,
            "max_slice_values": 100_000,
            "metrics": METRICS,
            "confidence": {"level": LEVEL, "replicates": REPLICATES},
        }
    )
    frame, _ = engine_tables(spec)
    rows = frame[frame["slice"] != "overall"]
    rates = miss_rates(rows, dict.fromkeys(METRICS, Q), "ci_low", "ci_high")
    report("multiclass, 64 buckets", rates)
    assert all(rate["n"] == REPEATS for rate in rates.values())
    failures = band_failures(rates, LEVEL)
    assert not failures, "\n".join(failures)


MU, SCORED_REPEATS, SCORED_N = 1.0, 1000, 300
SCORED_METRICS = ["roc_auc_ovr", "log_loss", "top_2_accuracy"]


def scored_sample(rng: np.random.Generator, total: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, C, total)
    logits = MU * np.eye(C)[y] + rng.normal(0, 1, (total, C))
    scores = np.exp(logits)
    return y, scores / scores.sum(1, keepdims=True)


@pytest.mark.slow
def test_95_percent_intervals_of_class_score_metrics_cover_the_truth(tmp_path):
    y, scores = scored_sample(np.random.default_rng(99), 2_000_000)
    truths = {
        "roc_auc_ovr": roc_auc_score(y, scores, multi_class="ovr"),
        "log_loss": log_loss(y, scores),
        "top_2_accuracy": top_k_accuracy_score(y, scores, k=2),
    }
    rng = np.random.default_rng(SEED)
    total = SCORED_REPEATS * SCORED_N
    y, scores = scored_sample(rng, total)
    ids = np.arange(total, dtype=np.int64)
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, total), unit="s")
    predictions = pd.DataFrame(
        {
            "prediction_id": ids,
            "ts": ts,
            "model_version": "v1",
            "predicted": scores.argmax(1).astype(np.int64),
            "repeat": np.repeat(np.arange(SCORED_REPEATS, dtype=np.int32), SCORED_N),
        }
    )
    for c in range(C):
        predictions[f"p{c}"] = scores[:, c]
    labels = pd.DataFrame({"prediction_id": ids, "label": y.astype(np.int64), "labeled_at": ts})
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = parse_spec(
        {
            "model": "coverage",
            "task": "multiclass_classification",
            "warehouse": url,
            "predictions": {
                "table": "inference_logs",
                "prediction": "predicted",
                "class_scores": {c: f"p{c}" for c in range(C)},
            },
            "labels": {"table": "labels"},
            "slices": ["repeat"],
            "min_slice_size": 1,
            "max_slice_values": 100_000,
            "metrics": SCORED_METRICS,
            "confidence": {"level": LEVEL, "replicates": REPLICATES, "score_bins": 20},
        }
    )
    frame, _ = engine_tables(spec)
    rows = frame[frame["slice"] != "overall"]
    rates = miss_rates(rows, truths, "ci_low", "ci_high")
    report("multiclass class scores, 64 buckets", rates)
    assert all(rate["n"] == SCORED_REPEATS for rate in rates.values())
    failures = band_failures(rates, LEVEL)
    assert not failures, "\n".join(failures)
