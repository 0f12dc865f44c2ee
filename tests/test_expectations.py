"""Great Expectations suites generated from the spec, run in the warehouse (DuckDB, PostgreSQL)."""

import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
from support.data import WEEK, WEEK_START, base_spec, random_window, write_warehouse

from eval_pipelines.dialects.duckdb import shared_connection
from eval_pipelines.errors import SpecError, ValidationFailed
from eval_pipelines.spec import parse_spec
from eval_pipelines.sqlbuild import SqlBuilder
from eval_pipelines.validation import ValidationReport, materialize_window, validate_window
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import week_window


def validate(spec_raw: dict) -> ValidationReport:
    """What evaluate() runs before any metric, returning the report instead of raising."""
    spec = parse_spec(spec_raw)
    window = week_window(WEEK)
    with Warehouse(spec.warehouse) as warehouse:
        builder = SqlBuilder(spec, warehouse.dialect)

        def prepare(reading: SqlBuilder) -> SqlBuilder:
            materialized = materialize_window(warehouse, reading, window)
            assert materialized.window_table is not None
            return materialized

        report, _ = validate_window(spec, window, warehouse, builder, prepare)
    return report


def by_name(report: ValidationReport, name: str, version: str | None = None) -> list:
    return [
        r for r in report.results if r.name == name and (version is None or r.version == version)
    ]


