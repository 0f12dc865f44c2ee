"""Faults, caused for real: the warehouse, MLflow or S3 unreachable, slow or stopped mid-run,
and the process killed mid-evaluation. docs/reliability.md has the table these tests pin down.

Every fault must end in one clear sentence within bounded time, leave either no artifact
folder (failed before writing) or a complete one (failed while publishing), never a FINISHED
MLflow run for an incomplete publish, and a re-run must finish the job: same files, the same
MLflow run, no duplicates.
"""

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance, materialize
from mlflow.tracking import MlflowClient
from support.data import ARTIFACT_FILES
from support.mlflow_server import free_port, run_mlflow_server
from support.s3_server import moto_s3_server

import eval_pipelines.runner as runner
from assets.evaluation import build_weekly_assets
from assets.specs import PROJECT_ROOT
from eval_pipelines import cli
from eval_pipelines.artifacts import remove_stale_staging
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.errors import EvalError, WarehouseError
from eval_pipelines.object_store import MANIFEST
from eval_pipelines.runner import Publishing, run_evaluation
from eval_pipelines.spec import load_spec
from eval_pipelines.tracking import Tracker, TrackingError
from eval_pipelines.warehouse import Warehouse
from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource

WEEK = "2026-11-16"
SPEC_PATH = PROJECT_ROOT / "evals" / "fraud_detector.yaml"
SPEC = load_spec(SPEC_PATH)
RUN_KEY = f"fraud_detector/week/{WEEK}"
EXPERIMENT = "eval-pipelines/fraud_detector"
# Deterministic files (run.json has timings, report.md nothing volatile but checked anyway).
SAME = ["metrics.parquet", "comparison.parquet", "drift.parquet", "coverage.parquet"]
SAME += ["verdict.json", "validation.json", "report.md"]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "warehouse.duckdb"
    build_demo_warehouse(path, rows=40_000)
    return path


def _spec(path: Path):
    return SPEC.model_copy(update={"warehouse": f"duckdb:///{path}"})


def _closed_port() -> int:
    return free_port()  # nothing listens there once the probe socket is closed


def _run(warehouse: Path, out: Path, tracker: Tracker | None = None, **publishing):
    spec = _spec(warehouse)
    with Warehouse(spec.warehouse) as connection:
        return run_evaluation(
            spec,
            WEEK,
            connection,
            out,
            Publishing(tracker=tracker, **publishing),
            run_key=RUN_KEY,
            run_name=f"fraud_detector week {WEEK}",
        )


def _mlflow_runs(tracking_uri: str):
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`eval.run_key` = '{RUN_KEY}'"
    )


def _same_files(a: Path, b: Path) -> None:
    """Same verdict and validation bytes; frames equal, floats to 1e-12 relative (DuckDB's
    parallel SUM over doubles is not bit-reproducible; docs/reliability.md)."""
    for name in ("verdict.json", "validation.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for name in SAME:
        if not name.endswith(".parquet"):
            continue
        left, right = pd.read_parquet(a / name), pd.read_parquet(b / name)
        assert list(left.columns) == list(right.columns) and len(left) == len(right), name
        for column in left.columns:
            x, y = left[column].to_numpy(), right[column].to_numpy()
            if np.issubdtype(x.dtype, np.floating):
                np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15, equal_nan=True)
            else:
                assert list(x) == list(y), f"{name}:{column}"


# ------------------------------------------------------------------------------ warehouse


def test_unreachable_warehouse_fails_in_one_sentence_and_marks_the_run_failed(tmp_path, capsys):
    url = f"postgresql+psycopg2://eval@127.0.0.1:{_closed_port()}/eval"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    started = time.monotonic()
    code = cli.main(
        [
            "run",
            *("--spec", str(SPEC_PATH), "--week", WEEK, "--out", str(tmp_path / "out")),
            *("--warehouse", url, "--mlflow", tracking),
        ]
    )
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith("error: warehouse postgresql+psycopg2://eval@127.0.0.1:")
    assert "Connection refused" in line and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    [run] = _mlflow_runs(tracking)
    assert run.info.status == "FAILED"
    assert "Connection refused" in run.data.tags["eval.error"]
    assert elapsed < 30


# ------------------------------------------------------------------------------ MLflow


def test_mlflow_down_at_start_fails_fast_before_reading_the_warehouse(warehouse, tmp_path):
    host = f"http://127.0.0.1:{_closed_port()}"
    tracker = Tracker(host, http_timeout_s=5, http_max_retries=2, http_backoff_factor=1)
    started = time.monotonic()
    with pytest.raises(TrackingError) as raised:
        _run(warehouse, tmp_path / "out", tracker)
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert message.startswith(f"MLflow tracking server {host}: starting the MLflow run")
    assert "connection refused" in message
    assert not (tmp_path / "out").exists()  # failed before evaluating: nothing written
    assert elapsed < 15, elapsed  # MLflow's own defaults would retry for minutes


