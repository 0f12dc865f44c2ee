"""MLflow lineage through ``eval_pipelines.tracking``, read back the way a user would check it.

One small demo evaluation (20k rows, week 2026-11-16) is published to a real ``mlflow server``
(started once per session, see tests/support/mlflow_server.py) and to a local SQLite store;
everything is read back through a fresh ``MlflowClient``. Each test uses its own experiment
prefix or model name, so tests sharing the server do not see each other's runs.
"""

import dataclasses
import json
import math
import tempfile
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import _validate_metric_name
from support.data import ARTIFACT_FILES

from eval_pipelines.artifacts import write_artifacts
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.gates import Verdict
from eval_pipelines.pipeline import Evaluation, evaluate
from eval_pipelines.spec import load_spec
from eval_pipelines.tracking import (
    MAX_KEY,
    MAX_TAG_VALUE,
    Tracker,
    evaluation_metrics,
    metric_key,
    name_token,
    slice_token,
    spec_params,
    week_step,
)

WEEK = "2026-11-16"
MODEL = "fraud_detector"
SPEC_PATH = Path(__file__).resolve().parent.parent / "evals" / "fraud_detector.yaml"
WEEK_MS = int(datetime(2026, 11, 16, tzinfo=UTC).timestamp() * 1000)


@dataclasses.dataclass
class Published:
    evaluation: Evaluation
    verdict: Verdict
    folder: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Published:
    root = tmp_path_factory.mktemp("tracking")
    warehouse = root / "warehouse.duckdb"
    build_demo_warehouse(warehouse, rows=20_000)
    url = f"duckdb:///{warehouse}"
    spec = load_spec(SPEC_PATH).model_copy(update={"warehouse": url, "warehouse_template": url})
    evaluation = evaluate(spec, WEEK)
    verdict = evaluation.decide()
    return Published(evaluation, verdict, write_artifacts(evaluation, verdict, root / "out"))


def _tracker(uri: str, **kwargs) -> Tracker:
    return Tracker(uri, experiment_prefix=f"test-{uuid.uuid4().hex[:8]}", **kwargs)


