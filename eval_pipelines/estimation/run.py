"""Run CBPE for one evaluated week: one warehouse query, then numpy on its small result.

1. ``sql/estimation_histograms.sql`` returns the reference weeks' labeled score histogram per
   model version and the evaluated week's score histogram (every row, labeled or not) per
   slice, version and threshold side.
2. Per version, the isotonic calibration is fitted on the reference histogram
   (:func:`~eval_pipelines.estimation.calibration.fit_isotonic`).
3. Each cell of the week gets its expected positives, ``rows x calibration(mean score)``;
   the task's metric functions over the expected statistics give the estimates, and the
   cell bootstrap (calibration held fixed) their intervals.

A version with too few labeled reference rows, or only one class among them, gets no
estimate: its rows carry ``status = "no_reference"`` and NaN values, a non-blocking input
note says why, and a gate on them is inconclusive (fail closed, no traceback).
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.estimation import base_metric, estimated_metrics, estimated_name, is_estimated
from eval_pipelines.estimation.binary import (
    EXPECTED_CELLS,
    ExpectedCells,
    estimated_bound,
    estimated_function,
)
from eval_pipelines.estimation.calibration import IsotonicMap, fit_isotonic
from eval_pipelines.evaluation import METRIC_COLUMNS
from eval_pipelines.inference.resampling import percentile_interval
from eval_pipelines.spec import EvalSpec
from eval_pipelines.sqlbuild import SqlBuilder
from eval_pipelines.stats.base import accumulate, column
from eval_pipelines.stats.parse import SliceKey, slice_groups
from eval_pipelines.validation import CheckResult
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import Window, reference_window

NO_REFERENCE = "no_reference"


@dataclass
class Estimation:
    """One week's estimates: ``metrics`` (rows ``estimated_<metric>`` in the columns of
    ``metrics.parquet``), the calibration per version (None where there is none, with the
    reason in ``problems``) and the query that ran."""

    metrics: pd.DataFrame
    calibration: dict[str, IsotonicMap | list[IsotonicMap] | None]
    problems: dict[str, str] = field(default_factory=dict)
    query: str = ""

    def notes(self) -> list[CheckResult]:
        """Non-blocking input notes for versions that could not be estimated."""
        return [
            CheckResult("estimation_reference", False, message, blocking=False, version=version)
            for version, message in self.problems.items()
        ]


def estimation_query(builder: SqlBuilder, window: Window) -> str:
    """``sql/estimation_histograms.sql`` for the evaluated ``window`` and its reference weeks."""
    spec = builder.spec
    assert spec.estimation is not None
    aliases = builder.grouping_columns([])
    reference = reference_window(window, spec.estimation.reference_weeks)
    sets = builder.grouping_sets(spec.slice_crosses, ["model_version", "above", "fine_bin"])
    return builder.render(
        "estimation_histograms",
        window=builder.window(window),
        reference=builder.window_join(reference),
        slice_passthrough="".join(f"{a}, " for a in aliases),
        slice_outputs="".join(f"{a},\n    " for a in aliases),
        null_slices="".join(f"{builder.as_text('NULL')} AS {a},\n    " for a in aliases),
        grouping_id=builder.grouping_id(aliases),
        threshold=builder.literal(float(spec.threshold)),
        fine_bins=spec.score_bins,
        score_sum=builder.fixed_point_sum("score"),
        total_score_sum=builder.dialect.integer_sum("score_sum"),
        reference_score_sum=builder.fixed_point_sum("score"),
        current_sets=builder._render_sets(sets),
    )


def _version_index(table: pa.Table, versions: list[str]) -> np.ndarray:
    """Each row's position in ``versions`` (-1: another version or NULL), vectorised: the
    week's result has a row per slice, version and cell."""
    text = pc.fill_null(pc.cast(table.column("model_version"), pa.string()), "")
    encoded = pc.dictionary_encode(text).combine_chunks()
    position = {version: j for j, version in enumerate(versions)}
    lookup = np.array([position.get(x, -1) for x in encoded.dictionary.to_pylist()] + [-1])
    return lookup[encoded.indices.to_numpy(zero_copy_only=False)]


def calibrations(
    table: pa.Table, versions: list[str], spec: EvalSpec, window: Window
) -> tuple[dict[str, IsotonicMap | None], dict[str, str]]:
    """Per version, the isotonic map fitted on its labeled reference rows, or why not."""
    assert spec.estimation is not None
    C = spec.score_bins
    label = column(table, "label")
    bins = column(table, "fine_bin")
    n = column(table, "n", float)
    scores = column(table, "score_sum", float)
    v = _version_index(table, versions)
    reference = reference_window(window, spec.estimation.reference_weeks)
    where = (
        f"in the {spec.estimation.reference_weeks} reference weeks {reference} "
        "(estimation.reference_weeks)"
    )
    fitted: dict[str, IsotonicMap | None] = {}
    problems: dict[str, str] = {}
    for j, version in enumerate(versions):
        rows = v == j
        count = np.zeros((2, C))
        score_sum = np.zeros(C)
        if rows.any():
            count = accumulate((2, C), (label[rows], bins[rows]), n[rows])
            score_sum = accumulate((C,), (bins[rows],), scores[rows])
        total, positives = count.sum(), count[1].sum()
        minimum = spec.estimation.min_reference_rows
        problem = None
        if total < minimum:
            problem = (
                f"estimation: {version} has {int(total):,} labeled rows {where}, below "
                f"estimation.min_reference_rows ({minimum:,}); its estimated metrics are "
                "missing (status no_reference) until earlier weeks hold labels"
            )
        elif positives == 0 or positives == total:
            which = "positive" if positives else "negative"
            problem = (
                f"estimation: {version}'s {int(total):,} labeled rows {where} are all "
                f"{which}, so the scores cannot be calibrated; its estimated metrics are missing"
            )
        if problem:
            fitted[version] = None
            problems[version] = problem
        else:
            fitted[version] = fit_isotonic(count.sum(0), count[1], score_sum)
    return fitted, problems


