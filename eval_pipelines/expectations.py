"""Great Expectations suites generated from the spec, run in the warehouse.

Three GX assets, one suite each (docs/validation.md has the full table):

``window``
    The joined window (the session-private temporary table on DuckDB; the window join as a
    query elsewhere). Per model version (a GX row condition): ids not NULL and unique, scores
    not NULL and within [0, 1] (NaN and infinities fail the range), labels in {0, 1}, labels
    not timestamped before their prediction (warning), label coverage at least
    ``min_label_coverage`` (warning: immature labels are normal).
``predictions``
    The predictions source restricted to the window's time range: rows per version within
    bounds learned from previous weeks; and, from the window's prediction times read in UTC
    (``prediction_time``, whatever the column's type), freshness of the newest prediction
    (warning).
``labels``
    The labels of the window's predictions: label and timestamp not NULL (warnings: such
    labels silently count as unlabeled).

plus the user's own expectations (``validation.expectations``). Every GX result becomes a
:class:`~eval_pipelines.validation.CheckResult` whose message names the spec key, the column,
the version and the count, like the SQL checks'.

GX is imported only when :func:`run_expectations` or :func:`check_user_expectation` runs.
"""

import difflib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from eval_pipelines.query_cost import GX_ENGINE
from eval_pipelines.spec import EvalSpec, UserExpectation
from eval_pipelines.stats.multiclass import MAX_CLASSES, classes_of
from eval_pipelines.tasks import task_named
from eval_pipelines.tasks.multiclass import window_outputs
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import Window

RESULT_FORMAT = "BASIC"  # counts plus up to 20 example values; never every unexpected row
# The first run of each suite: BASIC's counts, no example values (see ``_run_suite``).
COUNTS_ONLY = {"result_format": "BASIC", "partial_unexpected_count": 0}
EXAMPLES = 3
LABEL_VALUES = (0, 1)
FINITE_MAX = 1.7976931348623157e308
# The predictions asset's prediction time as a naive UTC timestamp, whatever the column's type
# (a TIMESTAMP WITH TIME ZONE maximum cannot be compared with the naive freshness bound).
PREDICTION_TIME_UTC = "eval_prediction_time_utc"
PREDICTION_TIME_ASSET = "prediction_time"


@dataclass
class Planned:
    """One expectation and how to word its result."""

    name: str
    table: str
    column: str | None  # the user-facing column name (spec's), for messages and the report
    expectation: Any
    blocking: bool
    describe: Callable[[dict[str, Any]], str]  # the failure message, from GX's result dict
    passed: str  # the message when it passed ("" : describe() words both outcomes)
    version: str | None = None
    examples: bool = True  # whether describe() shows example values (``_examples``)


# ---------------------------------------------------------------------------- helpers
def _examples(result: dict[str, Any]) -> str:
    values = result.get("partial_unexpected_list") or []
    shown = []
    for value in values:
        text = repr(value) if not isinstance(value, float) else f"{value!r}"
        if text not in shown:
            shown.append(text)
        if len(shown) == EXAMPLES:
            break
    return f" (e.g. {', '.join(shown)})" if shown else ""


