"""Secrets and privacy: a canary password must appear nowhere; PII columns never reported.

The canary is planted where credentials live: the password of the PostgreSQL warehouse URL
(the test server trusts loopback connections, so the password is accepted and ignored),
``MLFLOW_TRACKING_PASSWORD`` and ``user:password@`` in the tracking URI of a real MLflow
server (which has no authentication, so it ignores both). A CLI run, a Dagster
materialization and deliberately failing runs are then searched: every artifact file, every
MLflow param, tag, metric key, dataset input and logged artifact, the captured log records,
stdout/stderr, Dagster's event log and the error messages.
"""

import json
import logging
import urllib.parse
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize
from mlflow.tracking import MlflowClient
from sqlalchemy.engine import make_url
from support.data import WEEK, base_spec, random_window, write_warehouse
from support.mlflow_server import free_port
from support.mlflow_store import migrated_store

from assets.evaluation import build_weekly_assets
from assets.specs import PROJECT_ROOT
from eval_pipelines import cli
from eval_pipelines.errors import EvalError, SpecError
from eval_pipelines.runner import Publishing, run_evaluation
from eval_pipelines.spec import load_spec, parse_spec
from eval_pipelines.tracking import Tracker
from eval_pipelines.warehouse import Warehouse
from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource

CANARY = "Canary-7f3a9c-pw"
SPEC_PATH = PROJECT_ROOT / "evals" / "fraud_detector.yaml"
DEMO_WEEK = "2026-11-16"


def _with_password(url: str, password: str) -> str:
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def _with_userinfo(http_url: str) -> str:
    parts = urllib.parse.urlsplit(http_url)
    return parts._replace(netloc=f"evaluser:{CANARY}@{parts.netloc}").geturl()


