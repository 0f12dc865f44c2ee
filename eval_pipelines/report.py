"""The human report (``report.md``): verdict first, then the evidence, in plain words.

:func:`build_report_model` builds the report model (:mod:`eval_pipelines.report_model`) once
per run; :func:`markdown` renders it as ``report.md`` and
:func:`eval_pipelines.report_html.render_html` as ``report.html``.
"""

import math

import pandas as pd

from eval_pipelines.drift_stats import drift_evidence, drifted_rows
from eval_pipelines.gates import HOLD, INCONCLUSIVE, PASS, WARN, Verdict, no_reference_data
from eval_pipelines.reasons import group_reasons
from eval_pipelines.report_model import (
    HeadlineRow,
    MetricInfo,
    ReportModel,
    estimate_rows,
    forest_metrics,
    lineage_of,
    metric_infos,
)
from eval_pipelines.spec import OVERALL
from eval_pipelines.tasks import task_named
from eval_pipelines.vocabulary import level_label

SKIPPED_DRIFT = (
    "- Drift not judged: no predictions in the reference weeks (a model's first weeks); "
    "drift gates are inconclusive."
)

MAX_CHANGES = 40  # significant changes shown; the rest are counted, all in comparison.parquet

HEADLINE = {
    "ship": "SHIP: every gate passed.",
    "hold": "HOLD: at least one gate failed; do not release as is.",
    "inconclusive": "INCONCLUSIVE: no gate failed, but the data cannot support a decision yet.",
    "ship_with_guardrails": "SHIP WITH GUARDRAILS: no blocking gate failed; the warn gates "
    "listed under Guardrails did.",
}


def deltas_with_intervals(rows: pd.DataFrame) -> list[str]:
    """``+0.0123 [-0.0100, 0.0346]`` per comparison row: its delta and the delta's interval."""
    return [
        f"{d:+.4f} [{_num(lo)}, {_num(hi)}]"
        for d, lo, hi in zip(
            rows["delta"], rows["delta_ci_low"], rows["delta_ci_high"], strict=True
        )
    ]


