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
    AssetsDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from assets.partitions import DEFAULT_START_WEEK, start_week
from eval_pipelines.spec import EvalSpec
from eval_pipelines.windows import last_complete_week

SCHEDULE_CRON_ENV = "EVAL_SCHEDULE_CRON"
DEFAULT_CRON = "0 6 * * 1"


WEEKLY_JOB = "weekly_evaluation"


def build_weekly_job(weekly_assets: AssetSelection, name: str = WEEKLY_JOB):
    return define_asset_job(
        name=name,
        selection=weekly_assets,
        description="Evaluate every model for one week: input checks, metrics, drift, verdict.",
    )


def build_weekly_jobs(
    weekly: list[AssetsDefinition], specs: list[EvalSpec]
) -> tuple[list, list[ScheduleDefinition]]:
    """One weekly job and schedule per calendar (the models sharing a ``start_week``).

    A Dagster job has one partitions definition, so models whose calendars start on different
    Mondays cannot share a job. The models of the default start (or of the only start there
    is) keep ``weekly_evaluation`` and ``weekly_evaluation_schedule``; every other start gets
    ``weekly_evaluation_from_YYYY_MM_DD`` and its ``..._schedule``. ``weekly[i]`` are the
    weekly assets of ``specs[i]``.
    """
    groups: dict[str, list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault(start_week(spec), []).append(index)
    jobs, schedules = [], []
    for start, members in sorted(groups.items()):
        own = len(groups) == 1 or start == DEFAULT_START_WEEK
        name = WEEKLY_JOB if own else f"{WEEKLY_JOB}_from_{start.replace('-', '_')}"
        job = build_weekly_job(AssetSelection.assets(*(weekly[i] for i in members)), name)
        jobs.append(job)
        schedules.append(build_weekly_schedule(job, [specs[i] for i in members]))
    return jobs, schedules


def weeks_to_evaluate(specs: list[EvalSpec], now: datetime) -> list[str]:
    """The last complete week at ``now`` and each spec's week whose labels just matured,
    none before the spec's first week (``start_week``)."""
    last = date.fromisoformat(last_complete_week(now))
    weeks = set()
    for spec in specs:
        first = date.fromisoformat(start_week(spec))
        lag = math.ceil(spec.labels.max_delay / timedelta(days=7))
        weeks.update(w for w in (last, last - timedelta(weeks=lag)) if w >= first)
    return sorted(w.isoformat() for w in weeks)


def build_weekly_schedule(job, specs: list[EvalSpec]):
    @schedule(
        name=f"{job.name}_schedule",
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
