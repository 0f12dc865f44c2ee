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


def parse_statistics(
    frame: pd.DataFrame, spec: EvalSpec, builder: SqlBuilder
) -> SufficientStatistics:
    """Index the aggregate result; every configured slice cross yields its groups."""
    aliases = builder.grouping_columns([])
    all_columns = builder.grouping_columns(["bucket", "fine_bin"])
    alias_of = dict(zip(spec.slice_columns, aliases, strict=True))
    frame = frame.copy()
    for alias in aliases:
        frame[alias] = frame[alias].astype(object).where(frame[alias].notna(), NULL_VALUE)

    versions = sorted(str(v) for v in frame["model_version"].dropna().unique())
    version_index = {v: i for i, v in enumerate(versions)}

    resample_parts, histogram_parts = [], []
    slices = [SliceKey((), ())]  # always present, even for an empty window: gates fail closed
    for cross in spec.slice_crosses:
        cols = [alias_of[c] for c in cross]
        resample_mask = grouping_mask(all_columns, [*cols, "bucket"])
        histogram_mask = grouping_mask(all_columns, [*cols, "fine_bin"])
        for mask, parts in ((resample_mask, resample_parts), (histogram_mask, histogram_parts)):
            part = frame[frame["grouping_id"] == mask]
            keys = (
                [tuple(str(x) for x in row) for row in part[cols].itertuples(index=False)]
                if cols
                else [()] * len(part)
            )
            part = part.assign(slice_key=[SliceKey(cross, k) for k in keys])
            parts.append(part)
        if cross:
            slices.extend(sorted(set(resample_parts[-1]["slice_key"]), key=lambda s: s.values))
    slice_index = {key: i for i, key in enumerate(slices)}

    resample = pd.concat(resample_parts) if resample_parts else frame.iloc[:0]
    histogram = pd.concat(histogram_parts) if histogram_parts else frame.iloc[:0]
    G, V = len(slices), len(versions)
    K = spec.confidence.buckets
    R = spec.confidence.score_bins
    C = 2 * R
    F = spec.score_bins

    g = resample["slice_key"].map(slice_index).to_numpy()
    v = resample["model_version"].astype(str).map(version_index).to_numpy()
    k = resample["bucket"].to_numpy(dtype=np.int64)
    labeled = resample["label"].notna().to_numpy()
    y = np.where(labeled, resample["label"].fillna(0).to_numpy(dtype=np.int64), 0)
    c = resample["coarse_bin"].to_numpy(dtype=np.int64) * 2 + resample["above"].to_numpy(
        dtype=np.int64
    )
    n = resample["n"].to_numpy(dtype=float)

    count = np.zeros((G, V, K, 2, C))
    score_sum = np.zeros((G, V, K, 2, C))
    log_loss_sum = np.zeros((G, V, K, 2))
    squared_error_sum = np.zeros((G, V, K, 2))
    unlabeled = np.zeros((G, V, K))
    m = labeled
    np.add.at(count, (g[m], v[m], k[m], y[m], c[m]), n[m])
    np.add.at(score_sum, (g[m], v[m], k[m], y[m], c[m]), resample["score_sum"].to_numpy(float)[m])
    np.add.at(log_loss_sum, (g[m], v[m], k[m], y[m]), resample["log_loss_sum"].to_numpy(float)[m])
    np.add.at(
        squared_error_sum,
        (g[m], v[m], k[m], y[m]),
        resample["squared_error_sum"].to_numpy(float)[m],
    )
    np.add.at(unlabeled, (g[~m], v[~m], k[~m]), n[~m])

    fine = np.zeros((G, V, 2, F))
    h = histogram[histogram["label"].notna()]
    np.add.at(
        fine,
        (
            h["slice_key"].map(slice_index).to_numpy(),
            h["model_version"].astype(str).map(version_index).to_numpy(),
            h["label"].to_numpy(dtype=np.int64),
            h["fine_bin"].to_numpy(dtype=np.int64),
        ),
        h["n"].to_numpy(dtype=float),
    )
    cells = np.arange(C)
    return SufficientStatistics(
        slices=slices,
        versions=versions,
        count=count,
        score_sum=score_sum,
        log_loss_sum=log_loss_sum,
        squared_error_sum=squared_error_sum,
        unlabeled=unlabeled,
        fine=fine,
        predicted_positive=(cells % 2) == 1,
        calibration_bin=(cells // 2) * spec.calibration_bins // R,
        calibration_bins=spec.calibration_bins,
    )
