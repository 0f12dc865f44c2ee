"""The model card (``model_card.md``): the evaluation summary behind one release decision.

Written beside ``report.md`` in the artifact folder, from the same evaluation and verdict
(metrics, comparison after Benjamini-Hochberg, coverage, fingerprint, reasons), for the
person who signs off a release and the auditor who reads it later. Four parts:

* **What changed**: baseline and candidate versions, the spec hash, the code version.
* **What improved and what regressed**: only changes that are significant after the BH
  correction (q <= ``confidence.alpha``), with the delta and its paired interval.
* **Data used**: the window, rows and label coverage per version, the content fingerprint.
* **Known limitations**: inconclusive gates and guardrails, metrics estimated without labels,
  the error bounds of binned metrics, slices too small to judge, drift not judged.
"""

import pandas as pd

from eval_pipelines.estimation import base_metric, is_estimated
from eval_pipelines.gates import HOLD, INCONCLUSIVE, WARN, Verdict, no_reference_data
from eval_pipelines.lineage import code_version
from eval_pipelines.reasons import group_reasons
from eval_pipelines.report import (
    HEADLINE,
    _inline,
    _num,
    _table,
    deltas_with_intervals,
    headline_metrics,
    intervals_note,
)
from eval_pipelines.spec import OVERALL
from eval_pipelines.tasks import task_named
from eval_pipelines.vocabulary import level_label

MAX_CHANGES = 20  # per list; every row is in comparison.parquet
MAX_SMALL_SLICES = 10


def render_model_card(evaluation, verdict: Verdict) -> str:
    """The model card of ``evaluation`` decided as ``verdict``, as Markdown."""
    spec = evaluation.spec
    title = f"{spec.compare.candidate} vs {spec.compare.baseline}, " if spec.compare else ""
    lines = [
        f"# Model card: {spec.model} ({title}week of {evaluation.window.label})",
        "",
        f"**Release decision: {HEADLINE[verdict.decision]}**",
        "",
    ]
    blocking = [g for g in group_reasons(verdict.blocking) if g.outcome == HOLD]
    if blocking:
        lines += ["Why it holds:", ""]
        lines += [_inline(f"- {g.gate}: {g.message}") for g in blocking]
        lines.append("")
    guardrails = group_reasons(verdict.guardrails)
    if guardrails:
        lines += ["Ship only with these guardrails (`severity: warn` gates that did not pass):", ""]
        lines += [_inline(f"- {g.gate}: {g.message}") for g in guardrails]
        lines.append("")
    lines += _what_changed(evaluation)
    lines += _changes(evaluation)
    lines += _data_used(evaluation)
    lines += _limitations(evaluation, verdict)
    lines += [
        "The full evidence: report.md, verdict.json and the Parquet files beside this card.",
        "",
    ]
    return "\n".join(lines)


def _what_changed(evaluation) -> list[str]:
    spec = evaluation.spec
    code = code_version()
    commit = f", git {code['git_commit']}" if code["git_commit"] else ""
    if spec.compare:
        versions = (
            f"- Baseline `{spec.compare.baseline}` -> candidate `{spec.compare.candidate}` "
            f"({spec.task}), compared on the same requests."
        )
    else:
        evaluated = ", ".join(
            f"`{v}`" for v in sorted(evaluation.metrics["model_version"].unique())
        )
        versions = f"- No baseline (no `compare` in the spec): versions evaluated {evaluated}."
    return [
        "## What changed",
        "",
        versions,
        f"- Spec hash `{spec.fingerprint()}`; eval-pipelines {code['package']}{commit}.",
        "",
        "Headline metrics, all traffic:",
        "",
        _table(headline_metrics(evaluation.metrics, spec.task, spec.confidence.level)),
    ]


def _changes(evaluation) -> list[str]:
    spec = evaluation.spec
    comparison = evaluation.comparison
    if comparison is None or spec.compare is None or comparison.empty:
        return ["## What improved and what regressed", "", "_No comparison: no baseline._", ""]
    tested = int(comparison["p_value"].notna().sum())
    lines = [
        "## What improved and what regressed",
        "",
        f"Significant after Benjamini-Hochberg across all {tested} slice x metric tests "
        f"(q <= {spec.confidence.alpha}); delta is candidate - baseline with its paired "
        f"{level_label(spec.confidence.level)} interval.",
        "",
    ]
    for outcome, heading in (("regressed", "Regressed"), ("improved", "Improved")):
        rows = comparison[comparison["outcome"] == outcome]
        # All traffic first, then the slices, most significant first.
        rows = rows.assign(_overall=rows["slice"] != OVERALL).sort_values(
            ["_overall", "q_value", "delta"]
        )
        lines += [f"### {heading} ({len(rows)})", ""]
        if rows.empty:
            lines += ["_none_", ""]
            continue
        shown = rows.head(MAX_CHANGES)
        lines.append(
            _table(
                pd.DataFrame(
                    {
                        "slice": shown["slice"],
                        "metric": shown["metric"],
                        "baseline": shown["baseline"].map(_num),
                        "candidate": shown["candidate"].map(_num),
                        "delta [interval]": deltas_with_intervals(shown),
                        "q": shown["q_value"].map(lambda q: f"{q:.2g}"),
                        "n": shown["n"].map(lambda n: f"{int(n):,}"),
                    }
                )
            )
        )
        if len(rows) > MAX_CHANGES:
            lines += [f"... and {len(rows) - MAX_CHANGES} more (comparison.parquet).", ""]
    return lines


