"""The weekly job and its schedule.

``weekly_evaluation`` materializes every model's weekly assets (and runs their checks); its
weekly partitioning comes from the assets it selects.

The schedule (``EVAL_SCHEDULE_CRON``, default Monday 06:00 UTC: late events of Sunday night
have six hours to land) requests the last complete week, plus, for label maturity, each
spec's week whose labels have just matured: the week ``ceil(labels.max_delay / 7 days)``
weeks earlier, so a week first judged on immature labels (often ``inconclusive``) is
re-evaluated once its labels are in. Re-running a week replaces its artifacts and reuses
its MLflow run, so the extra run is safe.
"""

import math
import os
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from assets.partitions import FIRST_WEEK
from eval_pipelines.spec import EvalSpec
from eval_pipelines.windows import last_complete_week

SCHEDULE_CRON_ENV = "EVAL_SCHEDULE_CRON"
DEFAULT_CRON = "0 6 * * 1"


def build_weekly_job(weekly_assets: AssetSelection):
    return define_asset_job(
        name="weekly_evaluation",
        selection=weekly_assets,
        description="Evaluate every model for one week: input checks, metrics, drift, verdict.",
    )


def weeks_to_evaluate(specs: list[EvalSpec], now: datetime) -> list[str]:
    """The last complete week at ``now`` and each spec's week whose labels just matured."""
    last = date.fromisoformat(last_complete_week(now))
    weeks = {last}
    for spec in specs:
        lag = math.ceil(spec.labels.max_delay / timedelta(days=7))
        weeks.add(last - timedelta(weeks=lag))
    first = date.fromisoformat(FIRST_WEEK)
    return sorted(w.isoformat() for w in weeks if w >= first)


def build_weekly_schedule(job, specs: list[EvalSpec]):
    @schedule(
        name="weekly_evaluation_schedule",
        job=job,
        cron_schedule=os.environ.get(SCHEDULE_CRON_ENV, DEFAULT_CRON),
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description=(
            "Evaluate the last complete week, and re-evaluate the week whose labels just "
            "matured (labels.max_delay), for every model."
        ),
    )
    def weekly_evaluation_schedule(context: ScheduleEvaluationContext):
        now = context.scheduled_execution_time or datetime.now(UTC)
        for week in weeks_to_evaluate(specs, now):
            yield RunRequest(
                run_key=f"{now:%Y-%m-%dT%H:%M}/{week}",
                partition_key=week,
                tags={"eval/trigger": "schedule"},
            )

    return weekly_evaluation_schedule