def _fresh(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _overall(folder: Path, metric: str, version: str) -> float:
    frame = pd.read_parquet(folder / "metrics.parquet")
    row = frame[
        (frame["metric"] == metric)
        & (frame["model_version"] == version)
        & (frame["slice"] == "overall")
    ]
    return float(row["value"].iloc[0])


def _check_published(uri: str, run_id: str, demo: Published) -> None:
    """What a user checks in the UI: status, tags, params, metrics, dataset, artifacts."""
    client = _fresh(uri)
    run = client.get_run(run_id)
    evaluation = demo.evaluation
    assert run.info.status == "FINISHED"

    tags = run.data.tags
    assert tags["eval.model"] == MODEL
    assert tags["eval.week"] == WEEK
    assert tags["eval.spec_hash"] == evaluation.spec.fingerprint()
    assert tags["eval.data_fingerprint"] == evaluation.fingerprint["content_hash"]
    assert tags["eval.rows"] == str(evaluation.fingerprint["rows"])
    assert tags["eval.decision"] == demo.verdict.decision
    assert tags["eval.candidate"] == "v2" and tags["eval.baseline"] == "v1"
    assert tags["eval.code_version"]

    params = run.data.params
    assert params["model"] == MODEL
    assert params["task"] == "binary_classification"
    assert float(params["threshold"]) == 0.5
    assert float(params["confidence.level"]) == 0.95
    assert params["compare.baseline"] == "v1" and params["compare.candidate"] == "v2"
    assert params["drift.reference_weeks"] == "4"
    assert json.loads(params["metrics"])[0] == "accuracy"
    assert json.loads(params["slices"])[-1] == ["country", "device"]
    assert params["window.start"] == "2026-11-16T00:00:00"
    assert params["window.end"] == "2026-11-23T00:00:00"
    assert params["warehouse"] == evaluation.spec.warehouse_template

    history = client.get_metric_history(run_id, "roc_auc/v2")
    point = max(history, key=lambda m: m.timestamp)  # publish k of a run adds k ms
    assert point.timestamp == WEEK_MS + len(history) - 1
    assert point.value == pytest.approx(_overall(demo.folder, "roc_auc", "v2"), rel=1e-12)
    assert point.step == week_step(date(2026, 11, 16))
    assert (
        run.data.metrics["roc_auc/v2/ci_low"] < point.value < run.data.metrics["roc_auc/v2/ci_high"]
    )
    frame = pd.read_parquet(demo.folder / "metrics.parquet")
    android = frame[
        (frame["metric"] == "recall")
        & (frame["model_version"] == "v2")
        & (frame["slice"] == "device=android")
    ]
    assert run.data.metrics["recall/v2/device.android"] == pytest.approx(android["value"].iloc[0])
    assert "recall/v2/country.US-device.ios" in run.data.metrics
    assert "delta/recall/overall" in run.data.metrics
    assert "drift/amount/psi" in run.data.metrics
    assert run.data.metrics["rows"] == evaluation.fingerprint["rows"]

    datasets = [d.dataset for d in run.inputs.dataset_inputs]
    assert [d.digest for d in datasets] == [evaluation.fingerprint["content_hash"]]
    assert datasets[0].name == f"{MODEL}_window_{WEEK}"
    source = json.loads(datasets[0].source)
    assert source["window"] == {"start": "2026-11-16T00:00:00", "end": "2026-11-23T00:00:00"}
    assert source["predictions"] == {"table": "inference_logs"}
    assert json.loads(datasets[0].profile)["rows"] == evaluation.fingerprint["rows"]

    assert {a.path for a in client.list_artifacts(run_id)} >= ARTIFACT_FILES
    with tempfile.TemporaryDirectory() as target:
        downloaded = Path(client.download_artifacts(run_id, "verdict.json", target))
        assert json.loads(downloaded.read_text())["decision"] == demo.verdict.decision


# ---------------------------------------------------------------------------- real server


def test_publish_to_server(mlflow_server, demo):
    tracker = _tracker(mlflow_server)
    dagster = {"dagster.run_id": "r-1", "dagster.partition": WEEK, "dagster.backfill": "b-7"}
    run = tracker.start(f"{MODEL}/{WEEK}", model=MODEL, run_name=f"{MODEL} {WEEK}", tags=dagster)
    assert run.url == f"{mlflow_server}/#/experiments/{run.experiment_id}/runs/{run.run_id}"
    assert _fresh(mlflow_server).get_run(run.run_id).info.status == "RUNNING"

    tracker.publish(run, demo.evaluation, demo.verdict, demo.folder)

    _check_published(mlflow_server, run.run_id, demo)
    client = _fresh(mlflow_server)
    got = client.get_run(run.run_id)
    assert {k: got.data.tags[k] for k in dagster} == dagster
    assert got.data.tags["mlflow.runName"] == f"{MODEL} {WEEK}"
    experiment = client.get_experiment(run.experiment_id)
    assert experiment.name == f"{tracker.experiment_prefix}/{MODEL}"


def test_same_run_key_reuses_the_run(mlflow_server, demo):
    tracker = _tracker(mlflow_server)
    key = f"{MODEL}/{WEEK}"
    first = tracker.start(key, model=MODEL, run_name="attempt 1", tags={"dagster.run_id": "a"})
    tracker.publish(first, demo.evaluation, demo.verdict, demo.folder)

    again = tracker.start(key, model=MODEL, run_name="attempt 2", tags={"dagster.run_id": "b"})
    assert again == first
    client = _fresh(mlflow_server)
    reused = client.get_run(first.run_id)
    assert reused.info.status == "RUNNING"
    assert reused.data.tags["dagster.run_id"] == "b"
    assert reused.data.tags["mlflow.runName"] == "attempt 2"

    tracker.publish(again, demo.evaluation, demo.verdict, demo.folder)  # params unchanged: ok
    history = client.get_metric_history(first.run_id, "roc_auc/v2")
    assert [m.timestamp for m in history] == [WEEK_MS, WEEK_MS + 1]
    assert client.get_run(first.run_id).data.tags["eval.publish_count"] == "2"
    _check_published(mlflow_server, first.run_id, demo)  # one dataset input, all artifacts

    other = tracker.start(f"{key}/other", model=MODEL, run_name="other", tags={})
    assert other.run_id != first.run_id
    assert tracker.find_run(key, model=MODEL) == first


def test_republished_numbers_win_even_when_smaller(mlflow_server, demo):
    """MLflow's latest value is the max of (step, timestamp, value): the ms offset per publish
    makes the newest publish win at the same weekly step."""
    tracker = _tracker(mlflow_server)
    run = tracker.start("k", model=MODEL, run_name="r", tags={})
    tracker.publish(run, demo.evaluation, demo.verdict, demo.folder)
    metrics = demo.evaluation.metrics.copy()
    overall_auc = (
        (metrics["metric"] == "roc_auc")
        & (metrics["model_version"] == "v2")
        & (metrics["slice"] == "overall")
    )
    metrics.loc[overall_auc, "value"] -= 0.25
    lowered = dataclasses.replace(demo.evaluation, metrics=metrics)
    tracker.start("k", model=MODEL, run_name="r", tags={})
    tracker.publish(run, lowered, demo.verdict, demo.folder)
    latest = _fresh(mlflow_server).get_run(run.run_id).data.metrics["roc_auc/v2"]
    assert latest == pytest.approx(_overall(demo.folder, "roc_auc", "v2") - 0.25)


def test_changed_spec_on_a_reused_run_is_recorded_not_fatal(mlflow_server, demo):
    tracker = _tracker(mlflow_server)
    run = tracker.start("k", model=MODEL, run_name="r", tags={})
    tracker.publish(run, demo.evaluation, demo.verdict, demo.folder)

    changed_spec = demo.evaluation.spec.model_copy(update={"min_slice_size": 60})
    changed = dataclasses.replace(demo.evaluation, spec=changed_spec)
    tracker.start("k", model=MODEL, run_name="r", tags={})
    tracker.publish(run, changed, demo.verdict, demo.folder)

    client = _fresh(mlflow_server)
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params["min_slice_size"] == "50"  # MLflow keeps the first value
    assert json.loads(got.data.tags["eval.param_conflicts"]) == {"min_slice_size": "60"}
    assert got.data.tags["eval.spec_hash"] == changed_spec.fingerprint()

    tracker.start("k", model=MODEL, run_name="r", tags={})
    tracker.publish(run, demo.evaluation, demo.verdict, demo.folder)
    assert "eval.param_conflicts" not in client.get_run(run.run_id).data.tags


def test_fail_marks_the_run_and_a_retry_clears_it(mlflow_server):
    tracker = _tracker(mlflow_server)
    run = tracker.start("k", model=MODEL, run_name="r", tags={})
    tracker.fail(run, "warehouse unreachable " + "x" * 20_000)
    client = _fresh(mlflow_server)
    got = client.get_run(run.run_id)
    assert got.info.status == "FAILED"
    assert got.data.tags["eval.error"].startswith("warehouse unreachable")
    assert len(got.data.tags["eval.error"]) <= MAX_TAG_VALUE

    assert tracker.start("k", model=MODEL, run_name="r", tags={}) == run
    got = client.get_run(run.run_id)
    assert got.info.status == "RUNNING" and "eval.error" not in got.data.tags


def test_publish_failure_marks_the_run_failed(mlflow_server, demo, tmp_path):
    tracker = _tracker(mlflow_server)
    run = tracker.start("k", model=MODEL, run_name="r", tags={})
    with pytest.raises(Exception, match="does not exist"):
        tracker.publish(run, demo.evaluation, demo.verdict, tmp_path / "missing")
    got = _fresh(mlflow_server).get_run(run.run_id)
    assert got.info.status == "FAILED" and "does not exist" in got.data.tags["eval.error"]


def test_reserved_tags_are_refused(mlflow_server):
    tracker = _tracker(mlflow_server)
    with pytest.raises(ValueError, match="mlflow"):
        tracker.start("k", model=MODEL, run_name="r", tags={"mlflow.user": "x", "mlflow.log": "y"})
    with pytest.raises(ValueError, match="quotes"):
        tracker.start("it's", model=MODEL, run_name="r", tags={})


# ------------------------------------------------------------------- default local store


def test_publish_to_local_sqlite_store(tmp_path, demo):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = _tracker(uri, artifact_location=str(tmp_path / "mlartifacts"))
    run = tracker.start(f"{MODEL}/{WEEK}", model=MODEL, run_name="local", tags={})
    assert run.url is None
    tracker.publish(run, demo.evaluation, demo.verdict, demo.folder)

    _check_published(uri, run.run_id, demo)
    experiment = _fresh(uri).get_experiment(run.experiment_id)
    assert experiment.artifact_location == (tmp_path / "mlartifacts").resolve().as_uri()
    stored = {p.name for p in (tmp_path / "mlartifacts").rglob("*") if p.is_file()}
    assert stored >= ARTIFACT_FILES

    # The local store also registers a local folder (uploaded through a registration run).
    placeholder = tmp_path / "placeholder"
    placeholder.mkdir()
    (placeholder / "README.md").write_text("demo model placeholder\n")
    version = tracker.register_version(MODEL, source=placeholder.as_uri(), aliases=["champion"])
    assert (version.version, version.status, version.aliases) == (1, "READY", ("champion",))


# --------------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    ("template", "expanded"),
    [
        ("postgresql://u:canary-s3cret@host/db", "postgresql://u:canary-s3cret@host/db"),
        ("postgresql://u:${PG_PASSWORD}@host/db", "postgresql://u:canary-s3cret@host/db"),
    ],
    ids=["literal-password", "env-var"],
)
def test_no_secret_reaches_mlflow(mlflow_server, demo, template, expanded):
    spec = demo.evaluation.spec.model_copy(
        update={"warehouse": expanded, "warehouse_template": template}
    )
    evaluation = dataclasses.replace(demo.evaluation, spec=spec)
    tracker = _tracker(mlflow_server)
    run = tracker.start("k", model=MODEL, run_name="r", tags={})
    tracker.publish(run, evaluation, demo.verdict, demo.folder)

    got = _fresh(mlflow_server).get_run(run.run_id)
    texts = [
        *got.data.params.values(),
        *got.data.params.keys(),
        *got.data.tags.values(),
        *(d.dataset.source for d in got.inputs.dataset_inputs),
        *(d.dataset.profile for d in got.inputs.dataset_inputs),
        *(d.dataset.schema for d in got.inputs.dataset_inputs),
    ]
    assert not [t for t in texts if "canary" in t]
    assert got.data.params["warehouse"].startswith("postgresql://u:***@host")
    [dataset] = got.inputs.dataset_inputs
    assert json.loads(dataset.dataset.source)["warehouse"].startswith("postgresql://u:***@host")


