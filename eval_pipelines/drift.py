"""Drift of features and scores: the current week against the reference weeks before it.

Histograms are computed in SQL (``sql/drift_ranges.sql`` then ``sql/drift_histograms.sql``:
one scan for all features), so drift costs two aggregate queries whatever the row count, and
a third small one (:meth:`~eval_pipelines.sqlbuild.SqlBuilder.drift_distinct`) only for the
numeric features whose approximate distinct count leaves open whether they have more than 20
reference values (:func:`unsettled_distinct`). Numeric features are counted on two grids at once:

* a fine equal-width grid of ``drift.bins`` bins spanning both windows, for KS (exact up to
  ties within a bin, see :func:`~eval_pipelines.drift_stats.ks_from_histograms`) and the
  normed Wasserstein distance;
* Evidently's bins, for the binned methods (PSI, Jensen-Shannon) and for a numeric feature
  tested as categorical: with more than 20 distinct reference values, Sturges' equal-width
  bins over both windows (:func:`~eval_pipelines.drift_stats.sturges_edges`), else one bin
  per value (``utils.get_binned_data`` in Evidently 0.7).

The model's output (``drift.include_score``: the score or the prediction, for every task) is
a feature too, and the label (``drift.include_label``, label drift) is compared over the
labeled rows of both periods only: the same two queries read the predictions joined to their
labels (:func:`label_drift`). Output and label are numeric or categorical by column type, as
features are.

Categorical features get one cell per value. The statistics are in
:mod:`eval_pipelines.drift_stats`. Every applicable method is reported; ``default`` marks the
size-aware method Evidently would choose (KS / chi-square or z-test up to 1000 reference
rows, Wasserstein / Jensen-Shannon above; a numeric feature with at most 5 distinct values is
tested as categorical). ``decides`` marks the rows that make a feature drifted (its default
method, and a method a drift gate applies to it, judged at the gate's bound):
:func:`~eval_pipelines.drift_stats.drifted_rows` is the one definition every output reads.
docs/drift.md states the rules and the remaining departures from Evidently.
"""

import hashlib
import math
from dataclasses import replace

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_integer_dtype, is_numeric_dtype

from eval_pipelines import drift_stats as ds
from eval_pipelines.errors import EvalError
from eval_pipelines.gates import no_reference_data
from eval_pipelines.id_ranges import id_ranges, store_in_parts
from eval_pipelines.spec import DriftGate, EvalSpec
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
    "decides",
    "n_reference",
    "n_current",
    "missing_reference",
    "missing_current",
]
# Evidently bins a numeric feature with more than this many distinct reference values with
# Sturges' rule, one bin per value otherwise (utils.get_binned_data).
MAX_VALUE_BINS = 20
# A HyperLogLog estimate of the distinct reference values above this proves more than
# MAX_VALUE_BINS of them; at or below it the values are counted exactly (drift_distinct).
# Why no estimate of at most 20 values can exceed it: with n distinct values at most n of the
# m registers are non-zero, and every estimator in use is bounded by the empty ones alone.
# DuckDB (m = 64; Ertl's estimator alpha m^2 / z, z >= the number of empty registers; Ertl,
# "New cardinality estimation algorithms for HyperLogLog sketches", arXiv:1702.01284): at
# most 0.7213 * 64^2 / (64 - 20) = 67. Spark (HyperLogLog++, m = 512 at its default 5%
# error; Heule, Nunkesser and Hall, EDBT 2013): linear counting m ln(m / (m - 20)) = 20.4,
# below the 400 where it would switch to the raw estimate. So 1000 is 15 times the worst
# case and the decision stays exact, whatever the hashes. A continuous feature's estimate is
# far above it (13% standard error on DuckDB), so it is never counted exactly; a feature
# whose estimate is at most 1000 has, in practice, at most a couple of thousand values, and
# its exact count is a small hash table.
SURELY_MANY_DISTINCT = 1000


