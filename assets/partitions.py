"""The evaluation calendar: one partition per ISO week, Monday 00:00 to Monday 00:00 UTC.

Partition keys are the Monday starting the week (``YYYY-MM-DD``), exactly what the engine's
``week_window`` and the CLI's ``--week`` take. A week becomes a partition once it has ended
(``end_offset=0``). Dagster's ``day_offset`` counts from Sunday like cron: 1 is Monday.

Each model has its own calendar: its partitions begin at the spec's ``start_week`` (the Monday
of its first week with data); a spec without one starts at ``DEFAULT_START_WEEK``.
"""

from functools import cache

from dagster import WeeklyPartitionsDefinition

from eval_pipelines.spec import EvalSpec

DEFAULT_START_WEEK = "2026-09-28"  # the demo warehouse's first week
FIRST_WEEK = DEFAULT_START_WEEK  # the name earlier code imports


@cache
def weekly_partitions_from(start_week: str) -> WeeklyPartitionsDefinition:
    """Monday weeks in UTC from ``start_week`` (one shared definition per start)."""
    return WeeklyPartitionsDefinition(
        start_date=start_week,
        day_offset=1,
        timezone="UTC",
        end_offset=0,
    )


def start_week(spec: EvalSpec) -> str:
    """The Monday the model's partitions begin: ``start_week`` or ``DEFAULT_START_WEEK``."""
    return spec.start_week.isoformat() if spec.start_week else DEFAULT_START_WEEK


def partitions_for(spec: EvalSpec) -> WeeklyPartitionsDefinition:
    """The model's weekly partitions, from its own first week."""
    return weekly_partitions_from(start_week(spec))


weekly_partitions = weekly_partitions_from(DEFAULT_START_WEEK)
