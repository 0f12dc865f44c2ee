"""Run multiclass CBPE for one evaluated week: one warehouse query, then numpy on its result.

1. ``sql/estimation_multiclass.sql`` returns, per model version, the reference weeks'
   labeled one-vs-rest histograms of each class's score, and the evaluated week's per-class
   score histograms per slice, version and predicted class (every row, labeled or not).
2. Per version and class, the isotonic calibration is fitted on the reference histogram
   (:func:`~eval_pipelines.estimation.multiclass.fit_class_calibrations`).
3. The week's expected confusion ``E[i, j]`` follows from the calibrated mass per cell,
   normalised per predicted class (:func:`~eval_pipelines.estimation.multiclass.binned_confusion`);
   the multiclass task's own ``accuracy`` and ``macro_f1`` on it are the estimates, and
   a cell bootstrap (calibration held fixed, labels redrawn) gives their intervals.

A version with fewer than ``estimation.min_reference_rows`` labeled reference rows gets no
estimate (``status = "no_reference"``, NaN values, a non-blocking input note), as binary.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.estimation import estimated_metrics, estimated_name
from eval_pipelines.estimation.calibration import IsotonicMap
from eval_pipelines.estimation.multiclass import binned_confusion, fit_class_calibrations
from eval_pipelines.estimation.run import Estimation, _status, _version_index
from eval_pipelines.evaluation import METRIC_COLUMNS
from eval_pipelines.inference.bootstrap import CELL_BOOTSTRAP
from eval_pipelines.inference.resampling import merge_bins, percentile_interval
from eval_pipelines.spec import EvalSpec
from eval_pipelines.sqlbuild import SqlBuilder
from eval_pipelines.stats.base import accumulate, column
from eval_pipelines.stats.multiclass import ConfusionStats, classes_of, score_columns
from eval_pipelines.stats.parse import SliceKey, slice_groups
from eval_pipelines.tasks.multiclass import MULTICLASS
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import Window, reference_window


def estimation_query(builder: SqlBuilder, window: Window) -> str:
    """``sql/estimation_multiclass.sql`` for the evaluated ``window`` and its reference weeks."""
    spec = builder.spec
    assert spec.estimation is not None
    classes = classes_of(spec)
    scores = [f"cs_{i}" for i in range(len(score_columns(spec)))]
    aliases = builder.grouping_columns([])
    reference = reference_window(window, spec.estimation.reference_weeks)
    sets = builder.grouping_sets(
        spec.slice_crosses, ["model_version", "predicted_class", "class_index", "fine_bin"]
    )
    return builder.render(
        "estimation_multiclass",
        window=builder.window(window),
        reference=builder.window_join(reference),
        slice_passthrough="".join(f"{a}, " for a in aliases),
        slice_outputs="".join(f"{a},\n    " for a in aliases),
        null_slices="".join(f"{builder.as_text('NULL')} AS {a},\n    " for a in aliases),
        grouping_id=builder.grouping_id(aliases),
        predicted_class=builder._class_index("prediction", classes),
        label_class=builder._class_index("label", classes),
        score_passthrough="".join(f", {s}" for s in scores),
        class_score="CASE classes.class_index "
        + " ".join(f"WHEN {i} THEN {s}" for i, s in enumerate(scores))
        + " END",
        class_values=", ".join(f"({i})" for i in range(len(scores))),
        fine_bins=spec.score_bins,
        score_sum=builder.fixed_point_sum("class_score"),
        total_score_sum=builder.dialect.integer_sum("score_sum"),
        reference_score_sum=builder.fixed_point_sum("class_score"),
        current_sets=builder._render_sets(sets),
    )


def calibrations(
    table: pa.Table, versions: list[str], spec: EvalSpec, window: Window
) -> tuple[dict[str, list[IsotonicMap] | None], dict[str, str]]:
    """Per version, one isotonic map per class fitted on its labeled reference rows, or why
    not."""
    assert spec.estimation is not None
    C, bins = len(classes_of(spec)), spec.score_bins
    v = _version_index(table, versions)
    klass, is_class = column(table, "class_index"), column(table, "is_class")
    fine, n = column(table, "fine_bin"), column(table, "n", float)
    scores = column(table, "score_sum", float)
    reference = reference_window(window, spec.estimation.reference_weeks)
    fitted: dict[str, list[IsotonicMap] | None] = {}
    problems: dict[str, str] = {}
    for j, version in enumerate(versions):
        rows = v == j
        count = accumulate((C, 2, bins), (klass[rows], is_class[rows], fine[rows]), n[rows])
        score_sum = accumulate((C, bins), (klass[rows], fine[rows]), scores[rows])
        per_class = count.sum(axis=(1, 2))
        labeled, minimum = float(per_class.min()), spec.estimation.min_reference_rows
        if labeled < minimum:
            fitted[version] = None
            problems[version] = (
                f"estimation: {version} has {int(labeled):,} labeled rows in the "
                f"{spec.estimation.reference_weeks} reference weeks {reference} "
                f"(estimation.reference_weeks), below estimation.min_reference_rows "
                f"({minimum:,}); its estimated metrics are missing (status no_reference) "
                "until earlier weeks hold labels"
            )
        else:
            fitted[version] = fit_class_calibrations(count, score_sum)
    return fitted, problems


@dataclass(frozen=True)
class ExpectedConfusion:
    """A week's expected confusion ``confusion[..., C_i, C_j]`` (true class by predicted),
    and its bootstrap cells: per predicted class ``j`` and bin of class ``j``'s own score,
    ``count[..., C_j, bins]`` rows and ``correct[..., C_j, bins]`` expected correct rows
    (their share of ``E[j, j]``), and ``share[..., C_i, C_j]``, how the expected wrong rows
    of a predicted class split among the true classes. Replicates carry ``confusion`` only."""

    confusion: np.ndarray
    count: np.ndarray
    correct: np.ndarray
    share: np.ndarray

    @property
    def n(self) -> np.ndarray:
        return self.confusion.sum(axis=(-1, -2))

    def stats(self, classes: tuple[str, ...]) -> ConfusionStats:
        zeros = np.zeros(self.confusion.shape[:-2])
        return ConfusionStats(
            classes=classes,
            count=self.confusion,
            rank_count=np.zeros(self.confusion.shape[:-1]),
            log_loss_sum=zeros,
        )


def _spread(count: np.ndarray, mass: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Each bin's expected correct rows ``[..., bins]``, summing to ``expected[...]`` and within
    ``[0, count]``: the calibrated ``mass`` scaled down when it exceeds ``expected``, else the
    expected misses (``count - mass``) scaled down, so that no bin's share exceeds 1."""
    rows = count.sum(-1, keepdims=True)
    total = mass.sum(-1, keepdims=True)
    target = expected[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        down = mass * np.where(total > 0, target / np.where(total > 0, total, 1), 0.0)
        misses = rows - total
        factor = np.where(misses > 0, (rows - target) / np.where(misses > 0, misses, 1), 0.0)
        up = count - (count - mass) * factor
    return np.clip(np.where(target <= total, down, up), 0.0, count)


def expected_confusion(
    table: pa.Table,
    slices: list[SliceKey],
    versions: list[str],
    calibration: dict[str, list[IsotonicMap] | None],
    spec: EvalSpec,
    builder: SqlBuilder,
) -> tuple[ExpectedConfusion, np.ndarray]:
    """The week's expected confusion ``[g, v, C, C]`` with its cells, and the rows ``[g, v]``
    (every prediction of a declared class, labeled or not)."""
    G, V, C, bins = len(slices), len(versions), len(classes_of(spec)), spec.score_bins
    shape = (G, V, C, C, bins)
    count, score_sum = np.zeros(shape), np.zeros(shape)
    if table.num_rows:
        g_local, local_slices = slice_groups(table, spec, builder)
        position = {key: i for i, key in enumerate(slices)}
        remap = np.array([position.get(key, -1) for key in local_slices] + [-1], dtype=np.int64)
        g = remap[g_local]
        v = _version_index(table, versions)
        keep = (g >= 0) & (v >= 0)
        cell = (
            g[keep],
            v[keep],
            column(table, "class_index")[keep],
            column(table, "predicted_class")[keep],
            column(table, "fine_bin")[keep],
        )
        count = accumulate(shape, cell, column(table, "n", float)[keep])
        score_sum = accumulate(shape, cell, column(table, "score_sum", float)[keep])
    diagonal = np.arange(C)
    own_count = count[:, :, diagonal, diagonal, :]  # [g, v, C_j, bins]: class j's own score
    rows = own_count.sum(-1)
    confusion = np.zeros((G, V, C, C))
    correct = np.zeros(own_count.shape)
    for version, maps in calibration.items():
        if maps is None:
            continue
        j = versions.index(version)
        confusion[:, j], calibrated = binned_confusion(count[:, j], score_sum[:, j], maps)
        mass = calibrated[:, diagonal, diagonal, :]  # [g, C_j, bins]: sum of cal_j
        correct[:, j] = _spread(own_count[:, j], mass, confusion[:, j, diagonal, diagonal])
    wrong = confusion.copy()
    wrong[..., diagonal, diagonal] = 0.0
    total = wrong.sum(-2, keepdims=True)
    others = (1.0 - np.eye(C)) / max(C - 1, 1)
    share = np.where(total > 0, wrong / np.where(total > 0, total, 1), others)
    return ExpectedConfusion(confusion, own_count, correct, share), rows.sum(-1)


class ExpectedConfusionFamily:
    """The expected confusion as a cell-bootstrap family whose replicates are weeks the
    calibrated model could have produced: each cell's rows (predicted class x bin of its own
    score, at ``confidence.score_bins``) are redrawn Poisson(n), their correct rows
    Binomial(rows, p) at the cell's expected share correct, and each predicted class's wrong
    rows split Multinomial among the true classes by the expected shares. As binary, the
    interval is one for the *realized* metric of a week like this one (docs/estimation.md)."""

    name = "expected_confusion"
    bootstrap = CELL_BOOTSTRAP

    def point(self, data: ExpectedConfusion) -> ExpectedConfusion:
        return data

    def cells(self, data: ExpectedConfusion) -> int:
        return int(data.count.size + data.share.size)

    def coarsen(self, data: ExpectedConfusion, spec) -> ExpectedConfusion:
        bins = spec.confidence.score_bins
        return ExpectedConfusion(
            data.confusion, merge_bins(data.count, bins), merge_bins(data.correct, bins), data.share
        )

    def redraw(
        self, data: ExpectedConfusion, chunk: np.ndarray, replicates: int, rng: np.random.Generator
    ) -> ExpectedConfusion:
        """Replicates ``[g, v, B, C, C]`` of the slice groups ``chunk``."""
        count, correct = data.count[chunk], data.correct[chunk]  # [g, v, C_j, bins]
        drawn = rng.poisson(np.broadcast_to(count, (replicates, *count.shape))).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.clip(np.where(count > 0, correct / np.where(count > 0, count, 1), 0.0), 0, 1)
        hits = rng.binomial(drawn.astype(np.int64), p).astype(float)
        misses = (drawn - hits).sum(-1)  # [B, g, v, C_j]
        share = np.moveaxis(data.share[chunk], -2, -1)  # [g, v, C_j, C_i]
        share = share / share.sum(-1, keepdims=True)
        split = rng.multinomial(
            misses.astype(np.int64), np.broadcast_to(share, (*misses.shape, share.shape[-1]))
        ).astype(float)  # [B, g, v, C_j, C_i]
        confusion = np.swapaxes(split, -1, -2)  # [B, g, v, C_i, C_j]
        C = confusion.shape[-1]
        confusion[..., np.arange(C), np.arange(C)] += hits.sum(-1)
        confusion = np.moveaxis(confusion, 0, 2)  # [g, v, B, C_i, C_j]
        empty = np.empty(0)
        return ExpectedConfusion(confusion, empty, empty, empty)


EXPECTED_CONFUSION = ExpectedConfusionFamily()


def estimated_function(metric: str, classes: tuple[str, ...]):
    """``expected confusion -> estimate``: the multiclass task's own metric function."""
    entry = MULTICLASS.metric(metric)
    return lambda data: entry.compute(data.stats(classes))


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
    if not names:
        return Estimation(metrics=pd.DataFrame(columns=METRIC_COLUMNS), calibration={})
    sql = estimation_query(builder, window)
    table = warehouse.query_arrow(sql, "estimation histograms")
    part = table.column("part")
    calibration, problems = calibrations(
        table.filter(pc.equal(part, "reference")), versions, spec, window
    )
    data, n = expected_confusion(
        table.filter(pc.equal(part, "current")), slices, versions, calibration, spec, builder
    )
    classes = classes_of(spec)
    functions = {name: estimated_function(name, classes) for name in names}
    with np.errstate(invalid="ignore", divide="ignore"):
        point = {name: f(data) for name, f in functions.items()}
        deviation = EXPECTED_CONFUSION.bootstrap.deviations(
            EXPECTED_CONFUSION, data, functions, spec
        )
    rows = []
    for name in names:
        low, high = percentile_interval(point[name], deviation[name], spec.confidence.level)
        for v, version in enumerate(versions):
            calibrated = calibration.get(version) is not None
            for g, key in enumerate(slices):
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
                        "n_positive": 0,
                        "status": _status(float(n[g, v]), calibrated, spec),
                        "error_bound": 0.0 if usable else np.nan,
                    }
                )
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    return Estimation(metrics=frame, calibration=calibration, problems=problems, query=sql)
