"""Drift of features and scores: the current week against the reference weeks before it.

Histograms are computed in SQL on a shared grid (``sql/drift_ranges.sql`` then
``sql/drift_histograms.sql``: one scan for all features), so drift costs two aggregate queries
whatever the row count. Numeric features get an equal-width grid of ``drift.bins`` bins
spanning both windows; categorical features get one cell per value. The statistics themselves
are in :mod:`eval_pipelines.drift_stats`.

PSI on a numeric feature uses about ten reference-quantile bins (deciles, as is conventional
for PSI; Siddiqi 2006), formed by merging adjacent grid bins; the other methods use the full
grid. Every applicable method is reported; ``default`` marks the size-aware method Evidently
would choose (KS / chi-square up to 1000 reference rows, Wasserstein / Jensen-Shannon above;
a numeric feature with at most 5 distinct values is tested as categorical, and a binary one
with the z-test up to 1000 reference rows). The default is always reported.
"""

import math

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from eval_pipelines import drift_stats as ds
from eval_pipelines.errors import EvalError
from eval_pipelines.gates import no_reference_data
from eval_pipelines.spec import EvalSpec
from eval_pipelines.sqlbuild import SqlBuilder, grouping_mask
from eval_pipelines.validation import CheckResult
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import Window, reference_window

DRIFT_COLUMNS = [
    "feature",
    "kind",
    "method",
    "statistic",
    "p_value",
    "threshold",
    "drifted",
    "default",
    "n_reference",
    "n_current",
    "missing_reference",
    "missing_current",
]
PSI_QUANTILES = 10


def drift_version(spec: EvalSpec, versions: list[str]) -> str:
    assert spec.drift is not None
    if spec.drift.model_version:
        return spec.drift.model_version
    if spec.compare:
        return spec.compare.candidate
    if len(versions) == 1:
        return versions[0]
    raise EvalError(
        "drift.model_version: the window holds several versions "
        f"({', '.join(versions)}); name the one whose traffic drift describes"
    )


def feature_kinds(spec: EvalSpec, warehouse: Warehouse, builder: SqlBuilder) -> dict[str, str]:
    """numeric or categorical per feature: declared in ``drift.categorical`` or inferred."""
    assert spec.drift is not None
    features = list(dict.fromkeys(spec.drift.features))
    if not features:
        return {}
    sample = warehouse.query(builder.feature_sample(features), "drift feature types")
    kinds = {}
    for column in features:
        series = sample[column] if column in sample else pd.Series(dtype=object)
        numeric = is_numeric_dtype(series) and not is_bool_dtype(series)
        kinds[column] = (
            "categorical" if column in spec.drift.categorical or not numeric else "numeric"
        )
    return kinds


def _psi_groups(reference: np.ndarray) -> np.ndarray:
    """Map grid bins to about ten groups of equal reference mass (reference deciles)."""
    total = reference.sum()
    before = (np.cumsum(reference) - reference) / total if total else np.zeros(len(reference))
    return np.minimum((before * PSI_QUANTILES).astype(int), PSI_QUANTILES - 1)


def _methods_for(kind: str, spec: EvalSpec) -> list[str]:
    assert spec.drift is not None
    return [name for name in spec.drift.methods if ds.METHODS[name].applies_to(kind)]


def _threshold(method: str, spec: EvalSpec) -> float:
    assert spec.drift is not None
    return spec.drift.thresholds.get(method, ds.METHODS[method].default_threshold)


def _statistic(
    method: str, kind: str, ref: np.ndarray, cur: np.ndarray, edges, ref_std
) -> tuple[float, float]:
    """(statistic, p_value); p_value is NaN for distance methods."""
    nan = float("nan")
    if method == "psi":
        if kind == "numeric":
            groups = _psi_groups(ref)
            ref = np.bincount(groups, weights=ref, minlength=PSI_QUANTILES)
            cur = np.bincount(groups, weights=cur, minlength=PSI_QUANTILES)
        return ds.psi(ref, cur), nan
    if method == "ks":
        return ds.ks_from_histograms(edges, ref, cur)
    if method == "wasserstein":
        return ds.wasserstein_normed(edges, ref, cur, ref_std=ref_std), nan
    if method == "jensen_shannon":
        return ds.jensen_shannon(ref, cur), nan
    if method == "chi_square":
        return ds.chi_square(ref, cur)
    if method == "z_test":
        return ds.proportions_z_test(ref, cur)
    raise ValueError(method)


def _population_std(n, total, total_sq) -> float | None:
    """Population standard deviation from exact (order-independent) sums.

    ``sqrt(E[x^2] - E[x]^2)``: relative error about ``1e-16 (mean / std)^2``, negligible unless
    a feature's mean dwarfs its spread (shift such a feature in the query if it matters).
    """
    if pd.isna(n) or int(n) == 0 or pd.isna(total) or pd.isna(total_sq):
        return None
    mean = float(total) / int(n)
    return math.sqrt(max(0.0, float(total_sq) / int(n) - mean * mean))