def _count(result: dict[str, Any]) -> int:
    return int(result.get("unexpected_count") or 0)


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{rest // 60}m"]
    text = " ".join(p for p in parts if p and p != "0m")
    return text or "0m"


# ---------------------------------------------------------------------------- the plan
def window_columns(spec: EvalSpec) -> dict[str, str]:
    """User-facing column name -> the window's column name."""
    p, lab = spec.predictions, spec.labels
    output = task_named(spec.task).output
    columns = {
        p.id: "id",
        p.model_version: "model_version",
        spec.output_column: output,
        lab.label: "label",
    }
    for key in task_named(spec.task).window_columns:
        columns[getattr(p, key)] = key
    outputs = task_named(spec.task).window_outputs
    for _, column, name in outputs(spec) if outputs else []:
        columns[column] = name
    for i, column in enumerate(spec.slice_columns):
        columns[column] = f"s_{i}"
    interval = getattr(p, "interval", None)
    if interval is not None:
        columns[interval.lower] = "interval_lower"
        columns[interval.upper] = "interval_upper"
    return columns


def window_plan(spec: EvalSpec, versions: list[str], gx: Any) -> list[Planned]:
    from great_expectations.expectations.row_conditions import Column

    E = gx.expectations
    p, lab = spec.predictions, spec.labels
    plan: list[Planned] = []
    for version in versions:
        where = {"row_condition": Column("model_version") == version}
        v = repr(version)
        plan += [
            Planned(
                "ids_not_null",
                "window",
                p.id,
                E.ExpectColumnValuesToNotBeNull(column="id", **where),
                True,
                lambda r, v=v: (
                    f"predictions.id: {_count(r)} rows of version {v} have a NULL {p.id!r}"
                ),
                f"no NULL {p.id!r} in version {v}",
                version=version,
            ),
            Planned(
                "ids_unique_per_version",
                "window",
                p.id,
                E.ExpectColumnValuesToBeUnique(column="id", **where),
                True,
                lambda r, v=v: (
                    f"predictions.id: {_count(r)} rows of version {v} have a "
                    f"duplicate {p.id!r}{_examples(r)}"
                ),
                f"{p.id!r} unique in version {v}",
                version=version,
            ),
            *TASK_VALUE_CHECKS[spec.task](spec, version, where, E),
            Planned(
                "labels_after_predictions",
                "window",
                lab.timestamp,
                E.ExpectColumnValuesToNotBeInSet(
                    column="label_excluded", value_set=["before_prediction"], **where
                ),
                False,
                lambda r, v=v: (
                    f"labels.timestamp: {_count(r)} labels of version {v} "
                    "predictions are timestamped before the prediction; those rows count as "
                    "unlabeled"
                ),
                f"no label of version {v} predictions precedes its prediction",
                version=version,
            ),
        ]
        if task_named(spec.task).row_label_coverage:
            plan.append(
                Planned(
                    "label_coverage",
                    "window",
                    lab.label,
                    E.ExpectColumnValuesToNotBeNull(
                        column="label", mostly=spec.min_label_coverage, **where
                    ),
                    False,
                    lambda r, v=v: _coverage_message(spec, v, r),
                    "",
                    version=version,
                    examples=False,
                )
            )
    return plan


def _binary_values(spec: EvalSpec, version: str, where: dict[str, Any], E: Any) -> list[Planned]:
    """A binary classifier's scores are probabilities and its labels 0 or 1."""
    p, lab = spec.predictions, spec.labels
    v = repr(version)
    return [
        Planned(
            "scores_not_null",
            "window",
            p.score,
            E.ExpectColumnValuesToNotBeNull(column="score", **where),
            True,
            lambda r, v=v: (
                f"predictions.score: {_count(r)} rows of version {v} have a "
                f"{p.score!r} that is NULL (scores must be in [0, 1])"
            ),
            f"no NULL {p.score!r} in version {v}",
            version=version,
        ),
        Planned(
            "scores_in_unit_interval",
            "window",
            p.score,
            E.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=1, **where),
            True,
            lambda r, v=v: (
                f"predictions.score: {_count(r)} rows of version {v} have a "
                f"{p.score!r} that is NaN or outside [0, 1]{_examples(r)}"
            ),
            f"every {p.score!r} of version {v} in [0, 1]",
            version=version,
        ),
        Planned(
            "labels_binary",
            "window",
            lab.label,
            E.ExpectColumnValuesToBeInSet(column="label", value_set=list(LABEL_VALUES), **where),
            True,
            lambda r, v=v: (
                f"labels.label: {_count(r)} labels joined to version {v} are "
                f"not 0 or 1{_examples(r)}"
            ),
            f"labels of version {v} are 0 or 1",
            version=version,
        ),
    ]


