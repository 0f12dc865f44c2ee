"""``curves.parquet``: the aggregates behind an evaluation's plots, in one long table.

Every curve is read from a statistic the run already holds (the point statistic of a family,
never a bootstrap replicate, never a row), so the table's size is set by bins, cutoffs,
slices and versions, not by the row count. Each task provides its curves through its
optional ``Task.curves`` hook (``CurveInputs -> DataFrame``); drift histograms, which every
task has, come from the drift step (:func:`drift_curves`). Nothing here knows a task's name.

Columns (:data:`CURVE_COLUMNS`; docs/curves.md lists every curve kind):

* ``curve``: the kind (``roc``, ``pr``, ``reliability``, ``score_histogram``, ``roc_ovr``,
  ``residual_histogram``, ``predicted_vs_actual``, ``metric_at_k``, ``drift_histogram``);
* ``slice``, ``model_version``: as in metrics.parquet;
* ``facet``: the panel a curve is drawn in ("" for one panel; drift: the feature);
* ``series``: the line within the panel ("" for one line; a label, a class, a metric, a
  drift period);
* ``point``: the point's order along its line (0, 1, ...);
* ``x``, ``y``: the point; ``n``: the rows (ranking: lists) behind it;
* ``x_low``, ``x_high``: the bin's edges when the point is a bin (NaN otherwise);
* ``threshold``: the score threshold of a ROC or PR point (NaN otherwise);
* ``x_label``: the category of a categorical drift bin ("" otherwise).
"""

import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from eval_pipelines.stats.base import RowIndex

if TYPE_CHECKING:
    from eval_pipelines.spec import EvalSpec
    from eval_pipelines.sqlbuild import SqlBuilder
    from eval_pipelines.stats.parse import Statistics
    from eval_pipelines.windows import Window

CURVE_COLUMNS = [
    "curve",
    "slice",
    "model_version",
    "facet",
    "series",
    "point",
    "x",
    "y",
    "n",
    "x_low",
    "x_high",
    "threshold",
    "x_label",
]

TEXT_COLUMNS = ("curve", "slice", "model_version", "facet", "series", "x_label")


@dataclass(frozen=True)
class CurveInputs:
    """What a task's curves may read: the parsed statistics (their point statistics), the
    spec, and for a task whose families hold no curve data, one small aggregate query of the
    window rendered by ``builder`` for ``window``: ``query(sql, label)`` runs it and returns
    its rows with each row's slice group of ``stats.slices`` and version of
    ``stats.versions`` (-1: none), as the statistics' own rows are indexed."""

    stats: "Statistics"
    spec: "EvalSpec"
    builder: "SqlBuilder"
    window: "Window"
    query: Callable[[str, str], tuple[pa.Table, RowIndex]]
    # SQL texts the hook ran, by name (recorded in run.json beside the other queries).
    queries: dict[str, str]


def empty_curves() -> pd.DataFrame:
    return frame([])


def frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The parts in the documented columns and types (missing columns: NaN / "")."""
    parts = [part for part in parts if len(part)]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    for name in CURVE_COLUMNS:
        if name in TEXT_COLUMNS:
            table[name] = table[name].fillna("") if name in table else ""
        elif name not in table:
            table[name] = 0 if name == "point" else np.nan
    table = table[CURVE_COLUMNS].astype(
        {
            "curve": str,
            "slice": str,
            "model_version": str,
            "facet": str,
            "series": str,
            "point": np.int64,
            "x": float,
            "y": float,
            "n": np.int64,
            "x_low": float,
            "x_high": float,
            "threshold": float,
            "x_label": str,
        }
    )
    return table.reset_index(drop=True)


def points(
    stats: "Statistics", curve: str, mask: np.ndarray, series: str = "", **values: np.ndarray
) -> pd.DataFrame:
    """Rows of one curve kind from arrays ``[g, v, P]`` (``P`` points a line), keeping the
    points where ``mask[g, v, P]``; ``point`` numbers the kept points of each line."""
    g, v, p = np.nonzero(mask)
    order = np.cumsum(mask, axis=-1) - 1
    return pd.DataFrame(
        {
            "curve": curve,
            "slice": np.array([str(s) for s in stats.slices], dtype=object)[g],
            "model_version": np.array(stats.versions, dtype=object)[v],
            "series": series,
            "point": order[g, v, p],
            **{name: np.broadcast_to(array, mask.shape)[g, v, p] for name, array in values.items()},
        }
    )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``tasks.base.divide`` (NaN where the denominator is 0), which this module cannot
    import: the task registry's package imports the tasks, which import this module."""
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def roc_pr_curves(
    stats: "Statistics",
    negatives: np.ndarray,
    positives: np.ndarray,
    threshold: np.ndarray,
    roc: str = "roc",
    pr: str | None = "pr",
    series: str = "",
) -> list[pd.DataFrame]:
    """ROC and PR points from per-bin counts ``[g, v, C]`` ordered by score, one point per
    occupied bin, swept from the highest bin down (scikit-learn's ``roc_curve`` with
    ``drop_intermediate=False`` and ``precision_recall_curve`` sweep distinct scores the same
    way, so a bin whose rows share one score gives their point exactly; Fawcett 2006).

    A point counts a bin and every bin above it as predicted positive; ``threshold[g, v, C]``
    is the score of that bin. The ROC line starts at (0, 0) (threshold +inf) and the PR line
    at recall 0, precision 1 (no threshold), as scikit-learn's do.
    """
    neg, pos = negatives[..., ::-1], positives[..., ::-1]
    fp, tp = np.cumsum(neg, axis=-1), np.cumsum(pos, axis=-1)
    occupied = (neg + pos) > 0
    P, N = tp[..., -1:], fp[..., -1:]
    lead = np.ones((*occupied.shape[:-1], 1), dtype=bool) & (P + N > 0)
    zero = np.zeros(lead.shape)
    flipped = threshold[..., ::-1]
    parts = [
        points(
            stats,
            roc,
            np.concatenate([lead, occupied], axis=-1),
            series,
            x=np.concatenate([zero, _ratio(fp, N)], axis=-1),
            y=np.concatenate([zero, _ratio(tp, P)], axis=-1),
            n=np.concatenate([zero, fp + tp], axis=-1),
            threshold=np.concatenate([zero + np.inf, flipped], axis=-1),
        )
    ]
    if pr is not None:
        parts.append(
            points(
                stats,
                pr,
                np.concatenate([lead, occupied], axis=-1),
                series,
                x=np.concatenate([zero, _ratio(tp, P)], axis=-1),
                y=np.concatenate([zero + 1.0, _ratio(tp, tp + fp)], axis=-1),
                n=np.concatenate([zero, fp + tp], axis=-1),
                threshold=np.concatenate([zero + np.nan, flipped], axis=-1),
            )
        )
    return parts


