"""The Dagster code location: definitions, schedule, one week, a multi-week run, re-runs.

Runs in process against a small demo warehouse and a local MLflow store (SQLite, no server);
the registry sensor against a real MLflow server and a backfill under a real ``dagster dev``
are in test_registry_sensor.py and test_dagster_server.py.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pandas as pd
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    build_schedule_context,
    instance_for_test,
    materialize,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from mlflow.tracking import MlflowClient
from support.data import ARTIFACT_FILES
from support.mlflow_server import free_port
from support.mlflow_store import migrated_store

from assets.definitions import build_definitions, defs
from assets.evaluation import ASSETS, build_weekly_assets
from assets.jobs import weeks_to_evaluate
from assets.partitions import weekly_partitions
from assets.specs import PROJECT_ROOT, load_specs
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.errors import SpecError
from eval_pipelines.spec import CompareSpec, load_spec
from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource

WEEK = "2026-11-16"
SPEC = load_spec(PROJECT_ROOT / "evals" / "fraud_detector.yaml")
KEYS = {name: AssetKey(["fraud_detector", name]) for name in ASSETS}
EXPERIMENT = "eval-pipelines/fraud_detector"


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"
    build_demo_warehouse(path, rows=40_000)
    return path


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> MlflowResource:
    folder = tmp_path_factory.mktemp("mlflow")
    return MlflowResource(
        tracking_uri=migrated_store(folder / "mlflow.db"),
        artifact_location=str(folder / "artifacts"),
    )


def _local_mlflow(folder: Path) -> MlflowResource:
    """A SQLite store with its artifacts in ``folder`` (without an artifact location MLflow
    would write them to ./mlruns, in the checkout)."""
    return MlflowResource(
        tracking_uri=migrated_store(folder / "mlflow.db", exist_ok=True),
        artifact_location=str(folder / "mlartifacts"),
    )


def _resources(warehouse: Path, root: Path, mlflow: MlflowResource, webhook: str | None = None):
    return {
        "warehouse": WarehouseResource(url=f"duckdb:///{warehouse}"),
        "artifacts": ArtifactStoreResource(root=str(root)),
        "mlflow": mlflow,
        "alerts": AlertsResource(webhook_url=webhook),
    }


class _Webhook:
    """A local HTTP server that records the JSON bodies POSTed to it and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def week_run(warehouse_path, mlflow_store, tmp_path_factory):
    """One materialization of the demo week's assets and checks, with an alert webhook."""
    root = tmp_path_factory.mktemp("artifacts")
    webhook = _Webhook()
    with instance_for_test() as instance:
        result = materialize(
            [build_weekly_assets(SPEC)],
            partition_key=WEEK,
            instance=instance,
            resources=_resources(warehouse_path, root, mlflow_store, webhook.url),
        )
        yield result, root / "fraud_detector" / WEEK, webhook.received
    webhook.close()


def _materialization(result, key: AssetKey):
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return event.materialization


def _client(mlflow: MlflowResource) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow.tracking_uri)


def _runs(mlflow: MlflowResource, week: str):
    client = _client(mlflow)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`eval.week` = '{week}'"
    )


# ------------------------------------------------------------------------------ definitions


def test_definitions_load():
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    group = {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "fraud_detector"}
    assert group == {*KEYS.values(), AssetKey(["fraud_detector", "candidate_verdict"])}
    assert graph.get(KEYS["report"]).parent_keys == {KEYS["verdict"]}
    # A tree, no fan-in: see assets/evaluation.py DEPENDS_ON.
    assert all(len(graph.get(key).parent_keys) <= 1 for key in KEYS.values())
    assert graph.get(KEYS["verdict"]).parent_keys == {KEYS["comparison"]}
    assert graph.get(KEYS["drift"]).parent_keys == {KEYS["window"]}
    checks = {(c.asset_key, c.name): graph.get_check_spec(c) for c in graph.asset_check_keys}
    assert checks[(KEYS["window"], "input_checks_passed")].blocking
    assert (KEYS["verdict"], "release_gates") in checks
    assert "duckdb" in graph.get(KEYS["window"]).kinds
    assert graph.get(KEYS["metrics"]).description.startswith("fraud_detector:")


