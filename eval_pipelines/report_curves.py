"""The curves of ``report.html``: each curve kind of ``curves.parquet`` (docs/curves.md) and
each task table that is a picture (the confusion matrix) drawn with :mod:`eval_pipelines.svg`.

Nothing here knows a task: the kinds present in the curves frame choose the plots, through
:data:`CURVE_KINDS` (kind -> axis titles, reference lines, what makes a panel, what a colour
stands for) and :data:`TABLE_PLOTS` (a task table's name -> its plot). A kind missing from
the registry is still drawn, as plain lines under its own name.

Versions overlay in one panel in the colour-blind-safe palette (:data:`svg.SAFE_PALETTE`):
the baseline first (dashed), then the candidate, then any other version, each named in the
legend. The page stays small whatever the slice count: curves are drawn for all traffic and
at most :data:`CURVE_SLICES` slices (those with the most significant regressions), at most
:data:`MAX_PANELS` panels a kind, and a confusion matrix of at most :data:`MAX_CLASSES`
classes; the page says what it leaves out, and curves.parquet keeps everything.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from eval_pipelines.spec import OVERALL
from eval_pipelines.svg import SAFE_PALETTE, Axis, Plot

CURVE_SLICES = 3  # slices beside all traffic: the most significant regressions
MAX_PANELS = 12  # panels of one kind in one slice (classes, metrics, drift features)
MAX_CLASSES = 25  # classes of a confusion matrix (the largest by labeled rows)
REFERENCE_INK = "#9ca3af"
HEAT_COLOR = "#0072B2"


@dataclass(frozen=True)
class CurveKind:
    """How one curve kind is drawn.

    ``style``: ``line``, ``line+points`` or ``bars`` (histograms, bins from ``x_low`` to
    ``x_high``); ``diagonal``: the ``y = x`` reference (a random classifier's ROC, perfect
    calibration, a perfect regressor); ``unit``: both axes over [0, 1]; ``panel``: what makes
    one panel (``series``, ``facet``, or ``""`` for one panel); ``colour_by``: what a colour
    stands for (``version``, or ``series`` when one version is drawn, as drift periods);
    ``section``: the report section the plots go to (``curves`` or ``drift``)."""

    title: str
    x_label: str
    y_label: str
    style: str = "line"
    diagonal: bool = False
    unit: bool = False
    panel: str = ""
    panel_title: str = "{}"
    colour_by: str = "version"
    section: str = "curves"
    zero_line: bool = False  # a vertical reference at x = 0 (the residual of a perfect model)
    legend: str = "top-right"


CURVE_KINDS: dict[str, CurveKind] = {
    "roc": CurveKind(
        "ROC curve",
        "false positive rate",
        "true positive rate",
        diagonal=True,
        unit=True,
        legend="bottom-right",
    ),
    "pr": CurveKind(
        "Precision-recall curve", "recall", "precision", unit=True, legend="bottom-left"
    ),
    "reliability": CurveKind(
        "Reliability diagram",
        "mean predicted score",
        "observed positive rate",
        style="line+points",
        diagonal=True,
        unit=True,
        legend="bottom-right",
    ),
    "score_histogram": CurveKind(
        "Score histogram",
        "score",
        "share of the label's rows",
        style="bars",
        panel="series",
        panel_title="label {}",
    ),
    "roc_ovr": CurveKind(
        "One-vs-rest ROC",
        "false positive rate",
        "true positive rate",
        diagonal=True,
        unit=True,
        panel="series",
        panel_title="class {}",
        legend="bottom-right",
    ),
    "residual_histogram": CurveKind(
        "Residual histogram",
        "prediction − label",
        "share of labeled rows",
        style="bars",
        zero_line=True,
    ),
    "predicted_vs_actual": CurveKind(
        "Predicted vs actual",
        "mean prediction in the bin",
        "mean label in the bin",
        style="line+points",
        diagonal=True,
        legend="bottom-right",
    ),
    "metric_at_k": CurveKind(
        "Metric@k",
        "k (cutoff)",
        "metric at k",
        style="line+points",
        panel="series",
        panel_title="{}@k",
        legend="bottom-right",
    ),
    "drift_histogram": CurveKind(
        "Drift histogram",
        "value",
        "share of the period's rows",
        style="bars",
        panel="facet",
        colour_by="series",
        section="drift",
    ),
}


def curve_kind(name: str) -> CurveKind:
    """The registry's entry, or plain lines titled by the kind's name."""
    return CURVE_KINDS.get(name, CurveKind(name.replace("_", " ").capitalize(), "x", "y"))


@dataclass(frozen=True)
class Style:
    """How one version (or drift period) is drawn: its legend name, colour and dash."""

    label: str
    color: str
    dashed: bool = False


def version_styles(
    versions: Sequence[str], baseline: str | None, candidate: str | None
) -> dict[str, Style]:
    """Baseline (dashed), candidate, then the other versions, each in its own safe colour."""
    ordered = [v for v in (baseline, candidate) if v is not None and v in versions]
    ordered += [v for v in versions if v not in ordered]
    names = {baseline: "baseline", candidate: "candidate"}
    return {
        v: Style(
            f"{v} ({names[v]})" if v in names else v,
            SAFE_PALETTE[i % len(SAFE_PALETTE)],
            dashed=v == baseline,
        )
        for i, v in enumerate(ordered)
    }


def _floats(values: Any) -> list[float]:
    return [float(v) for v in pd.to_numeric(pd.Series(values), errors="coerce")]


def curve_plot(kind_name: str, frame: pd.DataFrame, title: str, styles: dict[str, Style]) -> str:
    """One panel: the rows of one kind, slice and panel, a line (or histogram) per version
    (or per series when the kind colours by series), in ``point`` order."""
    kind = curve_kind(kind_name)
    frame = frame.sort_values("point", kind="stable")
    if kind.colour_by == "series":
        keys = list(dict.fromkeys(frame["series"]))
        key_styles = {
            s: Style(s or kind_name, SAFE_PALETTE[i % len(SAFE_PALETTE)])
            for i, s in enumerate(keys)
        }
        column = "series"
    else:
        keys = [v for v in styles if v in set(frame["model_version"])]
        key_styles = styles
        column = "model_version"
    labels = frame["x_label"].fillna("").astype(str)
    categories = list(dict.fromkeys(labels[labels != ""]))
    ys = _floats(frame["y"])
    if categories:
        x_axis = Axis(kind.x_label, categories=categories)
    elif kind.unit:
        x_axis = Axis(kind.x_label, 0.0, 1.0)
    else:
        edges = [*_floats(frame["x"]), *_floats(frame["x_low"]), *_floats(frame["x_high"])]
        x_axis = Axis.covering(edges, kind.x_label, pad=0.02 if kind.style == "bars" else 0.05)
    if kind.unit:
        y_axis = Axis(kind.y_label, 0.0, 1.0)
    elif kind.style == "bars":
        top = max([y for y in ys if np.isfinite(y)], default=1.0)
        y_axis = Axis(kind.y_label, 0.0, top * 1.08 or 1.0)
    else:
        y_axis = Axis.covering(ys, kind.y_label)
    plot = Plot(x_axis, y_axis, title=title, width=480, height=320, legend=kind.legend)
    if kind.diagonal and not categories:
        low, high = max(x_axis.low, y_axis.low), min(x_axis.high, y_axis.high)
        if high > low:
            plot.line([low, high], [low, high], color=REFERENCE_INK, dashed=True)
    if kind.zero_line and not categories and x_axis.low < 0 < x_axis.high:
        plot.reference(0.0)
    for key in keys:
        rows = frame[frame[column] == key]
        style = key_styles[key]
        xs, heights = _floats(rows["x"]), _floats(rows["y"])
        if kind.style == "bars":
            if categories:
                places = [categories.index(c) for c in rows["x_label"].fillna("").astype(str)]
                lefts = [p - 0.4 for p in places]
                rights = [p + 0.4 for p in places]
            else:
                lefts, rights = _floats(rows["x_low"]), _floats(rows["x_high"])
            plot.bars(lefts, rights, heights, label=style.label, color=style.color, opacity=0.45)
        else:
            plot.line(xs, heights, label=style.label, color=style.color, dashed=style.dashed)
            if kind.style == "line+points":
                tips = [
                    f"{style.label}: x {x:.4g}, y {y:.4g}, n {int(n):,}"
                    for x, y, n in zip(xs, heights, rows["n"].fillna(0), strict=True)
                ]
                plot.points(xs, heights, color=style.color, titles=tips, radius=3)
    names = ", ".join(key_styles[k].label for k in keys)
    return plot.render(f"{title}: {kind.y_label} against {kind.x_label}; {names}")


@dataclass
class KindPlots:
    """The panels of one curve kind in one slice."""

    kind: str
    title: str
    svgs: list[str]
    left_out: int = 0  # panels beyond MAX_PANELS


def kind_plots(
    kind_name: str,
    frame: pd.DataFrame,
    slice_name: str,
    styles: dict[str, Style],
    first: Sequence[str] = (),
) -> KindPlots:
    """Every panel of one kind in one slice (panels named in ``first`` come first), capped."""
    kind = curve_kind(kind_name)
    if kind.panel:
        panels = list(dict.fromkeys(frame[kind.panel]))
        panels = [p for p in first if p in panels] + [p for p in panels if p not in first]
    else:
        panels = [None]
    svgs = []
    for panel in panels[:MAX_PANELS]:
        rows = frame if panel is None else frame[frame[kind.panel] == panel]
        where = "" if slice_name == OVERALL else f" · {slice_name}"
        name = kind.title if panel is None else f"{kind.title}: {kind.panel_title.format(panel)}"
        if kind.colour_by == "series":  # one version drawn: name it
            versions = ", ".join(dict.fromkeys(rows["model_version"]))
            name += f" ({versions})"
        svgs.append(curve_plot(kind_name, rows, name + where, styles))
    return KindPlots(kind_name, kind.title, svgs, max(len(panels) - MAX_PANELS, 0))


def confusion_plot(table: pd.DataFrame, slice_name: str, version: str, label: str) -> str:
    """One version's confusion matrix as a heat table: a cell per (label, predicted) pair of
    the classes shown (empty pairs included, as 0), shaded by the share of the label's rows
    (the diagonal is each class's recall), with the row count written inside."""
    rows = table[(table["slice"] == slice_name) & (table["model_version"] == version)]
    classes = sorted(set(rows["label"]) | set(rows["predicted"]), key=str)
    if len(classes) > MAX_CLASSES:  # the classes with the most labeled rows
        support = rows.groupby("label")["n"].sum().sort_values(ascending=False, kind="stable")
        classes = sorted(support.index[:MAX_CLASSES], key=str)
    counts = (
        rows[rows["label"].isin(classes) & rows["predicted"].isin(classes)]
        .pivot_table(index="label", columns="predicted", values="n", aggfunc="sum")
        .reindex(index=classes, columns=classes)
        .fillna(0)
    )
    totals = counts.sum(axis=1).replace(0, np.nan)
    names = [str(c) for c in classes]
    size = len(names)
    plot = Plot(
        Axis("predicted class", categories=names),
        Axis("true class", categories=names),
        title=f"Confusion matrix: {label}" + ("" if slice_name == OVERALL else f" · {slice_name}"),
        width=max(360, 150 + 52 * size),
        height=max(220, 90 + 30 * size),
        margin_left=130,
    )
    xs, ys, shades, texts, tips = [], [], [], [], []
    for true in classes:
        for predicted in classes:
            n = float(counts.loc[true, predicted])
            share = n / totals[true] if np.isfinite(totals[true]) else 0.0
            xs.append(str(predicted))
            ys.append(str(true))
            shades.append(share)
            texts.append(f"{n:,.0f}" if size <= 15 else "")
            tips.append(
                f"true {true}, predicted {predicted}: {n:,.0f} rows ({share:.1%} of {true})"
            )
    plot.cells(xs, ys, shades, texts=texts, titles=tips, color=HEAT_COLOR)
    return plot.render(
        f"Rows per true class (rows) and predicted class (columns) of {label}, shaded by the "
        "share of the true class"
    )


def confusion_plots(
    table: pd.DataFrame, slice_name: str, styles: dict[str, Style]
) -> KindPlots | None:
    """The confusion heat tables of one slice, one per version (baseline first)."""
    present = set(table.loc[table["slice"] == slice_name, "model_version"])
    versions = [v for v in styles if v in present]
    if not versions:
        return None
    shown = table[table["slice"] == slice_name]
    classes = len(set(shown["label"]) | set(shown["predicted"]))
    return KindPlots(
        "confusion",
        "Confusion matrix",
        [confusion_plot(table, slice_name, v, styles[v].label) for v in versions],
        max(classes - MAX_CLASSES, 0),
    )


# A task table (``Task.tables``: ``<name>.parquet``) that is drawn: name -> its plots in a slice.
TABLE_PLOTS: dict[str, Callable[[pd.DataFrame, str, dict[str, Style]], KindPlots | None]] = {
    "confusion": confusion_plots,
}


@dataclass
class SliceCurves:
    """The plots of one slice, in the curve section's selector."""

    slice: str
    label: str
    kinds: list[KindPlots]


def curve_slices(comparison: pd.DataFrame | None, available: set[str]) -> tuple[list[str], int]:
    """All traffic, then the slices with a significant regression, most significant first, at
    most :data:`CURVE_SLICES` of them (with curves); and how many regressed slices are left
    out."""
    chosen = [OVERALL] if OVERALL in available else []
    if comparison is None or comparison.empty:
        return chosen, 0
    regressed = comparison[
        (comparison["outcome"] == "regressed") & (comparison["slice"] != OVERALL)
    ]
    ordered = regressed.sort_values(["q_value", "slice"], kind="stable")["slice"]
    candidates = [s for s in dict.fromkeys(ordered) if s in available]
    return chosen + candidates[:CURVE_SLICES], max(len(candidates) - CURVE_SLICES, 0)


def report_curves(
    curves: pd.DataFrame | None,
    tables: dict[str, pd.DataFrame],
    comparison: pd.DataFrame | None,
    baseline: str | None,
    candidate: str | None,
    first_facets: Sequence[str] = (),
) -> dict[str, Any]:
    """What the template draws: ``slices`` (the curve section's panels per chosen slice),
    ``left_out`` (regressed slices without plots here), ``drift`` (the drift section's
    panels on all traffic, features in ``first_facets`` first)."""
    curves = curves if curves is not None else pd.DataFrame(columns=["curve", "slice"])
    drawn_tables = {n: t for n, t in tables.items() if n in TABLE_PLOTS and not t.empty}
    versions = [
        *curves.get("model_version", pd.Series(dtype=object)),
        *(v for t in drawn_tables.values() for v in t["model_version"]),
    ]
    styles = version_styles(list(dict.fromkeys(versions)), baseline, candidate)
    in_section = curves["curve"].map(lambda k: curve_kind(k).section) if len(curves) else None
    section = curves[in_section == "curves"] if len(curves) else curves
    available = set(section["slice"]) | {s for t in drawn_tables.values() for s in t["slice"]}
    chosen, left_out = curve_slices(comparison, available)
    slices = []
    for name in chosen:
        kinds = [
            kind_plots(kind, rows, name, styles)
            for kind, rows in section[section["slice"] == name].groupby("curve", sort=False)
        ]
        kinds += [p for n, t in drawn_tables.items() if (p := TABLE_PLOTS[n](t, name, styles))]
        kinds = [k for k in kinds if k.svgs]
        if kinds:
            label = "all traffic" if name == OVERALL else name
            slices.append(SliceCurves(name, label, kinds))
    drift = []
    if len(curves):
        for kind, rows in curves[in_section == "drift"].groupby("curve", sort=False):
            overall = rows[rows["slice"] == OVERALL]  # drift is judged on all traffic
            if len(overall):
                drift.append(kind_plots(kind, overall, OVERALL, styles, first=first_facets))
    return {"slices": slices, "left_out": left_out, "drift": drift, "max_slices": CURVE_SLICES}
