"""Every engine receives SQL written for it: the builder renders the dialect's spellings where
it writes the SQL, and nothing rewrites the text afterwards.

The oracle is the list of spellings Spark's parser refuses (``DOUBLE PRECISION``, a
``VARCHAR`` without a length, ``TIMESTAMP WITH TIME ZONE``, a CTE's ``[NOT] MATERIALIZED``
hint, SQL's multi-column ``GROUPING(a, b)``), written out here from Spark's SQL reference,
not taken from the dialect under test.
"""

import re
from datetime import datetime
from importlib.resources import files
from pathlib import Path

import pytest

from eval_pipelines.dialects import DuckDB, PostgreSQL, Spark, SqlDialect
from eval_pipelines.estimation import multiclass_week
from eval_pipelines.estimation import run as estimation_run
from eval_pipelines.spec import EstimationSpec, EvalSpec, load_spec
from eval_pipelines.sqlbuild import SqlBuilder
from eval_pipelines.tasks import task_of
from eval_pipelines.windows import Window

EVALS = Path(__file__).resolve().parents[1] / "evals"
SPECS = sorted(path.stem for path in EVALS.glob("*.yaml"))
WINDOW = Window(datetime(2026, 11, 16), datetime(2026, 11, 23))
REFERENCE = Window(datetime(2026, 11, 9), datetime(2026, 11, 16))

# What Spark SQL does not read (each a syntax or type error on Spark 4).
SPARK_REFUSES = {
    "DOUBLE PRECISION": re.compile(r"\bDOUBLE\s+PRECISION\b", re.IGNORECASE),
    "VARCHAR without a length": re.compile(r"\bVARCHAR\b(?!\s*\()", re.IGNORECASE),
    "TIMESTAMP WITH TIME ZONE": re.compile(r"\bWITH\s+TIME\s+ZONE\b", re.IGNORECASE),
    "a CTE hint": re.compile(r"\bAS\s+(NOT\s+)?MATERIALIZED\b", re.IGNORECASE),
    "GROUPING of several columns": re.compile(r"\bGROUPING\s*\([^()]*,", re.IGNORECASE),
}


def _spec(name: str) -> EvalSpec:
    spec = load_spec(EVALS / f"{name}.yaml")
    if spec.task == "binary_classification" and spec.estimation is None:
        # The binary estimation query too (its demo spec leaves estimation off).
        spec = spec.model_copy(update={"estimation": EstimationSpec(reference_weeks=4)})
    return spec


def _queries(builder: SqlBuilder) -> dict[str, str]:
    """Every query the engine renders for the builder's spec (one of each kind)."""
    spec = builder.spec
    task = task_of(spec)
    queries = {
        "window_join": builder.window_join(WINDOW),
        "statistics": builder.sufficient_statistics(WINDOW),
        "paired": builder.paired_counts(WINDOW, "v1", "v2"),
        "window_checks": builder.window_checks(WINDOW),
        "slice_cardinality": builder.slice_cardinality(WINDOW),
        "window_labels": builder.window_labels_query(WINDOW),
        "label_duplicates": builder.label_duplicates(WINDOW),
        "first_prediction": builder.first_prediction(),
        "feature_sample": builder.feature_sample(["a"]),
        "labeled_predictions": builder.labeled_predictions("y"),
        "drift_ranges": builder.drift_ranges(WINDOW, REFERENCE, "v1", ["a", "b"]),
        "drift_distinct": builder.drift_distinct(WINDOW, REFERENCE, "v1", [(1, "b")]),
        "drift_histograms": builder.drift_histograms(
            WINDOW,
            REFERENCE,
            "v1",
            [("a", 0.0, 0.1, 10, (0.0, 0.25, 0.5, 1.0)), ("b", 0.0, 0.1, 10, None)],
            ["c", "d"],
        ),
    }
    if task.family_queries is not None:
        queries |= task.family_queries(builder, WINDOW)
    if task.name == "regression":
        queries["regression_curves"] = builder.regression_curves(WINDOW, 20)
    if spec.estimation is not None:
        module = multiclass_week if task.categorical else estimation_run
        queries["estimation"] = module.estimation_query(builder, WINDOW)
    return queries