def test_weekly_job_and_backfills_run_as_one_step():
    job = defs.resolve_job_def("weekly_evaluation")
    assert job.partitions_def == weekly_partitions
    # Every demo spec of evals/ (one model per task) starts in the 2026-09-28 week.
    models = {load_spec(path).model for path in (PROJECT_ROOT / "evals").glob("*.yaml")}
    assert "fraud_detector" in models
    assert set(job.graph.node_dict) == {f"{model}__weekly_evaluation" for model in models}
    graph = defs.resolve_asset_graph()
    policy = graph.get(KEYS["metrics"]).backfill_policy
    assert policy is not None and policy.max_partitions_per_run is None  # single run


def _max_concurrent(job, run_config: dict | None = None) -> int | None:
    """The ``max_concurrent`` the job's executor gets for ``run_config``, as Dagster resolves it."""
    from dagster._core.system_config.objects import ResolvedRunConfig

    resolved = ResolvedRunConfig.build(job, run_config or {})
    return resolved.execution.execution_engine_config.get("max_concurrent")


def test_runs_execute_model_steps_in_parallel_processes(monkeypatch):
    # One run of the weekly job holds one step per model; the multiprocess executor runs up to
    # max_concurrent of them at once ($EVAL_MAX_CONCURRENT_STEPS, or per run in its config).
    monkeypatch.delenv("EVAL_MAX_CONCURRENT_STEPS", raising=False)
    job = build_definitions().resolve_job_def("weekly_evaluation")
    assert job.executor_def.name == "multiprocess"
    assert _max_concurrent(job) == 4
    assert _max_concurrent(job, {"execution": {"config": {"max_concurrent": 1}}}) == 1
    monkeypatch.setenv("EVAL_MAX_CONCURRENT_STEPS", "7")
    job = build_definitions().resolve_job_def("weekly_evaluation")
    assert _max_concurrent(job) == 7
    # Asset backfills launched from the asset graph run the implicit asset job: same executor.
    implicit = build_definitions().resolve_implicit_global_asset_job_def()
    assert implicit.executor_def.name == "multiprocess"
    for bad in ("0", "-2", "four"):
        monkeypatch.setenv("EVAL_MAX_CONCURRENT_STEPS", bad)
        with pytest.raises(SpecError, match="EVAL_MAX_CONCURRENT_STEPS"):
            build_definitions()


def test_partitions_are_monday_weeks_in_utc():
    keys = weekly_partitions.get_partition_keys(current_time=datetime(2026, 11, 27, tzinfo=UTC))
    assert keys[0] == "2026-09-28"
    assert keys[-1] == WEEK  # the week of 2026-11-23 has not ended yet
    window = weekly_partitions.time_window_for_partition_key(WEEK)
    assert window.start == datetime(2026, 11, 16, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 23, tzinfo=UTC)


def test_schedule_requests_last_week_and_the_week_whose_labels_matured():
    schedule = defs.resolve_schedule_def("weekly_evaluation_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 6 * * 1", "UTC")
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 23, 6, 0, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    requests = schedule.evaluate_tick(context).run_requests
    # labels.max_delay is 14 days: the week two weeks before the last one has matured.
    assert [r.partition_key for r in requests] == ["2026-11-02", WEEK]
    assert len({r.run_key for r in requests}) == 2


def test_schedule_never_requests_weeks_before_the_first_partition():
    assert weeks_to_evaluate([SPEC], datetime(2026, 10, 5, 6, tzinfo=UTC)) == ["2026-09-28"]


def test_schedule_cron_is_configurable(monkeypatch):
    monkeypatch.setenv("EVAL_SCHEDULE_CRON", "30 4 * * 2")
    built = build_definitions()
    schedule = built.resolve_schedule_def("weekly_evaluation_schedule")
    assert schedule.cron_schedule == "30 4 * * 2"
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 24, 4, 30, tzinfo=UTC),
        repository_def=built.get_repository_def(),
    )
    assert WEEK in [r.partition_key for r in schedule.evaluate_tick(context).run_requests]


ENV_VARS = {
    "EVAL_WAREHOUSE_URL": ("warehouse", "url"),
    "EVAL_ARTIFACTS_ROOT": ("artifacts", "root"),
    "AWS_ENDPOINT_URL": ("artifacts", "endpoint_url"),
    "MLFLOW_TRACKING_URI": ("mlflow", "tracking_uri"),
    "EVAL_MLFLOW_ARTIFACT_LOCATION": ("mlflow", "artifact_location"),
    "EVAL_ALERT_WEBHOOK_URL": ("alerts", "webhook_url"),
}


