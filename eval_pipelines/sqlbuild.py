"""The one place that turns a spec into SQL text.

Templates live in ``sql/`` (installed as ``eval_pipelines.sql``). This module fills them with
identifiers quoted by the target dialect's SQLAlchemy identifier preparer and with literals
rendered by SQLAlchemy, so nothing from a spec is pasted into SQL unquoted. The rendered text
is complete (no bind parameters): it is what runs and what ``run.json`` records.

What differs by engine (the resample bucket's hash, exact sums, the UTC reading of a
timestamp, literals, type names, a CTE's planner hint, ``GROUPING(a, b)``, temporary tables)
is asked of the builder's dialect object (:mod:`eval_pipelines.dialects`), never decided
here by the engine's name, and rendered where the SQL is written: every template is filled
with the dialect's ``{double}`` and ``{text}`` type names and its ``{not_materialized}`` CTE
hint (:meth:`SqlBuilder.render`), so each engine receives SQL written for it and nothing
rewrites SQL text afterwards. The bucket is the
first 32 bits of an MD5 on every engine, so every engine gives the same buckets and the same
numbers.

Column types are normalised here too, from the families :mod:`eval_pipelines.column_types`
found (:meth:`SqlBuilder.with_column_types`): a timestamp with time zone of any precision is
read as its naive UTC value (the dialect's ``utc_timestamp``, independent of the session's
time zone), naive timestamps of any precision and dates are read as they are (they mean
UTC), and a BOOLEAN label is read as 0/1. Every query (the window join,
the drift and row-count scans, the label checks) reads these expressions, never the raw
column, so a TIMESTAMPTZ prediction time and a TIMESTAMP_NS label time compare as instants.
"""

import importlib.resources
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache

from eval_pipelines.dialects import SqlDialect, dialect_for
from eval_pipelines.spec import EvalSpec, Source
from eval_pipelines.stats.binary import LOG_LOSS_EPS, grid_sub_cells
from eval_pipelines.stats.multiclass import classes_of, score_columns
from eval_pipelines.stats.ranking import CUTOFF_FIELDS, cutoffs
from eval_pipelines.stats.regression import BINS_PER_OCTAVE, ZERO_ERROR_BIN
from eval_pipelines.tasks import task_of
from eval_pipelines.windows import Window


@cache
def template(name: str) -> str:
    return importlib.resources.files("eval_pipelines.sql").joinpath(f"{name}.sql").read_text()