def histogram_points(
    stats: "Statistics",
    curve: str,
    count: np.ndarray,
    edges: np.ndarray,
    series: str = "",
) -> pd.DataFrame:
    """Every bin of ``count[g, v, C]`` (edges ``[C + 1]``, or ``[g, v, C + 1]``) of the
    slices and versions with rows: ``x`` the bin's centre, ``y`` its share of the line's
    rows, ``n`` its rows."""
    edges = np.broadcast_to(edges, (*count.shape[:-1], count.shape[-1] + 1))
    total = count.sum(-1, keepdims=True)
    return points(
        stats,
        curve,
        np.broadcast_to(total > 0, count.shape),
        series,
        x=(edges[..., :-1] + edges[..., 1:]) / 2,
        y=_ratio(count, total),
        n=count,
        x_low=edges[..., :-1],
        x_high=edges[..., 1:],
    )


def template(name: str) -> str:
    """An SQL template of ``sql/`` (as :func:`eval_pipelines.sqlbuild.template`, which this
    module cannot import: the builder imports the task registry, whose tasks import this)."""
    return importlib.resources.files("eval_pipelines.sql").joinpath(f"{name}.sql").read_text()


# ---------------------------------------------------------------------------- drift


# The most bins a numeric drift histogram keeps (adjacent bins of the drift grid merged).
DRIFT_CURVE_BINS = 50


def merge_grid(edges: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The drift grid's ``count[k]`` (edges ``[k + 1]``) merged into at most
    :data:`DRIFT_CURVE_BINS` runs of adjacent bins (equal runs when ``k`` is a multiple);
    the merged edges are edges of the grid."""
    k = len(count)
    if k <= DRIFT_CURVE_BINS:
        return edges, count
    starts = np.flatnonzero(np.diff(np.arange(k) * DRIFT_CURVE_BINS // k, prepend=-1))
    return np.append(edges[starts], edges[-1]), np.add.reduceat(count, starts)


def drift_curves(histograms: list[dict[str, Any]], version: str, overall: str) -> pd.DataFrame:
    """``drift_histogram`` rows from the drift step's histograms, one entry per feature:
    ``feature``, ``edges`` (numeric: ``drift.bins`` equal-width bins over both periods, merged
    by :func:`merge_grid`) or ``values`` (categorical), and the ``reference`` and ``current``
    counts. ``facet`` is the feature, ``series`` the period, ``y`` the bin's share of the
    period's rows; the drift version's rows of the whole window (slice ``overall``)."""
    parts = []
    for entry in histograms:
        for period in ("reference", "current"):
            count = np.asarray(entry[period], dtype=float)
            part: dict[str, Any] = {}
            if entry.get("edges") is not None:
                edges, count = merge_grid(np.asarray(entry["edges"], dtype=float), count)
                part = {"x": (edges[:-1] + edges[1:]) / 2, "x_low": edges[:-1], "x_high": edges[1:]}
            else:
                part = {"x_label": [str(value) for value in entry["values"]]}
            total = count.sum()
            part |= {
                "curve": "drift_histogram",
                "slice": overall,
                "model_version": version,
                "facet": entry["feature"],
                "series": period,
                "point": np.arange(len(count)),
                "y": count / total if total else np.full(len(count), np.nan),
                "n": count,
            }
            parts.append(pd.DataFrame(part))
    return frame(parts)


def curves_table(inputs: CurveInputs, drift: pd.DataFrame | None = None) -> pd.DataFrame:
    """The task's curves (its ``curves`` hook, when it has one) and the drift histograms."""
    hook = inputs.stats.task.curves
    parts = [hook(inputs)] if hook is not None else []
    if drift is not None:
        parts.append(drift)
    return frame(parts)
