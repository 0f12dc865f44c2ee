"""The weekly job and its schedule.

``weekly_evaluation`` materializes every model's assets (and runs their checks) for one week;
its weekly partitioning is inferred from the assets it selects.
The schedule launches it every Monday at 06:00 UTC for the week that ended at midnight, so
late events of Sunday night have six hours to land.
"""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

weekly_evaluation_job = define_asset_job(
    name="weekly_evaluation",
    selection=AssetSelection.all(),
    description="Evaluate every model for one week: input checks, metrics, drift, verdict.",
)

weekly_evaluation_schedule = build_schedule_from_partitioned_job(
    weekly_evaluation_job,
    name="weekly_evaluation_schedule",
    hour_of_day=6,
    minute_of_hour=0,
    description="Every Monday 06:00 UTC: evaluate the week that just ended.",
)