def _regression_values(
    spec: EvalSpec, version: str, where: dict[str, Any], E: Any
) -> list[Planned]:
    """A regression model's predictions and labels are finite numbers (NaN and infinities
    fail the range; a NULL label is an unlabeled row, counted by the coverage check)."""
    p, lab = spec.predictions, spec.labels
    v = repr(version)
    return [
        Planned(
            "predictions_not_null",
            "window",
            p.prediction,
            E.ExpectColumnValuesToNotBeNull(column="prediction", **where),
            True,
            lambda r, v=v: (
                f"predictions.prediction: {_count(r)} rows of version {v} have a "
                f"{p.prediction!r} that is NULL (predictions must be finite numbers)"
            ),
            f"no NULL {p.prediction!r} in version {v}",
            version=version,
        ),
        Planned(
            "predictions_finite",
            "window",
            p.prediction,
            E.ExpectColumnValuesToBeBetween(
                column="prediction", min_value=-FINITE_MAX, max_value=FINITE_MAX, **where
            ),
            True,
            lambda r, v=v: (
                f"predictions.prediction: {_count(r)} rows of version {v} have a "
                f"{p.prediction!r} that is NaN or infinite{_examples(r)}"
            ),
            f"every {p.prediction!r} of version {v} is a finite number",
            version=version,
        ),
        Planned(
            "labels_finite",
            "window",
            lab.label,
            E.ExpectColumnValuesToBeBetween(
                column="label", min_value=-FINITE_MAX, max_value=FINITE_MAX, **where
            ),
            True,
            lambda r, v=v: (
                f"labels.label: {_count(r)} labels joined to version {v} are NaN or "
                f"infinite{_examples(r)}"
            ),
            f"labels of version {v} are finite numbers",
            version=version,
        ),
        *_interval_values(spec, version, where, E),
    ]


def _interval_values(spec: EvalSpec, version: str, where: dict[str, Any], E: Any) -> list[Planned]:
    """A logged prediction interval has finite bounds with ``lower <= upper`` (a NULL bound
    is an interval not logged: its row leaves the interval metrics' ``n``)."""
    interval = spec.predictions.interval
    if interval is None:
        return []
    v = repr(version)
    plan = [
        Planned(
            f"interval_{side}_finite",
            "window",
            name,
            E.ExpectColumnValuesToBeBetween(
                column=f"interval_{side}", min_value=-FINITE_MAX, max_value=FINITE_MAX, **where
            ),
            True,
            lambda r, v=v, side=side, name=name: (
                f"predictions.interval.{side}: {_count(r)} rows of version {v} have a "
                f"{name!r} that is NaN or infinite{_examples(r)}"
            ),
            f"every {name!r} of version {v} is a finite number",
            version=version,
        )
        for side, name in (("lower", interval.lower), ("upper", interval.upper))
    ]
    plan.append(
        Planned(
            "interval_ordered",
            "window",
            interval.upper,
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="interval_upper", column_B="interval_lower", or_equal=True, **where
            ),
            True,
            lambda r, v=v: (
                f"predictions.interval: {_count(r)} rows of version {v} have "
                f"{interval.lower!r} > {interval.upper!r} (the lower bound above the upper)"
            ),
            f"{interval.lower!r} <= {interval.upper!r} in version {v}",
            version=version,
        )
    )
    return plan


