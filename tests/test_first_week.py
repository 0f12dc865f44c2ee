"""``start_week: earliest`` (issue 9, item 1): a model's calendar begins at the week of its first
prediction, read once from the warehouse when the code location loads; and ``make ui``'s
calendar (``EVAL_DEFAULT_START_WEEK=earliest``) is the demo's eight weeks, whenever it was built.

Expected weeks are worked by hand from the timestamps written; every clock is pinned.
"""

import logging
import re
import shutil
from datetime import UTC, datetime

import duckdb
import pytest
from dagster import build_schedule_context
from support.data import base_spec

from assets.definitions import build_definitions
from assets.partitions import DEFAULT_START_ENV, partitions_for, start_week
from assets.specs import PROJECT_ROOT
from eval_pipelines.demo import build_demo_warehouse, latest_demo_start, ui_registry_week
from eval_pipelines.errors import SpecError
from eval_pipelines.spec import load_spec, parse_spec

NOW = datetime(2026, 12, 2, 9, tzinfo=UTC)  # a Wednesday: the last complete week is 2026-11-23


def _warehouse(path, ts_type: str, stamps: list[str]) -> str:
    """``inference_logs`` with one v1 and one v2 prediction at each of ``stamps``."""
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"CREATE TABLE inference_logs (prediction_id VARCHAR, ts {ts_type}, "
            "model_version VARCHAR, score DOUBLE)"
        )
        for i, stamp in enumerate(stamps):
            for version, minutes in (("v1", 0), ("v2", 60 * 24 * 7 * i)):
                con.execute(
                    f"INSERT INTO inference_logs VALUES ('r{i}', "
                    f"CAST('{stamp}' AS {ts_type}) + INTERVAL {minutes} MINUTE, "
                    f"'{version}', 0.5)"
                )
    return f"duckdb:///{path}"


@pytest.mark.parametrize(
    ("ts_type", "first", "week"),
    [
        # Sunday 23:30 at UTC-2 is Monday 01:30 UTC: the week of Monday 2026-10-05.
        ("TIMESTAMPTZ", "2026-10-04 23:30:00-02:00", "2026-10-05"),
        # A naive timestamp means UTC: Sunday 2026-10-04 belongs to the week of 2026-09-28.
        ("TIMESTAMP", "2026-10-04 23:30:00", "2026-09-28"),
        ("DATE", "2026-10-05", "2026-10-05"),
    ],
)
def test_earliest_is_the_monday_of_the_first_prediction_in_utc(tmp_path, ts_type, first, week):
    url = _warehouse(tmp_path / "w.duckdb", ts_type, [first, "2026-11-18 12:00:00+00:00"])
    spec = parse_spec(base_spec(url, start_week="earliest"))
    assert start_week(spec, NOW) == week
    keys = partitions_for(spec).get_partition_keys(current_time=NOW)
    assert keys[0] == week and keys[-1] == "2026-11-23"


def test_earliest_reads_the_spec_query_not_only_the_table(tmp_path):
    # v2's predictions start one week after v1's (see _warehouse): a query keeping v2 only.
    url = _warehouse(tmp_path / "w.duckdb", "TIMESTAMP", ["2026-10-20 08:00:00"] * 3)
    raw = base_spec(url, start_week="earliest")
    raw["predictions"] = {
        "query": "SELECT * FROM inference_logs WHERE model_version = 'v2' AND prediction_id > 'r0'"
    }
    assert start_week(parse_spec(raw), NOW) == "2026-10-26"


def test_a_spec_without_start_week_follows_eval_default_start_week(tmp_path, monkeypatch):
    url = _warehouse(tmp_path / "w.duckdb", "TIMESTAMP", ["2026-10-14 10:00:00"])
    spec = parse_spec(base_spec(url))
    assert start_week(spec, NOW) == "2026-09-28"  # unset: the fixed demo's first week
    monkeypatch.setenv(DEFAULT_START_ENV, "2025-10-06")
    assert start_week(spec, NOW) == "2025-10-06"
    monkeypatch.setenv(DEFAULT_START_ENV, "earliest")
    assert start_week(spec, NOW) == "2026-10-12"
    # A spec's own start_week wins over the default.
    assert start_week(parse_spec(base_spec(url, start_week="2026-06-01")), NOW) == "2026-06-01"
    monkeypatch.setenv(DEFAULT_START_ENV, "2025-10-08")
    with pytest.raises(SpecError, match=r"EVAL_DEFAULT_START_WEEK: expected a Monday .*2025-10-08"):
        start_week(spec, NOW)


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (lambda path: None, "DuckDB file .* not found"),
        (lambda path: _warehouse(path, "TIMESTAMP", []), "no predictions yet"),
    ],
)
def test_without_predictions_to_read_the_calendar_begins_last_week(tmp_path, caplog, make, cause):
    """A fresh clone before `make demo`, or an empty table: the code location still loads."""
    path = tmp_path / "w.duckdb"
    make(path)
    spec = parse_spec(base_spec(f"duckdb:///{path}", model="new_model", start_week="earliest"))
    with caplog.at_level(logging.WARNING, logger="assets.partitions"):
        assert start_week(spec, NOW) == "2026-11-23"
    [record] = caplog.records
    assert record.getMessage().startswith("new_model: start_week earliest: ")
    assert "begin at the last complete week, 2026-11-23" in record.getMessage()
    assert re.search(cause, record.getMessage())


def test_a_bad_start_week_value_is_one_sentence():
    with pytest.raises(SpecError, match=r"start_week: expected a Monday YYYY-MM-DD or 'earliest'"):
        parse_spec(base_spec("duckdb:///w.duckdb", start_week="latest"))


def test_make_ui_shows_the_demos_eight_weeks_whenever_it_was_built(tmp_path, monkeypatch):
    """What `make ui` loads after `make demo` on Wednesday 2026-12-02: the demo spec (no
    start_week) with EVAL_DEFAULT_START_WEEK=earliest, and the registry week it reads."""
    (tmp_path / "evals").mkdir()
    shutil.copy(PROJECT_ROOT / "evals" / "fraud_detector.yaml", tmp_path / "evals")
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    build_demo_warehouse(warehouse, rows=2_000, start=latest_demo_start(NOW))
    monkeypatch.setenv("EVAL_SPECS_DIR", str(tmp_path / "evals"))
    monkeypatch.setenv(DEFAULT_START_ENV, "earliest")
    assert load_spec(tmp_path / "evals" / "fraud_detector.yaml").start_week is None

    defs = build_definitions()

    job = defs.resolve_job_def("weekly_evaluation")
    keys = job.partitions_def.get_partition_keys(current_time=NOW)
    assert keys == [
        "2026-10-05",
        "2026-10-12",
        "2026-10-19",
        "2026-10-26",
        "2026-11-02",
        "2026-11-09",
        "2026-11-16",
        "2026-11-23",
    ]
    assert ui_registry_week(warehouse, NOW) == keys[-1]
    # The tick that followed the demo's last week asks only for weeks with data: that week
    # and the one whose labels matured (labels.max_delay 14d).
    schedule = defs.resolve_schedule_def("weekly_evaluation_schedule")
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 30, 6, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    requested = [r.partition_key for r in schedule.evaluate_tick(context).run_requests]
    assert requested == ["2026-11-09", "2026-11-23"]
    assert set(requested) <= set(keys)
