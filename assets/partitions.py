"""The evaluation calendar: one partition per ISO week, Monday 00:00 to Monday 00:00 UTC.

Partition keys are the Monday starting the week (``YYYY-MM-DD``), exactly what the engine's
``week_window`` and the CLI's ``--week`` take. A week becomes a partition once it has ended
(``end_offset=0``). Dagster's ``day_offset`` counts from Sunday like cron: 1 is Monday.

Each model has its own calendar, beginning at the spec's ``start_week``:

* a Monday (``2025-10-06``): there, and nothing is read to know it;
* ``earliest``: the week of the model's first prediction, one ``MIN(timestamp)`` query on the
  predictions source (:func:`eval_pipelines.first_week.first_prediction_week`) the first time
  the code location asks, then kept for the life of the process: every process of one load
  (webserver, daemon, run workers) sees the same calendar, and a reload reads it again.
  When the warehouse cannot be read (a fresh clone before ``make demo``, a database that is
  down) or holds no prediction yet, the calendar begins at the last complete week and a
  warning names the cause: the code location still loads, and it never shows empty weeks
  before the data. Reload the code location once the data is there;
* unset: ``$EVAL_DEFAULT_START_WEEK`` (a Monday or ``earliest``), else
  ``DEFAULT_START_WEEK``, the first week of the fixed demo the tests pin. ``make ui`` sets
  ``EVAL_DEFAULT_START_WEEK=earliest``, so the demo spec (which sets no ``start_week``) begins
  where ``make demo`` put its data, whichever week that was.

``earliest`` is read at load, not per run, because a Dagster partitions definition is fixed
for a code location: a start that moved between the webserver and a run worker would reject
partition keys the UI just offered.
"""

import logging
import os
from datetime import UTC, date, datetime
from functools import cache

from dagster import WeeklyPartitionsDefinition

from eval_pipelines.errors import EvalError, SpecError
from eval_pipelines.first_week import first_prediction_week
from eval_pipelines.spec import EvalSpec
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import last_complete_week

DEFAULT_START_WEEK = "2026-09-28"  # the fixed demo warehouse's first week (DEMO_START)
DEFAULT_START_ENV = "EVAL_DEFAULT_START_WEEK"
EARLIEST = "earliest"
WAREHOUSE_URL_ENV = "EVAL_WAREHOUSE_URL"  # the warehouse every model's assets read, if set

logger = logging.getLogger(__name__)

# (warehouse URL, predictions source, spec folder) -> first week: read once per process.
_EARLIEST: dict[tuple[str, str, str], str] = {}


@cache
def weekly_partitions_from(start_week: str) -> WeeklyPartitionsDefinition:
    """Monday weeks in UTC from ``start_week`` (one shared definition per start)."""
    return WeeklyPartitionsDefinition(
        start_date=start_week,
        day_offset=1,
        timezone="UTC",
        end_offset=0,
    )


def default_start() -> str:
    """The start of specs without ``start_week``: ``$EVAL_DEFAULT_START_WEEK`` or
    ``DEFAULT_START_WEEK``; a value that is neither a Monday nor ``earliest`` is an error."""
    value = os.environ.get(DEFAULT_START_ENV, "").strip()
    if not value:
        return DEFAULT_START_WEEK
    if value == EARLIEST:
        return value
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or day.weekday() != 0:
        raise SpecError(
            f"{DEFAULT_START_ENV}: expected a Monday YYYY-MM-DD or '{EARLIEST}', got {value!r}"
        )
    return value


def start_week(spec: EvalSpec, now: datetime | None = None) -> str:
    """The Monday the model's partitions begin (see the module docstring).

    ``now`` only matters when ``earliest`` cannot be read: the fallback is the last complete
    week at ``now`` (default: the current time, UTC).
    """
    declared = spec.start_week or default_start()
    if isinstance(declared, date):
        return declared.isoformat()
    if declared != EARLIEST:
        return declared
    url = os.environ.get(WAREHOUSE_URL_ENV) or spec.warehouse
    key = (url, spec.predictions.model_dump_json(), str(spec.base_dir))
    if key not in _EARLIEST:
        _EARLIEST[key] = _read_first_week(spec, url, now or datetime.now(UTC))
    return _EARLIEST[key]


def _read_first_week(spec: EvalSpec, url: str, now: datetime) -> str:
    """The week of the first prediction, or the last complete week (logged) if none is read."""
    try:
        with Warehouse(url) as warehouse:
            first = first_prediction_week(spec, warehouse)
        cause = "no predictions yet"
    except EvalError as exc:
        first, cause = None, str(exc)
    if first is not None:
        return first.isoformat()
    fallback = last_complete_week(now)
    logger.warning(
        "%s: start_week earliest: %s; its partitions begin at the last complete week, %s, "
        "until the code location is reloaded with predictions to read",
        spec.model,
        cause,
        fallback,
    )
    return fallback


def partitions_for(spec: EvalSpec) -> WeeklyPartitionsDefinition:
    """The model's weekly partitions, from its own first week."""
    return weekly_partitions_from(start_week(spec))


weekly_partitions = weekly_partitions_from(DEFAULT_START_WEEK)
