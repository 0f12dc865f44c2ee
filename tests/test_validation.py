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


def test_checks_without_temporary_tables_read_the_sources(tmp_path):
    """Without a materialised window (a warehouse that refuses temporary tables), the checks
    join and semi-join the sources themselves, with the same findings: here the one
    prediction id planted with three labels."""
    from eval_pipelines.sqlbuild import SqlBuilder
    from eval_pipelines.validation import validate_window
    from eval_pipelines.warehouse import Warehouse
    from eval_pipelines.windows import week_window

    rng = np.random.default_rng(5)
    predictions, labels = random_window(rng, 400, unlabeled=0.0)
    extra = labels.iloc[[7, 7]]
    labels = pd.concat([labels, extra], ignore_index=True)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = parse_spec(base_spec(url))
    with Warehouse(spec.warehouse) as warehouse:
        report, builder = validate_window(
            spec, week_window(WEEK), warehouse, SqlBuilder(spec, warehouse.dialect)
        )
    assert builder.window_table is None
    unique = [r for r in report.results if r.name == "labels_unique"]
    assert [r.passed for r in unique] == [False]
    assert unique[0].message.startswith("labels.id: 1 prediction ids in the window have more")
