"""The MLflow Model Registry sensor against a real ``mlflow server``.

Registering a version makes the sensor request exactly one run; the run evaluates the
version against the champion and writes the verdict back as version tags; later ticks, a
restarted sensor (same stored cursor) and a lost cursor never request it again.
"""

import uuid
from pathlib import Path

import pytest
from dagster import Definitions, build_sensor_context, instance_for_test
from mlflow.tracking import MlflowClient

from assets.candidates import build_candidate_assets
from assets.sensors import build_registry_sensor
from assets.specs import PROJECT_ROOT
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.spec import load_spec
from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource

WEEK = "2026-11-16"
SPEC = load_spec(PROJECT_ROOT / "evals" / "fraud_detector.yaml")


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"
    build_demo_warehouse(path, rows=40_000)
    return path


@pytest.fixture
def registered(mlflow_server, tmp_path):
    """A spec whose registered model (unique per test) has a champion, version 1 (logs v1)."""
    name = f"fraud_detector_{uuid.uuid4().hex[:8]}"
    spec = SPEC.model_copy(
        update={"registry": SPEC.registry.model_copy(update={"model_name": name})}
    )
    mlflow = MlflowResource(tracking_uri=mlflow_server)
    source = tmp_path / "model"
    source.mkdir()
    (source / "README.md").write_text("placeholder")
    mlflow.tracker().register_version(
        name, source=str(source), tags={"eval.log_version": "v1"}, aliases=["champion"]
    )
    return spec, mlflow, source


def _tick(sensor, instance, mlflow, cursor=None):
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"mlflow": mlflow})
    return sensor(context)


def test_a_new_version_is_evaluated_once_against_the_champion(
    registered, warehouse_path, tmp_path, monkeypatch
):
    spec, mlflow, source = registered
    name = spec.registered_model
    tracker = mlflow.tracker()
    monkeypatch.setenv("EVAL_REGISTRY_WEEK", WEEK)
    candidates = build_candidate_assets(spec)
    sensor = build_registry_sensor([candidates])
    with instance_for_test() as instance:
        first = _tick(sensor, instance, mlflow)
        assert not first.run_requests  # the champion itself is history

        tracker.register_version(name, source=str(source), tags={"eval.log_version": "v2"})
        second = _tick(sensor, instance, mlflow, first.cursor)
        [request] = second.run_requests
        assert request.run_key == f"{name}/2"
        assert request.partition_key == "2"
        assert request.job_name == candidates.job.name
        [added] = second.dynamic_partitions_requests
        assert list(added.partition_keys) == ["2"]

        instance.add_dynamic_partitions(candidates.partitions.name, ["2"])
        definitions = Definitions(
            assets=[candidates.asset],
            jobs=[candidates.job],
            resources={
                "warehouse": WarehouseResource(url=f"duckdb:///{warehouse_path}"),
                "artifacts": ArtifactStoreResource(root=str(tmp_path / "artifacts")),
                "mlflow": mlflow,
                "alerts": AlertsResource(),
            },
        )
        run = definitions.resolve_job_def(candidates.job.name).execute_in_process(
            instance=instance,
            partition_key="2",
            run_config=request.run_config,
            tags=request.tags,
        )
        assert run.success

        version = tracker.model_versions(name)[1]
        assert version.version == 2
        tags = version.tags
        assert tags["eval.verdict"] == "hold"  # v2 regresses recall on android (planted)
        assert (tags["eval.week"], tags["eval.champion_version"]) == (WEEK, "1")
        assert tags["eval.dagster_run_id"] == run.run_id
        assert tags["eval.report"].endswith("report.md") and Path(tags["eval.report"]).is_file()
        mlflow_run = MlflowClient(mlflow.tracking_uri).get_run(tags["eval.mlflow_run_id"])
        assert mlflow_run.info.status == "FINISHED"
        assert mlflow_run.data.tags["eval.candidate"] == "v2"
        assert mlflow_run.data.tags["eval.baseline"] == "v1"

        # Never twice: the next tick, a restarted sensor with the stored cursor, a lost cursor.
        assert not _tick(sensor, instance, mlflow, second.cursor).run_requests
    with instance_for_test() as restarted:
        assert not _tick(sensor, restarted, mlflow, second.cursor).run_requests
        assert not _tick(sensor, restarted, mlflow, None).run_requests


def test_a_model_without_champion_waits_and_loses_no_version(mlflow_server, tmp_path):
    name = f"fraud_detector_{uuid.uuid4().hex[:8]}"
    spec = SPEC.model_copy(
        update={"registry": SPEC.registry.model_copy(update={"model_name": name})}
    )
    mlflow = MlflowResource(tracking_uri=mlflow_server)
    tracker = mlflow.tracker()
    source = tmp_path / "model"
    source.mkdir()
    (source / "README.md").write_text("placeholder")
    sensor = build_registry_sensor([build_candidate_assets(spec)])
    with instance_for_test() as instance:
        tracker.register_version(name, source=str(source))
        tracker.register_version(name, source=str(source))
        waiting = _tick(sensor, instance, mlflow)
        assert not waiting.run_requests
        assert "no 'champion' alias" in waiting.skip_reason.skip_message

        tracker.client.set_registered_model_alias(name, "champion", "1")
        tracker.register_version(name, source=str(source))
        result = _tick(sensor, instance, mlflow, waiting.cursor)
        assert sorted(r.run_key for r in result.run_requests) == [f"{name}/2", f"{name}/3"]

        # The alias goes away for a while: version 4 waits for it instead of being skipped.
        tracker.client.delete_registered_model_alias(name, "champion")
        tracker.register_version(name, source=str(source))
        paused = _tick(sensor, instance, mlflow, result.cursor)
        assert not paused.run_requests and paused.cursor == result.cursor
        tracker.client.set_registered_model_alias(name, "champion", "1")
        resumed = _tick(sensor, instance, mlflow, paused.cursor)
        assert f"{name}/4" in {r.run_key for r in resumed.run_requests}
