"""The MLflow Model Registry sensor against a real ``mlflow server``.

Registering a version makes the sensor request exactly one run; the run evaluates the
version against the champion and writes the verdict back as version tags; later ticks, a
restarted sensor (same stored cursor) and a lost cursor never request it again. Then the
edges: a version still registering holds the cursor, a failed registration is passed over, a
spec with the registry disabled gets no request, ``registry.log_version`` maps a version to
the logs, an unreachable server skips the tick without moving the cursor, and the week pinned
in a request is the last complete week at detection (the clock is frozen: no test here depends
on today's date).
"""

import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import Definitions, build_sensor_context, instance_for_test
from mlflow.tracking import MlflowClient
from support.mlflow_server import free_port

import assets.sensors
from assets.candidates import build_candidate_assets, candidate_spec
from assets.sensors import build_registry_sensor
from assets.specs import PROJECT_ROOT
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.spec import load_spec
from eval_pipelines.tracking import RegisteredVersion
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


def _run_request(
    candidates, request, instance, warehouse: Path, tmp_path: Path, mlflow, webhook=None
):
    """Execute what the daemon would launch for ``request`` (the candidate job, in process)."""
    instance.add_dynamic_partitions(candidates.partitions.name, [request.partition_key])
    definitions = Definitions(
        assets=[candidates.asset],
        jobs=[candidates.job],
        resources={
            "warehouse": WarehouseResource(url=f"duckdb:///{warehouse}"),
            "artifacts": ArtifactStoreResource(root=str(tmp_path / "artifacts")),
            "mlflow": mlflow,
            "alerts": AlertsResource(webhook_url=webhook),
        },
    )
    return definitions.resolve_job_def(candidates.job.name).execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        run_config=request.run_config,
        tags=request.tags,
        raise_on_error=False,
    )


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

        run = _run_request(candidates, request, instance, warehouse_path, tmp_path, mlflow)
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


def test_an_undelivered_alert_fails_the_candidate_run_after_the_verdict_is_recorded(
    registered, warehouse_path, tmp_path, monkeypatch
):
    spec, mlflow, source = registered
    name = spec.registered_model
    tracker = mlflow.tracker()
    tracker.register_version(name, source=str(source), tags={"eval.log_version": "v2"})
    monkeypatch.setenv("EVAL_REGISTRY_WEEK", WEEK)
    candidates = build_candidate_assets(spec)
    port = free_port()  # nothing listens there
    with instance_for_test() as instance:
        [request] = _tick(build_registry_sensor([candidates]), instance, mlflow).run_requests
        run = _run_request(
            candidates,
            request,
            instance,
            warehouse_path,
            tmp_path,
            mlflow,
            webhook=f"http://127.0.0.1:{port}/services/T000/B000/secret-token",
        )
        assert not run.success
        [failure] = [e for e in run.all_events if e.is_step_failure]
        assert failure.step_failure_data.user_failure_data.description == (
            f"{name} version 2: alert failed: webhook POST to http://127.0.0.1:{port} failed "
            "after 3 attempts: ConnectionRefusedError: Connection refused"
        )
        [materialization] = run.get_asset_materialization_events()
        assert materialization.partition == "2"
        metadata = materialization.materialization.metadata
        assert metadata["decision"].value == "hold"
        assert metadata["alert"].value.startswith("failed: webhook POST")
    tags = tracker.model_versions(name)[1].tags
    assert tags["eval.verdict"] == "hold"
    assert tags["eval.dagster_run_id"] == run.run_id
    mlflow_run = MlflowClient(mlflow.tracking_uri).get_run(tags["eval.mlflow_run_id"])
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.tags["eval.decision"] == "hold"


# ------------------------------------------------------------------------------ edges


def _model(tmp_path: Path, **registry) -> tuple:
    """A spec for a new registered model (unique name) and a source folder to register."""
    name = f"fraud_detector_{uuid.uuid4().hex[:8]}"
    spec = SPEC.model_copy(
        update={"registry": SPEC.registry.model_copy(update={"model_name": name, **registry})}
    )
    source = tmp_path / name
    source.mkdir()
    (source / "README.md").write_text("placeholder")
    return spec, str(source)


