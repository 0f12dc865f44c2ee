"""Sufficient statistics: the aggregate query's result turned into dense numpy arrays.

The aggregate (``sql/sufficient_statistics.sql``) returns, per slice group ``g`` and model
version ``v``:

* threshold cells ``threshold_count[g, v, k, y, side]`` with ``log_loss_sum`` and
  ``squared_error_sum[g, v, k, y]`` per resample bucket ``k`` and label ``y``, and
  ``unlabeled[g, v, k]`` (rows whose label has not arrived);
* the fine score histogram ``histogram_count`` / ``histogram_score_sum[g, v, y, bin]``.

Parsing is vectorised on Arrow/numpy columns: with many slices the result has up to a few
hundred thousand rows, and no per-row Python object is created.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.metrics import ScoreHistogram, ThresholdStats
from eval_pipelines.spec import OVERALL, EvalSpec
from eval_pipelines.sqlbuild import SqlBuilder, grouping_mask

NULL_VALUE = "(null)"


@dataclass(frozen=True)
class SliceKey:
    """A slice: the columns of its cross and their values; ``()`` is the whole window."""

    columns: tuple[str, ...]
    values: tuple[str, ...]

    def __str__(self) -> str:
        if not self.columns:
            return OVERALL
        return ", ".join(f"{c}={v}" for c, v in zip(self.columns, self.values, strict=True))


@dataclass
class SufficientStatistics:
    slices: list[SliceKey]
    versions: list[str]
    threshold_count: np.ndarray
    log_loss_sum: np.ndarray
    squared_error_sum: np.ndarray
    unlabeled: np.ndarray
    histogram_count: np.ndarray
    histogram_score_sum: np.ndarray
    calibration_bins: int

    @property
    def buckets(self) -> int:
        return self.threshold_count.shape[2]

    def threshold_point(self) -> ThresholdStats:
        """Every slice and version on all rows: axes ``[g, v, ...]``."""
        return ThresholdStats(
            count=self.threshold_count.sum(axis=2),
            log_loss_sum=self.log_loss_sum.sum(axis=2),
            squared_error_sum=self.squared_error_sum.sum(axis=2),
        )

    def threshold_replicates(self, weights: np.ndarray) -> ThresholdStats:
        """Bucket-bootstrap replicates, axes ``[g, v, B, ...]``, for ``weights[B, K]``.

        Every slice and version uses the same weights, so version differences stay paired
        (both models' rows of one request share a bucket).
        """

        def reweight(array: np.ndarray) -> np.ndarray:
            g, v, k, *rest = array.shape
            flat = array.reshape(g * v, k, -1)
            return np.matmul(weights, flat).reshape(g, v, weights.shape[0], *rest)

        return ThresholdStats(
            count=reweight(self.threshold_count),
            log_loss_sum=reweight(self.log_loss_sum),
            squared_error_sum=reweight(self.squared_error_sum),
        )

    def histogram(self) -> ScoreHistogram:
        return ScoreHistogram(
            count=self.histogram_count,
            score_sum=self.histogram_score_sum,
            calibration_bins=self.calibration_bins,
        )

    def labeled(self) -> np.ndarray:
        """Labeled rows per ``[g, v]``."""
        return self.threshold_count.sum(axis=(2, 3, 4))


def _accumulate(shape: tuple[int, ...], index: tuple[np.ndarray, ...], values) -> np.ndarray:
    """Dense array of ``shape`` with ``values`` summed at ``index`` (one bincount, no loops)."""
    flat = np.ravel_multi_index(index, shape) if len(index[0]) else np.zeros(0, dtype=np.int64)
    size = int(np.prod(shape))
    return np.bincount(flat, weights=np.asarray(values, float), minlength=size).reshape(shape)


def _column(table: pa.Table, name: str, dtype=np.int64, fill=0) -> np.ndarray:
    column = table.column(name)
    if column.null_count:
        column = pc.fill_null(column, fill)
    return column.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _text_codes(table: pa.Table, name: str) -> tuple[np.ndarray, list[str]]:
    """Dictionary codes of a column cast to text; NULL becomes the value ``(null)``."""
    column = pc.cast(table.column(name), pa.string())
    column = pc.fill_null(column, NULL_VALUE)
    encoded = pc.dictionary_encode(column).combine_chunks()
    return encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist()


def slice_groups(
    table: pa.Table, spec: EvalSpec, builder: SqlBuilder
) -> tuple[np.ndarray, list[SliceKey]]:
    """Each result row's slice group (``-1`` for rows of no configured cross), and the
    groups: ``overall`` first, then each cross's values in sorted order."""
    aliases = builder.grouping_columns([])
    alias_of = dict(zip(spec.slice_columns, aliases, strict=True))
    grouping_id = _column(table, "grouping_id")
    codes = {alias: _text_codes(table, alias) for alias in aliases}
    g_all = np.full(table.num_rows, -1, dtype=np.int64)
    slices = [SliceKey((), ())]  # always present, even for an empty window: gates fail closed
    for cross in spec.slice_crosses:
        cols = [alias_of[c] for c in cross]
        rows = grouping_id == (grouping_mask(aliases, cols) if aliases else 0)
        if not cols:
            g_all[rows] = 0
            continue
        # One int64 key per row (mixed radix over the columns' dictionary codes), then a
        # hash factorisation: linear time, unlike sorting rows of a 2-D array.
        radices = [len(codes[c][1]) for c in cols]
        if np.prod(radices, dtype=float) < 2**62:
            key = np.zeros(int(rows.sum()), dtype=np.int64)
            for c in cols:
                key = key * len(codes[c][1]) + codes[c][0][rows]
            inverse, unique_keys = pd.factorize(key)
            unique = np.empty((len(unique_keys), len(cols)), dtype=np.int64)
            rest = unique_keys.copy()
            for position in range(len(cols) - 1, -1, -1):
                unique[:, position] = rest % radices[position]
                rest //= radices[position]
        else:  # too many distinct values to pack into one integer
            stacked = np.stack([codes[c][0][rows] for c in cols], axis=1)
            unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
        values = [tuple(codes[c][1][i] for c, i in zip(cols, key, strict=True)) for key in unique]
        order = sorted(range(len(values)), key=lambda i: values[i])
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        g_all[rows] = len(slices) + rank[inverse.ravel()]
        slices.extend(SliceKey(cross, values[i]) for i in order)

    return g_all, slices


def parse_statistics(table: pa.Table, spec: EvalSpec, builder: SqlBuilder) -> SufficientStatistics:
    """Index the aggregate result; every configured slice cross yields its groups."""
    family = pc.equal(table.column("family"), "threshold").to_numpy(zero_copy_only=False)

    version_codes, version_values = _text_codes(table, "model_version")
    versions = sorted(v for v in set(version_values) if v != NULL_VALUE)
    version_of_code = np.array([versions.index(v) if v in versions else -1 for v in version_values])
    v_all = version_of_code[version_codes] if len(version_values) else version_codes

    g_all, slices = slice_groups(table, spec, builder)
    G, V = len(slices), len(versions)
    K = spec.confidence.buckets
    F = spec.score_bins
    label_null = pc.is_null(table.column("label")).to_numpy(zero_copy_only=False)
    label = _column(table, "label")
    n = _column(table, "n", float)

    threshold = family & (g_all >= 0)
    lab, unl = threshold & ~label_null, threshold & label_null
    k = _column(table, "bucket")
    side = _column(table, "above")
    cell = (g_all[lab], v_all[lab], k[lab], label[lab], side[lab])
    by_label = cell[:4]

    hist = ~family & (g_all >= 0) & ~label_null
    fine = (g_all[hist], v_all[hist], label[hist], _column(table, "fine_bin")[hist])
    return SufficientStatistics(
        slices=slices,
        versions=versions,
        threshold_count=_accumulate((G, V, K, 2, 2), cell, n[lab]),
        log_loss_sum=_accumulate(
            (G, V, K, 2), by_label, _column(table, "log_loss_sum", float)[lab]
        ),
        squared_error_sum=_accumulate(
            (G, V, K, 2), by_label, _column(table, "squared_error_sum", float)[lab]
        ),
        unlabeled=_accumulate((G, V, K), (g_all[unl], v_all[unl], k[unl]), n[unl]),
        histogram_count=_accumulate((G, V, 2, F), fine, n[hist]),
        histogram_score_sum=_accumulate(
            (G, V, 2, F), fine, _column(table, "score_sum", float)[hist]
        ),
        calibration_bins=spec.calibration_bins,
    )


@dataclass
class PairedCells:
    """Requests scored by both baseline and candidate, per slice of ``slices``:

    * ``outcomes[g, 3]``: pairs only the baseline classified correctly, only the candidate,
      and all labeled pairs (McNemar's test);
    * ``count[g, y, a, b]`` with ``baseline_score_sum`` / ``candidate_score_sum``: joint cells
      of the baseline's score bin ``a`` and the candidate's ``b`` (paired cell bootstrap).
    """

    outcomes: np.ndarray
    count: np.ndarray
    baseline_score_sum: np.ndarray
    candidate_score_sum: np.ndarray


def parse_paired(
    table: pa.Table, spec: EvalSpec, builder: SqlBuilder, slices: list[SliceKey]
) -> PairedCells:
    """Index the paired query's result by the slices of the main statistics."""
    g_local, local_slices = slice_groups(table, spec, builder)
    position = {key: i for i, key in enumerate(slices)}
    remap = np.array([position.get(key, -1) for key in local_slices] + [-1], dtype=np.int64)
    g = remap[g_local]  # g_local == -1 picks the trailing -1
    keep = g >= 0
    label = _column(table, "label")
    baseline_right = _column(table, "baseline_above") == label
    candidate_right = _column(table, "candidate_above") == label
    n = _column(table, "n", float)
    G, R = len(slices), spec.confidence.paired_bins

    def per_slice(mask: np.ndarray) -> np.ndarray:
        return _accumulate((G,), (g[keep & mask],), n[keep & mask])

    outcomes = np.stack(
        [
            per_slice(baseline_right & ~candidate_right),
            per_slice(candidate_right & ~baseline_right),
            per_slice(np.ones(len(g), dtype=bool)),
        ],
        axis=1,
    )
    cell = (
        g[keep],
        label[keep],
        _column(table, "baseline_bin")[keep],
        _column(table, "candidate_bin")[keep],
    )
    return PairedCells(
        outcomes=outcomes,
        count=_accumulate((G, 2, R, R), cell, n[keep]),
        baseline_score_sum=_accumulate(
            (G, 2, R, R), cell, _column(table, "baseline_score_sum", float)[keep]
        ),
        candidate_score_sum=_accumulate(
            (G, 2, R, R), cell, _column(table, "candidate_score_sum", float)[keep]
        ),
    )