def test_mlflow_that_never_answers_times_out_within_the_bounds(warehouse, tmp_path):
    # A socket that listens but never accepts: the TCP handshake completes in the kernel's
    # backlog, then no byte comes back -- a hung server.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        host = f"http://127.0.0.1:{silent.getsockname()[1]}"
        tracker = Tracker(host, http_timeout_s=1, http_max_retries=1, http_backoff_factor=0)
        started = time.monotonic()
        with pytest.raises(TrackingError) as raised:
            _run(warehouse, tmp_path / "out", tracker)
        elapsed = time.monotonic() - started
    assert "no answer in time" in str(raised.value) and host in str(raised.value)
    assert 1.5 < elapsed < 15, elapsed  # (1 retry + 1) x 1 s timeout, plus overhead
    assert not (tmp_path / "out").exists()


def test_mlflow_server_stopped_mid_run_then_restarted_finishes_the_same_run(
    warehouse, tmp_path, monkeypatch
):
    root = tmp_path / "server"
    stack = contextlib.ExitStack()
    url = stack.enter_context(run_mlflow_server(root))
    real_evaluate = runner.evaluate

    def evaluate_then_stop_the_server(*args, **kwargs):
        evaluation = real_evaluate(*args, **kwargs)
        stack.close()  # SIGTERM to the server's process group, waits for it to exit
        return evaluation

    monkeypatch.setattr(runner, "evaluate", evaluate_then_stop_the_server)
    tracker = Tracker(url, http_timeout_s=5, http_max_retries=2, http_backoff_factor=1)
    out = tmp_path / "out"
    started = time.monotonic()
    with pytest.raises(TrackingError) as raised:
        _run(warehouse, out, tracker)
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert message.startswith(f"MLflow tracking server {url}: publishing run")
    assert f"the artifacts in {out.resolve()} are complete" in message
    assert {p.name for p in out.iterdir()} == ARTIFACT_FILES  # the local folder is complete
    first = tmp_path / "first"
    out.rename(first)
    assert elapsed < 60, elapsed

    monkeypatch.setattr(runner, "evaluate", real_evaluate)
    with run_mlflow_server(root) as restarted:  # same backend store, another port
        [before] = _mlflow_runs(restarted)
        assert before.info.status in ("RUNNING", "FAILED")  # never FINISHED
        again = Tracker(restarted, http_timeout_s=5, http_max_retries=2, http_backoff_factor=1)
        outcome = _run(warehouse, out, again)
        [after] = _mlflow_runs(restarted)
        assert after.info.run_id == before.info.run_id == outcome.mlflow_run.run_id
        assert after.info.status == "FINISHED"
        listed = {a.path for a in MlflowClient(restarted).list_artifacts(after.info.run_id)}
        assert listed == ARTIFACT_FILES
    _same_files(first, out)


# ------------------------------------------------------------------------------ S3


def _dagster_resources(warehouse: Path, tmp_path: Path, endpoint: str, bucket: str):
    return {
        "warehouse": WarehouseResource(url=f"duckdb:///{warehouse}"),
        "artifacts": ArtifactStoreResource(
            root=f"s3://{bucket}/evals",
            staging=str(tmp_path / "staging"),
            endpoint_url=endpoint,
        ),
        "mlflow": MlflowResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"),
        "alerts": AlertsResource(),
    }


def test_missing_bucket_fails_the_dagster_run_then_a_rerun_publishes(warehouse, tmp_path):
    bucket = "faults-missing-bucket"
    local = tmp_path / "staging" / "fraud_detector" / WEEK
    with moto_s3_server() as endpoint:
        resources = _dagster_resources(warehouse, tmp_path, endpoint, bucket)
        instance = DagsterInstance.ephemeral()
        assets = [build_weekly_assets(SPEC)]
        result = materialize(
            assets,
            partition_key=WEEK,
            instance=instance,
            resources=resources,
            raise_on_error=False,
        )
        assert not result.success
        [failure] = [e for e in result.all_events if e.is_step_failure]
        description = failure.step_failure_data.user_failure_data.description
        assert f"bucket '{bucket}' does not exist" in description
        assert {p.name for p in local.iterdir()} == ARTIFACT_FILES  # complete locally
        [run] = _mlflow_runs(resources["mlflow"].tracking_uri)
        assert run.info.status == "FAILED"

        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket=bucket)
        again = materialize(assets, partition_key=WEEK, instance=instance, resources=resources)
        assert again.success
        keys = {
            o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"evals/fraud_detector/{WEEK}/")[
                "Contents"
            ]
        }
        assert keys == {
            f"evals/fraud_detector/{WEEK}/{name}" for name in {*ARTIFACT_FILES, MANIFEST}
        }
        [run] = _mlflow_runs(resources["mlflow"].tracking_uri)
        assert run.info.status == "FINISHED"


