"""What a task and a registry entry are (:mod:`eval_pipelines.tasks` holds the registry)."""

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from eval_pipelines.stats.base import Family

if TYPE_CHECKING:
    from eval_pipelines.stats.parse import Statistics


@dataclass(frozen=True)
class PairedTest:
    """An exact test on requests both versions scored, replacing the family's test for one
    metric (McNemar's for accuracy): ``p_value(paired) -> [g]``."""

    name: str
    p_value: Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """One registry entry: everything docs, intervals, gates and reports need to know."""

    name: str
    title: str
    family: Family
    compute: Callable[[Any], np.ndarray]
    formula: str
    higher_is_better: bool
    reference: str
    # |binned value - exact value| at most this, from the same point statistic (else 0).
    error_bound: Callable[[Any], np.ndarray] | None = None
    paired_test: PairedTest | None = None
    # The rows the metric averages, from the same point statistic, when not every labeled
    # row (MAPE leaves out zero labels); its ``n`` in the outputs.
    count: Callable[[Any], np.ndarray] | None = None
    # A signed metric whose ideal is 0 (bias): the smaller its absolute value the better, so
    # a comparison judges |candidate| against |baseline| (``higher_is_better`` is unused).
    toward_zero: bool = False
    # The ``predictions`` spec key the metric reads besides the output (``interval``): the
    # metric is in the default list only when the key is given, and refused without it.
    requires: str | None = None

    @property
    def direction(self) -> str:
        if self.toward_zero:
            return "closer to 0 is better"
        return "higher is better" if self.higher_is_better else "lower is better"

    def regression(self, delta: Any, baseline: Any, candidate: Any) -> Any:
        """How much worse the candidate is than the baseline (negative: better), from the
        delta (candidate - baseline), or from both values for a ``toward_zero`` metric."""
        if self.toward_zero:
            return np.abs(candidate) - np.abs(baseline)
        return -delta if self.higher_is_better else delta

    @property
    def interval_method(self) -> str:
        """How the metric's interval is computed: the percentile bootstrap of its family's
        scheme (``Family.bootstrap``: the family decides, never the metric's name)."""
        return "percentile bootstrap " + self.family.bootstrap.resampled.format(buckets="K")

    @property
    def comparison_test(self) -> str:
        """The test of a candidate - baseline delta: the family's bootstrap test, or the
        metric's exact test on requests both versions scored when the paired query ran."""
        if self.paired_test is None:
            return self.family.bootstrap.comparison
        return (
            f"{self.paired_test.name} on requests both versions scored, else "
            f"{self.family.bootstrap.method}"
        )


@dataclass(frozen=True)
class RowCounts:
    """Per ``[g, v]``: labeled rows (a metric's ``n``), positive labels, unlabeled rows."""

    labeled: np.ndarray
    positives: np.ndarray
    unlabeled: np.ndarray


@dataclass(frozen=True)
class Task:
    name: str
    families: tuple[Family, ...]
    metrics: dict[str, Metric]
    rows: Callable[["Statistics"], RowCounts]
    # The paired query's rows, their slice groups, the spec and the group count -> the
    # task's paired cells (read by its families' ``joint_*`` and its paired tests).
    parse_paired: Callable[..., Any]
    # The ``predictions`` spec key naming the model's output column; the window carries that
    # column under the same name ("score", "prediction").
    output: str
    # What the warehouse computes: (SqlBuilder, Window) -> the aggregate query of every
    # family, and (SqlBuilder, Window, baseline, candidate) -> the paired query.
    statistics_query: Callable[[Any, Any], str]
    paired_query: Callable[[Any, Any, str, str], str]
    # The output's and the label's terms of the window's content fingerprint: SqlBuilder ->
    # a SQL text expression over the window's columns that never fails, the same text on
    # every engine (the builder's spec says the columns, its dialect the text type).
    fingerprint_value: Callable[[Any], str]
    # Column type families accepted for the output and the label, and how a message says it.
    output_types: frozenset[str]
    output_wording: str
    label_types: frozenset[str]
    label_wording: str
    # Further ``predictions`` spec keys the task requires, each carried by the window under
    # its key's name (ranking: ``list_id``).
    window_columns: tuple[str, ...] = ()
    # Parametric metric names (``precision.<class>``, ``top_<k>_accuracy``, ``ndcg@<k>``):
    # ``name -> entry``, or None when ``name`` is none of them; ``patterns`` is how messages
    # list them.
    resolve: Callable[[str], Metric | None] | None = None
    patterns: tuple[str, ...] = ()
    # The spec's default ``metrics`` from its raw mapping (else every entry of ``metrics``
    # whose required ``predictions`` key is given; ranking: each metric at each k of
    # ``ranking.k``).
    default_metrics: Callable[[dict[str, Any]], list[str]] | None = None
    # The task's own checks of a parsed spec (raise ValueError with one sentence).
    check_spec: Callable[[Any], None] | None = None
    # Numeric window columns beyond the output (class probabilities):
    # spec -> [(spec key, source column, window column)].
    window_outputs: Callable[[Any], list[tuple[str, str, str]]] | None = None
    # The output and the label are class values, carried in the window as text: type probes,
    # drift (a categorical output) and MLflow's dataset schema read them as strings.
    categorical: bool = False
    # The task's own artifact tables: statistics -> {name: DataFrame}, each written as
    # ``<name>.parquet`` beside metrics.parquet (multiclass: the confusion matrix).
    tables: Callable[["Statistics"], dict[str, Any]] | None = None
    # Families the warehouse computes by a query of their own rather than in the aggregate
    # query: (SqlBuilder, Window) -> {family name: query}, each result holding that family's
    # rows alone, keyed by slice and version like the aggregate's. For a family whose result
    # dwarfs the others' (multiclass class histograms): no ``family`` column and no other
    # family's NULL columns on each of its rows.
    family_queries: Callable[[Any, Any], dict[str, str]] | None = None
    # The task's curves for ``curves.parquet``: :class:`eval_pipelines.curves.CurveInputs`
    # -> a DataFrame in its documented columns (docs/curves.md), from point statistics.
    curves: Callable[[Any], Any] | None = None
    # What label coverage counts ("predictions labeled"), and what a metric's ``n`` counts
    # ("labeled rows"), in the verdict's words.
    coverage_unit: str = "predictions"
    count_unit: str = "labeled rows"
    # Whether label coverage is a share of rows (the input checks warn on it); False when
    # the task counts coverage otherwise (ranking: lists), judged by the verdict alone.
    row_label_coverage: bool = True

    def family(self, name: str) -> Family:
        """The family whose rows carry ``name`` in the aggregate's ``family`` column."""
        return next(family for family in self.families if family.name == name)

    def metric(self, name: str) -> Metric:
        """The registry entry of ``name`` (a parametric name through ``resolve``); one
        sentence naming the known ones otherwise."""
        if name in self.metrics:
            return self.metrics[name]
        resolved = self.resolve(name) if self.resolve is not None else None
        if resolved is not None:
            return resolved
        close = difflib.get_close_matches(name, [*self.metrics, *self.patterns], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown metric {name!r} for task {self.name!r}{hint}; known: "
            f"{', '.join([*self.metrics, *self.patterns])}"
        )


def divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ratio that is NaN (undefined, reported as missing) where the denominator is 0:
    the shared rule of every metric that is a ratio."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out