def _builders(spec: EvalSpec, dialect: SqlDialect) -> list[SqlBuilder]:
    """The builder as the pipeline uses it: before the window is a table, and after (with
    typed columns: an instant timestamp, a BOOLEAN label, an integer id)."""
    typed = {
        "predictions.timestamp": "timestamptz",
        "labels.timestamp": "timestamptz",
        "labels.label": "boolean",
        "predictions.id": "integer",
    }
    return [
        SqlBuilder(spec, dialect),
        SqlBuilder(
            spec, dialect, window_table="eval_window_x", window_labels_table="eval_labels_x"
        ).with_column_types(typed),
    ]


def _refused(sql: str) -> list[str]:
    return [name for name, pattern in SPARK_REFUSES.items() if pattern.search(sql)]


@pytest.mark.parametrize("name", SPECS)
def test_no_spark_statement_uses_a_spelling_spark_refuses(name):
    spec = _spec(name)
    for builder in _builders(spec, Spark()):
        for kind, sql in _queries(builder).items():
            assert _refused(sql) == [], f"{name} {kind}:\n{sql}"


@pytest.mark.parametrize("name", SPECS)
def test_duckdb_and_postgresql_keep_their_own_spellings(name):
    """The same queries on DuckDB and PostgreSQL still say DOUBLE PRECISION, VARCHAR and
    GROUPING(a, b) (their SQL is unchanged), so the Spark test above is not vacuous."""
    spec = _spec(name)
    for dialect in (DuckDB(), PostgreSQL()):
        text = "\n".join(_queries(SqlBuilder(spec, dialect)).values())
        assert "CAST(NULL AS VARCHAR)" in text or "AS VARCHAR)" in text
        assert "GROUPING(" in text
        assert "DOUBLE PRECISION" in text


def test_cte_hints_are_given_on_duckdb_and_postgresql_only():
    spec = _spec("fraud_detector")
    for dialect in (DuckDB(), PostgreSQL(), Spark()):
        builder = SqlBuilder(spec, dialect)
        statistics = builder.sufficient_statistics(WINDOW)
        hint = "" if isinstance(dialect, Spark) else "NOT MATERIALIZED "
        assert f"WITH win AS {hint}(" in statistics
        assert f"cells AS {hint}(" in statistics
        for name in ("fraud_detector", "intent_classifier", "eta_regressor"):
            paired = SqlBuilder(_spec(name), dialect).paired_counts(WINDOW, "v1", "v2")
            assert f"WITH win AS {hint}(" in paired, name


def test_templates_spell_engine_types_and_hints_through_the_dialect():
    """No template writes a spelling some engine refuses: each says ``{double}``, ``{text}``,
    ``{not_materialized}`` or takes ``{grouping_id}`` from the builder (comments aside)."""
    folder = files("eval_pipelines.sql")
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
    assert "sufficient_statistics.sql" in names
    for name in names:
        code = "\n".join(
            line.split("--", 1)[0] for line in folder.joinpath(name).read_text().splitlines()
        )
        assert _refused(code) == [], name


@pytest.mark.parametrize(
    "text", ["DOUBLE PRECISION", "AS VARCHAR", "AS NOT MATERIALIZED (", "GROUPING(a, b)"]
)
def test_a_slice_value_or_column_named_like_sql_is_not_rewritten(text):
    """A spec's string literal (a compared version) and quoted column (a slice) reach Spark as
    written: only the dialect's own pieces differ from DuckDB's text."""
    base = _spec("fraud_detector")
    spec = base.model_copy(update={"slices": [text, ["country", text]]})
    sql = SqlBuilder(spec, Spark()).paired_counts(WINDOW, text, "v2")
    assert f"`{text}`" in sql  # the column, quoted
    assert f"'{text}'" in sql  # the version, a literal
