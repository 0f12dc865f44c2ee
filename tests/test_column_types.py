"""The column types real warehouses have: BOOLEAN and DECIMAL labels, timestamps of every
precision with and without time zone, on DuckDB and PostgreSQL, give exactly the numbers the
same rows give with plain types; ``validate-spec --connect`` checks the types before a run."""

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from support.data import WEEK, base_spec, random_window

from eval_pipelines import cli
from eval_pipelines.dialects import type_family
from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import parse_spec

# The typed copies of the plain tables (plain: BIGINT 0/1 labels, TIMESTAMP times). The
# TIMESTAMPTZ_NS values are the same instants: built from the naive UTC value.
TYPED_SQL = {
    "typed_predictions": (
        "SELECT * REPLACE (CAST(timezone('UTC', ts) AS TIMESTAMPTZ_NS) AS ts) FROM inference_logs"
    ),
    "tz_predictions": (
        "SELECT * REPLACE (CAST(timezone('UTC', ts) AS TIMESTAMPTZ) AS ts) FROM inference_logs"
    ),
    "typed_labels": (
        "SELECT prediction_id, CAST(label AS BOOLEAN) AS label, "
        "CAST(labeled_at AS TIMESTAMP_NS) AS labeled_at FROM labels"
    ),
    "decimal_labels": (
        "SELECT prediction_id, CAST(label AS DECIMAL(3, 1)) AS label, "
        "CAST(labeled_at AS TIMESTAMP_MS) AS labeled_at FROM labels"
    ),
    "tz_labels": (
        "SELECT prediction_id, label, CAST(timezone('UTC', labeled_at) AS TIMESTAMPTZ) "
        "AS labeled_at FROM labels"
    ),
    "time_labels": (
        "SELECT prediction_id, label, CAST(labeled_at AS TIME) AS labeled_at FROM labels"
    ),
    "text_labels": (
        "SELECT prediction_id, CAST(label AS VARCHAR) AS label, labeled_at FROM labels"
    ),
}