def _num(value: float, digits: int = 4) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def _inline(text: object) -> str:
    """Text from the data (slice values) on one Markdown line: line breaks shown as ``\\n``."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_none_\n"
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = [
        "| " + " | ".join(_inline(v).replace("|", "\\|") for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body]) + "\n"


def headline_metrics(metrics: pd.DataFrame, task: str, level: float = 0.95) -> pd.DataFrame:
    rows = headline_rows(metrics)
    return _headline_frame(rows, metric_infos(task, [r.metric for r in rows]), level)


def _headline_frame(
    rows: list[HeadlineRow], infos: dict[str, MetricInfo], level: float
) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "version": row.version,
                "metric": infos[row.metric].title
                + (" (estimated, label-free)" if infos[row.metric].estimated else ""),
                "value": _num(row.value),
                f"{level_label(level)} CI": f"[{_num(row.ci_low)}, {_num(row.ci_high)}]",
                "n": f"{row.n:,}",
            }
            for row in rows
        ]
    )


def summary(evaluation) -> list[str]:
    """Three plain-language bullets: overall change, where it got worse, what drifted."""
    spec = evaluation.spec
    bullets = []
    comparison = evaluation.comparison
    if comparison is not None and spec.compare is not None:
        overall = comparison[comparison["slice"] == OVERALL]
        better = overall[overall["outcome"] == "improved"]["metric"].tolist()
        worse = overall[overall["outcome"] == "regressed"]["metric"].tolist()
        bullets.append(
            f"- All traffic: `{spec.compare.candidate}` is significantly better on "
            f"{len(better)} of {len(overall)} metrics"
            + (f" ({', '.join(better)})" if better else "")
            + (f" and worse on {', '.join(worse)}" if worse else "")
            + "."
        )
        regressed = comparison[
            (comparison["outcome"] == "regressed") & (comparison["slice"] != OVERALL)
        ]
        if not regressed.empty:
            worst = regressed.loc[regressed["delta"].abs().idxmax()]
            slices = regressed["slice"].nunique()
            bullets.append(
                f"- Worse on {slices} slice(s); the largest: {worst['metric']} on "
                f"{worst['slice']}, {_num(worst['baseline'])} -> {_num(worst['candidate'])}."
            )
        else:
            bullets.append("- No slice is significantly worse.")
    drift = evaluation.drift
    if no_reference_data(drift):
        bullets.append(SKIPPED_DRIFT)
    elif not drift.empty:
        # One definition (drifted_rows): the default method at its threshold, and a gated
        # method at the gate's bound; each drifted feature names the method and numbers.
        evidence: dict[str, list[str]] = {}
        for row in drifted_rows(drift).sort_values(["feature", "method"]).itertuples():
            evidence.setdefault(row.feature, []).append(drift_evidence(row))
        drifted = [f"{feature} ({', '.join(why)})" for feature, why in evidence.items()]
        bullets.append(
            f"- Drifted since the reference weeks: {'; '.join(drifted)}."
            if drifted
            else "- No feature drifted (by its default method at its threshold, or a drift "
            "gate's method at the gate's bound)."
        )
    return bullets


def intervals_note(spec) -> str:
    """How the intervals were computed: each metric under its family's bootstrap, from the
    registry, and the score bins of the metrics that carry a binning error bound."""
    task = task_named(spec.task)
    schemes: dict[str, list[str]] = {}
    for name in spec.metrics:
        metric = task.metric(name)
        how = metric.family.bootstrap.resampled.format(buckets=spec.confidence.buckets)
        schemes.setdefault(how, []).append(metric.title)
    conf = spec.confidence
    text = (
        f"Intervals: {level_label(conf.level)} percentile bootstrap, {conf.replicates} "
        f"replicates, seed {conf.seed}; "
        + "; ".join(f"{how} for {', '.join(titles)}" for how, titles in schemes.items())
        + "."
    )
    if spec.estimation is not None:
        text += (
            " Estimated (label-free) metrics: CBPE, scores isotonic-calibrated on the labeled "
            f"rows of the {spec.estimation.reference_weeks} weeks before; their intervals "
            "redraw this week's score-histogram cells with the calibration fixed "
            "(docs/estimation.md)."
        )
    binned = [task.metric(name).title for name in spec.metrics if task.metric(name).error_bound]
    if binned:
        text += (
            f" {' and '.join(binned)} use {spec.score_bins} score bins (see `error_bound` in "
            "metrics.parquet)."
        )
    return text


def headline_rows(metrics: pd.DataFrame) -> list[HeadlineRow]:
    """Every version's value of every metric on all traffic, in metrics.parquet's order."""
    overall = metrics[metrics["slice"] == OVERALL]
    return [
        HeadlineRow(str(r.model_version), str(r.metric), r.value, r.ci_low, r.ci_high, int(r.n))
        for r in overall.itertuples(index=False)
    ]


def build_report_model(evaluation, verdict: Verdict, record: dict | None = None) -> ReportModel:
    """The report model of an evaluation and its verdict; ``record`` is its ``run.json``
    (the lineage footer; without it the footer is empty)."""
    spec = evaluation.spec
    comparison = evaluation.comparison
    drift = evaluation.drift
    skipped = no_reference_data(drift)
    drift_view = None
    if not skipped and not drift.empty:
        drift_view = drift[drift.get("decides", drift["default"]) | (drift["method"] == "psi")]
    small = evaluation.metrics[evaluation.metrics["status"] != "ok"][
        ["model_version", "slice", "n"]
    ].drop_duplicates()
    names = [*evaluation.metrics["metric"]]
    if comparison is not None:
        names += [*comparison["metric"]]
    return ReportModel(
        model=spec.model,
        task=spec.task,
        week=evaluation.window.label,
        window=str(evaluation.window),
        decision=verdict.decision,
        headline=HEADLINE.get(
            verdict.decision, f"{verdict.decision.replace('_', ' ').upper()}: see the gates below."
        ),
        candidate=spec.compare.candidate if spec.compare else None,
        baseline=spec.compare.baseline if spec.compare else None,
        level=spec.confidence.level,
        alpha=spec.confidence.alpha,
        summary=summary(evaluation),
        groups=group_reasons(verdict.reasons),
        reason_count=len(verdict.reasons),
        headline_rows=headline_rows(evaluation.metrics),
        metrics=metric_infos(spec.task, names),
        comparison=comparison,
        tests=int(comparison["p_value"].notna().sum()) if comparison is not None else 0,
        drift_skipped=skipped,
        drift=drift_view,
        checks=list(evaluation.validation.results),
        checks_passed=evaluation.validation.passed,
        coverage=evaluation.coverage,
        estimates=estimate_rows(evaluation.metrics),
        rows=evaluation.fingerprint.get("rows", 0),
        labeled_rows=evaluation.fingerprint.get("labeled_rows", 0),
        content_hash=evaluation.fingerprint.get("content_hash", ""),
        small_slices=len(small),
        min_slice_size=spec.min_slice_size,
        count_unit=task_named(spec.task).count_unit,
        intervals=intervals_note(spec),
        forest_metrics=forest_metrics(spec, comparison),
        lineage=lineage_of(record),
        curves=evaluation.curves,
        tables=evaluation.tables,
    )


def render_markdown(evaluation, verdict: Verdict) -> str:
    """``report.md`` of an evaluation and its verdict (no lineage: the Markdown has none)."""
    return markdown(build_report_model(evaluation, verdict))


def markdown(report: ReportModel) -> str:
    """``report.md`` from the report model."""
    lines = [
        f"# {report.model}: week of {report.week}",
        "",
        f"**Verdict: {report.headline}**",
        "",
    ]
    if report.candidate is not None:
        lines += [
            f"Candidate `{report.candidate}` against baseline `{report.baseline}`, "
            f"window {report.window}.",
            "",
        ]
    lines += [*map(_inline, report.summary), ""]
    # Per gate and outcome the worst case and "and N more"; verdict.json lists every reason.
    groups = report.groups
    blocking = [g for g in groups if g.outcome in (HOLD, INCONCLUSIVE)]
    if blocking:
        lines += ["## Why", ""]
        lines += [_inline(f"- **{g.outcome}** ({g.gate}): {g.message}") for g in blocking]
        lines.append("")
    guardrails = [g for g in groups if g.outcome == WARN]
    if guardrails:
        lines += ["## Guardrails (severity: warn gates that did not pass)", ""]
        lines += [_inline(f"- **warn** ({g.gate}): {g.message}") for g in guardrails]
        lines.append("")
    passed = [g for g in groups if g.outcome == PASS]
    if passed:
        lines += ["## Gates that passed", ""]
        lines += [_inline(f"- {g.gate}: {g.message}") for g in passed]
        lines.append("")
    if len(groups) < report.reason_count:
        lines += [
            f"Every one of the {report.reason_count} gate results is listed in verdict.json.",
            "",
        ]

    headline = _headline_frame(report.headline_rows, report.metrics, report.level)
    lines += ["## Headline metrics (all traffic)", "", _table(headline)]

    if report.comparison is not None:
        comparison = report.comparison
        significant = comparison[comparison["outcome"].isin(["regressed", "improved"])]
        lines += [
            "## Significant changes, candidate vs baseline",
            "",
            "Paired on the same requests; q-values are Benjamini-Hochberg adjusted across "
            f"all {report.tests} slice x metric tests "
            f"(significant at q <= {report.alpha}).",
            "",
        ]
        shown = significant.sort_values(["outcome", "q_value"], ascending=[False, True])
        lines.append(
            _table(
                pd.DataFrame(
                    {
                        "outcome": shown["outcome"],
                        "slice": shown["slice"],
                        "metric": shown["metric"],
                        "baseline": shown["baseline"].map(_num),
                        "candidate": shown["candidate"].map(_num),
                        f"delta [{level_label(report.level)} CI]": deltas_with_intervals(shown),
                        "q": shown["q_value"].map(lambda q: f"{q:.2g}"),
                    }
                ).head(MAX_CHANGES)
            )
        )
        if len(shown) > MAX_CHANGES:
            lines += [
                "",
                f"… and {len(shown) - MAX_CHANGES} more significant changes, left out here "
                "(all in comparison.parquet).",
            ]
    if report.drift_skipped:
        lines += ["## Drift (current week vs reference weeks)", "", SKIPPED_DRIFT[2:], ""]
    elif report.drift is not None:
        lines += ["## Drift (current week vs reference weeks)", ""]
        view = report.drift
        lines.append(
            _table(
                pd.DataFrame(
                    {
                        "feature": view["feature"],
                        "method": view["method"],
                        "statistic": view["statistic"].map(_num),
                        "p-value": view["p_value"].map(lambda p: "–" if pd.isna(p) else f"{p:.2g}"),
                        "threshold": view["threshold"],
                        "drifted": view["drifted"].map({True: "**yes**", False: "no"}),
                    }
                )
            )
        )
    checks = report.checks
    in_gx = report.checks_in_gx
    lines += [
        "## Input checks",
        "",
        f"- {'Passed' if report.checks_passed else 'FAILED'}: {len(checks)} checks "
        f"({in_gx} Great Expectations expectations and {len(checks) - in_gx} SQL checks, all "
        "in the warehouse; details in validation.json).",
        *[
            f"- **Warning** ({r.name}): {r.message}"
            for r in checks
            if not r.blocking and not r.passed
        ],
        "",
        "## Data",
        "",
        f"- Rows in window: {report.rows:,}; labeled: "
        f"{report.labeled_rows:,}; content hash "
        f"`{report.content_hash}`.",
        f"- Slices below min_slice_size ({report.min_slice_size} "
        f"{report.count_unit}), reported but not tested: {report.small_slices}.",
        "",
        report.intervals,
        "",
    ]
    return "\n".join(lines)
