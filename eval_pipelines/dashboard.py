"""A model's trend dashboard: one static page across every evaluated week.

Built from the model's artifact folders alone, ``<root>/<model>/<week>/`` (where the Dagster
assets write them, and ``eval-pipelines run --out <root>/<model>/<week>``), and written
beside them as ``<root>/<model>/dashboard.html``, so each week links its ``report.html``
relatively and every report links back (``report_artifacts.dashboard_link``). Nothing is
read from the warehouse or MLflow.

The page is self-contained like the report (inline style, inline SVG from
:mod:`eval_pipelines.svg`, no script, no request) and built from aggregates: its size grows with
weeks x versions x metrics and weeks x features, a few hundred bytes each, never with rows.
It shows, per week:

- every headline metric (the spec's ``metrics``, all traffic) per version, with its interval
  band;
- drift: the statistic of each feature's deciding method (``drifted_rows``' one definition),
  drifted weeks marked;
- label coverage per version (all traffic);
- the verdict history: week, versions, decision and the reasons that were not a pass.
"""

import json
import math
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

from eval_pipelines.drift_stats import drifted_rows
from eval_pipelines.errors import EvalError
from eval_pipelines.gates import PASS, Reason, no_reference_data
from eval_pipelines.reasons import group_reasons
from eval_pipelines.report_artifacts import DASHBOARD_FILE
from eval_pipelines.report_model import metric_infos
from eval_pipelines.spec import OVERALL
from eval_pipelines.svg import PALETTE, Axis, Plot
from eval_pipelines.vocabulary import level_label

# What a week needs to appear on the page.
WEEK_FILES = ("verdict.json", "run.json", "metrics.parquet", "drift.parquet", "coverage.parquet")
DRIFTED_COLOR = "#dc2626"

