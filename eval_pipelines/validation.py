"""Input checks that stand in front of every metric.

Every check runs in the warehouse (rows never come to Python) and produces
:class:`CheckResult`s in a :class:`ValidationReport`; a failed blocking check stops the run
with every reason listed. In order (docs/validation.md):

1. ``RequiredColumns`` (SQL): every column the spec names exists and has a usable type.
2. The window is materialised once (see :func:`eval_pipelines.pipeline.evaluate`).
3. ``WindowContents`` (SQL): per-version counts and the content fingerprint, the window is not
   empty, compared versions are present.
4. ``WarehouseExpectations`` (Great Expectations, SQL execution engine): the suites generated
   from the spec plus the user's (:mod:`eval_pipelines.expectations`), with row-count bounds
   learned in SQL from previous weeks.
5. ``LabelsUnique`` (SQL): at most one label per prediction id.

The :class:`Check` protocol is the seam: anything with a ``name`` and a ``run(context)``
returning ``CheckResult``s can be added.
"""

import difflib
import hashlib
import math
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol

import pandas as pd

from eval_pipelines import gx_compat
from eval_pipelines.errors import ValidationFailed
from eval_pipelines.id_ranges import WHOLE, id_ranges, store_in_parts
from eval_pipelines.spec import EvalSpec
from eval_pipelines.sqlbuild import SqlBuilder
from eval_pipelines.tasks import task_of
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import Window


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    message: str
    blocking: bool = True
    # Where it ran ("gx": a Great Expectations expectation in the warehouse; "sql": ours).
    engine: str = "sql"
    expectation: str | None = None  # the GX expectation type, when there is one
    table: str | None = None  # predictions, labels or window
    column: str | None = None  # the column as the spec names it
    version: str | None = None
    observed: Any = None
    unexpected_count: int | None = None


@dataclass
class ValidationReport:
    window: str
    results: list[CheckResult] = field(default_factory=list)
    per_version: list[dict] = field(default_factory=list)
    # Where the checks' time went (seconds per check or query; run.json ``timings_s`` as
    # ``input_checks.<name>``) and how many statements they sent to the warehouse. Not part
    # of validation.json, which stays the same on every run.
    timings: dict[str, float] = field(default_factory=dict)
    statements: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results if r.blocking)

    @property
    def failures(self) -> list[str]:
        return [r.message for r in self.results if r.blocking and not r.passed]

    @property
    def warnings(self) -> list[str]:
        return [r.message for r in self.results if not r.blocking and not r.passed]

    def to_dict(self) -> dict:
        return {
            "window": self.window,
            "passed": self.passed,
            "checks": [asdict(r) for r in self.results],
            "per_version": self.per_version,
        }

    def raise_if_failed(self) -> None:
        if not self.passed:
            reasons = "\n  - ".join(self.failures)
            raise ValidationFailed(
                f"input checks failed for the window {self.window}; no metrics were computed:"
                f"\n  - {reasons}",
                self.failures,
            )


@dataclass(frozen=True)
class CheckContext:
    spec: EvalSpec
    window: Window
    warehouse: Warehouse
    builder: SqlBuilder


class Check(Protocol):
    name: str

    def run(self, context: CheckContext) -> list[CheckResult]: ...


