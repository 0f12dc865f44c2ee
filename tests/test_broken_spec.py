"""One broken spec breaks one model, not the code location (issue 9, item 4).

A specs folder holds one good spec and three broken ones (a YAML syntax error, an unknown key
next to a ``${VAR}`` warehouse password, an unset ``${VAR}``). The definitions load with the
good model's assets, job, schedule and registry sensor; each broken file is a
``<stem>/spec_error`` asset whose ``spec_loads`` check fails with the engine's SpecError
message, and a warning names it. The password never shows up in any of that.
"""

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    Definitions,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,
)
from support.mlflow_store import migrated_store

from assets.definitions import build_definitions
from assets.spec_errors import CHECK_NAME, ERROR_ASSET, SENSOR_NAME
from assets.specs import PROJECT_ROOT, load_specs, redact, scan_specs
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.errors import SpecError
from eval_pipelines.spec import load_spec

WEEK = "2026-11-16"  # a demo week with four reference weeks before it
CANARY = "Canary-9b1e-pw"
PASSWORD_VAR = "EVAL_TEST_WAREHOUSE_PASSWORD"
UNSET_VAR = "EVAL_TEST_NEVER_SET"

GOOD = """\
model: good-model
warehouse: duckdb:///{warehouse}
predictions: {{table: inference_logs}}
labels: {{table: labels, max_delay: 14d}}
slices: [device]
metrics: [recall, roc_auc]
compare: {{baseline: v1, candidate: v2}}
drift: {{reference_weeks: 4, features: [amount]}}
gates:
  - {{metric: roc_auc, slice: overall, min: 0.5}}
"""
SYNTAX = "model: syntax\npredictions: {table: inference_logs\nlabels: [\n"
UNKNOWN_KEY = f"""\
model: unknown-key
warehouse: postgresql://evaluser:${{{PASSWORD_VAR}}}@127.0.0.1:1/warehouse
predictions: {{table: inference_logs}}
labels: {{table: labels}}
metrik: [roc_auc]
"""
UNSET = f"""\
model: unset
warehouse: postgresql://evaluser:${{{UNSET_VAR}}}@127.0.0.1:1/warehouse
predictions: {{table: inference_logs}}
labels: {{table: labels}}
"""
BROKEN = {"syntax": SYNTAX, "unknown-key": UNKNOWN_KEY, "unset": UNSET}
ERROR_KEYS = {
    "syntax": AssetKey(["syntax", ERROR_ASSET]),
    "unknown-key": AssetKey(["unknown_key", ERROR_ASSET]),
    "unset": AssetKey(["unset", ERROR_ASSET]),
}
GOOD_KEYS = {
    AssetKey(["good_model", name])
    for name in ("window", "metrics", "comparison", "drift", "verdict", "report")
}


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"
    build_demo_warehouse(path, rows=40_000)
    return path


@pytest.fixture
def specs_folder(tmp_path, warehouse_path, monkeypatch) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "good.yaml").write_text(GOOD.format(warehouse=warehouse_path))
    for stem, text in BROKEN.items():
        (folder / f"{stem}.yaml").write_text(text)
    monkeypatch.setenv("EVAL_SPECS_DIR", str(folder))
    monkeypatch.setenv(PASSWORD_VAR, CANARY)
    monkeypatch.delenv(UNSET_VAR, raising=False)
    return folder


def _engine_message(path: Path) -> str:
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    return str(raised.value)


def test_the_engine_messages_are_the_ones_expected(specs_folder):
    """The three files fail for the reasons the test is about (not by accident)."""
    assert "invalid YAML at line" in _engine_message(specs_folder / "syntax.yaml")
    unknown = _engine_message(specs_folder / "unknown-key.yaml")
    assert "metrik: unknown key; did you mean 'metrics'?" in unknown
    assert f"environment variable {UNSET_VAR} is not set" in _engine_message(
        specs_folder / "unset.yaml"
    )
    with pytest.raises(SpecError):
        load_specs(specs_folder)  # the strict form still stops at the first problem


def test_definitions_load_with_the_good_model_and_one_error_asset_per_broken_spec(
    specs_folder, caplog
):
    with caplog.at_level(logging.WARNING, logger="assets.specs"):
        defs = build_definitions()
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert keys >= GOOD_KEYS
    assert AssetKey(["good_model", "candidate_verdict"]) in keys
    assert {k for k in keys if k.path[-1] == ERROR_ASSET} == set(ERROR_KEYS.values())
    assert not {k for k in keys if k.path[0] in {"syntax", "unknown_key", "unset"}} - set(
        ERROR_KEYS.values()
    )

    checks = {(c.asset_key, c.name): graph.get_check_spec(c) for c in graph.asset_check_keys}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(BROKEN)
    for stem, key in ERROR_KEYS.items():
        message = _engine_message(specs_folder / f"{stem}.yaml")
        node = graph.get(key)
        assert node.group_name == key.path[0]
        assert node.description.endswith(message)
        assert node.metadata["error"].value == message
        assert checks[(key, CHECK_NAME)].blocking
        [warning] = [w for w in warnings if f"{stem}.yaml" in w]
        assert warning.endswith(message)


