"""Bad multiclass input fails the input checks with one sentence naming the spec key and the
column: an undeclared class, a column with more distinct classes than declared, a class score
outside [0, 1], a class score column that does not exist."""

import re

import duckdb
import numpy as np
import pytest
from support.data import WEEK, write_warehouse
from test_multiclass_oracle import multiclass_spec, multiclass_window

from eval_pipelines.errors import ValidationFailed
from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec

DECLARED = "the declared classes (bird, cat, dog, fox; at most 50)"


def failure(tmp_path, statements: list[str], **overrides) -> str:
    predictions, labels = multiclass_window(np.random.default_rng(3), 400)
    path = tmp_path / "w.duckdb"
    url = write_warehouse(path, predictions, labels)
    con = duckdb.connect(str(path))
    for statement in statements:
        con.execute(statement)
    con.close()
    with pytest.raises(ValidationFailed) as info:
        evaluate(parse_spec(multiclass_spec(url, **overrides)), WEEK)
    return str(info.value)


def test_an_undeclared_label_and_prediction_name_their_columns(tmp_path):
    message = failure(
        tmp_path,
        [
            "UPDATE labels SET label = 'wolf' WHERE prediction_id IN "
            "(SELECT prediction_id FROM labels ORDER BY prediction_id LIMIT 3)",
            "UPDATE inference_logs SET predicted = 'owl' WHERE model_version = 'v2' "
            "AND prediction_id IN ('r0000001', 'r0000002')",
        ],
    )
    # Of the three, the labels that arrived within max_delay are the ones checked.
    pattern = r"labels\.label: [1-3] labels joined to version 'v1' are not one of "
    assert re.search(pattern + re.escape(DECLARED) + r" \(e\.g\. 'wolf'\)", message)
    assert (
        "predictions.prediction: 2 rows of version 'v2' have a 'predicted' that is not one of "
        f"{DECLARED} (e.g. 'owl')"
    ) in message


def test_a_column_with_more_distinct_classes_than_declared_fails(tmp_path):
    message = failure(
        tmp_path,
        [
            "UPDATE inference_logs SET predicted = 'c' || "
            "CAST(CAST(SUBSTR(prediction_id, 2) AS INTEGER) % 60 AS VARCHAR) "
            "WHERE model_version = 'v1'"
        ],
    )
    assert "predictions.prediction: 400 rows of version 'v1' have a 'predicted' that is not" in (
        message
    )


def test_a_class_score_outside_the_unit_interval_names_its_key(tmp_path):
    message = failure(
        tmp_path,
        ["UPDATE inference_logs SET p_cat = 1.5 WHERE prediction_id = 'r0000004'"],
    )
    assert (
        "predictions.class_scores.cat: 1 rows of version 'v1' have a 'p_cat' that is NaN or "
        in (message)
    )


def test_a_missing_class_score_column_is_named(tmp_path):
    message = failure(tmp_path, ["ALTER TABLE inference_logs DROP COLUMN p_fox"])
    assert "predictions.class_scores.fox" in message and "'p_fox'" in message


def test_a_text_class_score_and_a_float_label_are_refused_by_type(tmp_path):
    message = failure(
        tmp_path,
        [
            "ALTER TABLE inference_logs ALTER p_dog TYPE VARCHAR",
            "CREATE OR REPLACE TABLE labels AS "
            "SELECT prediction_id, CAST(1.5 AS DOUBLE) AS label, labeled_at FROM labels",
        ],
    )
    assert (
        "predictions.class_scores.dog: column 'p_dog' in table 'inference_logs' has type VARCHAR; "
        "expected a numeric column (a probability in [0, 1])"
    ) in message
    assert (
        "labels.label: column 'label' in table 'labels' has type DOUBLE; expected a text or "
        "integer column holding one of the declared classes"
    ) in message
