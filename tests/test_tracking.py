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

import mlflow
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


def _headline_keys(folder: Path) -> set[str]:
    """The metric keys a week run must have, from the Parquet files (not from our code)."""
    metrics = pd.read_parquet(folder / "metrics.parquet").query("slice == 'overall'")
    comparison = pd.read_parquet(folder / "comparison.parquet").query("slice == 'overall'")
    keys = {"rows", "labeled_rows", "label_coverage"}
    for row in metrics.dropna(subset=["value"]).itertuples():
        keys.add(f"{row.metric}/{row.model_version}")
    for row in metrics.dropna(subset=["ci_low"]).itertuples():
        keys |= {f"{row.metric}/{row.model_version}/ci_low"}
    for row in metrics.dropna(subset=["ci_high"]).itertuples():
        keys |= {f"{row.metric}/{row.model_version}/ci_high"}
    for row in comparison.dropna(subset=["delta"]).itertuples():
        keys.add(f"delta/{row.metric}/overall")
    for row in comparison.dropna(subset=["delta_ci_low"]).itertuples():
        keys.add(f"delta/{row.metric}/overall/ci_low")
    for row in comparison.dropna(subset=["delta_ci_high"]).itertuples():
        keys.add(f"delta/{row.metric}/overall/ci_high")
    for version in metrics["model_version"].unique():
        keys |= {f"rows/{version}", f"labeled_rows/{version}", f"label_coverage/{version}"}
    return keys