@dataclass(frozen=True)
class SqlBuilder:
    """Renders the engine's queries for one spec on one SQL dialect.

    ``dialect`` is a :class:`~eval_pipelines.dialects.SqlDialect` (``Warehouse.dialect``); a
    SQLAlchemy dialect is accepted too and wrapped in its engine's class.
    """

    spec: EvalSpec
    dialect: SqlDialect
    # A temporary table holding the window, once materialised: queries read it instead of
    # joining predictions and labels again.
    window_table: str | None = None
    # A temporary table holding the labels of the window's predictions
    # (``sql/window_labels.sql``), once materialised by the input checks.
    window_labels_table: str | None = None
    # (spec key, type family) of the columns whose type is known, e.g.
    # (("labels.label", "boolean"), ("predictions.timestamp", "timestamptz")).
    column_types: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.dialect, SqlDialect):
            object.__setattr__(self, "dialect", dialect_for(self.dialect))

    def with_column_types(self, families: dict[str, str]) -> "SqlBuilder":
        """This builder, normalising the columns whose families are given."""
        return replace(self, column_types=tuple(sorted(families.items())))

    def _family(self, key: str) -> str | None:
        return dict(self.column_types).get(key)

    # ------------------------------------------------------------------ quoting
    def ident(self, name: str) -> str:
        return self.dialect.quote(name)

    def literal(self, value: object) -> str:
        """A datetime (naive, UTC), float, string or integer as a SQL literal."""
        return self.dialect.literal(value)

    def render(self, name: str, **values: str | int) -> str:
        """``sql/<name>.sql`` filled with ``values`` and the dialect's spellings: ``{double}``
        (a 64-bit float type), ``{text}`` (a text type) and ``{not_materialized}`` (a CTE's
        hint, with its trailing space, or nothing)."""
        spellings = {
            "double": self.dialect.double_type,
            "text": self.dialect.text_type,
            "not_materialized": self.dialect.materialization_hint(False),
        }
        return template(name).format(**(spellings | values))

    def as_double(self, expr: str) -> str:
        """``expr`` cast to the dialect's 64-bit float."""
        return self.dialect.cast_double(expr)

    def as_text(self, expr: str) -> str:
        """``expr`` cast to the dialect's text type."""
        return self.dialect.cast_text(expr)

    def grouping_id(self, columns: list[str]) -> str:
        """SQL's ``GROUPING(columns)`` in the dialect's words, ``0`` without columns."""
        return self.dialect.grouping(columns) if columns else "0"

    def source(self, source: Source) -> str:
        """A table reference or a parenthesised user query."""
        if source.table is not None:
            return ".".join(self.ident(part) for part in source.table.split("."))
        return f"(\n{self.spec.resolve_query(source)}\n)"

    # ------------------------------------------------------------------ typed columns
    def utc_timestamp(self, key: str, column_expr: str) -> str:
        """``column_expr`` (the column behind spec key ``predictions.timestamp`` or
        ``labels.timestamp``) as a naive timestamp meaning UTC."""
        return self.dialect.utc_timestamp(column_expr, self._family(key))

    def pred_ts(self, alias: str = "p") -> str:
        return self.utc_timestamp(
            "predictions.timestamp", f"{alias}.{self.ident(self.spec.predictions.timestamp)}"
        )

    def label_ts(self, alias: str = "l") -> str:
        return self.utc_timestamp(
            "labels.timestamp", f"{alias}.{self.ident(self.spec.labels.timestamp)}"
        )

    def label_value(self, alias: str = "l") -> str:
        """The label as a number: a BOOLEAN is 1 for true, 0 for false (NULL stays NULL)."""
        column = f"{alias}.{self.ident(self.spec.labels.label)}"
        if task_of(self.spec).categorical:  # a class value, as text (like the prediction)
            return self.as_text(column)
        if self._family("labels.label") == "boolean":
            return f"CAST({column} AS INTEGER)"
        return column

    # ------------------------------------------------------------------ pieces
    def slice_alias(self, index: int) -> str:
        return f"s_{index}"

    def _slice_select(self) -> str:
        return "".join(
            f"{self.as_text(f'p.{self.ident(col)}')} AS {self.slice_alias(i)},\n    "
            for i, col in enumerate(self.spec.slice_columns)
        )

    @staticmethod
    def finite(expr: str) -> str:
        """True for finite numbers; NULL/false for NULL, NaN and infinities on every engine.

        NaN sorts above every number in both DuckDB and PostgreSQL, so a range test excludes
        it along with the infinities, without dialect-specific isnan().
        """
        return f"({expr} >= -1.7976931348623157e308 AND {expr} <= 1.7976931348623157e308)"

    def exact_sum(self, expr: str) -> str:
        """A sum of doubles that does not depend on the order rows are added in.

        A parallel floating-point SUM adds partial sums in a different order on each run, so
        its last bits change; results must be bit-identical. The dialect's
        :meth:`~eval_pipelines.dialects.SqlDialect.exact_sum` says how (DuckDB: a compensated
        sum; PostgreSQL: NUMERIC).
        """
        return self.dialect.exact_sum(expr)

    def fixed_point_sum(self, expr: str) -> str:
        """The sum of a DOUBLE ``expr`` in fixed point (integers of 1e-12, as a wide integer):
        exact and order-independent; divide by 1e-12 once at the end."""
        return self.dialect.integer_sum(f"CAST(ROUND({expr} * 1e12) AS BIGINT)")

    def hash32(self, text_expr: str) -> str:
        """The first 32 bits of ``md5(text_expr)`` as a BIGINT, identical on every engine."""
        return self.dialect.hash32(text_expr)

    def bucket_expr(self, id_column: str = "id") -> str:
        """A row's resample bucket: ``md5(id || '#' || seed)``'s first 32 bits modulo K."""
        seed = self.spec.confidence.seed
        as_int = self.hash32(f"{self.as_text(id_column)} || '#{seed}'")
        return f"({as_int} % {self.spec.confidence.buckets})"

    @property
    def output(self) -> str:
        """The window's column of the model's output (the task's ``output``)."""
        return task_of(self.spec).output

    def _output_select(self) -> str:
        """The window's output column (a class value as text) and the task's other outputs."""
        task = task_of(self.spec)
        output = f"p.{self.ident(self.spec.output_column)}"
        if task.categorical:
            output = self.as_text(output)
        terms = [f"{output} AS {self.output}"]
        if task.window_outputs is not None:
            terms += [
                f"p.{self.ident(column)} AS {name}"
                for _, column, name in task.window_outputs(self.spec)
            ]
        return ",\n    ".join(terms)

    def _common(self) -> dict[str, str]:
        p, lab = self.spec.predictions, self.spec.labels
        return {
            "pred_id": self.ident(p.id),
            "pred_ts": self.pred_ts("p"),
            "pred_version": self.ident(p.model_version),
            # The model's output under the task's name for it (``score``, ``prediction``).
            "pred_output": self._output_select()
            + self._window_columns_select()
            + self._interval_select(),
            "label_id": self.ident(lab.id),
            "label_ts": self.label_ts("l"),
            "label": self.label_value("l"),
            "predictions": self.source(p),
            "labels": self.source(lab),
        }

    def _window_columns_select(self) -> str:
        """The task's further key columns under their key's name (ranking: ``list_id``)."""
        p = self.spec.predictions
        return "".join(
            f",\n    p.{self.ident(getattr(p, key))} AS {key}"
            for key in task_of(self.spec).window_columns
        )

    def _interval_select(self) -> str:
        """A regression's logged interval bounds, as ``interval_lower``/``interval_upper``."""
        interval = self.spec.predictions.interval
        if interval is None:
            return ""
        return (
            f",\n    p.{self.ident(interval.lower)} AS interval_lower"
            f",\n    p.{self.ident(interval.upper)} AS interval_upper"
        )

    # ------------------------------------------------------------------ queries
    def window(self, window: Window) -> str:
        if self.window_table is not None:
            return f"SELECT * FROM {self.window_table}"
        return self.window_join(window)

    def window_join(self, window: Window, ids: tuple[object, object] = (None, None)) -> str:
        """The window as a join of predictions and labels (``sql/window.sql``). With the
        labels of the window's predictions materialised, the join reads them, not the whole
        labels source: the same rows can match (only those ids can), and the source is
        scanned once, by the semi-join that filled the table. ``ids``: only the predictions
        (and labels) whose id is in ``[low, high)``, one part of the join
        (:mod:`eval_pipelines.id_ranges`)."""
        common = self._common()
        if self.window_labels_table is not None:
            common["labels"] = self.window_labels_table
        return self.render(
            "window",
            **common,
            pred_id_range="".join(
                f"\n  AND {c}" for c in self._id_range(f"p.{common['pred_id']}", ids)
            ),
            label_id_range="".join(
                f"\n   AND {c}" for c in self._id_range(f"l.{common['label_id']}", ids)
            ),
            slice_select=self._slice_select(),
            max_delay=self.dialect.interval_seconds(
                int(self.spec.labels.max_delay / timedelta(seconds=1))
            ),
            window_start=self.literal(window.start),
            window_end=self.literal(window.end),
        )

    def grouping_sets(self, crosses: list[tuple[str, ...]], tail: list[str]) -> list[list[str]]:
        """One grouping set per slice cross: its slice aliases, then ``tail`` (the columns
        every set groups by). Public: the label-free estimation queries group the same way."""
        index = {col: self.slice_alias(i) for i, col in enumerate(self.spec.slice_columns)}
        return [[index[c] for c in cross] + tail for cross in crosses]

    @staticmethod
    def _render_sets(sets: list[list[str]]) -> str:
        return ",\n".join(f"    ({', '.join(s)})" for s in sets)

    def grouping_columns(self, extra: list[str]) -> list[str]:
        return [self.slice_alias(i) for i in range(len(self.spec.slice_columns))] + extra

    def sufficient_statistics(self, window: Window) -> str:
        """The task's aggregate query: every family it reads, in one scan of the window."""
        return task_of(self.spec).statistics_query(self, window)

    def paired_counts(self, window: Window, baseline: str, candidate: str) -> str:
        """The task's paired query: requests both versions scored, joined on the id."""
        return task_of(self.spec).paired_query(self, window, baseline, candidate)

    def binary_statistics(self, window: Window) -> str:
        """``sql/sufficient_statistics.sql``: the threshold and histogram families."""
        crosses = self.spec.slice_crosses
        aliases = [self.slice_alias(i) for i in range(len(self.spec.slice_columns))]
        threshold = self.grouping_sets(crosses, ["model_version", "label", "bucket", "above"])
        histogram = self.grouping_sets(crosses, ["model_version", "label", "fine_bin"])
        return self.render(
            "sufficient_statistics",
            window=self.window(window),
            slice_passthrough="".join(f"{a}, " for a in aliases),
            slice_outputs="".join(f"{a},\n    " for a in aliases),
            slice_nulls="".join(f"NULL AS {a},\n    " for a in aliases),
            grouping_id=self.grouping_id(aliases),
            bucket_expr=self.bucket_expr(),
            threshold=self.literal(float(self.spec.threshold)),
            fine_bins=self.spec.score_bins,
            sub_cells=grid_sub_cells(self.spec.score_bins),
            coarse_ratio=f"{self.spec.score_bins // self.spec.confidence.score_bins}.0",
            eps=repr(LOG_LOSS_EPS),
            threshold_sets=self._render_sets(threshold),
            histogram_sets=self._render_sets(histogram),
            log_loss_sum=self.fixed_point_sum("log_loss_term"),
            squared_error_sum=self.fixed_point_sum("squared_error"),
            score_sum=self.fixed_point_sum("score"),
            total_log_loss_sum=self.dialect.integer_sum("log_loss_sum"),
            total_squared_error_sum=self.dialect.integer_sum("squared_error_sum"),
            total_score_sum=self.dialect.integer_sum("score_sum"),
        )

    def binary_paired_counts(self, window: Window, baseline: str, candidate: str) -> str:
        """``sql/paired_counts.sql``: McNemar outcomes and joint score-bin cells."""
        aliases = [self.slice_alias(i) for i in range(len(self.spec.slice_columns))]
        tail = [
            "baseline.label",
            "baseline.above",
            "candidate.above",
            "baseline.bin",
            "candidate.bin",
        ]
        sets = [
            [f"baseline.{a}" for a in s[: len(s) - len(tail)]] + s[-len(tail) :]
            for s in self.grouping_sets(self.spec.slice_crosses, tail)
        ]
        grouped = [f"baseline.{a}" for a in aliases]
        return self.render(
            "paired_counts",
            window=self.window(window),
            slice_passthrough="".join(f"{a}, " for a in aliases),
            slice_outputs="".join(f"baseline.{a} AS {a},\n    " for a in aliases),
            threshold=self.literal(float(self.spec.threshold)),
            joint_bins=self.spec.confidence.paired_bins,
            baseline=self.literal(baseline),
            candidate=self.literal(candidate),
            grouping_id=self.grouping_id(grouped),
            grouping_sets=self._render_sets(sets),
            baseline_score_sum=self.fixed_point_sum("baseline.score"),
            candidate_score_sum=self.fixed_point_sum("candidate.score"),
        )

    def regression_statistics(self, window: Window) -> str:
        """``sql/regression_statistics.sql``: the regression family's exact sums per slice,
        version and resample bucket (the dialect's exact sum: the values are unbounded, so
        the fixed point of the binary sums could overflow), and the error histogram."""
        crosses = self.spec.slice_crosses
        aliases = [self.slice_alias(i) for i in range(len(self.spec.slice_columns))]
        sets = self.grouping_sets(crosses, ["model_version", "bucket"])
        histogram_sets = self.grouping_sets(crosses, ["model_version", "error_bin"])
        interval = self.spec.predictions.interval is not None
        task = task_of(self.spec)
        # The error histogram only when a metric reads it (its rows grow with the slices).
        histogram = any(
            task.metric(name).family.name == "error_histogram" for name in self.spec.metrics
        )
        labeled = "label IS NOT NULL AND interval_lower IS NOT NULL AND interval_upper IS NOT NULL"
        sums = {
            "error_sum": "e",
            "abs_error_sum": "ABS(e)",
            "squared_error_sum": "e * e",
            "centred_label_sum": "u",
            "centred_squared_label_sum": "u * u",
            "relative_error_sum": "CASE WHEN label <> 0 THEN ABS(e) / ABS(label) END",
            "n_interval": f"CASE WHEN {labeled} THEN 1.0 ELSE 0.0 END" if interval else "0.0",
            "n_covered": (
                "CASE WHEN label IS NOT NULL AND interval_lower <= label "
                "AND label <= interval_upper THEN 1.0 ELSE 0.0 END"
                if interval
                else "0.0"
            ),
            "interval_width_sum": (
                f"CASE WHEN {labeled} THEN interval_upper - interval_lower END"
                if interval
                else "0.0"
            ),
        }
        return self.render(
            "regression_statistics",
            window=self.window(window),
            slice_passthrough="".join(f"{a}, " for a in aliases),
            slice_outputs="".join(f"{a},\n    " for a in aliases),
            grouping_id=self.grouping_id(aliases),
            bucket_expr=self.bucket_expr(),
            label_total=self.exact_sum("label"),
            interval_columns=(
                ",\n        interval_lower,\n        interval_upper" if interval else ""
            ),
            zero_bin=ZERO_ERROR_BIN,
            histogram_wanted="1 = 1" if histogram else "1 = 0",
            bins_per_octave=BINS_PER_OCTAVE,
            bin_scale=repr(BINS_PER_OCTAVE / math.log(2)),
            sums="".join(
                f",\n    {self.as_double(self.exact_sum(expr))} AS {name}"
                for name, expr in sums.items()
            ),
            null_sums="".join(f",\n    {self.as_double('NULL')} AS {name}" for name in sums),
            grouping_sets=self._render_sets(sets),
            histogram_sets=self._render_sets(histogram_sets),
        )

    def regression_curves(self, window: Window, bins: int) -> str:
        """``sql/regression_curves.sql``: labeled rows per equal-width bin of the signed error
        and of the prediction (with the bin's exact prediction and label sums), per slice and
        version, for ``curves.parquet``."""
        crosses = self.spec.slice_crosses
        return self.render(
            "regression_curves",
            window=self.window(window),
            **self._slice_pieces(),
            bins=int(bins),
            prediction_sum=self.exact_sum("prediction"),
            label_sum=self.exact_sum("label"),
            residual_sets=self._render_sets(
                self.grouping_sets(crosses, ["model_version", "residual_bin"])
            ),
            predicted_sets=self._render_sets(
                self.grouping_sets(crosses, ["model_version", "prediction_bin"])
            ),
        )

    def _pair_pieces(self, baseline: str, candidate: str) -> dict[str, str]:
        """The slice outputs, grouping id and grouping sets of a task's paired query, which
        joins the ``baseline`` rows to the ``candidate`` rows and groups on the baseline's
        slice values."""
        aliases = [self.slice_alias(i) for i in range(len(self.spec.slice_columns))]
        sets = [
            [f"baseline.{a}" for a in s] for s in self.grouping_sets(self.spec.slice_crosses, [])
        ]
        grouped = [f"baseline.{a}" for a in aliases]
        return {
            "slice_outputs": "".join(f"baseline.{a} AS {a},\n    " for a in aliases),
            "baseline": self.literal(baseline),
            "candidate": self.literal(candidate),
            "grouping_id": self.grouping_id(grouped),
            "grouping_sets": self._render_sets(sets) if sets else "    ()",
        }

    def regression_pairs(self, window: Window, baseline: str, candidate: str) -> str:
        """``sql/regression_pairs.sql``: labeled requests both versions predicted, per slice
        (the bucket bootstrap pairs the versions through the id's bucket; this counts them)."""
        return self.render(
            "regression_pairs",
            window=self.window(window),
            **self._pair_pieces(baseline, candidate),
        )

    def _ranking_lists(self, window: Window) -> str:
        """``sql/ranking_lists.sql``: the per-list CTEs both ranking queries read."""
        aliases = [self.slice_alias(i) for i in range(len(self.spec.slice_columns))]
        discount = f"LN({self.as_double('{} + 1')}) / LN({self.as_double('2')})"
        cutoff_sums, cutoff_values = [], []
        for k in cutoffs(self.spec):
            in_top = f"pos <= {k} AND gain > 0"
            sums = {
                f"dcg_{k}": f"CASE WHEN pos <= {k} THEN gain / ({discount.format('pos')}) END",
                f"idcg_{k}": (
                    f"CASE WHEN ideal_pos <= {k} THEN gain / ({discount.format('ideal_pos')}) END"
                ),
                f"precision_{k}": (
                    f"CASE WHEN {in_top} THEN {self.as_double('hits_so_far')} / pos END"
                ),
            }
            cutoff_sums += [f"{self.exact_sum(e)} AS {name}" for name, e in sums.items()]
            cutoff_sums.append(f"SUM(CASE WHEN {in_top} THEN 1 ELSE 0 END) AS hits_{k}")
            values = {
                "ndcg": f"COALESCE(dcg_{k}, 0) / idcg_{k}",
                "ap": f"COALESCE(precision_{k}, 0) / LEAST({k}, relevant)",
                "recall": f"{self.as_double(f'hits_{k}')} / relevant",
                "hit": f"CASE WHEN hits_{k} > 0 THEN 1 ELSE 0 END",
            }
            assert tuple(values) == CUTOFF_FIELDS
            cutoff_values += [
                f"CASE WHEN relevant > 0 THEN {e} END AS {kind}_{k}" for kind, e in values.items()
            ]
        return self.render(
            "ranking_lists",
            slice_passthrough="".join(f"{a}, " for a in aliases),
            slice_first="".join(f"MIN({a}) AS {a},\n        " for a in aliases),
            cutoff_sums="".join(f",\n        {c}" for c in cutoff_sums),
            cutoff_values="".join(f",\n        {c}" for c in cutoff_values),
            bucket_expr=self.bucket_expr("list_id"),
        )

    def ranking_statistics(self, window: Window) -> str:
        """``sql/ranking_statistics.sql``: the ranking family's sums of per-list values per
        slice, version and resample bucket of the list id (exact sums, as regression's)."""
        sets = self.grouping_sets(self.spec.slice_crosses, ["model_version", "bucket"])
        sums = {"rr": "rr"}
        for k in cutoffs(self.spec):
            sums |= {f"{kind}_{k}": f"{kind}_{k}" for kind in CUTOFF_FIELDS if kind != "hit"}
        hits = "".join(f",\n    SUM(hit_{k}) AS hit_{k}" for k in cutoffs(self.spec))
        return self.render(
            "ranking_statistics",
            window=self.window(window),
            lists=self._ranking_lists(window),
            slice_outputs=self._slice_pieces()["slice_outputs"],
            grouping_id=self._slice_pieces()["grouping_id"],
            sums=hits
            + "".join(
                f",\n    {self.as_double(self.exact_sum(expr))} AS {name}"
                for name, expr in sums.items()
            ),
            grouping_sets=self._render_sets(sets),
        )

    def ranking_pairs(self, window: Window, baseline: str, candidate: str) -> str:
        """``sql/ranking_pairs.sql``: lists with a relevant item both versions ranked, per
        slice (the bucket bootstrap pairs the versions through the list id's bucket)."""
        return self.render(
            "ranking_pairs",
            window=self.window(window),
            lists=self._ranking_lists(window),
            **self._pair_pieces(baseline, candidate),
        )

    def _class_index(self, expr: str, classes: tuple[str, ...]) -> str:
        """The declared class index of a text ``expr`` (NULL outside the declared classes)."""
        whens = " ".join(f"WHEN {self.literal(c)} THEN {i}" for i, c in enumerate(classes))
        return f"CASE {expr} {whens} END"

    def _slice_pieces(self) -> dict[str, str]:
        aliases = [self.slice_alias(i) for i in range(len(self.spec.slice_columns))]
        return {
            "slice_passthrough": "".join(f"{a}, " for a in aliases),
            "slice_outputs": "".join(f"{a},\n    " for a in aliases),
            "grouping_id": self.grouping_id(aliases),
        }

    def multiclass_statistics(self, window: Window) -> str:
        """``sql/multiclass_statistics.sql``: the confusion family."""
        classes = classes_of(self.spec)
        scores = [f"cs_{i}" for i in range(len(score_columns(self.spec)))]
        crosses = self.spec.slice_crosses
        if scores:
            true_score = (
                "CASE label_class "
                + " ".join(f"WHEN {i} THEN {s}" for i, s in enumerate(scores))
                + " END"
            )
            # Classes ranked above the true one: a higher score, or an equal score and a later
            # declared position (scikit-learn's stable argsort, reversed).
            above = " + ".join(
                f"CASE WHEN {s} > true_score OR ({s} = true_score AND {i} > label_class) "
                "THEN 1 ELSE 0 END"
                for i, s in enumerate(scores)
            )
            true_rank = f"1 + {above}"
        else:
            true_score = self.as_double("NULL")
            true_rank = "CAST(NULL AS INTEGER)"
        passthrough = "".join(f",\n        {s}" for s in scores)
        eps = LOG_LOSS_EPS
        return self.render(
            "multiclass_statistics",
            window=self.window(window),
            **self._slice_pieces(),
            bucket_expr=self.bucket_expr(),
            label_class=self._class_index("label", classes),
            predicted_class=self._class_index("prediction", classes),
            true_score=true_score,
            score_passthrough=passthrough,
            true_rank=true_rank,
            eps=self.double(eps),
            one_minus_eps=self.double(1.0 - eps),
            log_loss_sum=self.fixed_point_sum("log_loss_term"),
            confusion_sets=self._render_sets(
                self.grouping_sets(
                    crosses, ["model_version", "bucket", "label_class", "predicted_class"]
                )
            ),
            rank_sets=self._render_sets(
                self.grouping_sets(crosses, ["model_version", "bucket", "true_rank"])
            ),
        )

    def multiclass_class_histogram(self, window: Window) -> str:
        """``sql/multiclass_histogram.sql``: the class histograms (with class scores only),
        a query of their own (``Task.family_queries``)."""
        classes = classes_of(self.spec)
        scores = [f"cs_{i}" for i in range(len(score_columns(self.spec)))]
        crosses = self.spec.slice_crosses
        passthrough = "".join(f",\n        {s}" for s in scores)
        return self.render(
            "multiclass_histogram",
            window=self.window(window),
            **self._slice_pieces(),
            label_class=self._class_index("label", classes),
            score_passthrough=passthrough,
            class_score="CASE classes.class_index "
            + " ".join(f"WHEN {i} THEN {s}" for i, s in enumerate(scores))
            + " END",
            class_values=", ".join(f"({i})" for i in range(len(scores))),
            bucket_expr=self.bucket_expr(),
            fine_bins=self.spec.score_bins,
            coarse_bins=self.spec.confidence.score_bins,
            bucket_sets=self._render_sets(
                self.grouping_sets(
                    crosses, ["model_version", "bucket", "class_index", "coarse_bin"]
                )
            ),
            histogram_sets=self._render_sets(
                self.grouping_sets(crosses, ["model_version", "class_index", "fine_bin"])
            ),
        )

    def multiclass_pairs(self, window: Window, baseline: str, candidate: str) -> str:
        """``sql/multiclass_pairs.sql``: per slice, labeled requests both versions predicted
        and those only one of them classified correctly."""
        return self.render(
            "multiclass_pairs",
            window=self.window(window),
            **self._pair_pieces(baseline, candidate),
        )

    def window_checks(self, window: Window) -> str:
        value = task_of(self.spec).fingerprint_value(self)
        row_text = (
            f"{self.as_text('id')} || '|' || {self.as_text('model_version')} || '|' || {value}"
        )
        # Casting every id to text only to find blank ones cost a fifth of this scan; an id
        # whose type is known to be an integer or a UUID cannot be blank (same result type).
        blank = f"CASE WHEN TRIM({self.as_text('id')}) = '' THEN 1 ELSE 0 END"
        if self._family("predictions.id") in {"integer", "uuid"}:
            blank = "0"
        return self.render(
            "window_checks",
            window=self.window(window),
            blank_id=f"SUM({blank})",
            content_hash=self.dialect.integer_sum(self.hash32(row_text)),
        )

    def slice_cardinality(self, window: Window) -> str:
        """Distinct values of each slice column in the window (NULL counts as one value)."""
        aliases = self.grouping_columns([])
        counts = ",\n    ".join(f"COUNT(DISTINCT COALESCE({a}, '(null)')) AS {a}" for a in aliases)
        return f"WITH win AS (\n{self.window(window)}\n)\nSELECT\n    {counts}\nFROM win"

    def window_labels(self, window: Window) -> str:
        """The labels of the window's predictions, with the source's columns: the table
        holding them once materialised, else ``sql/window_labels.sql``."""
        if self.window_labels_table is not None:
            return f"SELECT * FROM {self.window_labels_table}"
        return self.window_labels_query(window)

    def window_labels_query(
        self,
        window: Window,
        ids: tuple[object, object] = (None, None),
        span: tuple[object, object] | None = None,
    ) -> str:
        """``sql/window_labels.sql``: labels whose id is a prediction id in the window.
        ``ids``: one part's ``[low, high)`` (:mod:`eval_pipelines.id_ranges`); ``span``: the
        window's least and greatest id (:meth:`window_ids`), which bound the labels side so
        that the engine need not read labels of other weeks (without it, a part with an open
        lower bound built its hash table on every older label and ran out of memory)."""
        common = self._common()
        pred_id, label_id = f"p.{common['pred_id']}", f"l.{common['label_id']}"
        label_range = self._id_range(label_id, ids)
        if span is not None:
            low, high = (self.literal(self._id_value(v)) for v in span)
            label_range += [f"{label_id} >= {low}", f"{label_id} <= {high}"]
        return self.render(
            "window_labels",
            **common,
            pred_id_range="".join(f" AND {c}" for c in self._id_range(pred_id, ids)),
            label_id_range="".join(f"\n  AND {c}" for c in label_range),
            window_start=self.literal(window.start),
            window_end=self.literal(window.end),
        )

    def label_duplicates(self, window: Window) -> str:
        labels = self.window_labels_table or f"(\n{self.window_labels_query(window)}\n)"
        return self.render(
            "label_duplicates", label_id=self.ident(self.spec.labels.id), window_labels=labels
        )

    def first_prediction(self) -> str:
        """The earliest prediction time of the source (``start_week: earliest``): one row."""
        column = self.ident(self.spec.predictions.timestamp)
        return f"SELECT MIN(p.{column}) AS first_ts FROM {self.source(self.spec.predictions)} AS p"

    def feature_sample(self, columns: list[str], rows: int = 1000) -> str:
        """A few rows of the drift features, only to tell numeric from categorical columns."""
        select = ", ".join(f"p.{self.ident(c)}" for c in columns)
        return f"SELECT {select} FROM {self.source(self.spec.predictions)} AS p LIMIT {rows}"

    def _labeled_where(self, period: Window | None, version: str | None) -> list[str]:
        """The conditions of a labeled prediction: matured label (within ``labels.max_delay``
        of its prediction), in ``period`` and of ``version`` when given."""
        common = self._common()
        delay = self.dialect.interval_seconds(
            int(self.spec.labels.max_delay / timedelta(seconds=1))
        )
        where = [
            f"{common['label']} IS NOT NULL",
            f"{common['label_ts']} >= {common['pred_ts']}",
            f"{common['label_ts']} <= {common['pred_ts']} + {delay}",
        ]
        if period is not None:
            start, end = self.literal(period.start), self.literal(period.end)
            where += [f"{common['pred_ts']} >= {start}", f"{common['pred_ts']} < {end}"]
            # Implied by the two lines above and the label's maturity; spelled out so that an
            # engine skips the labels that arrived outside it without reading them.
            where += [
                f"{common['label_ts']} >= {start}",
                f"{common['label_ts']} <= {end} + {delay}",
            ]
        if version is not None:
            where.append(f"p.{common['pred_version']} = {self.literal(version)}")
        return where

    def labeled_predictions(
        self,
        label_column: str,
        period: Window | None = None,
        version: str | None = None,
        ids: tuple[object, object] = (None, None),
    ) -> str:
        """Predictions joined to their labels, only the labeled rows (a label that arrived
        within ``labels.max_delay`` of its prediction, as the window counts it), with the
        columns the drift queries read: timestamp, version and the label as ``label_column``;
        only predictions in ``period`` and of ``version`` when given.

        ``ids`` ``(low, high)``: only the ids in ``[low, high)`` (a bound that is None is
        open), on both sides, so that parts whose bounds follow each other hold the join's
        rows once each, each part's hash table a part of the labels (the whole join did not
        fit DuckDB's memory cap at 237M labels), and an engine skips the blocks of both
        sources whose ids lie outside (ids are mostly written in order: sequences, time-ordered
        UUIDs, logs appended as they come). Bounds are values the engine returned
        (:meth:`id_sample`), compared by the engine."""
        common = self._common()
        p = self.spec.predictions
        where = self._labeled_where(period, version)
        where += self._id_range(f"p.{common['pred_id']}", ids)
        where += self._id_range(f"l.{common['label_id']}", ids)
        return (
            f"SELECT p.{self.ident(p.timestamp)} AS {self.ident(p.timestamp)}, "
            f"p.{common['pred_version']} AS {common['pred_version']}, "
            f"{common['label']} AS {self.ident(label_column)}\n"
            f"FROM {common['predictions']} AS p\n"
            f"JOIN {common['labels']} AS l ON l.{common['label_id']} = p.{common['pred_id']}\n"
            "WHERE " + "\n  AND ".join(where)
        )

    def _id_range(self, column: str, ids: tuple[object, object]) -> list[str]:
        """The conditions keeping ``column`` in ``[low, high)`` of ``ids`` (a None bound is
        open): bounds are ids the engine returned (:meth:`id_sample`), as literals it
        compares with the column's own type (text for a type Python has no literal of)."""
        conditions = []
        for bound, op in zip(ids, (">=", "<"), strict=True):
            if bound is not None:
                conditions.append(f"{column} {op} {self.literal(self._id_value(bound))}")
        return conditions

    @staticmethod
    def _id_value(value: object) -> object:
        """An id the engine returned, as a value :meth:`literal` renders: numpy scalars as
        Python's, other types (UUID, decimal) as text the engine casts to the column's."""
        if hasattr(value, "item") and not isinstance(value, datetime):
            value = value.item()
        return value if isinstance(value, (str, int, float, datetime)) else str(value)

    def window_ids(self, window: Window) -> str:
        """The window's predictions: their number ``n`` and least and greatest id."""
        common = self._common()
        pred_id = f"p.{common['pred_id']}"
        return (
            f"SELECT COUNT(*) AS n, MIN({pred_id}) AS low, MAX({pred_id}) AS high\n"
            f"FROM {common['predictions']} AS p\n"
            f"WHERE {common['pred_ts']} >= {self.literal(window.start)}"
            f" AND {common['pred_ts']} < {self.literal(window.end)}"
        )

    def id_sample(self, period: Window, version: str | None, fraction: float) -> str:
        """A uniform sample (each row with probability ``fraction``) of the ids of the
        predictions in ``period`` (of ``version`` when given), in the engine's order: the
        bounds of a join in parts (:mod:`eval_pipelines.id_ranges`)."""
        common = self._common()
        pred_id = f"p.{common['pred_id']}"
        where = [
            f"{common['pred_ts']} >= {self.literal(period.start)}",
            f"{common['pred_ts']} < {self.literal(period.end)}",
            f"{pred_id} IS NOT NULL",
            f"{self.dialect.random()} < {float(fraction)!r}",
        ]
        if version is not None:
            where.append(f"p.{common['pred_version']} = {self.literal(version)}")
        return (
            f"SELECT {pred_id} AS id FROM {common['predictions']} AS p\n"
            "WHERE " + "\n  AND ".join(where) + "\nORDER BY 1"
        )

    def row_count(self, table: str) -> str:
        """The number of rows of session table ``table``."""
        return f"SELECT COUNT(*) AS n FROM {table}"

    def drift_ranges(self, window: Window, reference: Window, version: str, numeric: list[str]):
        """Per numeric feature: range and count over both windows, reference moments and the
        number of distinct reference values (Evidently bins on it: one bin per value up to 20,
        Sturges' bins above).

        The distinct count is the dialect's HyperLogLog estimate where it has one
        (``ref_distinct_estimate_i``; :meth:`drift_distinct` counts exactly the features it
        does not settle), else the exact ``COUNT(DISTINCT)`` (``ref_distinct_i``). An exact
        count of a continuous feature is a hash aggregate with a group per reference row,
        most of drift's time at 10M rows a week and spilling under a memory cap; the
        estimate is one pass with a few bytes of state.
        """
        outputs = []
        current_start = self.literal(window.start)
        for i, col in enumerate(numeric):
            q = f"p.{self.ident(col)}"
            finite = f"CASE WHEN {self.finite(q)} THEN {q} END"
            ts = self.pred_ts("p")
            outputs += [
                f"MIN({finite}) AS min_{i}",
                f"MAX({finite}) AS max_{i}",
                f"COUNT({finite}) AS count_{i}",
            ]
            # Reference moments for its standard deviation (STDDEV_POP is order-dependent).
            in_reference = f"CASE WHEN {ts} < {current_start} AND {self.finite(q)} THEN {q} END"
            estimate = self.dialect.approx_count_distinct(in_reference)
            outputs += [
                f"COUNT({in_reference}) AS ref_n_{i}",
                f"{self.exact_sum(in_reference)} AS ref_sum_{i}",
                f"{self.exact_sum(f'{in_reference} * {in_reference}')} AS ref_sumsq_{i}",
                f"{estimate} AS ref_distinct_estimate_{i}"
                if estimate is not None
                else f"COUNT(DISTINCT {in_reference}) AS ref_distinct_{i}",
            ]
        return self.render(
            "drift_ranges",
            **self._common(),
            range_outputs="".join(f"{o},\n    " for o in outputs),
            current_start=current_start,
            reference_start=self.literal(reference.start),
            window_end=self.literal(window.end),
            model_version=self.literal(version),
        )

    def drift_distinct(
        self, window: Window, reference: Window, version: str, features: list[tuple[int, str]]
    ) -> str:
        """The exact number of distinct finite reference values of ``features`` ((position in
        :meth:`drift_ranges`'s ``numeric``, column) pairs) as ``ref_distinct_<position>``: the
        values :meth:`drift_ranges` counts, for the features whose estimate there leaves 20
        or fewer possible (Evidently bins on it). Only those features are counted, so the
        hash tables stay small."""
        ts = self.pred_ts("p")
        outputs = []
        for i, col in features:
            q = f"p.{self.ident(col)}"
            outputs.append(
                f"COUNT(DISTINCT CASE WHEN {self.finite(q)} THEN {q} END) AS ref_distinct_{i}"
            )
        return (
            "SELECT\n    "
            + ",\n    ".join(outputs)
            + f"\nFROM {self.source(self.spec.predictions)} AS p"
            + f"\nWHERE {ts} >= {self.literal(reference.start)}"
            + f"\n  AND {ts} < {self.literal(window.start)}"
            + f"\n  AND p.{self.ident(self.spec.predictions.model_version)} = "
            + self.literal(version)
        )

    def double(self, value: float) -> str:
        """A double literal that parses to exactly ``value`` on every engine (a bare ``0.1`` is
        a DECIMAL in DuckDB and NUMERIC in PostgreSQL, converted with a possible rounding)."""
        return self.as_double(f"'{float(value)!r}'")

    def _coarse_bin(self, value: str, edges: tuple[float, ...] | None) -> str:
        """Evidently's bin of a finite value: its index on ``edges`` (``[e_i, e_i+1)``, last
        bin closed, numpy's rule), or the value itself (one bin per value) without edges."""
        as_double = self.as_double(value)
        if edges is None:
            return as_double
        inner = " ".join(
            f"WHEN {as_double} < {self.double(edge)} THEN {i}" for i, edge in enumerate(edges[1:-1])
        )
        return f"CASE {inner} ELSE {len(edges) - 2} END" if inner else "0"

    def drift_histograms(
        self,
        window: Window,
        reference: Window,
        version: str,
        numeric: list[tuple[str, float, float, int, tuple[float, ...] | None]],
        categorical: list[str],
    ) -> str:
        """``numeric`` holds (column, grid low, bin width, bins, coarse edges) per feature.

        Each numeric feature is counted per (fine grid bin, coarse bin) in one grouping set:
        the fine grid (``n_i``) serves KS and Wasserstein, the coarse bins (``b_i``: Sturges
        bin index on the given edges, or the value itself when the edges are None) serve the
        binned methods. Both are monotone in the value, so the set has at most
        ``bins + len(edges)`` rows per period.
        """
        exprs, aliases, sets = [], [], []
        for i, (col, low, width, bins, coarse) in enumerate(numeric):
            value = f"p.{self.ident(col)}"
            # Clamp before the cast (a value outside the grid must not overflow INTEGER);
            # NULL, NaN and infinite values stay NULL and are reported as missing.
            exprs.append(
                f"CASE WHEN {self.finite(value)} THEN CAST(GREATEST(0, LEAST({bins - 1}, "
                f"FLOOR(({value} - {low!r}) / {width!r}))) AS INTEGER) END AS n_{i}"
            )
            exprs.append(
                f"CASE WHEN {self.finite(value)} THEN {self._coarse_bin(value, coarse)} "
                f"END AS b_{i}"
            )
            aliases.append(f"n_{i}")
            sets.append(["period", f"n_{i}", f"b_{i}"])
        for j, col in enumerate(categorical):
            exprs.append(f"{self.as_text(f'p.{self.ident(col)}')} AS c_{j}")
            aliases.append(f"c_{j}")
            sets.append(["period", f"c_{j}"])
        outputs = aliases[: len(numeric)] + [f"b_{i}" for i in range(len(numeric))]
        outputs += aliases[len(numeric) :]
        return self.render(
            "drift_histograms",
            **self._common(),
            feature_exprs=",\n        ".join(exprs),
            feature_outputs="".join(f"{a},\n    " for a in outputs),
            current_start=self.literal(window.start),
            reference_start=self.literal(reference.start),
            window_end=self.literal(window.end),
            model_version=self.literal(version),
            # Only the feature columns: b_i always goes with n_i (and PostgreSQL's GROUPING
            # takes at most 31 arguments).
            grouping_id=self.dialect.grouping(aliases),
            grouping_sets=self._render_sets(sets),
        )


def grouping_mask(all_columns: list[str], grouped: list[str]) -> int:
    """The value SQL's ``GROUPING(all_columns)`` returns for a set grouping ``grouped``.

    The leftmost argument is the most significant bit; a bit is 1 when the column is *not*
    grouped in that set (SQL:1999, same in DuckDB and PostgreSQL).
    """
    mask = 0
    for column in all_columns:
        mask = (mask << 1) | (0 if column in grouped else 1)
    return mask