def planted_window(seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A clean shadow-scored week, then one planted bad row of each kind."""
    rng = np.random.default_rng(seed)
    predictions, labels = random_window(rng, 800, unlabeled=0.0)
    v1 = predictions.index[predictions["model_version"] == "v1"]
    v2 = predictions.index[predictions["model_version"] == "v2"]
    predictions.loc[v2[0], "prediction_id"] = None  # NULL id (v2)
    predictions.loc[v1[1], "prediction_id"] = predictions.loc[v1[2], "prediction_id"]  # dup (v1)
    predictions.loc[v2[3], "score"] = 1.5  # out of range (v2)
    # NaN (v2) and NULL (v1) scores are set in SQL (DuckDB reads a pandas NaN as NULL).
    target = predictions.loc[v1[10], "prediction_id"]
    labels.loc[labels["prediction_id"] == target, "label"] = 2
    labels.loc[labels["prediction_id"] == target, "labeled_at"] = predictions.loc[
        v1[10], "ts"
    ] + pd.Timedelta(hours=1)
    early = predictions.loc[v1[20], "prediction_id"]
    labels.loc[labels["prediction_id"] == early, "labeled_at"] = predictions.loc[
        v1[20], "ts"
    ] - pd.Timedelta(hours=1)
    return predictions, labels, predictions.loc[[v1[5], v2[4]], "prediction_id"].tolist()


def write_planted(path) -> str:
    predictions, labels, (null_score_id, nan_score_id) = planted_window()
    url = write_warehouse(path, predictions, labels)
    con = duckdb.connect(str(path))
    con.execute(
        "UPDATE inference_logs SET score = NULL WHERE prediction_id = ? AND model_version = 'v1'",
        [null_score_id],
    )
    con.execute(
        "UPDATE inference_logs SET score = 'NaN'::DOUBLE "
        "WHERE prediction_id = ? AND model_version = 'v2'",
        [nan_score_id],
    )
    con.close()
    return url


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def planted_url(request, tmp_path):
    path = tmp_path / "planted.duckdb"
    url = write_planted(path)
    if request.param == "duckdb":
        return url
    from support.postgres import copy_duckdb_tables

    pg = request.getfixturevalue("postgres_url")
    copy_duckdb_tables(path, pg, ["inference_logs", "labels"], replace=True)
    return pg


def test_each_generated_expectation_catches_its_planted_row(planted_url):
    report = validate(base_spec(planted_url))

    assert not report.passed
    failed = {(r.name, r.version): r for r in report.results if not r.passed}
    expected = {
        ("ids_not_null", "v2"): ["predictions.id: 1 rows of version 'v2'", "'prediction_id'"],
        ("ids_unique_per_version", "v1"): ["predictions.id: 2 rows of version 'v1'", "duplicate"],
        ("scores_in_unit_interval", "v2"): [
            "predictions.score: 2 rows of version 'v2'",
            "'score' that is NaN or outside [0, 1]",
            "1.5",
        ],
        ("scores_not_null", "v1"): ["predictions.score: 1 rows of version 'v1'", "NULL"],
        ("labels_binary", "v1"): ["labels.label: 1 labels joined to version 'v1'", "2"],
        ("labels_after_predictions", "v1"): ["labels.timestamp: ", "labels of version 'v1'"],
    }
    for key, fragments in expected.items():
        assert key in failed, (key, sorted(failed))
        result = failed[key]
        for fragment in fragments:
            assert fragment in result.message, (fragment, result.message)
        assert result.engine == "gx" and result.expectation.startswith("expect_")
        assert result.table == "window"
    assert not failed[("labels_after_predictions", "v1")].blocking
    # Each planted row is reported once, by the check that owns it.
    assert ("ids_not_null", "v1") not in failed and ("scores_in_unit_interval", "v1") not in failed
    assert failed[("ids_unique_per_version", "v1")].unexpected_count == 2
    assert set(report.to_dict()["checks"][0]) >= {"engine", "expectation", "table", "column"}


def test_clean_demo_week_passes_with_learned_row_count_bounds(demo_warehouse):
    spec = demo_spec()
    spec["warehouse"] = demo_warehouse
    report = validate(spec)

    assert report.passed, report.failures
    bounds = by_name(report, "row_count_within_bounds")
    assert {r.version for r in bounds} == {"v1", "v2"}
    assert all(r.engine == "gx" and r.passed and "previous weeks" in r.message for r in bounds)
    assert by_name(report, "predictions_fresh")[0].passed
    assert all(r.passed for r in by_name(report, "scores_in_unit_interval"))


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory):
    from eval_pipelines.demo import build_demo_warehouse

    path = tmp_path_factory.mktemp("demo") / "warehouse.duckdb"
    build_demo_warehouse(path, rows=40_000)
    return f"duckdb:///{path}"


def test_row_count_bounds_flag_a_collapsed_week(demo_warehouse, tmp_path):
    source = demo_warehouse.removeprefix("duckdb:///")
    path = tmp_path / "collapsed.duckdb"
    shutil.copyfile(source, path)
    con = duckdb.connect(str(path))
    end = WEEK_START + pd.Timedelta(days=7)
    # Logging broke on Wednesday: the rest of the week has no predictions.
    con.execute(
        "DELETE FROM inference_logs WHERE ts >= ? AND ts < ?",
        [(WEEK_START + pd.Timedelta(days=1)).to_pydatetime(), end.to_pydatetime()],
    )
    con.close()
    spec = demo_spec()
    spec["warehouse"] = f"duckdb:///{path}"
    report = validate(spec)

    assert not report.passed
    flagged = [r for r in by_name(report, "row_count_within_bounds") if not r.passed]
    assert {r.version for r in flagged} == {"v1", "v2"}
    assert "version 'v1' has" in flagged[0].message
    assert "validation.row_count_tolerance" in flagged[0].message
    stale = by_name(report, "predictions_fresh")[0]
    assert not stale.passed and not stale.blocking
    assert "validation.max_staleness" in stale.message and "'ts'" in stale.message


def demo_spec() -> dict:
    import yaml

    with open("evals/fraud_detector.yaml") as handle:
        return yaml.safe_load(handle)


def test_row_count_check_is_skipped_without_history(tmp_path):
    predictions, labels = random_window(np.random.default_rng(3), 300)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    report = validate(base_spec(url))
    notes = by_name(report, "row_count_within_bounds")
    assert report.passed
    assert [n.passed and not n.blocking for n in notes] == [True, True]
    assert all(n.message.startswith("skipped:") for n in notes)


def test_user_expectations_pass_and_fail_with_the_column_named(tmp_path):
    predictions, labels = random_window(np.random.default_rng(4), 400)
    predictions["amount"] = np.where(np.arange(len(predictions)) % 100 == 0, -5.0, 10.0)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    raw = base_spec(
        url,
        validation={
            "expectations": [
                {
                    "type": "expect_column_values_to_be_between",
                    "column": "amount",
                    "min_value": 0,
                },
                {"type": "expect_column_values_to_not_be_null", "column": "country"},
                {
                    "type": "expect_column_values_to_be_in_set",
                    "column": "country",
                    "value_set": ["US", "GB"],
                    "table": "window",
                    "blocking": False,
                },
            ]
        },
    )
    report = validate(raw)

    user = sorted(
        (r for r in report.results if r.name.startswith("user:")), key=lambda r: r.message
    )
    assert [r.passed for r in user] == [False, True, False]
    amount, _, country = user
    assert amount.blocking and amount.column == "amount" and amount.table == "predictions"
    assert "validation.expectations.0" in amount.message and "'amount'" in amount.message
    assert "-5.0" in amount.message and f"{(len(predictions) + 99) // 100}" in amount.message
    assert not country.blocking and "window.country" in country.message
    assert report.failures == [amount.message]


def test_user_expectation_on_a_missing_column_names_the_key(tmp_path):
    predictions, labels = random_window(np.random.default_rng(4), 200)
    url = write_warehouse(tmp_path / "w.duckdb", predictions, labels)
    raw = base_spec(
        url,
        validation={
            "expectations": [{"type": "expect_column_values_to_not_be_null", "column": "contry"}]
        },
    )
    report = validate(raw)
    assert report.failures == [
        next(m for m in report.failures if m.startswith("validation.expectations.0.column"))
    ]
    assert "'contry'" in report.failures[0] and "did you mean 'country'" in report.failures[0]


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (
            {"type": "expect_column_values_to_be_betwen", "column": "a"},
            "validation.expectations.0: type: unknown Great Expectations expectation "
            "'expect_column_values_to_be_betwen'; did you mean "
            "'expect_column_values_to_be_between'?",
        ),
        (
            {"type": "expect_column_values_to_not_be_null"},
            "validation.expectations.0: expect_column_values_to_not_be_null: column:",
        ),
        (
            {"type": "expect_column_values_to_not_be_null", "column": "a", "table": "logs"},
            "validation.expectations.0.table:",
        ),
    ],
)
def test_user_expectations_are_checked_at_spec_load(entry, fragment):
    raw = base_spec("duckdb:///nowhere.duckdb", validation={"expectations": [entry]})
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    assert fragment in str(caught.value)


def test_failed_expectations_stop_evaluate_before_any_metric(tmp_path):
    from eval_pipelines.pipeline import evaluate

    url = write_planted(tmp_path / "planted.duckdb")
    with pytest.raises(ValidationFailed) as caught:
        evaluate(parse_spec(base_spec(url)), WEEK)
    assert "no metrics were computed" in str(caught.value)
    assert any("'score' that is NaN or outside [0, 1]" in m for m in caught.value.failures)


def test_duckdb_patch_is_needed_and_works(monkeypatch):
    """Fails when a GX upgrade fixes the DuckDB path (drop gx_compat's patch then) or when
    the patch stops taking effect."""
    from eval_pipelines import gx_compat

    gx = gx_compat.import_gx()
    assert gx.__version__.startswith(gx_compat.GX_VERSION_PATCHED), gx.__version__
    module = gx_compat._engine_module()

    def run() -> dict:
        con = duckdb.connect()
        con.execute("CREATE TEMPORARY TABLE t AS SELECT range AS x FROM range(10)")
        context = gx_compat.gx_context(gx)
        source = context.data_sources.add_sql(
            "d",
            connection_string="duckdb:///:memory:",
            kwargs={"creator": lambda: shared_connection(con)},
        )
        batch = (
            source.add_query_asset("t", query="SELECT * FROM t")
            .add_batch_definition_whole_table("all")
            .get_batch()
        )
        result = batch.validate(gx.expectations.ExpectTableRowCountToBeBetween(min_value=10))
        return {"success": result.success, "observed": result.result.get("observed_value")}

    assert run() == {"success": True, "observed": 10}
    monkeypatch.setattr(module, "_PERSISTED_CONNECTION_DIALECTS", gx_compat.unpatched_dialects())
    assert run()["observed"] is None  # unpatched: the rows are gone before GX fetches them


def test_an_error_inside_a_metric_is_the_check_message_not_zero_rows():
    """GX reports a failed metric as one exception_info entry per metric id; the outcome
    carries its message (the check then fails as "could not be evaluated"), not an empty
    result worded as "0 rows have ..."."""
    from eval_pipelines.expectations import _raised

    failed = {"raised_exception": True, "exception_message": "boom", "exception_traceback": ""}
    clean = {"raised_exception": False, "exception_message": None}
    assert _raised(failed) == "boom"
    assert _raised(clean) is None
    assert _raised({"('column_values.unique', 'abc', ())": failed}) == "boom"
    assert _raised({"('column_values.unique', 'abc', ())": clean}) is None
    assert _raised(None) is None and _raised({}) is None
