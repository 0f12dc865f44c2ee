"""A new model on its own warehouse, the first time: relative paths, its own calendar, and a
first week with no reference data (issue 9)."""

import json
from datetime import UTC, date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from support.data import WEEK, base_spec, random_window, write_warehouse
from support.mlflow_store import migrated_store

from eval_pipelines.cli import main
from eval_pipelines.demo import DEMO_START, build_demo_warehouse, demo_weeks, latest_demo_start
from eval_pipelines.errors import SpecError
from eval_pipelines.spec import load_spec, parse_spec, resolve_duckdb_path

# ---------------------------------------------------------------- relative paths (item 5)


def test_relative_duckdb_path_resolves_from_the_spec_folder(tmp_path):
    folder = tmp_path / "specs" / "mymodel"
    folder.mkdir(parents=True)
    spec = base_spec("duckdb:///data/w.duckdb")
    (folder / "t4.yaml").write_text(yaml.safe_dump(spec))
    loaded = load_spec(folder / "t4.yaml")
    assert loaded.warehouse == f"duckdb:///{folder.resolve() / 'data' / 'w.duckdb'}"
    # What is hashed and recorded stays as written.
    assert loaded.warehouse_template == "duckdb:///data/w.duckdb"


@pytest.mark.parametrize(
    "url",
    [
        "duckdb:////abs/w.duckdb",
        "duckdb:///:memory:",
        "duckdb://",
        "postgresql://eval@db:5432/wh",
        "sqlite:///relative.db",
    ],
)
def test_absolute_memory_and_other_dialects_are_unchanged(url, tmp_path):
    assert resolve_duckdb_path(url, tmp_path) == url


def test_relative_duckdb_path_keeps_its_query_string(tmp_path):
    assert (
        resolve_duckdb_path("duckdb:///w.duckdb?threads=2", tmp_path)
        == f"duckdb:///{tmp_path.resolve() / 'w.duckdb'}?threads=2"
    )


def test_a_spec_parsed_without_a_file_keeps_the_current_directory():
    spec = parse_spec(base_spec("duckdb:///data/w.duckdb"))
    assert spec.warehouse == "duckdb:///data/w.duckdb"


