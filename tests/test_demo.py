"""Tests for the synthetic demo warehouse.

The demo warehouse is the fixture every other pipeline test and the demo itself rely on,
so these tests pin down both its *mechanics* (schema, determinism, shadow pairing, label
delays, atomic replacement) and its *planted truths* (v2 better overall but worse on
Android, ``amount`` drift).  The truths are checked with independent tools (scikit-learn
and a hand-written PSI) rather than with the pipeline's own SQL, so a bug in the
pipeline cannot hide a bug in the data or vice versa.
"""

import datetime as dt
import itertools
import os
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score, roc_auc_score

from eval_pipelines import demo
from eval_pipelines.demo import DEMO_WEEKS, DemoSummary, build_demo_warehouse, demo_weeks

SMALL_ROWS = 40_000

EXPECTED_LOG_SCHEMA = [
    ("prediction_id", "VARCHAR"),
    ("ts", "TIMESTAMP"),
    ("model_name", "VARCHAR"),
    ("model_version", "VARCHAR"),
    ("score", "DOUBLE"),
    ("latency_ms", "DOUBLE"),
    ("country", "VARCHAR"),
    ("device", "VARCHAR"),
    ("plan", "VARCHAR"),
    ("amount", "DOUBLE"),
    ("account_age_days", "INTEGER"),
    ("merchant_category", "VARCHAR"),
    ("num_prior_txn", "INTEGER"),
    ("hour_of_day", "INTEGER"),
]
EXPECTED_LABEL_SCHEMA = [
    ("prediction_id", "VARCHAR"),
    ("label", "INTEGER"),
    ("labeled_at", "TIMESTAMP"),
]


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    """A small multi-chunk build shared by the mechanics tests (chunking is exercised)."""
    path = tmp_path_factory.mktemp("small") / "demo.duckdb"
    summary = build_demo_warehouse(path, rows=SMALL_ROWS, chunk_requests=7_000)
    return path, summary