def expected_cells(
    table: pa.Table,
    slices: list[SliceKey],
    versions: list[str],
    calibration: dict[str, IsotonicMap | None],
    spec: EvalSpec,
    builder: SqlBuilder,
) -> ExpectedCells:
    """The week's cells ``[g, v, side, bin]`` with their expected positives."""
    G, V, C = len(slices), len(versions), spec.score_bins
    shape = (G, V, 2, C)
    if table.num_rows == 0:
        return ExpectedCells(np.zeros(shape), np.zeros(shape))
    g_local, local_slices = slice_groups(table, spec, builder)
    position = {key: i for i, key in enumerate(slices)}
    remap = np.array([position.get(key, -1) for key in local_slices] + [-1], dtype=np.int64)
    g = remap[g_local]
    index = {version: i for i, version in enumerate(versions)}
    v = _version_index(table, versions)
    keep = (g >= 0) & (v >= 0)
    cell = (g[keep], v[keep], column(table, "above")[keep], column(table, "fine_bin")[keep])
    count = accumulate(shape, cell, column(table, "n", float)[keep])
    score_sum = accumulate(shape, cell, column(table, "score_sum", float)[keep])
    positive = np.zeros(shape)
    for version, fitted in calibration.items():
        if fitted is None:
            continue
        j = index[version]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count[:, j] > 0, score_sum[:, j] / np.maximum(count[:, j], 1), 0.0)
        positive[:, j] = count[:, j] * fitted(mean)
    return ExpectedCells(count, positive)


def _status(n: float, calibrated: bool, spec: EvalSpec) -> str:
    if not calibrated:
        return NO_REFERENCE
    if n == 0:
        return "empty"
    return "too_small" if n < spec.min_slice_size else "ok"


def estimate(
    spec: EvalSpec,
    window: Window,
    warehouse: Warehouse,
    builder: SqlBuilder,
    slices: list[SliceKey],
    versions: list[str],
) -> Estimation:
    """The estimated metrics of every slice and version of the evaluated week."""
    names = estimated_metrics(spec.task, spec.metrics)
    if not names:  # none of the spec's metrics is estimated: no query
        return Estimation(metrics=pd.DataFrame(columns=METRIC_COLUMNS), calibration={})
    sql = estimation_query(builder, window)
    table = warehouse.query_arrow(sql, "estimation histograms")
    part = table.column("part")
    reference = table.filter(pc.equal(part, "reference"))
    current = table.filter(pc.equal(part, "current"))
    calibration, problems = calibrations(reference, versions, spec, window)
    cells = expected_cells(current, slices, versions, calibration, spec, builder)
    functions = {name: estimated_function(name) for name in names}
    with np.errstate(invalid="ignore", divide="ignore"):
        point = {name: f(cells) for name, f in functions.items()}
        bounds = {name: estimated_bound(name) for name in names}
        deviation = EXPECTED_CELLS.bootstrap.deviations(EXPECTED_CELLS, cells, functions, spec)
    n = cells.n
    positives = cells.positive.sum(axis=(-1, -2))
    rows = []
    for name in names:
        low, high = percentile_interval(point[name], deviation[name], spec.confidence.level)
        bound = bounds[name](cells) if bounds[name] else np.zeros(point[name].shape)
        for v, version in enumerate(versions):
            calibrated = calibration.get(version) is not None
            for g, key in enumerate(slices):
                status = _status(float(n[g, v]), calibrated, spec)
                usable = calibrated and n[g, v] > 0
                rows.append(
                    {
                        "model_version": version,
                        "slice": str(key),
                        "metric": estimated_name(name),
                        "value": float(point[name][g, v]) if usable else np.nan,
                        "ci_low": float(low[g, v]) if usable else np.nan,
                        "ci_high": float(high[g, v]) if usable else np.nan,
                        "n": int(n[g, v]),
                        "n_positive": round(float(positives[g, v])) if usable else 0,
                        "status": status,
                        "error_bound": float(bound[g, v]) if usable else np.nan,
                    }
                )
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    return Estimation(metrics=frame, calibration=calibration, problems=problems, query=sql)


def with_estimates(metrics: pd.DataFrame, estimates: pd.DataFrame) -> pd.DataFrame:
    """The realized metrics with the estimated rows beside them: each ``estimated_<m>`` right
    after ``<m>`` of the same version and slice (the order of ``metrics.parquet``)."""
    # pandas warns on (and will change) concatenating an empty frame: none to add, none added.
    frame = metrics if estimates.empty else pd.concat([metrics, estimates], ignore_index=True)
    order = frame.assign(
        _base=frame["metric"].map(base_metric), _estimated=frame["metric"].map(is_estimated)
    ).sort_values(["model_version", "slice", "_base", "_estimated"], kind="stable")
    return frame.loc[order.index].reset_index(drop=True)
