"""What every statistic family is: the interface inference is written against.

A *family* is one aggregate the warehouse computes per slice x version (x resample bucket
where it resamples by bucket), with what turns it into numbers:

* ``parse``: the family's rows of the aggregate result (Arrow) -> dense numpy arrays;
* ``point``: the statistic over all rows, axes ``[g, v, ...]``, that metric functions read;
* ``reweight`` (bucket bootstrap) or ``coarsen`` + ``redraw`` (cell bootstrap): replicates;
* ``pair``: the two versions' statistics out of joint cells of requests both scored.

Which bootstrap a family uses is a property of the family (``bootstrap``), not of a metric:
:mod:`eval_pipelines.inference.bootstrap` holds the two schemes, each written once against
this interface. This module imports nothing of the project but numpy and Arrow, so the metric
registry (:mod:`eval_pipelines.tasks`) can be read by the spec without a cycle.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # the spec imports the task registry, which imports the families
    from eval_pipelines.inference.bootstrap import Bootstrap
    from eval_pipelines.spec import EvalSpec


@dataclass(frozen=True)
class RowIndex:
    """Where each aggregate result row lands: slice group ``g`` (-1: no configured cross) and
    version ``v`` (-1: a NULL version), with ``G`` groups and ``V`` versions."""

    g: np.ndarray
    v: np.ndarray
    groups: int
    versions: int


class Rows(Protocol):
    """A family's rows of an aggregate result: what ``parse`` reads (an Arrow table, or
    :class:`FamilyRows`)."""

    @property
    def column_names(self) -> list[str]: ...

    @property
    def num_rows(self) -> int: ...

    def column(self, name: str) -> pa.ChunkedArray: ...


@dataclass(frozen=True)
class FamilyRows:
    """The rows of ``table`` where ``mask`` holds, filtered one column at a time as a family
    reads them. Filtering the whole result first would copy it: the largest family's rows
    are most of it (the multiclass class histograms), and most of its columns are another
    family's, NULL on these rows."""

    table: pa.Table
    mask: pa.ChunkedArray

    @property
    def column_names(self) -> list[str]:
        return self.table.column_names

    @property
    def num_rows(self) -> int:
        return int(pc.sum(self.mask).as_py() or 0)

    def column(self, name: str) -> pa.ChunkedArray:
        return self.table.column(name).filter(self.mask)


class Family(Protocol):
    """One statistic family (see the module docstring)."""

    # The value of the aggregate's ``family`` column for this family's rows, and the key of
    # its arrays in :class:`eval_pipelines.stats.parse.Statistics`.
    name: str
    bootstrap: "Bootstrap"

    def parse(self, table: Rows, index: RowIndex, spec: "EvalSpec") -> Any:
        """This family's rows of the aggregate (``table`` holds only them) as arrays."""
        ...

    def point(self, data: Any) -> Any:
        """The statistic over all rows, ``[g, v, ...]``, that metric functions take."""
        ...

    def cells(self, data: Any) -> int:
        """How many numbers the parsed statistic holds (reported in run.json)."""
        ...


class BucketFamily(Family, Protocol):
    """A family kept per resample bucket (axis 2 of its parsed arrays): the bucket bootstrap."""

    def buckets(self, data: Any) -> int: ...

    def reweight(self, data: Any, weights: np.ndarray) -> Any:
        """Replicates ``[g, v, B, ...]`` of the point statistic for bucket ``weights[B, K]``."""
        ...


class CellFamily(Family, Protocol):
    """A family of cells (not kept per bucket): the cell bootstrap, and paired deltas through
    joint cells of both versions from the task's paired query."""

    def coarsen(self, data: Any, spec: "EvalSpec") -> Any:
        """The statistic on the bootstrap's coarser cells."""
        ...

    def redraw(
        self, data: Any, chunk: np.ndarray, replicates: int, rng: np.random.Generator
    ) -> Any:
        """Replicates ``[g, v, B, ...]`` of the slice groups ``chunk``, a Poisson draw a cell."""
        ...

    def joint_point(self, paired: Any, spec: "EvalSpec") -> tuple[Any, Any]:
        """(baseline, candidate) statistics ``[g, ...]`` of the requests both scored."""
        ...

    def redraw_joint(
        self,
        paired: Any,
        chunk: np.ndarray,
        replicates: int,
        rng: np.random.Generator,
        spec: "EvalSpec",
    ) -> tuple[Any, Any]:
        """(baseline, candidate) replicates ``[g, B, ...]``, one draw per joint cell."""
        ...


def accumulate(shape: tuple[int, ...], index: tuple[np.ndarray, ...], values) -> np.ndarray:
    """Dense array of ``shape`` with ``values`` summed at ``index`` (one bincount, no loops)."""
    flat = np.ravel_multi_index(index, shape) if len(index[0]) else np.zeros(0, dtype=np.int64)
    size = int(np.prod(shape))
    return np.bincount(flat, weights=np.asarray(values, float), minlength=size).reshape(shape)


def column(table: Rows, name: str, dtype=np.int64, fill=0) -> np.ndarray:
    """A column as numpy, NULL filled with ``fill``."""
    values = table.column(name)
    if pa.types.is_null(values.type):  # all NULL through pandas (PostgreSQL): no labels yet
        return np.full(len(values), fill, dtype=dtype)
    if values.null_count:
        values = pc.fill_null(values, fill)
    if pa.types.is_decimal(values.type) and values.type.scale == 0:
        # DuckDB's exact integer sums (HUGEINT) arrive as decimal128, which numpy would hold
        # as one Python Decimal per row (about 100 bytes each: the aggregate's peak memory at
        # 10M rows). Arrow's cast to int64 is exact and refuses a value that does not fit.
        values = pc.cast(values, pa.int64())
    return values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def is_null(table: Rows, name: str) -> np.ndarray:
    return pc.is_null(table.column(name)).to_numpy(zero_copy_only=False)