def _data_used(evaluation) -> list[str]:
    spec = evaluation.spec
    task = task_named(spec.task)
    coverage = evaluation.coverage[evaluation.coverage["slice"] == OVERALL]
    fingerprint = evaluation.fingerprint
    lines = [
        "## Data used",
        "",
        f"- Window {evaluation.window} (the week of {evaluation.window.label}).",
        f"- {fingerprint.get('rows', 0):,} rows, {fingerprint.get('labeled_rows', 0):,} labeled; "
        f"content fingerprint `{fingerprint.get('content_hash', '')}` (order-independent hash "
        "of the window, in run.json).",
    ]
    for row in coverage.sort_values("model_version").itertuples(index=False):
        share = f"{row.coverage:.1%}" if row.rows else "-"
        lines.append(
            f"- `{row.model_version}`: {int(row.rows):,} {task.coverage_unit}, "
            f"{int(row.labeled):,} labeled ({share}; minimum {spec.min_label_coverage:.0%})."
        )
    slices = ", ".join(" x ".join(s) if isinstance(s, list) else s for s in spec.slices)
    lines += [
        f"- Slices: {slices or 'overall only'}; min_slice_size {spec.min_slice_size} "
        f"{task.count_unit}.",
        "",
        intervals_note(spec),
        "",
    ]
    return lines


def _limitations(evaluation, verdict: Verdict) -> list[str]:
    spec = evaluation.spec
    metrics = evaluation.metrics
    items = []
    for group in group_reasons(r for r in verdict.reasons if r.outcome == INCONCLUSIVE):
        items.append(_inline(f"- Inconclusive ({group.gate}): {group.message}"))
    for group in group_reasons(r for r in verdict.reasons if r.outcome == WARN):
        items.append(_inline(f"- Guardrail ({group.gate}): {group.message}"))
    estimated = sorted({base_metric(m) for m in metrics["metric"].unique() if is_estimated(m)})
    if estimated:
        gated = sorted({g.metric for g in spec.metric_gates if is_estimated(g.metric)})
        items.append(
            f"- Estimated without labels (CBPE, docs/estimation.md): {', '.join(estimated)}"
            + (f"; gates decided on estimates: {', '.join(gated)}" if gated else "")
            + ". Estimates assume the score-label relation has not changed since the "
            "reference weeks."
        )
    bounded = metrics[(metrics["slice"] == OVERALL) & (metrics["error_bound"].fillna(0) > 0)]
    if not bounded.empty:
        worst = bounded.groupby("metric")["error_bound"].max().sort_index()
        listed = ", ".join(f"{m} ±{b:.2g}" for m, b in worst.items())
        items.append(
            f"- Binned metrics ({spec.score_bins} score bins) carry a binning error bound, all "
            f"traffic: {listed} (`error_bound` in metrics.parquet)."
        )
    small = metrics[metrics["status"] != "ok"][["model_version", "slice", "n", "status"]]
    small = small.drop_duplicates(["model_version", "slice"]).sort_values("n")
    if not small.empty:
        named = ", ".join(
            f"{row.slice} of {row.model_version} (n={int(row.n)})"
            for row in small.head(MAX_SMALL_SLICES).itertuples(index=False)
        )
        more = (
            f", and {len(small) - MAX_SMALL_SLICES} more" if len(small) > MAX_SMALL_SLICES else ""
        )
        items.append(
            _inline(
                f"- {len(small)} slice x version results below min_slice_size "
                f"{spec.min_slice_size}, reported but not judged: {named}{more}."
            )
        )
    if no_reference_data(evaluation.drift):
        items.append("- Drift not judged: no predictions in the reference weeks.")
    if not items:
        items.append("- None found: every gate was judged on labeled data of sufficient size.")
    return ["## Known limitations", "", *items, ""]
