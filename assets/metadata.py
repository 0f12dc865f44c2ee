"""Turning a run's results into Dagster metadata: plain ints, floats, text, Markdown, links.

numpy scalars do not serialize as metadata, so every number goes through ``int()`` or
``float()`` here; undefined values (NaN) are left out rather than shown as numbers. Headline
metrics are floats under stable keys so the UI plots them across partitions.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from dagster import MetadataValue

from eval_pipelines.drift_stats import drifted_rows
from eval_pipelines.gates import PASS
from eval_pipelines.pipeline import Evaluation
from eval_pipelines.query_cost import cost_totals
from eval_pipelines.reasons import group_reasons
from eval_pipelines.runner import RunOutcome
from eval_pipelines.spec import OVERALL

MAX_TABLE_ROWS = 25


def headline_metrics(evaluation: Evaluation) -> dict[str, float]:
    """``{"<version>/<metric>": value}`` for the overall slice, NaN values omitted."""
    metrics = evaluation.metrics
    overall = metrics[metrics["slice"] == OVERALL]
    headline = {}
    for row in overall.itertuples(index=False):
        value = float(row.value)
        if math.isfinite(value):
            headline[f"{row.model_version}/{row.metric}"] = value
    return dict(sorted(headline.items()))


def label_coverage(fingerprint: Mapping[str, Any]) -> float:
    """Labeled rows over all rows of the window (every version); 0.0 for an empty window."""
    rows = int(fingerprint.get("rows", 0))
    return float(int(fingerprint.get("labeled_rows", 0)) / rows) if rows else 0.0


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; pipes and newlines in cells are escaped."""
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _frame_table(frame: pd.DataFrame, columns: Sequence[str], empty: str) -> str:
    if frame.empty:
        return empty
    shown = frame.head(MAX_TABLE_ROWS)
    table = markdown_table(columns, shown[list(columns)].itertuples(index=False))
    if len(frame) > MAX_TABLE_ROWS:
        table += f"\n\n… and {len(frame) - MAX_TABLE_ROWS} more (see the Parquet file)."
    return table


def significant_regressions(comparison: pd.DataFrame | None) -> pd.DataFrame:
    if comparison is None or comparison.empty:
        return pd.DataFrame()
    worse = comparison[comparison["outcome"] == "regressed"]
    return worse.sort_values("q_value")


def significant_improvements(comparison: pd.DataFrame | None) -> int:
    if comparison is None or comparison.empty:
        return 0
    return int((comparison["outcome"] == "improved").sum())


def drifted(drift: pd.DataFrame) -> pd.DataFrame:
    """Rows that make a feature drifted: the engine's one definition (drifted_rows)."""
    return drifted_rows(drift)


def mlflow_link(outcome: RunOutcome) -> dict[str, MetadataValue]:
    """The MLflow run page as a link (the run id as text when the store has no UI), and the
    model's trend run (one point per week) when there is a UI to link to."""
    run = outcome.mlflow_run
    if run is None:
        return {}
    link = MetadataValue.url(run.url) if run.url else MetadataValue.text(run.run_id)
    links = {"mlflow_run": link, "mlflow_run_id": MetadataValue.text(run.run_id)}
    if run.trend_url:
        links["mlflow_trend"] = MetadataValue.url(run.trend_url)
    return links


def cost_metadata(evaluation: Evaluation) -> dict[str, MetadataValue]:
    """The run's query cost in total (run.json ``cost``); null where the engine does not
    report rows or bytes scanned (PostgreSQL)."""
    totals = cost_totals(evaluation.query_costs)

    def count(value: int | None) -> MetadataValue:
        return MetadataValue.int(int(value)) if value is not None else MetadataValue.null()

    return {
        "cost_queries": MetadataValue.int(int(totals["queries"])),
        "cost_seconds": MetadataValue.float(float(totals["seconds"])),
        "cost_rows_scanned": count(totals["rows_scanned"]),
        "cost_bytes_scanned": count(totals["bytes_scanned"]),
    }


