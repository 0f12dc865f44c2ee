"""The Dagster code location: it loads, one week materializes, the schedule picks the right week.

One module-scoped run materializes the demo week (2026-11-16) against a small demo warehouse in
a temporary folder; the other tests read its events and artifacts.
"""

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    build_asset_check_context,
    build_schedule_context,
    instance_for_test,
    materialize,
)

from assets.definitions import build_definitions, defs
from assets.factory import build_model_assets
from assets.partitions import weekly_partitions
from assets.specs import PROJECT_ROOT, load_specs
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.spec import CompareSpec, load_spec
from resources import ArtifactStoreResource, WarehouseResource

WEEK = "2026-11-16"
SPEC = load_spec(PROJECT_ROOT / "evals" / "fraud_detector.yaml")
EVALUATION = AssetKey("fraud_detector__evaluation")
VERDICT = AssetKey("fraud_detector__verdict")


@pytest.fixture(scope="module")
def warehouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"
    build_demo_warehouse(path, rows=40_000)
    return f"duckdb:///{path}"


@pytest.fixture(scope="module")
def instance() -> DagsterInstance:
    with instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="module")
def week_run(warehouse_url, instance, tmp_path_factory):
    """One materialization of both assets and the input check for the demo week."""
    root = tmp_path_factory.mktemp("artifacts")
    model = build_model_assets(SPEC)
    result = materialize(
        [*model.assets, model.input_check],
        partition_key=WEEK,
        instance=instance,
        resources={
            "warehouse": WarehouseResource(url=warehouse_url),
            "artifacts": ArtifactStoreResource(root=str(root)),
        },
    )
    return result, root / "fraud_detector" / WEEK


def _materialization(result, key: AssetKey):
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return event.materialization


# ------------------------------------------------------------------------------ definitions


def test_definitions_load():
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    group = {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "fraud_detector"}
    assert group == {EVALUATION, VERDICT}
    assert graph.get(VERDICT).parent_keys == {EVALUATION}
    [check] = graph.asset_check_keys
    assert (check.asset_key, check.name) == (EVALUATION, "input_checks_passed")
    assert graph.get_check_spec(check).blocking


def test_weekly_job_runs_every_asset_and_check():
    job = defs.resolve_job_def("weekly_evaluation")
    assert job.partitions_def == weekly_partitions
    assert set(job.graph.node_dict) == {
        "fraud_detector__evaluation",
        "fraud_detector__evaluation_input_checks_passed",
        "fraud_detector__verdict",
    }


def test_partitions_are_monday_weeks_in_utc():
    keys = weekly_partitions.get_partition_keys(current_time=datetime(2026, 11, 27, tzinfo=UTC))
    assert keys[0] == "2026-09-28"
    assert keys[-1] == WEEK  # the week of 2026-11-23 has not ended yet
    window = weekly_partitions.time_window_for_partition_key(WEEK)
    assert window.start == datetime(2026, 11, 16, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 23, tzinfo=UTC)


def test_schedule_requests_the_week_that_just_ended():
    schedule = defs.resolve_schedule_def("weekly_evaluation_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 6 * * 1", "UTC")
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == WEEK


