"""The evaluation of one model for one week, end to end, as plain functions.

The CLI and the Dagster assets both call these, so a CI gate and the weekly run produce the
same numbers. Each step is a function of the previous step's output, so an orchestrator can
run them as separate steps and a notebook user can call :func:`evaluate` once.
"""

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from eval_pipelines.column_types import check_column_types
from eval_pipelines.curves import CurveInputs, curves_table, drift_curves, empty_curves
from eval_pipelines.drift import DRIFT_COLUMNS, compute_drift, drift_version, reference_note
from eval_pipelines.errors import ValidationFailed
from eval_pipelines.estimation.run import with_estimates
from eval_pipelines.estimation.week import estimate
from eval_pipelines.evaluation import (
    SliceMetrics,
    comparison_table,
    compute_slice_metrics,
    metrics_table,
)
from eval_pipelines.gates import Verdict, decide
from eval_pipelines.progress import SILENT, Progress
from eval_pipelines.query_cost import QueryCost
from eval_pipelines.spec import OVERALL, EvalSpec
from eval_pipelines.sqlbuild import SqlBuilder, grouping_mask
from eval_pipelines.stats.base import RowIndex
from eval_pipelines.stats.base import column as int_column
from eval_pipelines.stats.parse import (
    SliceKey,
    Statistics,
    index_rows,
    parse_family,
    parse_paired,
    parse_statistics,
)
from eval_pipelines.tasks import task_of
from eval_pipelines.validation import (
    CheckResult,
    ValidationReport,
    materialize_window,
    validate_window,
)
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import Window, week_window


@dataclass
class Evaluation:
    """Everything one run computed; artifacts and reports are rendered from this."""

    spec: EvalSpec
    window: Window
    validation: ValidationReport
    metrics: pd.DataFrame
    comparison: pd.DataFrame | None
    drift: pd.DataFrame
    coverage: pd.DataFrame
    queries: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    # Statements the input checks sent to the warehouse, by who sent them (``warehouse``:
    # ours; ``gx.<asset>``: Great Expectations'), as ``input_check_statements`` in run.json.
    input_statements: dict[str, int] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    # Size of the sufficient statistics: what the aggregate query returned, not the rows.
    statistics: dict[str, int] = field(default_factory=dict)
    # The task's own artifact tables (``Task.tables``), by name: ``<name>.parquet``.
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    # The aggregates behind the plots (``curves.parquet``, :mod:`eval_pipelines.curves`).
    curves: pd.DataFrame = field(default_factory=empty_curves)
    # What each warehouse query of the run cost, in order (:mod:`eval_pipelines.query_cost`).
    query_costs: list[QueryCost] = field(default_factory=list)
    # Per slice set of the statistics query: its groups and result rows (:func:`slice_sets`).
    slice_sets: list[dict[str, Any]] = field(default_factory=list)

    def decide(self) -> Verdict:
        """The release verdict of this evaluation under its spec's gates."""
        return decide(
            self.spec,
            self.metrics,
            self.comparison,
            self.drift,
            self.coverage,
            window=self.window.label,
        )


def check_slice_cardinality(
    spec: EvalSpec, window: Window, warehouse: Warehouse, builder: SqlBuilder
) -> None:
    """Fail before the aggregate when a slice column has more than ``max_slice_values``
    distinct values in the window: every value is a slice group with its own cells."""
    if not spec.slice_columns:
        return
    counts = warehouse.query(builder.slice_cardinality(window), "slice cardinality").iloc[0]
    failures = []
    for alias, column in zip(builder.grouping_columns([]), spec.slice_columns, strict=True):
        distinct = int(counts[alias])
        if distinct > spec.max_slice_values:
            keys = [
                f"slices[{i}]"
                for i, entry in enumerate(spec.slices)
                if column in ([entry] if isinstance(entry, str) else entry)
            ]
            failures.append(
                f"{', '.join(keys)}: column {column!r} has {distinct:,} distinct values in the "
                f"window, above max_slice_values ({spec.max_slice_values:,}); slice on a "
                "coarser column (a 'query:' can bucket it) or raise max_slice_values"
            )
    if failures:
        raise ValidationFailed(
            f"input checks failed for the window {window}; no metrics were computed:\n  - "
            + "\n  - ".join(failures),
            failures,
        )