def asset_metadata(outcome: RunOutcome) -> dict[str, dict[str, MetadataValue]]:
    """Metadata of each asset of one evaluated week, keyed by asset name."""
    evaluation, verdict, folder = outcome.evaluation, outcome.verdict, outcome.folder
    fingerprint = evaluation.fingerprint
    link = mlflow_link(outcome)
    checks = evaluation.validation.results
    warnings = [c for c in checks if not c.passed and not c.blocking]
    regressions = significant_regressions(evaluation.comparison)
    drift_rows = drifted(evaluation.drift)
    open_reasons = [r for r in verdict.reasons if r.outcome != PASS]
    window = {
        "dagster/row_count": MetadataValue.int(int(fingerprint["rows"])),
        "labeled_rows": MetadataValue.int(int(fingerprint["labeled_rows"])),
        "label_coverage": MetadataValue.float(label_coverage(fingerprint)),
        "min_label_coverage": MetadataValue.float(float(evaluation.spec.min_label_coverage)),
        "rows_per_version": MetadataValue.json(dict(fingerprint["versions"])),
        "data_fingerprint": MetadataValue.text(str(fingerprint["content_hash"])),
        "window": MetadataValue.text(str(evaluation.window)),
        "input_checks": MetadataValue.md(
            markdown_table(
                ["check", "passed", "blocking", "message"],
                ([c.name, c.passed, c.blocking, c.message] for c in checks),
            )
        ),
        "warnings": MetadataValue.int(len(warnings)),
        "validation_file": MetadataValue.path(str(folder / "validation.json")),
    }
    statistics = {
        **{k: MetadataValue.int(int(v)) for k, v in evaluation.statistics.items()},
        "aggregate_seconds": MetadataValue.float(
            round(float(evaluation.timings.get("aggregate_s", 0.0)), 3)
        ),
        **cost_metadata(evaluation),
        "run_record": MetadataValue.path(str(folder / "run.json")),
        "query_costs": MetadataValue.path(str(folder / "queries.json")),
    }
    metrics = {
        **{k: MetadataValue.float(v) for k, v in headline_metrics(evaluation).items()},
        "metric_rows": MetadataValue.int(len(evaluation.metrics)),
        "metrics_file": MetadataValue.path(str(folder / "metrics.parquet")),
    }
    comparison = {
        "significant_regressions": MetadataValue.int(len(regressions)),
        "significant_improvements": MetadataValue.int(
            significant_improvements(evaluation.comparison)
        ),
        "regressions": MetadataValue.md(
            _frame_table(
                regressions,
                ["slice", "metric", "baseline", "candidate", "delta", "q_value"],
                "No significant regression.",
            )
        ),
        "comparison_file": MetadataValue.path(str(folder / "comparison.parquet")),
    }
    if evaluation.spec.compare is not None:
        comparison["baseline"] = MetadataValue.text(evaluation.spec.compare.baseline)
        comparison["candidate"] = MetadataValue.text(evaluation.spec.compare.candidate)
    drift = {
        "drifted_features": MetadataValue.int(int(drift_rows["feature"].nunique()))
        if not drift_rows.empty
        else MetadataValue.int(0),
        "drift": MetadataValue.md(
            _frame_table(
                drift_rows,
                ["feature", "method", "statistic", "threshold", "p_value"],
                "No feature drifted.",
            )
        ),
        "drift_file": MetadataValue.path(str(folder / "drift.parquet")),
    }
    decision = {
        "decision": MetadataValue.text(verdict.decision),
        "holding_reasons": MetadataValue.int(sum(r.outcome == "hold" for r in verdict.reasons)),
        "inconclusive_reasons": MetadataValue.int(
            sum(r.outcome == "inconclusive" for r in verdict.reasons)
        ),
        "guardrail_reasons": MetadataValue.int(sum(r.outcome == "warn" for r in verdict.reasons)),
        "passed_reasons": MetadataValue.int(len(verdict.reasons) - len(open_reasons)),
        "reasons": MetadataValue.md(
            markdown_table(
                ["outcome", "gate", "results", "worst case"],
                ([g.outcome, g.gate, g.count, g.message] for g in group_reasons(open_reasons)),
            )
            if open_reasons
            else "Every gate passed."
        ),
        "verdict_file": MetadataValue.path(str(folder / "verdict.json")),
    }
    report = {
        "report": MetadataValue.md((folder / "report.md").read_text()),
        "report_location": MetadataValue.path(outcome.report_uri),
        # The page to open in a browser, beside report.md (published with it when published).
        "report_html": MetadataValue.path(
            outcome.report_uri.removesuffix("report.md") + "report.html"
        ),
        "alert": MetadataValue.text(outcome.alert),
    }
    by_asset = {
        "window": window,
        "sufficient_statistics": statistics,
        "metrics": metrics,
        "comparison": comparison,
        "drift": drift,
        "verdict": decision,
        "report": report,
    }
    return {name: {**values, **link} for name, values in by_asset.items()}
