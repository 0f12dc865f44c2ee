"""Publishing artifact folders to S3, against moto's real HTTP server on loopback.

Also checks that MLflow's artifact store writes to the same kind of endpoint through boto3
(``MLFLOW_S3_ENDPOINT_URL``), the path the Dagster job uses for run artifacts.
"""

from __future__ import annotations

import hashlib
import json
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pandas as pd
import pytest
from support.mlflow_store import migrated_store
from support.s3_server import moto_s3_server

from eval_pipelines import object_store
from eval_pipelines.errors import EvalError
from eval_pipelines.object_store import (
    MANIFEST,
    fetch_folders,
    parse_s3_url,
    publish_file,
    publish_folder,
    read_text,
)

pytestmark = pytest.mark.timeout(120)

ARTIFACT_NAMES = [
    "comparison.parquet",
    "coverage.parquet",
    "drift.parquet",
    "metrics.parquet",
    "report.md",
    "run.json",
    "validation.json",
    "verdict.json",
]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_s3_server() as url:
        yield url


@pytest.fixture
def s3(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint)


@pytest.fixture
def bucket(s3) -> str:
    """A fresh bucket per test: moto's state is shared by every test in the process."""
    name = f"evals-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def artifact_folder(path: Path, decision: str = "ship") -> Path:
    """A folder with the file names and formats ``write_artifacts`` produces."""
    path.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"slice": ["overall", "android"], "metric": ["roc_auc"] * 2})
    for name in ARTIFACT_NAMES:
        if name.endswith(".parquet"):
            frame.to_parquet(path / name, index=False)
    for name in ("run.json", "validation.json"):
        (path / name).write_text(json.dumps({"name": name}) + "\n")
    verdict = {"decision": decision, "model": "fraud_detector", "window": "2026-11-16"}
    (path / "verdict.json").write_text(json.dumps(verdict, indent=2) + "\n")
    (path / "report.md").write_text(f"# fraud_detector 2026-11-16\n\nDecision: {decision}\n")
    return path


def keys(s3, bucket: str, prefix: str = "") -> dict[str, dict]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"]: item for page in pages for item in page.get("Contents", [])}


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bucket/some/prefix") == ("bucket", "some/prefix")
    assert parse_s3_url("s3://bucket/some/prefix/") == ("bucket", "some/prefix")
    assert parse_s3_url("s3://my.bucket-1") == ("my.bucket-1", "")
    for bad in (
        "bucket/prefix",
        "https://bucket/prefix",
        "s3://",
        "s3:///prefix",
        "s3://Bad_Bucket/x",
        "s3://bucket/a//b",
        "s3://bucket/a/../b",
        "s3://bucket/x?versionId=1",
        "s3://key:secret@bucket/x",
    ):
        with pytest.raises(EvalError) as info:
            parse_s3_url(bad)
        assert "secret" not in str(info.value)


def test_publish_uploads_every_file_then_the_manifest(tmp_path: Path, s3, bucket: str, endpoint):
    folder = artifact_folder(tmp_path / "2026-11-16")
    url = f"s3://{bucket}/evals/fraud_detector/2026-11-16"

    assert publish_folder(folder, url + "/", endpoint_url=endpoint) == url

    prefix = "evals/fraud_detector/2026-11-16/"
    stored = keys(s3, bucket, prefix)
    assert sorted(stored) == sorted(prefix + n for n in [*ARTIFACT_NAMES, MANIFEST])
    for name in ARTIFACT_NAMES:
        body = s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
        assert body == (folder / name).read_bytes()
    types = {k: s3.head_object(Bucket=bucket, Key=k)["ContentType"] for k in stored}
    assert types[prefix + "metrics.parquet"] == "application/vnd.apache.parquet"
    assert types[prefix + "verdict.json"] == "application/json"
    assert types[prefix + "report.md"].startswith("text/markdown")
    assert types[prefix + MANIFEST] == "application/json"

    manifest = json.loads(read_text(f"{url}/{MANIFEST}", endpoint_url=endpoint))
    assert [f["name"] for f in manifest["files"]] == ARTIFACT_NAMES
    for entry in manifest["files"]:
        data = (folder / entry["name"]).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["published_at"].endswith("+00:00")
    assert json.loads(read_text(f"{url}/verdict.json", endpoint_url=endpoint))["decision"] == (
        "ship"
    )


