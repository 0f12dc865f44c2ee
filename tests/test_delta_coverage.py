"""Coverage of paired delta intervals (candidate - baseline) with a known true difference.

Two correlated models score the same requests: logit_A = a + bA*y + e1 and
logit_B = a + bB*y + r*e1 + sqrt(1 - r^2)*e2, with e1, e2 ~ N(0, 1). Then
AUC_X = Phi(bX / sqrt 2) and recall_X = Phi(a + bX), so the true deltas are known. Each
repeat is one slice of one window; the intervals of all repeats come from one engine run.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from support.data import WEEK_START, write_warehouse

from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec

PI, A, B_BASE, B_CAND, RHO = 0.3, -1.0, 1.8, 2.1, 0.8
REPEATS, N = 600, 2000


@pytest.mark.slow
def test_paired_delta_intervals_cover_the_true_difference(tmp_path):
    rng = np.random.default_rng(77)
    total = REPEATS * N
    y = (rng.random(total) < PI).astype(int)
    e1, e2 = rng.normal(size=total), rng.normal(size=total)
    logits = {
        "v1": A + B_BASE * y + e1,
        "v2": A + B_CAND * y + RHO * e1 + np.sqrt(1 - RHO**2) * e2,
    }
    ids = np.array([f"d{i:08d}" for i in range(total)])
    ts = WEEK_START + pd.to_timedelta(rng.integers(0, 7 * 86400, total), unit="s")
    repeat = np.repeat(np.arange(REPEATS), N).astype(str)
    predictions = pd.concat(
        [
            pd.DataFrame(
                {
                    "prediction_id": ids,
                    "ts": ts,
                    "model_version": version,
                    "score": 1 / (1 + np.exp(-logit)),
                    "repeat": repeat,
                }
            )
            for version, logit in logits.items()
        ],
        ignore_index=True,
    )
    labels = pd.DataFrame({"prediction_id": ids, "label": y, "labeled_at": ts})
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = parse_spec(
        {
            "model": "delta_coverage",
            "warehouse": url,
            "predictions": {"table": "inference_logs"},
            "labels": {"table": "labels"},
            "slices": ["repeat"],
            "min_slice_size": 1,
            "metrics": ["recall", "roc_auc"],
            "compare": {"baseline": "v1", "candidate": "v2"},
        }
    )
    comparison = evaluate(spec, WEEK_START.date().isoformat()).comparison
    phi = stats.norm.cdf
    truth = {
        "recall": phi(A + B_CAND) - phi(A + B_BASE),
        "roc_auc": phi(B_CAND / np.sqrt(2)) - phi(B_BASE / np.sqrt(2)),
    }
    coverage = {}
    for metric, delta in truth.items():
        rows = comparison[(comparison["metric"] == metric) & (comparison["slice"] != "overall")]
        assert len(rows) == REPEATS
        coverage[metric] = (
            (rows["delta_ci_low"] <= delta) & (delta <= rows["delta_ci_high"])
        ).mean()
    print(coverage)
    for metric, share in coverage.items():
        assert 0.93 <= share <= 0.97, (metric, share, coverage)