def test_resources_come_from_the_environment(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    plain = build_definitions().resources
    assert plain["warehouse"].spec_for(SPEC) is SPEC
    assert plain["artifacts"].root == "out/dagster"
    assert plain["mlflow"].tracking_uri is None  # the local SQLite store
    assert plain["alerts"].webhook_url is None

    for name in ENV_VARS:
        monkeypatch.setenv(name, "value-from-env")
    configured = build_definitions().resources
    for name, (resource, field) in ENV_VARS.items():
        assert getattr(configured[resource], field).env_var_name == name
    resource = WarehouseResource(url="duckdb:////elsewhere/w.duckdb")
    assert resource.spec_for(SPEC).warehouse == "duckdb:////elsewhere/w.duckdb"


def test_specs_dir_is_configurable(tmp_path, monkeypatch):
    shutil.copy(PROJECT_ROOT / "evals" / "fraud_detector.yaml", tmp_path / "a.yaml")
    text = (tmp_path / "a.yaml").read_text().replace("model: fraud_detector", "model: churn-v2")
    (tmp_path / "b.yaml").write_text(text)
    monkeypatch.setenv("EVAL_SPECS_DIR", str(tmp_path))
    assert [s.model for s in load_specs()] == ["fraud_detector", "churn-v2"]
    built = build_definitions()
    keys = built.resolve_asset_graph().get_all_asset_keys()
    assert AssetKey(["churn_v2", "verdict"]) in keys
    assert built.resolve_job_def("churn_v2__candidate_evaluation") is not None


def test_workspace_validates_from_the_command_line(tmp_path):
    dagster = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    for name in [*ENV_VARS, "EVAL_SPECS_DIR"]:
        env.pop(name, None)
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr


# ------------------------------------------------------------------------------ one week


def test_one_week_materializes_every_asset(week_run):
    result, folder, _ = week_run
    assert result.success
    events = result.get_asset_materialization_events()
    assert {e.asset_key for e in events} == set(KEYS.values())
    assert {e.materialization.partition for e in events} == {WEEK}
    verdict = json.loads((folder / "verdict.json").read_text())
    assert (verdict["decision"], verdict["window"]) == ("hold", WEEK)


def test_window_and_metrics_metadata(week_run):
    result, folder, _ = week_run
    window = _materialization(result, KEYS["window"]).metadata
    coverage = window["label_coverage"].value
    assert isinstance(coverage, float) and 0.9 < coverage < 1.0
    assert window["dagster/row_count"].value == 2 * window["rows_per_version"].data["v2"]
    run = json.loads((folder / "run.json").read_text())
    assert window["data_fingerprint"].value == run["data_fingerprint"]["content_hash"]
    metrics = _materialization(result, KEYS["metrics"]).metadata
    overall = pd.read_parquet(folder / "metrics.parquet").query("slice == 'overall'")
    expected = overall.set_index(["model_version", "metric"])["value"]
    assert metrics["v2/roc_auc"].value == pytest.approx(expected[("v2", "roc_auc")], abs=0)
    assert metrics["v2/roc_auc"].value > metrics["v1/roc_auc"].value  # planted truth
    statistics = _materialization(result, KEYS["sufficient_statistics"]).metadata
    assert statistics["slice_groups"].value > 10
    cost = run["cost"]  # the run's warehouse cost in total, as run.json records it
    assert statistics["cost_queries"].value == cost["queries"] > 0
    assert statistics["cost_rows_scanned"].value == cost["rows_scanned"] > 0
    assert statistics["cost_seconds"].value == pytest.approx(cost["seconds"])


def test_comparison_drift_and_verdict_metadata_name_the_planted_truths(week_run):
    result, _, _ = week_run
    comparison = _materialization(result, KEYS["comparison"]).metadata
    assert comparison["significant_regressions"].value >= 1
    assert "device=android" in comparison["regressions"].value
    drift = _materialization(result, KEYS["drift"]).metadata
    assert "amount" in drift["drift"].value
    verdict = _materialization(result, KEYS["verdict"]).metadata
    assert verdict["decision"].value == "hold"
    assert "device=android" in verdict["reasons"].value
    report = _materialization(result, KEYS["report"]).metadata
    assert report["report"].value.lstrip().startswith("#")
    html = Path(report["report_html"].value)  # the page a user opens, beside report.md
    assert html.name == "report.html" and html.is_file()
    assert html.parent == Path(report["report_location"].value).parent
    assert report["alert"].value == "sent"


def test_checks_carry_the_state(week_run):
    result, _, _ = week_run
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["input_checks_passed"].passed
    assert checks["label_coverage"].passed
    assert not checks["release_gates"].passed
    assert checks["release_gates"].severity.value == "ERROR"
    assert not checks["no_drift"].passed and checks["no_drift"].severity.value == "WARN"
    assert not checks["no_significant_regression"].passed


def test_the_week_has_one_finished_mlflow_run_with_dagster_lineage(week_run, mlflow_store):
    result, _, _ = week_run
    [run] = _runs(mlflow_store, WEEK)
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["dagster.run_id"] == result.run_id
    assert tags["dagster.partition"] == WEEK
    assert tags["eval.decision"] == "hold"
    window = _materialization(result, KEYS["window"]).metadata
    assert window["mlflow_run_id"].value == run.info.run_id
    listed = {a.path for a in _client(mlflow_store).list_artifacts(run.info.run_id)}
    assert {"report.md", "verdict.json", "metrics.parquet"} <= listed


def test_a_hold_sends_one_slack_compatible_alert(week_run):
    _, _, received = week_run
    [payload] = received
    assert "hold" in payload["text"].lower() and "fraud_detector" in payload["text"]
    assert payload["blocks"]


# ------------------------------------------------------------------------------ re-runs


def _labels_until(source: Path, target: Path, cutoff: str) -> Path:
    """A copy of the warehouse in which labels after ``cutoff`` have not arrived yet."""
    shutil.copy(source, target)
    with duckdb.connect(str(target)) as con:
        con.execute("DELETE FROM labels WHERE labeled_at >= ?", [cutoff])
    return target


def test_label_maturity_then_rerun_replaces_the_result(warehouse_path, tmp_path):
    mlflow = MlflowResource(
        tracking_uri=migrated_store(tmp_path / "mlflow.db"),
        artifact_location=str(tmp_path / "mlartifacts"),
    )
    early = _labels_until(warehouse_path, tmp_path / "early.duckdb", "2026-11-18")
    root = tmp_path / "artifacts"
    folder = root / "fraud_detector" / WEEK
    instance = DagsterInstance.ephemeral()
    # Only a label-based gate: drift needs no labels and would hold either way.
    spec = SPEC.model_copy(
        update={"gates": [{"metric": "roc_auc", "slice": "overall", "min": 0.8}]}
    )
    assets = [build_weekly_assets(spec)]

    first = materialize(
        assets, partition_key=WEEK, instance=instance, resources=_resources(early, root, mlflow)
    )
    assert json.loads((folder / "verdict.json").read_text())["decision"] == "inconclusive"
    window = _materialization(first, KEYS["window"]).metadata
    assert window["label_coverage"].value < SPEC.min_label_coverage
    checks = {e.check_name: e for e in first.get_asset_check_evaluations()}
    assert not checks["label_coverage"].passed
    assert checks["release_gates"].severity.value == "WARN"

    second = materialize(
        assets,
        partition_key=WEEK,
        instance=instance,
        resources=_resources(warehouse_path, root, mlflow),
    )
    assert json.loads((folder / "verdict.json").read_text())["decision"] == "ship"
    [run] = _runs(mlflow, WEEK)  # the same MLflow run, updated
    assert run.data.tags["eval.decision"] == "ship"
    assert run.data.tags["dagster.run_id"] == second.run_id
    metrics = pd.read_parquet(folder / "metrics.parquet")

    materialize(
        assets,
        partition_key=WEEK,
        instance=instance,
        resources=_resources(warehouse_path, root, mlflow),
    )
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "metrics.parquet"), metrics)
    assert len(_runs(mlflow, WEEK)) == 1
    history = instance.fetch_materializations(KEYS["verdict"], limit=10).records
    assert [r.asset_materialization.metadata["decision"].value for r in history] == [
        "ship",
        "ship",
        "inconclusive",
    ]


