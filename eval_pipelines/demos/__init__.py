"""Demo tables of every task beside the fraud detector's, in the one demo warehouse.

Each task's demo lives in its own module here with one function,
``write_tables(con, start, weeks, rows, seed)``, that creates and fills its own tables (named
after its model, never ``inference_logs`` or ``labels``) in the DuckDB connection
:func:`eval_pipelines.demo.build_demo_warehouse` is writing, over the same weeks (``start``, a
Monday, and ``weeks``), deterministically from ``seed``, with about ``rows`` prediction rows
(the fraud demo's size; a writer may scale it). Its spec is ``evals/<model>.yaml`` and
``eval-pipelines demo`` evaluates every spec of ``evals/``. A new task's demo is one module
and one entry in :data:`TABLE_WRITERS`.
"""

import datetime as dt
from collections.abc import Callable

import duckdb

from eval_pipelines.demos import multiclass, ranking, regression

TableWriter = Callable[[duckdb.DuckDBPyConnection, dt.date, int, int, int], None]

# Called in this order after the fraud demo's tables are written.
TABLE_WRITERS: list[TableWriter] = [
    multiclass.write_tables,
    regression.write_tables,
    ranking.write_tables,
]
