"""The report model: what a person reads about one evaluation, built once from the evaluation,
its verdict and its ``run.json`` record, and rendered as ``report.md``
(:func:`eval_pipelines.report.render_markdown`) and ``report.html``
(:mod:`eval_pipelines.report_html`).

Everything here is an aggregate (one row per slice x metric, feature x method, check), so the
model's size depends on slices and metrics, never on rows. Builders live in
:func:`eval_pipelines.report.build_report_model`; this module holds the types and the helpers
that need nothing of the Markdown wording.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from eval_pipelines.estimation import base_metric, is_estimated
from eval_pipelines.reasons import ReasonGroup
from eval_pipelines.spec import OVERALL
from eval_pipelines.tasks import task_named
from eval_pipelines.validation import CheckResult


@dataclass(frozen=True)
class MetricInfo:
    """A metric's words from the task registry (an estimated row: its realized metric's)."""

    name: str
    title: str
    direction: str
    estimated: bool = False


@dataclass(frozen=True)
class HeadlineRow:
    """One version's value of one metric on all traffic, with its interval."""

    version: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True)
class EstimateRow:
    """A label-free estimate beside the realized value of the same metric (all traffic)."""

    version: str
    metric: str
    estimated: float
    estimated_low: float
    estimated_high: float
    realized: float
    realized_low: float
    realized_high: float


@dataclass(frozen=True)
class Lineage:
    """Where the numbers came from (``run.json``): enough to find and re-run the evaluation."""

    spec_hash: str = ""
    rows: int | None = None
    labeled_rows: int | None = None
    content_hash: str = ""
    mlflow_run: str | None = None
    dagster_run: str | None = None
    code_version: str = ""
    created_at: str = ""
    seeds: str = ""
    cost: str = ""  # the warehouse queries in total (run.json ``cost``)


@dataclass
class ReportModel:
    """Everything both reports show, in the order they show it."""

    model: str
    task: str
    week: str
    window: str
    decision: str
    headline: str  # the verdict in one sentence
    candidate: str | None
    baseline: str | None
    level: float
    alpha: float
    summary: list[str]
    groups: list[ReasonGroup]
    reason_count: int
    headline_rows: list[HeadlineRow]
    metrics: dict[str, MetricInfo]
    # One row per (slice, metric) of comparison.parquet, or None without a ``compare``.
    comparison: pd.DataFrame | None
    tests: int  # slice x metric tests the q-values adjust across
    drift_skipped: bool  # drift configured but no reference data
    drift: pd.DataFrame | None  # the rows each report shows (None: no drift section)
    checks: list[CheckResult]
    checks_passed: bool
    coverage: pd.DataFrame  # label coverage per version and slice
    estimates: list[EstimateRow]
    rows: int
    labeled_rows: int
    content_hash: str
    small_slices: int
    min_slice_size: int
    count_unit: str
    intervals: str
    forest_metrics: list[str]  # the metrics whose per-slice deltas are plotted
    lineage: Lineage = field(default_factory=Lineage)
    # The aggregates behind the plots (curves.parquet; docs/curves.md) and the task's own
    # tables by name (multiclass: ``confusion``), drawn by eval_pipelines.report_curves.
    curves: pd.DataFrame | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    # The model's trend dashboard relative to this report, when the folder layout puts one
    # beside it (eval_pipelines.report_artifacts.dashboard_link); None: no link.
    dashboard: str | None = None

    @property
    def checks_in_gx(self) -> int:
        return sum(1 for r in self.checks if getattr(r, "engine", "sql") == "gx")


def metric_infos(task: str, names: list[str]) -> dict[str, MetricInfo]:
    """Titles and directions of ``names`` from the task's registry."""
    entry = task_named(task).metric
    infos = {}
    for name in dict.fromkeys(names):
        metric = entry(base_metric(name))
        infos[name] = MetricInfo(name, metric.title, metric.direction, is_estimated(name))
    return infos


def estimate_rows(metrics: pd.DataFrame) -> list[EstimateRow]:
    """Each ``estimated_<metric>`` row on all traffic beside its realized ``<metric>`` row."""
    overall = metrics[metrics["slice"] == OVERALL].set_index(["model_version", "metric"])
    rows = []
    for (version, name), row in overall.iterrows():
        if not is_estimated(name) or (version, base_metric(name)) not in overall.index:
            continue
        realized = overall.loc[(version, base_metric(name))]
        rows.append(
            EstimateRow(
                str(version),
                str(name),
                float(row["value"]),
                float(row["ci_low"]),
                float(row["ci_high"]),
                float(realized["value"]),
                float(realized["ci_low"]),
                float(realized["ci_high"]),
            )
        )
    return rows


def forest_metrics(spec: Any, comparison: pd.DataFrame | None, limit: int = 4) -> list[str]:
    """The metrics a forest plot shows: those the gates judge, else the spec's first ones;
    only metrics compared between versions, at most ``limit``."""
    if comparison is None or comparison.empty:
        return []
    compared = set(comparison["metric"])
    gated = [g.metric for g in spec.metric_gates]
    judged = [m for m in dict.fromkeys(gated) if m in compared]
    return (judged or [m for m in spec.metrics if m in compared])[:limit]


def lineage_of(record: Mapping[str, Any] | None) -> Lineage:
    """The lineage footer from a ``run.json`` record (missing fields stay empty)."""
    if not record:
        return Lineage()
    fingerprint = record.get("data_fingerprint") or {}
    code = record.get("code_version") or {}
    runs = record.get("runs") or {}
    commit = code.get("git_commit")
    version = f"eval-pipelines {code.get('package', '?')}"
    if commit:
        version += f", commit {commit[:12]}" + (
            " (uncommitted changes)" if code.get("git_dirty") == "yes" else ""
        )
    seeds = record.get("seeds") or {}
    return Lineage(
        spec_hash=str(record.get("spec_hash") or ""),
        rows=fingerprint.get("rows"),
        labeled_rows=fingerprint.get("labeled_rows"),
        content_hash=str(fingerprint.get("content_hash") or ""),
        mlflow_run=runs.get("mlflow_run"),
        dagster_run=runs.get("dagster_run"),
        code_version=version,
        created_at=str(record.get("created_at") or ""),
        seeds=", ".join(f"{k} {v}" for k, v in seeds.items()),
        cost=cost_line(record.get("cost")),
    )


def cost_line(cost: Mapping[str, Any] | None) -> str:
    """``25 queries, 3.3 s, 226,081 rows scanned (4 not counted)``; empty without a record."""
    if not cost or not cost.get("queries"):
        return ""
    text = f"{cost['queries']:,} queries, {float(cost.get('seconds') or 0):.1f} s"
    if cost.get("rows_scanned") is not None:
        text += f", {int(cost['rows_scanned']):,} rows scanned"
        if cost.get("unmeasured"):
            text += f" ({int(cost['unmeasured']):,} not counted)"
    else:
        text += ", rows scanned not reported by the engine"
    return text
