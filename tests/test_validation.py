"""Input checks: what blocks a run, what only warns, and the counts they report."""

import numpy as np
import pandas as pd
from support.data import WEEK, base_spec, random_window, write_warehouse

from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec


def test_labels_before_predictions_and_late_labels_are_counted(tmp_path):
    rng = np.random.default_rng(21)
    predictions, labels = random_window(rng, 1500, unlabeled=0.0)
    first = predictions.drop_duplicates("prediction_id").set_index("prediction_id")["ts"]
    ts = labels["prediction_id"].map(first)
    early = rng.random(len(labels)) < 0.05
    labels.loc[early, "labeled_at"] = ts[early] - pd.Timedelta(hours=1)
    late = (labels["labeled_at"] > ts + pd.Timedelta(days=14)) & ~early
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)

    result = evaluate(parse_spec(base_spec(url)), WEEK)

    warnings = [r for r in result.validation.results if r.name == "labels_after_predictions"]
    assert [w.blocking or w.passed for w in warnings] == [False, False]
    for warning, version in zip(warnings, ("v1", "v2"), strict=True):
        assert f"{int(early.sum())} labels of version {version!r}" in warning.message
    assert result.validation.passed  # a warning, not a blocking failure
    per_version = {r["model_version"]: r for r in result.validation.per_version}
    assert per_version["v2"]["n_label_before_prediction"] == early.sum()
    assert per_version["v2"]["n_label_too_late"] == late.sum()
    assert per_version["v2"]["n_labeled"] == len(labels) - early.sum() - late.sum()
