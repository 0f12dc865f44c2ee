"""The one place that turns a spec into SQL text.

Templates live in ``sql/`` (installed as ``eval_pipelines.sql``). This module fills them with
identifiers quoted by the target dialect's SQLAlchemy identifier preparer and with literals
rendered by SQLAlchemy, so nothing from a spec is pasted into SQL unquoted. The rendered text
is complete (no bind parameters): it is what runs and what ``run.json`` records.

What differs by engine (the resample bucket's hash, exact sums, the UTC reading of a
timestamp, literals, temporary tables) is asked of the builder's dialect object
(:mod:`eval_pipelines.dialects`), never decided here by the engine's name. The bucket is the
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
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cache

from eval_pipelines.dialects import SqlDialect, dialect_for
from eval_pipelines.spec import EvalSpec, Source
from eval_pipelines.stats.binary import LOG_LOSS_EPS, grid_sub_cells
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
        if self._family("labels.label") == "boolean":
            return f"CAST({column} AS INTEGER)"
        return column

    # ------------------------------------------------------------------ pieces
    def slice_alias(self, index: int) -> str:
        return f"s_{index}"

    def _slice_select(self) -> str:
        return "".join(
            f"CAST(p.{self.ident(col)} AS VARCHAR) AS {self.slice_alias(i)},\n    "
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
        as_int = self.hash32(f"CAST({id_column} AS VARCHAR) || '#{seed}'")
        return f"({as_int} % {self.spec.confidence.buckets})"

    @property
    def output(self) -> str:
        """The window's column of the model's output (the task's ``output``)."""
        return task_of(self.spec).output

    def _common(self) -> dict[str, str]:
        p, lab = self.spec.predictions, self.spec.labels
        return {
            "pred_id": self.ident(p.id),
            "pred_ts": self.pred_ts("p"),
            "pred_version": self.ident(p.model_version),
            # The model's output under the task's name for it (``score``, ``prediction``).
            "pred_output": f"p.{self.ident(self.spec.output_column)} AS {self.output}",
            "label_id": self.ident(lab.id),
            "label_ts": self.label_ts("l"),
            "label": self.label_value("l"),
            "predictions": self.source(p),
            "labels": self.source(lab),
        }

    # ------------------------------------------------------------------ queries
    def window(self, window: Window) -> str:
        if self.window_table is not None:
            return f"SELECT * FROM {self.window_table}"
        return self.window_join(window)

    def window_join(self, window: Window) -> str:
        """The window as a join of predictions and labels (``sql/window.sql``)."""
        return template("window").format(
            **self._common(),
            slice_select=self._slice_select(),
            max_delay=self.dialect.interval_seconds(
                int(self.spec.labels.max_delay / timedelta(seconds=1))
            ),
            window_start=self.literal(window.start),
            window_end=self.literal(window.end),
        )

    def _grouping_sets(self, crosses: list[tuple[str, ...]], tail: list[str]) -> list[list[str]]:
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
        threshold = self._grouping_sets(crosses, ["model_version", "label", "bucket", "above"])
        histogram = self._grouping_sets(crosses, ["model_version", "label", "fine_bin"])
        return template("sufficient_statistics").format(
            window=self.window(window),
            slice_passthrough="".join(f"{a}, " for a in aliases),
            slice_outputs="".join(f"{a},\n    " for a in aliases),
            slice_nulls="".join(f"NULL AS {a},\n    " for a in aliases),
            grouping_id=f"GROUPING({', '.join(aliases)})" if aliases else "0",
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
            for s in self._grouping_sets(self.spec.slice_crosses, tail)
        ]
        grouped = ", ".join(f"baseline.{a}" for a in aliases)
        return template("paired_counts").format(
            window=self.window(window),
            slice_passthrough="".join(f"{a}, " for a in aliases),
            slice_outputs="".join(f"baseline.{a} AS {a},\n    " for a in aliases),
            threshold=self.literal(float(self.spec.threshold)),
            joint_bins=self.spec.confidence.paired_bins,
            baseline=self.literal(baseline),
            candidate=self.literal(candidate),
            grouping_id=f"GROUPING({grouped})" if aliases else "0",
            grouping_sets=self._render_sets(sets),
            baseline_score_sum=self.fixed_point_sum("baseline.score"),
            candidate_score_sum=self.fixed_point_sum("candidate.score"),
        )

    def regression_statistics(self, window: Window) -> str:
        """``sql/regression_statistics.sql``: the regression family's exact sums per slice,
        version and resample bucket (the dialect's exact sum: the values are unbounded, so
        the fixed point of the binary sums could overflow)."""
        crosses = self.spec.slice_crosses
        aliases = [self.slice_alias(i) for i in range(len(self.spec.slice_columns))]
        sets = self._grouping_sets(crosses, ["model_version", "bucket"])
        sums = {
            "error_sum": "e",
            "abs_error_sum": "ABS(e)",
            "squared_error_sum": "e * e",
            "label_sum": "label",
            "squared_label_sum": "label * label",
            "relative_error_sum": "CASE WHEN label <> 0 THEN ABS(e) / ABS(label) END",
        }
        return template("regression_statistics").format(
            window=self.window(window),
            slice_passthrough="".join(f"{a}, " for a in aliases),
            slice_outputs="".join(f"{a},\n    " for a in aliases),
            grouping_id=f"GROUPING({', '.join(aliases)})" if aliases else "0",
            bucket_expr=self.bucket_expr(),
            sums="".join(
                f",\n    CAST({self.exact_sum(expr)} AS DOUBLE PRECISION) AS {name}"
                for name, expr in sums.items()
            ),
            grouping_sets=self._render_sets(sets),
        )

    def regression_pairs(self, window: Window, baseline: str, candidate: str) -> str:
        """``sql/regression_pairs.sql``: labeled requests both versions predicted, per slice
        (the bucket bootstrap pairs the versions through the id's bucket; this counts them)."""
        aliases = [self.slice_alias(i) for i in range(len(self.spec.slice_columns))]
        sets = [
            [f"baseline.{a}" for a in s] for s in self._grouping_sets(self.spec.slice_crosses, [])
        ]
        grouped = ", ".join(f"baseline.{a}" for a in aliases)
        return template("regression_pairs").format(
            window=self.window(window),
            slice_outputs="".join(f"baseline.{a} AS {a},\n    " for a in aliases),
            baseline=self.literal(baseline),
            candidate=self.literal(candidate),
            grouping_id=f"GROUPING({grouped})" if aliases else "0",
            grouping_sets=self._render_sets(sets) if sets else "    ()",
        )

    def window_checks(self, window: Window) -> str:
        row_text = (
            "CAST(id AS VARCHAR) || '|' || CAST(model_version AS VARCHAR) || '|' || "
            f"{task_of(self.spec).fingerprint_value}"
        )
        return template("window_checks").format(
            window=self.window(window),
            content_hash=self.dialect.integer_sum(self.hash32(row_text)),
        )

    def slice_cardinality(self, window: Window) -> str:
        """Distinct values of each slice column in the window (NULL counts as one value)."""
        aliases = self.grouping_columns([])
        counts = ",\n    ".join(f"COUNT(DISTINCT COALESCE({a}, '(null)')) AS {a}" for a in aliases)
        return f"WITH win AS (\n{self.window(window)}\n)\nSELECT\n    {counts}\nFROM win"

    def label_duplicates(self, window: Window) -> str:
        return template("label_duplicates").format(
            **self._common(),
            window_start=self.literal(window.start),
            window_end=self.literal(window.end),
        )

    def first_prediction(self) -> str:
        """The earliest prediction time of the source (``start_week: earliest``): one row."""
        column = self.ident(self.spec.predictions.timestamp)
        return f"SELECT MIN(p.{column}) AS first_ts FROM {self.source(self.spec.predictions)} AS p"

    def feature_sample(self, columns: list[str], rows: int = 1000) -> str:
        """A few rows of the drift features, only to tell numeric from categorical columns."""
        select = ", ".join(f"p.{self.ident(c)}" for c in columns)
        return f"SELECT {select} FROM {self.source(self.spec.predictions)} AS p LIMIT {rows}"

    def drift_ranges(self, window: Window, reference: Window, version: str, numeric: list[str]):
        """Per numeric feature: range and count over both windows, reference moments and the
        number of distinct reference values (Evidently bins on it: one bin per value up to 20,
        Sturges' bins above)."""
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
            outputs += [
                f"COUNT({in_reference}) AS ref_n_{i}",
                f"{self.exact_sum(in_reference)} AS ref_sum_{i}",
                f"{self.exact_sum(f'{in_reference} * {in_reference}')} AS ref_sumsq_{i}",
                f"COUNT(DISTINCT {in_reference}) AS ref_distinct_{i}",
            ]
        return template("drift_ranges").format(
            **self._common(),
            range_outputs="".join(f"{o},\n    " for o in outputs),
            current_start=current_start,
            reference_start=self.literal(reference.start),
            window_end=self.literal(window.end),
            model_version=self.literal(version),
        )

    @staticmethod
    def double(value: float) -> str:
        """A double literal that parses to exactly ``value`` on every engine (a bare ``0.1`` is
        a DECIMAL in DuckDB and NUMERIC in PostgreSQL, converted with a possible rounding)."""
        return f"CAST('{float(value)!r}' AS DOUBLE PRECISION)"

    def _coarse_bin(self, value: str, edges: tuple[float, ...] | None) -> str:
        """Evidently's bin of a finite value: its index on ``edges`` (``[e_i, e_i+1)``, last
        bin closed, numpy's rule), or the value itself (one bin per value) without edges."""
        as_double = f"CAST({value} AS DOUBLE PRECISION)"
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
            exprs.append(f"CAST(p.{self.ident(col)} AS VARCHAR) AS c_{j}")
            aliases.append(f"c_{j}")
            sets.append(["period", f"c_{j}"])
        outputs = aliases[: len(numeric)] + [f"b_{i}" for i in range(len(numeric))]
        outputs += aliases[len(numeric) :]
        return template("drift_histograms").format(
            **self._common(),
            feature_exprs=",\n        ".join(exprs),
            feature_outputs="".join(f"{a},\n    " for a in outputs),
            current_start=self.literal(window.start),
            reference_start=self.literal(reference.start),
            window_end=self.literal(window.end),
            model_version=self.literal(version),
            # Only the feature columns: b_i always goes with n_i (and PostgreSQL's GROUPING
            # takes at most 31 arguments).
            grouping_columns=", ".join(aliases),
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
