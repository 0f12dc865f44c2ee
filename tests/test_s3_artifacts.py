"""A Dagster week with an ``s3://`` artifact root and MLflow artifacts on S3.

Both go through boto3 over real HTTP to moto's server mode on loopback: the report and the
other artifacts under ``s3://<bucket>/runs/<model>/<week>/`` (with the manifest written
last), the MLflow run's artifacts under the experiment's ``s3://`` artifact location.
"""

import json
from pathlib import Path

import boto3
import pytest
from dagster import AssetKey, DagsterInstance, materialize
from mlflow.tracking import MlflowClient
from support.mlflow_store import migrated_store
from support.s3_server import moto_s3_server

from assets.evaluation import build_weekly_assets
from assets.specs import PROJECT_ROOT
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.spec import load_spec
from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource

WEEK = "2026-11-16"
EARLIER_WEEK = "2026-11-09"
SPEC = load_spec(PROJECT_ROOT / "evals" / "fraud_detector.yaml")


@pytest.fixture
def endpoint():
    with moto_s3_server() as url:
        yield url


def test_a_week_publishes_its_artifacts_and_mlflow_run_to_s3(endpoint, tmp_path: Path, monkeypatch):
    warehouse = tmp_path / "warehouse.duckdb"
    build_demo_warehouse(warehouse, rows=20_000)
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="evals")
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)

    def run_week(week: str, staging: Path):
        return materialize(
            [build_weekly_assets(SPEC)],
            partition_key=week,
            instance=DagsterInstance.ephemeral(),
            resources={
                "warehouse": WarehouseResource(url=f"duckdb:///{warehouse}"),
                "artifacts": ArtifactStoreResource(
                    root="s3://evals/runs", staging=str(staging), endpoint_url=endpoint
                ),
                "mlflow": MlflowResource(
                    tracking_uri=migrated_store(tmp_path / "mlflow.db", exist_ok=True),
                    artifact_location="s3://evals/mlflow",
                ),
                "alerts": AlertsResource(),
            },
        )

    # The week before, in a run of its own whose staging folder is then gone (a pod per run).
    assert run_week(EARLIER_WEEK, tmp_path / "pod-1").success
    result = run_week(WEEK, tmp_path / "staging")
    assert result.success

    prefix = f"runs/fraud_detector/{WEEK}/"
    listed = s3.list_objects_v2(Bucket="evals", Prefix=prefix)["Contents"]
    names = {item["Key"].removeprefix(prefix) for item in listed}
    assert {"report.md", "verdict.json", "metrics.parquet", "_manifest.json"} <= names
    verdict = json.loads(s3.get_object(Bucket="evals", Key=prefix + "verdict.json")["Body"].read())
    local = json.loads(
        (tmp_path / "staging" / "fraud_detector" / WEEK / "verdict.json").read_text()
    )
    assert verdict == local and verdict["decision"] == "hold"

    [report] = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == AssetKey(["fraud_detector", "report"])
    ]
    assert report.metadata["report_location"].value == f"s3://evals/{prefix}report.md"
    assert report.metadata["report_html"].value == f"s3://evals/{prefix}report.html"

    run_id = report.metadata["mlflow_run_id"].value
    mlflow_keys = {
        item["Key"] for item in s3.list_objects_v2(Bucket="evals", Prefix="mlflow/")["Contents"]
    }
    assert f"mlflow/{run_id}/artifacts/report.md" in mlflow_keys
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert "verdict.json" in {a.path for a in client.list_artifacts(run_id)}

    # The trend page covers both weeks, though the second run's staging held only its own:
    # it is built from the published week folders and published beside them.
    [dashboard] = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == AssetKey(["fraud_detector", "dashboard"])
    ]
    page_url = "s3://evals/runs/fraud_detector/dashboard.html"
    assert dashboard.metadata["dashboard"].value == page_url
    assert dashboard.metadata["weeks"].value == 2
    page = s3.get_object(Bucket="evals", Key="runs/fraud_detector/dashboard.html")["Body"].read()
    for week in (EARLIER_WEEK, WEEK):
        assert f'href="{week}/report.html"'.encode() in page