def record_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(operation, key) of every S3 call publish_folder makes, in order."""
    calls: list[tuple[str, str]] = []
    real = object_store._client

    def client(endpoint_url):
        c = real(endpoint_url)

        def record(params, model, **_):
            key = params.get("Key") or ",".join(
                o["Key"] for o in params.get("Delete", {}).get("Objects", [])
            )
            calls.append((model.name, key))

        c.meta.events.register("provide-client-params.s3.*", record)
        return c

    monkeypatch.setattr(object_store, "_client", client)
    return calls


def test_manifest_is_deleted_first_and_written_last(
    tmp_path: Path, bucket: str, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers treat a folder without a manifest as absent, so it brackets every change."""
    folder = artifact_folder(tmp_path / "w")
    url = f"s3://{bucket}/evals/w"
    calls = record_calls(monkeypatch)
    publish_folder(folder, url, endpoint_url=endpoint)
    writes = [c for c in calls if c[0] in ("PutObject", "DeleteObject", "DeleteObjects")]
    assert writes[-1] == ("PutObject", f"evals/w/{MANIFEST}")
    assert len(writes) == len(ARTIFACT_NAMES) + 1

    calls.clear()
    (folder / "coverage.parquet").unlink()
    publish_folder(folder, url, endpoint_url=endpoint)
    writes = [c for c in calls if c[0] in ("PutObject", "DeleteObject", "DeleteObjects")]
    assert writes[0] == ("DeleteObject", f"evals/w/{MANIFEST}")
    assert writes[-2] == ("DeleteObjects", "evals/w/coverage.parquet")
    assert writes[-1] == ("PutObject", f"evals/w/{MANIFEST}")

    calls.clear()
    publish_folder(folder, url, endpoint_url=endpoint)  # identical: reads only
    assert [c[0] for c in calls] == ["ListObjectsV2", "GetObject"]