class NoCurrentRows(EvalError):
    """The drift version has no rows in the current week. For feature drift the run fails
    with this message; label drift has no rows yet (the week's labels are late). Only this
    is caught there: a warehouse error in label drift fails the run like any other."""


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


def feature_kinds(
    spec: EvalSpec, warehouse: Warehouse, builder: SqlBuilder, extra: tuple[str, ...] = ()
) -> tuple[dict[str, str], set[str]]:
    """numeric or categorical per feature and ``extra`` column (declared in
    ``drift.categorical`` or inferred from the column's type), and the numeric ones stored as
    integers (numpy's Sturges bins are at least 1 wide there)."""
    assert spec.drift is not None
    features = list(dict.fromkeys([*spec.drift.features, *extra]))
    if not features:
        return {}, set()
    sample = warehouse.query(builder.feature_sample(features), "drift feature types")
    kinds, integers = {}, set()
    for column in features:
        series = sample[column] if column in sample else pd.Series(dtype=object)
        numeric = is_numeric_dtype(series) and not is_bool_dtype(series)
        kinds[column] = (
            "categorical" if column in spec.drift.categorical or not numeric else "numeric"
        )
        if kinds[column] == "numeric" and is_integer_dtype(series):
            integers.add(column)
    return kinds, integers


def _gates_on(spec: EvalSpec, feature: str) -> list[DriftGate]:
    return [g for g in spec.drift_gates if g.feature is None or g.feature == feature]


def _methods_for(kind: str, spec: EvalSpec, feature: str) -> list[str]:
    """``drift.methods`` that apply to the kind, then gated methods not listed there."""
    assert spec.drift is not None
    gated = [g.drift for g in _gates_on(spec, feature)]
    names = list(dict.fromkeys([*spec.drift.methods, *gated]))
    return [name for name in names if ds.METHODS[name].applies_to(kind)]


def threshold_for(method: str, feature: str, spec: EvalSpec) -> float:
    """The threshold a (feature, method) row is judged at.

    A drift gate's bound is the threshold of its method for the features it gates (a gate
    naming the feature before a gate on every feature; the strictest of several), so the
    gate, the row's ``drifted`` and the report can never disagree on that feature and
    method. Otherwise ``drift.thresholds`` or Evidently's default for the method.
    """
    assert spec.drift is not None
    gates = [g for g in _gates_on(spec, feature) if g.drift == method]
    named = [g for g in gates if g.feature == feature]
    bounds = [g.max if g.max is not None else g.min_p_value for g in (named or gates)]
    if bounds:
        is_test = ds.METHODS[method].statistic == "p_value"
        return float(max(bounds) if is_test else min(bounds))
    return spec.drift.thresholds.get(method, ds.METHODS[method].default_threshold)


def _statistic(
    method: str, ref: np.ndarray, cur: np.ndarray, edges, ref_std
) -> tuple[float, float]:
    """(statistic, p_value); p_value is NaN for distance methods."""
    nan = float("nan")
    if method == "psi":
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


def _count(value: object) -> int:
    """A count from a query result (NULL: 0)."""
    return 0 if pd.isna(value) else int(value)


def unsettled_distinct(ranges: pd.Series, features: int) -> list[int]:
    """Positions of the numeric features whose number of distinct reference values the
    ranges query (:meth:`~eval_pipelines.sqlbuild.SqlBuilder.drift_ranges`) leaves open
    around :data:`MAX_VALUE_BINS`: no exact count (``ref_distinct_i``), more reference values
    than that (``ref_n_i``) and an estimate (``ref_distinct_estimate_i``) of at most
    :data:`SURELY_MANY_DISTINCT`. Their exact count is
    :meth:`~eval_pipelines.sqlbuild.SqlBuilder.drift_distinct`."""
    return [
        i
        for i in range(features)
        if f"ref_distinct_{i}" not in ranges.index
        and _count(ranges[f"ref_n_{i}"]) > MAX_VALUE_BINS
        and _count(ranges[f"ref_distinct_estimate_{i}"]) <= SURELY_MANY_DISTINCT
    ]