def slice_set_rows(
    table: Any, spec: EvalSpec, builder: SqlBuilder
) -> dict[tuple[str, ...] | None, int]:
    """Rows of the statistics result per slice set (``spec.slice_crosses``), told apart by
    the ``grouping_id`` column the GROUPING SETS query returns; ``None``: rows of no slice
    set (the score bins, listed once)."""
    aliases = builder.grouping_columns([])
    alias_of = dict(zip(spec.slice_columns, aliases, strict=True))
    grouping_id = int_column(table, "grouping_id")
    rows: dict[tuple[str, ...] | None, int] = {}
    for cross in spec.slice_crosses:
        mask = grouping_mask(aliases, [alias_of[c] for c in cross]) if aliases else 0
        rows[cross] = int((grouping_id == mask).sum())
    rows[None] = int(table.num_rows) - sum(rows.values())
    return rows


def slice_sets(stats: Statistics, rows: dict[tuple[str, ...] | None, int]) -> list[dict[str, Any]]:
    """Per slice set: its groups (slices with data) and its rows of the statistics result.

    All slice sets come from one GROUPING SETS query over one scan of the window: the engine
    reports no time or rows scanned per set, so these counts are what is measurable per set.
    ``result_share`` is the set's fraction of the result's rows (rows of no set, the score
    bins, make up the rest): a proxy for its share of the output, not of the query's time.
    """
    total = sum(rows.values())
    return [
        {
            "slice_set": ", ".join(cross) if cross else OVERALL,
            "groups": sum(1 for key in stats.slices if key.columns == cross),
            "result_rows": count,
            "result_share": round(count / total, 4) if total else None,
        }
        for cross, count in rows.items()
        if cross is not None
    ]


def collect_statistics(
    spec: EvalSpec,
    window: Window,
    warehouse: Warehouse,
    builder: SqlBuilder,
    set_rows: dict[tuple[str, ...] | None, int] | None = None,
) -> tuple[Statistics, str]:
    """The task's statistics and the query text; ``set_rows``, when given, receives the
    result rows per slice set (:func:`slice_set_rows`)."""
    task = task_of(spec)
    own = task.family_queries(builder, window) if task.family_queries is not None else {}
    sql = builder.sufficient_statistics(window)
    table = warehouse.query_arrow(sql, "sufficient statistics")
    if set_rows is not None:
        set_rows.update(slice_set_rows(table, spec, builder))
    statistics = parse_statistics(table, spec, builder, skip=frozenset(own))
    del table  # before the next result: peak memory holds one at a time
    for name, family_sql in own.items():
        family_table = warehouse.query_arrow(family_sql, f"{name} statistics")
        parse_family(family_table, name, spec, builder, statistics)
        del family_table
    queries = [sql, *own.values()]
    return statistics, ";\n".join(queries)


def collect_paired_cells(
    spec: EvalSpec,
    window: Window,
    warehouse: Warehouse,
    builder: SqlBuilder,
    slices: list[SliceKey],
) -> tuple[Any, str]:
    assert spec.compare is not None
    sql = builder.paired_counts(window, spec.compare.baseline, spec.compare.candidate)
    table = warehouse.query_arrow(sql, "paired outcomes")
    return parse_paired(table, spec, builder, slices), sql