def test_failed_input_checks_materialize_nothing_and_fail_the_mlflow_run(warehouse_path, tmp_path):
    mlflow = _local_mlflow(tmp_path)
    spec = SPEC.model_copy(update={"compare": CompareSpec(baseline="v1", candidate="v3")})
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [build_weekly_assets(spec)],
        partition_key=WEEK,
        instance=instance,
        resources=_resources(warehouse_path, tmp_path / "artifacts", mlflow),
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert "input checks failed" in description and "'v3'" in description
    assert not result.get_asset_materialization_events()
    events = [e.dagster_event for e in instance.all_logs(result.run_id) if e.dagster_event]
    checks = [
        e.event_specific_data
        for e in events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "input_checks_passed"
    ]
    [check] = checks
    assert not check.passed and check.severity.value == "ERROR"
    assert not (tmp_path / "artifacts" / "fraud_detector").exists()  # no partial artifacts
    [run] = _runs(mlflow, WEEK)
    assert run.info.status == "FAILED"


def test_a_multi_week_run_records_each_week(warehouse_path, tmp_path):
    """What a single-run backfill executes: one step, each week its own partition and run."""
    mlflow = _local_mlflow(tmp_path)
    definitions = Definitions(
        assets=[build_weekly_assets(SPEC)],
        resources=_resources(warehouse_path, tmp_path / "artifacts", mlflow),
    )
    job = definitions.resolve_implicit_global_asset_job_def()
    with instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: "2026-11-02",
                ASSET_PARTITION_RANGE_END_TAG: WEEK,
            },
        )
        assert result.success
        assert instance.get_materialized_partitions(KEYS["verdict"]) == {
            "2026-11-02",
            "2026-11-09",
            WEEK,
        }
        records = instance.fetch_materializations(KEYS["window"], limit=10).records
        fingerprints = {r.asset_materialization.metadata["data_fingerprint"].value for r in records}
        assert len(fingerprints) == 3  # per-week metadata, not one copy for the range
    for week in ("2026-11-02", "2026-11-09", WEEK):
        [run] = _runs(mlflow, week)
        assert run.data.tags["dagster.run_id"] == result.run_id


