"""Sufficient statistics: the aggregate query's result turned into dense numpy arrays.

The aggregate (``sql/sufficient_statistics.sql``) returns at most a few cells per slice,
version, label, resample bucket and score bin; this module indexes them as arrays

* ``count``/``score_sum[g, v, k, y, c]``: slice group ``g``, model version ``v``, resample
  bucket ``k``, label ``y`` and ordered score cell ``c`` (coarse bin x threshold side);
* ``log_loss_sum``/``squared_error_sum[g, v, k, y]`` and ``unlabeled[g, v, k]``;
* ``fine[g, v, y, b]``: the fine score histogram for ROC AUC / PR AUC point estimates.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval_pipelines.metrics import BinnedStats
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
    count: np.ndarray
    score_sum: np.ndarray
    log_loss_sum: np.ndarray
    squared_error_sum: np.ndarray
    unlabeled: np.ndarray
    fine: np.ndarray
    predicted_positive: np.ndarray
    calibration_bin: np.ndarray
    calibration_bins: int

    @property
    def buckets(self) -> int:
        return self.count.shape[2]

    def point(self) -> BinnedStats:
        """Statistics of every slice and version on all rows: axes ``[g, v, ...]``."""
        return self._stats(lambda a: a.sum(axis=2))

    def replicates(self, g: int, weights: np.ndarray) -> BinnedStats:
        """Bucket-bootstrap replicates of slice ``g``: axes ``[v, B, ...]`` for ``weights[B, K]``.

        Every version and slice uses the same weights, so differences between versions stay
        paired (both models' rows of one request share a bucket).
        """
        return self._stats(
            lambda a: np.moveaxis(np.tensordot(weights, a[g], axes=([1], [1])), 0, 1)
        )

    def _stats(self, combine) -> BinnedStats:
        return BinnedStats(
            count=combine(self.count),
            score_sum=combine(self.score_sum),
            log_loss_sum=combine(self.log_loss_sum),
            squared_error_sum=combine(self.squared_error_sum),
            predicted_positive=self.predicted_positive,
            calibration_bin=self.calibration_bin,
            calibration_bins=self.calibration_bins,
        )


def _accumulate(shape: tuple[int, ...], index: tuple[np.ndarray, ...], values) -> np.ndarray:
    """Dense array of ``shape`` with ``values`` summed at ``index`` (one bincount, no loops)."""
    flat = np.ravel_multi_index(index, shape) if len(index[0]) else np.zeros(0, dtype=np.int64)
    size = int(np.prod(shape))
    return np.bincount(flat, weights=np.asarray(values, float), minlength=size).reshape(shape)


def parse_statistics(
    frame: pd.DataFrame, spec: EvalSpec, builder: SqlBuilder
) -> SufficientStatistics:
    """Index the aggregate result; every configured slice cross yields its groups.

    Vectorised throughout: the result can hold millions of cells (many slices, fine bins).
    """
    aliases = builder.grouping_columns([])
    all_columns = builder.grouping_columns(["bucket", "fine_bin"])
    alias_of = dict(zip(spec.slice_columns, aliases, strict=True))
    frame = frame.copy()
    for alias in aliases:
        frame[alias] = frame[alias].astype(object).where(frame[alias].notna(), NULL_VALUE)

    versions = sorted(str(v) for v in frame["model_version"].dropna().unique())
    frame["_v"] = pd.Categorical(frame["model_version"].astype(str), categories=versions).codes
    frame["_g"] = -1

    slices = [SliceKey((), ())]  # always present, even for an empty window: gates fail closed
    resample_masks, histogram_masks = [], []
    for cross in spec.slice_crosses:
        cols = [alias_of[c] for c in cross]
        resample_mask = grouping_mask(all_columns, [*cols, "bucket"])
        histogram_mask = grouping_mask(all_columns, [*cols, "fine_bin"])
        resample_masks.append(resample_mask)
        histogram_masks.append(histogram_mask)
        rows = frame["grouping_id"].isin([resample_mask, histogram_mask]).to_numpy()
        if not cols:
            frame.loc[rows, "_g"] = 0
            continue
        values = frame.loc[rows, cols].astype(str)
        keys = values.drop_duplicates().sort_values(cols).reset_index(drop=True)
        keys["_g"] = np.arange(len(slices), len(slices) + len(keys))
        slices.extend(SliceKey(cross, tuple(row)) for row in keys[cols].itertuples(index=False))
        frame.loc[rows, "_g"] = values.merge(keys, on=cols, how="left")["_g"].to_numpy()

    G, V = len(slices), len(versions)
    K = spec.confidence.buckets
    R = spec.confidence.score_bins
    C = 2 * R
    F = spec.score_bins

    resample = frame[frame["grouping_id"].isin(resample_masks)]
    histogram = frame[frame["grouping_id"].isin(histogram_masks)]
    labeled = resample["label"].notna().to_numpy()
    lab, unl = resample[labeled], resample[~labeled]
    g, v = lab["_g"].to_numpy(np.int64), lab["_v"].to_numpy(np.int64)
    k = lab["bucket"].to_numpy(np.int64)
    y = lab["label"].to_numpy(np.int64)
    c = lab["coarse_bin"].to_numpy(np.int64) * 2 + lab["above"].to_numpy(np.int64)
    cell, by_label = (g, v, k, y, c), (g, v, k, y)

    h = histogram[histogram["label"].notna()]
    cells = np.arange(C)
    return SufficientStatistics(
        slices=slices,
        versions=versions,
        count=_accumulate((G, V, K, 2, C), cell, lab["n"]),
        score_sum=_accumulate((G, V, K, 2, C), cell, lab["score_sum"]),
        log_loss_sum=_accumulate((G, V, K, 2), by_label, lab["log_loss_sum"]),
        squared_error_sum=_accumulate((G, V, K, 2), by_label, lab["squared_error_sum"]),
        unlabeled=_accumulate(
            (G, V, K),
            (
                unl["_g"].to_numpy(np.int64),
                unl["_v"].to_numpy(np.int64),
                unl["bucket"].to_numpy(np.int64),
            ),
            unl["n"],
        ),
        fine=_accumulate(
            (G, V, 2, F),
            (
                h["_g"].to_numpy(np.int64),
                h["_v"].to_numpy(np.int64),
                h["label"].to_numpy(np.int64),
                h["fine_bin"].to_numpy(np.int64),
            ),
            h["n"],
        ),
        predicted_positive=(cells % 2) == 1,
        calibration_bin=(cells // 2) * spec.calibration_bins // R,
        calibration_bins=spec.calibration_bins,
    )