def collect_curves(
    spec: EvalSpec,
    window: Window,
    warehouse: Warehouse,
    builder: SqlBuilder,
    stats: Statistics,
    drift: list[dict[str, Any]],
) -> tuple[pd.DataFrame, dict[str, str]]:
    """``curves.parquet``: the task's curves (``Task.curves``) and the drift histograms."""

    def query(sql: str, label: str) -> tuple[Any, RowIndex]:
        table = warehouse.query_arrow(sql, label)
        return table, index_rows(table, spec, builder, stats)

    queries: dict[str, str] = {}
    inputs = CurveInputs(stats, spec, builder, window, query, queries)
    version = drift_version(spec, stats.versions) if drift else ""
    return curves_table(inputs, drift_curves(drift, version, str(stats.slices[0]))), queries


def pairing_check(spec: EvalSpec, stats: Statistics, paired: Any) -> CheckResult:
    """Warn (non-blocking) when baseline and candidate did not score the same requests.

    Deltas compare each version's labeled rows; they are paired only where both versions
    scored the same requests (shadow traffic). McNemar's test always uses the paired rows.
    """
    assert spec.compare is not None
    b = stats.versions.index(spec.compare.baseline)
    labeled = stats.labeled()[0, b]
    paired_rows = paired.pairs[0]
    if paired_rows >= labeled:
        message = f"all {int(labeled):,} labeled baseline rows are paired with the candidate"
        return CheckResult("versions_paired", True, message, blocking=False)
    message = (
        f"compare: only {int(paired_rows):,} of {int(labeled):,} labeled {spec.compare.baseline!r} "
        f"rows have a {spec.compare.candidate!r} prediction for the same id; deltas are "
        "partly unpaired"
    )
    return CheckResult("versions_paired", False, message, blocking=False)


def coverage_table(stats: Statistics) -> pd.DataFrame:
    """Label coverage per slice and version: labeled rows / all rows in the window."""
    labeled = stats.labeled()
    unlabeled = stats.unlabeled()
    rows = []
    for g, key in enumerate(stats.slices):
        for v, version in enumerate(stats.versions):
            total = labeled[g, v] + unlabeled[g, v]
            rows.append(
                {
                    "model_version": version,
                    "slice": str(key),
                    "rows": int(total),
                    "labeled": int(labeled[g, v]),
                    "coverage": float(labeled[g, v] / total) if total else float("nan"),
                }
            )
    return pd.DataFrame(rows)


def window_fingerprint(validation: ValidationReport) -> dict[str, Any]:
    """Row count, labeled rows and an order-independent content hash of the window."""
    rows = validation.per_version
    content = sum(int(r.get("content_hash") or 0) for r in rows) % 2**64
    return {
        "rows": sum(int(r["n"]) for r in rows),
        "labeled_rows": sum(int(r["n_labeled"]) for r in rows),
        "versions": {str(r["model_version"]): int(r["n"]) for r in rows},
        "content_hash": f"{content:016x}",
    }


def evaluate(
    spec: EvalSpec,
    week: str | Window,
    warehouse: Warehouse | None = None,
    progress: Progress = SILENT,
) -> Evaluation:
    """Validate the window, then compute metrics, comparison and drift for one week.

    ``progress`` times each step into ``Evaluation.timings`` and may report it (the CLI's
    lines on stderr); the default only times.
    """
    window = week if isinstance(week, Window) else week_window(week)
    if warehouse is None:
        with Warehouse(spec.warehouse) as owned:
            return evaluate(spec, window, owned, progress)
    builder = SqlBuilder(spec, warehouse.dialect)
    logged = len(warehouse.query_log)  # this run's queries are the ones appended from here
    timings: dict[str, float] = {}
    queries: dict[str, str] = {}

    created: list[str] = []

    def materialize(builder: SqlBuilder) -> SqlBuilder:
        # The window join feeds the checks, the statistics and the paired outcomes: run once.
        # It reads the labels of the window's predictions, materialised by the checks.
        if builder.window_labels_table is not None:
            queries["window_labels"] = builder.window_labels_query(window)
        queries["window"] = builder.window_join(window)
        materialized = materialize_window(warehouse, builder, window)
        if materialized.window_table is not None:
            # The window first: on Spark its cached view reads the labels' table.
            created.append(materialized.window_table)
            if builder.window_labels_table is not None:
                created.append(builder.window_labels_table)
        return materialized

    try:
        with progress.step("input checks", timings, "validation_s"):
            started, sent = time.perf_counter(), warehouse.statements
            builder = builder.with_column_types(
                check_column_types(spec, window, warehouse, builder)
            )
            timings["input_checks.column_types"] = time.perf_counter() - started
            validation, builder = validate_window(spec, window, warehouse, builder, materialize)
            timings.update({f"input_checks.{k}": v for k, v in validation.timings.items()})
            validation.statements["warehouse"] = warehouse.statements - sent
            validation.raise_if_failed()
        evaluation = _evaluate_valid(
            spec, window, warehouse, builder, validation, queries, timings, progress
        )
        evaluation.query_costs = warehouse.query_log.since(logged)
        return evaluation
    finally:
        for table in created:
            warehouse.drop_temporary_table(table)


