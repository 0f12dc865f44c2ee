"""The week of a model's first prediction: what ``start_week: earliest`` means.

One aggregate query, ``SELECT MIN(<predictions.timestamp>) FROM <predictions source>``, read
through the same :class:`~eval_pipelines.sqlbuild.SqlBuilder` source as every other query (a
table or the spec's ``query:``), so no row travels; on a table with an index (or DuckDB's
zone maps) on the timestamp it reads almost nothing. A ``TIMESTAMP WITH TIME ZONE`` minimum
is converted to UTC, a naive one means UTC, like everywhere in the engine.
"""

from datetime import date, timedelta

import pandas as pd

from eval_pipelines.spec import EvalSpec
from eval_pipelines.sqlbuild import SqlBuilder
from eval_pipelines.warehouse import Warehouse

__all__ = ["first_prediction_week", "monday_of"]


def monday_of(day: date) -> date:
    """The Monday starting the ISO week of ``day``."""
    return day - timedelta(days=day.weekday())


def first_prediction_week(spec: EvalSpec, warehouse: Warehouse) -> date | None:
    """The Monday of the week holding the spec's earliest prediction (UTC), or ``None`` when
    the predictions source has no row with a timestamp.

    Raises :class:`~eval_pipelines.errors.WarehouseError` (one sentence naming the query,
    never the credentials) when the warehouse cannot be read.
    """
    sql = SqlBuilder(spec, warehouse.dialect).first_prediction()
    first = warehouse.query(sql, "first prediction (start_week: earliest)")["first_ts"].iloc[0]
    if first is None or pd.isna(first):
        return None
    moment = pd.Timestamp(first)
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC")
    return monday_of(moment.date())