# -------------------------------------------------------------------------------- registry


def test_model_registry(mlflow_server, tmp_path):
    tracker = _tracker(mlflow_server)
    name = f"fraud_detector_{uuid.uuid4().hex[:8]}"
    assert tracker.model_versions(name) == []
    assert tracker.alias_version(name, "champion") is None

    placeholder = tmp_path / "placeholder"
    placeholder.mkdir()
    (placeholder / "README.md").write_text("demo model placeholder\n")
    champion = tracker.register_version(
        name, source=str(placeholder), tags={"demo.version": "v1"}, aliases=["champion"]
    )
    candidate = tracker.register_version(
        name, source=placeholder.as_uri(), tags={"demo.version": "v2"}
    )
    assert (champion.version, candidate.version) == (1, 2)
    assert champion.status == "READY" and champion.aliases == ("champion",)
    assert champion.run_id is not None  # the registration run holding the uploaded folder

    assert tracker.alias_version(name, "champion").version == 1
    assert tracker.alias_version(name, "challenger") is None

    tracker.tag_version(name, 2, {"eval.decision": "ship", "eval.week": WEEK})
    versions = tracker.model_versions(name)
    assert [v.version for v in versions] == [1, 2]
    assert versions[1].tags == {"demo.version": "v2", "eval.decision": "ship", "eval.week": WEEK}
    assert versions[0].aliases == ("champion",) and versions[1].aliases == ()

    # A remote URI is registered as is, without a run; the alias moves to the new version.
    remote = tracker.register_version(name, source="s3://models/fraud/3", aliases=["champion"])
    assert (remote.version, remote.run_id) == (3, None)
    assert tracker.alias_version(name, "champion").version == 3
    assert tracker.model_versions(name)[0].aliases == ()

    client = _fresh(mlflow_server)
    assert client.get_model_version_by_alias(name, "champion").version == "3"
    assert tracker.model_versions("unknown-model") == []