# ------------------------------------------------------------------------------ failures


def _step_failure(result) -> str:
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.user_failure_data.description


@pytest.mark.parametrize("webhook_answer", ["connection refused", "HTTP 500"])
def test_an_undelivered_alert_fails_the_step_after_the_week_is_recorded(
    webhook_answer, warehouse_path, tmp_path
):
    """A hold must reach a human: a webhook that cannot take the alert fails the run, but only
    once the artifacts, the MLflow run and the materializations are all recorded."""
    mlflow = _local_mlflow(tmp_path)
    root = tmp_path / "artifacts"
    webhook = _Webhook(status=500) if webhook_answer == "HTTP 500" else None
    token_path = "/services/T000/B000/secret-token"
    url = webhook.url if webhook else f"http://127.0.0.1:{free_port()}{token_path}"
    reason = "HTTP 500" if webhook else "ConnectionRefusedError: Connection refused"
    try:
        result = materialize(
            [build_weekly_assets(SPEC)],
            partition_key=WEEK,
            instance=DagsterInstance.ephemeral(),
            resources=_resources(warehouse_path, root, mlflow, url),
            raise_on_error=False,
        )
    finally:
        if webhook:
            webhook.close()

    assert not result.success
    host = f"http://127.0.0.1:{urlsplit(url).port}"
    assert _step_failure(result) == (
        f"fraud_detector: week {WEEK}: alert failed: webhook POST to {host} failed after "
        f"3 attempts: {reason}"
    )  # names the host, never the token in the webhook's path
    if webhook:
        assert len(webhook.received) == 3  # retried, the same payload each time
        assert all(body == webhook.received[0] for body in webhook.received)
        assert webhook.received[0]["text"].startswith(f"fraud_detector {WEEK}: HOLD")

    # Recorded before the failure: every asset of the week, its checks, the files, MLflow.
    kinds = [e.event_type_value for e in result.all_events]
    last_materialization = max(i for i, k in enumerate(kinds) if k == "ASSET_MATERIALIZATION")
    assert last_materialization < kinds.index("STEP_FAILURE")
    events = result.get_asset_materialization_events()
    assert sorted((e.asset_key.path[1], e.materialization.partition) for e in events) == sorted(
        (name, WEEK) for name in ASSETS
    )
    report = _materialization(result, KEYS["report"]).metadata
    assert (
        report["alert"].value == f"failed: webhook POST to {host} failed after 3 attempts: {reason}"
    )
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["input_checks_passed"] and not checks["release_gates"]
    folder = root / "fraud_detector" / WEEK
    assert {p.name for p in folder.iterdir()} == ARTIFACT_FILES
    assert json.loads((folder / "verdict.json").read_text())["decision"] == "hold"
    [run] = _runs(mlflow, WEEK)
    assert run.info.status == "FINISHED"
    assert run.data.tags["eval.decision"] == "hold"
    overall = pd.read_parquet(folder / "metrics.parquet").query("slice == 'overall'")
    roc_auc = overall.set_index(["model_version", "metric"])["value"][("v2", "roc_auc")]
    assert run.data.metrics["roc_auc/v2"] == pytest.approx(roc_auc, rel=1e-12)
    listed = {a.path for a in _client(mlflow).list_artifacts(run.info.run_id)}
    assert {"report.md", "verdict.json", "metrics.parquet"} <= listed