def more_values_than_bins(
    ranges: pd.Series, features: int, exact: pd.Series | None = None
) -> list[bool]:
    """Per numeric feature: more than :data:`MAX_VALUE_BINS` distinct finite reference values
    (Evidently's Sturges rule applies), decided exactly.

    From an exact count (``ref_distinct_i`` of the ranges query, or of ``exact``, the
    result of :meth:`~eval_pipelines.sqlbuild.SqlBuilder.drift_distinct` for the features
    :func:`unsettled_distinct` names); else from the number of reference values (at most
    :data:`MAX_VALUE_BINS` values cannot hold more distinct ones); else the estimate is above
    :data:`SURELY_MANY_DISTINCT`, which no set of :data:`MAX_VALUE_BINS` values reaches.
    """
    counted = pd.concat([ranges, exact]) if exact is not None else ranges
    many = []
    for i in range(features):
        if f"ref_distinct_{i}" in counted.index:
            many.append(_count(counted[f"ref_distinct_{i}"]) > MAX_VALUE_BINS)
        elif _count(ranges[f"ref_n_{i}"]) <= MAX_VALUE_BINS:
            many.append(False)
        else:
            estimate = _count(ranges[f"ref_distinct_estimate_{i}"])
            if estimate <= SURELY_MANY_DISTINCT:
                raise ValueError(f"numeric drift feature {i}: no exact distinct count given")
            many.append(True)
    return many


