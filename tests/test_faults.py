"""Faults, caused for real: the warehouse, MLflow or S3 unreachable, slow or stopped mid-run,
and the process killed mid-evaluation. docs/reliability.md has the table these tests pin down.

Every fault must end in one clear sentence after a bounded number of attempts (counted by the
test's own servers, never timed), leave either no artifact folder (failed before writing) or a
complete one (failed while publishing), never a FINISHED MLflow run for an incomplete publish,
and a re-run must finish the job: same files, the same MLflow run, no duplicates. Timeouts
(pytest-timeout) only stop a test that hangs.
"""

import contextlib
import http.server
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance, materialize
from mlflow.tracking import MlflowClient
from support.data import ARTIFACT_FILES
from support.mlflow_server import free_port, run_mlflow_server
from support.mlflow_store import migrated_store
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


@pytest.mark.timeout(120)
def test_unreachable_warehouse_fails_in_one_sentence_and_marks_the_run_failed(
    tmp_path, capsys, monkeypatch
):
    url = f"postgresql+psycopg2://eval@127.0.0.1:{_closed_port()}/eval"
    tracking = migrated_store(tmp_path / "mlflow.db")
    monkeypatch.setenv("EVAL_MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "mlflow-artifacts"))
    code = cli.main(
        [
            "run",
            *("--spec", str(SPEC_PATH), "--week", WEEK, "--out", str(tmp_path / "out")),
            *("--warehouse", url, "--mlflow", tracking),
        ]
    )
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith("error: warehouse postgresql+psycopg2://eval@127.0.0.1:")
    assert "Connection refused" in line and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    [run] = _mlflow_runs(tracking)
    assert run.info.status == "FAILED"
    assert "Connection refused" in run.data.tags["eval.error"]


# ------------------------------------------------------------------------------ MLflow


@contextlib.contextmanager
def _failing_http_server(status: int = 503) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server answering every request with ``status``; yields its URL and the
    list of request paths it received, in order."""
    received: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            received.append(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.timeout(120)
def test_mlflow_down_at_start_fails_before_reading_the_warehouse(warehouse, tmp_path):
    host = f"http://127.0.0.1:{_closed_port()}"
    tracker = Tracker(host, http_timeout_s=5, http_max_retries=2, http_backoff_factor=1)
    with pytest.raises(TrackingError) as raised:
        _run(warehouse, tmp_path / "out", tracker)
    message = str(raised.value)
    assert message.startswith(f"MLflow tracking server {host}: starting the MLflow run")
    assert "connection refused" in message
    assert not (tmp_path / "out").exists()  # failed before evaluating: nothing written


@pytest.mark.timeout(120)
@pytest.mark.parametrize("retries", [0, 2])
def test_a_failing_mlflow_server_is_asked_exactly_one_plus_retries_times(
    warehouse, tmp_path, retries
):
    """MLflow's own default is 7 retries with exponential backoff (minutes on a dead server);
    the Tracker's bound is what the server sees: 1 + http_max_retries requests, then one
    sentence, and nothing written."""
    with _failing_http_server(503) as (host, received):
        tracker = Tracker(host, http_timeout_s=5, http_max_retries=retries, http_backoff_factor=0)
        with pytest.raises(TrackingError) as raised:
            _run(warehouse, tmp_path / "out", tracker)
    message = str(raised.value)
    assert message.startswith(f"MLflow tracking server {host}: starting the MLflow run")
    assert f"{retries} retries" in message
    lookup = "/api/2.0/mlflow/experiments/get-by-name?experiment_name=eval-pipelines%2F"
    assert received == [f"{lookup}fraud_detector"] * (1 + retries)
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(120)
def test_mlflow_that_never_answers_times_out_within_the_bounds(warehouse, tmp_path):
    # A server that accepts connections and never sends a byte back -- a hung server. Each
    # accepted connection is one attempt of the client.
    accepted: list[socket.socket] = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)

        def accept_forever() -> None:
            with contextlib.suppress(OSError):  # the listening socket was closed
                while True:
                    accepted.append(silent.accept()[0])

        threading.Thread(target=accept_forever, daemon=True).start()
        host = f"http://127.0.0.1:{silent.getsockname()[1]}"
        tracker = Tracker(host, http_timeout_s=1, http_max_retries=1, http_backoff_factor=0)
        try:
            with pytest.raises(TrackingError) as raised:
                _run(warehouse, tmp_path / "out", tracker)
        finally:
            with contextlib.suppress(OSError):
                silent.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            for connection in accepted:
                connection.close()
    message = str(raised.value)
    assert "no answer in time" in message and host in message
    assert "timeout 1 s, 1 retries" in message
    assert len(accepted) == 2  # the first attempt and its one retry, each timed out
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(300)
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
    with pytest.raises(TrackingError) as raised:
        _run(warehouse, out, tracker)
    message = str(raised.value)
    assert message.startswith(f"MLflow tracking server {url}: publishing run")
    assert f"the artifacts in {out.resolve()} are complete" in message
    assert {p.name for p in out.iterdir()} == ARTIFACT_FILES  # the local folder is complete
    first = tmp_path / "first"
    out.rename(first)

    monkeypatch.setattr(runner, "evaluate", real_evaluate)
    with run_mlflow_server(root) as restarted:  # same backend store, another port
        [before] = _mlflow_runs(restarted)
        # The server was down for the whole publish, so nobody could mark the run FAILED:
        # it is still RUNNING (never FINISHED), and the re-run takes it over.
        assert before.info.status == "RUNNING"
        again = Tracker(restarted, http_timeout_s=5, http_max_retries=2, http_backoff_factor=1)
        outcome = _run(warehouse, out, again)
        [after] = _mlflow_runs(restarted)
        assert after.info.run_id == before.info.run_id == outcome.mlflow_run.run_id
        assert after.info.status == "FINISHED"
        listed = {a.path for a in MlflowClient(restarted).list_artifacts(after.info.run_id)}
        assert listed == ARTIFACT_FILES | {"tables"}  # tables/: the log_table slice tables
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
        "mlflow": MlflowResource(
            tracking_uri=migrated_store(tmp_path / "mlflow.db"),
            artifact_location=str(tmp_path / "mlflow-artifacts"),
        ),
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


@pytest.mark.timeout(180)
def test_s3_endpoint_down_fails_with_the_local_folder_complete(warehouse, tmp_path):
    with moto_s3_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="faults-down")
    # The server is stopped now: the endpoint refuses connections.
    tracking = migrated_store(tmp_path / "mlflow.db")
    out = tmp_path / "out"
    with (
        contextlib.ExitStack() as env,
        pytest.raises(EvalError) as raised,
    ):
        env.enter_context(_fake_aws())
        _run(
            warehouse,
            out,
            Tracker(tracking, artifact_location=str(tmp_path / "mlflow-artifacts")),
            s3_url="s3://faults-down/evals/w",
            s3_endpoint_url=endpoint,
        )
    message = str(raised.value)
    assert "could not connect to the S3 endpoint" in message and endpoint in message
    assert {p.name for p in out.iterdir()} == ARTIFACT_FILES
    [run] = _mlflow_runs(tracking)
    assert run.info.status == "FAILED" and "S3 endpoint" in run.data.tags["eval.error"]


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


# The CLI in a child process, made to stop at one point of its run: it writes ``marker`` (what
# the test waits for) and then waits for a signal, so the SIGKILL lands exactly there, however
# fast or slow the machine is. Everything else is the real ``eval-pipelines run``.
KILL_POINTS = {
    # the MLflow run is open and the window's statistics are being aggregated
    "evaluating": ("eval_pipelines.pipeline", "collect_statistics"),
    # every artifact is written to the staging folder; the rename into place is next
    "writing": ("eval_pipelines.artifacts", "_replace_dir"),
}
STOPPING_CHILD = """
import importlib, signal, sys
from pathlib import Path
from eval_pipelines import cli

module_name, function_name, marker = sys.argv[1:4]
module = importlib.import_module(module_name)

def stop_here(*args, **kwargs):
    Path(marker).write_text(function_name)
    while True:
        signal.pause()

setattr(module, function_name, stop_here)
sys.exit(cli.main(sys.argv[4:]))
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_killed_mid_run_leaves_no_folder_and_a_rerun_is_identical(
    warehouse, tmp_path, capsys, monkeypatch, point
):
    db = tmp_path / "mlflow.db"
    tracking = migrated_store(db)
    monkeypatch.setenv("EVAL_MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "mlflow-artifacts"))
    out = tmp_path / "out"
    marker = tmp_path / "stopped"
    args = ["run", "--spec", str(SPEC_PATH), "--week", WEEK, "--out", str(out)]
    args += ["--warehouse", f"duckdb:///{warehouse}", "--mlflow", tracking]
    process = subprocess.Popen(
        [sys.executable, "-c", STOPPING_CHILD, *KILL_POINTS[point], str(marker), *args],
        cwd=tmp_path,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240  # only against a hang: the marker is the signal
        while not marker.exists():
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, f"the child never reached {point}"
            time.sleep(0.05)
        assert process.poll() is None
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    assert not out.exists()  # nothing half-written under the target name
    staging = list(tmp_path.glob(".out.tmp-*"))
    if point == "writing":  # killed with a complete staging folder: left behind, unrenamed
        [folder] = staging
        assert {p.name for p in folder.iterdir()} == ARTIFACT_FILES
    else:
        assert staging == []
    assert _running_runs(db) == ["RUNNING"]  # a killed process cannot say anything

    assert cli.main(args) == 0  # the re-run of the partition
    assert {p.name for p in out.iterdir()} == ARTIFACT_FILES
    assert not list(tmp_path.glob(".out.*"))  # the dead writer's staging folder is gone
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
