"""Coverage simulation: 95% intervals cover the true value in 93-97% of repeats.

Data come from a binormal model with known truth: ``y ~ Bernoulli(pi)``, score
``sigmoid(a + b y + e)`` with ``e ~ N(0, 1)``. Then (threshold 0.5, i.e. logit 0)
recall = Phi(a + b), false-positive rate = Phi(a), ROC AUC = Phi(b / sqrt 2), and Brier and
log loss are one-dimensional integrals (scipy.integrate.quad). Each repeat is an independent
sample, evaluated as one slice of a single window, so one engine run yields every interval.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from support.data import WEEK_START, write_warehouse

from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec

PI, A, B = 0.3, -1.0, 2.0
REPEATS, N = 1000, 1000


def truth() -> dict[str, float]:
    phi = stats.norm.cdf
    tpr, fpr = phi(A + B), phi(A)

    def expect(function, y):
        return integrate.quad(
            lambda e: function(1 / (1 + np.exp(-(A + B * y + e))), y) * stats.norm.pdf(e),
            -12,
            12,
        )[0]

    def brier(s, y):
        return (s - y) ** 2

    def log_loss(s, y):
        return -np.log(s) if y == 1 else -np.log(1 - s)

    return {
        "recall": tpr,
        "accuracy": PI * tpr + (1 - PI) * (1 - fpr),
        "precision": PI * tpr / (PI * tpr + (1 - PI) * fpr),
        "roc_auc": phi(B / np.sqrt(2)),
        "brier": PI * expect(brier, 1) + (1 - PI) * expect(brier, 0),
        "log_loss": PI * expect(log_loss, 1) + (1 - PI) * expect(log_loss, 0),
    }


@pytest.mark.slow
def test_95_percent_intervals_cover_the_truth(tmp_path):
    rng = np.random.default_rng(2024)
    total = REPEATS * N
    y = (rng.random(total) < PI).astype(int)
    score = 1 / (1 + np.exp(-(A + B * y + rng.normal(size=total))))
    ids = np.array([f"c{i:08d}" for i in range(total)])
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, total), unit="s")
    predictions = pd.DataFrame(
        {
            "prediction_id": ids,
            "ts": ts,
            "model_version": "v1",
            "score": score,
            "repeat": np.repeat(np.arange(REPEATS), N).astype(str),
        }
    )
    labels = pd.DataFrame({"prediction_id": ids, "label": y, "labeled_at": ts})
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = parse_spec(
        {
            "model": "coverage",
            "warehouse": url,
            "predictions": {"table": "inference_logs"},
            "labels": {"table": "labels"},
            "slices": ["repeat"],
            "min_slice_size": 1,
            "metrics": list(truth()),
        }
    )
    metrics = evaluate(spec, WEEK_START.date().isoformat()).metrics
    repeats = metrics[metrics["slice"] != "overall"]
    coverage = {}
    for metric, true_value in truth().items():
        rows = repeats[repeats["metric"] == metric]
        assert len(rows) == REPEATS
        covered = (rows["ci_low"] <= true_value) & (true_value <= rows["ci_high"])
        coverage[metric] = covered.mean()
    print(coverage)
    for metric, share in coverage.items():
        assert 0.93 <= share <= 0.97, (metric, share, coverage)
