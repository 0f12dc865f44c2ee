"""Concurrency and determinism: eight weekly runs at once on DuckDB and on PostgreSQL.

A backfill launched from the UI is one run (``BackfillPolicy.single_run``), so parallel steps
come from separate runs: eight single-partition materializations in eight processes sharing
one ``DAGSTER_HOME`` (what eight ``dagster asset materialize --partition W`` terminals do, or
``dagster job backfill``), against one warehouse and one real MLflow tracking server, with no
pool limit. To keep the test affordable on two cores the processes are forked from a driver
that has imported the stack once (``python tests/test_concurrency.py ...``, below); each child
opens its own instance, warehouse connection and MLflow client, as a separate run would.

Asserted: every run succeeds (no DuckDB "Conflicting lock", no "database is locked"), eight
complete artifact folders, eight MLflow runs (one per week, FINISHED), and two weeks equal a
sequential run of the same weeks, bit for bit on one engine (sums of doubles are
order-independent: sqlbuild.exact_sum and the fixed-point sums of the statistics queries).
Also: the Dagster path against the PostgreSQL warehouse gives DuckDB's verdict.

And within one run: the weekly job of two models (two steps) on the project's multiprocess
executor, through a real ``execute_job`` on a persistent instance, executes the models' steps
in parallel up to the ``warehouse`` pool limit, read from the run's STEP_START / STEP_SUCCESS
events: both at once with a limit of 2, one after the other with 1 (the executor allows 2).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.data import ARTIFACT_FILES
from support.mlflow_store import migrated_store

WEEKS = [
    "2026-09-28",
    "2026-10-05",
    "2026-10-12",
    "2026-10-19",
    "2026-10-26",
    "2026-11-02",
    "2026-11-09",
    "2026-11-16",
]
CHECKED = ["2026-10-12", "2026-11-16"]
FRAMES = ["metrics.parquet", "comparison.parquet", "drift.parquet", "coverage.parquet"]


def assert_same_results(a: Path, b: Path, *, same_engine: bool = True) -> None:
    """Same verdict and validation (bytes on one engine; values across engines, where a count
    may be written as 0 by one driver and 0.0 by the other); frames bit-identical on one engine
    (floats to 1e-12 relative across engines, whose LN and casts may differ in the last bit)."""
    for name in ("verdict.json", "validation.json"):
        if same_engine:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
        else:
            assert json.loads((a / name).read_text()) == json.loads((b / name).read_text()), name
    for name in FRAMES:
        left, right = pd.read_parquet(a / name), pd.read_parquet(b / name)
        if same_engine:
            pd.testing.assert_frame_equal(left, right, check_exact=True, obj=name)
            continue
        assert list(left.columns) == list(right.columns) and len(left) == len(right), name
        for column in left.columns:
            x, y = left[column].to_numpy(), right[column].to_numpy()
            if np.issubdtype(x.dtype, np.floating):
                np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15, equal_nan=True)
            else:
                assert list(x) == list(y), f"{name}:{column}"


# ---------------------------------------------------------------------------------- driver


def _materialize(week: str, config: dict) -> bool:
    from dagster import DagsterInstance, materialize

    from assets.evaluation import build_weekly_assets
    from assets.specs import PROJECT_ROOT
    from eval_pipelines.spec import load_spec
    from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource

    spec = load_spec(PROJECT_ROOT / "evals" / "fraud_detector.yaml")
    with DagsterInstance.get() as instance:
        result = materialize(
            [build_weekly_assets(spec)],
            partition_key=week,
            instance=instance,
            resources={
                "warehouse": WarehouseResource(url=config["warehouse"]),
                "artifacts": ArtifactStoreResource(root=config["root"]),
                "mlflow": MlflowResource(tracking_uri=config["mlflow"]),
                "alerts": AlertsResource(),
            },
            raise_on_error=False,
        )
        return result.success


def _driver(config: dict) -> dict:
    """Fork one process per week (or run them in turn), return {week: exit code}."""
    import multiprocessing

    from dagster import DagsterInstance

    import assets.evaluation  # noqa: F401  (import the stack once, before forking)

    DagsterInstance.get().dispose()  # an existing instance, as `dagster dev` would have made

    if config.get("sequential"):
        return {week: 0 if _materialize(week, config) else 1 for week in config["weeks"]}
    context = multiprocessing.get_context("fork")
    processes = {}
    for week in config["weeks"]:
        process = context.Process(target=_child, args=(week, config))
        process.start()
        processes[week] = process
    for process in processes.values():
        process.join(timeout=600)
    return {week: process.exitcode for week, process in processes.items()}


def _child(week: str, config: dict) -> None:
    sys.exit(0 if _materialize(week, config) else 1)


def run_weeks(tmp: Path, warehouse: str, root: Path, mlflow: str, **extra) -> dict:
    home = tmp / "dagster_home"
    home.mkdir(exist_ok=True)
    config = {"warehouse": warehouse, "root": str(root), "mlflow": mlflow, **extra}
    config.setdefault("weeks", WEEKS)
    env = {**os.environ, "DAGSTER_HOME": str(home), "GX_ANALYTICS_ENABLED": "false"}
    project = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, __file__, json.dumps(config)],
        cwd=project,
        env={**env, "PYTHONPATH": os.pathsep.join([str(project), str(project / "tests")])},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    codes = json.loads(done.stdout.strip().splitlines()[-1])
    log = done.stdout + done.stderr
    return {"codes": codes, "log": log}


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def twelve_weeks(tmp_path_factory) -> Path:
    """The demo warehouse starting four weeks before the first partition, so that every one
    of the eight partitions has its four reference weeks of drift."""
    import datetime as dt

    from eval_pipelines.demo import build_demo_warehouse

    path = tmp_path_factory.mktemp("concurrency") / "warehouse.duckdb"
    build_demo_warehouse(path, rows=48_000, start=dt.date(2026, 8, 31), weeks=12)
    return path


@pytest.fixture(scope="module")
def pg_warehouse(twelve_weeks, postgres_url) -> str:
    """The same tables in their own database of the session's PostgreSQL server."""
    import psycopg2
    from sqlalchemy.engine import make_url
    from support.postgres import copy_duckdb_tables

    url = make_url(postgres_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    connection = psycopg2.connect(admin)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS concurrency")
        cursor.execute("CREATE DATABASE concurrency")
    connection.close()
    target = url.set(database="concurrency").render_as_string(False)
    copy_duckdb_tables(twelve_weeks, target, ["inference_logs", "labels"])
    return target


def _check_parallel(tmp_path: Path, warehouse: str, mlflow_server: str, experiment_prefix=None):
    from mlflow.tracking import MlflowClient

    root = tmp_path / "parallel"
    outcome = run_weeks(tmp_path, warehouse, root, mlflow_server)
    assert outcome["codes"] == dict.fromkeys(WEEKS, 0), outcome["log"][-5000:]
    for bad in ("Conflicting lock", "database is locked", "could not obtain lock"):
        assert bad not in outcome["log"]
    for week in WEEKS:
        assert {p.name for p in (root / "fraud_detector" / week).iterdir()} == ARTIFACT_FILES, week
    assert not list((root / "fraud_detector").glob(".*"))  # no staging left behind

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("eval-pipelines/fraud_detector")
    for week in WEEKS:
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`eval.week` = '{week}' and tags.`dagster.partition` = '{week}'",
        )
        assert [r.info.status for r in runs] == ["FINISHED"], week

    sequential = tmp_path / "sequential"
    again = run_weeks(
        tmp_path, warehouse, sequential, mlflow_server, weeks=CHECKED, sequential=True
    )
    assert again["codes"] == dict.fromkeys(CHECKED, 0), again["log"][-5000:]
    for week in CHECKED:
        assert_same_results(root / "fraud_detector" / week, sequential / "fraud_detector" / week)
    return root