def _load_table(uri: str, run_id: str, path: str) -> pd.DataFrame:
    """``MlflowClient.load_table``, which finds runs through MLflow's global tracking URI."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        client = _fresh(uri)
        experiment_id = client.get_run(run_id).info.experiment_id
        return client.load_table(experiment_id, path, [run_id])
    finally:
        mlflow.set_tracking_uri(previous)


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

    [point] = client.get_metric_history(run_id, "roc_auc/v2")  # one point, however often
    assert point.timestamp == WEEK_MS
    assert point.value == pytest.approx(_overall(demo.folder, "roc_auc", "v2"), rel=1e-12)
    assert point.step == week_step(date(2026, 11, 16)) == 2967
    assert (
        run.data.metrics["roc_auc/v2/ci_low"] < point.value < run.data.metrics["roc_auc/v2/ci_high"]
    )
    # Headline metrics only: the overall slice per version, the overall deltas, the counts;
    # and the run's warehouse cost, as run.json totals it.
    cost = json.loads((demo.folder / "run.json").read_text())["cost"]
    cost_keys = {"cost_queries", "cost_seconds", "cost_rows_scanned", "cost_bytes_scanned"}
    assert set(run.data.metrics) == _headline_keys(demo.folder) | cost_keys
    assert run.data.metrics["rows"] == evaluation.fingerprint["rows"]
    for key in cost_keys:
        assert run.data.metrics[key] == pytest.approx(cost[key.removeprefix("cost_")], rel=1e-12)
    assert cost["queries"] > 0 and cost["rows_scanned"] > 0
    [cost_point] = client.get_metric_history(run_id, "cost_rows_scanned")
    assert (cost_point.step, cost_point.timestamp) == (2967, WEEK_MS)

    # Everything per slice is in MLflow tables, read back with MLflow's own reader.
    listed = json.loads(tags["mlflow.loggedArtifacts"])
    assert {"path": "tables/slices.json", "type": "table"} in listed
    for table, parquet in (("slices", "metrics"), ("comparison", "comparison"), ("drift", "drift")):
        loaded = _load_table(uri, run_id, f"tables/{table}.json")
        expected = pd.read_parquet(demo.folder / f"{parquet}.parquet")
        pd.testing.assert_frame_equal(
            loaded.reset_index(drop=True),
            expected.reset_index(drop=True),
            check_dtype=False,
            rtol=1e-14,
        )
    slices = _load_table(uri, run_id, "tables/slices.json")
    android = slices.query("metric == 'recall' and model_version == 'v2'")
    assert "device=android" in set(android["slice"])

    datasets = [d.dataset for d in run.inputs.dataset_inputs]
    assert [d.digest for d in datasets] == [evaluation.fingerprint["content_hash"]]
    assert datasets[0].name == f"{MODEL}_window_{WEEK}"
    source = json.loads(datasets[0].source)
    assert source["window"] == {"start": "2026-11-16T00:00:00", "end": "2026-11-23T00:00:00"}
    assert source["predictions"] == {"table": "inference_logs"}
    assert json.loads(datasets[0].profile)["rows"] == evaluation.fingerprint["rows"]

    assert {a.path for a in client.list_artifacts(run_id)} >= ARTIFACT_FILES | {"tables"}
    with tempfile.TemporaryDirectory() as target:
        downloaded = Path(client.download_artifacts(run_id, "verdict.json", target))
        assert json.loads(downloaded.read_text())["decision"] == demo.verdict.decision
        queries = Path(client.download_artifacts(run_id, "queries.json", target))
        assert json.loads(queries.read_text())["cost"] == cost


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
    # MLflow 3's UI opens the experiment on its runs, not on the GenAI overview.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


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

    # Same results: the same run, and still one point per metric (MLflow stores an identical
    # point once).
    assert tracker.publish(again, demo.evaluation, demo.verdict, demo.folder) == first
    history = client.get_metric_history(first.run_id, "roc_auc/v2")
    assert [m.timestamp for m in history] == [WEEK_MS]
    assert client.get_run(first.run_id).data.tags["eval.publish_count"] == "2"
    _check_published(mlflow_server, first.run_id, demo)  # one dataset input, all artifacts

    other = tracker.start(f"{key}/other", model=MODEL, run_name="other", tags={})
    assert other.run_id != first.run_id
    assert tracker.find_run(key, model=MODEL) == first


def test_changed_results_replace_the_run_and_keep_one_point(mlflow_server, demo):
    """MLflow cannot overwrite a metric point: a re-publish with other numbers (labels
    arrived) goes to a new run of the key; the old one is tagged and deleted."""
    tracker = _tracker(mlflow_server)
    run = tracker.start("k", model=MODEL, run_name="r", tags={"dagster.run_id": "a"})
    assert tracker.publish(run, demo.evaluation, demo.verdict, demo.folder) == run
    metrics = demo.evaluation.metrics.copy()
    overall_auc = (
        (metrics["metric"] == "roc_auc")
        & (metrics["model_version"] == "v2")
        & (metrics["slice"] == "overall")
    )
    metrics.loc[overall_auc, "value"] -= 0.25
    lowered = dataclasses.replace(demo.evaluation, metrics=metrics)
    again = tracker.start("k", model=MODEL, run_name="r", tags={"dagster.run_id": "b"})
    assert again == run
    replaced = tracker.publish(again, lowered, demo.verdict, demo.folder)

    assert replaced.run_id != run.run_id and replaced.superseded == run.run_id
    assert tracker.find_run("k", model=MODEL) == replaced
    client = _fresh(mlflow_server)
    [point] = client.get_metric_history(replaced.run_id, "roc_auc/v2")
    assert point.value == pytest.approx(_overall(demo.folder, "roc_auc", "v2") - 0.25)
    new = client.get_run(replaced.run_id)
    assert new.info.status == "FINISHED"
    assert new.data.tags["eval.supersedes"] == run.run_id
    assert new.data.tags["dagster.run_id"] == "b"
    assert new.data.tags["mlflow.runName"] == "r"
    assert new.data.params["model"] == MODEL
    old = client.get_run(run.run_id)
    assert old.info.lifecycle_stage == "deleted"
    assert old.data.tags["eval.superseded_by"] == replaced.run_id
    assert old.data.tags["eval.superseded_reason"] == "results changed"
    [kept] = client.get_metric_history(run.run_id, "roc_auc/v2")  # its record is intact
    assert kept.value == pytest.approx(_overall(demo.folder, "roc_auc", "v2"))


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
    assert set(metrics) == _headline_keys(demo.folder)


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