# ------------------------------------------------------------------------- key sanitizing


SLICE_LABELS = [
    "overall",
    "country=US",
    "country=US, device=ios",
    "country=US & device=ios",
    "country=US_device=ios",
    "country=US.device",
    "country=US-device",
    "country=US, device=ios, plan=pro",
    "name=O'Brien",
    'name="quoted"',
    "country=Côte d'Ivoire",
    "country=Cote d_Ivoire",
    "city=München",
    "city=Munchen",
    "note=line1\nline2",
    "note=line1 line2",
    "a=b=c",
    "a=b, c=d",
    "a=b,c=d",
    "a=..",
    "a=/",
    "a=b/../c",
    "x=" + "long" * 80,
    "x=" + "long" * 79 + "lonG",
    "",
    "ci_low",
]


def test_slice_tokens_are_valid_and_distinct():
    tokens = [slice_token(label) for label in SLICE_LABELS]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        key = metric_key(name_token("roc_auc"), name_token("v2"), token)
        _validate_metric_name(key)
        assert len(key) <= MAX_KEY
        assert token not in ("ci_low", "ci_high", "p_value")
    assert [slice_token(label) for label in SLICE_LABELS] == tokens  # deterministic


def test_slice_tokens_stay_readable():
    assert slice_token("overall") == "overall"
    assert slice_token("device=android") == "device.android"
    assert slice_token("country=US, device=ios") == "country.US-device.ios"
    lossy = slice_token("country=Côte d'Ivoire")
    assert lossy.startswith("country.C_te_d_Ivoire--") and len(lossy.split("--")[1]) == 10