@pytest.fixture(scope="module")
def duckdb_parallel(twelve_weeks, mlflow_server, tmp_path_factory) -> Path:
    return _check_parallel(
        tmp_path_factory.mktemp("duck-parallel"), f"duckdb:///{twelve_weeks}", mlflow_server
    )


# ---------------------------------------------------------------------------------- tests


@pytest.mark.slow
def test_eight_parallel_weeks_on_duckdb(duckdb_parallel):
    verdict = json.loads(
        (duckdb_parallel / "fraud_detector" / WEEKS[-1] / "verdict.json").read_text()
    )
    assert verdict["decision"] == "hold"


@pytest.mark.slow
@pytest.mark.postgres
def test_eight_parallel_weeks_on_postgresql_match_duckdb(
    pg_warehouse, duckdb_parallel, mlflow_server, tmp_path
):
    # Another experiment prefix is not needed: the run keys are the same weeks, so these runs
    # reuse (and re-finish) the DuckDB runs' MLflow runs -- concurrently, by key.
    root = _check_parallel(tmp_path, pg_warehouse, mlflow_server)
    for week in CHECKED:
        assert_same_results(
            root / "fraud_detector" / week,
            duckdb_parallel / "fraud_detector" / week,
            same_engine=False,
        )


@pytest.mark.postgres
def test_dagster_week_on_postgresql_gives_duckdbs_verdict(pg_warehouse, twelve_weeks, tmp_path):
    from dagster import DagsterInstance, materialize

    from assets.evaluation import build_weekly_assets
    from assets.specs import PROJECT_ROOT
    from eval_pipelines.spec import load_spec
    from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource

    spec = load_spec(PROJECT_ROOT / "evals" / "fraud_detector.yaml")
    folders = {}
    for name, url in (("postgresql", pg_warehouse), ("duckdb", f"duckdb:///{twelve_weeks}")):
        root = tmp_path / name
        result = materialize(
            [build_weekly_assets(spec)],
            partition_key=WEEKS[-1],
            instance=DagsterInstance.ephemeral(),
            resources={
                "warehouse": WarehouseResource(url=url),
                "artifacts": ArtifactStoreResource(root=str(root)),
                "mlflow": MlflowResource(
                    tracking_uri=migrated_store(tmp_path / f"{name}.db"),
                    artifact_location=str(tmp_path / f"{name}-mlflow-artifacts"),
                ),
                "alerts": AlertsResource(),
            },
        )
        assert result.success
        folders[name] = root / "fraud_detector" / WEEKS[-1]
    pg = json.loads((folders["postgresql"] / "verdict.json").read_text())
    assert pg["decision"] == "hold"
    assert_same_results(folders["postgresql"], folders["duckdb"], same_engine=False)