def _missing_columns(
    context: CheckContext, source_name: str, source, required: dict[str, str]
) -> list[CheckResult]:
    source_sql = context.builder.source(source)
    what = f"table {source.table!r}" if source.table else f"query {source.query!r}"
    columns = context.warehouse.columns(source_sql, f"{source_name} columns ({what})")
    lowered = {c.lower(): c for c in columns}
    results = []
    for key, column in required.items():
        if column in columns or column.lower() in lowered:
            continue
        close = difflib.get_close_matches(column, columns, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        results.append(
            CheckResult(
                "columns_present",
                False,
                f"{key}: column {column!r} not found in {what}{hint} "
                f"(columns: {', '.join(columns)})",
            )
        )
    return results


class RequiredColumns:
    """Every column the spec names exists in its source."""

    name = "columns_present"

    def run(self, context: CheckContext) -> list[CheckResult]:
        spec = context.spec
        p, lab = spec.predictions, spec.labels
        pred_required = {
            "predictions.id": p.id,
            "predictions.timestamp": p.timestamp,
            "predictions.model_version": p.model_version,
            spec.output_key: spec.output_column,
        }
        outputs = task_of(spec).window_outputs
        for key, column, _ in outputs(spec) if outputs else []:
            pred_required[key] = column
        for i, entry in enumerate(spec.slices):
            for col in [entry] if isinstance(entry, str) else entry:
                pred_required[f"slices[{i}]"] = col
        if spec.drift:
            for i, col in enumerate(spec.drift.features):
                pred_required[f"drift.features[{i}]"] = col
        label_required = {
            "labels.id": lab.id,
            "labels.label": lab.label,
            "labels.timestamp": lab.timestamp,
        }
        failures = _missing_columns(context, "predictions", p, pred_required)
        failures += _missing_columns(context, "labels", lab, label_required)
        if failures:
            return failures
        failures = _unusable_types(context)
        return failures or [
            CheckResult(self.name, True, "every column named in the spec exists, usable types")
        ]


def _unusable_types(context: CheckContext) -> list[CheckResult]:
    """Probe each typed column with the operation the engine applies to it (``LIMIT 0``: the
    warehouse binds the expression without reading a row). Type names differ by engine; what
    the engine can compute with does not."""
    spec, b = context.spec, context.builder
    p, lab = spec.predictions, spec.labels
    # The expressions the queries apply to each column (booleans as 0/1, time zones to UTC;
    # a class value as text).
    value_probe, label_probe, value_kind = "{c} + 0", b.label_value("{a}") + " + 0", "numeric"
    if task_of(spec).categorical:
        value_probe, label_probe, value_kind = b.as_text("{c}"), b.label_value("{a}"), "text"
    probes = [
        (spec.output_key, p, spec.output_column, value_probe, value_kind),
        (
            "predictions.timestamp",
            p,
            p.timestamp,
            b.utc_timestamp("predictions.timestamp", "{c}") + " + INTERVAL '1' SECOND",
            "a timestamp",
        ),
        ("labels.label", lab, lab.label, label_probe, value_kind),
        (
            "labels.timestamp",
            lab,
            lab.timestamp,
            b.utc_timestamp("labels.timestamp", "{c}") + " + INTERVAL '1' SECOND",
            "a timestamp",
        ),
    ]
    results = []
    for key, source, column, expression, kind in probes:
        probe = expression.replace("{a}.", "s.").format(c=f"s.{b.ident(column)}")
        sql = f"SELECT {probe} AS probe FROM {b.source(source)} AS s LIMIT 0"
        try:
            context.warehouse.query(sql, f"{key} type probe")
        except Exception:
            results.append(
                CheckResult(
                    "columns_usable",
                    False,
                    f"{key}: column {column!r} of {_source_name(source)} is not {kind} "
                    f"(the warehouse cannot compute {probe.replace('s.', '', 1)})",
                    table=key.split(".")[0],
                    column=column,
                )
            )
    return results


class WindowContents:
    """Per-version counts and fingerprint; the window is not empty; compared versions exist.

    The per-row properties (ids, scores, label values) are Great Expectations expectations
    (:class:`WarehouseExpectations`), so each failure is reported once."""

    name = "window_contents"

    def __init__(self) -> None:
        self.per_version: pd.DataFrame | None = None

    def run(self, context: CheckContext) -> list[CheckResult]:
        spec, window = context.spec, context.window
        frame = context.warehouse.query(context.builder.window_checks(window), "window checks")
        self.per_version = frame
        results: list[CheckResult] = []
        if frame.empty or int(frame["n"].sum()) == 0:
            return [
                CheckResult(
                    "window_not_empty",
                    False,
                    f"no predictions in {_source_name(spec.predictions)} for the window {window}",
                )
            ]
        for row in frame.itertuples(index=False):
            if int(row.n_blank_id or 0):
                results.append(
                    CheckResult(
                        "ids_not_blank",
                        False,
                        f"predictions.id: {int(row.n_blank_id)} rows of version "
                        f"{row.model_version!r} have an empty or blank {spec.predictions.id!r}",
                        table="window",
                        column=spec.predictions.id,
                        version=str(row.model_version),
                        unexpected_count=int(row.n_blank_id),
                    )
                )
        present = set(frame["model_version"].astype(str))
        if spec.compare:
            for role in ("baseline", "candidate"):
                version = getattr(spec.compare, role)
                if version not in present:
                    results.append(
                        CheckResult(
                            f"{role}_present",
                            False,
                            f"compare.{role}: version {version!r} has no predictions in the "
                            f"window {window} (versions present: {', '.join(sorted(present))})",
                        )
                    )
        if not results:
            results.append(CheckResult(self.name, True, "every compared version has rows"))
        return results


class LabelsUnique:
    """A prediction id has at most one label (otherwise the join double counts)."""

    name = "labels_unique"

    def run(self, context: CheckContext) -> list[CheckResult]:
        frame = context.warehouse.query(
            context.builder.label_duplicates(context.window), "label uniqueness check"
        )
        duplicated = int(frame.iloc[0, 0] or 0)
        if duplicated:
            return [
                CheckResult(
                    self.name,
                    False,
                    f"labels.id: {duplicated} prediction ids in the window have more than one "
                    f"label in {_source_name(context.spec.labels)}",
                )
            ]
        return [CheckResult(self.name, True, "at most one label per prediction")]


class WarehouseExpectations:
    """The generated and user GX suites, run by GX's SQL execution engine in the warehouse.

    Needs the versions present (from :class:`WindowContents`); learns row-count bounds from
    previous weeks in one SQL aggregate first."""

    name = "expectations"

    def __init__(self, versions: list[str]) -> None:
        self.versions = versions
        # Seconds per step (``gx_import``, ``row_count_history``, ``gx.<asset>``) and GX's
        # statements per asset (``gx.<asset>``).
        self.timings: dict[str, float] = {}
        self.statements: dict[str, int] = {}

    def run(self, context: CheckContext) -> list[CheckResult]:
        from eval_pipelines import expectations as ex
        from eval_pipelines.gx_compat import import_gx, shares_session

        spec, builder, window = context.spec, context.builder, context.window
        with timed(self.timings, "gx_import"):
            gx = import_gx()
        results: list[CheckResult] = []
        with timed(self.timings, "row_count_history"):
            bounds, notes = self.row_count_bounds(context)
        results += notes
        columns = {}
        if spec.validation.expectations:
            columns = {
                "predictions": context.warehouse.columns(
                    builder.source(spec.predictions), "predictions columns"
                ),
                "labels": context.warehouse.columns(builder.source(spec.labels), "labels columns"),
            }
        user, problems = ex.user_plan(spec, gx, columns)
        for key, message, column, blocking in problems:
            results.append(
                CheckResult(key, False, message, blocking, "gx", column=column, table=None)
            )
        plans: dict[str, list] = {"window": ex.window_plan(spec, self.versions, gx)}
        plans["predictions"] = ex.predictions_plan(spec, window, bounds, gx)
        plans[ex.PREDICTION_TIME_ASSET] = ex.freshness_plan(spec, window, gx)
        plans["labels"] = ex.labels_plan(spec, gx)
        for item in user:
            plans[item.table].append(item)
        shared = shares_session(context.warehouse) and builder.window_table is not None
        assets = self.asset_queries(context, shared)
        profile = ex.SuiteProfile()
        for outcome in ex.run_suites(context.warehouse, assets, plans, profile):
            results.append(_check_result(outcome))
        self.timings.update({f"gx.{k}": v for k, v in profile.seconds.items()})
        self.statements.update({f"gx.{k}": v for k, v in profile.statements.items()})
        return results

    @staticmethod
    def asset_queries(context: CheckContext, shared: bool) -> dict[str, str]:
        from eval_pipelines import expectations as ex

        b, spec, window = context.builder, context.spec, context.window
        p = spec.predictions
        in_window = (
            f"{b.pred_ts('p')} >= {b.literal(window.start)} "
            f"AND {b.pred_ts('p')} < {b.literal(window.end)}"
        )
        if shared:
            window_sql = f"SELECT * FROM {b.window_table}"
            labels_sql = b.window_labels(window)
        else:
            # GX wants query assets to start with SELECT; the template starts with comments.
            # It cannot see this session's temporary tables.
            sources = replace(b, window_labels_table=None)
            window_sql = f"SELECT * FROM (\n{sources.window_join(window)}\n) AS w"
            labels_sql = f"SELECT * FROM (\n{b.window_labels_query(window)}\n) AS l"
        return {
            "window": window_sql,
            "predictions": f"SELECT * FROM {b.source(p)} AS p WHERE {in_window}",
            ex.PREDICTION_TIME_ASSET: (
                f"SELECT {b.pred_ts('p')} AS {ex.PREDICTION_TIME_UTC} "
                f"FROM {b.source(p)} AS p WHERE {in_window}"
            ),
            "labels": labels_sql,
        }

    def row_count_bounds(
        self, context: CheckContext
    ) -> tuple[dict[str, tuple[int, int, list[int]]], list[CheckResult]]:
        """Per version: [min x (1 - t), max x (1 + t)] over the previous weeks with rows."""
        spec, b, window = context.spec, context.builder, context.window
        weeks, tolerance = spec.validation.row_count_weeks, spec.validation.row_count_tolerance
        if weeks == 0:
            return {}, []
        p = spec.predictions
        ts = b.pred_ts("p")
        week = timedelta(days=7)
        sums = [
            f"SUM(CASE WHEN {ts} >= {b.literal(window.start - k * week)} AND {ts} < "
            f"{b.literal(window.start - (k - 1) * week)} THEN 1 ELSE 0 END) AS week_{k}"
            for k in range(1, weeks + 1)
        ]
        sql = (
            f"SELECT p.{b.ident(p.model_version)} AS model_version,\n    "
            + ",\n    ".join(sums)
            + f"\nFROM {b.source(p)} AS p\nWHERE {ts} >= {b.literal(window.start - weeks * week)}"
            f" AND {ts} < {b.literal(window.start)}\nGROUP BY p.{b.ident(p.model_version)}"
        )
        history = context.warehouse.query(sql, "row count history")
        by_version = {str(r[0]): [int(x or 0) for x in r[1:]] for r in history.itertuples(False)}
        bounds, notes = {}, []
        for version in self.versions:
            counts = [c for c in by_version.get(version, []) if c > 0]
            if len(counts) < 2:
                notes.append(
                    CheckResult(
                        "row_count_within_bounds",
                        True,
                        f"skipped: version {version!r} has rows in {len(counts)} of the "
                        f"previous {weeks} weeks (validation.row_count_weeks); bounds need 2",
                        blocking=False,
                        table="predictions",
                        version=version,
                    )
                )
                continue
            low = math.floor(min(counts) * (1 - tolerance))
            high = math.ceil(max(counts) * (1 + tolerance))
            bounds[version] = (low, high, counts)
        return bounds, notes


def _check_result(outcome) -> CheckResult:
    from eval_pipelines.expectations import jsonable

    item = outcome.planned
    kind = item.expectation.expectation_type
    fields = {
        "blocking": item.blocking,
        "engine": "gx",
        "expectation": kind,
        "table": item.table,
        "column": item.column,
        "version": item.version,
    }
    if outcome.error is not None:
        where = f"{item.table}.{item.column}" if item.column else item.table
        message = f"{where}: {kind} could not be evaluated in the warehouse: {outcome.error}"
        return CheckResult(item.name, False, message[:600], **fields)
    result = outcome.result
    message = (item.passed if outcome.success else "") or item.describe(result)
    unexpected = result.get("unexpected_count")
    return CheckResult(
        item.name,
        outcome.success,
        message,
        observed=jsonable(result.get("observed_value")),
        unexpected_count=int(unexpected) if unexpected is not None else None,
        **fields,
    )


@contextmanager
def timed(timings: MutableMapping[str, float], name: str) -> Iterator[None]:
    """Add the ``with`` body's wall seconds to ``timings[name]`` (also when it raises)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started


def _source_name(source) -> str:
    return source.table if source.table else f"query {source.query!r}"


def validate_window(
    spec: EvalSpec,
    window: Window,
    warehouse: Warehouse,
    builder: SqlBuilder,
    prepare: Callable[[SqlBuilder], SqlBuilder] | None = None,
) -> tuple[ValidationReport, SqlBuilder]:
    """Run the checks in order; later checks are skipped if columns are missing.

    ``prepare`` runs once the columns are known to exist and may return a builder that reads
    a materialised window (see :func:`eval_pipelines.pipeline.evaluate`); the builder the
    contents were checked with is returned, so metrics read exactly what was validated.
    """
    context = CheckContext(spec, window, warehouse, builder)
    report = ValidationReport(window=str(window))
    clock = report.timings
    before = warehouse.statements
    labels_table: SqlBuilder | None = None
    try:
        with timed(clock, "columns"):
            report.results += RequiredColumns().run(context)
        if not report.passed:
            return report, builder
        gx_compat.start_import()  # overlaps the window join; GX runs after the contents
        if prepare is not None:
            # The labels first: the window join then reads them instead of the whole labels
            # source (SqlBuilder.window_join), which is scanned once.
            with timed(clock, "window_labels_table"):
                labels_table = _materialize_window_labels(warehouse, builder, window)
            with timed(clock, "window_table"):
                builder = prepare(labels_table or builder)
            context = CheckContext(spec, window, warehouse, builder)
        contents = WindowContents()
        with timed(clock, "window_contents"):
            report.results += contents.run(context)
        frame = contents.per_version
        if report.passed and frame is not None:
            versions = [str(v) for v in frame["model_version"] if v is not None]
            expectations = WarehouseExpectations(versions)
            report.results += expectations.run(context)
            clock.update(expectations.timings)
            report.statements.update(expectations.statements)
        with timed(clock, "labels_unique"):
            report.results += LabelsUnique().run(context)
        if contents.per_version is not None:
            report.per_version = [
                {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                for row in contents.per_version.to_dict(orient="records")
            ]
        if builder.window_table is not None:
            # The window table reads it: on Spark a cached view is a view over its query, so
            # the labels' table lives as long as the window's (``prepare``'s caller drops
            # both). Otherwise it is dropped below and later queries join the sources.
            labels_table = None
        # Later queries never read it: a window join of other weeks must read the source.
        return report, replace(builder, window_labels_table=None)
    finally:
        if labels_table is not None and labels_table.window_labels_table is not None:
            warehouse.drop_temporary_table(labels_table.window_labels_table)
        report.statements["warehouse"] = warehouse.statements - before


# Labels of the window per part of the window join. The join's hash table holds the
# window's labels: at 100M rows a week (47.5M labels) in one statement it spilled and took
# 121 s, in 10 parts 106 s, in 16 parts 73 s and in 32 parts 66 s; at 10M rows (4.75M
# labels) one statement took 6.6 s and 3 parts 7.0 s.
WINDOW_JOIN_PART_LABELS = 2_000_000
# Predictions of the window per part of the semi-join that finds their labels: at 100M rows a
# week one statement took 70 s (its hash table of the window's ids spilled), 16 parts 29 s.
WINDOW_LABELS_PART_PREDICTIONS = 5_000_000


def materialize_window(warehouse: Warehouse, builder: SqlBuilder, window: Window) -> SqlBuilder:
    """The window join (reading the materialised labels when ``builder`` has them) run once
    into a session-private table, never a write to the warehouse: ``builder`` reading it,
    or ``builder`` unchanged when the warehouse refuses a temporary table. The name derives
    from the query, so run.json's query texts are the same on every run. Past
    :data:`WINDOW_JOIN_PART_LABELS` labels of the window the join runs in parts by ranges
    of the ids (:mod:`eval_pipelines.id_ranges`)."""
    join = builder.window_join(window)
    table = "eval_window_" + hashlib.sha256(join.encode()).hexdigest()[:12]
    bounds = WHOLE
    if builder.window_labels_table is not None and warehouse.appends_rows:
        labels = warehouse.query(builder.row_count(builder.window_labels_table), "window labels")
        n_labels = int(labels["n"].iloc[0])
        bounds, _ = id_ranges(
            warehouse,
            lambda fraction: builder.id_sample(window, None, fraction),
            n_labels,
            WINDOW_JOIN_PART_LABELS,
        )
    if not store_in_parts(warehouse, table, [builder.window_join(window, ids) for ids in bounds]):
        return builder
    return replace(builder, window_table=table)


def _materialize_window_labels(
    warehouse: Warehouse, builder: SqlBuilder, window: Window
) -> SqlBuilder | None:
    """The labels of the window's predictions, materialised before the window (one
    semi-join of the labels source instead of one per query: the window join, GX reading
    the ``labels`` asset about three times, and the label uniqueness check once more).
    ``builder`` reading that table, or ``None`` when the warehouse refuses a temporary
    table."""
    sql = builder.window_labels_query(window)
    name = "eval_labels_" + hashlib.sha256(sql.encode()).hexdigest()[:12]
    parts = [sql]
    if warehouse.appends_rows:
        ids = warehouse.query(builder.window_ids(window), "window ids").iloc[0]
        n = int(ids["n"])
        bounds, _ = id_ranges(
            warehouse,
            lambda fraction: builder.id_sample(window, None, fraction),
            n,
            WINDOW_LABELS_PART_PREDICTIONS,
        )
        if len(bounds) > 1:
            span = (ids["low"], ids["high"])
            parts = [builder.window_labels_query(window, part, span) for part in bounds]
    if not store_in_parts(warehouse, name, parts):
        return None
    return replace(builder, window_labels_table=name)