def _counts_by(frame: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted keys, reference counts, current counts) of the rows grouped by ``key``."""
    table = frame.pivot_table(index=key, columns="period", values="n", aggfunc="sum", fill_value=0)
    table = table.sort_index()
    ref = table.get("reference", pd.Series(0, index=table.index)).to_numpy(float)
    cur = table.get("current", pd.Series(0, index=table.index)).to_numpy(float)
    return table.index.to_numpy(), ref, cur


def compute_drift(
    spec: EvalSpec,
    window: Window,
    warehouse: Warehouse,
    builder: SqlBuilder,
    versions: list[str] | None = None,
    histograms: list[dict] | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per (feature, method): statistic, p-value, threshold, drifted, decides.

    ``histograms``, when given, receives each feature's counts per period (``curves.parquet``):
    ``feature``, ``edges`` of the fine equal-width grid (numeric) or ``values`` (categorical),
    ``reference`` and ``current``."""
    assert spec.drift is not None
    version = drift_version(spec, versions or [])
    reference = reference_window(window, spec.drift.reference_weeks)
    output = (spec.output_column,) if spec.drift.include_score else ()
    kinds, integers = feature_kinds(spec, warehouse, builder, output)
    columns = list(kinds)
    numeric = [c for c in columns if kinds[c] == "numeric"]
    categorical = [c for c in columns if kinds[c] == "categorical"]
    queries: dict[str, str] = {}
    first_histogram = len(histograms) if histograms is not None else 0

    def with_label_drift(
        frame: pd.DataFrame, predictions: int | None
    ) -> tuple[pd.DataFrame, dict[str, str]]:
        # After the features, whose ranges count the version's predictions (the labeled
        # join's size); its rows, queries and histograms still go first.
        if not spec.drift.include_label:
            return frame, queries
        own: list[dict] | None = [] if histograms is not None else None
        labels, label_queries = label_drift(
            spec, window, warehouse, builder, version, own, predictions
        )
        if histograms is not None and own:
            histograms[first_histogram:first_histogram] = own
        both = pd.concat([frame, labels], ignore_index=True) if len(labels) else frame
        return both, {**label_queries, **queries}

    if not columns:
        return with_label_drift(pd.DataFrame(columns=DRIFT_COLUMNS), None)

    ranges_sql = builder.drift_ranges(window, reference, version, numeric)
    queries["drift_ranges"] = ranges_sql
    ranges = warehouse.query(ranges_sql, "drift ranges").iloc[0]
    n_current = 0 if pd.isna(ranges["n_current"]) else int(ranges["n_current"])
    if n_current == 0:
        raise NoCurrentRows(
            f"drift: no predictions of version {version!r} in the current week "
            f"(reference {reference}, current {window}); drift cannot be computed"
        )
    # A model's first weeks have no reference data: every row then has n_reference = 0 and
    # no statistic, drift gates are inconclusive, and the run's validation results carry a
    # note (reference_note) instead of the run failing.
    unsure = unsettled_distinct(ranges, len(numeric))
    exact = None
    if unsure:  # an estimate that leaves 20 or fewer values possible: count those exactly
        distinct_sql = builder.drift_distinct(
            window, reference, version, [(i, numeric[i]) for i in unsure]
        )
        queries["drift_distinct"] = distinct_sql
        exact = warehouse.query(distinct_sql, "drift distinct values").iloc[0]
    many = more_values_than_bins(ranges, len(numeric), exact)
    bins = spec.drift.bins
    grid = []
    for i, column in enumerate(numeric):
        low, high = ranges[f"min_{i}"], ranges[f"max_{i}"]
        if pd.isna(low):
            low, high = 0.0, 1.0
        low, high = float(low), float(high)
        width = (high - low) / bins if high > low else 1.0
        # Evidently's bins: Sturges over both windows above 20 distinct reference values,
        # else one bin per value (edges None).
        coarse = None
        if many[i]:
            edges = ds.sturges_edges(low, high, int(ranges[f"count_{i}"]), column in integers)
            coarse = tuple(float(e) for e in edges)
        grid.append((column, low, width, bins, coarse))

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
        edges, ref_std, fine = None, None, None
        if kind == "numeric":
            _, low, width, k, coarse = grid[position]
            edges = low + width * np.arange(k + 1)
            fine_ref, fine_cur = np.zeros(k), np.zeros(k)
            for period, target in (("reference", fine_ref), ("current", fine_cur)):
                sub = present[present["period"] == period]
                np.add.at(target, sub[alias].to_numpy(dtype=np.int64), sub["n"].to_numpy(float))
            fine = (fine_ref, fine_cur)
            ref_std = _population_std(
                ranges[f"ref_n_{position}"],
                ranges[f"ref_sum_{position}"],
                ranges[f"ref_sumsq_{position}"],
            )
            if coarse is None:
                _, ref, cur = _counts_by(present, f"b_{position}")
                n_unique = int(((ref + cur) > 0).sum())
            else:
                ref, cur = np.zeros(len(coarse) - 1), np.zeros(len(coarse) - 1)
                for period, target in (("reference", ref), ("current", cur)):
                    sub = present[present["period"] == period]
                    index = sub[f"b_{position}"].to_numpy(dtype=np.int64)
                    np.add.at(target, index, sub["n"].to_numpy(float))
                n_unique = MAX_VALUE_BINS + 1  # more than 20 distinct reference values
            if histograms is not None:
                histograms.append(
                    {"feature": column, "edges": edges, "reference": fine[0], "current": fine[1]}
                )
        else:
            values, ref, cur = _counts_by(present, alias)
            n_unique = int(((ref + cur) > 0).sum())
            if histograms is not None:
                histograms.append(
                    {"feature": column, "values": values, "reference": ref, "current": cur}
                )
        n_ref, n_cur = int(ref.sum()), int(cur.sum())
        default = ds.default_method(kind, n_ref, max(1, n_unique)) if n_ref else None
        methods = _methods_for(kind, spec, column)
        if default is not None and default not in methods:
            methods.append(default)  # the size-aware default is always reported
        gated = {g.drift for g in _gates_on(spec, column)}
        for method in methods:
            if n_ref == 0 or n_cur == 0:
                statistic, p_value = float("nan"), float("nan")
            elif method in ("ks", "wasserstein"):
                statistic, p_value = _statistic(method, *fine, edges, ref_std)
            else:
                # Binned methods and a low-cardinality numeric feature tested as categorical
                # read Evidently's bins (value cells for categorical features).
                statistic, p_value = _statistic(method, ref, cur, None, None)
            threshold = threshold_for(method, column, spec)
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
                    "decides": method == default or method in gated,
                    "n_reference": n_ref,
                    "n_current": n_cur,
                    "missing_reference": int(missing.get("reference", 0)),
                    "missing_current": int(missing.get("current", 0)),
                }
            )
    frame = pd.DataFrame(rows, columns=DRIFT_COLUMNS)
    counted = (0 if pd.isna(ranges["n_reference"]) else int(ranges["n_reference"])) + n_current
    return with_label_drift(frame, counted)


