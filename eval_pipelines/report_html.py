"""``report.html``: the report model as one self-contained page.

Every style and script is inline and every plot is inline SVG (:mod:`eval_pipelines.svg`), so
the page opens from disk or an object store with no request leaving it. Its size is bounded
by slices and metrics, never by rows: the slice table keeps at most :data:`MAX_SLICE_ROWS`
rows (significant changes first, the rest counted; all in comparison.parquet) and a forest
plot at most :data:`FOREST_SLICES` slices. A section without data is left out, not shown
empty. The template is ``eval_pipelines/templates/report.html.j2`` (Jinja2, autoescaped).
"""

import math
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

from eval_pipelines.report_curves import report_curves
from eval_pipelines.report_model import ReportModel
from eval_pipelines.spec import OVERALL
from eval_pipelines.svg import Axis, Plot
from eval_pipelines.tasks import task_named
from eval_pipelines.vocabulary import level_label

# Slice x metric rows in the table: ~0.5 KB each, so the table stays below ~1 MB whatever the
# number of slices; the significant ones come first, so none is lost under the cap.
MAX_SLICE_ROWS = 2000
FOREST_SLICES = 25  # slices per forest plot: all traffic, then the largest regressions
LOWEST_COVERAGE = 20  # slices listed by lowest label coverage

REGRESSED, IMPROVED = "regressed", "improved"
OUTCOME_COLOR = {REGRESSED: "#dc2626", IMPROVED: "#16a34a"}
NEUTRAL = "#6b7280"
# Banner style per decision; an unknown decision gets the neutral one.
DECISION_STYLE = {
    "ship": "ship",
    "ship_with_guardrails": "guardrails",
    "hold": "hold",
    "inconclusive": "inconclusive",
}
OUTCOME_TITLES = {
    "hold": "Why it is held",
    "inconclusive": "Why it is inconclusive",
    "warn": "Guardrails",
    "pass": "Gates that passed",
}

