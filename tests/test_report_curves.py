"""The report's curve plots (eval_pipelines.report_curves) on hand-built curves frames: the SVG's
marks map back to the data (pixel coordinates from the plot's known geometry), the plot
choice comes from the curve kinds present, and the page's slices are capped."""

import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.curves import CURVE_COLUMNS
from eval_pipelines.report_curves import (
    CURVE_SLICES,
    confusion_plot,
    curve_plot,
    report_curves,
    version_styles,
)
from eval_pipelines.svg import SAFE_PALETTE

NS = {"s": "http://www.w3.org/2000/svg"}
# curve_plot's panel: 480 x 320, margins left 64, right 16, top 28, bottom 44.
LEFT, RIGHT, TOP, BOTTOM = 64, 480 - 16, 28, 320 - 44


def frame(rows: list[dict]) -> pd.DataFrame:
    """A curves frame in the documented columns (docs/curves.md), defaults for the rest."""
    defaults = {
        "slice": "overall",
        "facet": "",
        "series": "",
        "n": 10,
        "x_low": np.nan,
        "x_high": np.nan,
        "threshold": np.nan,
        "x_label": "",
    }
    table = pd.DataFrame([{**defaults, **row} for row in rows])
    return table[CURVE_COLUMNS]


def line(curve: str, version: str, xs, ys, **extra) -> list[dict]:
    return [
        {"curve": curve, "model_version": version, "point": i, "x": x, "y": y, **extra}
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def polylines(root: ET.Element, color: str) -> list[list[tuple[float, float]]]:
    return [
        [tuple(map(float, p.split(","))) for p in element.get("points").split()]
        for element in root.iterfind(".//s:polyline", NS)
        if element.get("stroke") == color
    ]


def legend(root: ET.Element) -> list[str]:
    return [t.text for t in root.iterfind(".//s:g[@class='axis']/s:text", NS)]


ROC_V1 = ([0.0, 0.1, 0.3, 0.6, 1.0], [0.0, 0.4, 0.7, 0.9, 1.0])
ROC_V2 = ([0.0, 0.05, 0.2, 0.5, 1.0], [0.0, 0.5, 0.8, 0.95, 1.0])


def test_a_roc_plot_draws_each_version_monotone_from_corner_to_corner_with_the_diagonal():
    table = frame(line("roc", "v1", *ROC_V1) + line("roc", "v2", *ROC_V2))
    styles = version_styles(["v1", "v2"], baseline="v1", candidate="v2")
    root = parse(curve_plot("roc", table, "ROC curve", styles))

    assert root.get("aria-label") == "ROC curve"
    assert root.find("s:title", NS).text == "ROC curve"
    for version, (xs, ys) in {"v1": ROC_V1, "v2": ROC_V2}.items():
        (points,) = polylines(root, styles[version].color)
        assert len(points) == len(xs)
        px = [p[0] for p in points]
        py = [p[1] for p in points]
        assert px == sorted(px) and py == sorted(py, reverse=True)  # y grows upward
        # The data, mapped through the unit axes onto the frame.
        assert px == pytest.approx([LEFT + x * (RIGHT - LEFT) for x in xs], abs=0.06)
        assert py == pytest.approx([BOTTOM - y * (BOTTOM - TOP) for y in ys], abs=0.06)
    (diagonal,) = polylines(root, "#9ca3af")
    assert diagonal == [(LEFT, BOTTOM), (RIGHT, TOP)]
    # The baseline is dashed, the candidate solid, in distinct colour-blind-safe colours.
    dashed = {
        e.get("stroke"): e.get("stroke-dasharray") for e in root.iterfind(".//s:polyline", NS)
    }
    assert dashed[styles["v1"].color] and dashed[styles["v2"].color] is None
    assert styles["v1"].color != styles["v2"].color
    assert {styles["v1"].color, styles["v2"].color} <= set(SAFE_PALETTE)
    assert {"v1 (baseline)", "v2 (candidate)"} <= set(legend(root))


def test_a_pr_plot_has_no_diagonal_and_names_its_axes():
    table = frame(line("pr", "v1", [0.0, 0.5, 1.0], [1.0, 0.8, 0.3]))
    root = parse(curve_plot("pr", table, "PR", version_styles(["v1"], None, None)))
    assert polylines(root, "#9ca3af") == []
    assert {"recall", "precision"} <= set(legend(root))


def test_a_reliability_diagram_marks_every_bin_and_draws_perfect_calibration():
    xs, ys = [0.05, 0.25, 0.55, 0.9], [0.02, 0.2, 0.6, 0.95]
    table = frame(line("reliability", "v2", xs, ys))
    styles = version_styles(["v2"], None, None)
    root = parse(curve_plot("reliability", table, "Reliability", styles))
    circles = list(root.iterfind(".//s:circle", NS))
    assert len(circles) == len(xs)
    assert [float(c.get("cx")) for c in circles] == pytest.approx(
        [LEFT + x * (RIGHT - LEFT) for x in xs], abs=0.06
    )
    assert len(polylines(root, "#9ca3af")) == 1


def test_a_histogram_draws_a_bar_per_bin_and_version_over_its_edges():
    edges = np.linspace(-2.0, 2.0, 5)
    rows = []
    for version, heights in {"v1": [0.1, 0.4, 0.4, 0.1], "v2": [0.2, 0.3, 0.3, 0.2]}.items():
        rows += line(
            "residual_histogram",
            version,
            (edges[:-1] + edges[1:]) / 2,
            heights,
        )
    table = frame(rows)
    table["x_low"] = np.tile(edges[:-1], 2)
    table["x_high"] = np.tile(edges[1:], 2)
    styles = version_styles(["v1", "v2"], "v1", "v2")
    root = parse(curve_plot("residual_histogram", table, "Residuals", styles))
    bars = {
        version: [r for r in root.iterfind(".//s:rect", NS) if r.get("fill") == style.color]
        for version, style in styles.items()
    }
    # 4 bars each, plus the legend's swatch; the tallest v1 bar is 2x its smallest.
    assert [len(b) for b in bars.values()] == [5, 5]
    heights = sorted(float(r.get("height")) for r in bars["v1"][:4])
    assert heights[-1] == pytest.approx(4 * heights[0], rel=0.01)
    assert {"v1 (baseline)", "v2 (candidate)"} <= set(legend(root))
    # The zero residual is marked.
    assert root.find(".//s:line[@stroke-dasharray='4 3']", NS) is not None


def test_a_categorical_drift_histogram_overlays_reference_and_current_per_value():
    rows = []
    for period, shares in {"reference": [0.5, 0.3, 0.2], "current": [0.2, 0.3, 0.5]}.items():
        rows += line(
            "drift_histogram",
            "v1",
            [np.nan] * 3,
            shares,
            series=period,
            facet="device",
        )
    table = frame(rows)
    table["x_label"] = ["ios", "android", "web"] * 2
    root = parse(curve_plot("drift_histogram", table, "device", {}))
    labels = legend(root)
    assert {"reference", "current", "ios", "android", "web"} <= set(labels)
    swatches = {SAFE_PALETTE[0]: 0, SAFE_PALETTE[1]: 0}
    for rect in root.iterfind(".//s:rect", NS):
        if rect.get("fill") in swatches:
            swatches[rect.get("fill")] += 1
    assert swatches == {SAFE_PALETTE[0]: 4, SAFE_PALETTE[1]: 4}  # 3 bars + a legend swatch


def test_the_confusion_heat_table_has_a_cell_per_class_pair_shaded_by_the_row_share():
    confusion = pd.DataFrame(
        {
            "slice": "overall",
            "model_version": "v1",
            "label": ["a", "a", "b", "b", "c"],
            "predicted": ["a", "b", "b", "c", "c"],
            "n": [30, 10, 20, 20, 5],
        }
    )
    root = parse(confusion_plot(confusion, "overall", "v1", "v1 (baseline)"))
    cells = list(root.iterfind(".//s:rect[@class='cell']", NS))
    assert len(cells) == 3 * 3  # C x C, the pairs never seen included
    shares = {c.find("s:title", NS).text.split(":")[0]: float(c.get("fill-opacity")) for c in cells}
    assert shares["true a, predicted a"] == pytest.approx(0.75, abs=1e-3)
    assert shares["true b, predicted c"] == pytest.approx(0.5, abs=1e-3)
    assert shares["true c, predicted a"] == 0.0
    assert root.get("aria-label") == "Confusion matrix: v1 (baseline)"


def test_the_plots_follow_the_curve_kinds_present_and_the_slices_are_capped():
    regressed = [f"country=c{i}" for i in range(CURVE_SLICES + 2)]
    rows = []
    for slice_name in ["overall", *regressed, "country=fine"]:
        for version in ("v1", "v2"):
            rows += line("roc", version, *ROC_V1, slice=slice_name)
            rows += line("novel_curve", version, [1, 2], [3, 4], slice=slice_name)
    comparison = pd.DataFrame(
        {
            "slice": [*regressed, "country=fine"],
            "metric": "recall",
            "outcome": ["regressed"] * len(regressed) + ["no significant change"],
            "q_value": [0.001 * (i + 1) for i in range(len(regressed))] + [0.9],
        }
    )
    plots = report_curves(frame(rows), {}, comparison, "v1", "v2")
    assert [s.slice for s in plots["slices"]] == ["overall", *regressed[:CURVE_SLICES]]
    assert plots["left_out"] == 2
    kinds = plots["slices"][0].kinds
    assert [k.kind for k in kinds] == ["roc", "novel_curve"]
    assert "Novel curve" in kinds[1].svgs[0]  # an unknown kind is still drawn, by its name
    assert plots["drift"] == []


def test_a_task_table_with_a_plot_joins_the_slice_and_drift_goes_to_its_own_section():
    confusion = pd.DataFrame(
        {
            "slice": "overall",
            "model_version": ["v1", "v2"],
            "label": "a",
            "predicted": "a",
            "n": 5,
        }
    )
    drift = frame(
        line("drift_histogram", "v2", [0.5, 1.5], [0.5, 0.5], facet="amount", series="reference")
        + line("drift_histogram", "v2", [0.5, 1.5], [0.2, 0.8], facet="amount", series="current")
        + line("drift_histogram", "v2", [0.5, 1.5], [0.5, 0.5], facet="age", series="reference")
    )
    plots = report_curves(drift, {"confusion": confusion}, None, "v1", "v2", ["amount"])
    (overall,) = plots["slices"]
    assert [k.kind for k in overall.kinds] == ["confusion"]
    assert len(overall.kinds[0].svgs) == 2  # one per version, baseline first
    assert "v1 (baseline)" in overall.kinds[0].svgs[0]
    (histograms,) = plots["drift"]
    assert len(histograms.svgs) == 2 and "amount" in histograms.svgs[0]  # drifted first