def _evaluate_valid(
    spec: EvalSpec,
    window: Window,
    warehouse: Warehouse,
    builder: SqlBuilder,
    validation: ValidationReport,
    queries: dict[str, str],
    timings: dict[str, float],
    progress: Progress = SILENT,
) -> Evaluation:
    """Metrics, comparison and drift of a window that passed its input checks."""
    with progress.step("aggregate query", timings, "aggregate_s"):
        check_slice_cardinality(spec, window, warehouse, builder)
        set_rows: dict[tuple[str, ...] | None, int] = {}
        stats, queries["sufficient_statistics"] = collect_statistics(
            spec, window, warehouse, builder, set_rows
        )

    with progress.step("metrics and bootstrap intervals", timings, "metrics_s"):
        result: SliceMetrics = compute_slice_metrics(stats, spec)
        metrics = metrics_table(result, spec)

    if spec.estimation is not None:  # label-free estimates beside the realized metrics
        with progress.step("label-free estimates", timings, "estimation_s"):
            estimation = estimate(spec, window, warehouse, builder, stats.slices, stats.versions)
            if estimation.query:
                queries["estimation_histograms"] = estimation.query
            metrics = with_estimates(metrics, estimation.metrics)
            validation.results.extend(estimation.notes())

    comparison = None
    if spec.compare is not None:
        with progress.step("paired comparison", timings, "comparison_s"):
            paired, queries["paired_outcomes"] = collect_paired_cells(
                spec, window, warehouse, builder, stats.slices
            )
            comparison = comparison_table(result, spec, paired)
            validation.results.append(pairing_check(spec, stats, paired))

    drift = pd.DataFrame(columns=DRIFT_COLUMNS)  # no drift section: the documented columns
    histograms: list[dict[str, Any]] = []
    if spec.drift is not None:
        with progress.step("drift", timings, "drift_s"):
            drift, drift_queries = compute_drift(
                spec, window, warehouse, builder, stats.versions, histograms
            )
            queries.update(drift_queries)
            note = reference_note(spec, window, drift)
            if note is not None:  # a first week: drift skipped, said where the row counts say so
                validation.results.append(note)

    with progress.step("curves", timings, "curves_s"):
        curves, curve_queries = collect_curves(spec, window, warehouse, builder, stats, histograms)
        queries.update(curve_queries)

    return Evaluation(
        statistics={
            "slice_groups": len(stats.slices),
            "versions": len(stats.versions),
            **{
                f"{family.name}_cells": family.cells(stats.data[family.name])
                for family in stats.task.families
            },
        },
        fingerprint=window_fingerprint(validation),
        input_statements=dict(validation.statements),
        spec=spec,
        window=window,
        validation=validation,
        metrics=metrics,
        comparison=comparison,
        drift=drift,
        coverage=coverage_table(stats),
        queries=queries,
        timings=timings,
        tables=stats.task.tables(stats) if stats.task.tables is not None else {},
        curves=curves,
        slice_sets=slice_sets(stats, set_rows),
    )