def _frames(seed: int = 5, n: int = 1500) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two weeks of shadow-scored requests (the earlier one is the drift reference), with
    sub-second prediction times so precision matters."""
    rng = np.random.default_rng(seed)
    current, labels = random_window(rng, n)
    reference, ref_labels = random_window(rng, n)
    reference["prediction_id"] = "ref-" + reference["prediction_id"]
    ref_labels["prediction_id"] = "ref-" + ref_labels["prediction_id"]
    reference["ts"] -= pd.Timedelta(days=7)
    ref_labels["labeled_at"] -= pd.Timedelta(days=7)
    predictions = pd.concat([reference, current], ignore_index=True)
    predictions["amount"] = rng.lognormal(3, 1, len(predictions))
    # Microsecond times, some at the window's edges: the last microsecond of the week (in)
    # and the first microsecond of the next (out).
    offsets = pd.to_timedelta(rng.integers(0, 1_000_000, len(predictions)), unit="us")
    predictions["ts"] = (predictions["ts"] + offsets).astype("datetime64[us]")
    edge = predictions.index[-4:]
    end = pd.Timestamp(WEEK) + pd.Timedelta(days=7)
    predictions.loc[edge[:2], "ts"] = end - pd.Timedelta(microseconds=1)
    predictions.loc[edge[2:], "ts"] = end
    labels = pd.concat([ref_labels, labels], ignore_index=True)
    labels["labeled_at"] = labels["labeled_at"].astype("datetime64[us]")
    labels["label"] = labels["label"].astype("int64")
    return predictions, labels


def _warehouse(path: Path) -> str:
    predictions, labels = _frames()
    con = duckdb.connect(str(path))
    try:
        con.register("p_frame", predictions)
        con.register("l_frame", labels)
        con.execute(
            "CREATE TABLE inference_logs AS SELECT * REPLACE (CAST(ts AS TIMESTAMP) AS ts) "
            "FROM p_frame"
        )
        con.execute(
            "CREATE TABLE labels AS SELECT prediction_id, CAST(label AS BIGINT) AS label, "
            "CAST(labeled_at AS TIMESTAMP) AS labeled_at FROM l_frame"
        )
        for name, sql in TYPED_SQL.items():
            con.execute(f"CREATE TABLE {name} AS {sql}")
    finally:
        con.close()
    return f"duckdb:///{path}"


def _spec(url: str, predictions: str = "inference_logs", labels: str = "labels"):
    return parse_spec(
        base_spec(
            url,
            predictions={"table": predictions},
            labels={"table": labels, "max_delay": "14d"},
            drift={"reference_weeks": 1, "features": ["amount", "country"]},
            gates=[{"metric": "recall", "max_regression": 0.02}],
        )
    )


def _assert_frames_equal(left: pd.DataFrame, right: pd.DataFrame) -> None:
    assert list(left.columns) == list(right.columns)
    assert len(left) == len(right) > 0
    for column in left.columns:
        a, b = left[column].to_numpy(), right[column].to_numpy()
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_array_equal(a, b, err_msg=column)
        else:
            assert list(a) == list(b), column


def _assert_same_evaluation(plain, typed) -> None:
    assert plain.fingerprint == typed.fingerprint
    _assert_frames_equal(plain.metrics, typed.metrics)
    _assert_frames_equal(plain.comparison, typed.comparison)
    _assert_frames_equal(plain.drift, typed.drift)
    _assert_frames_equal(plain.coverage, typed.coverage)
    assert plain.decide().to_dict() == typed.decide().to_dict()
    # The same input checks with the same outcomes; freshness is read in UTC on both.
    checks = [(r.name, r.passed, r.version) for r in plain.validation.results]
    assert checks == [(r.name, r.passed, r.version) for r in typed.validation.results]
    fresh = [r for r in typed.validation.results if r.name == "predictions_fresh"]
    assert [(r.passed, r.observed) for r in fresh] == [(True, "2026-11-22 23:59:59.999999")]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> str:
    return _warehouse(tmp_path_factory.mktemp("column-types") / "w.duckdb")


@pytest.fixture(scope="module")
def plain(warehouse):
    return evaluate(_spec(warehouse), WEEK)


def test_the_plain_evaluation_counts_what_pandas_counts(plain):
    """The reference the typed runs are compared with is itself right: rows in the week
    (the last microsecond in, the next week's first out) and labeled rows, from pandas."""
    predictions, labels = _frames()
    start = pd.Timestamp(WEEK)
    joined = predictions.merge(labels, on="prediction_id", how="left")
    in_week = (joined["ts"] >= start) & (joined["ts"] < start + pd.Timedelta(days=7))
    mature = (joined["labeled_at"] >= joined["ts"]) & (
        joined["labeled_at"] <= joined["ts"] + pd.Timedelta(days=14)
    )
    assert plain.fingerprint["rows"] == int(in_week.sum())
    assert plain.fingerprint["labeled_rows"] == int((in_week & mature).sum())
    overall = plain.metrics[
        (plain.metrics["slice"] == "overall") & (plain.metrics["metric"] == "recall")
    ].set_index("model_version")
    for version in ("v1", "v2"):
        rows = joined[in_week & mature & (joined["model_version"] == version)]
        positives = rows[rows["label"] == 1]
        assert overall.loc[version, "value"] == pytest.approx(
            (positives["score"] >= 0.5).mean(), abs=1e-12
        )


def test_boolean_labels_timestamptz_ns_predictions_timestamp_ns_labels(warehouse, plain):
    typed = evaluate(_spec(warehouse, "typed_predictions", "typed_labels"), WEEK)
    _assert_same_evaluation(plain, typed)
    # The label check of Great Expectations (labels in {0, 1}) ran on the booleans, per version.
    binary = [r for r in typed.validation.results if r.name == "labels_binary"]
    assert [(r.version, r.passed) for r in binary] == [("v1", True), ("v2", True)]
    assert "AT TIME ZONE 'UTC'" in typed.queries["window"]
    assert "CAST(l.label AS INTEGER)" in typed.queries["window"]


def test_decimal_labels_time_zone_label_times_and_timestamptz_predictions(warehouse, plain):
    decimal = evaluate(_spec(warehouse, labels="decimal_labels"), WEEK)
    aware = evaluate(_spec(warehouse, "typed_predictions", "tz_labels"), WEEK)
    # What the issue saw fail with a Binder Error: TIMESTAMPTZ predictions, TIMESTAMP_NS labels.
    mixed = evaluate(_spec(warehouse, "tz_predictions", "typed_labels"), WEEK)
    for typed in (decimal, aware, mixed):
        _assert_frames_equal(plain.metrics, typed.metrics)
        _assert_frames_equal(plain.comparison, typed.comparison)
        _assert_frames_equal(plain.drift, typed.drift)
        _assert_frames_equal(plain.coverage, typed.coverage)
    assert aware.fingerprint == mixed.fingerprint == plain.fingerprint


def test_a_decimal_label_that_is_not_0_or_1_still_fails_the_label_check(tmp_path):
    """DECIMAL labels are read as numbers, not rounded: 0.5 is not a label."""
    predictions, labels = _frames(seed=9, n=300)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.register("p_frame", predictions)
    con.register("l_frame", labels)
    con.execute("CREATE TABLE inference_logs AS SELECT * FROM p_frame")
    con.execute(
        "CREATE TABLE labels AS SELECT prediction_id, CASE WHEN row_number() OVER "
        "(ORDER BY prediction_id) = 1 THEN 0.5 ELSE CAST(label AS DECIMAL(3, 1)) END AS label, "
        "labeled_at FROM l_frame"
    )
    con.close()
    spec = parse_spec(base_spec(f"duckdb:///{tmp_path / 'w.duckdb'}"))
    with pytest.raises(Exception, match=r"labels\.label") as raised:
        evaluate(spec, WEEK)
    assert "not 0 or 1" in str(raised.value)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("BOOLEAN", "boolean"),
        ("boolean", "boolean"),
        ("DECIMAL(3,1)", "decimal"),
        ("numeric(20,0)", "decimal"),
        ("TINYINT", "integer"),
        ("UBIGINT", "integer"),
        ("HUGEINT", "integer"),
        ("TIMESTAMP", "timestamp"),
        ("TIMESTAMP_S", "timestamp"),
        ("TIMESTAMP_MS", "timestamp"),
        ("TIMESTAMP_NS", "timestamp"),
        ("timestamp without time zone", "timestamp"),
        ("timestamp(3) without time zone", "timestamp"),
        ("DATE", "timestamp"),
        ("TIMESTAMP WITH TIME ZONE", "timestamptz"),
        ("TIMESTAMPTZ", "timestamptz"),
        ("TIMESTAMPTZ_NS", "timestamptz"),
        ("timestamp with time zone", "timestamptz"),
        ("timestamp(6) with time zone", "timestamptz"),
        ("VARCHAR", "text"),
        ("character varying", "text"),
        ("TIME", None),
        ("INTERVAL", None),
    ],
)
def test_type_families(name, family):
    assert type_family(name) == family