@pytest.fixture
def registry_status(monkeypatch) -> dict[tuple[str, int], str]:
    """``{(model, version): status}`` the registry reports instead of READY.

    A real open-source MLflow server cannot produce PENDING_REGISTRATION or
    FAILED_REGISTRATION: its SQL store creates every version READY (the column's default; no
    REST call sets it), and ``create_model_version(await_creation_for=0)`` only skips the
    client's wait. Registries that copy artifacts asynchronously (Databricks) do report them.
    So the one call the sensor lists versions with, ``MlflowClient.search_model_versions``,
    is wrapped to rewrite the status in the server's real answer; everything else is real.
    """
    statuses: dict[tuple[str, int], str] = {}
    search = MlflowClient.search_model_versions

    def search_with_statuses(self, *args, **kwargs):
        page = search(self, *args, **kwargs)
        for version in page:
            status = statuses.get((version.name, int(version.version)))
            if status is not None:
                version._status = status
        return page

    monkeypatch.setattr(MlflowClient, "search_model_versions", search_with_statuses)
    return statuses


def _cursor(result) -> dict[str, int]:
    return json.loads(result.cursor)


def test_a_version_still_registering_holds_the_cursor_and_is_evaluated_once_ready(
    mlflow_server, tmp_path, registry_status
):
    spec, source = _model(tmp_path)
    name = spec.registered_model
    mlflow = MlflowResource(tracking_uri=mlflow_server)
    tracker = mlflow.tracker()
    sensor = build_registry_sensor([build_candidate_assets(spec)])
    tracker.register_version(name, source=source, aliases=["champion"])
    tracker.register_version(name, source=source)
    registry_status[(name, 2)] = "PENDING_REGISTRATION"
    with instance_for_test() as instance:
        pending = _tick(sensor, instance, mlflow)
        assert not pending.run_requests
        assert pending.skip_reason.skip_message == f"{name} v2: still registering"
        assert _cursor(pending) == {name: 1}  # held before version 2

        # A later READY version is requested meanwhile; the cursor still waits for version 2.
        tracker.register_version(name, source=source)
        behind = _tick(sensor, instance, mlflow, pending.cursor)
        assert [r.run_key for r in behind.run_requests] == [f"{name}/3"]
        assert _cursor(behind) == {name: 1}

        del registry_status[(name, 2)]  # registration finished
        ready = _tick(sensor, instance, mlflow, behind.cursor)
        # Version 3 again too: its run key makes Dagster drop the duplicate request.
        assert [r.run_key for r in ready.run_requests] == [f"{name}/2", f"{name}/3"]
        assert _cursor(ready) == {name: 3}


def test_a_failed_registration_is_passed_over(mlflow_server, tmp_path, registry_status):
    spec, source = _model(tmp_path)
    name = spec.registered_model
    mlflow = MlflowResource(tracking_uri=mlflow_server)
    tracker = mlflow.tracker()
    sensor = build_registry_sensor([build_candidate_assets(spec)])
    tracker.register_version(name, source=source, aliases=["champion"])
    tracker.register_version(name, source=source)
    registry_status[(name, 2)] = "FAILED_REGISTRATION"
    with instance_for_test() as instance:
        failed = _tick(sensor, instance, mlflow)
        assert not failed.run_requests
        assert failed.skip_reason.skip_message == "no new model versions"
        assert _cursor(failed) == {name: 2}  # moved past it: it will never be READY

        tracker.register_version(name, source=source)
        after = _tick(sensor, instance, mlflow, failed.cursor)
        assert [r.run_key for r in after.run_requests] == [f"{name}/3"]
        assert _cursor(after) == {name: 3}


def test_a_spec_with_the_registry_disabled_gets_no_request(mlflow_server, tmp_path):
    enabled, enabled_source = _model(tmp_path)
    disabled, disabled_source = _model(tmp_path, enabled=False)
    mlflow = MlflowResource(tracking_uri=mlflow_server)
    tracker = mlflow.tracker()
    for spec, source in ((enabled, enabled_source), (disabled, disabled_source)):
        tracker.register_version(spec.registered_model, source=source, aliases=["champion"])
        tracker.register_version(spec.registered_model, source=source)
    sensor = build_registry_sensor(
        [build_candidate_assets(enabled), build_candidate_assets(disabled)]
    )
    alone = build_registry_sensor([build_candidate_assets(disabled)])
    with instance_for_test() as instance:
        both = _tick(sensor, instance, mlflow)
        assert [r.run_key for r in both.run_requests] == [f"{enabled.registered_model}/2"]
        assert _cursor(both) == {enabled.registered_model: 2}
        only_disabled = _tick(alone, instance, mlflow)
        assert not only_disabled.run_requests
        assert _cursor(only_disabled) == {}