def test_run_from_another_directory_finds_warehouse_and_query(tmp_path, monkeypatch, capsys):
    elsewhere = tmp_path / "elsewhere"
    folder = elsewhere / "mymodel"
    (folder / "data").mkdir(parents=True)
    predictions, labels = random_window(np.random.default_rng(9), 2_000)
    write_warehouse(folder / "data" / "w.duckdb", predictions, labels)
    (folder / "labels.sql").write_text("SELECT prediction_id, label, labeled_at FROM labels")
    spec = base_spec("duckdb:///data/w.duckdb", labels={"query": "labels.sql", "max_delay": "14d"})
    (folder / "t4.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(elsewhere)

    code = main(["run", "--spec", "mymodel/t4.yaml", "--week", WEEK, "--out", "out"])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "verdict: " in captured.out
    verdict = json.loads((elsewhere / "out" / "verdict.json").read_text())
    assert verdict["model"] == "test_model"
    assert verdict["window"].startswith(WEEK)
    assert not (elsewhere / "data").exists()


# ---------------------------------------------------------- a first week (item 2)


def test_a_first_week_without_reference_data_is_inconclusive_not_an_error(tmp_path, capsys):
    predictions, labels = random_window(np.random.default_rng(2), 2_000)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    spec = base_spec(
        url,
        drift={"features": ["device"], "categorical": ["device"], "methods": ["psi"]},
        gates=[{"drift": "psi", "max": 0.25}],
    )
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"

    code = main(["run", "--spec", str(tmp_path / "spec.yaml"), "--week", WEEK, "--out", str(out)])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "verdict: INCONCLUSIVE" in captured.out
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["decision"] == "inconclusive"
    drift_reasons = [r for r in verdict["reasons"] if r["gate"] == "{drift=psi, max=0.25}"]
    assert [(r["outcome"], r["message"]) for r in drift_reasons] == [
        (
            "inconclusive",
            "no reference data for any feature: no predictions in the reference weeks "
            "(drift.reference_weeks); drift is judged once earlier weeks hold predictions",
        )
    ]
    checks = json.loads((out / "validation.json").read_text())["checks"]
    [note] = [c for c in checks if c["name"] == "drift_reference_data"]
    assert note["passed"] is True and note["blocking"] is False
    assert note["message"].startswith(
        "skipped: no predictions in the reference weeks ([2026-10-19 00:00, 2026-11-16 00:00) UTC"
    )
    report = (out / "report.md").read_text()
    assert "Drift not judged: no predictions in the reference weeks" in report
    drift = pd.read_parquet(out / "drift.parquet")
    assert sorted(drift["feature"]) == ["device", "label", "score"]  # label drift: default on
    assert (drift["n_reference"] == 0).all()
    features = drift[drift["feature"] != "label"]
    assert (features["n_current"] == 2_000).all()
    # Label drift counts the labeled rows only.
    assert (drift[drift["feature"] == "label"]["n_current"] < 2_000).all()


# ------------------------------------------------------------ own calendar (item 1)

EARLY_WEEK = "2025-10-06"  # before the demo's first week, 2026-09-28


def _shifted(frame: pd.DataFrame, offset: pd.Timedelta, *columns: str) -> pd.DataFrame:
    return frame.assign(**{c: frame[c] + offset for c in columns})


def _early_spec(tmp_path):
    """A model whose data starts 2025-10-06, with drift and a drift gate: its first week."""
    predictions, labels = random_window(np.random.default_rng(5), 1_500)
    offset = pd.Timestamp(EARLY_WEEK) - pd.Timestamp(WEEK)
    write_warehouse(
        tmp_path / "early.duckdb",
        _shifted(predictions, offset, "ts"),
        _shifted(labels, offset, "labeled_at"),
    )
    raw = base_spec(
        "duckdb:///early.duckdb",
        model="early_model",
        start_week=EARLY_WEEK,
        drift={"features": ["device"], "categorical": ["device"], "methods": ["psi"]},
        gates=[{"drift": "psi", "max": 0.25}],
    )
    (tmp_path / "early.yaml").write_text(yaml.safe_dump(raw))
    return load_spec(tmp_path / "early.yaml")


def _resources(tmp_path):
    from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource

    return {
        "warehouse": WarehouseResource(),
        "artifacts": ArtifactStoreResource(root=str(tmp_path / "artifacts")),
        "mlflow": MlflowResource(
            tracking_uri=migrated_store(tmp_path / "mlflow.db", exist_ok=True),
            artifact_location=str(tmp_path / "mlartifacts"),
        ),
        "alerts": AlertsResource(),
    }


def test_start_week_must_be_a_monday():
    with pytest.raises(SpecError, match=r"start_week: 2025-10-08 is a Wednesday; .*2025-10-06"):
        parse_spec(base_spec("duckdb:///w.duckdb", start_week="2025-10-08"))


def test_each_model_has_its_own_calendar(tmp_path):
    from assets.evaluation import build_weekly_assets
    from assets.partitions import DEFAULT_START_WEEK

    early = _early_spec(tmp_path)
    demo = parse_spec(base_spec("duckdb:///w.duckdb"))
    now = datetime(2026, 11, 27, tzinfo=UTC)
    early_keys = build_weekly_assets(early).partitions_def.get_partition_keys(current_time=now)
    demo_keys = build_weekly_assets(demo).partitions_def.get_partition_keys(current_time=now)
    assert (early_keys[0], early_keys[-1]) == (EARLY_WEEK, WEEK)
    assert (demo_keys[0], demo_keys[-1]) == (DEFAULT_START_WEEK, WEEK) == ("2026-09-28", WEEK)
    assert len(early_keys) == 59 and len(demo_keys) == 8


def test_models_with_different_starts_get_one_job_and_schedule_each(tmp_path):
    from dagster import Definitions

    from assets.evaluation import build_weekly_assets
    from assets.jobs import build_weekly_jobs, weeks_to_evaluate

    specs = [parse_spec(base_spec("duckdb:///w.duckdb")), _early_spec(tmp_path)]
    weekly = [build_weekly_assets(spec) for spec in specs]
    jobs, schedules = build_weekly_jobs(weekly, specs)
    defs = Definitions(
        assets=weekly, jobs=jobs, schedules=schedules, resources=_resources(tmp_path)
    )
    demo_job = defs.resolve_job_def("weekly_evaluation")
    early_job = defs.resolve_job_def("weekly_evaluation_from_2025_10_06")
    assert demo_job.partitions_def.start.date().isoformat() == "2026-09-28"
    assert early_job.partitions_def.start.date().isoformat() == EARLY_WEEK
    assert set(early_job.graph.node_dict) == {"early_model__weekly_evaluation"}
    assert {s.name for s in schedules} == {
        "weekly_evaluation_schedule",
        "weekly_evaluation_from_2025_10_06_schedule",
    }
    # The schedule never requests a week before a model's first week.
    assert weeks_to_evaluate([specs[0]], datetime(2025, 10, 20, 6, tzinfo=UTC)) == []
    assert weeks_to_evaluate([specs[1]], datetime(2025, 10, 20, 6, tzinfo=UTC)) == ["2025-10-13"]
    # A week later, the first week's labels have matured (labels.max_delay 14d): both weeks.
    assert weeks_to_evaluate([specs[1]], datetime(2025, 10, 27, 6, tzinfo=UTC)) == [
        "2025-10-06",
        "2025-10-20",
    ]


def test_a_partition_before_the_demos_first_week_materializes(tmp_path):
    from dagster import instance_for_test, materialize

    from assets.evaluation import build_weekly_assets

    spec = _early_spec(tmp_path)
    root = tmp_path / "artifacts"
    resources = _resources(tmp_path)  # the spec's own warehouse, relative to its folder
    with instance_for_test() as instance:
        result = materialize(
            [build_weekly_assets(spec)],
            partition_key=EARLY_WEEK,
            instance=instance,
            resources=resources,
        )
    assert result.success
    verdict = json.loads((root / "early_model" / EARLY_WEEK / "verdict.json").read_text())
    assert verdict["window"] == EARLY_WEEK
    # The model's first week: no reference data, so drift is inconclusive, not a failure.
    assert verdict["decision"] == "inconclusive"
    assert [r["outcome"] for r in verdict["reasons"] if r["gate"] == "{drift=psi, max=0.25}"] == [
        "inconclusive"
    ]
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["release_gates"].severity.value == "WARN"
    assert checks["no_drift"].passed
    assert checks["no_drift"].description == "not judged: no reference data (a first week)"


# ------------------------------------------------- the demo ends last week (item 2)


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (datetime(2026, 12, 1, 12, tzinfo=UTC), date(2026, 10, 5)),  # a Tuesday
        (datetime(2026, 11, 23, 0, tzinfo=UTC), date(2026, 9, 28)),  # the default's Monday
        (datetime(2026, 11, 22, 23, 59, tzinfo=UTC), date(2026, 9, 21)),  # a week not ended
    ],
)
def test_latest_demo_start_ends_the_demo_at_the_last_complete_week(now, start):
    assert latest_demo_start(now) == start
    assert demo_weeks(start)[-1] == start + timedelta(weeks=7)


def test_a_shifted_demo_has_the_same_rows_with_shifted_dates(tmp_path):
    shift = timedelta(weeks=9)
    build_demo_warehouse(tmp_path / "fixed.duckdb", rows=4_000)
    summary = build_demo_warehouse(tmp_path / "moved.duckdb", rows=4_000, start=DEMO_START + shift)
    assert (summary.start, summary.end) == (date(2026, 11, 30), date(2027, 1, 25))
    for table, stamp in (("inference_logs", "ts"), ("labels", "labeled_at")):
        fixed, moved = (
            duckdb.connect(str(tmp_path / name), read_only=True)
            .execute(f"SELECT * FROM {table} ORDER BY ALL")
            .df()
            for name in ("fixed.duckdb", "moved.duckdb")
        )
        assert len(fixed) > 0
        pd.testing.assert_frame_equal(fixed.drop(columns=stamp), moved.drop(columns=stamp))
        assert ((moved[stamp] - fixed[stamp]) == pd.Timedelta(shift)).all()