# Predictions per part of the labeled join (label drift). DuckDB joins 25M predictions of
# the drift version with as many labels under its 400MB cap; 250M (a 100M-row week and 4
# reference weeks) ran out of memory even on one thread, since the hash table holds the
# labels. A larger join runs in parts by ranges of the ids (eval_pipelines.id_ranges). The
# size is set by memory, not speed: where ids are not stored in order every part reads both
# sources whole (at 100M rows, 25 parts took 114 s against 121 s for 10).
LABELED_JOIN_PART_ROWS = 25_000_000


def label_drift(
    spec: EvalSpec,
    window: Window,
    warehouse: Warehouse,
    builder: SqlBuilder,
    version: str,
    histograms: list[dict] | None = None,
    rows: int | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Label drift: the label's rows of ``drift.parquet`` (feature
    :attr:`~eval_pipelines.spec.EvalSpec.label_drift_feature`), from the labeled predictions
    of both periods (:meth:`~eval_pipelines.sqlbuild.SqlBuilder.labeled_predictions`) read by
    the same drift queries as a feature. No row while the current week has no labels yet.
    ``rows``: the drift version's predictions in both periods, when known (the labeled join
    then runs in parts by ranges of the ids past :data:`LABELED_JOIN_PART_ROWS`)."""
    assert spec.drift is not None
    name = spec.label_drift_feature
    # The join of predictions and labels is read three times (types, ranges, histograms):
    # its rows of both periods and this version go once into a session table where allowed.
    period = Window(reference_window(window, spec.drift.reference_weeks).start, window.end)
    query = builder.labeled_predictions(name, period, version)
    table = f"eval_labeled_{hashlib.sha256(query.encode()).hexdigest()[:12]}"
    # Spark's cached views take no more rows: one statement there (its joins spill).
    bounds, sample = id_ranges(
        warehouse,
        lambda fraction: builder.id_sample(period, version, fraction),
        rows,
        LABELED_JOIN_PART_ROWS,
    )
    parts = [builder.labeled_predictions(name, period, version, ids) for ids in bounds]
    stored = store_in_parts(warehouse, table, parts)
    # Where the table was refused the drift queries read the whole join, never a part.
    source = spec.predictions.model_copy(
        update={"table": table, "query": None} if stored else {"table": None, "query": query}
    )
    if stored and len(parts) > 1:  # the first part's text: the others differ by their bounds
        query = parts[0]
    settings = spec.drift.model_copy(
        update={
            "features": [name],
            "categorical": [name] if spec.labels.label in spec.drift.categorical else [],
            "include_score": False,
            "include_label": False,
            "model_version": version,
        }
    )
    labeled = spec.model_copy(update={"predictions": source, "drift": settings})
    try:
        frame, queries = compute_drift(
            labeled, window, warehouse, replace(builder, spec=labeled), histograms=histograms
        )
    except NoCurrentRows:  # no labeled row of the version in the current week: labels are late
        return pd.DataFrame(columns=DRIFT_COLUMNS), {}
    finally:
        if stored:
            warehouse.drop_temporary_table(table)
    if stored:
        queries = {"labeled_predictions": query, **queries}
        if sample is not None:
            queries = {"labeled_join_bounds": sample, **queries}
    return frame, {f"label_{key}": sql for key, sql in queries.items()}


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
