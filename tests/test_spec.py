"""Spec validation: every error names the key path and what was expected."""

import json
from datetime import timedelta

import pytest
import yaml

from eval_pipelines.errors import SpecError
from eval_pipelines.spec import load_spec, parse_spec

DEMO = "evals/fraud_detector.yaml"


def demo_raw() -> dict:
    with open(DEMO) as handle:
        return yaml.safe_load(handle)


def error_of(raw) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(raw, source="spec.yaml")
    return str(info.value)


def test_demo_spec_loads_with_the_documented_shape():
    spec = load_spec(DEMO)
    assert spec.model == "fraud_detector"
    assert spec.slice_crosses[0] == ()
    assert ("country", "device") in spec.slice_crosses
    assert spec.labels.max_delay.days == 14
    assert [type(g).__name__ for g in spec.parsed_gates] == [
        "MetricGate",
        "MetricGate",
        "DriftGate",
    ]


def test_a_spec_recorded_in_run_json_loads_again_with_the_same_hash(tmp_path):
    """run.json records the spec as JSON, durations in ISO 8601 (``P14D``, ``PT36H``): that
    record, written back as a spec file, loads to the same spec."""
    raw = demo_raw()
    raw["labels"]["max_delay"] = "36h"
    raw["validation"] = {"max_staleness": "90m"}
    spec = parse_spec(raw, source="spec.yaml")
    recorded = json.loads(spec.model_dump_json(exclude={"warehouse_template", "base_dir"}))
    assert recorded["labels"]["max_delay"] == "P1DT12H"
    path = tmp_path / "recorded.yaml"
    path.write_text(yaml.safe_dump(recorded))
    again = load_spec(path)
    assert again.labels.max_delay == timedelta(hours=36)
    assert again.validation.max_staleness == timedelta(minutes=90)
    assert again.fingerprint() == spec.fingerprint()
    assert "expected a duration" in error_of({**raw, "labels": {**raw["labels"], "max_delay": "P"}})


def test_unknown_key_suggests_the_close_one():
    raw = demo_raw()
    raw["confidnce"] = raw.pop("confidence")
    message = error_of(raw)
    assert "confidnce: unknown key; did you mean 'confidence'?" in message


def test_nested_unknown_key_names_the_full_path():
    raw = demo_raw()
    raw["predictions"]["scor"] = "score"
    assert "predictions.scor: unknown key; did you mean 'score'?" in error_of(raw)


def test_missing_required_key():
    raw = demo_raw()
    del raw["predictions"]
    assert "predictions: required key is missing" in error_of(raw)


def test_unknown_metric_is_named_with_suggestion():
    raw = demo_raw()
    raw["metrics"] = ["accuracy", "recal"]
    message = error_of(raw)
    assert "metrics" in message and "'recal'" in message and "did you mean 'recall'" in message


def test_gate_errors_name_the_gate_index():
    raw = demo_raw()
    raw["gates"].append({"metric": "roc_acu", "min": 0.5})
    message = error_of(raw)
    assert "gates.3.metric" in message and "did you mean 'roc_auc'" in message


def test_drift_gate_bound_must_fit_the_method():
    raw = demo_raw()
    raw["gates"] = [{"drift": "ks", "max": 0.1}]
    assert "give 'min_p_value'" in error_of(raw)


def test_identifiers_cannot_carry_sql():
    raw = demo_raw()
    raw["predictions"]["score"] = "score; DROP TABLE labels"
    message = error_of(raw)
    assert "predictions.score" in message and "not a plain column or table name" in message


def test_slice_cross_repeating_a_column_is_rejected():
    raw = demo_raw()
    raw["slices"] = [["country", "country"]]
    assert "repeats a column" in error_of(raw)


def test_duration_format():
    raw = demo_raw()
    raw["labels"]["max_delay"] = "two weeks"
    assert "labels.max_delay" in error_of(raw) and "14d" in error_of(raw)


def test_environment_variables_are_expanded_and_not_hashed(monkeypatch):
    raw = demo_raw()
    raw["warehouse"] = "postgresql://eval:${EVAL_TEST_PASSWORD}@localhost/warehouse"
    monkeypatch.setenv("EVAL_TEST_PASSWORD", "s3cret-canary")
    spec = parse_spec(raw)
    assert "s3cret-canary" in spec.warehouse
    monkeypatch.setenv("EVAL_TEST_PASSWORD", "another")
    assert parse_spec(raw).fingerprint() == spec.fingerprint()
    monkeypatch.delenv("EVAL_TEST_PASSWORD")
    assert "environment variable EVAL_TEST_PASSWORD is not set" in error_of(raw)


def test_invalid_yaml_reports_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: x\npredictions: [unclosed\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "invalid YAML at line" in str(info.value)


def test_calibration_bins_must_nest_in_resample_bins():
    raw = demo_raw()
    raw["calibration_bins"] = 7
    assert "multiple of calibration_bins" in error_of(raw)