def test_schedule_and_registry_sensor_serve_the_good_model(specs_folder):
    defs = build_definitions()
    job = defs.resolve_job_def("weekly_evaluation")
    assert set(job.graph.node_dict) == {"good_model__weekly_evaluation"}
    schedule = defs.resolve_schedule_def("weekly_evaluation_schedule")
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 23, 6, 0, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    requests = schedule.evaluate_tick(context).run_requests
    assert WEEK in [r.partition_key for r in requests]
    sensor = defs.resolve_sensor_def("mlflow_registry_sensor")
    assert [target.job_name for target in sensor.targets] == ["good_model__candidate_evaluation"]


def test_the_good_model_materializes_a_week_and_the_errors_fail_with_their_message(
    specs_folder, warehouse_path, tmp_path, monkeypatch
):
    # The code location's own resources, pointed at the test's warehouse and stores.
    monkeypatch.setenv("EVAL_WAREHOUSE_URL", f"duckdb:///{warehouse_path}")
    monkeypatch.setenv("EVAL_ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", migrated_store(tmp_path / "mlflow.db"))
    monkeypatch.setenv("EVAL_MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "mlartifacts"))
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    with instance_for_test() as instance:
        result = defs.resolve_job_def("weekly_evaluation").execute_in_process(
            partition_key=WEEK, instance=instance
        )
        assert result.success
        materialized = {e.asset_key for e in result.get_asset_materialization_events()}
        assert materialized >= GOOD_KEYS
        assert (tmp_path / "artifacts" / "good-model" / WEEK / "verdict.json").is_file()

        for stem, key in ERROR_KEYS.items():
            message = _engine_message(specs_folder / f"{stem}.yaml")
            failed = materialize(
                [graph.get(key).assets_def], instance=instance, raise_on_error=False
            )
            assert not failed.success
            assert not failed.get_asset_materialization_events()
            [evaluation] = failed.get_asset_check_evaluations()
            assert (evaluation.check_name, evaluation.passed) == (CHECK_NAME, False)
            assert evaluation.description == message
            [failure] = [e for e in failed.all_events if e.is_step_failure]
            assert failure.step_failure_data.user_failure_data.description == message
            text = "\n".join(str(e.message) for e in failed.all_events)
            assert CANARY not in text


def test_the_errors_sensor_turns_the_checks_red_without_a_run_once_per_change(specs_folder):
    defs = build_definitions()
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    with instance_for_test() as instance:
        first = sensor.evaluate_tick(build_sensor_context(instance=instance))
        assert not first.run_requests
        by_key = {e.asset_key: e for e in first.asset_events}
        assert set(by_key) == set(ERROR_KEYS.values())
        for stem, key in ERROR_KEYS.items():
            evaluation = by_key[key]
            assert (evaluation.check_name, evaluation.passed) == (CHECK_NAME, False)
            assert evaluation.description == _engine_message(specs_folder / f"{stem}.yaml")
            assert CANARY not in evaluation.description
        for event in first.asset_events:  # what the sensor daemon does with them
            instance.report_runless_asset_event(event)
        for key in ERROR_KEYS.values():
            [record] = instance.event_log_storage.get_asset_check_execution_history(
                AssetCheckKey(key, CHECK_NAME), limit=1
            )
            assert record.status == AssetCheckExecutionRecordStatus.FAILED
        again = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=first.cursor))
        assert not again.asset_events and "already reported" in again.skip_message

        (specs_folder / "syntax.yaml").write_text("model: [still broken\n")
        changed = build_definitions().resolve_sensor_def(SENSOR_NAME)
        tick = changed.evaluate_tick(build_sensor_context(instance=instance, cursor=first.cursor))
        assert len(tick.asset_events) == len(BROKEN)

    (specs_folder / "syntax.yaml").unlink()
    (specs_folder / "unknown-key.yaml").unlink()
    (specs_folder / "unset.yaml").unlink()
    fixed = build_definitions()
    assert SENSOR_NAME not in {s.name for s in fixed.sensors}
    assert not [
        k for k in fixed.resolve_asset_graph().get_all_asset_keys() if k.path[-1] == ERROR_ASSET
    ]


def test_the_password_never_reaches_the_ui_or_the_log(specs_folder, caplog):
    with caplog.at_level(logging.DEBUG):
        defs = build_definitions()
    graph = defs.resolve_asset_graph()
    shown = [caplog.text]
    for key in ERROR_KEYS.values():
        node = graph.get(key)
        shown += [node.description, str(node.metadata)]
    assert CANARY not in "\n".join(shown)


