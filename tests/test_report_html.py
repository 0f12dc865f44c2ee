"""``report.html`` from hand-built report models, and the SVG plot helper it draws with.

What a reader relies on: sections without data are left out (never an empty table), every
decision has its banner, text from the data is escaped, nothing is fetched, and the forest plot
puts the worst regression (by the metric's direction in the registry) right after all traffic.
The browser-level checks on a real demo evaluation are in test_report_browser.py.
"""

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import replace

import pandas as pd
import pytest

from eval_pipelines.gates import Reason
from eval_pipelines.reasons import group_reasons
from eval_pipelines.report_html import forest_plot, render_html
from eval_pipelines.report_model import EstimateRow, HeadlineRow, Lineage, ReportModel
from eval_pipelines.report_model import metric_infos as infos
from eval_pipelines.svg import Axis, Plot, nice_ticks
from eval_pipelines.validation import CheckResult

SVG = "{http://www.w3.org/2000/svg}"


def comparison_rows() -> pd.DataFrame:
    """log_loss (lower is better) per slice: +0.08 on android is the worst regression."""
    rows = [
        ("overall", -0.01, "improved"),
        ("device=ios", -0.03, "improved"),
        ("device=android", 0.08, "regressed"),
        ("device=web", 0.02, "no significant change"),
        ("device=tv", float("nan"), "too small"),
    ]
    return pd.DataFrame(
        {
            "slice": [r[0] for r in rows],
            "metric": "log_loss",
            "baseline": 0.30,
            "candidate": [0.30 + r[1] for r in rows],
            "delta": [r[1] for r in rows],
            "delta_ci_low": [r[1] - 0.02 for r in rows],
            "delta_ci_high": [r[1] + 0.02 for r in rows],
            "p_value": [0.001, 0.01, 0.0001, 0.4, float("nan")],
            "q_value": [0.002, 0.02, 0.0004, 0.5, float("nan")],
            "test": "bootstrap",
            "n": [5000, 2000, 2000, 1000, 10],
            "outcome": [r[2] for r in rows],
        }
    )


def report_model(**changes) -> ReportModel:
    reasons = [
        Reason("{metric=log_loss, max_regression=0.01}", "hold", "log_loss regressed", "a"),
        Reason("min_label_coverage", "pass", "coverage 95%"),
    ]
    model = ReportModel(
        model="fraud_detector",
        task="binary_classification",
        week="2026-11-16",
        window="[2026-11-16 00:00, 2026-11-23 00:00) UTC",
        decision="hold",
        headline="HOLD: at least one gate failed; do not release as is.",
        candidate="v2",
        baseline="v1",
        level=0.95,
        alpha=0.05,
        summary=["- All traffic: `v2` is better."],
        groups=group_reasons(reasons),
        reason_count=len(reasons),
        headline_rows=[
            HeadlineRow("v1", "log_loss", 0.30, 0.29, 0.31, 5000),
            HeadlineRow("v2", "log_loss", 0.29, 0.28, 0.30, 5000),
        ],
        metrics=infos("binary_classification", ["log_loss", "estimated_roc_auc"]),
        comparison=comparison_rows(),
        tests=4,
        drift_skipped=False,
        drift=pd.DataFrame(
            {
                "feature": ["amount"],
                "method": ["psi"],
                "statistic": [0.2],
                "p_value": [float("nan")],
                "threshold": [0.1],
                "drifted": [True],
                "n_reference": [100],
                "n_current": [50],
            }
        ),
        checks=[CheckResult("labels_unique", True, "one label per id")],
        checks_passed=True,
        coverage=pd.DataFrame(
            {
                "model_version": ["v2", "v2"],
                "slice": ["overall", "device=ios"],
                "rows": [100, 40],
                "labeled": [90, 30],
                "coverage": [0.9, 0.75],
            }
        ),
        estimates=[EstimateRow("v2", "estimated_roc_auc", 0.81, 0.8, 0.82, 0.83, 0.82, 0.84)],
        rows=10_000,
        labeled_rows=9_000,
        content_hash="00ab",
        small_slices=1,
        min_slice_size=50,
        count_unit="labeled rows",
        intervals="Intervals: 95% percentile bootstrap.",
        forest_metrics=["log_loss"],
        lineage=Lineage(spec_hash="f" * 64, mlflow_run="r1", dagster_run="d1"),
    )
    return replace(model, **changes)


def section_ids(html: str) -> set[str]:
    return set(re.findall(r'<section id="([a-z]+)"', html))


def test_every_section_with_data_is_shown():
    html = render_html(report_model())
    assert section_ids(html) == {
        "reasons",
        "headline",
        "forest",
        "slices",
        "drift",
        "estimates",
        "coverage",
        "checks",
        "data",
    }
    assert "Estimated vs realized" in html and "ROC AUC" in html


def test_sections_without_data_are_left_out_not_shown_empty():
    html = render_html(
        report_model(
            candidate=None,
            baseline=None,
            comparison=None,
            forest_metrics=[],
            drift=None,
            estimates=[],
            coverage=pd.DataFrame(),
            lineage=Lineage(),
        )
    )
    assert section_ids(html) == {"reasons", "headline", "checks", "data"}
    assert not re.search(r"\b(None|nan)\b", html)
    assert "MLflow run" not in html  # no run id known: no empty footer line