def test_endpoint_from_aws_endpoint_url(tmp_path, s3, bucket, endpoint, monkeypatch):
    """Without an argument the endpoint comes from boto3's own AWS_ENDPOINT_URL handling."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    url = publish_folder(artifact_folder(tmp_path / "w"), f"s3://{bucket}/w")
    assert json.loads(read_text(f"{url}/verdict.json"))["model"] == "fraud_detector"


def test_republish_replaces_the_folder_and_identical_content_is_a_no_op(
    tmp_path: Path, s3, bucket: str, endpoint: str
) -> None:
    folder = artifact_folder(tmp_path / "week")
    url = f"s3://{bucket}/evals/week"
    publish_folder(folder, url, endpoint_url=endpoint)
    first = json.loads(read_text(f"{url}/{MANIFEST}", endpoint_url=endpoint))
    # A sibling folder and a deeper key must survive the re-publish.
    s3.put_object(Bucket=bucket, Key="evals/weekly/keep.txt", Body=b"x")
    s3.put_object(Bucket=bucket, Key="evals/week/sub/keep.txt", Body=b"x")

    publish_folder(folder, url, endpoint_url=endpoint)  # identical content
    assert json.loads(read_text(f"{url}/{MANIFEST}", endpoint_url=endpoint)) == first

    (folder / "drift.parquet").unlink()
    (folder / "verdict.json").write_text('{"decision": "hold"}\n')
    publish_folder(folder, url, endpoint_url=endpoint)

    stored = keys(s3, bucket)
    assert "evals/week/drift.parquet" not in stored
    assert "evals/weekly/keep.txt" in stored
    assert "evals/week/sub/keep.txt" in stored
    assert json.loads(read_text(f"{url}/verdict.json", endpoint_url=endpoint)) == {
        "decision": "hold"
    }
    manifest = json.loads(read_text(f"{url}/{MANIFEST}", endpoint_url=endpoint))
    assert "drift.parquet" not in [f["name"] for f in manifest["files"]]
    assert len(manifest["files"]) == len(ARTIFACT_NAMES) - 1


def test_missing_bucket_names_bucket_and_hides_credentials(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "CANARYsecretKEY/" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", canary)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIACANARYKEYID00000")
    folder = artifact_folder(tmp_path / "w")
    with pytest.raises(EvalError) as info:
        publish_folder(folder, "s3://no-such-bucket-xyz/evals/w", endpoint_url=endpoint)
    message = str(info.value)
    assert "no-such-bucket-xyz" in message
    assert "evals/w" in message
    assert "does not exist" in message
    rendered = "".join(traceback.format_exception(info.value))
    for secret in (canary, "AKIACANARYKEYID00000"):
        assert secret not in message
        assert secret not in rendered


def test_unreachable_endpoint_is_one_sentence(tmp_path: Path, monkeypatch) -> None:
    canary = "CANARY" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", canary)
    with pytest.raises(EvalError) as info:
        # Port 1 on loopback: refused at once, so the bounded retries finish quickly.
        publish_folder(
            artifact_folder(tmp_path / "w"), "s3://b-ucket/w", endpoint_url="http://127.0.0.1:1"
        )
    message = str(info.value)
    assert "could not connect" in message and "http://127.0.0.1:1" in message
    assert "s3://b-ucket/w" in message
    assert canary not in message


def test_missing_object_and_bad_folder(tmp_path: Path, bucket: str, endpoint: str) -> None:
    with pytest.raises(EvalError, match="no such object"):
        read_text(f"s3://{bucket}/nothing/verdict.json", endpoint_url=endpoint)
    with pytest.raises(EvalError, match="not a folder"):
        publish_folder(tmp_path / "absent", f"s3://{bucket}/x", endpoint_url=endpoint)
    with pytest.raises(EvalError, match="give a prefix"):
        publish_folder(artifact_folder(tmp_path / "w"), f"s3://{bucket}", endpoint_url=endpoint)


def test_mlflow_logs_artifacts_to_s3_through_boto3(
    tmp_path: Path, s3, bucket: str, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow needs MLFLOW_S3_ENDPOINT_URL (or boto3's AWS_ENDPOINT_URL) plus AWS credentials."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)
    client = MlflowClient(tracking_uri=migrated_store(tmp_path / "mlflow.db"))
    experiment = client.create_experiment(
        f"fraud-{uuid.uuid4().hex[:6]}", artifact_location=f"s3://{bucket}/mlflow"
    )
    run = client.create_run(experiment)
    report = tmp_path / "report.md"
    report.write_text("# report\n")

    client.log_artifact(run.info.run_id, str(report))

    key = f"mlflow/{run.info.run_id}/artifacts/report.md"
    assert key in keys(s3, bucket, "mlflow/")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"# report\n"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["report.md"]


def test_fetch_folders_copies_complete_folders_only_and_checks_each_file(
    endpoint, s3, bucket, tmp_path
):
    names = ("verdict.json", "metrics.parquet")
    root = f"s3://{bucket}/runs/fraud_detector"
    for week, decision in (("2026-11-09", "ship"), ("2026-11-16", "hold")):
        folder = artifact_folder(tmp_path / "published" / week, decision)
        publish_folder(folder, f"{root}/{week}", endpoint_url=endpoint)
    # A folder without a manifest is being published (or failed): not fetched.
    s3.put_object(Bucket=bucket, Key="runs/fraud_detector/2026-11-23/verdict.json", Body=b"{}")

    into = tmp_path / "staging"
    assert fetch_folders(root, into, names, endpoint_url=endpoint) == ["2026-11-09", "2026-11-16"]
    assert sorted(p.name for p in into.iterdir()) == ["2026-11-09", "2026-11-16"]
    for week in ("2026-11-09", "2026-11-16"):
        assert sorted(p.name for p in (into / week).iterdir()) == sorted(names)
        published = tmp_path / "published" / week / "verdict.json"
        assert (into / week / "verdict.json").read_bytes() == published.read_bytes()

    # An object that no longer matches its manifest is refused, and the local copy is kept.
    key = "runs/fraud_detector/2026-11-16/verdict.json"
    s3.put_object(Bucket=bucket, Key=key, Body=b'{"decision": "ship"}')
    (into / "2026-11-16" / "verdict.json").write_text("stale")
    with pytest.raises(EvalError, match="does not match its manifest"):
        fetch_folders(root, into, names, endpoint_url=endpoint)
    assert (into / "2026-11-16" / "verdict.json").read_text() == "stale"
    assert not [p for p in (into / "2026-11-16").iterdir() if p.name.startswith(".")]


def test_publish_file_puts_one_object(endpoint, s3, bucket, tmp_path):
    page = tmp_path / "dashboard.html"
    page.write_text("<html>trend</html>")
    url = f"s3://{bucket}/runs/fraud_detector/dashboard.html"
    assert publish_file(page, url, endpoint_url=endpoint) == url
    stored = s3.get_object(Bucket=bucket, Key="runs/fraud_detector/dashboard.html")
    assert stored["Body"].read() == b"<html>trend</html>"
    assert stored["ContentType"] == "text/html; charset=utf-8"