def compute_drift(
    spec: EvalSpec,
    window: Window,
    warehouse: Warehouse,
    builder: SqlBuilder,
    versions: list[str] | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per (feature, method): statistic, p-value, threshold, drifted."""
    assert spec.drift is not None
    version = drift_version(spec, versions or [])
    reference = reference_window(window, spec.drift.reference_weeks)
    kinds = feature_kinds(spec, warehouse, builder)
    columns = list(kinds)
    if spec.drift.include_score and spec.predictions.score not in kinds:
        kinds[spec.predictions.score] = "numeric"
        columns.append(spec.predictions.score)
    numeric = [c for c in columns if kinds[c] == "numeric"]
    categorical = [c for c in columns if kinds[c] == "categorical"]
    queries: dict[str, str] = {}
    if not columns:
        return pd.DataFrame(columns=DRIFT_COLUMNS), queries

    ranges_sql = builder.drift_ranges(window, reference, version, numeric)
    queries["drift_ranges"] = ranges_sql
    ranges = warehouse.query(ranges_sql, "drift ranges").iloc[0]
    n_current = int(ranges["n_current"] or 0)
    if n_current == 0:
        raise EvalError(
            f"drift: no predictions of version {version!r} in the current week "
            f"(reference {reference}, current {window}); drift cannot be computed"
        )
    # A model's first weeks have no reference data: every row then has n_reference = 0 and
    # no statistic, drift gates are inconclusive, and the run's validation results carry a
    # note (reference_note) instead of the run failing.
    bins = spec.drift.bins
    grid = []
    for i, column in enumerate(numeric):
        low, high = ranges[f"min_{i}"], ranges[f"max_{i}"]
        if pd.isna(low):
            low, high = 0.0, 1.0
        low, high = float(low), float(high)
        width = (high - low) / bins if high > low else 1.0
        grid.append((column, low, width, bins))

    hist_sql = builder.drift_histograms(window, reference, version, grid, categorical)
    queries["drift_histograms"] = hist_sql
    frame = warehouse.query(hist_sql, "drift histograms")
    aliases = [f"n_{i}" for i in range(len(numeric))] + [f"c_{j}" for j in range(len(categorical))]

    rows = []
    for position, column in enumerate(numeric + categorical):
        alias = aliases[position]
        kind = kinds[column]
        part = frame[frame["grouping_id"] == grouping_mask(aliases, [alias])]
        present = part[part[alias].notna()]
        missing = part[part[alias].isna()].groupby("period")["n"].sum()
        if kind == "numeric":
            _, low, width, k = grid[position]
            edges = low + width * np.arange(k + 1)
            ref = np.zeros(k)
            cur = np.zeros(k)
            for period, target in (("reference", ref), ("current", cur)):
                sub = present[present["period"] == period]
                np.add.at(target, sub[alias].to_numpy(dtype=np.int64), sub["n"].to_numpy(float))
            ref_std = _population_std(
                ranges[f"ref_n_{position}"],
                ranges[f"ref_sum_{position}"],
                ranges[f"ref_sumsq_{position}"],
            )
        else:
            table = present.pivot_table(
                index=alias, columns="period", values="n", aggfunc="sum", fill_value=0
            )
            ref = table.get("reference", pd.Series(0, index=table.index)).to_numpy(float)
            cur = table.get("current", pd.Series(0, index=table.index)).to_numpy(float)
            edges, ref_std = None, None
        n_ref, n_cur = int(ref.sum()), int(cur.sum())
        # Distinct values, as Evidently counts them (both windows): exact for categories; for
        # numeric features the occupied grid bins (exact while values fall in separate bins).
        n_unique = max(1, int(((ref + cur) > 0).sum()))
        default = ds.default_method(kind, n_ref, n_unique) if n_ref else None
        methods = _methods_for(kind, spec)
        if default is not None and default not in methods:
            methods.append(default)  # the size-aware default is always reported
        for method in methods:
            if n_ref == 0 or n_cur == 0:
                statistic, p_value = float("nan"), float("nan")
            elif kind == "numeric" and not ds.METHODS[method].applies_to("numeric"):
                # A low-cardinality numeric feature tested as categorical: its values' cells.
                occupied = (ref + cur) > 0
                statistic, p_value = _statistic(
                    method, "categorical", ref[occupied], cur[occupied], None, None
                )
            else:
                statistic, p_value = _statistic(method, kind, ref, cur, edges, ref_std)
            threshold = _threshold(method, spec)
            drifted = (
                False
                if np.isnan(statistic)
                else bool(ds.drift_decision(method, statistic, p_value, threshold))
            )
            rows.append(
                {
                    "feature": column,
                    "kind": kind,
                    "method": method,
                    "statistic": float(statistic),
                    "p_value": float(p_value) if p_value is not None else float("nan"),
                    "threshold": float(threshold),
                    "drifted": drifted,
                    "default": method == default,
                    "n_reference": n_ref,
                    "n_current": n_cur,
                    "missing_reference": int(missing.get("reference", 0)),
                    "missing_current": int(missing.get("current", 0)),
                }
            )
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS), queries


def reference_note(spec: EvalSpec, window: Window, drift: pd.DataFrame) -> CheckResult | None:
    """The non-blocking note a run without reference data carries in its validation results."""
    if spec.drift is None or not no_reference_data(drift):
        return None
    reference = reference_window(window, spec.drift.reference_weeks)
    return CheckResult(
        "drift_reference_data",
        True,
        f"skipped: no predictions in the reference weeks ({reference}, "
        f"drift.reference_weeks={spec.drift.reference_weeks}); drift is judged once earlier "
        "weeks hold predictions, drift gates are inconclusive",
        blocking=False,
        table="predictions",
    )