@pytest.mark.parametrize(
    ("decision", "style", "shown"),
    [
        ("ship", "ship", "SHIP"),
        ("hold", "hold", "HOLD"),
        ("inconclusive", "inconclusive", "INCONCLUSIVE"),
        ("ship_with_guardrails", "guardrails", "SHIP WITH GUARDRAILS"),
    ],
)
def test_each_decision_has_its_banner(decision, style, shown):
    html = render_html(report_model(decision=decision))
    assert re.search(
        f'<div class="banner {style}" id="verdict"[^>]*>\\s*<strong>{shown}</strong>', html
    )


def test_text_from_the_data_is_escaped_and_nothing_is_fetched():
    comparison = comparison_rows()
    comparison.loc[1, "slice"] = 'device=<script>alert("x")</script>'
    html = render_html(report_model(comparison=comparison))
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert" in html
    assert html.count("<script>") == 1  # the page's own sorting and filtering
    # No attribute points outside the page (SVG's xmlns is a name, not a request).
    assert not re.search(r'(src|href|action)="(?!data:)[^"#]', html)
    assert "@import" not in html and "url(" not in html


def test_the_slice_table_marks_significant_regressions_and_lists_them_first():
    html = render_html(report_model())
    start = html.index('id="slice-table"')
    table = html[start : html.index("</table>", start)]
    rows = re.findall(r"<tr( class=\"regressed\")?><td>([^<]*)</td>", table)
    assert rows[0] == (' class="regressed"', "device=android")
    assert [slice_ for marked, slice_ in rows if marked] == ["device=android"]
    assert len(rows) == len(comparison_rows())


def test_the_forest_plot_puts_the_worst_regression_after_all_traffic():
    svg = ET.fromstring(forest_plot(report_model(), "log_loss"))
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    # Lower is better for log loss: the largest positive delta is the worst. The slice with
    # no delta (too small to test) has no row.
    assert labels == ["overall", "device=android", "device=web", "device=ios"]
    intervals = [line for line in svg.iter(f"{SVG}line") if line.get("stroke-width") == "2"]
    assert len(intervals) == 4
    assert intervals[1].get("stroke") == "#dc2626"  # android, regressed: red


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    # range 0.2 / 5 = 0.04 -> the next round step is 0.05
    assert nice_ticks(-0.13, 0.07) == [-0.1, -0.05, 0, 0.05]
    assert nice_ticks(3, 3) == [3]
    assert nice_ticks(0, math.inf) == []


def test_a_plot_maps_data_to_its_frame_and_breaks_lines_at_missing_points():
    plot = Plot(Axis("x", 0, 10), Axis("y", 0, 1), width=200, height=100)
    plot.margin_left = plot.margin_right = plot.margin_top = plot.margin_bottom = 0
    plot.line([0, 5, 6, 10], [0, 1, float("nan"), 0.5], label="roc")
    plot.points([10], [1])
    plot.band([0, 10], [0.1, 0.2], [0.3, 0.4])
    plot.bars([0, 5], [5, 10], [0.5, 1.0])
    svg = ET.fromstring(plot.render())
    # The legend's one row (16 px) goes under the frame, so it never hides the data.
    assert svg.get("viewBox") == "0 0 200 116"
    legend = [t for t in svg.iter(f"{SVG}text") if t.text == "roc"]
    assert len(legend) == 1 and float(legend[0].get("y")) > 100
    # One polyline: the part after the missing point has a single point and is not drawn.
    [polyline] = svg.iter(f"{SVG}polyline")
    assert polyline.get("points") == "0.0,100.0 100.0,0.0"
    circle = next(svg.iter(f"{SVG}circle"))
    assert (circle.get("cx"), circle.get("cy")) == ("200.0", "0.0")  # top right corner
    [polygon] = svg.iter(f"{SVG}polygon")
    assert polygon.get("points") == "0.0,70.0 200.0,60.0 200.0,80.0 0.0,90.0"
    bars = [r for r in svg.iter(f"{SVG}rect") if r.get("fill-opacity") == "0.55"]
    assert [(b.get("x"), b.get("y"), b.get("width"), b.get("height")) for b in bars] == [
        ("0.0", "50.0", "100.0", "50.0"),
        ("100.0", "0.0", "100.0", "100.0"),
    ]


def test_a_legend_below_wraps_into_rows_within_the_frame():
    plot = Plot(Axis("x", 0, 1), Axis("y", 0, 1), width=200, height=100)
    plot.margin_left = plot.margin_right = 0
    for name in ("first series", "second series", "third"):
        plot.line([0, 1], [0, 1], label=name)
    svg = ET.fromstring(plot.render())
    texts = {t.text: t for t in svg.iter(f"{SVG}text")}
    rows = sorted({float(texts[n].get("y")) for n in ("first series", "second series", "third")})
    # Each entry is about 110 px: "second series" does not fit beside the first and starts
    # the second row, where "third" fits beside it.
    assert len(rows) == 2 and svg.get("viewBox") == "0 0 200 132"
    assert all(float(texts[n].get("x")) < 200 for n in ("first series", "second series", "third"))


def test_a_categorical_axis_puts_the_first_category_on_top():
    plot = Plot(Axis("delta", -1, 1), Axis(categories=["a", "b"]), width=100, height=100)
    plot.margin_left = plot.margin_right = plot.margin_top = plot.margin_bottom = 0
    plot.intervals(["a", "b"], [-0.5, 0.0], [0.5, 1.0], centers=[0.0, 0.5])
    lines = ET.fromstring(plot.render()).iter(f"{SVG}line")
    drawn = [(ln.get("x1"), ln.get("y1"), ln.get("x2")) for ln in lines if ln.get("stroke-width")]
    assert drawn == [("25.0", "25.0", "75.0"), ("50.0", "75.0", "100.0")]