def test_name_tokens_are_valid_and_distinct():
    names = ["v2", "v2.1", "model-2", "v2/rc1", "v2 rc1", "..", ".", "", "ci_low", "é", "e"]
    tokens = [name_token(n) for n in names]
    assert len(set(tokens)) == len(tokens)
    assert tokens[:3] == ["v2", "v2.1", "model-2"]
    for token in tokens:
        _validate_metric_name(metric_key("roc_auc", token, "country.US"))


def test_every_metric_key_of_an_evaluation_is_valid(demo):
    metrics = evaluation_metrics(demo.evaluation)
    for key, value in metrics.items():
        _validate_metric_name(key)
        assert len(key) <= MAX_KEY and math.isfinite(value)
    assert metrics["roc_auc/v2"] == _overall(demo.folder, "roc_auc", "v2")
    frame = demo.evaluation.metrics
    assert sum(k.count("/") == 2 and k.split("/")[0] in set(frame["metric"]) for k in metrics) > 0


def test_params_are_flat_and_cut_to_the_limit(demo):
    spec = demo.evaluation.spec.model_copy(
        update={
            "predictions": demo.evaluation.spec.predictions.model_copy(
                update={"table": None, "query": "SELECT 1 -- " + "x" * 10_000}
            )
        }
    )
    params = spec_params(dataclasses.replace(demo.evaluation, spec=spec))
    assert len(params["predictions.query"]) == 6000
    assert params["predictions.query"].endswith("...")
    assert "predictions.table" not in params
    assert params["labels.max_delay"] == "P14D"


# ----------------------------------------------------------------------------------- steps


def test_week_step():
    assert week_step(date(1970, 1, 5)) == 0
    assert week_step(date(1970, 1, 11)) == 0
    assert week_step(date(1970, 1, 12)) == 1
    assert week_step(date(1970, 1, 4)) == -1
    monday = date(2026, 11, 16)
    assert week_step(monday) - week_step(monday - timedelta(days=7)) == 1
    assert week_step(datetime(2026, 11, 16)) == week_step(monday)
    # 2026-11-16 00:30 in UTC+1 is still Sunday 2026-11-15 in UTC: the week before.
    aware = datetime(2026, 11, 16, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert week_step(aware) == week_step(monday) - 1