def test_resources_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("EVAL_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("EVAL_ARTIFACTS_ROOT", raising=False)
    plain = build_definitions().resources
    assert plain["warehouse"].spec_for(SPEC) is SPEC
    assert plain["artifacts"].root == "out/dagster"

    monkeypatch.setenv("EVAL_WAREHOUSE_URL", "duckdb:////elsewhere/w.duckdb")
    monkeypatch.setenv("EVAL_ARTIFACTS_ROOT", "/elsewhere/artifacts")
    configured = build_definitions().resources
    assert configured["warehouse"].url.env_var_name == "EVAL_WAREHOUSE_URL"
    assert configured["artifacts"].root.env_var_name == "EVAL_ARTIFACTS_ROOT"
    resource = WarehouseResource(url="duckdb:////elsewhere/w.duckdb")
    assert resource.spec_for(SPEC).warehouse == "duckdb:////elsewhere/w.duckdb"


def test_specs_dir_is_configurable(tmp_path, monkeypatch):
    shutil.copy(PROJECT_ROOT / "evals" / "fraud_detector.yaml", tmp_path / "a.yaml")
    text = (tmp_path / "a.yaml").read_text().replace("model: fraud_detector", "model: churn-v2")
    (tmp_path / "b.yaml").write_text(text)
    monkeypatch.setenv("EVAL_SPECS_DIR", str(tmp_path))
    assert [s.model for s in load_specs()] == ["fraud_detector", "churn-v2"]
    keys = build_definitions().resolve_asset_graph().get_all_asset_keys()
    assert AssetKey("churn_v2__verdict") in keys


def test_workspace_validates_from_the_command_line(tmp_path):
    dagster = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    for name in ("EVAL_WAREHOUSE_URL", "EVAL_ARTIFACTS_ROOT", "EVAL_SPECS_DIR"):
        env.pop(name, None)
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr


# ------------------------------------------------------------------------------ one week


def test_one_week_materializes(week_run):
    result, folder = week_run
    assert result.success
    verdict = json.loads((folder / "verdict.json").read_text())
    assert (verdict["decision"], verdict["window"]) == ("hold", WEEK)
    for name in ("metrics.parquet", "comparison.parquet", "validation.json", "run.json"):
        assert (folder / name).is_file()


def test_evaluation_metadata(week_run):
    result, folder = week_run
    metadata = _materialization(result, EVALUATION).metadata
    coverage = metadata["label_coverage"].value
    assert isinstance(coverage, float) and 0.9 < coverage < 1.0
    assert metadata["rows"].value == 2 * metadata["rows_per_version"].data["v2"]
    assert metadata["labeled_rows"].value < metadata["rows"].value
    assert isinstance(metadata["v2/roc_auc"].value, float)
    assert metadata["v2/roc_auc"].value > metadata["v1/roc_auc"].value  # planted truth
    run = json.loads((folder / "run.json").read_text())
    assert metadata["data_fingerprint"].value == run["data_fingerprint"]["content_hash"]


def test_verdict_metadata_lists_the_reasons_to_hold(week_run):
    result, _ = week_run
    metadata = _materialization(result, VERDICT).metadata
    assert metadata["decision"].value == "hold"
    assert metadata["holding_reasons"].value >= 2
    table = metadata["reasons"].value
    assert "device=android" in table and "amount drifted" in table


def test_input_check_passed(week_run):
    result, _ = week_run
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "input_checks_passed" and evaluation.passed
    assert evaluation.metadata["failed_checks"].value == 0


def test_input_check_fails_on_a_failed_validation_file(week_run, instance, tmp_path):
    _, folder = week_run
    copy = tmp_path / "fraud_detector" / WEEK
    shutil.copytree(folder, copy)
    report = json.loads((copy / "validation.json").read_text())
    report["passed"] = False
    report["checks"][0]["passed"] = False
    (copy / "validation.json").write_text(json.dumps(report))
    check = build_model_assets(SPEC).input_check
    # Launched on its own, the check reads the last materialized week (the run above).
    context = build_asset_check_context(
        resources={"artifacts": ArtifactStoreResource(root=str(tmp_path))}, instance=instance
    )
    outcome = check(context)
    assert not outcome.passed
    assert outcome.severity.value == "ERROR"
    assert outcome.metadata["week"].value == WEEK


def test_failed_input_checks_fail_the_run_before_the_verdict(warehouse_url, tmp_path):
    spec = SPEC.model_copy(update={"compare": CompareSpec(baseline="v1", candidate="v3")})
    model = build_model_assets(spec)
    result = materialize(
        [*model.assets, model.input_check],
        partition_key=WEEK,
        instance=DagsterInstance.ephemeral(),
        resources={
            "warehouse": WarehouseResource(url=warehouse_url),
            "artifacts": ArtifactStoreResource(root=str(tmp_path)),
        },
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "fraud_detector__evaluation"
    error = failure.step_failure_data.user_failure_data
    assert "input checks failed" in error.description and "'v3'" in error.description
    assert not result.get_asset_materialization_events()
    assert not (tmp_path / "fraud_detector").exists()  # no partial artifacts


def test_verdict_without_an_evaluation_says_what_to_run(tmp_path):
    model = build_model_assets(SPEC)
    result = materialize(
        [model.verdict],
        partition_key=WEEK,
        instance=DagsterInstance.ephemeral(),
        resources={"artifacts": ArtifactStoreResource(root=str(tmp_path))},
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert f"materialize fraud_detector__evaluation for {WEEK} first" in description