_ENVIRONMENT = Environment(
    loader=PackageLoader("eval_pipelines", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def num(value: Any, digits: int = 4) -> str:
    """A value for a table cell; an en dash when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def interval(low: Any, high: Any, digits: int = 4) -> str:
    return f"[{num(low, digits)}, {num(high, digits)}]"


def qvalue(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.2g}"


def _sort_key(value: Any) -> str:
    """A cell's ``data-v``: numbers sort as numbers, missing values last."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def _reason_sections(report: ReportModel) -> list[dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {}
    for group in report.groups:
        section = sections.setdefault(
            group.outcome,
            {
                "outcome": group.outcome,
                "title": OUTCOME_TITLES.get(group.outcome, group.outcome.capitalize()),
                "groups": [],
            },
        )
        section["groups"].append(group)
    return list(sections.values())


def _headline(report: ReportModel) -> dict[str, Any]:
    """One row per metric, one value column per version, and the overall delta."""
    versions = list(dict.fromkeys(r.version for r in report.headline_rows))
    if report.candidate is not None:  # baseline first, then candidate, then others
        ordered = [v for v in (report.baseline, report.candidate) if v in versions]
        versions = ordered + [v for v in versions if v not in ordered]
    cells: dict[str, dict[str, Any]] = {}
    for row in report.headline_rows:
        cells.setdefault(row.metric, {})[row.version] = row
    deltas = {}
    if report.comparison is not None:
        overall = report.comparison[report.comparison["slice"] == OVERALL]
        deltas = {row.metric: row for row in overall.itertuples(index=False)}
    rows = []
    for metric, by_version in cells.items():
        info = report.metrics[metric]
        delta = deltas.get(metric)
        rows.append(
            {
                "title": info.title + (" (estimated, label-free)" if info.estimated else ""),
                "name": metric,
                "direction": info.direction,
                "cells": [
                    (
                        num(by_version[v].value),
                        interval(by_version[v].ci_low, by_version[v].ci_high),
                        f"{by_version[v].n:,}",
                    )
                    if v in by_version
                    else ("–", "", "")
                    for v in versions
                ],
                "delta": None
                if delta is None
                else (
                    f"{delta.delta:+.4f}" if not pd.isna(delta.delta) else "–",
                    interval(delta.delta_ci_low, delta.delta_ci_high),
                    delta.outcome,
                ),
            }
        )
    return {"versions": versions, "rows": rows}


def _slice_rows(report: ReportModel) -> tuple[list[dict[str, Any]], int]:
    """The slice table's rows (significant first, capped) and how many were left out."""
    comparison = report.comparison
    if comparison is None or comparison.empty:
        return [], 0
    rank = comparison["outcome"].map({REGRESSED: 0, IMPROVED: 1}).fillna(2)
    ordered = comparison.assign(_rank=rank).sort_values(
        ["_rank", "q_value", "slice", "metric"], kind="stable", na_position="last"
    )
    shown = ordered.head(MAX_SLICE_ROWS)
    rows = []
    for row in shown.itertuples(index=False):
        info = report.metrics[row.metric]
        rows.append(
            {
                "slice": row.slice,
                "metric": info.title,
                "metric_name": row.metric,
                "direction": info.direction,
                "baseline": (num(row.baseline), _sort_key(row.baseline)),
                "candidate": (num(row.candidate), _sort_key(row.candidate)),
                "delta": (
                    f"{row.delta:+.4f}" if not pd.isna(row.delta) else "–",
                    _sort_key(row.delta),
                ),
                "ci": interval(row.delta_ci_low, row.delta_ci_high),
                "q": (qvalue(row.q_value), _sort_key(row.q_value)),
                "n": (f"{int(row.n):,}", str(int(row.n))),
                "outcome": row.outcome,
                "regressed": row.outcome == REGRESSED,
            }
        )
    return rows, len(comparison) - len(shown)


def forest_plot(report: ReportModel, metric: str) -> str | None:
    """Candidate - baseline per slice for ``metric``, with its delta interval: all traffic
    first, then the largest regressions (the registry's direction says which way is worse)."""
    comparison = report.comparison
    if comparison is None:
        return None
    rows = comparison[(comparison["metric"] == metric) & comparison["delta"].notna()]
    if rows.empty:
        return None
    entry = task_named(report.task).metric(metric)
    worse = entry.regression(rows["delta"], rows["baseline"], rows["candidate"])
    rows = rows.assign(_overall=rows["slice"] != OVERALL, _worse=-worse).sort_values(
        ["_overall", "_worse"], kind="stable"
    )
    rows = rows.head(FOREST_SLICES)
    labels = [str(s) for s in rows["slice"]]
    if len(set(labels)) < len(labels):  # categories must be distinct
        labels = [f"{label} ({i})" for i, label in enumerate(labels)]
    values = [*rows["delta"], *rows["delta_ci_low"], *rows["delta_ci_high"], 0.0]
    info = report.metrics[metric]
    plot = Plot(
        Axis.covering(values, f"{info.title}: candidate − baseline ({info.direction})"),
        Axis(categories=labels),
        title=f"{info.title}: {report.candidate} − {report.baseline} per slice",
        height=72 + 18 * len(labels),
        margin_left=190,
    )
    plot.reference(0.0)
    colors = [OUTCOME_COLOR.get(o, NEUTRAL) for o in rows["outcome"]]
    tips = [
        f"{s}: {d:+.4f} {interval(lo, hi)}, {o}"
        for s, d, lo, hi, o in zip(
            rows["slice"],
            rows["delta"],
            rows["delta_ci_low"],
            rows["delta_ci_high"],
            rows["outcome"],
            strict=True,
        )
    ]
    plot.intervals(
        labels,
        [*rows["delta_ci_low"]],
        [*rows["delta_ci_high"]],
        centers=[*rows["delta"]],
        colors=colors,
        titles=tips,
    )
    level = level_label(report.level)
    return plot.render(f"{level} intervals of the delta of {info.title} per slice")


def _drift_rows(report: ReportModel) -> list[dict[str, Any]]:
    if report.drift is None:
        return []
    return [
        {
            "feature": row.feature,
            "method": row.method,
            "statistic": num(row.statistic),
            "p_value": qvalue(row.p_value),
            "threshold": row.threshold,
            "drifted": bool(row.drifted),
            "n": f"{int(row.n_reference):,} / {int(row.n_current):,}"
            if hasattr(row, "n_reference")
            else "",
        }
        for row in report.drift.itertuples(index=False)
    ]


def _coverage(report: ReportModel) -> dict[str, Any] | None:
    coverage = report.coverage
    if coverage is None or coverage.empty:
        return None
    overall = coverage[coverage["slice"] == OVERALL]
    slices = coverage[coverage["slice"] != OVERALL].sort_values("coverage", kind="stable")
    rows = [*overall.itertuples(index=False), *slices.head(LOWEST_COVERAGE).itertuples(index=False)]
    return {
        "rows": [
            {
                "version": r.model_version,
                "slice": r.slice,
                "rows": f"{int(r.rows):,}",
                "labeled": f"{int(r.labeled):,}",
                "coverage": "–" if pd.isna(r.coverage) else f"{r.coverage:.1%}",
            }
            for r in rows
        ],
        "more": max(len(slices) - LOWEST_COVERAGE, 0),
    }


def _curves(report: ReportModel) -> dict[str, Any]:
    """The curve plots (:mod:`eval_pipelines.report_curves`); drifted features first."""
    drifted = []
    if report.drift is not None and "drifted" in report.drift:
        drifted = list(
            dict.fromkeys(report.drift.loc[report.drift["drifted"].astype(bool), "feature"])
        )
    return report_curves(
        report.curves,
        report.tables,
        report.comparison,
        report.baseline,
        report.candidate,
        first_facets=drifted,
    )


def render_html(report: ReportModel) -> str:
    """``report.html`` of a report model."""
    slice_rows, slices_left_out = _slice_rows(report)
    forests = [
        plot for plot in (forest_plot(report, metric) for metric in report.forest_metrics) if plot
    ]
    checks = report.checks
    notable = [r for r in checks if not r.passed]
    context = {
        "r": report,
        "level": level_label(report.level),
        "style": DECISION_STYLE.get(report.decision, "other"),
        "sections": _reason_sections(report),
        "headline": _headline(report),
        "slice_rows": slice_rows,
        "slices_left_out": slices_left_out,
        "max_slice_rows": MAX_SLICE_ROWS,
        "forests": forests,
        "forest_slices": FOREST_SLICES,
        "drift_rows": _drift_rows(report),
        "checks": checks,
        "notable_checks": notable,
        "coverage": _coverage(report),
        "estimates": [
            {
                "version": e.version,
                "title": report.metrics[e.metric].title,
                "estimated": num(e.estimated),
                "estimated_ci": interval(e.estimated_low, e.estimated_high),
                "realized": num(e.realized),
                "realized_ci": interval(e.realized_low, e.realized_high),
                "gap": num(e.estimated - e.realized)
                if not (pd.isna(e.estimated) or pd.isna(e.realized))
                else "–",
            }
            for e in report.estimates
        ],
        "num": num,
        "curves": _curves(report),
    }
    return _ENVIRONMENT.get_template("report.html.j2").render(context)