@pytest.fixture(scope="module")
def pg_demo(postgres_url, tmp_path_factory) -> str:
    """The demo tables in their own database, reached with a canary password."""
    import psycopg2
    from support.postgres import copy_duckdb_tables

    from eval_pipelines.demo import build_demo_warehouse

    path = tmp_path_factory.mktemp("secrets") / "warehouse.duckdb"
    build_demo_warehouse(path, rows=40_000)
    url = make_url(postgres_url)
    admin = psycopg2.connect(
        url.set(drivername="postgresql", database="postgres").render_as_string(False)
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS secrets")
        cursor.execute("CREATE DATABASE secrets")
    admin.close()
    target = url.set(database="secrets").render_as_string(False)
    copy_duckdb_tables(path, target, ["inference_logs", "labels"])
    return _with_password(target, CANARY)


def _files_under(*roots: Path):
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file():
                yield path


def _assert_no(secret: str, *texts: str, where: str = "") -> None:
    for text in texts:
        assert secret not in text, f"{where}: {text[max(0, text.find(secret) - 200) :][:400]}"


def _assert_files_clean(secret: str, *roots: Path) -> None:
    for path in _files_under(*roots):
        data = path.read_bytes()
        assert secret.encode() not in data, path
        if path.suffix == ".parquet":  # decoded, in case of compression
            text = pd.read_parquet(path).to_csv()
            assert secret not in text, path


def _mlflow_texts(tracking: str, download: Path) -> list[str]:
    """Every param, tag, metric key, dataset input of every run, and the artifacts."""
    client = MlflowClient(tracking_uri=tracking)
    texts = []
    for experiment in client.search_experiments():
        texts.append(f"{experiment.name} {experiment.artifact_location} {experiment.tags}")
        for run in client.search_runs([experiment.experiment_id]):
            texts.append(json.dumps(run.data.params) + json.dumps(run.data.tags))
            texts.append(" ".join(run.data.metrics))
            texts.append(run.info.artifact_uri or "")
            for dataset_input in run.inputs.dataset_inputs:
                d = dataset_input.dataset
                texts.append(" ".join([d.name, d.digest, d.source, d.schema or "", d.profile]))
            target = download / run.info.run_id
            target.mkdir(parents=True)
            client.download_artifacts(run.info.run_id, "", str(target))
    return texts


def test_canary_appears_nowhere(pg_demo, mlflow_server, tmp_path, monkeypatch, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "evaluser")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", CANARY)
    tracking = _with_userinfo(mlflow_server)
    out = tmp_path / "cli"

    # 1. The CLI: warehouse URL with the canary password, tracking URI with user:canary@.
    args = ["run", "--spec", str(SPEC_PATH), "--week", DEMO_WEEK, "--out", str(out)]
    assert cli.main([*args, "--warehouse", pg_demo, "--mlflow", tracking]) == 0
    printed = capsys.readouterr()
    assert "mlflow:    http://127.0.0.1:" in printed.out  # the run's link, without userinfo

    # 2. Dagster: the warehouse from the resource (EVAL_WAREHOUSE_URL in production).
    instance = DagsterInstance.ephemeral()
    spec = load_spec(SPEC_PATH)
    root = tmp_path / "dagster"
    result = materialize(
        [build_weekly_assets(spec)],
        partition_key=DEMO_WEEK,
        instance=instance,
        resources={
            "warehouse": WarehouseResource(url=pg_demo),
            "artifacts": ArtifactStoreResource(root=str(root)),
            "mlflow": MlflowResource(tracking_uri=tracking),
            "alerts": AlertsResource(),
        },
    )
    assert result.success
    dagster_texts = [
        json.dumps(entry.to_json()) if hasattr(entry, "to_json") else str(entry)
        for entry in instance.all_logs(result.run_id)
    ]
    dagster_texts.append(json.dumps(instance.get_run_by_id(result.run_id).run_config))

    # 3. Failing runs: the warehouse unreachable, MLflow unreachable -- both with the canary.
    errors = []
    dead_pg = _with_password(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/x", CANARY)
    code = cli.main([*args[:6], str(tmp_path / "f1"), "--warehouse", dead_pg, "--mlflow", tracking])
    assert code == cli.EXIT_ERROR
    dead_mlflow = f"http://evaluser:{CANARY}@127.0.0.1:{free_port()}"
    tracker = Tracker(dead_mlflow, http_timeout_s=2, http_max_retries=0, http_backoff_factor=0)
    with Warehouse(pg_demo) as connection, pytest.raises(EvalError) as raised:
        run_evaluation(
            spec.model_copy(update={"warehouse": pg_demo}),
            DEMO_WEEK,
            connection,
            tmp_path / "f2",
            Publishing(tracker=tracker),
            run_key="fraud_detector/secret-test",
            run_name="secret test",
        )
    errors.append(str(raised.value))
    failing = capsys.readouterr()

    _assert_files_clean(CANARY, out, root)
    _assert_no(CANARY, *_mlflow_texts(mlflow_server, tmp_path / "download"), where="mlflow")
    _assert_files_clean(CANARY, tmp_path / "download")
    _assert_no(CANARY, *dagster_texts, where="dagster event log")
    _assert_no(CANARY, printed.out, printed.err, failing.out, failing.err, where="output")
    _assert_no(CANARY, *errors, where="error message")
    _assert_no(CANARY, *(r.getMessage() for r in caplog.records), where="log record")
    _assert_no(CANARY, caplog.text, where="log text")
    assert "error: warehouse postgresql+psycopg2://postgres:***@127.0.0.1" in failing.err
    assert errors[0].startswith("MLflow tracking server http://127.0.0.1:")


# ------------------------------------------------------------------------------ PII


def _pii_warehouse(tmp_path: Path) -> tuple[str, pd.Series]:
    import numpy as np

    predictions, labels = random_window(np.random.default_rng(3), 3000)
    ids = predictions["prediction_id"].str.slice(1).astype(int)
    predictions["email"] = [f"user{i}@example.com" for i in ids]
    url = write_warehouse(tmp_path / "pii.duckdb", predictions, labels)
    return url, predictions["email"].drop_duplicates()


def test_pii_columns_never_reach_artifacts_or_mlflow(tmp_path):
    url, emails = _pii_warehouse(tmp_path)
    spec = parse_spec(base_spec(url, pii=["email"]))
    tracking = migrated_store(tmp_path / "mlflow.db")
    out = tmp_path / "out"
    with Warehouse(spec.warehouse) as connection:
        run_evaluation(
            spec,
            WEEK,
            connection,
            out,
            Publishing(tracker=Tracker(tracking, artifact_location=str(tmp_path / "art"))),
            run_key="test_model/week/pii",
            run_name="pii",
        )
    texts = [p.read_bytes().decode("latin-1") for p in _files_under(out, tmp_path / "art")]
    texts += [pd.read_parquet(p).to_csv() for p in out.glob("*.parquet")]
    texts += _mlflow_texts(tracking, tmp_path / "download")
    blob = "\n".join(texts)
    assert "@example.com" not in blob
    assert not [e for e in emails.head(50) if e in blob]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"slices": ["country", ["device", "email"]]}, "slices (email)"),
        ({"drift": {"features": ["email"], "reference_weeks": 1}}, "drift.features (email)"),
    ],
)
def test_a_pii_column_as_slice_or_drift_feature_is_a_spec_error(tmp_path, overrides, key):
    with pytest.raises(SpecError) as raised:
        parse_spec(base_spec("duckdb:///x.duckdb", pii=["email"], **overrides))
    message = str(raised.value)
    assert "pii: column 'email' is personal data but used in " + key in message
    assert "duckdb:///x.duckdb" not in message  # a whole-spec error does not echo the spec