def test_the_log_version_template_maps_a_version_to_the_logs(
    warehouse_path, mlflow_server, tmp_path, monkeypatch
):
    """Versions without an eval.log_version tag are found in the logs through the template."""
    warehouse = tmp_path / "renamed.duckdb"
    shutil.copy(warehouse_path, warehouse)
    with duckdb.connect(str(warehouse)) as con:  # the logs call the versions model-1, model-2
        con.execute("UPDATE inference_logs SET model_version = 'model-' || model_version[2:]")
    spec, source = _model(tmp_path, log_version="model-{version}")
    name = spec.registered_model
    mlflow = MlflowResource(tracking_uri=mlflow_server)
    tracker = mlflow.tracker()
    tracker.register_version(name, source=source, aliases=["champion"])
    tracker.register_version(name, source=source)
    monkeypatch.setenv("EVAL_REGISTRY_WEEK", WEEK)
    candidates = build_candidate_assets(spec)
    with instance_for_test() as instance:
        [request] = _tick(build_registry_sensor([candidates]), instance, mlflow).run_requests
        run = _run_request(candidates, request, instance, warehouse, tmp_path, mlflow)
        assert run.success
    tags = tracker.model_versions(name)[1].tags
    assert tags["eval.verdict"] == "hold"  # the demo's v2 (here model-2) regresses on Android
    mlflow_run = MlflowClient(mlflow_server).get_run(tags["eval.mlflow_run_id"])
    assert mlflow_run.data.tags["eval.candidate"] == "model-2"
    assert mlflow_run.data.tags["eval.baseline"] == "model-1"
    metrics = pd.read_parquet(Path(tags["eval.report"]).with_name("metrics.parquet"))
    assert set(metrics["model_version"]) == {"model-1", "model-2"}

    # An eval.log_version tag wins over the template.
    def version(number: int, tags: dict[str, str]) -> RegisteredVersion:
        return RegisteredVersion(name, number, "READY", (), tags, None)

    compare = candidate_spec(spec, version(7, {"eval.log_version": "shadow-b"}), version(6, {}))
    assert (compare.compare.baseline, compare.compare.candidate) == ("model-6", "shadow-b")


def test_mlflow_down_during_a_tick_skips_it_and_keeps_the_cursor(registered, tmp_path):
    spec, mlflow, source = registered
    name = spec.registered_model
    mlflow.tracker().register_version(name, source=str(source), tags={"eval.log_version": "v2"})
    port = free_port()  # nothing listens there
    down = MlflowResource(
        tracking_uri=f"http://evaluser:s3cret-pass@127.0.0.1:{port}", http_max_retries=0
    )
    sensor = build_registry_sensor([build_candidate_assets(spec)])
    cursor = json.dumps({name: 1})
    with instance_for_test() as instance:
        skipped = _tick(sensor, instance, down, cursor)
        assert not skipped.run_requests
        message = skipped.skip_reason.skip_message
        assert message.startswith(
            f"{name}: MLflow tracking server http://127.0.0.1:{port}: reading the versions of "
            f"'{name}' failed (connection refused"
        )
        assert "s3cret-pass" not in message
        assert skipped.cursor == cursor  # not advanced

        # The server is back: the version registered during the outage is not lost.
        back = _tick(sensor, instance, mlflow, skipped.cursor)
        assert [r.run_key for r in back.run_requests] == [f"{name}/2"]


class _Clock(datetime):
    """``datetime`` whose ``now()`` is ``NOW``: the sensor's "today" without the calendar."""

    NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)

    @classmethod
    def now(cls, tz=None):
        return cls.NOW.astimezone(tz) if tz is not None else cls.NOW.replace(tzinfo=None)


@pytest.mark.parametrize(
    ("now", "week"),
    [
        (datetime(2026, 11, 25, 15, 30, tzinfo=UTC), "2026-11-16"),  # a Wednesday
        (datetime(2026, 11, 30, 0, 0, tzinfo=UTC), "2026-11-23"),  # the Monday the week ends
    ],
)
def test_a_request_pins_the_last_complete_week_at_detection(registered, monkeypatch, now, week):
    spec, mlflow, source = registered
    name = spec.registered_model
    mlflow.tracker().register_version(name, source=str(source), tags={"eval.log_version": "v2"})
    monkeypatch.delenv("EVAL_REGISTRY_WEEK", raising=False)
    monkeypatch.setattr(_Clock, "NOW", now)
    monkeypatch.setattr(assets.sensors, "datetime", _Clock)
    candidates = build_candidate_assets(spec)
    with instance_for_test() as instance:
        [request] = _tick(build_registry_sensor([candidates]), instance, mlflow).run_requests
    assert request.run_config == {"ops": {candidates.asset.op.name: {"config": {"week": week}}}}
    assert request.tags["eval/week"] == week