@pytest.fixture(scope="module")
def default_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default-size build, on which the planted truths are promised."""
    path = tmp_path_factory.mktemp("default") / "demo.duckdb"
    build_demo_warehouse(path)
    return path


def _query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _fingerprint(path: Path) -> list[tuple]:
    """Order-independent content hash plus counts of both tables."""
    return _query(
        path,
        """
        SELECT (SELECT count(*) FROM inference_logs),
               (SELECT bit_xor(hash(t)) FROM inference_logs t),
               (SELECT count(*) FROM labels),
               (SELECT bit_xor(hash(t)) FROM labels t)
        """,
    )


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index over deciles of the reference sample."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11)[1:-1]))
    bins = len(edges) + 1
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=bins)
    cur = np.bincount(np.searchsorted(edges, current, side="right"), minlength=bins)
    ref_p = np.clip(ref / ref.sum(), 1e-6, None)
    cur_p = np.clip(cur / cur.sum(), 1e-6, None)
    return float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))


# --------------------------------------------------------------------------- mechanics


def test_summary_describes_the_build(small_db: tuple[Path, DemoSummary]) -> None:
    path, summary = small_db
    assert summary == DemoSummary(
        path=path,
        rows=SMALL_ROWS,
        requests=SMALL_ROWS // 2,
        weeks=8,
        start=dt.date(2026, 9, 28),
        end=dt.date(2026, 11, 23),
    )
    assert _query(path, "SELECT count(*) FROM inference_logs") == [(SMALL_ROWS,)]


def test_odd_rows_round_down_to_whole_requests(tmp_path: Path) -> None:
    summary = build_demo_warehouse(tmp_path / "odd.duckdb", rows=1_001, weeks=1)
    assert (summary.rows, summary.requests) == (1_000, 500)
    assert _query(summary.path, "SELECT count(*) FROM inference_logs") == [(1_000,)]


def test_schema(small_db: tuple[Path, DemoSummary]) -> None:
    path, _ = small_db
    assert _query(path, "SELECT column_name, column_type FROM (DESCRIBE inference_logs)") == (
        EXPECTED_LOG_SCHEMA
    )
    assert _query(path, "SELECT column_name, column_type FROM (DESCRIBE labels)") == (
        EXPECTED_LABEL_SCHEMA
    )


def test_same_arguments_give_identical_tables(
    tmp_path: Path, small_db: tuple[Path, DemoSummary]
) -> None:
    path, _ = small_db
    again = build_demo_warehouse(tmp_path / "again.duckdb", rows=SMALL_ROWS, chunk_requests=7_000)
    assert _fingerprint(again.path) == _fingerprint(path)

    other_seed = build_demo_warehouse(
        tmp_path / "seed.duckdb", rows=SMALL_ROWS, seed=7, chunk_requests=7_000
    )
    assert _fingerprint(other_seed.path) != _fingerprint(path)


def test_without_other_tasks_only_the_fraud_tables_are_written_and_identical(
    tmp_path: Path, small_db: tuple[Path, DemoSummary]
) -> None:
    path, _ = small_db
    alone = build_demo_warehouse(
        tmp_path / "alone.duckdb", rows=SMALL_ROWS, chunk_requests=7_000, other_tasks=False
    )
    assert _fingerprint(alone.path) == _fingerprint(path)
    tables = "SELECT table_name FROM information_schema.tables ORDER BY 1"
    assert _query(alone.path, tables) == [("inference_logs",), ("labels",)]
    assert len(_query(path, tables)) > 2


def test_every_request_is_shadowed_by_both_versions(small_db: tuple[Path, DemoSummary]) -> None:
    path, summary = small_db
    bad = _query(
        path,
        """
        SELECT count(*) FROM (
            SELECT prediction_id,
                   count(*) AS n,
                   count(DISTINCT model_version) AS versions,
                   count(DISTINCT (ts, model_name, country, device, plan, amount,
                                   account_age_days, merchant_category, num_prior_txn,
                                   hour_of_day)) AS feature_sets
            FROM inference_logs GROUP BY prediction_id
        ) WHERE n <> 2 OR versions <> 2 OR feature_sets <> 1
        """,
    )
    assert bad == [(0,)]
    ((requests, same_score),) = _query(
        path,
        """
        SELECT count(DISTINCT prediction_id), count(*) FILTER (WHERE v1.score = v2.score)
        FROM inference_logs v1 JOIN inference_logs v2 USING (prediction_id)
        WHERE v1.model_version = 'v1' AND v2.model_version = 'v2'
        """,
    )
    assert requests == summary.requests
    assert same_score == 0


def test_value_domains(small_db: tuple[Path, DemoSummary]) -> None:
    path, summary = small_db
    ((bad_rows, min_id, max_id, model_names, devices, plans, countries, merchants),) = _query(
        path,
        f"""
        SELECT count(*) FILTER (WHERE NOT (
                   score > 0 AND score < 1
                   AND ts >= TIMESTAMP '{summary.start}' AND ts < TIMESTAMP '{summary.end}'
                   AND hour_of_day = hour(ts)
                   AND regexp_full_match(prediction_id, 'p[0-9]{{9}}')
                   AND amount > 0 AND latency_ms > 0
                   AND account_age_days >= 0 AND num_prior_txn >= 0)),
               min(prediction_id), max(prediction_id),
               list(DISTINCT model_name), list(DISTINCT device ORDER BY device),
               list(DISTINCT plan ORDER BY plan), count(DISTINCT country),
               count(DISTINCT merchant_category)
        FROM inference_logs
        """,
    )
    assert bad_rows == 0
    assert (min_id, max_id) == ("p000000001", f"p{summary.requests:09d}")
    assert model_names == ["fraud_detector"]
    assert devices == ["android", "ios", "web"]
    assert plans == ["enterprise", "free", "pro"]
    assert (countries, merchants) == (8, 8)
    shares = _query(
        path, "SELECT country FROM inference_logs GROUP BY country ORDER BY count(*) DESC"
    )
    assert shares[0] == ("US",)


def test_rows_are_stored_in_time_order(small_db: tuple[Path, DemoSummary]) -> None:
    path, _ = small_db
    out_of_order = _query(
        path,
        """
        SELECT count(*) FROM (
            SELECT (ts, prediction_id, model_version) AS k,
                   lag((ts, prediction_id, model_version)) OVER (ORDER BY rowid) AS prev
            FROM inference_logs
        ) WHERE prev IS NOT NULL AND prev >= k
        """,
    )
    assert out_of_order == [(0,)]


def test_labels(small_db: tuple[Path, DemoSummary]) -> None:
    path, summary = small_db
    ((n, distinct, orphans, bad, min_delay_s, max_delay_s, positive_rate),) = _query(
        path,
        """
        SELECT count(*), count(DISTINCT l.prediction_id),
               count(*) FILTER (WHERE r.ts IS NULL),
               count(*) FILTER (WHERE l.label NOT IN (0, 1)),
               min(epoch(l.labeled_at) - epoch(r.ts)), max(epoch(l.labeled_at) - epoch(r.ts)),
               avg(l.label)
        FROM labels l
        LEFT JOIN (SELECT DISTINCT prediction_id, ts FROM inference_logs) r USING (prediction_id)
        """,
    )
    assert n == distinct
    assert orphans == 0 and bad == 0
    assert 0 <= min_delay_s <= max_delay_s <= dt.timedelta(days=14).total_seconds()
    assert max_delay_s > dt.timedelta(days=7).total_seconds()  # a real delay tail exists
    assert 0.04 <= 1 - n / summary.requests <= 0.06
    assert 0.10 <= positive_rate <= 0.17


def test_demo_weeks(tmp_path: Path) -> None:
    weeks = demo_weeks(dt.date(2026, 9, 28), 8)
    assert weeks[0] == dt.date(2026, 9, 28) and weeks[-1] == dt.date(2026, 11, 16)
    assert all(w.weekday() == 0 for w in weeks)
    assert tuple(weeks) == DEMO_WEEKS
    with pytest.raises(ValueError, match="Monday"):
        demo_weeks(dt.date(2026, 9, 29), 8)
    with pytest.raises(ValueError):
        build_demo_warehouse(tmp_path / "x.duckdb", start=dt.date(2026, 9, 29))


def test_weeks_hold_equal_traffic(small_db: tuple[Path, DemoSummary]) -> None:
    path, summary = small_db
    rows = _query(
        path,
        """
        SELECT date_trunc('week', ts)::DATE AS week, count(*) FROM inference_logs
        GROUP BY week ORDER BY week
        """,
    )
    assert tuple(week for week, _ in rows) == DEMO_WEEKS[: summary.weeks]
    expected = summary.rows / summary.weeks
    assert all(abs(count - expected) < 0.05 * expected for _, count in rows)


# ----------------------------------------------------------------------- atomic writes


def test_atomic_write_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "dir" / "demo.duckdb"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a duckdb file")
    build_demo_warehouse(target, rows=2_000, weeks=2)
    assert _query(target, "SELECT count(*) FROM inference_logs") == [(2_000,)]
    assert sorted(p.name for p in target.parent.iterdir()) == ["demo.duckdb"]


def test_atomic_write_creates_parent_dirs(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "demo.duckdb"
    build_demo_warehouse(str(target), rows=2_000, weeks=1)
    assert [p.name for p in target.parent.iterdir()] == ["demo.duckdb"]


def test_failed_build_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "demo.duckdb"
    build_demo_warehouse(target, rows=2_000, weeks=1)
    before = _fingerprint(target)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("generator failed")

    monkeypatch.setattr(demo, "_generate_chunk", boom)
    with pytest.raises(RuntimeError, match="generator failed"):
        build_demo_warehouse(target, rows=2_000, weeks=1)
    assert _fingerprint(target) == before
    assert os.listdir(tmp_path) == ["demo.duckdb"]


# ---------------------------------------------------------------------- planted truths


@pytest.fixture(scope="module")
def scored(default_db: Path) -> pd.DataFrame:
    """Labelled predictions of the default build with their week."""
    with duckdb.connect(str(default_db), read_only=True) as con:
        return con.execute(
            """
            SELECT date_trunc('week', p.ts)::DATE AS week, p.model_version, p.device,
                   p.score, l.label
            FROM inference_logs p JOIN labels l USING (prediction_id)
            """
        ).df()


@pytest.mark.parametrize("week", DEMO_WEEKS, ids=str)
def test_v2_better_overall_but_worse_on_android(scored: pd.DataFrame, week: dt.date) -> None:
    """The truths hold in every week, so any weekly partition can demonstrate them."""
    this_week = scored[scored["week"] == pd.Timestamp(week)]
    metrics = {}
    for version, rows in this_week.groupby("model_version"):
        android = rows[rows["device"] == "android"]
        metrics[version] = {
            "auc": roc_auc_score(rows["label"], rows["score"]),
            "recall": recall_score(rows["label"], rows["score"] >= 0.5),
            "android_recall": recall_score(android["label"], android["score"] >= 0.5),
        }
    v1, v2 = metrics["v1"], metrics["v2"]
    assert 0.82 <= v1["auc"] <= 0.87
    assert 0.025 <= v2["auc"] - v1["auc"] <= 0.06
    assert 0.4 <= v1["recall"] <= 0.7
    assert v2["recall"] >= v1["recall"] - 0.01
    assert v1["android_recall"] - v2["android_recall"] >= 0.15


def _weekly_features(path: Path) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            """
            SELECT date_trunc('week', ts)::DATE AS week, amount, account_age_days,
                   num_prior_txn, hour_of_day
            FROM inference_logs WHERE model_version = 'v1'
            """
        ).df()


def test_amount_drifts_in_the_last_weeks_only(default_db: Path) -> None:
    features = _weekly_features(default_db)
    weeks = [pd.Timestamp(w) for w in DEMO_WEEKS]
    last = features[features["week"] == weeks[-1]]
    reference = features[features["week"].isin(weeks[-5:-1])]
    assert _psi(reference["amount"].to_numpy(), last["amount"].to_numpy()) > 0.25
    for column in ("account_age_days", "num_prior_txn", "hour_of_day"):
        assert _psi(reference[column].to_numpy(), last[column].to_numpy()) < 0.1, column

    by_week = {week: rows for week, rows in features.groupby("week")}
    for previous, current in itertools.pairwise(weeks):
        for column in ("amount", "account_age_days", "num_prior_txn", "hour_of_day"):
            psi = _psi(by_week[previous][column].to_numpy(), by_week[current][column].to_numpy())
            if column == "amount" and current == weeks[-2]:
                assert psi > 0.25  # the drift starts here ...
            else:
                assert psi < 0.1, (column, current)  # ... and nothing else moves