# ------------------------------------------------- parallel models within one run, pool-capped

PARALLEL_MODELS = ("model_a", "model_b")
PARALLEL_WEEK = "2026-11-16"
LOCATION = "from assets.definitions import build_definitions\n\ndefs = build_definitions()\n"


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> Path:
    """Two copies of the demo spec (two models, fewer slices and replicates: each step is
    cheap) on one tiny demo warehouse, and a code location file that builds the project's
    definitions from them (``$EVAL_SPECS_DIR``)."""
    from assets.specs import PROJECT_ROOT
    from eval_pipelines.demo import build_demo_warehouse

    folder = tmp_path_factory.mktemp("two-models")
    warehouse = folder / "warehouse.duckdb"
    build_demo_warehouse(warehouse, rows=8_000)
    specs = folder / "evals"
    specs.mkdir()
    text = (PROJECT_ROOT / "evals" / "fraud_detector.yaml").read_text()
    for old, new in (
        ("duckdb:///../data/warehouse.duckdb", f"duckdb:///{warehouse}"),
        ("slices: [country, device, plan, [country, device]]", "slices: [country]"),
        ("replicates: 200", "replicates: 20"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    for model in PARALLEL_MODELS:
        spec = text.replace("model: fraud_detector", f"model: {model}")
        (specs / f"{model}.yaml").write_text(spec)
    (folder / "location.py").write_text(LOCATION)
    # The MLflow store exists, migrated, before concurrent steps open it.
    migrated_store(folder / "mlflow.db")
    return folder


def _step_intervals(instance, run_id: str) -> dict[str, tuple[float, float]]:
    """{step key: (STEP_START time, STEP_SUCCESS time)} from the run's event log."""
    from dagster import DagsterEventType

    starts, ends = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            ends[event.step_key] = entry.timestamp
    assert set(starts) == set(ends), (starts, ends)
    return {key: (starts[key], ends[key]) for key in starts}


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one instant (an end before a start at a tie)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = most = 0
    for _, change in edges:
        open_now += change
        most = max(most, open_now)
    return most


def _run_weekly_job(folder: Path, pool_limit: int, monkeypatch) -> dict[str, tuple[float, float]]:
    """One run of ``weekly_evaluation`` for the two models, as a deployment launches it: the
    job reconstructed from a code location file, the executor's steps in their own processes,
    a persistent instance whose ``warehouse`` pool has ``pool_limit`` slots."""
    from dagster import execute_job, instance_for_test
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from assets.specs import PROJECT_ROOT

    root = folder / f"pool-{pool_limit}"
    monkeypatch.setenv("EVAL_SPECS_DIR", str(folder / "evals"))
    monkeypatch.setenv("EVAL_ARTIFACTS_ROOT", str(root / "artifacts"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    monkeypatch.setenv("EVAL_MLFLOW_ARTIFACT_LOCATION", str(folder / "mlflow-artifacts"))
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")
    repository = ReconstructableRepository.for_file(
        str(folder / "location.py"), "defs", working_directory=str(PROJECT_ROOT)
    )
    job = repository.get_reconstructable_job("weekly_evaluation")
    overrides = {"concurrency": {"pools": {"default_limit": pool_limit}}}
    home = root / "dagster_home"
    home.mkdir(parents=True)
    with instance_for_test(overrides=overrides, temp_dir=str(home)) as instance:
        with execute_job(
            job,
            instance=instance,
            tags={"dagster/partition": PARALLEL_WEEK},
            # As many processes as models: with one pool slot, the pool is what serializes.
            run_config={"execution": {"config": {"max_concurrent": len(PARALLEL_MODELS)}}},
        ) as result:
            assert result.success, [e.message for e in result.all_events if e.is_failure]
            intervals = _step_intervals(instance, result.run_id)
        assert instance.event_log_storage.get_concurrency_info("warehouse").slot_count == (
            pool_limit
        )
    for model in PARALLEL_MODELS:
        assert (root / "artifacts" / model / PARALLEL_WEEK / "verdict.json").is_file(), model
    return intervals


@pytest.mark.slow
def test_one_run_evaluates_models_in_parallel_up_to_the_warehouse_pool(two_models, monkeypatch):
    steps = {f"{model}__weekly_evaluation" for model in PARALLEL_MODELS}
    two_slots = _run_weekly_job(two_models, 2, monkeypatch)
    assert set(two_slots) == steps
    assert _most_at_once(list(two_slots.values())) == 2, two_slots
    one_slot = _run_weekly_job(two_models, 1, monkeypatch)
    assert set(one_slot) == steps
    assert _most_at_once(list(one_slot.values())) == 1, one_slot


def test_most_at_once_counts_overlaps():
    assert _most_at_once([(0, 2), (1, 3), (4, 5)]) == 2
    assert _most_at_once([(0, 1), (1, 2), (2, 3)]) == 1  # touching is not overlapping
    assert _most_at_once([(0, 9), (1, 2), (1.5, 3)]) == 3


if __name__ == "__main__":
    print(json.dumps(_driver(json.loads(sys.argv[1]))))
