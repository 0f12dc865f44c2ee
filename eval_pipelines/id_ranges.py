"""Large joins in parts by ranges of the ids, appended to one session table.

A join over hundreds of millions of ids does not fit DuckDB's memory cap in one hash table
(it spills, or runs out of memory). Split by ranges of the id, each part joins a part of
both sides: its hash table fits, and where ids are stored roughly in order (sequences,
time-ordered UUIDs, logs appended as they arrive) it reads only the blocks of both sources
whose ids fall in its range. Hash partitions were the first design; each of their parts
read and hashed every id of both sources, so they cost the whole scan once per part.

The bounds are quantiles of a uniform sample of the ids (:meth:`SqlBuilder.id_sample`),
ordered by the engine, so that consecutive ranges follow each other in the engine's own
order (its collation for text). They choose how many statements join the rows, never which
rows: the ranges ``[None, b1), [b1, b2), ..., [bk, None)`` hold every id once.
"""

import itertools
from collections.abc import Callable, Sequence

from eval_pipelines.warehouse import Warehouse

# Sampled ids per part: the parts' sizes then differ from the mean by a few percent.
SAMPLE_PER_PART = 1000

IdRange = tuple[object, object]
WHOLE: list[IdRange] = [(None, None)]


def part_count(rows: int | None, part_rows: int) -> int:
    """How many parts a join over ``rows`` rows takes at ``part_rows`` rows per part."""
    return max(1, -(-int(rows) // part_rows)) if rows else 1


def id_ranges(
    warehouse: Warehouse, sample: Callable[[float], str], rows: int | None, part_rows: int
) -> tuple[list[IdRange], str | None]:
    """The id ranges ``[low, high)`` (a None bound is open) of a join over ``rows`` rows at
    about ``part_rows`` rows per part, from the ids that ``sample(fraction)`` returns in the
    engine's order (about :data:`SAMPLE_PER_PART` per part); and the sampling query (None,
    and one open range, for one part or an engine that cannot append rows to a session
    table). Equal sampled ids give fewer parts."""
    parts = part_count(rows, part_rows)
    if parts <= 1 or not rows or not warehouse.appends_rows:
        return WHOLE, None
    sql = sample(min(1.0, SAMPLE_PER_PART * parts / rows))
    ids = warehouse.query(sql, "id ranges of a join in parts")["id"].tolist()
    cuts: list[object] = []
    for index in range(1, parts):
        value = ids[len(ids) * index // parts] if ids else None
        if value is not None and (not cuts or value != cuts[-1]):
            cuts.append(value)
    return list(itertools.pairwise([None, *cuts, None])), sql


def store_in_parts(warehouse: Warehouse, table: str, parts: Sequence[str]) -> bool:
    """Session table ``table`` holding the rows of every query of ``parts``, appended in
    turn. False if the engine refuses it (callers then query the sources); a partial table
    is dropped."""
    first, *rest = parts
    if not warehouse.create_temporary_table(table, first):
        return False
    for sql in rest:
        if not warehouse.insert_into_temporary_table(table, sql):
            warehouse.drop_temporary_table(table)
            return False
    return True
