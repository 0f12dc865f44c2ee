"""The evaluation calendar: one partition per ISO week, Monday 00:00 to Monday 00:00 UTC.

Partition keys are the Monday starting the week (``YYYY-MM-DD``), exactly what the engine's
``week_window`` and the CLI's ``--week`` take. A week becomes a partition once it has ended
(``end_offset=0``). Dagster's ``day_offset`` counts from Sunday like cron: 1 is Monday.
"""

from dagster import WeeklyPartitionsDefinition

FIRST_WEEK = "2026-09-28"  # the demo warehouse's first week; earlier weeks hold no data

weekly_partitions = WeeklyPartitionsDefinition(
    start_date=FIRST_WEEK,
    day_offset=1,
    timezone="UTC",
    end_offset=0,
)
