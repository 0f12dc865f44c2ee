"""What each warehouse query of a run cost: purpose, wall time, rows returned and scanned.

Every query goes through :class:`~eval_pipelines.warehouse.Warehouse` (``query``,
``query_arrow``, ``create_temporary_table``, ``column_types``), which appends one
:class:`QueryCost` per completed query to its :class:`QueryLog`; work that runs its own
queries (Great Expectations) is recorded as one entry with its wall time
(:meth:`Warehouse.measured`). :func:`~eval_pipelines.pipeline.evaluate` keeps the entries of
its run, and run.json (``query_costs``, ``cost``), ``queries.json``, MLflow (``cost_*``
metrics) and the Dagster metadata are written from them.

What is measured, per engine (docs/architecture.md, "Cost of a run"):

* ``seconds``: wall time of the call in Python, result transfer included (every engine).
* ``rows_returned``: rows of the result that reached Python; 0 for ``CREATE TEMPORARY TABLE
  ... AS`` (the rows stay in the warehouse); null for a GX validation.
* ``rows_scanned``: DuckDB's profiler metric ``query.total_rows_scanned`` (1.x:
  ``cumulative_rows_scanned``): rows read by the table scans of the query, after row-group
  pruning, summed over every scan (a table read twice counts twice). Null on PostgreSQL: its
  per-session counters (``pg_stat_xact_user_tables``) miss rows read by parallel workers.
* ``bytes_scanned``: DuckDB's ``io.total_bytes_read`` (1.x: ``total_bytes_read``): bytes read
  from the database file; blocks already in DuckDB's buffer pool and in-memory tables read 0.
  Null on PostgreSQL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

PROFILING_ENV = "EVAL_DUCKDB_PROFILING"
GX_ENGINE = "gx"


@dataclass(frozen=True)
class QueryCost:
    """One query (or one GX validation) of a run; null where the engine does not report."""

    purpose: str
    seconds: float
    rows_returned: int | None
    rows_scanned: int | None
    bytes_scanned: int | None
    engine: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 4)}


class QueryLog:
    """The costs of a warehouse's queries, in the order they completed (append only)."""

    def __init__(self) -> None:
        self._entries: list[QueryCost] = []

    def append(self, entry: QueryCost) -> None:
        self._entries.append(entry)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[QueryCost]:
        return iter(self._entries)

    def since(self, mark: int) -> list[QueryCost]:
        """The entries appended after ``len(log)`` was ``mark``: one run's queries."""
        return list(self._entries[mark:])


def _known_sum(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def cost_totals(entries: Iterable[QueryCost]) -> dict[str, Any]:
    """``{queries, seconds, rows_scanned, bytes_scanned, unmeasured}``: rows and bytes sum the
    entries that report them (null when none does); ``unmeasured`` counts the entries whose
    rows scanned are unknown, so a partial sum is never mistaken for the whole."""
    entries = list(entries)
    return {
        "queries": len(entries),
        "seconds": round(sum(e.seconds for e in entries), 4),
        "rows_scanned": _known_sum(e.rows_scanned for e in entries),
        "bytes_scanned": _known_sum(e.bytes_scanned for e in entries),
        "unmeasured": sum(e.rows_scanned is None for e in entries),
    }


def cost_record(
    entries: Iterable[QueryCost], slice_sets: Iterable[dict[str, Any]] = ()
) -> dict[str, Any]:
    """``queries.json`` (and run.json's ``cost`` / ``query_costs``): the totals, with the
    slice sets of the statistics query, and every entry."""
    entries = list(entries)
    return {
        "cost": {**cost_totals(entries), "slice_sets": list(slice_sets)},
        "queries": [entry.to_dict() for entry in entries],
    }


def profiling_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether DuckDB's profiler records rows and bytes scanned (``$EVAL_DUCKDB_PROFILING``,
    default on; ``0``/``false``/``off`` keeps wall time and rows returned only)."""
    return environ.get(PROFILING_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


# DuckDB 2.x selects metrics by name; 1.x by a JSON object of upper-case metric names.
_TRACKED_2X = "SET tracked_metrics = ['query.total_rows_scanned', 'io.total_bytes_read']"
_TRACKED_1X = (
    "SET custom_profiling_settings = "
    '\'{"CUMULATIVE_ROWS_SCANNED": "true", "TOTAL_BYTES_READ": "true"}\''
)


def enable_duckdb_profiling(connection: Any) -> bool:
    """Turn on DuckDB's profiler for rows and bytes scanned only, printing nothing; False
    (profiler left off) when this DuckDB has neither metric setting."""
    try:
        connection.execute("PRAGMA enable_profiling = 'no_output'")
    except Exception:
        return False
    for statement in (_TRACKED_2X, _TRACKED_1X):
        try:
            connection.execute(statement)
            return True
        except Exception:
            continue
    connection.execute("PRAGMA disable_profiling")
    return False


def duckdb_scan_metrics(connection: Any) -> tuple[int | None, int | None]:
    """Rows and bytes scanned by the connection's last query, from its profile; (None, None)
    where the profile has none (a statement DuckDB answered from metadata, a DDL)."""
    try:
        profile = json.loads(connection.get_profiling_information())
    except Exception:
        return None, None
    if not isinstance(profile, dict):
        return None, None
    query, io = profile.get("query"), profile.get("io")
    if isinstance(query, dict) or isinstance(io, dict):  # 2.x: grouped metrics
        rows = (query or {}).get("total_rows_scanned")
        read = (io or {}).get("total_bytes_read")
    else:  # 1.x: flat metrics at the root
        rows = profile.get("cumulative_rows_scanned")
        read = profile.get("total_bytes_read")
    return _int(rows), _int(read)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