def _ranking_values(spec: EvalSpec, version: str, where: dict[str, Any], E: Any) -> list[Planned]:
    """A ranking model's rows each belong to a list, its scores are finite numbers and its
    labels are graded relevances >= 0 (finite). One row per (list, item) follows from the
    unique row id (``ids_unique_per_version``)."""
    p, lab = spec.predictions, spec.labels
    v = repr(version)
    return [
        Planned(
            "list_ids_not_null",
            "window",
            p.list_id,
            E.ExpectColumnValuesToNotBeNull(column="list_id", **where),
            True,
            lambda r, v=v: (
                f"predictions.list_id: {_count(r)} rows of version {v} have a NULL "
                f"{p.list_id!r} (every row must belong to a list)"
            ),
            f"no NULL {p.list_id!r} in version {v}",
            version=version,
        ),
        Planned(
            "scores_not_null",
            "window",
            p.score,
            E.ExpectColumnValuesToNotBeNull(column="score", **where),
            True,
            lambda r, v=v: (
                f"predictions.score: {_count(r)} rows of version {v} have a {p.score!r} "
                "that is NULL (scores must be finite numbers)"
            ),
            f"no NULL {p.score!r} in version {v}",
            version=version,
        ),
        Planned(
            "scores_finite",
            "window",
            p.score,
            E.ExpectColumnValuesToBeBetween(
                column="score", min_value=-FINITE_MAX, max_value=FINITE_MAX, **where
            ),
            True,
            lambda r, v=v: (
                f"predictions.score: {_count(r)} rows of version {v} have a {p.score!r} "
                f"that is NaN or infinite{_examples(r)}"
            ),
            f"every {p.score!r} of version {v} is a finite number",
            version=version,
        ),
        Planned(
            "relevance_non_negative_finite",
            "window",
            lab.label,
            E.ExpectColumnValuesToBeBetween(
                column="label", min_value=0, max_value=FINITE_MAX, **where
            ),
            True,
            lambda r, v=v: (
                f"labels.label: {_count(r)} labels joined to version {v} are negative, NaN "
                f"or infinite (a relevance is a finite number >= 0){_examples(r)}"
            ),
            f"labels of version {v} are finite relevances >= 0",
            version=version,
        ),
    ]


def _multiclass_values(
    spec: EvalSpec, version: str, where: dict[str, Any], E: Any
) -> list[Planned]:
    """A multiclass model's predicted class and its labels are declared classes, and each
    class score is a probability in [0, 1]. Scores are not required to sum to 1 (log loss
    reads the true class's score only, as scikit-learn's, which only warns)."""
    p, lab = spec.predictions, spec.labels
    classes = list(classes_of(spec))
    declared = f"the declared classes ({', '.join(classes)}; at most {MAX_CLASSES})"
    v = repr(version)
    plan = [
        Planned(
            "predictions_not_null",
            "window",
            p.prediction,
            E.ExpectColumnValuesToNotBeNull(column="prediction", **where),
            True,
            lambda r, v=v: (
                f"predictions.prediction: {_count(r)} rows of version {v} have a "
                f"{p.prediction!r} that is NULL (a prediction must be a declared class)"
            ),
            f"no NULL {p.prediction!r} in version {v}",
            version=version,
        ),
        Planned(
            "predictions_in_classes",
            "window",
            p.prediction,
            E.ExpectColumnValuesToBeInSet(column="prediction", value_set=classes, **where),
            True,
            lambda r, v=v: (
                f"predictions.prediction: {_count(r)} rows of version {v} have a "
                f"{p.prediction!r} that is not one of {declared}{_examples(r)}"
            ),
            f"every {p.prediction!r} of version {v} is a declared class",
            version=version,
        ),
        Planned(
            "labels_in_classes",
            "window",
            lab.label,
            E.ExpectColumnValuesToBeInSet(column="label", value_set=classes, **where),
            True,
            lambda r, v=v: (
                f"labels.label: {_count(r)} labels joined to version {v} are not one of "
                f"{declared}{_examples(r)}"
            ),
            f"labels of version {v} are declared classes",
            version=version,
        ),
    ]
    for key, column, name in window_outputs(spec):
        plan.append(
            Planned(
                "class_scores_in_unit_interval",
                "window",
                column,
                E.ExpectColumnValuesToBeBetween(column=name, min_value=0, max_value=1, **where),
                True,
                lambda r, v=v, key=key, column=column: (
                    f"{key}: {_count(r)} rows of version {v} have a {column!r} that is "
                    f"NaN or outside [0, 1]{_examples(r)}"
                ),
                f"every {column!r} of version {v} in [0, 1]",
                version=version,
            )
        )
        plan.append(
            Planned(
                "class_scores_not_null",
                "window",
                column,
                E.ExpectColumnValuesToNotBeNull(column=name, **where),
                True,
                lambda r, v=v, key=key, column=column: (
                    f"{key}: {_count(r)} rows of version {v} have a {column!r} that is NULL "
                    "(class scores must be in [0, 1])"
                ),
                f"no NULL {column!r} in version {v}",
                version=version,
            )
        )
    return plan