def test_s3_endpoint_down_fails_in_bounded_time_with_the_local_folder_complete(warehouse, tmp_path):
    with moto_s3_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="faults-down")
    # The server is stopped now: the endpoint refuses connections.
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "out"
    started = time.monotonic()
    with (
        contextlib.ExitStack() as env,
        pytest.raises(EvalError) as raised,
    ):
        env.enter_context(_fake_aws())
        _run(
            warehouse,
            out,
            Tracker(tracking),
            s3_url="s3://faults-down/evals/w",
            s3_endpoint_url=endpoint,
        )
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert "could not connect to the S3 endpoint" in message and endpoint in message
    assert {p.name for p in out.iterdir()} == ARTIFACT_FILES
    [run] = _mlflow_runs(tracking)
    assert run.info.status == "FAILED" and "S3 endpoint" in run.data.tags["eval.error"]
    assert elapsed < 60, elapsed


@contextlib.contextmanager
def _fake_aws():
    from support.s3_server import fake_aws_environment

    with fake_aws_environment():
        yield


# ------------------------------------------------------------------------------ killed


def _running_runs(db: Path) -> list[str]:
    if not db.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            return [row[0] for row in con.execute("SELECT status FROM runs")]
    except sqlite3.Error:
        return []  # tables not created yet


@pytest.mark.slow
def test_killed_mid_evaluation_leaves_no_folder_and_a_rerun_is_identical(tmp_path, capsys):
    big = tmp_path / "big.duckdb"
    build_demo_warehouse(big, rows=2_000_000)  # about 3 s of evaluation per week
    db = tmp_path / "mlflow.db"
    tracking = f"sqlite:///{db}"
    out = tmp_path / "out"
    args = ["run", "--spec", str(SPEC_PATH), "--week", WEEK, "--out", str(out)]
    args += ["--warehouse", f"duckdb:///{big}", "--mlflow", tracking]
    process = subprocess.Popen(
        [sys.executable, "-m", "eval_pipelines.cli", *args],
        cwd=tmp_path,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while "RUNNING" not in _running_runs(db):  # the run started: evaluation is under way
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        assert process.poll() is None, "finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    assert not out.exists()  # nothing half-written under the target name
    assert _running_runs(db) == ["RUNNING"]  # a killed process cannot say anything

    assert cli.main(args) == 0  # the re-run of the partition
    assert {p.name for p in out.iterdir()} == ARTIFACT_FILES
    assert not list(tmp_path.glob(".out.*"))  # no staging litter left next to it
    clean = tmp_path / "clean"
    assert cli.main([*args[:6], str(clean), *args[7:]]) == 0
    _same_files(out, clean)
    runs = _mlflow_runs(tracking)
    assert [r.info.status for r in runs] == ["FINISHED"]  # exactly one run for the key
    capsys.readouterr()


def test_staging_folders_of_dead_writers_are_removed_on_the_next_write(warehouse, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid is now free: a writer that was killed
    host = socket.gethostname().replace("~", "_").replace("/", "_")
    out = tmp_path / "week"
    stale = tmp_path / f".week.tmp-{host}~{dead.pid}~deadbeef"
    retired = tmp_path / f".week.old-{host}~{dead.pid}~deadbeef"
    live = tmp_path / f".week.tmp-{host}~{os.getpid()}~cafebabe"  # a writer still running
    elsewhere = tmp_path / ".week.tmp-otherhost~1~00000000"  # another host's, recent
    for folder in (stale, retired, live, elsewhere):
        folder.mkdir()
        (folder / "metrics.parquet").write_bytes(b"partial")
    _run(warehouse, out)
    assert {p.name for p in out.iterdir()} == ARTIFACT_FILES
    assert not stale.exists() and not retired.exists()
    assert live.exists() and elsewhere.exists()
    old = time.time() - 2 * 24 * 3600
    os.utime(elsewhere, (old, old))
    assert remove_stale_staging(out) == [elsewhere]


def test_warehouse_errors_are_warehouse_errors(tmp_path):
    # The DuckDB file vanished between scheduling and the run.
    with (
        pytest.raises(WarehouseError, match="not found"),
        Warehouse(f"duckdb:///{tmp_path / 'gone.duckdb'}") as w,
    ):
        w.query("SELECT 1", "probe")