def test_redact_puts_the_variable_back_and_hides_url_passwords(tmp_path, monkeypatch):
    path = tmp_path / "spec.yaml"
    path.write_text(f"warehouse: postgresql://u:${{{PASSWORD_VAR}}}@host/db\n")
    monkeypatch.setenv(PASSWORD_VAR, CANARY)
    expanded = f"warehouse: cannot use postgresql://u:{CANARY}@host/db"
    assert (
        redact(expanded, path)
        == f"warehouse: cannot use postgresql://u:${{{PASSWORD_VAR}}}@host/db"
    )
    assert redact("see mysql://root:hunter22@db/x", path) == "see mysql://root:***@db/x"
    assert redact("a plain message", tmp_path / "missing.yaml") == "a plain message"


def test_only_broken_specs_still_load(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text(SYNTAX)
    (tmp_path / "a-b.yaml").write_text(SYNTAX)
    (tmp_path / "a_b.yaml").write_text(SYNTAX)
    monkeypatch.setenv("EVAL_SPECS_DIR", str(tmp_path))
    scanned = scan_specs()
    assert scanned.specs == []
    # sorted by file name: a-b.yaml, a.yaml, a_b.yaml
    assert [p.name for p in scanned.problems] == ["a_b", "a", "a_b_2"]
    defs = build_definitions()
    Definitions.validate_loadable(defs)
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert keys == {AssetKey([name, ERROR_ASSET]) for name in ("a", "a_b", "a_b_2")}


def test_a_duplicate_model_name_is_an_error_of_the_second_file(specs_folder, warehouse_path):
    text = GOOD.format(warehouse=warehouse_path)
    (specs_folder / "zz_copy.yaml").write_text(text)
    scanned = scan_specs()
    assert [s.model for s in scanned.specs] == ["good-model"]
    [duplicate] = [p for p in scanned.problems if p.name == "zz_copy"]
    assert "gives the same asset names as" in duplicate.message
    assert str(specs_folder / "good.yaml") in duplicate.message


def test_dagster_definitions_validate_passes_on_the_folder(specs_folder, tmp_path):
    dagster = Path(sys.executable).with_name("dagster")
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "All code locations passed validation" in output
    for stem in BROKEN:
        assert f"{stem}.yaml is not loaded" in output
    assert CANARY not in output


def test_the_code_location_serves_models_of_different_calendars_beside_a_broken_spec(
    specs_folder, warehouse_path
):
    early = GOOD.format(warehouse=warehouse_path).replace(
        "model: good-model", "model: early-model\nstart_week: 2025-10-06"
    )
    (specs_folder / "early.yaml").write_text(early)
    defs = build_definitions()
    Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("weekly_evaluation")
    assert set(job.graph.node_dict) == {"good_model__weekly_evaluation"}
    early_job = defs.resolve_job_def("weekly_evaluation_from_2025_10_06")
    assert set(early_job.graph.node_dict) == {"early_model__weekly_evaluation"}
    assert early_job.partitions_def.start.date().isoformat() == "2025-10-06"
    assert {s.name for s in defs.schedules} == {
        "weekly_evaluation_schedule",
        "weekly_evaluation_from_2025_10_06_schedule",
    }
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert set(ERROR_KEYS.values()) <= keys


def test_a_spec_without_a_drift_section_materializes_a_week(tmp_path, warehouse_path, monkeypatch):
    """Drift is optional: the weekly step and its no_drift check work without it (it used to
    fail on the empty drift table's missing columns)."""
    folder = tmp_path / "specs"
    folder.mkdir()
    text = GOOD.format(warehouse=warehouse_path).replace(
        "drift: {reference_weeks: 4, features: [amount]}\n", ""
    )
    assert "drift" not in text
    (folder / "good.yaml").write_text(text)
    monkeypatch.setenv("EVAL_SPECS_DIR", str(folder))
    monkeypatch.setenv("EVAL_WAREHOUSE_URL", f"duckdb:///{warehouse_path}")
    monkeypatch.setenv("EVAL_ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", migrated_store(tmp_path / "mlflow.db"))
    monkeypatch.setenv("EVAL_MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "mlartifacts"))
    with instance_for_test() as instance:
        result = (
            build_definitions()
            .resolve_job_def("weekly_evaluation")
            .execute_in_process(partition_key=WEEK, instance=instance)
        )
        assert result.success
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert checks["no_drift"].passed
    drift = pd.read_parquet(tmp_path / "artifacts" / "good-model" / WEEK / "drift.parquet")
    assert drift.empty
    assert {"feature", "method", "statistic", "p_value", "drifted"} <= set(drift.columns)