# Each task's checks of the window's output and label values, by task name.
TASK_VALUE_CHECKS: dict[str, Callable[..., list[Planned]]] = {
    "binary_classification": _binary_values,
    "regression": _regression_values,
    "ranking": _ranking_values,
    "multiclass_classification": _multiclass_values,
}


def _coverage_message(spec: EvalSpec, version: str, result: dict[str, Any]) -> str:
    n = int(result.get("element_count") or 0)
    labeled = n - _count(result)
    share = labeled / n if n else 0.0
    passed = share >= spec.min_label_coverage
    text = (
        f"min_label_coverage: {share:.1%} of version {version} predictions are labeled "
        f"({labeled:,} of {n:,}; minimum {spec.min_label_coverage:.0%})"
    )
    return text if passed else text + "; the verdict is inconclusive until labels mature"


def predictions_plan(
    spec: EvalSpec, window: Window, bounds: dict[str, tuple[int, int, list[int]]], gx: Any
) -> list[Planned]:
    from great_expectations.expectations.row_conditions import Column

    E = gx.expectations
    p, settings = spec.predictions, spec.validation
    plan: list[Planned] = []
    for version, (low, high, history) in bounds.items():
        counts = ", ".join(f"{c:,}" for c in history)
        keys = (
            f"validation.row_count_weeks: {settings.row_count_weeks}, "
            f"validation.row_count_tolerance: {settings.row_count_tolerance}"
        )
        plan.append(
            Planned(
                "row_count_within_bounds",
                "predictions",
                None,
                E.ExpectTableRowCountToBeBetween(
                    min_value=low, max_value=high, row_condition=Column(p.model_version) == version
                ),
                True,
                lambda r, version=version, low=low, high=high, counts=counts, keys=keys: (
                    f"predictions: version {version!r} has {int(r.get('observed_value') or 0):,} "
                    f"rows in the window, outside [{low:,}, {high:,}] learned from the previous "
                    f"weeks ({counts} rows; {keys})"
                ),
                f"rows of version {version!r} within [{low:,}, {high:,}] "
                f"(previous weeks: {counts})",
                version=version,
            )
        )
    return plan


def freshness_plan(spec: EvalSpec, window: Window, gx: Any) -> list[Planned]:
    """The newest prediction time in the window (a warning), read from its own asset
    (``PREDICTION_TIME_ASSET``: the prediction time in UTC, whatever the column's type, so
    the predictions asset keeps exactly the source's columns for the user's expectations)."""
    settings, p = spec.validation, spec.predictions
    if settings.max_staleness is None:
        return []
    allowed = settings.max_staleness
    newest_allowed = window.end - allowed
    return [
        Planned(
            "predictions_fresh",
            "predictions",
            p.timestamp,
            gx.expectations.ExpectColumnMaxToBeBetween(
                column=PREDICTION_TIME_UTC, min_value=newest_allowed
            ),
            False,
            lambda r: _staleness_message(p.timestamp, window, allowed, r.get("observed_value")),
            f"the newest {p.timestamp!r} is within {_duration(allowed)} of the window's end",
        )
    ]


def _staleness_message(column: str, window: Window, allowed: timedelta, newest: Any) -> str:
    if not isinstance(newest, datetime):
        return f"validation.max_staleness: the newest {column!r} in the window is {newest!r}"
    newest = newest.replace(tzinfo=None)
    return (
        f"validation.max_staleness: the newest {column!r} in the window is {newest:%Y-%m-%d %H:%M}"
        f", {_duration(window.end - newest)} before the window's end (allowed: "
        f"{_duration(allowed)}); the week may be incomplete"
    )


def labels_plan(spec: EvalSpec, gx: Any) -> list[Planned]:
    E = gx.expectations
    lab = spec.labels
    return [
        Planned(
            f"labels_{what}_not_null",
            "labels",
            column,
            E.ExpectColumnValuesToNotBeNull(column=column),
            False,
            lambda r, key=key, column=column: (
                f"labels.{key}: {_count(r)} labels of the window's "
                f"predictions have a NULL {column!r}; those rows count as unlabeled"
            ),
            f"no NULL {column!r} among the window's labels",
        )
        for what, key, column in (
            ("value", "label", lab.label),
            ("timestamp", "timestamp", lab.timestamp),
        )
    ]


