"""The weekly trend as MLflow users read it, against a real ``mlflow server``.

Weeks of the demo model are evaluated through ``runner.run_evaluation`` (what the CLI and the
Dagster assets call) into one experiment: out of order, re-run with the same results, re-run
after more labels arrived, re-run with a changed spec. Read back with a fresh
``MlflowClient``, the experiment must open on runs, each week run must be a child of the
model's one trend run, and every chart (``get_metric_history``) must hold exactly one point
per week, equal to the week's ``metrics.parquet`` (the artifact, not our MLflow code).
"""

import dataclasses
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pandas as pd
import pytest
from dagster import MetadataValue
from mlflow.tracking import MlflowClient
from support.mlflow_store import migrated_store

from assets.metadata import mlflow_link
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.runner import Publishing, RunOutcome, run_evaluation
from eval_pipelines.spec import EvalSpec, load_spec
from eval_pipelines.tracking import Tracker, week_step
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import week_window

MODEL = "fraud_detector"
SPEC_PATH = Path(__file__).resolve().parent.parent / "evals" / "fraud_detector.yaml"
WEEKS = ["2026-11-02", "2026-10-19", "2026-11-09"]  # a backfill, out of order
HEADLINE = ["roc_auc/v2", "roc_auc/v1", "roc_auc/v2/ci_low", "delta/roc_auc/overall", "rows"]


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo warehouse, and a copy where labels after 2026-11-12 have not arrived yet."""
    root = tmp_path_factory.mktemp("trend")
    full = root / "full.duckdb"
    build_demo_warehouse(full, rows=20_000)
    early = root / "early.duckdb"
    shutil.copy(full, early)
    with duckdb.connect(str(early)) as con:
        con.execute("DELETE FROM labels WHERE labeled_at >= TIMESTAMP '2026-11-12'")
    return {"full": full, "early": early}


def _spec(url: str, **update) -> EvalSpec:
    return load_spec(SPEC_PATH).model_copy(
        update={"warehouse": url, "warehouse_template": url, **update}
    )


def _run(spec: EvalSpec, week: str, tracker: Tracker, out: Path) -> RunOutcome:
    with Warehouse(spec.warehouse) as connection:
        return run_evaluation(
            spec,
            week,
            connection,
            out / week,
            Publishing(tracker=tracker),
            run_key=f"{MODEL}/week/{week}",
            run_name=f"{MODEL} week {week}",
            tags={"eval.trigger": "test"},
        )


def _overall(outcome: RunOutcome, metric: str, version: str) -> float:
    frame = pd.read_parquet(outcome.folder / "metrics.parquet")
    row = frame.query(
        f"slice == 'overall' and metric == '{metric}' and model_version == '{version}'"
    )
    return float(row["value"].iloc[0])


def _week_ms(week: str) -> int:
    return int(datetime.fromisoformat(week).replace(tzinfo=UTC).timestamp() * 1000)


def _points(client: MlflowClient, run_id: str, key: str) -> dict[int, list[float]]:
    """step -> every value MLflow holds for ``key`` at that step (a chart's points)."""
    points: dict[int, list[float]] = {}
    for metric in client.get_metric_history(run_id, key):
        points.setdefault(metric.step, []).append(metric.value)
    return points


def _trend(client: MlflowClient, experiment_id: str):
    [trend] = client.search_runs(
        [experiment_id], filter_string=f"tags.`eval.run_key` = '{MODEL}/trend'"
    )
    return trend


def _week_runs(client: MlflowClient, experiment_id: str, week: str):
    """The week's runs that are not deleted (superseded ones included)."""
    return client.search_runs(
        [experiment_id], filter_string=f"tags.`eval.run_key` = '{MODEL}/week/{week}'"
    )


def _assert_one_point_per_week(client, trend_id, outcomes: dict[str, RunOutcome]) -> None:
    for key in HEADLINE:
        points = _points(client, trend_id, key)
        assert sorted(points) == sorted(week_step(date.fromisoformat(w)) for w in outcomes), key
        assert all(len(values) == 1 for values in points.values()), (key, points)
    for week, outcome in outcomes.items():
        [point] = [
            m
            for m in client.get_metric_history(trend_id, "roc_auc/v2")
            if m.step == week_step(date.fromisoformat(week))
        ]
        assert point.value == pytest.approx(_overall(outcome, "roc_auc", "v2"), rel=1e-12)
        assert point.timestamp == _week_ms(week)
        runs = _week_runs(client, client.get_run(trend_id).info.experiment_id, week)
        [week_run] = [r for r in runs if r.data.tags["eval.superseded"] == "false"]
        assert week_run.info.run_id == outcome.mlflow_run.run_id
        assert week_run.data.tags["mlflow.parentRunId"] == trend_id
        assert list(_points(client, week_run.info.run_id, "roc_auc/v2").values()) == [
            [pytest.approx(_overall(outcome, "roc_auc", "v2"), rel=1e-12)]
        ]


def test_backfill_rerun_and_spec_change_leave_one_point_per_week(
    mlflow_server, warehouses, tmp_path
):
    tracker = Tracker(mlflow_server, experiment_prefix=f"trend-{uuid.uuid4().hex[:8]}")
    client = MlflowClient(tracking_uri=mlflow_server)
    # One warehouse (one spec): first without the late labels, later with them.
    live = tmp_path / "live.duckdb"
    shutil.copy(warehouses["early"], live)
    full = _spec(f"duckdb:///{live}")

    # Week 2026-11-09 first evaluated before its labels arrived, then a backfill out of order.
    outcomes = {"2026-11-09": _run(full, "2026-11-09", tracker, tmp_path / "a")}
    shutil.copy(warehouses["full"], live)
    for week in WEEKS[:2]:
        outcomes[week] = _run(full, week, tracker, tmp_path / "a")
    experiment = client.get_experiment(outcomes[WEEKS[0]].mlflow_run.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    first_trend = _trend(client, experiment.experiment_id)
    assert first_trend.info.run_name == f"{MODEL} weekly trend"
    assert first_trend.data.tags["eval.kind"] == "trend"
    assert first_trend.data.params == {}  # the specs are in the week runs
    _assert_one_point_per_week(client, first_trend.info.run_id, outcomes)
    links = mlflow_link(outcomes["2026-11-09"])
    assert links["mlflow_run"] == MetadataValue.url(
        f"{mlflow_server}/#/experiments/{experiment.experiment_id}/runs/"
        f"{outcomes['2026-11-09'].mlflow_run.run_id}"
    )
    assert links["mlflow_trend"] == MetadataValue.url(
        f"{mlflow_server}/#/experiments/{experiment.experiment_id}/runs/{first_trend.info.run_id}"
    )

    # The same week again with the same data: the same runs, nothing new in any chart.
    again = _run(full, "2026-10-19", tracker, tmp_path / "b")
    assert again.mlflow_run == outcomes["2026-10-19"].mlflow_run
    assert _trend(client, experiment.experiment_id).info.run_id == first_trend.info.run_id
    _assert_one_point_per_week(client, first_trend.info.run_id, outcomes)

    # The labels of 2026-11-09 arrived: other numbers replace the week's points everywhere.
    early_auc = _overall(outcomes["2026-11-09"], "roc_auc", "v2")
    old_week_run = outcomes["2026-11-09"].mlflow_run.run_id
    outcomes["2026-11-09"] = _run(full, "2026-11-09", tracker, tmp_path / "c")
    assert _overall(outcomes["2026-11-09"], "roc_auc", "v2") != early_auc
    assert outcomes["2026-11-09"].mlflow_run.superseded == old_week_run
    trend = _trend(client, experiment.experiment_id)
    assert trend.info.run_id != first_trend.info.run_id
    assert trend.data.tags["eval.supersedes"] == first_trend.info.run_id
    assert client.get_run(first_trend.info.run_id).info.lifecycle_stage == "deleted"
    _assert_one_point_per_week(client, trend.info.run_id, outcomes)
    deleted = client.get_run(old_week_run)
    assert deleted.info.lifecycle_stage == "deleted"
    assert deleted.data.tags["eval.superseded_by"] == outcomes["2026-11-09"].mlflow_run.run_id

    # A changed spec: a new week run, the old one stays visible (superseded) under the trend.
    stricter = _spec(f"duckdb:///{live}", min_slice_size=60)
    old_spec_run = outcomes["2026-11-02"].mlflow_run.run_id
    outcomes["2026-11-02"] = _run(stricter, "2026-11-02", tracker, tmp_path / "d")
    assert outcomes["2026-11-02"].mlflow_run.superseded == old_spec_run
    trend = _trend(client, experiment.experiment_id)
    _assert_one_point_per_week(client, trend.info.run_id, outcomes)
    kept = client.get_run(old_spec_run)
    assert kept.info.lifecycle_stage == "active"
    assert kept.data.tags["eval.superseded"] == "true"
    assert kept.data.tags["mlflow.parentRunId"] == trend.info.run_id
    assert tracker.trend_run(MODEL).run_id == trend.info.run_id
    assert mlflow_link(outcomes["2026-11-02"])["mlflow_trend"].value.endswith(trend.info.run_id)


def test_dagster_metadata_links_the_run_page(tmp_path, monkeypatch):
    """A local store has no UI of its own: the link goes to EVAL_MLFLOW_UI_URL when set (e.g.
    `make ui`'s MLflow UI), else the run id is text."""
    from resources import MlflowResource

    tracking = migrated_store(tmp_path / "mlflow.db")

    def resource() -> MlflowResource:
        return MlflowResource(
            tracking_uri=tracking,
            artifact_location=str(tmp_path / "artifacts"),
        )

    monkeypatch.delenv("EVAL_MLFLOW_UI_URL", raising=False)
    run = resource().tracker().start("k", model=MODEL, run_name="r", tags={})
    link = mlflow_link(SimpleNamespace(mlflow_run=run))
    assert link["mlflow_run"] == MetadataValue.text(run.run_id)

    monkeypatch.setenv("EVAL_MLFLOW_UI_URL", "http://127.0.0.1:5000/")
    run = resource().tracker().find_run("k", model=MODEL)
    link = mlflow_link(SimpleNamespace(mlflow_run=run))
    assert link["mlflow_run"] == MetadataValue.url(
        f"http://127.0.0.1:5000/#/experiments/{run.experiment_id}/runs/{run.run_id}"
    )
    assert link["mlflow_run_id"] == MetadataValue.text(run.run_id)


@pytest.fixture(scope="module")
def published(warehouses, tmp_path_factory):
    """One evaluated week (2026-11-16) with its artifact folder, reused for other weeks."""
    from eval_pipelines.artifacts import write_artifacts
    from eval_pipelines.pipeline import evaluate

    evaluation = evaluate(_spec(f"duckdb:///{warehouses['full']}"), "2026-11-16")
    verdict = evaluation.decide()
    return evaluation, verdict, write_artifacts(evaluation, verdict, tmp_path_factory.mktemp("o"))


def _as_week(evaluation, week: str, shift: float):
    """``evaluation`` relabelled as ``week``, its overall v2 ROC AUC moved by ``shift``."""
    metrics = evaluation.metrics.copy()
    auc = (
        (metrics["metric"] == "roc_auc")
        & (metrics["model_version"] == "v2")
        & (metrics["slice"] == "overall")
    )
    metrics.loc[auc, "value"] += shift
    return dataclasses.replace(evaluation, window=week_window(week), metrics=metrics)


def test_parallel_weeks_and_parallel_reruns_share_one_trend_run(mlflow_server, published):
    """Four weeks published at once into a new experiment (each writer may create the trend
    run), then all four re-published at once with other numbers (each rebuilds it)."""
    evaluation, verdict, folder = published
    prefix = f"parallel-{uuid.uuid4().hex[:8]}"
    weeks = ["2026-10-19", "2026-10-26", "2026-11-02", "2026-11-09"]
    base = {w: _overall_of(evaluation) + 0.001 * i for i, w in enumerate(weeks)}

    def publish(week: str, shift: float) -> str:
        tracker = Tracker(mlflow_server, experiment_prefix=prefix)
        run = tracker.start(
            f"{MODEL}/week/{week}", model=MODEL, run_name=week, tags={"eval.week": week}
        )
        moved = _as_week(evaluation, week, base[week] - _overall_of(evaluation) + shift)
        return tracker.publish(run, moved, verdict, folder).run_id

    client = MlflowClient(tracking_uri=mlflow_server)
    for shift in (0.0, -0.05):
        with ThreadPoolExecutor(len(weeks)) as pool:
            ids = pool.map(publish, weeks, [shift] * len(weeks))
            run_ids = dict(zip(weeks, ids, strict=True))
        experiment = client.get_experiment_by_name(f"{prefix}/{MODEL}")
        [trend] = client.search_runs(
            [experiment.experiment_id], filter_string=f"tags.`eval.run_key` = '{MODEL}/trend'"
        )
        points = _points(client, trend.info.run_id, "roc_auc/v2")  # step -> values
        assert sorted(points) == [week_step(date.fromisoformat(w)) for w in weeks]
        for week in weeks:
            [value] = points[week_step(date.fromisoformat(week))]
            assert value == pytest.approx(base[week] + shift, rel=1e-12), week
        for week, run_id in run_ids.items():
            run = client.get_run(run_id)
            assert run.data.tags["mlflow.parentRunId"] == trend.info.run_id, week
            assert run.info.status == "FINISHED"


def _overall_of(evaluation) -> float:
    metrics = evaluation.metrics
    row = metrics[
        (metrics["metric"] == "roc_auc")
        & (metrics["model_version"] == "v2")
        & (metrics["slice"] == "overall")
    ]
    return float(row["value"].iloc[0])


def test_a_week_logged_in_the_old_layout_is_replaced_by_its_rerun(mlflow_server, published):
    """Runs logged before this layout have a metric per slice and no results digest: the
    week's next publish moves it to a new run of the headline layout, under the trend run."""
    evaluation, verdict, folder = published
    tracker = Tracker(mlflow_server, experiment_prefix=f"old-{uuid.uuid4().hex[:8]}")
    key, week = f"{MODEL}/week/2026-11-16", {"eval.week": "2026-11-16"}
    old = tracker.start(key, model=MODEL, run_name="old layout", tags=week)
    tracker.client.log_metric(old.run_id, "recall/v2/device.android", 0.5, step=2967)
    tracker.client.set_terminated(old.run_id, "FINISHED")

    again = tracker.start(key, model=MODEL, run_name="new layout", tags=week)
    assert again == old
    new = tracker.publish(again, evaluation, verdict, folder)

    client = MlflowClient(tracking_uri=mlflow_server)
    assert new.run_id != old.run_id
    assert client.get_run(old.run_id).info.lifecycle_stage == "deleted"
    metrics = client.get_run(new.run_id).data.metrics
    assert "recall/v2/device.android" not in metrics
    assert metrics["roc_auc/v2"] == pytest.approx(_overall_of(evaluation), rel=1e-12)
    trend = tracker.trend_run(MODEL)
    assert client.get_run(new.run_id).data.tags["mlflow.parentRunId"] == trend.run_id
    assert list(_points(client, trend.run_id, "roc_auc/v2")) == [2967]