_ENVIRONMENT = Environment(
    loader=PackageLoader("eval_pipelines", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class WeekResult:
    """What the dashboard reads of one week's artifact folder."""

    week: str
    report: str  # report.html relative to the dashboard
    decision: str
    candidate: str | None
    baseline: str | None
    reasons: list[Reason]
    spec: dict[str, Any]
    metrics: pd.DataFrame  # all-traffic rows of metrics.parquet
    drift: pd.DataFrame  # the deciding rows of drift.parquet
    drift_judged: bool
    coverage: pd.DataFrame  # all-traffic rows of coverage.parquet


class WeekAxis(Axis):
    """A numeric axis over week indices ``0..n-1`` whose ticks are the week labels."""

    def __init__(self, weeks: list[str], label: str = "week") -> None:
        super().__init__(label, -0.5, len(weeks) - 0.5)
        self.weeks = weeks

    def ticks(self) -> list[tuple[float, str]]:
        step = max(1, math.ceil(len(self.weeks) / 8))  # at most ~8 labels fit the width
        return [(self.fraction(i), w) for i, w in enumerate(self.weeks) if i % step == 0]


def week_folders(model_folder: Path) -> list[Path]:
    """The ``<week>/`` folders (named by their Monday) holding a complete evaluation, by week."""
    if not model_folder.is_dir():
        return []
    folders = []
    for child in model_folder.iterdir():
        try:
            date.fromisoformat(child.name)
        except ValueError:
            continue
        if child.is_dir() and all((child / name).is_file() for name in WEEK_FILES):
            folders.append(child)
    return sorted(folders, key=lambda path: path.name)


def read_week(folder: Path) -> WeekResult:
    verdict = json.loads((folder / "verdict.json").read_text())
    record = json.loads((folder / "run.json").read_text())
    metrics = pd.read_parquet(folder / "metrics.parquet")
    drift = pd.read_parquet(folder / "drift.parquet")
    coverage = pd.read_parquet(folder / "coverage.parquet")
    judged = not drift.empty and not no_reference_data(drift)
    column = "decides" if "decides" in drift else "default"
    deciding = drift[drift[column].eq(True)] if judged and column in drift else drift.iloc[:0]
    drifted = drifted_rows(drift)
    marked = set(zip(drifted.get("feature", []), drifted.get("method", []), strict=True))
    deciding = deciding.assign(
        marked=[
            (f, m) in marked for f, m in zip(deciding["feature"], deciding["method"], strict=True)
        ]
    )
    return WeekResult(
        week=folder.name,
        report=f"{folder.name}/report.html",
        decision=verdict["decision"],
        candidate=verdict.get("candidate"),
        baseline=verdict.get("baseline"),
        reasons=[Reason(**reason) for reason in verdict.get("reasons", [])],
        spec=record.get("spec") or {},
        metrics=metrics[metrics["slice"] == OVERALL],
        drift=deciding,
        drift_judged=judged,
        coverage=coverage[coverage["slice"] == OVERALL],
    )


def read_weeks(root: str | os.PathLike, model: str) -> list[WeekResult]:
    """Every evaluated week of ``model`` under ``root``; one sentence when there is none."""
    folder = Path(root) / model
    weeks = [read_week(path) for path in week_folders(folder)]
    if not weeks:
        raise EvalError(
            f"{folder}: no evaluated week of {model} here (folders <YYYY-MM-DD>/ holding "
            f"{', '.join(WEEK_FILES)}); evaluate a week first or pass --out-root"
        )
    return weeks


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _versions(weeks: list[WeekResult]) -> list[str]:
    """Every version seen, baseline then candidate first (the latest week's), then the rest."""
    seen = list(dict.fromkeys(v for w in weeks for v in w.metrics["model_version"].astype(str)))
    last = weeks[-1]
    first = [v for v in (last.baseline, last.candidate) if v in seen]
    return first + [v for v in seen if v not in first]


def metric_plot(weeks: list[WeekResult], metric: str, title: str, direction: str, level: str):
    """One metric over the weeks: per version a line, its interval band and one marker per
    week (hover: value and interval)."""
    labels = [w.week for w in weeks]
    versions = _versions(weeks)
    series = {}
    for version in versions:
        values, lows, highs = [], [], []
        for w in weeks:
            row = w.metrics[
                (w.metrics["metric"] == metric)
                & (w.metrics["model_version"].astype(str) == version)
            ]
            found = not row.empty
            values.append(float(row["value"].iloc[0]) if found else math.nan)
            lows.append(float(row["ci_low"].iloc[0]) if found else math.nan)
            highs.append(float(row["ci_high"].iloc[0]) if found else math.nan)
        if any(math.isfinite(v) for v in values):
            series[version] = (values, lows, highs)
    if not series:
        return None
    everything = [x for triple in series.values() for column in triple for x in column]
    plot = Plot(
        WeekAxis(labels),
        Axis.covering(everything, f"{title} ({direction})"),
        title=f"{title}: all traffic, {level} interval bands",
        height=300,
    )
    xs = list(range(len(labels)))
    for i, (version, (values, lows, highs)) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        plot.band(xs, lows, highs, color=color)
        plot.line(xs, values, label=version, color=color)
        tips = [
            f"{version} · {week}: {_num(v)} [{_num(lo)}, {_num(hi)}]"
            for week, v, lo, hi in zip(labels, values, lows, highs, strict=True)
        ]
        plot.points(xs, values, color=color, titles=tips)
    return plot.render(f"{title} per week and version, with {level} intervals")


def drift_plot(weeks: list[WeekResult], method: str) -> str | None:
    """The statistic of every feature decided by ``method``, per week; drifted weeks red."""
    labels = [w.week for w in weeks]
    features = sorted(
        {f for w in weeks for f in w.drift.loc[w.drift["method"] == method, "feature"]}
    )
    if not features:
        return None
    rows = {
        (w.week, r.feature): r
        for w in weeks
        for r in w.drift[w.drift["method"] == method].itertuples(index=False)
    }
    values = [float(r.statistic) for r in rows.values()]
    # A test's threshold bounds its p-value, not the statistic drawn: only a distance's
    # threshold (no p-value) goes on the plot.
    thresholds = [
        float(r.threshold)
        for r in rows.values()
        if pd.notna(r.threshold) and pd.isna(getattr(r, "p_value", math.nan))
    ]
    plot = Plot(
        WeekAxis(labels),
        Axis.covering(values + thresholds, f"{method} statistic"),
        title=f"Drift by {method}: red markers are drifted weeks",
        height=300,
    )
    xs = list(range(len(labels)))
    for i, feature in enumerate(features):
        color = PALETTE[i % len(PALETTE)]
        found = [rows.get((week, feature)) for week in labels]
        stats = [float(r.statistic) if r is not None else math.nan for r in found]
        plot.line(xs, stats, label=feature, color=color)
        plot.points(
            xs,
            stats,
            color=color,
            colors=[DRIFTED_COLOR if r is not None and r.marked else color for r in found],
            titles=[
                f"{feature} · {week}: {_num(s)}"
                + (" (drifted)" if r is not None and r.marked else "")
                for week, s, r in zip(labels, stats, found, strict=True)
            ],
            radius=4.5,
        )
    if thresholds and len(set(thresholds)) == 1 and len(thresholds) == len(rows):
        # one threshold for every feature and week: draw it
        plot.reference(thresholds[0], vertical=False, color=DRIFTED_COLOR)
    return plot.render(f"{method} statistic per feature and week")


def coverage_plot(weeks: list[WeekResult]) -> str | None:
    labels = [w.week for w in weeks]
    versions = list(
        dict.fromkeys(v for w in weeks for v in w.coverage["model_version"].astype(str))
    )
    if not versions:
        return None
    plot = Plot(
        WeekAxis(labels), Axis("label coverage", 0.0, 1.0), title="Label coverage", height=260
    )
    xs = list(range(len(labels)))
    for i, version in enumerate(versions):
        color = PALETTE[i % len(PALETTE)]
        ys = []
        for w in weeks:
            row = w.coverage[w.coverage["model_version"].astype(str) == version]
            ys.append(float(row["coverage"].iloc[0]) if not row.empty else math.nan)
        plot.line(xs, ys, label=version, color=color)
        plot.points(
            xs,
            ys,
            color=color,
            titles=[
                f"{version} · {week}: {_num(y, 3)}" for week, y in zip(labels, ys, strict=True)
            ],
        )
    return plot.render("Labeled share of predictions per week and version, all traffic")


def _drift_table(weeks: list[WeekResult]) -> dict[str, Any]:
    keys = list(
        dict.fromkeys(
            (r.feature, r.method)
            for w in weeks
            for r in w.drift.sort_values(["feature", "method"]).itertuples(index=False)
        )
    )
    rows = []
    for feature, method in keys:
        cells = []
        for w in weeks:
            match = w.drift[(w.drift["feature"] == feature) & (w.drift["method"] == method)]
            if not w.drift_judged:
                cells.append(("not judged", False))
            elif match.empty:
                cells.append(("–", False))
            else:
                row = match.iloc[0]
                cells.append((_num(row["statistic"]), bool(row["marked"])))
        rows.append({"feature": feature, "method": method, "cells": cells})
    return {"weeks": [w.week for w in weeks], "rows": rows}


def _history(weeks: list[WeekResult]) -> list[dict[str, Any]]:
    rows = []
    for w in reversed(weeks):  # the latest week first
        if w.candidate is not None:
            versions = f"{w.candidate} vs {w.baseline}"
        else:
            versions = ", ".join(sorted(set(w.metrics["model_version"].astype(str))))
        open_reasons = [r for r in w.reasons if r.outcome != PASS]
        rows.append(
            {
                "week": w.week,
                "report": w.report,
                "versions": versions,
                "decision": w.decision,
                "reasons": [
                    f"{g.outcome} · {g.gate}: {g.message}" for g in group_reasons(open_reasons)
                ],
            }
        )
    return rows


def render_dashboard(model: str, weeks: list[WeekResult]) -> str:
    """``dashboard.html`` of ``model`` from its weeks (oldest first)."""
    spec = weeks[-1].spec
    task = str(spec.get("task", ""))
    level = level_label(float((spec.get("confidence") or {}).get("level", 0.95)))
    names = [
        m for m in spec.get("metrics", []) if any((w.metrics["metric"] == m).any() for w in weeks)
    ]
    infos = metric_infos(task, names) if task else {}
    metric_plots = [
        (name, plot)
        for name, plot in (
            (name, metric_plot(weeks, name, infos[name].title, infos[name].direction, level))
            for name in names
        )
        if plot
    ]
    methods = sorted({m for w in weeks for m in w.drift["method"]})
    drift_plots = [plot for plot in (drift_plot(weeks, m) for m in methods) if plot]
    context = {
        "model": model,
        "task": task,
        "level": level,
        "weeks": [w.week for w in weeks],
        "metric_plots": metric_plots,
        "drift_plots": drift_plots,
        "drift_table": _drift_table(weeks),
        "coverage_plot": coverage_plot(weeks),
        "coverage_rows": [
            {
                "week": w.week,
                "cells": [
                    (
                        str(r.model_version),
                        f"{int(r.labeled):,} / {int(r.rows):,}",
                        _num(r.coverage, 3),
                    )
                    for r in w.coverage.itertuples(index=False)
                ],
            }
            for w in weeks
        ],
        "history": _history(weeks),
    }
    return _ENVIRONMENT.get_template("dashboard.html.j2").render(context)


def write_dashboard(root: str | os.PathLike, model: str) -> Path:
    """Build ``<root>/<model>/dashboard.html`` from the model's week folders, written through a
    temporary file renamed into place; return its path."""
    weeks = read_weeks(root, model)
    target = Path(root) / model / DASHBOARD_FILE
    staging = target.with_name(f".{DASHBOARD_FILE}.tmp-{os.getpid()}")
    try:
        staging.write_text(render_dashboard(model, weeks), encoding="utf-8")
        staging.replace(target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return target