def user_plan(
    spec: EvalSpec, gx: Any, columns: dict[str, list[str]]
) -> tuple[list[Planned], list[tuple[str, str, str | None, bool]]]:
    """The user's expectations, and the problems (key, message, column, blocking) of those
    that name a column the table does not have."""
    plan, problems = [], []
    mapping = window_columns(spec)
    for index, user in enumerate(spec.validation.expectations):
        key = f"validation.expectations.{index}"
        kwargs = user.kwargs
        column = kwargs.get("column")
        if column is not None:
            available = list(mapping) if user.table == "window" else columns.get(user.table, [])
            if column not in available:
                close = difflib.get_close_matches(column, available, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(
                    (
                        key,
                        f"{key}.column: {column!r} is not a column of {user.table}{hint} "
                        f"(columns: {', '.join(available)})",
                        column,
                        user.blocking,
                    )
                )
                continue
            if user.table == "window":
                kwargs["column"] = mapping[column]
        expectation = _expectation_class(gx, user.type)(**kwargs)
        plan.append(
            Planned(
                f"user:{user.type}",
                user.table,
                column,
                expectation,
                user.blocking,
                lambda r, key=key, user=user, column=column: _user_message(key, user, column, r),
                f"{key} ({user.type}) passed",
            )
        )
    return plan, problems


def _user_message(key: str, user: UserExpectation, column: str | None, r: dict) -> str:
    where = f"{user.table}.{column}" if column else user.table
    if "unexpected_count" in r:
        element = r.get("element_count")
        of = f" of {int(element):,}" if element is not None else ""
        detail = f"{_count(r)}{of} rows have an unexpected {column!r}{_examples(r)}"
    else:
        detail = f"observed {jsonable(r.get('observed_value'))!r}"
    return f"{key} ({user.type} on {where}): {detail}"


# ---------------------------------------------------------------------------- spec load
def _expectation_class(gx: Any, name: str) -> type:
    from great_expectations.expectations.registry import get_expectation_impl

    return get_expectation_impl(name)


def check_user_expectation(user: UserExpectation) -> str | None:
    """Why ``user`` is not a valid GX expectation (``None`` if it is): an unknown type or a
    keyword the expectation class rejects."""
    from eval_pipelines.gx_compat import import_gx

    gx = import_gx()
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    known = list_registered_expectation_implementations()
    if user.type not in known:
        close = difflib.get_close_matches(user.type, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"type: unknown Great Expectations expectation {user.type!r}{hint}"
    cls = _expectation_class(gx, user.type)
    try:
        cls(**user.kwargs)
    except Exception as exc:  # pydantic (v1) validation errors of the GX class
        lines = []
        for error in getattr(exc, "errors", lambda: [])() or []:
            loc = ".".join(str(p) for p in error.get("loc", ())) or "(expectation)"
            lines.append(f"{loc}: {error.get('msg')}")
        detail = "; ".join(lines) or f"{type(exc).__name__}: {exc}"
        return f"{user.type}: {detail}"
    return None


# ---------------------------------------------------------------------------- running
@dataclass
class SuiteProfile:
    """Where :func:`run_suites` spent its time: seconds and statements sent, per asset
    (``context`` is the GX context and data source set-up, before any asset)."""

    seconds: dict[str, float] = field(default_factory=dict)
    statements: dict[str, int] = field(default_factory=dict)


@dataclass
class Outcome:
    planned: Planned
    success: bool
    result: dict[str, Any]
    error: str | None = None


def run_suites(
    warehouse: Warehouse,
    assets: dict[str, str],
    plans: dict[str, list[Planned]],
    profile: SuiteProfile | None = None,
) -> list[Outcome]:
    """Validate each asset's planned expectations in the warehouse (one GX run per asset)."""
    from eval_pipelines.gx_compat import (
        add_warehouse_datasource,
        count_statements,
        gx_context,
        import_gx,
    )

    profile = profile if profile is not None else SuiteProfile()
    gx = import_gx()
    started = time.perf_counter()
    context = gx_context(gx)
    source = add_warehouse_datasource(context, warehouse)
    profile.seconds["context"] = time.perf_counter() - started
    outcomes: list[Outcome] = []
    for table, plan in plans.items():
        if not plan:
            continue
        started = time.perf_counter()
        # GX runs its own queries: one cost entry per asset, wall time only.
        with count_statements() as sent, warehouse.measured(f"expectations on {table}", GX_ENGINE):
            outcomes += _run_suite(gx, warehouse, source, table, assets[table], plan)
        profile.seconds[table] = time.perf_counter() - started
        profile.statements[table] = sent[0]
    return outcomes


def _run_suite(
    gx: Any, warehouse: Warehouse, source: Any, table: str, query: str, plan: list[Planned]
) -> list[Outcome]:
    """One asset's suite, validated in one GX run that fetches counts only; then, only for
    the expectations that found unexpected values, one more run that fetches examples.

    GX resolves the aggregate metrics of one domain (the asset, per row condition) in one
    bundled query, but fetches each expectation's example values with a query of its own:
    ``SELECT col ... WHERE <unexpected> LIMIT 20``. On clean data that query returns nothing
    yet reads the whole domain, and for ``expect_column_values_to_be_unique`` it is a window
    function over every id (as costly as the count itself). With ``partial_unexpected_count``
    0 the example query is ``LIMIT 0``, which the warehouse answers without reading a row;
    the second run asks for the examples where there are some, so results and messages are
    those of one ``BASIC`` run.
    """
    batch = warehouse.dialect.gx_batch(source, warehouse, table, query)
    counts = _validate(gx, batch, table, plan, COUNTS_ONLY)
    again = [item for item, outcome in zip(plan, counts, strict=True) if _wants_examples(outcome)]
    if not again:
        return counts
    rerun = _validate(gx, batch, table, again, RESULT_FORMAT)
    examples = dict(zip(map(id, again), rerun, strict=True))
    return [examples.get(id(item), outcome) for item, outcome in zip(plan, counts, strict=True)]


def _wants_examples(outcome: Outcome) -> bool:
    """Whether the message of ``outcome`` (see ``validation._check_result``) would show
    example values that the counts-only run did not fetch."""
    item = outcome.planned
    worded = not outcome.success or not item.passed
    return outcome.error is None and worded and item.examples and _count(outcome.result) > 0


def _raised(info: Any) -> str | None:
    """The error message in a GX result's ``exception_info``, if it raised: either one
    ``{"raised_exception", "exception_message", ...}`` dict, or (when a metric failed) one
    such dict per metric id."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    for nested in info.values():
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return nested.get("exception_message") or "a metric raised an exception"
    return None


def _validate(
    gx: Any, batch: Any, table: str, plan: list[Planned], result_format: Any
) -> list[Outcome]:
    """``plan``'s expectations validated as one suite on ``batch``, in plan order."""
    suite = gx.ExpectationSuite(f"eval_{table}")
    for index, item in enumerate(plan):
        # Ephemeral suites assign no ids: tag each expectation to match its result.
        meta = {**(item.expectation.meta or {}), "eval_pipelines_key": f"{table}-{index}"}
        suite.add_expectation(item.expectation.copy(update={"meta": meta}))
    run = batch.validate(suite, result_format=result_format)
    results = {(r.expectation_config.meta or {}).get("eval_pipelines_key"): r for r in run.results}
    outcomes: list[Outcome] = []
    for index, item in enumerate(plan):
        result = results.get(f"{table}-{index}")
        if result is None:
            outcomes.append(Outcome(item, False, {}, "Great Expectations returned no result"))
            continue
        error = _raised(result.exception_info)
        outcomes.append(Outcome(item, bool(result.success), dict(result.result or {}), error))
    return outcomes
