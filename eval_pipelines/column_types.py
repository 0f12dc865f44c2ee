"""The types of the columns a spec names, checked before any query reads their values.

A score stored as text, a label stored as ``'yes'``/``'no'``, a float id or a timestamp kept
as a string would otherwise reach the window checks and fail there with the warehouse's own
error (or, for a float id, be evaluated silently with ids that no longer join exactly). Each
is reported instead as a failed input check naming the spec key, the source, the column, the
type found and the types accepted. Columns that do not exist are left to the
``columns_present`` check.

Type names are matched by family, by the warehouse's dialect
(:meth:`eval_pipelines.dialects.SqlDialect.type_family`), so DuckDB's (``DOUBLE``,
``TIMESTAMPTZ_NS``, ``TIMESTAMP WITH TIME ZONE``) and PostgreSQL's (``double precision``,
``timestamp(3) with time zone``) spellings both work. What the engine does with each
accepted family (booleans as 0/1, time zones converted to UTC) is rendered by
:class:`eval_pipelines.sqlbuild.SqlBuilder` from the types returned here.
"""

from eval_pipelines.errors import ValidationFailed
from eval_pipelines.spec import EvalSpec, Source
from eval_pipelines.sqlbuild import SqlBuilder
from eval_pipelines.tasks import task_of
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import Window

# The accepted types as the README and the messages list them.
ACCEPTED_TIMESTAMPS = (
    "TIMESTAMP of any precision (TIMESTAMP_S, TIMESTAMP_MS, TIMESTAMP, TIMESTAMP_NS; naive, "
    "meaning UTC), TIMESTAMP WITH TIME ZONE of any precision (TIMESTAMPTZ, TIMESTAMPTZ_NS; "
    "converted to UTC) or DATE"
)

NUMERIC = {"integer", "decimal", "float"}
# What each role accepts, and how the expectation is worded in the message.
_EXPECTED = {
    "id": ({"integer", "text", "uuid"}, "an integer, text or UUID column (ids must join exactly)"),
    "timestamp": (
        {"timestamp", "timestamptz"},
        f"{ACCEPTED_TIMESTAMPS}; text is not parsed, convert it in a 'query:'",
    ),
    "model_version": ({"text", "integer"}, "a text or integer column"),
}


def _source_name(source: Source) -> str:
    return f"table {source.table!r}" if source.table else f"query {source.query!r}"


def column_type_failures(
    spec: EvalSpec, warehouse: Warehouse, builder: SqlBuilder
) -> tuple[dict[str, str], list[str]]:
    """The family of every typed column (``{"labels.label": "boolean", ...}``, only the
    columns whose type the warehouse reports) and one message per unusable column."""
    p, lab = spec.predictions, spec.labels
    task = task_of(spec)
    # The model's output and the label are what the task says it reads.
    expected = {
        **_EXPECTED,
        task.output: (task.output_types, task.output_wording),
        "label": (task.label_types, task.label_wording),
    }
    predicted = {
        "id": p.id,
        "timestamp": p.timestamp,
        "model_version": p.model_version,
        task.output: spec.output_column,
    }
    # The task's other outputs (class scores) are probabilities: numeric.
    for key, column, _ in task.window_outputs(spec) if task.window_outputs else []:
        role = key.removeprefix("predictions.")
        expected[role] = (NUMERIC, "a numeric column (a probability in [0, 1])")
        predicted[role] = column
    roles = [
        (p, "predictions", predicted),
        (lab, "labels", {"id": lab.id, "label": lab.label, "timestamp": lab.timestamp}),
    ]
    families: dict[str, str] = {}
    failures = []
    for source, prefix, columns in roles:
        types = warehouse.column_types(
            builder.source(source), f"{prefix} column types ({_source_name(source)})"
        )
        lowered = {name.lower(): kind for name, kind in types.items()}
        for role, column in columns.items():
            found = types.get(column, lowered.get(column.lower()))
            if found is None:  # missing: the columns_present check names it
                continue
            accepted, wording = expected[role]
            family = warehouse.dialect.type_family(found)
            if family in accepted:
                families[f"{prefix}.{role}"] = family
                continue
            failures.append(
                f"{prefix}.{role}: column {column!r} in {_source_name(source)} has type "
                f"{found}; expected {wording}"
            )
    return families, failures


def check_column_types(
    spec: EvalSpec, window: Window, warehouse: Warehouse, builder: SqlBuilder
) -> dict[str, str]:
    """The column families (see :func:`column_type_failures`) for
    :meth:`SqlBuilder.with_column_types`; raise :class:`ValidationFailed` naming every column
    whose type cannot be evaluated."""
    families, failures = column_type_failures(spec, warehouse, builder)
    if failures:
        reasons = "\n  - ".join(failures)
        raise ValidationFailed(
            f"input checks failed for the window {window}; no metrics were computed:"
            f"\n  - {reasons}",
            failures,
        )
    return families


def check_warehouse(spec: EvalSpec, warehouse: Warehouse) -> dict[str, str]:
    """What ``eval-pipelines validate-spec --connect`` checks before any run: the spec's tables
    (or queries) can be read, every column it names exists, and the typed columns have types
    the engine can evaluate (read without a row: ``LIMIT 0``). Returns the column families;
    raises :class:`ValidationFailed` listing every problem. A table that cannot be read is a
    :class:`~eval_pipelines.errors.WarehouseError` naming it."""
    from eval_pipelines.validation import CheckContext, RequiredColumns

    builder = SqlBuilder(spec, warehouse.dialect)
    families, failures = column_type_failures(spec, warehouse, builder)
    if not failures:
        # No window: the presence and usability checks read no row of any week.
        typed = builder.with_column_types(families)
        context = CheckContext(spec, None, warehouse, typed)  # type: ignore[arg-type]
        failures = [r.message for r in RequiredColumns().run(context) if not r.passed]
    if failures:
        reasons = "\n  - ".join(failures)
        raise ValidationFailed(
            f"the warehouse {warehouse.safe_url} does not fit the spec of model {spec.model!r}:"
            f"\n  - {reasons}",
            failures,
        )
    return families
