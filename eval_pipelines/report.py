"""The human report (``report.md``): verdict first, then the evidence, in plain words."""

import math

import pandas as pd

from eval_pipelines.drift_stats import drift_evidence, drifted_rows
from eval_pipelines.estimation import base_metric, is_estimated
from eval_pipelines.gates import HOLD, INCONCLUSIVE, PASS, WARN, Verdict, no_reference_data
from eval_pipelines.reasons import group_reasons
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
    entry = task_named(task).metric
    overall = metrics[metrics["slice"] == OVERALL]
    rows = []
    for row in overall.itertuples(index=False):
        rows.append(
            {
                "version": row.model_version,
                "metric": entry(base_metric(row.metric)).title
                + (" (estimated, label-free)" if is_estimated(row.metric) else ""),
                "value": _num(row.value),
                f"{level_label(level)} CI": f"[{_num(row.ci_low)}, {_num(row.ci_high)}]",
                "n": f"{row.n:,}",
            }
        )
    return pd.DataFrame(rows)


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


def render_markdown(evaluation, verdict: Verdict) -> str:
    spec = evaluation.spec
    lines = [
        f"# {spec.model}: week of {evaluation.window.label}",
        "",
        f"**Verdict: {HEADLINE[verdict.decision]}**",
        "",
    ]
    if spec.compare:
        lines += [
            f"Candidate `{spec.compare.candidate}` against baseline `{spec.compare.baseline}`, "
            f"window {evaluation.window}.",
            "",
        ]
    lines += [*map(_inline, summary(evaluation)), ""]
    # Per gate and outcome the worst case and "and N more"; verdict.json lists every reason.
    groups = group_reasons(verdict.reasons)
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
    if len(groups) < len(verdict.reasons):
        lines += [
            f"Every one of the {len(verdict.reasons)} gate results is listed in verdict.json.",
            "",
        ]

    headline = headline_metrics(evaluation.metrics, spec.task, spec.confidence.level)
    lines += ["## Headline metrics (all traffic)", "", _table(headline)]

    if evaluation.comparison is not None:
        comparison = evaluation.comparison
        significant = comparison[comparison["outcome"].isin(["regressed", "improved"])]
        lines += [
            "## Significant changes, candidate vs baseline",
            "",
            "Paired on the same requests; q-values are Benjamini-Hochberg adjusted across "
            f"all {int(comparison['p_value'].notna().sum())} slice x metric tests "
            f"(significant at q <= {spec.confidence.alpha}).",
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
                        f"delta [{level_label(spec.confidence.level)} CI]": [
                            f"{d:+.4f} [{_num(lo)}, {_num(hi)}]"
                            for d, lo, hi in zip(
                                shown["delta"],
                                shown["delta_ci_low"],
                                shown["delta_ci_high"],
                                strict=True,
                            )
                        ],
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
    drift = evaluation.drift
    if no_reference_data(drift):
        lines += ["## Drift (current week vs reference weeks)", "", SKIPPED_DRIFT[2:], ""]
    elif not drift.empty:
        lines += ["## Drift (current week vs reference weeks)", ""]
        view = drift[drift.get("decides", drift["default"]) | (drift["method"] == "psi")]
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
    small = evaluation.metrics[evaluation.metrics["status"] != "ok"][
        ["model_version", "slice", "n"]
    ]
    small = small.drop_duplicates()
    checks = evaluation.validation.results
    in_gx = sum(1 for r in checks if getattr(r, "engine", "sql") == "gx")
    lines += [
        "## Input checks",
        "",
        f"- {'Passed' if evaluation.validation.passed else 'FAILED'}: {len(checks)} checks "
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
        f"- Rows in window: {evaluation.fingerprint.get('rows', 0):,}; labeled: "
        f"{evaluation.fingerprint.get('labeled_rows', 0):,}; content hash "
        f"`{evaluation.fingerprint.get('content_hash', '')}`.",
        f"- Slices below min_slice_size ({spec.min_slice_size} "
        f"{task_named(spec.task).count_unit}), reported but not tested: {len(small)}.",
        "",
        intervals_note(spec),
        "",
    ]
    return "\n".join(lines)
