"""The types of the columns a spec names, checked before any query reads their values.

A score stored as text, a label stored as ``'yes'``/``'no'``, a float id or a timestamp kept
as a string would otherwise reach the window checks and fail there with the warehouse's own
error (or, for a float id, be evaluated silently with ids that no longer join exactly). Each
is reported instead as a failed input check naming the spec key, the source, the column and
the type found. Columns that do not exist are left to the ``columns_present`` check.

Type names are matched by family, so DuckDB's (``DOUBLE``, ``TIMESTAMP WITH TIME ZONE``) and
PostgreSQL's (``double precision``, ``timestamp with time zone``) spellings both work.
"""

import re

from eval_pipelines.errors import ValidationFailed
from eval_pipelines.spec import EvalSpec, Source
from eval_pipelines.sqlbuild import SqlBuilder
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import Window

_FAMILIES = {
    "integer": re.compile(
        r"^(u?(tiny|small|big|huge)?int(eger)?|u?int\d+|hugeint|uhugeint|smallserial|serial|"
        r"bigserial|long|short)$"
    ),
    "decimal": re.compile(r"^(decimal|numeric)(\(.*\))?$"),
    "float": re.compile(r"^(float\d?|double( precision)?|real)$"),
    "text": re.compile(
        r"^(varchar|text|string|char|bpchar|character( varying)?|nvarchar)(\(.*\))?$"
    ),
    "timestamp": re.compile(
        r"^(timestamp(_s|_ms|_ns|tz)?(\(\d\))?( with(out)? time zone)?|date|datetime)$"
    ),
    "uuid": re.compile(r"^uuid$"),
    "boolean": re.compile(r"^bool(ean)?$"),
}

# What each role accepts, and how the expectation is worded in the message.
_EXPECTED = {
    "id": ({"integer", "text", "uuid"}, "an integer, text or UUID column (ids must join exactly)"),
    "timestamp": (
        {"timestamp"},
        "a TIMESTAMP (naive, meaning UTC) or TIMESTAMP WITH TIME ZONE column; text is not "
        "parsed, convert it in a 'query:'",
    ),
    "model_version": ({"text", "integer"}, "a text or integer column"),
    "score": ({"integer", "decimal", "float"}, "a numeric column (a probability in [0, 1])"),
    "label": ({"integer", "decimal", "float"}, "a numeric column holding 0 or 1"),
}


def type_family(type_name: str) -> str | None:
    """``integer``, ``decimal``, ``float``, ``text``, ``timestamp``, ``uuid``, ``boolean``."""
    name = " ".join(type_name.strip().lower().split())
    for family, pattern in _FAMILIES.items():
        if pattern.match(name):
            return family
    return None


def _source_name(source: Source) -> str:
    return f"table {source.table!r}" if source.table else f"query {source.query!r}"


def check_column_types(
    spec: EvalSpec, window: Window, warehouse: Warehouse, builder: SqlBuilder
) -> None:
    """Raise :class:`ValidationFailed` naming every column whose type cannot be evaluated."""
    p, lab = spec.predictions, spec.labels
    roles = [
        (
            p,
            "predictions",
            {
                "id": p.id,
                "timestamp": p.timestamp,
                "model_version": p.model_version,
                "score": p.score,
            },
        ),
        (lab, "labels", {"id": lab.id, "label": lab.label, "timestamp": lab.timestamp}),
    ]
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
            accepted, wording = _EXPECTED[role]
            if type_family(found) not in accepted:
                failures.append(
                    f"{prefix}.{role}: column {column!r} in {_source_name(source)} has type "
                    f"{found}; expected {wording}"
                )
    if failures:
        reasons = "\n  - ".join(failures)
        raise ValidationFailed(
            f"input checks failed for the window {window}; no metrics were computed:"
            f"\n  - {reasons}",
            failures,
        )