# ------------------------------------------------------------------ validate-spec --connect
def _spec_file(tmp_path: Path, url: str, predictions: str, labels: str) -> Path:
    raw = base_spec(
        url, predictions={"table": predictions}, labels={"table": labels, "max_delay": "14d"}
    )
    path = tmp_path / f"{predictions}-{labels}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_validate_spec_connect_accepts_the_typed_warehouse(warehouse, tmp_path, capsys):
    spec = _spec_file(tmp_path, warehouse, "typed_predictions", "typed_labels")
    assert cli.main(["validate-spec", "--connect", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "ok (model test_model" in out
    assert "tables, columns and types checked" in out


def test_validate_spec_connect_names_a_varchar_label(warehouse, tmp_path, capsys):
    spec = _spec_file(tmp_path, warehouse, "typed_predictions", "text_labels")
    assert cli.main(["validate-spec", "--connect", str(spec)]) == cli.EXIT_VALIDATION
    captured = capsys.readouterr()
    assert captured.out == ""
    error = captured.err
    assert error.startswith("error: ")
    assert "labels.label: column 'label' in table 'text_labels' has type VARCHAR" in error
    assert "expected BOOLEAN, an integer or a DECIMAL" in error
    assert "Traceback" not in error


def test_validate_spec_connect_lists_the_accepted_timestamp_types(warehouse, tmp_path, capsys):
    spec = _spec_file(tmp_path, warehouse, "typed_predictions", "time_labels")
    assert cli.main(["validate-spec", "--connect", str(spec)]) == cli.EXIT_VALIDATION
    error = capsys.readouterr().err
    assert "labels.timestamp: column 'labeled_at' in table 'time_labels' has type TIME;" in error
    for accepted in ("TIMESTAMP_NS", "TIMESTAMPTZ_NS", "TIMESTAMP WITH TIME ZONE", "DATE"):
        assert accepted in error
    # The TIMESTAMPTZ_NS prediction time is accepted: only the label time is named.
    assert "predictions.timestamp" not in error


def test_validate_spec_connect_names_a_missing_column_and_table(warehouse, tmp_path, capsys):
    spec = parse_spec(base_spec(warehouse))
    raw = base_spec(warehouse, labels={"table": "labels", "label": "outcome"})
    path = tmp_path / "missing-column.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert cli.main(["validate-spec", "--connect", str(path)]) == cli.EXIT_VALIDATION
    assert "labels.label: column 'outcome' not found in table 'labels'" in capsys.readouterr().err

    missing_table = _spec_file(tmp_path, warehouse, "inference_log", "labels")
    assert cli.main(["validate-spec", "--connect", str(missing_table)]) == cli.EXIT_ERROR
    assert "inference_log" in capsys.readouterr().err
    assert spec.model == "test_model"


def test_validate_spec_without_connect_does_not_touch_the_warehouse(tmp_path, capsys):
    spec = _spec_file(tmp_path, f"duckdb:///{tmp_path / 'absent.duckdb'}", "a", "b")
    assert cli.main(["validate-spec", str(spec)]) == 0
    assert cli.main(["validate-spec", "--connect", str(spec)]) == cli.EXIT_ERROR
    assert "not found" in capsys.readouterr().err


# ------------------------------------------------------------------ PostgreSQL
PG_TYPED = [
    # (table, the plain table it copies, column changes)
    (
        "typed_predictions",
        "inference_logs",
        {"ts": "timestamp with time zone USING ts AT TIME ZONE 'UTC'"},
    ),
    (
        "typed_labels",
        "labels",
        {"label": "boolean USING label <> 0"},
    ),
    ("decimal_labels", "labels", {"label": "numeric(3, 1)"}),
    ("text_labels", "labels", {"label": "text"}),
]


@pytest.mark.postgres
def test_postgresql_boolean_timestamptz_timestamp(warehouse, plain, postgres_url, tmp_path, capsys):
    from support.postgres import copy_duckdb_tables

    copy_duckdb_tables(
        warehouse.removeprefix("duckdb:///"),
        postgres_url,
        ["inference_logs", "labels"],
        replace=True,
    )
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            for table, source, changes in PG_TYPED:
                connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
                connection.execute(sa.text(f"CREATE TABLE {table} AS SELECT * FROM {source}"))
                for column, change in changes.items():
                    connection.execute(
                        sa.text(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {change}")
                    )
            kinds = connection.execute(
                sa.text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_name IN ('typed_predictions', 'typed_labels') "
                    "AND column_name IN ('ts', 'label', 'labeled_at') ORDER BY 1, 2"
                )
            ).all()
        assert [tuple(k) for k in kinds] == [
            ("typed_labels", "label", "boolean"),
            ("typed_labels", "labeled_at", "timestamp without time zone"),
            ("typed_predictions", "ts", "timestamp with time zone"),
        ]
        pg_plain = evaluate(_spec(postgres_url), WEEK)
        pg_typed = evaluate(_spec(postgres_url, "typed_predictions", "typed_labels"), WEEK)
        _assert_same_evaluation(pg_plain, pg_typed)
        pg_decimal = evaluate(_spec(postgres_url, labels="decimal_labels"), WEEK)
        _assert_frames_equal(pg_plain.metrics, pg_decimal.metrics)
        _assert_frames_equal(pg_plain.comparison, pg_decimal.comparison)
        # ... and the same as DuckDB (the parity test's tolerance: PostgreSQL sums NUMERIC).
        assert pg_typed.fingerprint == plain.fingerprint
        for left, right in (
            (plain.metrics, pg_typed.metrics),
            (plain.comparison, pg_typed.comparison),
            (plain.coverage, pg_typed.coverage),
        ):
            assert list(left.columns) == list(right.columns)
            for column in left.columns:
                a, b = left[column].to_numpy(), right[column].to_numpy()
                if np.issubdtype(a.dtype, np.floating):
                    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
                else:
                    assert list(a) == list(b), column

        good = _spec_file(tmp_path, postgres_url, "typed_predictions", "typed_labels")
        assert cli.main(["validate-spec", "--connect", str(good)]) == 0
        bad = _spec_file(tmp_path, postgres_url, "typed_predictions", "text_labels")
        capsys.readouterr()
        assert cli.main(["validate-spec", "--connect", str(bad)]) == cli.EXIT_VALIDATION
        error = capsys.readouterr().err
        assert "labels.label: column 'label' in table 'text_labels' has type text" in error
    finally:
        engine.dispose()


def test_the_predictions_asset_has_exactly_the_source_columns(warehouse):
    """Freshness reads the UTC prediction time from its own asset: a user's table-level
    expectation on ``predictions`` sees the source's columns and nothing else."""
    raw = base_spec(
        warehouse,
        predictions={"table": "typed_predictions"},
        labels={"table": "typed_labels", "max_delay": "14d"},
        validation={
            "expectations": [
                {
                    "type": "expect_table_columns_to_match_set",
                    "table": "predictions",
                    "column_set": [
                        "prediction_id",
                        "ts",
                        "model_version",
                        "score",
                        "country",
                        "device",
                        "amount",
                    ],
                    "exact_match": True,
                }
            ]
        },
    )
    result = evaluate(parse_spec(raw), WEEK)
    user = [r for r in result.validation.results if r.name.startswith("user:")]
    assert [(r.name, r.passed) for r in user] == [("user:expect_table_columns_to_match_set", True)]
    fresh = [r for r in result.validation.results if r.name == "predictions_fresh"]
    assert [(r.passed, r.table) for r in fresh] == [(True, "predictions")]
