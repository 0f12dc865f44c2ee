"""The aggregate queries' results turned into each family's dense numpy arrays.

The sufficient-statistics query (``sql/sufficient_statistics.sql``) returns every family of
the task in one result, one ``family`` column naming each row's family, each row keyed by
slice group (``grouping_id`` and the slice columns) and model version. This module finds each
row's slice group and version once (:class:`~eval_pipelines.stats.base.RowIndex`) and hands
each family its rows; the family parses them (:mod:`eval_pipelines.stats.binary`).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.spec import OVERALL, EvalSpec
from eval_pipelines.sqlbuild import SqlBuilder, grouping_mask
from eval_pipelines.stats.base import FamilyRows, RowIndex, column
from eval_pipelines.tasks import Task, task_of

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


def _text_codes(table: pa.Table, name: str) -> tuple[np.ndarray, list[str]]:
    """Dictionary codes of a column cast to text; NULL becomes the value ``(null)``."""
    values = pc.fill_null(pc.cast(table.column(name), pa.string()), NULL_VALUE)
    encoded = pc.dictionary_encode(values).combine_chunks()
    return encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist()


def slice_groups(
    table: pa.Table, spec: EvalSpec, builder: SqlBuilder
) -> tuple[np.ndarray, list[SliceKey]]:
    """Each result row's slice group (``-1`` for rows of no configured cross), and the
    groups: ``overall`` first, then each cross's values in sorted order."""
    aliases = builder.grouping_columns([])
    alias_of = dict(zip(spec.slice_columns, aliases, strict=True))
    grouping_id = column(table, "grouping_id")
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


@dataclass
class Statistics:
    """Every family of one task over one window: ``data[family name]`` as that family parsed
    it, for the slice groups ``slices`` (``overall`` first) and the sorted ``versions``."""

    task: Task
    slices: list[SliceKey]
    versions: list[str]
    data: dict[str, Any]

    def labeled(self) -> np.ndarray:
        """Labeled rows per ``[g, v]``."""
        return self.task.rows(self).labeled

    def unlabeled(self) -> np.ndarray:
        """Rows whose label has not arrived, per ``[g, v]``."""
        return self.task.rows(self).unlabeled


def parse_statistics(
    table: pa.Table, spec: EvalSpec, builder: SqlBuilder, skip: frozenset[str] = frozenset()
) -> Statistics:
    """Index the aggregate result; every configured slice cross yields its groups, and every
    family of the spec's task but those in ``skip`` (parsed from their own queries by
    :func:`parse_family`) parses its rows."""
    version_codes, version_values = _text_codes(table, "model_version")
    versions = sorted(v for v in set(version_values) if v != NULL_VALUE)
    version_of_code = np.array([versions.index(v) if v in versions else -1 for v in version_values])
    v_all = version_of_code[version_codes] if len(version_values) else version_codes
    g_all, slices = slice_groups(table, spec, builder)
    task = task_of(spec)
    family_column = table.column("family")
    data = {}
    for family in task.families:
        if family.name in skip:
            continue
        mask = pc.equal(family_column, family.name)
        rows = mask.to_numpy(zero_copy_only=False)
        index = RowIndex(g_all[rows], v_all[rows], len(slices), len(versions))
        data[family.name] = family.parse(FamilyRows(table, mask), index, spec)
    return Statistics(task=task, slices=slices, versions=versions, data=data)


def _groups_of(
    table: pa.Table, spec: EvalSpec, builder: SqlBuilder, slices: list[SliceKey]
) -> np.ndarray:
    """Each row's slice group among ``slices`` (the main statistics'), -1 for none."""
    g_local, local_slices = slice_groups(table, spec, builder)
    position = {key: i for i, key in enumerate(slices)}
    remap = np.array([position.get(key, -1) for key in local_slices] + [-1], dtype=np.int64)
    return remap[g_local]  # g_local == -1 picks the trailing -1


def parse_family(
    table: pa.Table, name: str, spec: EvalSpec, builder: SqlBuilder, statistics: Statistics
) -> None:
    """Parse the result of a family's own query (``Task.family_queries``) into
    ``statistics``, indexed by the slices and versions of the main aggregate (which counts
    every row of the window, so it has every group this result has)."""
    index = index_rows(table, spec, builder, statistics)
    statistics.data[name] = statistics.task.family(name).parse(table, index, spec)


def index_rows(
    table: pa.Table, spec: EvalSpec, builder: SqlBuilder, statistics: Statistics
) -> RowIndex:
    """Each row of another query's result (keyed by slice and version like the aggregate)
    at its slice group and version of ``statistics``."""
    return RowIndex(
        _groups_of(table, spec, builder, statistics.slices),
        version_index(table, statistics.versions),
        len(statistics.slices),
        len(statistics.versions),
    )


def version_index(table: pa.Table, versions: list[str]) -> np.ndarray:
    """Each row's position in ``versions`` (-1: NULL or a version not in the list)."""
    codes, values = _text_codes(table, "model_version")
    position = {version: i for i, version in enumerate(versions)}
    of_code = np.array([position.get(value, -1) for value in values] + [-1], dtype=np.int64)
    return of_code[codes] if len(values) else np.full(table.num_rows, -1, dtype=np.int64)


def parse_paired(
    table: pa.Table, spec: EvalSpec, builder: SqlBuilder, slices: list[SliceKey]
) -> Any:
    """Index the paired query's result by the slices of the main statistics; the task parses
    its cells."""
    g = _groups_of(table, spec, builder, slices)
    return task_of(spec).parse_paired(table, g, spec, len(slices))