BAD_WEEK = "2026-11-09"


def _with_a_duplicated_prediction(source: Path, target: Path, week: str) -> tuple[Path, str]:
    """A copy of the warehouse where one of ``week``'s v2 predictions was logged twice."""
    shutil.copy(source, target)
    with duckdb.connect(str(target)) as con:
        [(prediction_id,)] = con.execute(
            "SELECT min(prediction_id) FROM inference_logs "
            "WHERE ts >= CAST(? AS TIMESTAMP) AND ts < CAST(? AS TIMESTAMP) + INTERVAL 7 DAY",
            [week, week],
        ).fetchall()
        con.execute(
            "INSERT INTO inference_logs SELECT * FROM inference_logs "
            "WHERE prediction_id = ? AND model_version = 'v2'",
            [prediction_id],
        )
    return target, prediction_id


def test_a_backfill_with_one_bad_week_records_the_others_and_fails_naming_it(
    warehouse_path, tmp_path
):
    """One single run over three weeks where only the middle week's input is bad."""
    warehouse, duplicated = _with_a_duplicated_prediction(
        warehouse_path, tmp_path / "bad.duckdb", BAD_WEEK
    )
    mlflow = _local_mlflow(tmp_path)
    root = tmp_path / "artifacts"
    definitions = Definitions(
        assets=[build_weekly_assets(SPEC)], resources=_resources(warehouse, root, mlflow)
    )
    job = definitions.resolve_implicit_global_asset_job_def()
    good = ["2026-11-02", WEEK]
    with instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: "2026-11-02",
                ASSET_PARTITION_RANGE_END_TAG: WEEK,
            },
            raise_on_error=False,
        )
        assert not result.success
        assert _step_failure(result) == (
            f"fraud_detector: week {BAD_WEEK}: input checks failed for the window "
            f"[{BAD_WEEK} 00:00, {WEEK} 00:00) UTC; no metrics were computed: predictions.id: "
            f"2 rows of version 'v2' have a duplicate 'prediction_id' (e.g. '{duplicated}')"
        )

        for key in KEYS.values():
            assert instance.get_materialized_partitions(key) == set(good), key
        [check] = [
            e for e in result.get_asset_check_evaluations() if e.check_name == "input_checks_passed"
        ]
        assert not check.passed and check.severity.value == "ERROR"
        assert check.description == "1 of 3 weeks failed (1 on input checks)"
    for week in good:
        [run] = _runs(mlflow, week)
        assert run.info.status == "FINISHED"
        assert run.data.tags["dagster.run_id"] == result.run_id
        folder = root / "fraud_detector" / week
        assert {p.name for p in folder.iterdir()} == ARTIFACT_FILES
        assert json.loads((folder / "verdict.json").read_text())["decision"] == "hold"
    [bad] = _runs(mlflow, BAD_WEEK)
    assert bad.info.status == "FAILED"
    assert "duplicate 'prediction_id'" in bad.data.tags["eval.error"]
    assert not (root / "fraud_detector" / BAD_WEEK).exists()
